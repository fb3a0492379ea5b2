// Who the process runs as: `put` and `get` keep owners, device nodes and the trusted. and
// security. xattr namespaces only for root, as cp -a does (an ordinary user cannot create them).
using System.Runtime.InteropServices;

namespace Basalt.Cli.Local;

internal static partial class LocalLibC
{
    [LibraryImport(Library, EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    [LibraryImport(Library, EntryPoint = "getegid")]
    public static partial uint GetEgid();
}
