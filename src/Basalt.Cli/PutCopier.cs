// The copy of `basalt put`: a local tree into the image, entry by entry, names as bytes from
// getdents64 to the image's dirents.
//
// Per entry: the type (directories, regular files, symlinks with their target bytes as they are,
// FIFOs, sockets as socket nodes, device nodes as root), the data of a regular file by its data
// ranges (LocalFs.DataRanges, granular to the local blocks) so holes stay holes, then the size,
// the xattrs, owner, mode and the access and modification times in nanoseconds. A directory's
// attributes are set after its entries, whose creation changes its times. Hard links within the
// copied set are tracked by the local (dev, ino) of files with more than one link and made links
// in the image. An existing non-directory is replaced: a regular file onto a regular file keeps
// the inode and gets the new contents, anything else is unlinked first; a directory merges into
// an existing directory; a directory onto a non-directory, or the reverse, is an error.
//
// The image file is skipped when the source tree holds it (copying it into itself would never end).
using Basalt.Cli.Local;
using Basalt.Diagnostics;
using Basalt.Fs;
using Errno = Basalt.Cli.Local.Errno;

namespace Basalt.Cli;

internal sealed class PutCopier
{
    private readonly Files _files;
    private readonly TreeCopy _copy;
    private readonly Dictionary<(ulong Dev, ulong Ino), ulong> _links = [];
    private readonly (ulong Dev, ulong Ino)? _image;
    private readonly bool _fsync;
    private readonly Action<byte[]>? _synced;

    /// <param name="synced">With <paramref name="fsync"/>: told the image path of each file once it is durable.</param>
    public PutCopier(BasaltFileSystem fs, TreeCopy copy, string imagePath, bool fsync = false, Action<byte[]>? synced = null)
    {
        _files = fs.Files;
        _fsync = fsync;
        _synced = synced;
        _copy = copy;
        try
        {
            var image = LocalFs.Stat(LocalFd.CurrentDirectory, System.Text.Encoding.UTF8.GetBytes(imagePath));
            _image = (image.Dev, image.Ino);
        }
        catch (LocalFsException)
        {
            _image = null;
        }
    }

    /// <summary>
    /// Copies the local <paramref name="source"/> (a path, not followed if a symlink) as
    /// <paramref name="name"/> in directory <paramref name="parent"/>; a null name merges a source
    /// directory into <paramref name="parent"/> itself. <paramref name="shown"/> is the image path for messages.
    /// </summary>
    public void CopyTop(byte[] source, ulong parent, byte[]? name, byte[] shown)
    {
        var stat = LocalFs.Stat(LocalFd.CurrentDirectory, source);
        if (name is null)
        {
            if (stat.Type != LocalFileType.Directory)
                throw new BasaltException(ErrorCode.InvalidArgument, $"'{TreeCopy.Text(source)}' names no entry to copy");
            CopyDirectoryInto(LocalFd.CurrentDirectory, source, stat, parent, shown);
            return;
        }
        CopyEntry(LocalFd.CurrentDirectory, source, stat, parent, name, shown);
    }

    private void CopyEntry(LocalFd dir, byte[] localName, in LocalStat stat, ulong parent, byte[] name, byte[] shown)
    {
        _copy.ThrowIfCancelled();
        if (_image == (stat.Dev, stat.Ino))
        {
            _copy.Warn("image", $"skipped '{TreeCopy.Text(dir.PathOf(localName))}': it is the image being written");
            return;
        }
        if (name.Length > Names.MaxLength)
        {
            throw new BasaltException(ErrorCode.NameTooLong,
                $"'{TreeCopy.Text(shown)}': a name of {name.Length} bytes is too long for the image (at most {Names.MaxLength})");
        }
        if (Names.Check(name) is { } problem)
            throw new BasaltException(ErrorCode.InvalidArgument, $"'{TreeCopy.Text(shown)}': {problem}");
        var existing = _files.TryLookup(parent, name, out var old) ? old : (InodeAttr?)null;
        if (stat.Type == LocalFileType.Directory)
        {
            CopyDirectory(dir, localName, stat, parent, name, existing, shown);
            return;
        }
        if (existing is { IsDirectory: true })
            throw new BasaltException(ErrorCode.IsDirectory, $"cannot overwrite directory '{TreeCopy.Text(shown)}' with non-directory '{TreeCopy.Text(dir.PathOf(localName))}'");

        if (stat.Nlink > 1 && _links.TryGetValue((stat.Dev, stat.Ino), out var linked))
        {
            if (existing is { } e && e.Ino != linked)
                _files.Unlink(parent, name);
            if (existing is null || existing.Value.Ino != linked)
                _files.Link(linked, parent, name);
            _copy.FileDone();
            return;
        }

        var (uid, gid) = Owner(stat);
        var permissions = stat.Permissions;
        ulong ino;
        switch (stat.Type)
        {
            case LocalFileType.Regular:
                // Opened before anything changes in the image: an unreadable source leaves no empty copy.
                using (var fd = OpenSource(dir, localName))
                {
                    if (existing is { Type: FileType.Regular } regular)
                    {
                        ino = regular.Ino;
                        _files.Truncate(ino, 0);
                    }
                    else
                    {
                        Replace(parent, name, existing);
                        ino = _files.Create(parent, name, permissions, uid, gid).Ino;
                    }
                    _copy.Partial = TreeCopy.Text(shown);
                    CopyData(fd, ino);
                    _copy.Partial = null;
                }
                break;
            case LocalFileType.Symlink:
                var target = LocalFs.ReadLink(dir, localName);
                Replace(parent, name, existing);
                ino = _files.Symlink(parent, name, target, uid, gid).Ino;
                break;
            case LocalFileType.Fifo:
            case LocalFileType.Socket:
                Replace(parent, name, existing);
                ino = _files.Mknod(parent, name, stat.Mode, 0, uid, gid).Ino;
                break;
            case LocalFileType.CharDevice:
            case LocalFileType.BlockDevice:
                if (!_copy.Privileged)
                {
                    _copy.Warn("devices", $"device nodes are copied only as root; skipped '{TreeCopy.Text(dir.PathOf(localName))}' and any others");
                    return;
                }
                Replace(parent, name, existing);
                ino = _files.Mknod(parent, name, stat.Mode, stat.Rdev, uid, gid).Ino;
                break;
            default:
                _copy.Warn("unknown", $"skipped '{TreeCopy.Text(dir.PathOf(localName))}' and any other file of an unknown type (mode {Convert.ToString(stat.Mode, 8)})");
                return;
        }
        if (stat.Nlink > 1)
            _links[(stat.Dev, stat.Ino)] = ino;
        SetAttributes(dir, localName, stat, ino);
        if (_fsync)
        {
            _files.Fsync(ino);
            _synced?.Invoke(shown);
        }
        _copy.FileDone();
    }

    private void CopyDirectory(LocalFd dir, byte[] localName, in LocalStat stat, ulong parent, byte[] name, InodeAttr? existing, byte[] shown)
    {
        ulong ino;
        if (existing is { } e)
        {
            if (!e.IsDirectory)
                throw new BasaltException(ErrorCode.NotDirectory, $"cannot overwrite non-directory '{TreeCopy.Text(shown)}' with directory '{TreeCopy.Text(dir.PathOf(localName))}'");
            ino = e.Ino;
        }
        else
        {
            var (uid, gid) = Owner(stat);
            ino = _files.Mkdir(parent, name, stat.Permissions, uid, gid).Ino;
        }
        CopyDirectoryInto(dir, localName, stat, ino, shown);
    }

    private void CopyDirectoryInto(LocalFd dir, byte[] localName, in LocalStat stat, ulong ino, byte[] shown)
    {
        using (var local = LocalFs.OpenDirectory(dir, localName))
        {
            foreach (var entry in LocalFs.ReadDirectory(local))
            {
                _copy.ThrowIfCancelled();
                var child = LocalFs.Stat(local, entry.Name);
                CopyEntry(local, entry.Name, child, ino, entry.Name, TreeCopy.Join(shown, entry.Name));
            }
        }
        SetAttributes(dir, localName, stat, ino);
        _copy.DirectoryDone();
    }

    private void Replace(ulong parent, byte[] name, InodeAttr? existing)
    {
        if (existing is not null)
            _files.Unlink(parent, name);
    }

    /// <summary>The owner in the image: the local one as root, else the caller's (with a warning when that loses one).</summary>
    private (uint Uid, uint Gid) Owner(in LocalStat stat)
    {
        if (_copy.Privileged)
            return (stat.Uid, stat.Gid);
        if (stat.Uid != _copy.Uid || stat.Gid != _copy.Gid)
            _copy.Warn("owners", "owners are kept only as root: the copies belong to the user running basalt");
        return (_copy.Uid, _copy.Gid);
    }

    private static LocalFd OpenSource(LocalFd dir, byte[] localName)
    {
        var fd = LocalFs.OpenRead(dir, localName);
        if (LocalFs.Stat(fd).Type != LocalFileType.Regular)
        {
            fd.Dispose();
            throw new LocalFsException(Errno.EINVAL, "copy (it is no longer a regular file)", dir.PathOf(localName));
        }
        return fd;
    }

    /// <summary>Writes the data ranges only (holes stay holes), then the size.</summary>
    private void CopyData(LocalFd fd, ulong ino)
    {
        var size = LocalFs.Stat(fd).Size;
        var buffer = _copy.Buffer;
        foreach (var (offset, length) in LocalFs.DataRanges(fd))
        {
            for (var at = offset; at < offset + length;)
            {
                _copy.ThrowIfCancelled();
                var want = (int)Math.Min(buffer.Length, offset + length - at);
                var read = LocalFs.ReadAt(fd, buffer.AsSpan(0, want), at);
                if (read == 0)
                    break; // the file shrank since it was measured
                _files.Write(ino, at, buffer.AsSpan(0, read));
                _copy.AddBytes(read);
                at += read;
            }
        }
        if ((long)_files.GetAttr(ino).Size != size)
            _files.Truncate(ino, size);
    }

    /// <summary>Xattrs, then owner, mode and times in one setattr (last: every earlier step changes the times).</summary>
    private void SetAttributes(LocalFd dir, byte[] localName, in LocalStat stat, ulong ino)
    {
        foreach (var attribute in ListXattrs(dir, localName))
        {
            if (!Keep(attribute))
                continue;
            byte[] value;
            try
            {
                value = LocalFs.GetXattr(dir, localName, attribute);
            }
            catch (LocalFsException e) when (e.Errno == Errno.ENODATA)
            {
                continue; // removed since it was listed
            }
            _files.SetXattr(ino, attribute, value);
        }
        var (uid, gid) = Owner(stat);
        var mode = stat.Type == LocalFileType.Symlink ? (uint?)null : stat.Permissions;
        _files.SetAttr(ino, new SetAttrRequest(Mode: mode, Uid: uid, Gid: gid, AtimeNs: stat.AtimeNs, MtimeNs: stat.MtimeNs));
    }

    private static List<byte[]> ListXattrs(LocalFd dir, byte[] localName)
    {
        try
        {
            return LocalFs.ListXattrs(dir, localName);
        }
        catch (LocalFsException e) when (e.Errno is Errno.EOPNOTSUPP)
        {
            return [];
        }
    }

    private bool Keep(ReadOnlySpan<byte> attribute)
    {
        if (attribute.StartsWith("user."u8))
            return true;
        if (attribute.StartsWith("trusted."u8) || attribute.StartsWith("security."u8))
        {
            if (_copy.Privileged)
                return true;
            _copy.Warn("xattr-privileged", "trusted. and security. xattrs are copied only as root; skipped");
            return false;
        }
        _copy.Warn("xattr-namespace", $"xattrs outside user., trusted. and security. (such as '{TreeCopy.Text(attribute)}') have no place in the image; skipped");
        return false;
    }

    /// <summary>The data bytes and entries below the sources, for the progress bar's total.</summary>
    public static (long Bytes, long Files) Measure(IEnumerable<byte[]> sources)
    {
        long bytes = 0, files = 0;
        void Walk(LocalFd dir, byte[] name)
        {
            LocalStat stat;
            try
            {
                stat = LocalFs.Stat(dir, name);
            }
            catch (LocalFsException)
            {
                return; // the copy reports it
            }
            if (stat.Type != LocalFileType.Directory)
            {
                files++;
                if (stat.Type == LocalFileType.Regular)
                    bytes += Math.Min(stat.Size, stat.Blocks * 512);
                return;
            }
            try
            {
                using var local = LocalFs.OpenDirectory(dir, name);
                foreach (var entry in LocalFs.ReadDirectory(local))
                    Walk(local, entry.Name);
            }
            catch (LocalFsException)
            {
                // the copy reports it
            }
        }
        foreach (var source in sources)
            Walk(LocalFd.CurrentDirectory, source);
        return (bytes, files);
    }
}
