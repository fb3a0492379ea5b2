// Test-run environment: every filesystem a test mounts routes its writes through the write-once
// checker (MountOptions.CheckWriteOnce), so any write below a live node's sectors_written fails.
using System.Runtime.CompilerServices;

namespace Basalt.IntegrationTests;

internal static class TestEnvironment
{
    [ModuleInitializer]
    internal static void Initialize() => Environment.SetEnvironmentVariable("BASALT_CHECK_WRITE_ONCE", "1");
}
