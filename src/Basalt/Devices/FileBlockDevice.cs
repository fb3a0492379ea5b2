// A block device backed by an image file or a Linux block device. Reads call pread(2) directly
// (every data read is one, and RandomAccess's checks and wrapping cost a measurable share of a
// warm 4 KiB read); writes go through RandomAccess (pwrite). Both use a handle we open ourselves
// with open(2): File.OpenHandle always takes a .NET advisory flock (LOCK_SH for any FileShare but
// None), and when that fails the caller gets no descriptor to ask who holds the lock. Owning the
// descriptor keeps the lock protocol ours:
//
//   writer:    flock(LOCK_EX|LOCK_NB)  + fcntl F_SETLK F_WRLCK on byte 0
//   read-only: flock(LOCK_SH|LOCK_NB)  + fcntl F_SETLK F_RDLCK on byte 0
//
// flock does the exclusion (per open file description, so it also refuses a second open from this
// process). The POSIX record lock exists only so a refused opener can ask F_GETLK for the pid
// of the holder. POSIX locks belong to the process and any close() of the same file by this
// process drops them, so a process-wide registry of open devices (by device and inode) answers
// for this process and re-takes the record locks of the remaining holders after every close.
//
// Every descriptor is unlocked (LOCK_UN) before it is closed. A flock belongs to the open file
// description, and a child process that any thread of this process forks holds a duplicate of
// every descriptor, O_CLOEXEC ones included, until its exec. close() alone would leave the lock
// with the child for that while, and an open right after it (the next command on the same image)
// would be refused "in use (pid unknown)": the child holds the flock but no record lock.
//
// The descriptor is opened with O_NOATIME where the kernel allows it (the caller owns the file or
// is privileged): the image's access time means nothing, and updating it is part of every read.
//
// Durability: Write is not durable until Flush (fdatasync) returns. StartWriteback asks the kernel
// to begin writing a range of the page cache out (sync_file_range SYNC_FILE_RANGE_WRITE, which
// waits for nothing), so a later fdatasync finds less to write; it is a hint and changes no
// durability: a failed write-out is reported by the next fdatasync. Discard punches a hole in
// an image file (reads return zeroes afterwards) or issues BLKDISCARD on a block device; where
// neither is supported it does nothing, as the device contract allows. Extend (image files only:
// fsck's repair of a truncated image) sets the new length with ftruncate and flushes it.
using System.Globalization;
using Basalt.Devices.Interop;
using Basalt.Diagnostics;
using Basalt.Format;
using Microsoft.Win32.SafeHandles;

namespace Basalt.Devices;

public sealed class FileBlockDevice : IExtensibleDevice
{
    private readonly SafeFileHandle _handle;
    private readonly FileIdentity _identity;
    private bool _discardUnsupported;
    private bool _writebackUnsupported;
    private int _disposed;
    // Set at open and raised only by Extend; read without a lock by every I/O range check.
    private long _size;
    private long _length;

    private FileBlockDevice(string path, SafeFileHandle handle, FileIdentity identity, long length, bool readOnly, bool isBlockDevice)
    {
        Name = path;
        _handle = handle;
        _identity = identity;
        _length = length;
        _size = length - length % FormatLimits.SectorSize;
        IsReadOnly = readOnly;
        IsBlockDevice = isBlockDevice;
    }

    public string Name { get; }

    /// <summary>Usable size: a block device's size, or an image file's length rounded down to 512 bytes.</summary>
    public long Size => Volatile.Read(ref _size);

    /// <summary>The length in bytes as opened (or extended): <see cref="Size"/> before rounding down to 512.</summary>
    public long Length => Volatile.Read(ref _length);

    /// <summary>Image files can be extended; block devices cannot.</summary>
    public bool CanExtend => !IsBlockDevice;

    public bool IsReadOnly { get; }

    /// <summary>Bytes the host has allocated for the file (statx blocks × 512): below the length where an image is sparse.</summary>
    public long AllocatedBytes => checked((long)StatOf(Name, _handle).Blocks * 512);

    /// <summary>True for a block device node, false for an image file.</summary>
    public bool IsBlockDevice { get; }

    /// <summary>
    /// Opens an existing image file or block device and locks it (exclusive for writers, shared for
    /// read-only opens). Throws <see cref="ErrorCode.DeviceInUse"/> naming the holder's pid when refused.
    /// </summary>
    public static FileBlockDevice Open(string path, bool readOnly = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var flags = (readOnly ? LibC.ORdOnly : LibC.ORdWr) | LibC.OCloExec;
        // A writer opens a block device with O_EXCL: the kernel then refuses it while it is mounted
        // or claimed by another exclusive opener (EBUSY), which no advisory lock can see.
        if (!readOnly && IsBlockDevicePath(path))
            flags |= LibC.OExcl;
        var fd = OpenNoAtime(path, flags, 0);
        if (fd < 0)
            ThrowOpenError(path);
        return Attach(path, new SafeFileHandle(fd, ownsHandle: true), readOnly);
    }

    /// <summary>
    /// Creates a sparse image file of <paramref name="sizeBytes"/> (a positive multiple of 512) and
    /// opens it for writing. An existing file is refused unless <paramref name="overwrite"/> is set.
    /// </summary>
    public static FileBlockDevice Create(string path, long sizeBytes, bool overwrite = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (sizeBytes <= 0 || sizeBytes % FormatLimits.SectorSize != 0)
            throw new BasaltException(ErrorCode.InvalidArgument,
                $"{path}: image size {sizeBytes} is not a positive multiple of {FormatLimits.SectorSize}");
        var flags = LibC.ORdWr | LibC.OCreat | LibC.OCloExec | (overwrite ? 0 : LibC.OExcl);
        var fd = OpenNoAtime(path, flags, 0b110_100_100); // 0644
        if (fd < 0)
        {
            var (errno, text) = LibC.LastError();
            if (errno == LibC.EExist)
                throw new BasaltException(ErrorCode.ExistingFilesystem, $"{path}: already exists (not overwritten)");
            ThrowOpenError(path, errno, text);
        }
        // The size is set only once the lock is ours: an overwrite never truncates an image in use.
        return Attach(path, new SafeFileHandle(fd, ownsHandle: true), readOnly: false, createSize: sizeBytes);
    }

    /// <summary>open(2) with O_NOATIME, or without it where the kernel refuses it (EPERM: neither the owner nor privileged).</summary>
    private static int OpenNoAtime(string path, int flags, uint mode)
    {
        var fd = LibC.Open(path, flags | LibC.ONoAtime, mode);
        if (fd < 0 && LibC.LastError().Errno == LibC.EPerm)
            fd = LibC.Open(path, flags, mode);
        return fd;
    }

    private static FileBlockDevice Attach(string path, SafeFileHandle handle, bool readOnly, long createSize = -1)
    {
        try
        {
            var stat = StatOf(path, handle);
            var type = stat.Mode & LibC.SIfMt;
            if (type == LibC.SIfDir)
                throw new BasaltException(ErrorCode.InvalidArgument, $"{path}: is a directory, not an image file or block device");
            if (type != LibC.SIfReg && type != LibC.SIfBlk)
                throw new BasaltException(ErrorCode.InvalidArgument, $"{path}: not a regular file or block device");
            var identity = new FileIdentity(stat.DevMajor, stat.DevMinor, stat.Ino);
            var isBlock = type == LibC.SIfBlk;

            var device = LockRegistry.Lock(path, handle, identity, readOnly, () =>
            {
                if (createSize >= 0)
                {
                    if (isBlock)
                        throw new BasaltException(ErrorCode.InvalidArgument, $"{path}: is a block device, not created as an image");
                    if (LibC.FTruncate(handle, createSize) != 0)
                        ThrowErrno(path, "set the size of", 0, createSize);
                }
                var length = isBlock ? BlockDeviceSize(path, handle) : RandomAccess.GetLength(handle);
                return new FileBlockDevice(path, handle, identity, length, readOnly, isBlock);
            });
            return device;
        }
        catch
        {
            CloseUnlocked(handle);
            throw;
        }
    }

    /// <summary>Releases any flock this descriptor's open file description holds, then closes it (see the header).</summary>
    private static void CloseUnlocked(SafeFileHandle handle)
    {
        if (!handle.IsClosed && !handle.IsInvalid)
            LibC.FileLock(handle, LibC.LockUn);
        handle.Dispose();
    }

    public unsafe void Read(long offset, Span<byte> buffer)
    {
        CheckOpen();
        if (offset < 0 || offset % FormatLimits.SectorSize != 0 || buffer.Length % FormatLimits.SectorSize != 0 || offset + buffer.Length > Size)
            DeviceRange.Check(this, offset, buffer.Length); // throws
        fixed (byte* start = buffer)
        {
            var done = 0;
            while (done < buffer.Length)
            {
                var n = LibC.PRead(_handle, start + done, (nuint)(buffer.Length - done), offset + done);
                if (n > 0)
                {
                    done += (int)n;
                    continue;
                }
                if (n == 0)
                {
                    throw new BasaltException(ErrorCode.ShortDevice,
                        $"{Name}: short read at offset {offset + done}: the device ends before {offset + buffer.Length}");
                }
                var (errno, text) = LibC.LastError();
                if (errno == LibC.EIntr)
                    continue;
                throw new BasaltException(ErrorCode.IoError, string.Create(CultureInfo.InvariantCulture,
                    $"{Name}: cannot read at offset {offset}+{buffer.Length}: {text} (errno {errno})"));
            }
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        CheckOpen();
        CheckWritable("write", offset);
        DeviceRange.Check(this, offset, data.Length);
        try
        {
            RandomAccess.Write(_handle, data, offset);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BasaltException(IoErrorText.ErrnoOf(e) == LibC.ENoSpc ? ErrorCode.DeviceFull : ErrorCode.IoError,
                string.Create(CultureInfo.InvariantCulture, $"{Name}: cannot write at offset {offset}+{data.Length}: {IoErrorText.Describe(e)}"), e);
        }
    }

    public void Flush()
    {
        CheckOpen();
        if (IsReadOnly)
            return;
        while (LibC.FdataSync(_handle) != 0)
        {
            if (LibC.LastError().Errno != LibC.EIntr)
                ThrowErrno(Name, "flush (fdatasync)", 0, Size);
        }
    }

    public void StartWriteback(long offset, long length)
    {
        CheckOpen();
        if (IsReadOnly || length <= 0 || _writebackUnsupported)
            return;
        DeviceRange.Check(this, offset, length);
        if (LibC.SyncFileRange(_handle, offset, length, LibC.SyncFileRangeWrite) == 0)
            return;
        // Only a hint: an error of the write-out itself surfaces at the next Flush (fdatasync
        // reports what writeback failed since the last one), so nothing is lost by not throwing.
        if (LibC.LastError().Errno is LibC.ENoSys or LibC.EInval or LibC.EOpNotSupp)
            _writebackUnsupported = true;
    }

    public void Discard(long offset, long length)
    {
        CheckOpen();
        CheckWritable("discard", offset);
        DeviceRange.Check(this, offset, length);
        if (length == 0 || _discardUnsupported)
            return;
        int rc;
        if (IsBlockDevice)
        {
            unsafe
            {
                var range = stackalloc ulong[2];
                range[0] = (ulong)offset;
                range[1] = (ulong)length;
                rc = LibC.IoctlU64(_handle, LibC.BlkDiscard, range);
            }
        }
        else
        {
            rc = LibC.FAllocate(_handle, LibC.FallocFlPunchHole | LibC.FallocFlKeepSize, offset, length);
        }
        if (rc == 0)
            return;
        var errno = LibC.LastError().Errno;
        if (errno is LibC.EOpNotSupp or LibC.ENotTy or LibC.ENoSys or LibC.EInval or LibC.EPerm)
        {
            _discardUnsupported = true;
            return;
        }
        ThrowErrno(Name, "discard", offset, length);
    }

    /// <summary>
    /// Extends an image file to <paramref name="size"/> bytes: a trailing partial sector is cut off
    /// first (it was never usable), then the file is lengthened (sparse) and flushed, so everything
    /// from the old usable size on reads as zeroes.
    /// </summary>
    public void Extend(long size)
    {
        CheckOpen();
        CheckWritable("extend", size);
        if (IsBlockDevice)
            throw new BasaltException(ErrorCode.InvalidArgument, $"{Name}: is a block device: it cannot be extended");
        if (size % FormatLimits.SectorSize != 0 || size < Size)
            throw new ArgumentOutOfRangeException(nameof(size), $"{Name}: cannot extend to {size} bytes (now {Size} bytes)");
        if (Length != Size && LibC.FTruncate(_handle, Size) != 0)
            ThrowErrno(Name, "cut the partial last sector of", Size, Length - Size);
        if (LibC.FTruncate(_handle, size) != 0)
            ThrowErrno(Name, "extend", Size, size - Size);
        Volatile.Write(ref _length, size);
        Volatile.Write(ref _size, size);
        Flush();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        LockRegistry.Release(this, _handle, _identity);
    }

    public override string ToString() => $"{Name} ({(IsBlockDevice ? "block device" : "image")}, {Size} bytes{(IsReadOnly ? ", read-only" : "")})";

    private void CheckOpen() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private void CheckWritable(string what, long offset)
    {
        if (IsReadOnly)
            throw new BasaltException(ErrorCode.ReadOnlyDevice, $"{Name}: {what} at offset {offset} refused: opened read-only");
    }

    private static unsafe LibC.Statx StatOf(string path, SafeFileHandle handle)
    {
        LibC.Statx stat;
        if (LibC.StatX(handle, "", LibC.AtEmptyPath, LibC.StatxBasicStats, &stat) != 0)
            ThrowErrno(path, "stat", 0, 0);
        return stat;
    }

    private static unsafe bool IsBlockDevicePath(string path)
    {
        LibC.Statx stat;
        return LibC.StatXPath(LibC.AtFdCwd, path, 0, LibC.StatxBasicStats, &stat) == 0 && (stat.Mode & LibC.SIfMt) == LibC.SIfBlk;
    }

    private static unsafe long BlockDeviceSize(string path, SafeFileHandle handle)
    {
        ulong size;
        if (LibC.IoctlU64(handle, LibC.BlkGetSize64, &size) != 0)
            ThrowErrno(path, "get the size (BLKGETSIZE64) of", 0, 0);
        return checked((long)size);
    }

    private static void ThrowOpenError(string path)
    {
        var (errno, text) = LibC.LastError();
        ThrowOpenError(path, errno, text);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowOpenError(string path, int errno, string text)
    {
        var code = errno switch
        {
            LibC.ENoEnt => ErrorCode.FileNotFound,
            LibC.EIsDir => ErrorCode.InvalidArgument,
            LibC.ERoFs => ErrorCode.ReadOnlyDevice,
            LibC.EBusy => ErrorCode.DeviceInUse,
            _ => ErrorCode.IoError,
        };
        var what = errno switch
        {
            LibC.EIsDir => "is a directory, not an image file or block device",
            LibC.EBusy => "in use by the system (mounted or opened exclusively)",
            _ => text,
        };
        throw new BasaltException(code, $"{path}: cannot open: {what} (errno {errno})");
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    internal static void ThrowErrno(string path, string what, long offset, long length)
    {
        var (errno, text) = LibC.LastError();
        var code = errno switch
        {
            LibC.ENoSpc => ErrorCode.DeviceFull,
            LibC.ERoFs => ErrorCode.ReadOnlyDevice,
            _ => ErrorCode.IoError,
        };
        throw new BasaltException(code, string.Create(CultureInfo.InvariantCulture,
            $"{path}: cannot {what} at offset {offset}+{length}: {text} (errno {errno})"));
    }

    /// <summary>Which file a descriptor refers to, independent of the path used to open it.</summary>
    internal readonly record struct FileIdentity(uint DevMajor, uint DevMinor, ulong Inode);

    /// <summary>
    /// The locks of this process: who holds which file, so a second open from this process is refused
    /// with our own pid and POSIX record locks survive closes of other descriptors of the same file.
    /// </summary>
    private static class LockRegistry
    {
        private static readonly object s_gate = new();
        private static readonly Dictionary<FileIdentity, List<(FileBlockDevice Device, SafeFileHandle Handle)>> s_holders = [];

        public static FileBlockDevice Lock(string path, SafeFileHandle handle, FileIdentity identity, bool readOnly,
            Func<FileBlockDevice> create)
        {
            lock (s_gate)
            {
                if (s_holders.TryGetValue(identity, out var held) && (!readOnly || held.Exists(h => !h.Device.IsReadOnly)))
                {
                    // Closing our descriptor drops this process's record locks on the file: close it, then re-take them.
                    CloseUnlocked(handle);
                    Reassert(held);
                    ThrowInUse(path, Environment.ProcessId, held[0].Device.IsReadOnly);
                }

                if (LibC.FileLock(handle, (readOnly ? LibC.LockSh : LibC.LockEx) | LibC.LockNb) != 0)
                {
                    var (errno, _) = LibC.LastError();
                    if (errno != LibC.EAgain)
                        ThrowErrno(path, "lock (flock)", 0, 0);
                    var pid = HolderPid(handle, readOnly);
                    // A refused exclusive lock says nothing about the holder's: it is a reader
                    // only when a shared lock is granted (released when the caller closes the handle).
                    var holderReadOnly = !readOnly && LibC.FileLock(handle, LibC.LockSh | LibC.LockNb) == 0;
                    ThrowInUse(path, pid, holderReadOnly);
                }
                if (!SetRecordLock(handle, readOnly))
                {
                    // flock said free but a record lock is held: an older or foreign locker; still refuse.
                    var pid = HolderPid(handle, readOnly);
                    ThrowInUse(path, pid, holderReadOnly: !readOnly);
                }

                FileBlockDevice device;
                try
                {
                    device = create();
                }
                catch
                {
                    CloseUnlocked(handle);
                    if (held is not null)
                        Reassert(held);
                    throw;
                }
                if (held is null)
                    s_holders[identity] = held = [];
                held.Add((device, handle));
                return device;
            }
        }

        public static void Release(FileBlockDevice device, SafeFileHandle handle, FileIdentity identity)
        {
            lock (s_gate)
            {
                CloseUnlocked(handle);
                if (!s_holders.TryGetValue(identity, out var held))
                    return;
                held.RemoveAll(h => ReferenceEquals(h.Device, device));
                if (held.Count == 0)
                    s_holders.Remove(identity);
                else
                    Reassert(held);
            }
        }

        private static void Reassert(List<(FileBlockDevice Device, SafeFileHandle Handle)> held)
        {
            foreach (var (device, handle) in held)
                SetRecordLock(handle, device.IsReadOnly);
        }

        private static unsafe bool SetRecordLock(SafeFileHandle handle, bool readOnly)
        {
            var request = new LibC.Flock { Type = readOnly ? LibC.FRdLck : LibC.FWrLck, Whence = LibC.SeekSet, Start = 0, Len = 1 };
            if (LibC.FcntlLock(handle, LibC.FSetLk, &request) == 0)
                return true;
            var errno = LibC.LastError().Errno;
            // Filesystems without record locks: flock alone still excludes, only the pid report is lost.
            return errno is not (LibC.EAgain or LibC.EAcces);
        }

        /// <summary>The pid holding a conflicting record lock on byte 0, or 0 when none is visible.</summary>
        private static unsafe int HolderPid(SafeFileHandle handle, bool readOnly)
        {
            var probe = new LibC.Flock { Type = readOnly ? LibC.FRdLck : LibC.FWrLck, Whence = LibC.SeekSet, Start = 0, Len = 1 };
            if (LibC.FcntlLock(handle, LibC.FGetLk, &probe) != 0 || probe.Type == LibC.FUnLck)
                return 0;
            return probe.Pid;
        }

        [System.Diagnostics.CodeAnalysis.DoesNotReturn]
        private static void ThrowInUse(string path, int pid, bool holderReadOnly)
        {
            var who = pid > 0 ? string.Create(CultureInfo.InvariantCulture, $"pid {pid}") : "pid unknown";
            throw new BasaltException(ErrorCode.DeviceInUse,
                $"{path}: in use ({who}){(holderReadOnly ? ", opened read-only by the holder" : "")}");
        }
    }
}
