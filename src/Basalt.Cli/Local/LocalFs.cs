// The local Linux filesystem on byte names, for copying file trees between it and a Basalt image
// (`basalt put`, `basalt get`). .NET's file APIs hold names as UTF-16 strings and cannot name a
// file whose name is not UTF-8, so this layer calls libc directly (LocalLibC) and every name is
// a byte span.
//
// Decisions:
// - Everything below a start path is reached relative to an open directory descriptor (openat,
//   statx, mkdirat, ... on a LocalFd), never by re-resolving a path string: a tree renamed or
//   swapped for a symlink while it is copied cannot redirect the copy. LocalFd.CurrentDirectory
//   (AT_FDCWD) resolves the start path itself.
// - The last component is never followed: opens add O_NOFOLLOW unless asked otherwise, statx,
//   fchownat, fchmodat and utimensat take AT_SYMLINK_NOFOLLOW, linkat links a symlink itself,
//   and the extended-attribute calls are the l* ones. Every descriptor is O_CLOEXEC.
// - Extended attributes have no *at form, so they are reached by the path
//   "/proc/self/fd/<dir fd>/<name>": the kernel resolves /proc/self/fd/N to the directory the
//   descriptor holds (as the *at calls do), and the l* call does not follow the final name. That
//   keeps the descriptor-relative guarantee and never exceeds PATH_MAX for a name below 256 bytes.
// - A failure is a LocalFsException with the errno, the operation and the escaped path
//   (dir.Path + '/' + name, for messages). EINTR is retried where it can happen on a local file
//   (open of a FIFO or device, read, write); close is never retried.
// - Names are NUL-terminated into a stack buffer when short; a name holding a NUL byte cannot be
//   given to the kernel and fails with EINVAL like any other bad name.
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Basalt.Cli.Local;

internal static partial class LocalFs
{
    // Long enough for any single name (NAME_MAX is 255); longer relative paths take a heap array.
    private const int NameScratch = 256 + 1;

    public const uint ModeFifo = (uint)LocalFileType.Fifo;
    public const uint ModeSocket = (uint)LocalFileType.Socket;
    public const uint ModeCharDevice = (uint)LocalFileType.CharDevice;
    public const uint ModeBlockDevice = (uint)LocalFileType.BlockDevice;

    /// <summary>openat(dir, name, flags | O_CLOEXEC, mode): the general form (flags are LocalLibC's O_* constants).</summary>
    public static LocalFd Open(LocalFd dir, ReadOnlySpan<byte> name, int flags, uint mode = 0)
    {
        Span<byte> scratch = stackalloc byte[NameScratch];
        var cName = Terminated(name, scratch, "open", dir);
        int fd;
        do
        {
            fd = LocalLibC.OpenAt(dir, cName, flags | LocalLibC.OCloExec, mode);
        }
        while (fd < 0 && LastErrno() == Errno.EINTR);
        if (fd < 0)
            ThrowLast("open", dir, name);
        return LocalFd.Own(fd, dir.PathOf(name));
    }

    /// <summary>A directory to list and to resolve names in. A symlink fails with ENOTDIR unless <paramref name="followSymlink"/>.</summary>
    public static LocalFd OpenDirectory(LocalFd dir, ReadOnlySpan<byte> name, bool followSymlink = false) =>
        Open(dir, name, LocalLibC.ORdOnly | LocalLibC.ODirectory | (followSymlink ? 0 : LocalLibC.ONoFollow));

    /// <summary>
    /// A file to read. A symlink fails with ELOOP; O_NONBLOCK keeps a FIFO or device swapped in
    /// since it was stat'ed from blocking the open (check the type with Stat(fd) before reading).
    /// </summary>
    public static LocalFd OpenRead(LocalFd dir, ReadOnlySpan<byte> name) =>
        Open(dir, name, LocalLibC.ORdOnly | LocalLibC.ONoFollow | LocalLibC.ONonBlock | LocalLibC.ONoCtty);

    /// <summary>A new regular file to write; fails with EEXIST if the name exists (as anything, a symlink included).</summary>
    public static LocalFd CreateFile(LocalFd dir, ReadOnlySpan<byte> name, uint mode) =>
        Open(dir, name, LocalLibC.OWrOnly | LocalLibC.OCreat | LocalLibC.OExcl | LocalLibC.ONoFollow, mode);

    /// <summary>An O_PATH descriptor of the name itself (a symlink included): for Stat and as a directory to resolve in.</summary>
    public static LocalFd OpenPath(LocalFd dir, ReadOnlySpan<byte> name) =>
        Open(dir, name, LocalLibC.OPath | LocalLibC.ONoFollow);

    /// <summary>
    /// The entries of a directory in the order the filesystem keeps them, without "." and "..".
    /// Lazy: the descriptor must stay open while it is enumerated; each enumeration starts over.
    /// </summary>
    public static IEnumerable<LocalDirEntry> ReadDirectory(LocalFd dir)
    {
        if (LocalLibC.Lseek(dir, 0, LocalLibC.SeekSet) < 0)
            ThrowLast("read directory", dir);
        var buffer = new byte[32 * 1024];
        while (true)
        {
            var filled = LocalLibC.GetDents64(dir, buffer, (nuint)buffer.Length);
            if (filled < 0)
                ThrowLast("read directory", dir);
            if (filled == 0)
                yield break;
            for (var offset = 0; offset < filled;)
            {
                var length = BitConverter.ToUInt16(buffer, offset + LocalLibC.DirentRecordLength);
                var entry = ReadDirent(buffer.AsSpan(offset, length));
                offset += length;
                if (entry is { } e)
                    yield return e;
            }
        }
    }

    // One struct linux_dirent64; null for "." and "..".
    private static LocalDirEntry? ReadDirent(ReadOnlySpan<byte> record)
    {
        var name = record[LocalLibC.DirentName..];
        var end = name.IndexOf((byte)0);
        if (end >= 0)
            name = name[..end];
        if (name is [(byte)'.'] or [(byte)'.', (byte)'.'])
            return null;
        return new LocalDirEntry(name.ToArray(), BitConverter.ToUInt64(record[LocalLibC.DirentIno..]), record[LocalLibC.DirentType]);
    }

    /// <summary>statx of a name without following a final symlink (lstat).</summary>
    public static LocalStat Stat(LocalFd dir, ReadOnlySpan<byte> name)
    {
        Span<byte> scratch = stackalloc byte[NameScratch];
        var cName = Terminated(name, scratch, "stat", dir);
        if (LocalLibC.Statx(dir, cName, LocalLibC.AtSymlinkNoFollow, LocalLibC.StatxBasicStats | LocalLibC.StatxBtime, out var buffer) < 0)
            ThrowLast("stat", dir, name);
        return LocalStat.From(buffer);
    }

    /// <summary>statx of an open descriptor (AT_EMPTY_PATH), an O_PATH one of a symlink included.</summary>
    public static LocalStat Stat(LocalFd fd)
    {
        ReadOnlySpan<byte> empty = [0];
        if (LocalLibC.Statx(fd, empty, LocalLibC.AtEmptyPath | LocalLibC.AtSymlinkNoFollow,
                LocalLibC.StatxBasicStats | LocalLibC.StatxBtime, out var buffer) < 0)
            ThrowLast("stat", fd);
        return LocalStat.From(buffer);
    }

    /// <summary>The target of a symlink, as bytes, whatever its length.</summary>
    public static byte[] ReadLink(LocalFd dir, ReadOnlySpan<byte> name)
    {
        Span<byte> scratch = stackalloc byte[NameScratch];
        var cName = Terminated(name, scratch, "read symlink", dir);
        // readlink truncates silently: a result that fills the buffer may be cut, so retry larger.
        for (var size = 256; ; size *= 2)
        {
            var buffer = new byte[size];
            var length = LocalLibC.ReadLinkAt(dir, cName, buffer, (nuint)size);
            if (length < 0)
                ThrowLast("read symlink", dir, name);
            if (length < size)
                return buffer.AsSpan(0, (int)length).ToArray();
        }
    }

    /// <summary>A symlink <paramref name="name"/> whose target is <paramref name="target"/> (bytes stored as given).</summary>
    public static void CreateSymlink(LocalFd dir, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target)
    {
        Span<byte> scratch = stackalloc byte[NameScratch];
        Span<byte> targetScratch = stackalloc byte[NameScratch];
        var cName = Terminated(name, scratch, "create symlink", dir);
        var cTarget = Terminated(target, targetScratch, "create symlink", dir, name);
        if (LocalLibC.SymlinkAt(cTarget, dir, cName) < 0)
            ThrowLast("create symlink", dir, name, target.ToArray());
    }

    /// <summary>A hard link <paramref name="newName"/> to <paramref name="oldName"/>; a symlink is linked itself, not followed.</summary>
    public static void CreateHardLink(LocalFd oldDir, ReadOnlySpan<byte> oldName, LocalFd newDir, ReadOnlySpan<byte> newName)
    {
        Span<byte> oldScratch = stackalloc byte[NameScratch];
        Span<byte> newScratch = stackalloc byte[NameScratch];
        var cOld = Terminated(oldName, oldScratch, "link", oldDir);
        var cNew = Terminated(newName, newScratch, "link", newDir);
        if (LocalLibC.LinkAt(oldDir, cOld, newDir, cNew, flags: 0) < 0)
            ThrowLast("link", newDir, newName, oldDir.PathOf(oldName));
    }

    public static void CreateDirectory(LocalFd dir, ReadOnlySpan<byte> name, uint mode)
    {
        Span<byte> scratch = stackalloc byte[NameScratch];
        var cName = Terminated(name, scratch, "create directory", dir);
        if (LocalLibC.MkdirAt(dir, cName, mode) < 0)
            ThrowLast("create directory", dir, name);
    }

    /// <summary>
    /// mknodat: a FIFO, socket, character or block device. <paramref name="mode"/> holds the type
    /// (ModeFifo, ModeSocket, ModeCharDevice, ModeBlockDevice) and the permission bits;
    /// <paramref name="device"/> is the device number (MakeDev) of a device, else 0.
    /// </summary>
    public static void CreateNode(LocalFd dir, ReadOnlySpan<byte> name, uint mode, ulong device = 0)
    {
        Span<byte> scratch = stackalloc byte[NameScratch];
        var cName = Terminated(name, scratch, "create node", dir);
        if (LocalLibC.MknodAt(dir, cName, mode, device) < 0)
            ThrowLast("create node", dir, name);
    }

    /// <summary>mkfifoat, which glibc implements as this mknodat.</summary>
    public static void CreateFifo(LocalFd dir, ReadOnlySpan<byte> name, uint permissions) =>
        CreateNode(dir, name, ModeFifo | (permissions & 0xFFF));

    /// <summary>Removes a name that is not a directory (unlinkat).</summary>
    public static void Remove(LocalFd dir, ReadOnlySpan<byte> name) => Unlink(dir, name, 0, "remove");

    /// <summary>Removes an empty directory (unlinkat with AT_REMOVEDIR).</summary>
    public static void RemoveDirectory(LocalFd dir, ReadOnlySpan<byte> name) =>
        Unlink(dir, name, LocalLibC.AtRemoveDir, "remove directory");

    private static void Unlink(LocalFd dir, ReadOnlySpan<byte> name, int flags, string action)
    {
        Span<byte> scratch = stackalloc byte[NameScratch];
        var cName = Terminated(name, scratch, action, dir);
        if (LocalLibC.UnlinkAt(dir, cName, flags) < 0)
            ThrowLast(action, dir, name);
    }

    /// <summary>
    /// Permission bits of a name, not following a symlink (fchmodat AT_SYMLINK_NOFOLLOW): a
    /// symlink fails with EOPNOTSUPP, as Linux symlinks have no mode of their own.
    /// </summary>
    public static void SetMode(LocalFd dir, ReadOnlySpan<byte> name, uint permissions)
    {
        Span<byte> scratch = stackalloc byte[NameScratch];
        var cName = Terminated(name, scratch, "change mode of", dir);
        if (LocalLibC.FchmodAt(dir, cName, permissions & 0xFFF, LocalLibC.AtSymlinkNoFollow) < 0)
            ThrowLast("change mode of", dir, name);
    }

    /// <summary>Permission bits of an open file or directory (fchmod; not an O_PATH descriptor).</summary>
    public static void SetMode(LocalFd fd, uint permissions)
    {
        if (LocalLibC.Fchmod(fd, permissions & 0xFFF) < 0)
            ThrowLast("change mode of", fd);
    }

    /// <summary>Owner and group of a name, a symlink itself included (lchown). Changing the owner clears set-user-id: set the mode after.</summary>
    public static void SetOwner(LocalFd dir, ReadOnlySpan<byte> name, uint uid, uint gid)
    {
        Span<byte> scratch = stackalloc byte[NameScratch];
        var cName = Terminated(name, scratch, "change owner of", dir);
        if (LocalLibC.FchownAt(dir, cName, uid, gid, LocalLibC.AtSymlinkNoFollow) < 0)
            ThrowLast("change owner of", dir, name);
    }

    /// <summary>Access and modification times in nanoseconds since the epoch, a symlink itself included.</summary>
    public static void SetTimes(LocalFd dir, ReadOnlySpan<byte> name, long atimeNs, long mtimeNs)
    {
        Span<byte> scratch = stackalloc byte[NameScratch];
        var cName = Terminated(name, scratch, "set times of", dir);
        ReadOnlySpan<LocalLibC.Timespec> times = [ToTimespec(atimeNs), ToTimespec(mtimeNs)];
        if (LocalLibC.UtimensAt(dir, cName, times, LocalLibC.AtSymlinkNoFollow) < 0)
            ThrowLast("set times of", dir, name);
    }

    // tv_nsec must be 0..999999999, so a time before the epoch rounds its seconds down.
    private static LocalLibC.Timespec ToTimespec(long ns)
    {
        var seconds = Math.DivRem(ns, 1_000_000_000L, out var rest);
        if (rest < 0)
        {
            seconds--;
            rest += 1_000_000_000L;
        }
        return new LocalLibC.Timespec { Seconds = seconds, Nanoseconds = rest };
    }

    /// <summary>A device number from its major and minor, as glibc's makedev combines them.</summary>
    public static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xFFFu) << 8) | ((ulong)(major & 0xFFFF_F000u) << 32)
        | (minor & 0xFFu) | ((ulong)(minor & 0xFFFF_FF00u) << 12);

    public static uint Major(ulong device) => (uint)(((device >> 8) & 0xFFF) | ((device >> 32) & 0xFFFF_F000));

    public static uint Minor(ulong device) => (uint)((device & 0xFF) | ((device >> 12) & 0xFFFF_FF00));

    private static Errno LastErrno() => (Errno)Marshal.GetLastPInvokeError();

    // The name followed by a NUL, in the scratch buffer when it fits. A NUL inside the name fails
    // here with EINVAL: the kernel would silently take only the part before it.
    private static ReadOnlySpan<byte> Terminated(ReadOnlySpan<byte> name, Span<byte> scratch, string action, LocalFd dir,
        ReadOnlySpan<byte> messageName = default)
    {
        if (name.Contains((byte)0))
            throw new LocalFsException(Errno.EINVAL, action, dir.PathOf(messageName.IsEmpty ? name : messageName));
        var terminated = name.Length < scratch.Length ? scratch[..(name.Length + 1)] : new byte[name.Length + 1];
        name.CopyTo(terminated);
        terminated[^1] = 0;
        return terminated;
    }

    [DoesNotReturn]
    private static void ThrowLast(string action, LocalFd dir, ReadOnlySpan<byte> name, byte[]? target = null) =>
        throw new LocalFsException(LastErrno(), action, dir.PathOf(name), target);

    [DoesNotReturn]
    private static void ThrowLast(string action, LocalFd fd) =>
        throw new LocalFsException(LastErrno(), action, fd.Path);
}
