// Reflink copies (FICLONE, FICLONERANGE): a range of one file shared into another without copying
// its data. The source's extents in the range move into the reflink btree as indirect extents
// and become reflink pointers in place; the destination range gets reflink pointers to the same
// indirect extents (ranges that already were pointers are shared as they are). Nothing is
// allocated for data; a later write to either file writes new data copy-on-write, and the shared
// data is released when its last pointer goes.
//
// A reflink takes transactions of bounded size. The first one that does not finish the range
// writes a reflink intent (source, ranges, progress) to logged_ops, each batch advances it and
// the last one deletes it; mount finishes an interrupted reflink from its intent, so after a
// crash the destination shows either none of it (the first batch did not commit) or all of it.
using Basalt.Data;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Transactions;

namespace Basalt.Fs;

public sealed partial class Files
{
    private const int Sector = FormatLimits.SectorSize;

    private readonly object _reflinkLock = new();
    private long _reflinkNext = -1;

    /// <summary>
    /// Shares bytes [<paramref name="srcOffset"/>, +<paramref name="length"/>) of regular file
    /// <paramref name="srcIno"/> into <paramref name="dstIno"/> at <paramref name="dstOffset"/>,
    /// replacing what was there (FICLONERANGE). Offsets must be multiples of 512; the length too,
    /// unless the range ends at the source's end of file and reaches the destination's end of file
    /// (or past it). A length of 0 means to the end of the source. The destination grows to cover
    /// the range. Ranges of one file must not overlap.
    /// </summary>
    public void Reflink(ulong srcIno, long srcOffset, ulong dstIno, long dstOffset, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(srcOffset);
        ArgumentOutOfRangeException.ThrowIfNegative(dstOffset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var src = GetAttr(srcIno);
        var dst = GetAttr(dstIno);
        RequireRegular(srcIno, src.Inode);
        RequireRegular(dstIno, dst.Inode);
        if (srcOffset % Sector != 0 || dstOffset % Sector != 0)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"reflink from inode {srcIno} to {dstIno}: offsets {srcOffset} and {dstOffset} must be multiples of {Sector}");
        if ((ulong)srcOffset > src.Size || (length > 0 && (ulong)(srcOffset + length) > src.Size))
            BasaltException.Throw(ErrorCode.InvalidArgument, $"reflink from inode {srcIno}: bytes {srcOffset}..{srcOffset + length} pass its end ({src.Size} bytes)");
        if (length == 0)
            length = (long)src.Size - srcOffset;
        if (length == 0)
            return;
        if (length % Sector != 0 && (ulong)(srcOffset + length) != src.Size)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"reflink from inode {srcIno}: length {length} must be a multiple of {Sector} unless it reaches the end of the file");
        if (length % Sector != 0 && (ulong)(dstOffset + length) < dst.Size)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"reflink into inode {dstIno}: a range ending at the source's end of file ({srcOffset + length}) must reach the destination's end too ({dst.Size} bytes)");
        if (dstOffset + length > MaxFileSize)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"reflink into inode {dstIno} would pass the largest file size ({MaxFileSize} bytes)");
        if (srcIno == dstIno && srcOffset < dstOffset + length && dstOffset < srcOffset + length)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"reflink within inode {srcIno}: the ranges at {srcOffset} and {dstOffset} overlap");
        var sectors = (ulong)((length + Sector - 1) / Sector);
        var intent = new ReflinkIntent(srcIno, (ulong)srcOffset / Sector, (ulong)dstOffset / Sector, sectors, 0, (ulong)(dstOffset + length));
        lock (_reflinkLock)
            RunReflink(dstIno, intent, intentWritten: false);
    }

    /// <summary>
    /// Shares all of <paramref name="srcIno"/> into <paramref name="dstIno"/> from offset 0
    /// (FICLONE): the destination's bytes over that range are replaced and its size grows to the
    /// source's if smaller. <c>cp --reflink</c> clones into an empty file, making an exact copy.
    /// </summary>
    public void CloneFile(ulong srcIno, ulong dstIno)
    {
        if (srcIno == dstIno)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"clone of inode {srcIno} onto itself");
        Reflink(srcIno, 0, dstIno, 0, 0);
    }

    /// <summary>Runs (or resumes) a reflink batch by batch until its range is shared.</summary>
    private void RunReflink(ulong dstIno, ReflinkIntent intent, bool intentWritten)
    {
        var perBatch = Math.Max(1, _data.PunchBatch / 3);
        var now = Now();
        if (Interlocked.Read(ref _reflinkNext) < 0)
            Interlocked.CompareExchange(ref _reflinkNext, (long)FindReflinkEnd(), -1);
        while (intent.Done < intent.Sectors)
        {
            var state = intent;
            var written = intentWritten;
            var done = Writer.Transact(t => ReflinkBatch(t, dstIno, state, written, perBatch, now));
            intent = intent with { Done = done };
            intentWritten = done < intent.Sectors;
        }
    }

    /// <summary>
    /// One transaction of a reflink: clears the next part of the destination range, shares the
    /// source keys over it, grows the destination's size over it and advances (or deletes) the
    /// intent. Returns the sectors done after it.
    /// </summary>
    private ulong ReflinkBatch(Transaction t, ulong dstIno, ReflinkIntent intent, bool intentWritten, int maxKeys, long now)
    {
        var srcEnd = intent.SrcStart + intent.Sectors;
        var at = intent.SrcStart + intent.Done;
        var dstAt = intent.DstStart + intent.Done;
        // The destination part first: a part with many keys to clear makes a short batch.
        var cleared = ExtentEdits.Clear(t, dstIno, dstAt, dstAt + (srcEnd - at), maxKeys);
        var limit = at + (cleared - dstAt);
        var keys = t.Range(BtreeId.Extents, ExtentStore.EndPos(intent.SrcIno, at + 1), ExtentStore.EndPos(intent.SrcIno, ulong.MaxValue - 1), maxKeys);
        var lastTo = at;
        var sawPastLimit = false;
        foreach (var (key, value) in keys)
        {
            var ks = key.Pos.Offset - key.Size;
            var ke = key.Pos.Offset;
            if (ks >= limit)
            {
                sawPastLimit = true;
                break;
            }
            var from = Math.Max(ks, at);
            var to = Math.Min(ke, limit);
            var dstEnd = ExtentStore.EndPos(dstIno, to - intent.SrcStart + intent.DstStart);
            switch (key.Type)
            {
                case KeyType.Extent:
                    var pointer = MakeIndirect(t, key, value);
                    t.Set(BtreeId.Extents, new Bkey(dstEnd, KeyType.ReflinkP, (uint)(to - from)), pointer.Piece(ks, ke, from, to).ToBytes());
                    break;
                case KeyType.ReflinkP:
                    t.Set(BtreeId.Extents, new Bkey(dstEnd, KeyType.ReflinkP, (uint)(to - from)), ExtentEdits.Piece(key, value, from, to));
                    break;
                case KeyType.Error:
                    t.Set(BtreeId.Extents, new Bkey(dstEnd, KeyType.Error, (uint)(to - from)), []);
                    break;
                case KeyType.InlineData:
                    // Inline data has no run to share: the destination gets its own copy of the bytes.
                    t.Set(BtreeId.Extents, new Bkey(dstEnd, KeyType.InlineData, (uint)(to - from)), ExtentEdits.Piece(key, value, from, to));
                    break;
                default:
                    break; // a reservation is not shared: the destination reads zeros there as a hole
            }
            lastTo = to;
        }
        // A full batch of keys may be followed by more before the limit: the next batch starts after the last one shared.
        if (!sawPastLimit && keys.Count == maxKeys)
            limit = Math.Min(limit, lastTo);
        var done = limit - intent.SrcStart;
        var dst = ReadInode(t, dstIno);
        var reached = Math.Min(intent.DstSize, (intent.DstStart + done) * Sector);
        if (reached > dst.Size)
            dst.Size = reached;
        dst.MtimeNs = dst.CtimeNs = now;
        PutInode(t, dstIno, dst);
        if (done >= intent.Sectors)
        {
            if (intentWritten)
                t.Delete(BtreeId.LoggedOps, FsPositions.Reflink(dstIno));
        }
        else
        {
            t.Set(BtreeId.LoggedOps, new Bkey(FsPositions.Reflink(dstIno), KeyType.LoggedOpReflink), (intent with { Done = done }).ToBytes());
        }
        return done;
    }

    /// <summary>
    /// Moves an extent of a file into the reflink btree: an indirect extent with the same run (its
    /// data charged to it) and a reflink pointer to it in the extent's place. Returns that pointer.
    /// The pointer's trigger takes the indirect extent's first reference.
    /// </summary>
    private ReflinkPointer MakeIndirect(Transaction t, in Bkey key, byte[] value)
    {
        if (!ExtentValue.TryRead(value, out var extent, out var problem))
            throw new BasaltException(ErrorCode.IoError, $"reflink of {key.ToText()}: the extent is invalid: {problem}");
        var start = NextReflinkSectors(key.Size);
        var indirect = new Bkey(ReflinkSpace.EndPos(start + key.Size), KeyType.ReflinkV, key.Size);
        t.Set(BtreeId.Reflink, indirect, ReflinkIndirect.ToBytes(0, extent));
        ExtentTriggers.ChargeIndirect(t, indirect, extent, +1);
        var pointer = new ReflinkPointer(start, 0, 0);
        t.Set(BtreeId.Extents, new Bkey(key.Pos, KeyType.ReflinkP, key.Size), pointer.ToBytes());
        return pointer;
    }

    /// <summary>
    /// Takes <paramref name="sectors"/> of reflink space never used before. A transaction that
    /// restarts takes new space, leaving the old unused.
    /// </summary>
    private ulong NextReflinkSectors(uint sectors) => (ulong)Interlocked.Add(ref _reflinkNext, sectors) - sectors;

    /// <summary>
    /// The end of the last indirect extent, found once per mount before the first reflink (a
    /// binary search: the smallest sector no indirect extent ends after). Reflink space only grows.
    /// </summary>
    private ulong FindReflinkEnd()
    {
        ulong lo = ReflinkSpace.FirstSector, hi = 1UL << 62;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo) / 2);
            var it = _engine[BtreeId.Reflink].Iterate(ReflinkSpace.EndPos(mid + 1), ReflinkSpace.Last);
            if (it.MoveNext())
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    /// <summary>Finishes the reflinks whose intent is still recorded (mount's).</summary>
    internal void FinishReflinks()
    {
        var it = _engine[BtreeId.LoggedOps].Iterate(FsPositions.Reflink(0), FsPositions.Reflink(ulong.MaxValue));
        var pending = new List<(ulong Dst, ReflinkIntent Intent)>();
        while (it.MoveNext())
        {
            if (it.Key.Type == KeyType.LoggedOpReflink && ReflinkIntent.TryRead(it.Value, out var intent, out _))
                pending.Add((it.Key.Pos.Offset, intent));
        }
        foreach (var (dst, intent) in pending)
        {
            if (TryGetInode(dst, out var d) && d.Type == FileType.Regular && TryGetInode(intent.SrcIno, out var s) && s.Type == FileType.Regular)
            {
                lock (_reflinkLock)
                    RunReflink(dst, intent, intentWritten: true);
            }
            else
            {
                Writer.Transact(t => t.Delete(BtreeId.LoggedOps, FsPositions.Reflink(dst)));
            }
        }
    }
}
