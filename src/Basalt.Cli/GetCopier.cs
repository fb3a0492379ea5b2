// The copy of `basalt get`: an image tree onto the local filesystem, entry by entry, every local
// call relative to an open directory descriptor (LocalFs) and every name bytes.
//
// Per entry, as PutCopier in the other direction: the type; a regular file's data only where the
// image holds extents (fs.Data.Map), widened to whole local blocks, then ftruncate to the size,
// so holes stay holes at the local block size; then owner (root only), mode, the xattrs and the
// access and modification times in nanoseconds (utimensat, not following a symlink). A
// directory is created 0700 and gets its own mode and times after its entries. Hard links within
// the copied set are tracked by image inode; a later name of one is linked to the local path of
// the first (linkat on the path, the one call here not relative to a descriptor: the first name's
// directory is closed by then). Existing entries are treated as PutCopier treats them.
//
// The image is mounted read-only: reading never updates an access time in it.
using Basalt.Cli.Local;
using Basalt.Data;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Errno = Basalt.Cli.Local.Errno;

namespace Basalt.Cli;

internal sealed class GetCopier
{
    private const uint NewDirectoryPermissions = 0x1C0; // 0700 until its entries are in

    private readonly BasaltFileSystem _fs;
    private readonly Files _files;
    private readonly TreeCopy _copy;
    private readonly Dictionary<ulong, byte[]> _links = [];

    public GetCopier(BasaltFileSystem fs, TreeCopy copy)
    {
        _fs = fs;
        _files = fs.Files;
        _copy = copy;
    }

    /// <summary>
    /// Copies image path <paramref name="source"/> (not followed if a symlink) as
    /// <paramref name="name"/> in local directory <paramref name="dir"/>; a null name merges a
    /// directory into <paramref name="dir"/> itself.
    /// </summary>
    public void CopyTop(byte[] source, LocalFd dir, byte[]? name)
    {
        var attr = _files.ResolvePath(source, followLast: false);
        if (name is null)
        {
            if (!attr.IsDirectory)
                throw new BasaltException(ErrorCode.InvalidArgument, $"'{TreeCopy.Text(source)}' names no entry to copy");
            CopyDirectoryInto(dir, [], attr, source);
            return;
        }
        CopyEntry(dir, name, attr, source);
    }

    private void CopyEntry(LocalFd dir, byte[] name, InodeAttr attr, byte[] shown)
    {
        _copy.ThrowIfCancelled();
        var existing = TryStat(dir, name);
        var local = dir.PathOf(name);
        if (attr.IsDirectory)
        {
            if (existing is { } e)
            {
                if (e.Type != LocalFileType.Directory)
                    throw new BasaltException(ErrorCode.NotDirectory, $"cannot overwrite non-directory '{TreeCopy.Text(local)}' with directory '{TreeCopy.Text(shown)}'");
            }
            else
            {
                LocalFs.CreateDirectory(dir, name, NewDirectoryPermissions);
            }
            CopyDirectoryInto(dir, name, attr, shown);
            return;
        }
        if (existing is { Type: LocalFileType.Directory })
            throw new BasaltException(ErrorCode.IsDirectory, $"cannot overwrite directory '{TreeCopy.Text(local)}' with non-directory '{TreeCopy.Text(shown)}'");

        if (attr.Nlink > 1 && _links.TryGetValue(attr.Ino, out var first))
        {
            if (existing is not null)
                LocalFs.Remove(dir, name);
            LocalFs.CreateHardLink(LocalFd.CurrentDirectory, first, dir, name);
            _copy.FileDone();
            return;
        }

        var permissions = attr.Mode & FileModes.PermissionMask;
        switch (attr.Type)
        {
            case FileType.Regular:
                var truncate = existing is { Type: LocalFileType.Regular };
                if (existing is not null && !truncate)
                    LocalFs.Remove(dir, name);
                using (var fd = truncate
                    ? LocalFs.Open(dir, name, LocalLibC.OWrOnly | LocalLibC.OTrunc | LocalLibC.ONoFollow)
                    : LocalFs.CreateFile(dir, name, 0x180))
                {
                    _copy.Partial = TreeCopy.Text(local);
                    CopyData(fd, attr, shown, local);
                }
                break;
            case FileType.Symlink:
                byte[] target;
                try
                {
                    target = _files.ReadLink(attr.Ino);
                }
                catch (BasaltException e) when (e.Class == ErrorClass.Io)
                {
                    _copy.ReportUnreadable($"'{TreeCopy.Text(shown)}': Input/output error: the symlink's target cannot be read ({CliContext.OneLine(e.Message)}); not copied");
                    return;
                }
                Replace(dir, name, existing);
                LocalFs.CreateSymlink(dir, name, target);
                break;
            case FileType.Fifo:
                Replace(dir, name, existing);
                LocalFs.CreateFifo(dir, name, permissions);
                break;
            case FileType.Socket:
                Replace(dir, name, existing);
                LocalFs.CreateNode(dir, name, LocalFs.ModeSocket | permissions);
                break;
            case FileType.CharDevice:
            case FileType.BlockDevice:
                if (!_copy.Privileged)
                {
                    _copy.Warn("devices", $"device nodes are created only as root; skipped '{TreeCopy.Text(shown)}' and any others");
                    return;
                }
                Replace(dir, name, existing);
                LocalFs.CreateNode(dir, name, (attr.Type == FileType.CharDevice ? LocalFs.ModeCharDevice : LocalFs.ModeBlockDevice) | permissions,
                    attr.Inode.Rdev);
                break;
            default:
                _copy.Warn("unknown", $"skipped '{TreeCopy.Text(shown)}' and any other file of an unknown type ({FileModes.ToText(attr.Type)})");
                return;
        }
        if (attr.Nlink > 1)
            _links[attr.Ino] = local;
        SetAttributes(dir, name, attr);
        _copy.FileDone();
    }

    private void CopyDirectoryInto(LocalFd dir, byte[] name, InodeAttr attr, byte[] shown)
    {
        // An empty name is the destination directory itself (a merge of "/" or "."): its own
        // attributes are left alone, as cp leaves those of an existing target.
        var merge = name.Length == 0;
        using (var local = merge ? LocalFs.OpenDirectory(dir, "."u8) : LocalFs.OpenDirectory(dir, name))
        {
            for (long cookie = 0; ;)
            {
                var entries = _files.ReadDir(attr.Ino, cookie, 256);
                if (entries.Count == 0)
                    break;
                foreach (var entry in entries)
                {
                    cookie = entry.Next;
                    if (Names.IsDot(entry.Name) || Names.IsDotDot(entry.Name))
                        continue;
                    _copy.ThrowIfCancelled();
                    CopyEntry(local, entry.Name, _files.GetAttr(entry.Ino), TreeCopy.Join(shown, entry.Name));
                }
            }
        }
        if (!merge)
            SetAttributes(dir, name, attr);
        _copy.DirectoryDone();
    }

    private static void Replace(LocalFd dir, byte[] name, LocalStat? existing)
    {
        if (existing is not null)
            LocalFs.Remove(dir, name);
    }

    private static LocalStat? TryStat(LocalFd dir, byte[] name)
    {
        try
        {
            return LocalFs.Stat(dir, name);
        }
        catch (LocalFsException e) when (e.Errno == Errno.ENOENT)
        {
            return null;
        }
    }

    /// <summary>
    /// Writes the ranges the image holds extents for, widened to whole local blocks, then sets the
    /// size. A chunk that cannot be read is read again in pieces of <see cref="SalvagePiece"/>
    /// bytes; the pieces that still fail stay holes, and the file is reported once with the bytes
    /// lost.
    /// </summary>
    private void CopyData(LocalFd fd, InodeAttr attr, byte[] shown, byte[] local)
    {
        var size = (long)attr.Size;
        var blockSize = Math.Max(FormatLimits.SectorSize, LocalFs.Stat(fd).BlockSize);
        var buffer = _copy.Buffer;
        long lost = 0, firstLost = -1;
        string? firstError = null;
        foreach (var (start, end) in DataRanges(attr.Ino, size, blockSize))
        {
            for (var at = start; at < end;)
            {
                _copy.ThrowIfCancelled();
                var want = (int)Math.Min(buffer.Length, end - at);
                int read;
                try
                {
                    read = _files.Read(attr.Ino, at, buffer.AsSpan(0, want));
                }
                catch (BasaltException e) when (e.Class == ErrorClass.Io)
                {
                    firstError ??= CliContext.OneLine(e.Message);
                    var missed = Salvage(fd, attr.Ino, at, want, ref firstLost);
                    lost += missed;
                    at += want;
                    continue;
                }
                if (read == 0)
                    break;
                LocalFs.WriteAt(fd, buffer.AsSpan(0, read), at);
                _copy.AddBytes(read);
                at += read;
            }
        }
        LocalFs.Truncate(fd, size);
        _copy.Partial = null;
        if (firstError is not null)
        {
            _copy.ReportUnreadable(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"'{TreeCopy.Text(shown)}': Input/output error: {lost} {(lost == 1 ? "byte" : "bytes")} cannot be read, the first at offset {firstLost} ({firstError}); '{TreeCopy.Text(local)}' holds zeros there"));
        }
    }

    /// <summary>Bytes per read when a chunk that failed is read again piece by piece.</summary>
    private const int SalvagePiece = 4096;

    /// <summary>Copies what can be read of a chunk that failed, piece by piece; returns the bytes that could not be read.</summary>
    private long Salvage(LocalFd fd, ulong ino, long start, int length, ref long firstLost)
    {
        var piece = _copy.Buffer.AsSpan(0, SalvagePiece);
        long lost = 0;
        for (var at = start; at < start + length; at += SalvagePiece)
        {
            var want = (int)Math.Min(SalvagePiece, start + length - at);
            try
            {
                var read = _files.Read(ino, at, piece[..want]);
                LocalFs.WriteAt(fd, piece[..read], at);
                _copy.AddBytes(read);
            }
            catch (BasaltException e) when (e.Class == ErrorClass.Io)
            {
                if (firstLost < 0)
                    firstLost = at;
                lost += want;
            }
        }
        return lost;
    }

    /// <summary>The byte ranges holding data extents, widened to whole local blocks, clipped to the size, merged.</summary>
    private List<(long Start, long End)> DataRanges(ulong ino, long size, long blockSize)
    {
        var ranges = new List<(long Start, long End)>();
        var endSector = (ulong)((size + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize);
        foreach (var (key, _) in _fs.Data.Map(ino, 0, endSector))
        {
            if (!key.Type.HoldsData())
                continue; // a hole or a reservation reads as zeros; lost data is read so the error names the file
            var (start, end) = TreeCopy.ToBlocks((long)(key.Pos.Offset - key.Size) * FormatLimits.SectorSize,
                (long)key.Pos.Offset * FormatLimits.SectorSize, blockSize, size);
            if (start >= end)
                continue;
            if (ranges.Count > 0 && start <= ranges[^1].End)
                ranges[^1] = (ranges[^1].Start, Math.Max(end, ranges[^1].End));
            else
                ranges.Add((start, end));
        }
        return ranges;
    }

    /// <summary>Owner (root only), mode, xattrs, then the times last (every earlier step changes them).</summary>
    private void SetAttributes(LocalFd dir, byte[] name, InodeAttr attr)
    {
        var inode = attr.Inode;
        if (_copy.Privileged)
            LocalFs.SetOwner(dir, name, inode.Uid, inode.Gid);
        else if (inode.Uid != _copy.Uid || inode.Gid != _copy.Gid)
            _copy.Warn("owners", "owners are kept only as root: the copies belong to the user running basalt");
        if (attr.Type != FileType.Symlink)
            LocalFs.SetMode(dir, name, inode.Mode & FileModes.PermissionMask);
        foreach (var attribute in _files.ListXattrs(attr.Ino))
        {
            if (!Keep(attribute))
                continue;
            try
            {
                LocalFs.SetXattr(dir, name, attribute, _files.GetXattr(attr.Ino, attribute));
            }
            catch (LocalFsException e) when (e.Errno is Errno.EOPNOTSUPP or Errno.EPERM)
            {
                _copy.Warn($"xattr-refused-{e.Errno}", $"the local filesystem refuses some xattrs ({LocalFsException.ErrnoText(e.Errno)}), " +
                    $"first '{TreeCopy.Text(attribute)}' of '{TreeCopy.Text(dir.PathOf(name))}'; skipped");
            }
        }
        LocalFs.SetTimes(dir, name, inode.AtimeNs, inode.MtimeNs);
    }

    private bool Keep(ReadOnlySpan<byte> attribute)
    {
        if (attribute.StartsWith("user."u8) || _copy.Privileged)
            return true;
        _copy.Warn("xattr-privileged", "trusted. and security. xattrs are created only as root; skipped");
        return false;
    }

    /// <summary>The data bytes and entries below the sources, for the progress bar's total.</summary>
    public static (long Bytes, long Files) Measure(Files files, IEnumerable<byte[]> sources)
    {
        long bytes = 0, count = 0;
        void Walk(InodeAttr attr)
        {
            if (!attr.IsDirectory)
            {
                count++;
                if (attr.Type == FileType.Regular)
                    bytes += Math.Min((long)attr.Size, (long)attr.Inode.Sectors * FormatLimits.SectorSize);
                return;
            }
            for (long cookie = 0; ;)
            {
                var entries = files.ReadDir(attr.Ino, cookie, 256);
                if (entries.Count == 0)
                    return;
                foreach (var entry in entries)
                {
                    cookie = entry.Next;
                    if (!Names.IsDot(entry.Name) && !Names.IsDotDot(entry.Name) && files.TryGetAttr(entry.Ino, out var child))
                        Walk(child);
                }
            }
        }
        foreach (var source in sources)
        {
            if (files.TryResolvePath(source, followLast: false, out var attr, out _))
                Walk(attr);
        }
        return (bytes, count);
    }
}
