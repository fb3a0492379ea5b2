// The few libc calls the file device needs and .NET does not expose, or exposes with more work
// per call than its reads can afford: open without .NET's own advisory flock, pread, fdatasync,
// sync_file_range, statx, the block-device ioctls, fallocate punch-hole, flock and POSIX record
// locks. Constants and struct layouts are those of Linux on x86_64 and arm64 (both
// use the asm-generic numbering for everything here; O_DIRECTORY and friends, which differ, are
// not used). Variadic C functions (open, fcntl, ioctl) are declared with their one extra
// argument, which the Linux calling conventions of both architectures pass like a named one.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Basalt.Devices.Interop;

internal static partial class LibC
{
    private const string Library = "libc";

    // open(2) flags
    public const int ORdOnly = 0x0;
    public const int ORdWr = 0x2;
    public const int OCreat = 0x40;
    public const int OExcl = 0x80;
    public const int OTrunc = 0x200;
    public const int OCloExec = 0x80000;
    public const int ONoAtime = 0x40000;

    // errno values
    public const int EPerm = 1;
    public const int ENoEnt = 2;
    public const int EIntr = 4;
    public const int EIo = 5;
    public const int EAgain = 11;
    public const int EAcces = 13;
    public const int EBusy = 16;
    public const int EExist = 17;
    public const int EIsDir = 21;
    public const int EInval = 22;
    public const int ENotTy = 25;
    public const int ENoSpc = 28;
    public const int ERoFs = 30;
    public const int ENoSys = 38;
    public const int EOpNotSupp = 95;

    // flock(2)
    public const int LockSh = 1;
    public const int LockEx = 2;
    public const int LockNb = 4;
    public const int LockUn = 8;

    // fcntl(2) record locks (64-bit off_t on both architectures, so F_GETLK is the 64-bit form)
    public const int FGetLk = 5;
    public const int FSetLk = 6;
    public const short FRdLck = 0;
    public const short FWrLck = 1;
    public const short FUnLck = 2;
    public const short SeekSet = 0;

    // fallocate(2)
    public const int FallocFlKeepSize = 0x1;
    public const int FallocFlPunchHole = 0x2;

    // sync_file_range(2) flags
    public const uint SyncFileRangeWrite = 0x2;

    // ioctl numbers: _IOR(0x12, 114, size_t) and _IO(0x12, 119), same encoding on both architectures
    public const nuint BlkGetSize64 = 0x8008_1272;
    public const nuint BlkDiscard = 0x1277;

    // statx(2)
    public const int AtFdCwd = -100;
    public const int AtEmptyPath = 0x1000;
    public const uint StatxBasicStats = 0x7ff;
    public const ushort SIfMt = 0xF000;
    public const ushort SIfReg = 0x8000;
    public const ushort SIfBlk = 0x6000;
    public const ushort SIfDir = 0x4000;

    /// <summary>struct flock on 64-bit Linux: 32 bytes.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 32)]
    public struct Flock
    {
        [FieldOffset(0)] public short Type;
        [FieldOffset(2)] public short Whence;
        [FieldOffset(8)] public long Start;
        [FieldOffset(16)] public long Len;
        [FieldOffset(24)] public int Pid;
    }

    /// <summary>The fields of struct statx (256 bytes, one layout on every architecture) we read.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct Statx
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(48)] public ulong Blocks;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
    }

    [LibraryImport(Library, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, uint mode);

    /// <summary>pread(2); the handle is held (ref-counted) for the call, so a concurrent Dispose cannot close it under the read.</summary>
    [LibraryImport(Library, EntryPoint = "pread", SetLastError = true)]
    public static unsafe partial nint PRead(SafeFileHandle fd, byte* buffer, nuint count, long offset);

    [LibraryImport(Library, EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int FdataSync(SafeFileHandle fd);

    [LibraryImport(Library, EntryPoint = "sync_file_range", SetLastError = true)]
    public static partial int SyncFileRange(SafeFileHandle fd, long offset, long length, uint flags);

    [LibraryImport(Library, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int FTruncate(SafeFileHandle fd, long length);

    [LibraryImport(Library, EntryPoint = "fallocate", SetLastError = true)]
    public static partial int FAllocate(SafeFileHandle fd, int mode, long offset, long length);

    [LibraryImport(Library, EntryPoint = "ioctl", SetLastError = true)]
    public static unsafe partial int IoctlU64(SafeFileHandle fd, nuint request, ulong* argument);

    [LibraryImport(Library, EntryPoint = "flock", SetLastError = true)]
    public static partial int FileLock(SafeFileHandle fd, int operation);

    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    public static unsafe partial int FcntlLock(SafeFileHandle fd, int command, Flock* flock);

    [LibraryImport(Library, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static unsafe partial int StatX(SafeFileHandle dirFd, string path, int flags, uint mask, Statx* buffer);

    [LibraryImport(Library, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static unsafe partial int StatXPath(int dirFd, string path, int flags, uint mask, Statx* buffer);

    /// <summary>The errno of the last call and its text ("No such file or directory").</summary>
    public static (int Errno, string Text) LastError()
    {
        var errno = Marshal.GetLastPInvokeError();
        return (errno, Marshal.GetPInvokeErrorMessage(errno));
    }
}
