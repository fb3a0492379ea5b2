// Interior updates: the pointer keys (levels >= 1) and root changes that structure changes and
// write-back make in memory, and how they reach the journal.
//
// Every interior edit records its position (btree, level, key position; the root of a btree is
// one more position) in a pending group. A structure change puts all of its edits at one level
// into one group, so they commit together: a split's two pointers, a merge's deletion and new
// pointer, never one without the other. Groups that touch a common position merge. A write-back
// raise of a node's sectors_written is a group of its own.
//
// A group commits (one journal entry, through IBtreeJournal) only when every node it points at
// is durable up to the pointer's sectors_written: rule (b) for new nodes, rule (h) for appended
// bsets. A node holding a pending position is blocked: it is not written until the position is
// journaled, so whatever a node has written points only at durable nodes, and a durable node is
// a sound subtree. After the commit, the nodes the group points at release the pins of their
// written bsets (rule (c)), the node holding each position pins the commit's seq, and the slots
// the group freed become reusable once that seq is durable (rule (d)).
//
// Replay applies keys the journal already holds: their own positions are not recorded, only
// the structure changes they cause. A checkpoint commits everything through the superblock and
// clears every group.
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>A position an interior update touches: a pointer key (Level >= 1) or a btree's root (Level = RootLevel).</summary>
internal readonly record struct PendingPosition(BtreeId Btree, byte Level, Bpos Pos)
{
    /// <summary>The level value that stands for "the root of the btree".</summary>
    public const byte RootLevel = byte.MaxValue;

    public static PendingPosition Root(BtreeId btree) => new(btree, RootLevel, Bpos.Max);

    public bool IsRoot => Level == RootLevel;
}

/// <summary>Interior edits that must reach the journal together, and the slots they free.</summary>
internal sealed class PendingGroup
{
    public List<PendingPosition> Positions { get; } = [];

    public List<long> Frees { get; } = [];
}

public sealed partial class BtreeEngine
{
    private readonly Dictionary<PendingPosition, PendingGroup> _pendingByPosition = [];
    private readonly HashSet<PendingGroup> _pendingGroups = [];
    private readonly Dictionary<(BtreeId, byte), SortedSet<Bpos>> _pendingByLevel = [];

    // The groups of the structure change in progress, one per level (index RootLevel for roots).
    private readonly Dictionary<(BtreeId, byte), PendingGroup> _scopeGroups = [];
    private int _scopeDepth;

    // Replay: the key being replayed is already in the journal; its own position is not recorded.
    private PendingPosition? _replayedPosition;

    // A checkpoint commits through the superblock: nothing is recorded, frees wait for its commit.
    private List<long>? _checkpointFrees;

    /// <summary>Interior edits recorded and not yet journaled (for tests and stats).</summary>
    internal int PendingPositionCount => _pendingByPosition.Count;

    /// <summary>Opens (or joins) the structure change whose edits are grouped together. Write lock held.</summary>
    private ChangeScope OpenChange()
    {
        _scopeDepth++;
        return new ChangeScope(this);
    }

    private readonly struct ChangeScope(BtreeEngine engine) : IDisposable
    {
        public void Dispose()
        {
            if (--engine._scopeDepth == 0)
                engine._scopeGroups.Clear();
        }
    }

    /// <summary>Records an interior edit at <paramref name="position"/> in the current change's group for its level.</summary>
    private PendingGroup? Record(PendingPosition position)
    {
        if (_checkpointFrees is not null || _replayedPosition == position)
            return null;
        if (_scopeDepth == 0)
            throw new InvalidOperationException($"interior edit at {position} outside a structure change");
        var scopeKey = (position.Btree, position.Level);
        if (!_scopeGroups.TryGetValue(scopeKey, out var group))
        {
            group = new PendingGroup();
            _pendingGroups.Add(group);
            _scopeGroups[scopeKey] = group;
        }
        if (_pendingByPosition.TryGetValue(position, out var existing))
        {
            if (existing != group)
                group = MergeGroups(existing, group, scopeKey);
            return group;
        }
        group.Positions.Add(position);
        _pendingByPosition[position] = group;
        if (!position.IsRoot)
        {
            if (!_pendingByLevel.TryGetValue(scopeKey, out var set))
                _pendingByLevel[scopeKey] = set = [];
            set.Add(position.Pos);
        }
        return group;
    }

    /// <summary>Folds the smaller of two groups into the larger; the scope follows the survivor.</summary>
    private PendingGroup MergeGroups(PendingGroup a, PendingGroup b, (BtreeId, byte) scopeKey)
    {
        var (keep, gone) = a.Positions.Count >= b.Positions.Count ? (a, b) : (b, a);
        foreach (var p in gone.Positions)
        {
            keep.Positions.Add(p);
            _pendingByPosition[p] = keep;
        }
        keep.Frees.AddRange(gone.Frees);
        _pendingGroups.Remove(gone);
        foreach (var k in _scopeGroups.Where(kv => kv.Value == gone).Select(kv => kv.Key).ToList())
            _scopeGroups[k] = keep;
        _scopeGroups[scopeKey] = keep;
        return keep;
    }

    /// <summary>Where a node's pointer lives: its parent's key at its max, or its btree's root.</summary>
    private PendingPosition PointerPosition(BtreeNode node) =>
        _trees[(int)node.Btree]!.RootNode == node ? PendingPosition.Root(node.Btree) : new(node.Btree, (byte)(node.Level + 1), node.MaxKey);

    /// <summary>
    /// A written node is replaced: its slot is freed by the interior update that stops pointing at
    /// it, and becomes reusable once that update's entry is durable.
    /// </summary>
    private void FreeLater(long offset, PendingPosition pointer)
    {
        if (_checkpointFrees is { } checkpointFrees)
        {
            checkpointFrees.Add(offset);
            return;
        }
        if (_options.DebugFaults.ReuseFreedSlotEarly)
        {
            _allocator.Release(offset);
            _earlyReusable = offset;
            return;
        }
        var group = _pendingByPosition.TryGetValue(pointer, out var g) ? g : Record(pointer);
        if (group is null)
        {
            // Replay of the very edit that replaced this node: it is journaled already and durable.
            _allocator.Release(offset);
            return;
        }
        group.Frees.Add(offset);
    }

    /// <summary>True when a pending interior edit lies inside <paramref name="node"/>: it may not be written yet.</summary>
    private bool IsBlocked(BtreeNode node)
    {
        if (node.Level == 0 || !_pendingByLevel.TryGetValue((node.Btree, node.Level), out var set) || set.Count == 0)
            return false;
        return set.GetViewBetween(node.MinKey, node.MaxKey).Count > 0;
    }

    /// <summary>
    /// Journals every pending group whose pointers all lead to durable nodes. Writer gate and write
    /// lock held. False when the journal had no room even in its reserve (the caller checkpoints).
    /// </summary>
    private bool CommitReadyInteriorUpdates()
    {
        if (_pendingGroups.Count == 0)
            return true;
        var commit = new InteriorCommit();
        var ready = new List<PendingGroup>();
        foreach (var group in _pendingGroups)
        {
            if (group.Positions.TrueForAll(IsReady))
                ready.Add(group);
        }
        if (ready.Count == 0)
            return true;
        foreach (var group in ready)
        {
            foreach (var p in group.Positions)
            {
                if (p.IsRoot)
                {
                    var tree = _trees[(int)p.Btree]!;
                    commit.Roots.Add((p.Btree, tree.RootNode is { } r ? new BtreeRoot(p.Btree, r.Level, r.MakePtr(_geometry.Device)) : tree.PendingRoot));
                }
                else if (TryPointerAt(p, out var value))
                {
                    commit.Keys.Add(new BtreeUpdate(p.Btree, p.Level, new Bkey(p.Pos, KeyType.BtreePtr), value));
                }
                else
                {
                    commit.Keys.Add(new BtreeUpdate(p.Btree, p.Level, new Bkey(p.Pos, KeyType.Deleted), ReadOnlyMemory<byte>.Empty));
                }
            }
        }
        if (!_journal!.TryCommitInterior(commit, out var seq))
            return false;
        foreach (var group in ready)
        {
            foreach (var p in group.Positions)
                Committed(p, seq);
            foreach (var offset in group.Frees)
                _allocator.Free(offset, seq);
            _pendingGroups.Remove(group);
        }
        _interiorCommits++;
        return true;
    }

    /// <summary>A pending position's edit is journaled at <paramref name="seq"/>.</summary>
    private void Committed(PendingPosition p, ulong seq)
    {
        _pendingByPosition.Remove(p);
        if (p.IsRoot)
        {
            var tree = _trees[(int)p.Btree]!;
            if (tree.RootNode is { } root)
                ReleaseWrittenPins(root, root.WrittenSectors);
            return;
        }
        _pendingByLevel[(p.Btree, p.Level)].Remove(p.Pos);
        var holder = FindCached(_trees[(int)p.Btree]!, p.Level, p.Pos);
        PinNode(holder, seq);
        if (holder.TryFind(p.Pos, out var run, out var i) && PtrFields.IsWellFormed(run.ValueOf(i)))
        {
            var value = run.ValueOf(i);
            if (_cache.TryGet(PtrFields.OffsetBytes(value), out var child) && child.Seq == PtrFields.Seq(value))
                ReleaseWrittenPins(child, PtrFields.SectorsWritten(value));
        }
    }

    /// <summary>The pointer value at a pending position, or false when the edit deleted it.</summary>
    private bool TryPointerAt(PendingPosition p, out ReadOnlyMemory<byte> value)
    {
        var holder = FindCached(_trees[(int)p.Btree]!, p.Level, p.Pos);
        if (holder.TryFind(p.Pos, out var run, out var i))
        {
            value = run.ValueOf(i).ToArray();
            return true;
        }
        value = default;
        return false;
    }

    /// <summary>A position is ready when the node its pointer names is durable up to the pointer's sectors_written.</summary>
    private bool IsReady(PendingPosition p)
    {
        BtreeNode? child;
        int sectors;
        if (p.IsRoot)
        {
            child = _trees[(int)p.Btree]!.RootNode;
            if (child is null)
                return true;
            sectors = child.WrittenSectors;
        }
        else
        {
            var holder = FindCached(_trees[(int)p.Btree]!, p.Level, p.Pos);
            if (!holder.TryFind(p.Pos, out var run, out var i))
                return true;
            var value = run.ValueOf(i);
            if (!PtrFields.IsWellFormed(value) || !_cache.TryGet(PtrFields.OffsetBytes(value), out child) || child.Seq != PtrFields.Seq(value))
                return true;
            sectors = PtrFields.SectorsWritten(value);
        }
        if (sectors > 0 && child.DurableSectors >= sectors)
            return true;
        // Debug-only ordering bugs: journal the pointer before the node it names is durable.
        var faults = _options.DebugFaults;
        return child.DurableSectors == 0 ? faults.CommitPointerBeforeNodeDurable && sectors > 0 : faults.CommitRaiseBeforeWrite;
    }

    /// <summary>The node holds a change journaled at <paramref name="seq"/>: it keeps that entry until it is written.</summary>
    private void PinNode(BtreeNode node, ulong seq)
    {
        if (seq == 0)
            return;
        if (seq > node.MaxSeq)
            node.MaxSeq = seq;
        if (node.UnwrittenPin != 0 && node.UnwrittenPin <= seq)
            return;
        _journal!.Pin(seq);
        if (node.UnwrittenPin != 0)
            _journal.Unpin(node.UnwrittenPin);
        node.UnwrittenPin = seq;
    }

    /// <summary>Rule (c): the node's written bsets up to <paramref name="sectors"/> are now named by a journaled pointer.</summary>
    private void ReleaseWrittenPins(BtreeNode node, int sectors)
    {
        if (node.WrittenPins is not { Count: > 0 } pins)
            return;
        var kept = 0;
        for (var i = 0; i < pins.Count; i++)
        {
            if (pins[i].Sectors <= sectors)
                _journal!.Unpin(pins[i].Seq);
            else
                pins[kept++] = pins[i];
        }
        pins.RemoveRange(kept, pins.Count - kept);
    }

    /// <summary>Hands every pin of <paramref name="old"/> to <paramref name="fresh"/> (which now holds its keys), as one pin at the oldest seq.</summary>
    private void InheritPins(BtreeNode fresh, BtreeNode old)
    {
        var oldest = old.UnwrittenPin;
        if (old.WrittenPins is { } pins)
        {
            foreach (var (seq, _) in pins)
                oldest = oldest == 0 ? seq : Math.Min(oldest, seq);
        }
        if (old.MaxSeq > fresh.MaxSeq)
            fresh.MaxSeq = old.MaxSeq;
        PinNode(fresh, oldest);
    }

    /// <summary>Drops every pin a node holds (it was freed; its keys live on elsewhere, pinned there).</summary>
    private void DropPins(BtreeNode node)
    {
        if (node.UnwrittenPin != 0)
        {
            _journal!.Unpin(node.UnwrittenPin);
            node.UnwrittenPin = 0;
        }
        if (node.WrittenPins is { } pins)
        {
            foreach (var (seq, _) in pins)
                _journal!.Unpin(seq);
            pins.Clear();
        }
    }
}
