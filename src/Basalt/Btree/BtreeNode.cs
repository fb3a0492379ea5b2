// A cached btree node. Its keys live in three sorted runs, newest first when they disagree:
//   Unwritten  - changes since the node was last captured for a write (with deletion markers);
//   InFlight   - the run captured by a write-back whose write has not completed yet;
//   Merged     - what the node holds on disk (all its written bsets merged, no deletions).
// A node that has never been written (a fresh node from a split, compaction or merge) keeps its
// initial keys in Merged too; its first write then carries every live key (WrittenSectors == 0).
//
// Journal bookkeeping: UnwrittenPin is the oldest journal seq whose updates sit unwritten in the
// node (the journal keeps that entry until the node is written and its parent's pointer update
// is journaled, rule (c)); WrittenPins are the pins of bsets written but not yet committed in the
// parent; MaxSeq is the newest seq among the node's keys (the journal_seq of its next bset,
// written only once that seq is durable, rule (a)).
// All fields are guarded by the engine lock: written under the write lock, read under either.
using System.Buffers.Binary;
using Basalt.Format;

namespace Basalt.Btree;

internal sealed class BtreeNode
{
    public BtreeNode(BtreeId btree, byte level, Bpos minKey, Bpos maxKey, ulong seq, uint generation, long offset, KeyRun merged)
    {
        Btree = btree;
        Level = level;
        MinKey = minKey;
        MaxKey = maxKey;
        Seq = seq;
        Generation = generation;
        Offset = offset;
        Merged = merged;
        LiveBytes = merged.EncodedBytes;
    }

    public BtreeId Btree { get; }
    public byte Level { get; }
    public Bpos MinKey { get; }
    public Bpos MaxKey { get; }
    public ulong Seq { get; }
    public uint Generation { get; }

    /// <summary>Byte offset of the node's slot on the device.</summary>
    public long Offset { get; }

    public KeyRun Merged { get; set; }
    public KeyRun? InFlight { get; set; }
    public UnwrittenRun Unwritten { get; private set; } = new();

    /// <summary>Sectors of the slot that are written or being written (0: the first record is still to come).</summary>
    public int WrittenSectors { get; set; }

    /// <summary>Sectors whose write has completed (read from disk, or written by a completed write-back).</summary>
    public int DurableSectors { get; set; }

    /// <summary>Oldest journal seq among the unwritten changes, 0 when none is pinned.</summary>
    public ulong UnwrittenPin { get; set; }

    /// <summary>Pins of written bsets waiting for their parent's pointer update to be journaled: (seq, sectors written then).</summary>
    public List<(ulong Seq, int Sectors)>? WrittenPins { get; set; }

    /// <summary>Newest journal seq among the node's keys: the journal_seq of its next bset.</summary>
    public ulong MaxSeq { get; set; }

    /// <summary>
    /// The durable tree reaches this node as it is (read from disk, or its pointer's commit named it):
    /// interior edits inside it are journaled by position. Edits inside a node not yet reachable (a
    /// split's or merge's new node) are not: they reach the durable tree as the node's own content
    /// when the pointer that makes it reachable commits. Unreachable nodes stay cached.
    /// </summary>
    public bool Reachable { get; set; }

    /// <summary>
    /// Slots freed by edits made inside this node while it was unreachable and not yet captured for
    /// a write: they become reusable once an update naming the node's content with those edits is durable.
    /// </summary>
    public List<long>? HeldFrees { get; set; }

    /// <summary>
    /// Journal seq up to which the node's content already holds every journal key for its positions
    /// (the newest bset journal_seq read from disk; a replacement made during replay keeps the
    /// smallest of the nodes it replaces). Replay skips older interior keys for this node.
    /// </summary>
    public ulong ContentSeq { get; set; }

    /// <summary>Transactions in progress that read this node: it stays cached until they end.</summary>
    public int KeepCount { get; set; }

    /// <summary>True while the node holds any journal pin (it may not be evicted).</summary>
    public bool IsPinned => UnwrittenPin != 0 || WrittenPins is { Count: > 0 };

    /// <summary>Encoded bytes of the live keys (the merged view without deletions).</summary>
    public long LiveBytes { get; set; }

    public bool IsDirty { get; set; }

    /// <summary>A write of this node is in flight (captured, not folded).</summary>
    public bool IsWriting => InFlight is not null;
    public bool IsFreed { get; set; }
    public bool IsCached { get; set; }

    /// <summary>Bumped on every change (runs, dirtiness, fold): lets a holder of the node notice it changed.</summary>
    public int Version { get; set; }

    /// <summary>Approximate recency for eviction (engine clock value at last use).</summary>
    public long LastAccess;

    public bool IsLeaf => Level == 0;

    public bool HasFirstRecord => WrittenSectors > 0;

    public string ToText() =>
        $"{Btree.ToText()} level {Level} node at {Offset} [{MinKey.ToText()} .. {MaxKey.ToText()}] seq {Seq:x16} gen {Generation} written {WrittenSectors}";

    public override string ToString() => ToText();

    public void ResetUnwritten() => Unwritten = new UnwrittenRun();

    /// <summary>Finds the live entry at pos in the merged view; false when absent or deleted.</summary>
    public bool TryFind(Bpos pos, out RunView run, out int index)
    {
        // Empty unwritten and in-flight runs (the common case for a clean node) cost no search.
        index = -1;
        run = default;
        if (Unwritten.Count > 0)
        {
            run = Unwritten.View;
            index = run.Find(pos);
        }
        if (index < 0 && InFlight is { } f)
        {
            run = f.View;
            index = run.Find(pos, prefetchValue: true);
        }
        if (index < 0)
        {
            run = Merged.View;
            index = run.Find(pos, prefetchValue: true);
        }
        return index >= 0 && run.Entries![index].Key.Type != KeyType.Deleted;
    }

    /// <summary>
    /// Interior nodes: the pointer key covering pos (the first key &gt;= pos in the merged view),
    /// false when none.
    /// </summary>
    public bool TryFindChild(Bpos pos, out RunView run, out int index) => TryFindAtOrAfter(pos, prefetchValue: false, out run, out index);

    /// <summary>
    /// The first live key &gt;= pos in the merged view, false when the node holds none.
    /// <paramref name="prefetchValue"/>: the caller reads the value found. Takes the single-run
    /// path when nothing is unwritten or in flight (Merged holds no deletions).
    /// </summary>
    public bool TryFindAtOrAfter(Bpos pos, bool prefetchValue, out RunView run, out int index)
    {
        if (Unwritten.Count == 0 && InFlight is null)
        {
            run = Merged.View;
            index = run.LowerBound(pos, prefetchValue);
            return index < run.Count;
        }
        var cursor = new NodeCursor(this, pos, reverse: false);
        return cursor.Next(out run, out index);
    }

    /// <summary>What an update at pos replaces: the live key's size, the unwritten entry's size, whether a written run holds pos.</summary>
    public void Probe(Bpos pos, out int liveSize, out int unwrittenSize, out bool onDiskRun)
    {
        liveSize = 0;
        unwrittenSize = 0;
        var u = Unwritten.View;
        var ui = u.Find(pos);
        var fi = InFlight is { } f ? f.View.Find(pos) : -1;
        var mi = Merged.View.Find(pos);
        onDiskRun = fi >= 0 || mi >= 0;
        if (ui >= 0)
        {
            unwrittenSize = u.Entries[ui].EncodedSize;
            if (u.Entries[ui].Key.Type != KeyType.Deleted)
                liveSize = unwrittenSize;
        }
        else if (fi >= 0)
        {
            if (InFlight!.Entries[fi].Key.Type != KeyType.Deleted)
                liveSize = InFlight.Entries[fi].EncodedSize;
        }
        else if (mi >= 0)
        {
            liveSize = Merged.Entries[mi].EncodedSize;
        }
    }

    /// <summary>Copies every live key (merged view) into a new run.</summary>
    public KeyRun CollectLive()
    {
        var builder = new KeyRunBuilder(Merged.Count + Unwritten.Count + 1, (int)Math.Max(16, LiveBytes));
        var cursor = new NodeCursor(this, MinKey, reverse: false);
        while (cursor.Next(out var run, out var i))
            builder.Add(run.Entries[i].Key, run.ValueOf(i));
        return builder.Build();
    }

    /// <summary>Number of live keys, counting at most <paramref name="limit"/>.</summary>
    public int CountLive(int limit)
    {
        var n = 0;
        var cursor = new NodeCursor(this, MinKey, reverse: false);
        while (n < limit && cursor.Next(out _, out _))
            n++;
        return n;
    }

    /// <summary>Folds the completed in-flight run into Merged (deletions drop what they shadow).</summary>
    public void FoldInFlight() => FoldInFlight(default);

    /// <summary>
    /// Folds the completed in-flight run into Merged, taking <paramref name="prepared"/> when it
    /// was computed from exactly this node's Merged and in-flight runs (reclaim merges them
    /// outside the engine lock: both stay as they are while the node is in flight).
    /// </summary>
    public void FoldInFlight(in PreparedFold prepared)
    {
        if (InFlight is not { } f)
            return;
        InFlight = null;
        Merged = prepared.Result is { } result && ReferenceEquals(prepared.Merged, Merged) && ReferenceEquals(prepared.InFlight, f)
            ? result
            : MergeRuns(Merged, f);
    }

    /// <summary>Merged with a newer run on top: equal positions take the newer key, deletions drop what they shadow.</summary>
    public static KeyRun MergeRuns(KeyRun merged, KeyRun newer)
    {
        if (merged.Count == 0)
            return DropDeletions(newer);
        var m = merged;
        var f = newer;
        var builder = new KeyRunBuilder(m.Count + f.Count, m.ArenaLength + f.ArenaLength);
        int i = 0, j = 0;
        while (i < m.Count || j < f.Count)
        {
            int c = i == m.Count ? 1 : j == f.Count ? -1 : m[i].Pos.CompareTo(f[j].Pos);
            if (c < 0)
            {
                builder.Add(m[i].Key, m.ValueOf(i));
                i++;
                continue;
            }
            if (c == 0)
                i++;
            if (f[j].Key.Type != KeyType.Deleted)
                builder.Add(f[j].Key, f.ValueOf(j));
            j++;
        }
        return builder.Build();
    }

    private static KeyRun DropDeletions(KeyRun run)
    {
        var any = false;
        foreach (ref readonly var e in run.Entries)
        {
            if (e.Key.Type == KeyType.Deleted)
            {
                any = true;
                break;
            }
        }
        if (!any)
            return run;
        var builder = new KeyRunBuilder(run.Count, run.ArenaLength);
        for (var i = 0; i < run.Count; i++)
        {
            if (run[i].Key.Type != KeyType.Deleted)
                builder.Add(run[i].Key, run.ValueOf(i));
        }
        return builder.Build();
    }

    /// <summary>The pointer a parent (or the superblock) holds for this node.</summary>
    public BtreePtrValue MakePtr(byte device) => new()
    {
        Seq = Seq,
        SectorsWritten = checked((ushort)WrittenSectors),
        MinKey = MinKey,
        Ptrs = [new DevicePtr(device, (ulong)(Offset / FormatLimits.SectorSize), 0)],
    };
}

/// <summary>Allocation-free reads of the fields of an encoded BtreePtr value.</summary>
internal static class PtrFields
{
    public static ulong Seq(ReadOnlySpan<byte> value) => BinaryPrimitives.ReadUInt64LittleEndian(value[BtreePtrValue.SeqOffset..]);

    public static long OffsetBytes(ReadOnlySpan<byte> value) =>
        (long)BinaryPrimitives.ReadUInt64LittleEndian(value[(BtreePtrValue.PtrsOffset + BtreePtrValue.PtrOffsetOffset)..]) * FormatLimits.SectorSize;

    public static int SectorsWritten(ReadOnlySpan<byte> value) =>
        BinaryPrimitives.ReadUInt16LittleEndian(value[BtreePtrValue.SectorsWrittenOffset..]);

    public static bool IsWellFormed(ReadOnlySpan<byte> value) => value.Length >= BtreePtrValue.SizeFor(1);
}

/// <summary>
/// Walks a node's merged view (unwritten over in-flight over merged, deletions hidden) forward
/// from the first key &gt;= pos, or backward from the last key &lt;= pos.
/// </summary>
internal struct NodeCursor
{
    private readonly RunView _u;
    private readonly RunView _f;
    private readonly RunView _m;
    private readonly bool _reverse;
    private int _iu;
    private int _if;
    private int _im;

    public NodeCursor(BtreeNode node, Bpos pos, bool reverse)
    {
        _u = node.Unwritten.View;
        _f = node.InFlight?.View ?? RunView.Empty;
        _m = node.Merged.View;
        _reverse = reverse;
        _iu = Start(_u, pos, reverse);
        _if = Start(_f, pos, reverse);
        _im = Start(_m, pos, reverse);
    }

    private static int Start(in RunView run, Bpos pos, bool reverse)
    {
        var i = run.LowerBound(pos);
        if (!reverse)
            return i;
        return i < run.Count && run.Entries[i].Key.Pos == pos ? i : i - 1;
    }

    /// <summary>The next live entry; false at the end of the node.</summary>
    public bool Next(out RunView run, out int index)
    {
        while (true)
        {
            var have = false;
            Bpos best = default;
            if (Valid(_u, _iu))
                Consider(_u.Entries[_iu].Key.Pos, ref have, ref best);
            if (Valid(_f, _if))
                Consider(_f.Entries[_if].Key.Pos, ref have, ref best);
            if (Valid(_m, _im))
                Consider(_m.Entries[_im].Key.Pos, ref have, ref best);
            if (!have)
            {
                run = default;
                index = -1;
                return false;
            }
            var step = _reverse ? -1 : 1;
            var found = false;
            run = default;
            index = -1;
            if (Valid(_u, _iu) && _u.Entries[_iu].Key.Pos == best)
            {
                run = _u;
                index = _iu;
                found = true;
                _iu += step;
            }
            if (Valid(_f, _if) && _f.Entries[_if].Key.Pos == best)
            {
                if (!found)
                {
                    run = _f;
                    index = _if;
                    found = true;
                }
                _if += step;
            }
            if (Valid(_m, _im) && _m.Entries[_im].Key.Pos == best)
            {
                if (!found)
                {
                    run = _m;
                    index = _im;
                }
                _im += step;
            }
            if (run.Entries![index].Key.Type != KeyType.Deleted)
                return true;
        }
    }

    private static bool Valid(in RunView run, int i) => (uint)i < (uint)run.Count;

    private readonly void Consider(Bpos pos, ref bool have, ref Bpos best)
    {
        if (!have || (_reverse ? pos > best : pos < best))
        {
            best = pos;
            have = true;
        }
    }
}

/// <summary>A fold computed ahead: the Merged and in-flight runs it was computed from, and the result.</summary>
public readonly record struct PreparedFold(KeyRun? Merged, KeyRun? InFlight, KeyRun? Result);
