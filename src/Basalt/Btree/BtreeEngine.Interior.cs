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
// Only edits inside reachable nodes are recorded (BtreeNode.Reachable): replay applies a key by
// its position, so the node covering that position in the durable tree must be the node the edit
// was made in. A new node (a split's, a merge's, a compaction's, a new root) is not reachable until
// the update naming it commits; edits inside it are its content, written with it, and the slots
// they free wait with it (HeldFrees) until an update naming that write commits. When the node
// becomes reachable its unwritten edits are recorded. A reachable node replaced before its pending
// edits committed takes them out of their groups: its replacements carry them.
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

    /// <summary>A root change that removes levels: journal keys of these levels and above, before it, are void.</summary>
    public Dictionary<BtreeId, byte>? VoidLevels { get; set; }
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
        if (!position.IsRoot && position.Level == 0)
            throw new InvalidOperationException($"interior edit recorded at level 0 ({position})");
        if (!position.IsRoot && HolderOf(position) is { Reachable: false })
            return null; // carried by the node's own content (see BtreeNode.Reachable)
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
        if (gone.VoidLevels is { } voids)
        {
            keep.VoidLevels ??= [];
            foreach (var (btree, level) in voids)
                keep.VoidLevels[btree] = keep.VoidLevels.TryGetValue(btree, out var l) ? Math.Min(l, level) : level;
        }
        _pendingGroups.Remove(gone);
        foreach (var k in _scopeGroups.Where(kv => kv.Value == gone).Select(kv => kv.Key).ToList())
            _scopeGroups[k] = keep;
        _scopeGroups[scopeKey] = keep;
        return keep;
    }

    /// <summary>
    /// The root change being recorded removes <paramref name="fromLevel"/> and above (a collapse) or
    /// the whole tree (a reset, level 0): the journal learns it with the root, so a replay never
    /// applies a key journaled for a level that no longer exists to a level grown again later.
    /// </summary>
    private void VoidLevelsWithRootChange(BtreeId btree, byte fromLevel)
    {
        if (Record(PendingPosition.Root(btree)) is not { } group)
            return;
        group.VoidLevels ??= [];
        group.VoidLevels[btree] = group.VoidLevels.TryGetValue(btree, out var level) ? Math.Min(level, fromLevel) : fromLevel;
    }

    /// <summary>Where a node's pointer lives: its parent's key at its max, or its btree's root.</summary>
    private PendingPosition PointerPosition(BtreeNode node) =>
        _trees[(int)node.Btree]!.RootNode == node ? PendingPosition.Root(node.Btree) : new(node.Btree, (byte)(node.Level + 1), node.MaxKey);

    /// <summary>The cached node holding a pointer position (null when the tree has no such node cached).</summary>
    private BtreeNode? HolderOf(PendingPosition position) =>
        FindNode(_trees[(int)position.Btree]!, position.Level, position.Pos, out var node, out _) == FindResult.Found ? node : null;

    /// <summary>
    /// A written node is replaced: its slot is freed by the interior update that stops pointing at
    /// it, and becomes reusable once that update's entry is durable. When that update is an edit
    /// inside a node not yet reachable, the slot waits with that node (HeldFrees) until a write of
    /// it is named by a journaled update.
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
        if (_replayedPosition == pointer)
        {
            // Replay of the very edit that replaced this node: it is journaled already and durable.
            _allocator.Release(offset);
            return;
        }
        if (_pendingByPosition.TryGetValue(pointer, out var pending))
        {
            pending.Frees.Add(offset);
            return;
        }
        if (!pointer.IsRoot && HolderOf(pointer) is { Reachable: false } holder)
        {
            (holder.HeldFrees ??= []).Add(offset);
            return;
        }
        if (Record(pointer) is { } group)
            group.Frees.Add(offset);
        else
            _allocator.Release(offset);
    }

    /// <summary>The node's held frees follow the update at <paramref name="pointer"/> (its write's, or its replacement's).</summary>
    private void ReleaseHeldFrees(BtreeNode node, PendingPosition pointer)
    {
        if (node.HeldFrees is not { Count: > 0 } held)
            return;
        node.HeldFrees = null;
        foreach (var offset in held)
            FreeLater(offset, pointer);
    }

    /// <summary>
    /// A reachable interior node is replaced before its pending edits were journaled: its
    /// replacements carry those edits as their content, so the positions leave their groups, and
    /// the slots those groups free wait for the update that replaces the node (conservatively, all
    /// of them: a group's frees are not tied to single positions).
    /// </summary>
    private void DropPendingInside(BtreeNode node, PendingPosition replacedAt)
    {
        if (!_pendingByLevel.TryGetValue((node.Btree, node.Level), out var set) || set.Count == 0)
            return;
        var inside = set.GetViewBetween(node.MinKey, node.MaxKey).ToList();
        if (inside.Count == 0)
            return;
        var frees = new List<long>();
        foreach (var pos in inside)
        {
            var p = new PendingPosition(node.Btree, node.Level, pos);
            var group = _pendingByPosition[p];
            _pendingByPosition.Remove(p);
            set.Remove(pos);
            group.Positions.Remove(p);
            frees.AddRange(group.Frees);
            group.Frees.Clear();
            if (group.Positions.Count == 0 && group.VoidLevels is null && !_scopeGroups.ContainsValue(group))
                _pendingGroups.Remove(group);
        }
        foreach (var offset in frees)
            FreeLater(offset, replacedAt);
    }

    /// <summary>
    /// True when <paramref name="node"/> may not be written yet: a pending interior edit lies inside
    /// it, or it is not reachable and names a child not durable up to the pointer's sectors_written
    /// (its own edits are not journaled, so its content must point at durable nodes only).
    /// </summary>
    private bool IsBlocked(BtreeNode node)
    {
        if (node.Level == 0)
            return false;
        if (_pendingByLevel.TryGetValue((node.Btree, node.Level), out var set) && set.Count > 0 &&
            set.GetViewBetween(node.MinKey, node.MaxKey).Count > 0)
            return true;
        if (node.Reachable)
            return false;
        var cursor = new NodeCursor(node, node.MinKey, reverse: false);
        while (cursor.Next(out var run, out var i))
        {
            var value = run.ValueOf(i);
            if (PtrFields.IsWellFormed(value) && _cache.TryGet(PtrFields.OffsetBytes(value), out var child) &&
                child.Seq == PtrFields.Seq(value) && (PtrFields.SectorsWritten(value) == 0 || child.DurableSectors < PtrFields.SectorsWritten(value)))
                return true;
        }
        return false;
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
            if (group.VoidLevels is { } voids)
            {
                foreach (var (btree, level) in voids)
                    commit.VoidLevels.Add((btree, level));
            }
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
            if (_trees[(int)p.Btree]!.RootNode is { } root)
            {
                ReleaseWrittenPins(root, root.WrittenSectors);
                BecomeReachable(root, root.WrittenSectors);
            }
            return;
        }
        _pendingByLevel[(p.Btree, p.Level)].Remove(p.Pos);
        var holder = FindCached(_trees[(int)p.Btree]!, p.Level, p.Pos);
        PinNode(holder, seq);
        if (holder.TryFind(p.Pos, out var run, out var i) && PtrFields.IsWellFormed(run.ValueOf(i)))
        {
            var value = run.ValueOf(i);
            var sectors = PtrFields.SectorsWritten(value);
            if (_cache.TryGet(PtrFields.OffsetBytes(value), out var child) && child.Seq == PtrFields.Seq(value))
            {
                ReleaseWrittenPins(child, sectors);
                if (child.DurableSectors >= sectors && sectors > 0)
                    BecomeReachable(child, sectors);
            }
        }
    }

    /// <summary>
    /// A journaled update names <paramref name="node"/> durable up to <paramref name="sectors"/>.
    /// Newly reachable, the edits it holds unwritten are recorded (they were not journaled while it
    /// was unreachable) and take its held frees; the children its durable content names become
    /// reachable too (only when that content is exactly its merged run: a later write of the node
    /// names them again through its own pointer update).
    /// </summary>
    private void BecomeReachable(BtreeNode node, int sectors)
    {
        var wasReachable = node.Reachable;
        node.Reachable = true;
        if (node.Level == 0)
            return;
        if (!wasReachable)
        {
            using var change = OpenChange();
            PendingGroup? group = null;
            var unwritten = node.Unwritten.View;
            for (var i = 0; i < unwritten.Count; i++)
                group = Record(new PendingPosition(node.Btree, node.Level, unwritten.Entries[i].Key.Pos)) ?? group;
            if (node.HeldFrees is { Count: > 0 } held)
            {
                if (group is not null)
                {
                    group.Frees.AddRange(held);
                    node.HeldFrees = null;
                }
                else
                {
                    ReleaseHeldFrees(node, PointerPosition(node));
                }
            }
        }
        if (node.DurableSectors != sectors)
            return;
        var children = new List<(BtreeNode Child, int Sectors)>();
        var merged = node.Merged.View;
        for (var i = 0; i < merged.Count; i++)
        {
            var value = merged.ValueOf(i);
            if (!PtrFields.IsWellFormed(value) || !_cache.TryGet(PtrFields.OffsetBytes(value), out var child) ||
                child.Seq != PtrFields.Seq(value) || child.Reachable)
            {
                continue;
            }
            var childSectors = PtrFields.SectorsWritten(value);
            if (childSectors > 0 && child.DurableSectors >= childSectors)
                children.Add((child, childSectors));
        }
        foreach (var (child, childSectors) in children)
            BecomeReachable(child, childSectors);
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

    /// <summary>
    /// A collapsing root's pins pass to the child that becomes the root. Until the root change
    /// naming that child commits, recovery still starts from the old root and needs the interior
    /// keys journaled for it (rule c); the pins go with the child's written sectors as they are
    /// now, so the root record that names the child at least that far releases them.
    /// </summary>
    private void HandPinsToNewRoot(BtreeNode child, BtreeNode oldRoot)
    {
        var oldest = oldRoot.UnwrittenPin;
        if (oldRoot.WrittenPins is { } pins)
        {
            foreach (var (seq, _) in pins)
                oldest = oldest == 0 ? seq : Math.Min(oldest, seq);
        }
        if (oldest == 0)
            return;
        _journal!.Pin(oldest);
        (child.WrittenPins ??= []).Add((oldest, child.WrittenSectors));
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
