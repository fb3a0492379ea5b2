// The libc calls of the local-filesystem layer (LocalFs), declared on byte names: every name and
// path parameter is a NUL-terminated ReadOnlySpan<byte> the caller built, never a marshalled
// string, because local names are bytes and need not be UTF-8. Constants and struct layouts are
// those of Linux on x86_64 with glibc (2.30 or later for getdents64); the CLI uses this layer on
// no other platform. Spans are pinned by the generated marshalling code, so no unsafe code.
using System.Runtime.InteropServices;

namespace Basalt.Cli.Local;

internal static partial class LocalLibC
{
    private const string Library = "libc";

    public const int AtFdCwd = -100;

    // open(2) flags on x86_64 (O_DIRECTORY, O_NOFOLLOW and O_PATH differ on other architectures)
    public const int ORdOnly = 0x0;
    public const int OWrOnly = 0x1;
    public const int ORdWr = 0x2;
    public const int OCreat = 0x40;
    public const int OExcl = 0x80;
    public const int ONoCtty = 0x100;
    public const int OTrunc = 0x200;
    public const int ONonBlock = 0x800;
    public const int ODirectory = 0x1_0000;
    public const int ONoFollow = 0x2_0000;
    public const int OCloExec = 0x8_0000;
    public const int OPath = 0x20_0000;

    // *at(2) flags
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtRemoveDir = 0x200;
    public const int AtEmptyPath = 0x1000;

    // statx(2)
    public const uint StatxBasicStats = 0x7ff;
    public const uint StatxBtime = 0x800;

    // lseek(2)
    public const int SeekSet = 0;
    public const int SeekData = 3;
    public const int SeekHole = 4;

    /// <summary>struct statx: 256 bytes, one layout on every architecture.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatxBuffer
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(4)] public uint BlockSize;
        [FieldOffset(16)] public uint Nlink;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(48)] public ulong Blocks;
        [FieldOffset(64)] public StatxTimestamp Atime;
        [FieldOffset(80)] public StatxTimestamp Btime;
        [FieldOffset(96)] public StatxTimestamp Ctime;
        [FieldOffset(112)] public StatxTimestamp Mtime;
        [FieldOffset(128)] public uint RdevMajor;
        [FieldOffset(132)] public uint RdevMinor;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
    }

    /// <summary>struct statx_timestamp: 16 bytes.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct StatxTimestamp
    {
        [FieldOffset(0)] public long Seconds;
        [FieldOffset(8)] public uint Nanoseconds;
    }

    /// <summary>struct timespec on 64-bit Linux: 16 bytes.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct Timespec
    {
        [FieldOffset(0)] public long Seconds;
        [FieldOffset(8)] public long Nanoseconds;
    }

    // struct linux_dirent64, as getdents64 fills its buffer
    public const int DirentIno = 0;
    public const int DirentRecordLength = 16;
    public const int DirentType = 18;
    public const int DirentName = 19;

    [LibraryImport(Library, EntryPoint = "openat", SetLastError = true)]
    public static partial int OpenAt(LocalFd dirFd, ReadOnlySpan<byte> name, int flags, uint mode);

    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Library, EntryPoint = "getdents64", SetLastError = true)]
    public static partial nint GetDents64(LocalFd fd, Span<byte> buffer, nuint count);

    [LibraryImport(Library, EntryPoint = "statx", SetLastError = true)]
    public static partial int Statx(LocalFd dirFd, ReadOnlySpan<byte> name, int flags, uint mask, out StatxBuffer buffer);

    [LibraryImport(Library, EntryPoint = "readlinkat", SetLastError = true)]
    public static partial nint ReadLinkAt(LocalFd dirFd, ReadOnlySpan<byte> name, Span<byte> buffer, nuint size);

    [LibraryImport(Library, EntryPoint = "symlinkat", SetLastError = true)]
    public static partial int SymlinkAt(ReadOnlySpan<byte> target, LocalFd dirFd, ReadOnlySpan<byte> name);

    [LibraryImport(Library, EntryPoint = "linkat", SetLastError = true)]
    public static partial int LinkAt(LocalFd oldDirFd, ReadOnlySpan<byte> oldName, LocalFd newDirFd, ReadOnlySpan<byte> newName, int flags);

    [LibraryImport(Library, EntryPoint = "mkdirat", SetLastError = true)]
    public static partial int MkdirAt(LocalFd dirFd, ReadOnlySpan<byte> name, uint mode);

    [LibraryImport(Library, EntryPoint = "mknodat", SetLastError = true)]
    public static partial int MknodAt(LocalFd dirFd, ReadOnlySpan<byte> name, uint mode, ulong device);

    [LibraryImport(Library, EntryPoint = "unlinkat", SetLastError = true)]
    public static partial int UnlinkAt(LocalFd dirFd, ReadOnlySpan<byte> name, int flags);

    [LibraryImport(Library, EntryPoint = "fchmodat", SetLastError = true)]
    public static partial int FchmodAt(LocalFd dirFd, ReadOnlySpan<byte> name, uint mode, int flags);

    [LibraryImport(Library, EntryPoint = "fchmod", SetLastError = true)]
    public static partial int Fchmod(LocalFd fd, uint mode);

    [LibraryImport(Library, EntryPoint = "fchownat", SetLastError = true)]
    public static partial int FchownAt(LocalFd dirFd, ReadOnlySpan<byte> name, uint uid, uint gid, int flags);

    [LibraryImport(Library, EntryPoint = "utimensat", SetLastError = true)]
    public static partial int UtimensAt(LocalFd dirFd, ReadOnlySpan<byte> name, ReadOnlySpan<Timespec> times, int flags);

    [LibraryImport(Library, EntryPoint = "pread64", SetLastError = true)]
    public static partial nint Pread(LocalFd fd, Span<byte> buffer, nuint count, long offset);

    [LibraryImport(Library, EntryPoint = "pwrite64", SetLastError = true)]
    public static partial nint Pwrite(LocalFd fd, ReadOnlySpan<byte> buffer, nuint count, long offset);

    [LibraryImport(Library, EntryPoint = "lseek64", SetLastError = true)]
    public static partial long Lseek(LocalFd fd, long offset, int whence);

    [LibraryImport(Library, EntryPoint = "ftruncate64", SetLastError = true)]
    public static partial int Ftruncate(LocalFd fd, long length);

    [LibraryImport(Library, EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(LocalFd fd);

    [LibraryImport(Library, EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int Fdatasync(LocalFd fd);

    [LibraryImport(Library, EntryPoint = "llistxattr", SetLastError = true)]
    public static partial nint LListXattr(ReadOnlySpan<byte> path, Span<byte> list, nuint size);

    [LibraryImport(Library, EntryPoint = "lgetxattr", SetLastError = true)]
    public static partial nint LGetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> attribute, Span<byte> value, nuint size);

    [LibraryImport(Library, EntryPoint = "lsetxattr", SetLastError = true)]
    public static partial int LSetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> attribute, ReadOnlySpan<byte> value, nuint size, int flags);

    [LibraryImport(Library, EntryPoint = "lremovexattr", SetLastError = true)]
    public static partial int LRemoveXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> attribute);
}
