// LightningDB's bundled liblmdb.so (LMDB 1.0) is built against glibc 2.38, newer than these Debian
// 12 machines have (2.36). LightningDB P/Invokes "lmdb"; this resolver hands it the system
// library from Debian's liblmdb0 package (`apt-get install liblmdb0`, LMDB 0.9.x) instead, before
// the first call. The functions used here (env, txn, dbi, get/put, cursors, env_set_flags,
// env_sync) have the same ABI in both. BASALT_LMDB_LIBRARY names another file to load.
using System.Reflection;
using System.Runtime.InteropServices;
using LightningDB;

namespace Basalt.Benchmarks.Peers;

public static class LmdbNativeLibrary
{
    private const string SystemLibrary = "liblmdb.so.0";
    private static readonly Lock s_gate = new();
    private static bool s_installed;

    /// <summary>The file name or path loaded for "lmdb".</summary>
    public static string LoadedFrom { get; private set; } = "";

    public static void EnsureInstalled()
    {
        lock (s_gate)
        {
            if (s_installed)
                return;
            var name = Environment.GetEnvironmentVariable("BASALT_LMDB_LIBRARY") is { Length: > 0 } custom ? custom : SystemLibrary;
            if (!NativeLibrary.TryLoad(name, out var handle))
            {
                throw new DllNotFoundException(
                    $"LMDB: cannot load {name}; install the system library with `apt-get install liblmdb0` " +
                    "(LightningDB's bundled one needs glibc 2.38)");
            }
            LoadedFrom = name;
            NativeLibrary.SetDllImportResolver(typeof(LightningEnvironment).Assembly,
                (library, _, _) => library is "lmdb" or "liblmdb" ? handle : IntPtr.Zero);
            s_installed = true;
        }
    }

    /// <summary>For the settings line: "0.9.24 from liblmdb.so.0".</summary>
    public static string Describe(LightningEnvironment env) => $"{env.Version.Major}.{env.Version.Minor}.{env.Version.Patch} from {LoadedFrom}";

    internal static Assembly Assembly => typeof(LightningEnvironment).Assembly;
}
