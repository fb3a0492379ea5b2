// File contents and attributes: read, write, truncate, setattr.
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Transactions;

namespace Basalt.Fs;

public sealed partial class Files
{
    /// <summary>
    /// Reads up to <paramref name="destination"/>.Length bytes at <paramref name="offset"/>; returns
    /// how many (fewer at the end of the file, 0 past it). Holes read as zeros; lost or corrupt
    /// data is an I/O error naming the inode and offset.
    /// </summary>
    public int Read(ulong ino, long offset, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var attr = GetAttr(ino);
        if (attr.IsDirectory)
            BasaltException.Throw(ErrorCode.IsDirectory, $"inode {ino} is a directory");
        if ((ulong)offset >= attr.Size || destination.IsEmpty)
        {
            MaybeTouchAtime(ino, attr.Inode);
            return 0;
        }
        var length = (int)Math.Min((ulong)destination.Length, attr.Size - (ulong)offset);
        _data.Read(ino, offset, destination[..length]);
        MaybeTouchAtime(ino, attr.Inode);
        return length;
    }

    private void MaybeTouchAtime(ulong ino, in InodeValue inode)
    {
        if (_transactor is null || Atime == AtimeMode.Noatime)
            return;
        var now = Now();
        if (Atime == AtimeMode.Relatime && inode.AtimeNs > inode.MtimeNs && inode.AtimeNs > inode.CtimeNs && now - inode.AtimeNs < DayNs)
            return;
        Writer.Transact(t =>
        {
            if (!TryReadInode(t, ino, out var current))
                return;
            current.AtimeNs = now;
            PutInode(t, ino, current);
        });
    }

    /// <summary>
    /// Writes <paramref name="data"/> at <paramref name="offset"/> of a regular file, extending its
    /// size. With <paramref name="sync"/> the write is durable when this returns. A large write
    /// commits in several transactions; after a crash a prefix of it may remain, and the size
    /// covers only what did.
    /// </summary>
    public void Write(ulong ino, long offset, ReadOnlySpan<byte> data, bool sync = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var attr = GetAttr(ino);
        RequireRegular(ino, attr.Inode);
        if (offset + (long)data.Length > MaxFileSize)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"write to inode {ino} would pass the largest file size ({MaxFileSize} bytes)");
        if (data.IsEmpty)
            return;
        var end = (ulong)(offset + data.Length);
        var now = Now();
        _data.Write(ino, offset, data, sync ? CommitOptions.Durable : default, (t, committedEnd) =>
        {
            var inode = ReadInode(t, ino);
            var size = Math.Min(end, committedEnd);
            if (size > inode.Size)
                inode.Size = size;
            inode.MtimeNs = inode.CtimeNs = now;
            PutInode(t, ino, inode);
        });
    }

    private static void RequireRegular(ulong ino, in InodeValue inode)
    {
        if (inode.IsDirectory)
            BasaltException.Throw(ErrorCode.IsDirectory, $"inode {ino} is a directory");
        if (inode.Type != FileType.Regular)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"inode {ino} is a {FileModes.ToText(inode.Type)}, not a regular file");
    }

    /// <summary>Sets the size of a regular file: growing adds a hole, shrinking removes the data past the new end.</summary>
    public void Truncate(ulong ino, long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        if (size > MaxFileSize)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"size {size} is past the largest file size ({MaxFileSize} bytes)");
        SetAttr(ino, new SetAttrRequest(Size: size));
    }

    /// <summary>Changes mode bits, owner, size and times; ctime becomes now. Returns the new attributes.</summary>
    public InodeAttr SetAttr(ulong ino, in SetAttrRequest request)
    {
        var now = Now();
        var change = request;
        var current = GetAttr(ino);
        if (change.Size is { } size)
        {
            RequireRegular(ino, current.Inode);
            ArgumentOutOfRangeException.ThrowIfNegative(size);
            if ((ulong)size < current.Size && current.Inode.Sectors > 0)
            {
                // Cutting extents takes batches: the intent and the new size commit first, the cut follows.
                Writer.Transact(t =>
                {
                    var inode = ReadInode(t, ino);
                    t.Set(BtreeId.LoggedOps, new Bkey(FsPositions.Truncate(ino), KeyType.LoggedOpTruncate),
                        new TruncateIntent((ulong)size).ToBytes());
                    Apply(ref inode, change, now);
                    PutInode(t, ino, inode);
                });
                CutExtents(ino, (ulong)size);
                return GetAttr(ino);
            }
        }
        var updated = Writer.Transact(t =>
        {
            var inode = ReadInode(t, ino);
            Apply(ref inode, change, now);
            PutInode(t, ino, inode);
            return inode;
        });
        return new InodeAttr(ino, updated);
    }

    private static void Apply(ref InodeValue inode, in SetAttrRequest change, long now)
    {
        if (change.Mode is { } mode)
            inode.Mode = (inode.Mode & FileModes.TypeMask) | (mode & FileModes.PermissionMask);
        if (change.Uid is { } uid)
            inode.Uid = uid;
        if (change.Gid is { } gid)
            inode.Gid = gid;
        if (change.Size is { } size)
        {
            if ((ulong)size != inode.Size)
                inode.MtimeNs = now;
            inode.Size = (ulong)size;
        }
        if (change.AtimeNs is { } atime)
            inode.AtimeNs = Resolve(atime, now);
        if (change.MtimeNs is { } mtime)
            inode.MtimeNs = Resolve(mtime, now);
        inode.CtimeNs = now;
    }

    /// <summary>Removes the extents past <paramref name="size"/> in batches, then the truncate intent.</summary>
    internal void CutExtents(ulong ino, ulong size)
    {
        if (TryGetInode(ino, out _))
            _data.Punch(ino, (long)size, (long.MaxValue / 512 * 512) - (long)size);
        Writer.Transact(t => t.Delete(BtreeId.LoggedOps, FsPositions.Truncate(ino)));
    }
}
