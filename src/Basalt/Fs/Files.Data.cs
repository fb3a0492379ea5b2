// File contents and attributes: read, write, truncate, setattr.
using Basalt.Data;
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
        var options = sync ? CommitOptions.Durable : default;
        Action<Transaction, ulong> grow = (t, committedEnd) =>
        {
            var inode = ReadInode(t, ino);
            var size = Math.Min(end, committedEnd);
            if (size > inode.Size)
                inode.Size = size;
            inode.MtimeNs = inode.CtimeNs = now;
            PutInode(t, ino, inode);
        };
        // A file that stays small keeps its data inline, in its extent key (ExtentStore.TryWriteInline).
        if (Math.Max(attr.Size, end) <= (ulong)_data.InlineLimit && _data.TryWriteInline(ino, offset, data, options, grow, out _))
            return;
        _data.Write(ino, offset, data, options, grow);
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

    // ---- fallocate ------------------------------------------------------------------------------

    /// <summary>
    /// fallocate(2) on a regular file. <see cref="FallocateFlags.None"/> allocates the range
    /// (reservation keys over its holes: they read as zeros and count in st_blocks) and extends the
    /// size to cover it; with <see cref="FallocateFlags.KeepSize"/> the size stays.
    /// <see cref="FallocateFlags.PunchHole"/> (with KeepSize, as Linux requires) makes the range a
    /// hole; <see cref="FallocateFlags.ZeroRange"/> makes it read as zeros and stay allocated. Whole
    /// sectors are allocated; partial sectors at the ends of a punch or zero range are zeroed.
    /// Basalt writes copy-on-write, so allocating cannot promise that later writes into the range
    /// find space: it fails with ENOSPC when the range does not fit now.
    /// </summary>
    public void Fallocate(ulong ino, FallocateFlags flags, long offset, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (length <= 0)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"fallocate of inode {ino}: length {length} is not positive");
        if (offset + length > MaxFileSize || offset + length < 0)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"fallocate of inode {ino} would pass the largest file size ({MaxFileSize} bytes)");
        var punch = (flags & FallocateFlags.PunchHole) != 0;
        var zero = (flags & FallocateFlags.ZeroRange) != 0;
        var keepSize = (flags & FallocateFlags.KeepSize) != 0;
        if ((flags & ~(FallocateFlags.KeepSize | FallocateFlags.PunchHole | FallocateFlags.ZeroRange)) != 0 || (punch && zero) || (punch && !keepSize))
            BasaltException.Throw(ErrorCode.NotSupported, $"fallocate of inode {ino}: mode {(int)flags:x} is not supported");
        var attr = GetAttr(ino);
        RequireRegular(ino, attr.Inode);
        var now = Now();
        var end = offset + length;
        void Touch(Transaction t)
        {
            var inode = ReadInode(t, ino);
            inode.MtimeNs = inode.CtimeNs = now;
            PutInode(t, ino, inode);
        }
        if (punch)
        {
            _data.Punch(ino, offset, length, default, Touch);
            return;
        }
        var first = (ulong)(offset / 512);
        var last = (ulong)((end + 511) / 512);
        if (zero)
        {
            // Partial sectors at the ends become zeros in place; the whole sectors are cleared and
            // reserved together below, so a small zero range is one transaction.
            var alignedStart = (long)first * 512 == offset ? offset : Math.Min(end, ((long)first + 1) * 512);
            var alignedEnd = end % 512 == 0 ? end : Math.Max(alignedStart, end / 512 * 512);
            if (alignedStart > offset)
                _data.Punch(ino, offset, alignedStart - offset, default, Touch);
            if (alignedEnd < end && alignedEnd >= alignedStart)
                _data.Punch(ino, alignedEnd, end - alignedEnd, default, Touch);
            first = (ulong)(alignedStart / 512);
            last = (ulong)(alignedEnd / 512);
        }
        var holes = zero ? (long)(last - first) : HoleSectors(ino, first, last);
        if (holes > 0)
        {
            using var reservation = _space.Reserve(holes);
        }
        var at = first;
        while (true)
        {
            var done = Writer.Transact(t =>
            {
                ulong next;
                if (zero)
                {
                    next = ExtentEdits.Clear(t, ino, at, last, _data.PunchBatch);
                    if (next > at)
                        AddReservation(t, ino, at, next);
                }
                else
                {
                    next = ReserveHoles(t, ino, at, last, 64);
                }
                if (next >= last)
                {
                    var inode = ReadInode(t, ino);
                    if (!keepSize && (ulong)end > inode.Size)
                        inode.Size = (ulong)end;
                    inode.MtimeNs = inode.CtimeNs = now;
                    PutInode(t, ino, inode);
                }
                return next;
            });
            if (done >= last)
                return;
            at = done;
        }
    }

    /// <summary>Sectors of [first, last) no extent or reservation covers.</summary>
    private long HoleSectors(ulong ino, ulong first, ulong last)
    {
        long covered = 0;
        foreach (var (key, _) in _data.Map(ino, first, last))
        {
            var ks = Math.Max(key.Pos.Offset - key.Size, first);
            var ke = Math.Min(key.Pos.Offset, last);
            if (ke > ks)
                covered += (long)(ke - ks);
        }
        return (long)(last - first) - covered;
    }

    /// <summary>In a transaction: reservation keys over the holes of [from, to), at most <paramref name="maxKeys"/>; returns where it stopped.</summary>
    private static ulong ReserveHoles(Transaction t, ulong ino, ulong from, ulong to, int maxKeys)
    {
        var keys = t.Range(BtreeId.Extents, ExtentStore.EndPos(ino, from + 1), ExtentStore.EndPos(ino, ulong.MaxValue - 1), maxKeys);
        var at = from;
        var added = 0;
        foreach (var (key, _) in keys)
        {
            var ks = key.Pos.Offset - key.Size;
            if (ks >= to)
                break;
            if (ks > at)
            {
                AddReservation(t, ino, at, ks);
                added++;
            }
            at = Math.Max(at, key.Pos.Offset);
            if (at >= to || added == maxKeys)
                return Math.Min(at, to);
        }
        if (keys.Count == maxKeys && at < to && keys[^1].Key.Pos.Offset - keys[^1].Key.Size < to)
            return at;
        if (at < to)
            AddReservation(t, ino, at, to);
        return to;
    }

    private static void AddReservation(Transaction t, ulong ino, ulong start, ulong end)
    {
        // A key's size is 32 bits: a larger hole takes several keys.
        while (start < end)
        {
            var size = (uint)Math.Min(end - start, uint.MaxValue / 2);
            t.Set(BtreeId.Extents, new Bkey(ExtentStore.EndPos(ino, start + size), KeyType.Reservation, size), []);
            start += size;
        }
    }
}
