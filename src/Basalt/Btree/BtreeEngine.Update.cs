// Updates inside nodes and the copy-on-write structure changes they trigger. Everything here
// runs under the writer gate and the write lock, inside a change scope (BtreeEngine.Interior.cs):
// every interior edit is recorded there and reaches the journal once the nodes it points at are
// durable. A change to a node that does not fit rebuilds the node: split when its live data is
// above 2/3 of capacity, else compact. Parent edits re-descend from the root at the parent's
// level, so a parent that itself restructures in between is handled naturally. A replacement
// node inherits the journal pins of the nodes it replaces: it holds their unwritten keys now.
using Basalt.Btree.Node;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

internal enum DeleteOutcome
{
    NotFound,
    Deleted,
    Miss,
}

public sealed partial class BtreeEngine
{
    /// <summary>Inserts or overwrites a key in the node at <paramref name="level"/> covering it. False on a miss.</summary>
    internal bool InsertKey(Btree tree, byte level, in Bkey key, ReadOnlySpan<byte> value, out NodeMiss miss) =>
        InsertKey(tree, level, key, value, out miss, out _);

    /// <summary>Inserts the key; <paramref name="holder"/> is the node that now holds it.</summary>
    internal bool InsertKey(Btree tree, byte level, in Bkey key, ReadOnlySpan<byte> value, out NodeMiss miss, out BtreeNode? holder)
    {
        holder = null;
        var size = BkeyFormat.EncodedSize(value.Length);
        for (var attempt = 0; ; attempt++)
        {
            var r = FindNode(tree, level, key.Pos, out var node, out miss);
            if (r == FindResult.Miss)
                return false;
            if (r != FindResult.Found)
                BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {tree.Id.ToText()} has no level {level}");
            if (_pointerRepair && key.Type == KeyType.BtreePtr && BtreePtrValue.TryRead(value, out var ptr, out _) && ptr.MinKey < node.MinKey)
            {
                // A repair extends a child down past its node's min: see MoveBoundaryDown.
                var moved = MoveBoundaryDown(tree, node, ptr.MinKey, out miss);
                if (moved == BoundaryMove.Miss)
                    return false;
                if (moved == BoundaryMove.Moved)
                    continue;
            }
            node.Probe(key.Pos, out var live, out var unwritten, out _);
            var liveAfter = node.LiveBytes - live + size;
            var unwrittenAfter = node.Unwritten.EncodedBytes - unwritten + size;
            if (Fits(node, liveAfter, unwrittenAfter))
            {
                node.Unwritten.Set(key, value);
                node.LiveBytes = liveAfter;
                MarkDirty(node);
                if (level > 0)
                {
                    ShapeChanged();
                    Record(new PendingPosition(tree.Id, level, key.Pos));
                }
                holder = node;
                return true;
            }
            if (attempt >= 3)
                throw new InvalidOperationException($"{node.ToText()}: key {key.ToText()} does not fit after restructuring");
            Restructure(tree, node, liveAfter);
        }
    }

    internal void InsertKeyCached(Btree tree, byte level, in Bkey key, ReadOnlySpan<byte> value)
    {
        if (!InsertKey(tree, level, key, value, out _))
            throw new InvalidOperationException($"{tree.Id.ToText()}: parent at level {level} of a cached node is not cached");
    }

    /// <summary>Deletes the key at pos in the node at <paramref name="level"/> covering it.</summary>
    internal DeleteOutcome DeleteKey(Btree tree, byte level, Bpos pos, out NodeMiss miss)
    {
        var r = FindNode(tree, level, pos, out var node, out miss);
        if (r == FindResult.Miss)
            return DeleteOutcome.Miss;
        if (r != FindResult.Found)
            return DeleteOutcome.NotFound;
        node.Probe(pos, out var live, out var unwritten, out var onDiskRun);
        if (live == 0)
            return DeleteOutcome.NotFound;
        var liveAfter = node.LiveBytes - live;
        if (level > 0)
        {
            ShapeChanged();
            Record(new PendingPosition(tree.Id, level, pos));
        }
        if (!onDiskRun)
        {
            // Only in the unwritten run: nothing on disk or in older runs to shadow.
            node.Unwritten.Remove(pos);
            node.LiveBytes = liveAfter;
            MarkDirty(node);
            return DeleteOutcome.Deleted;
        }
        var unwrittenAfter = node.Unwritten.EncodedBytes - unwritten + BkeyFormat.HeaderSize;
        if (Fits(node, liveAfter, unwrittenAfter))
        {
            node.Unwritten.Set(new Bkey(pos, KeyType.Deleted), []);
            node.LiveBytes = liveAfter;
            MarkDirty(node);
            return DeleteOutcome.Deleted;
        }
        // The whiteout does not fit: rebuild the node without the key instead. A split must
        // not pick the deleted key as its pivot: an interior node would end at a child pointer
        // that is then gone, leaving its last child short of its max (topology repair deletes
        // pointers through here, and would close that gap across the split).
        Restructure(tree, node, liveAfter, dropping: pos);
        return DeleteOutcome.Deleted;
    }

    internal void DeleteKeyCached(Btree tree, byte level, Bpos pos)
    {
        if (DeleteKey(tree, level, pos, out _) != DeleteOutcome.Deleted)
            throw new InvalidOperationException($"{tree.Id.ToText()}: pointer at {pos.ToText()} level {level} not found in a cached parent");
    }

    private enum BoundaryMove
    {
        Moved,
        NotMovable,
        Miss,
    }

    /// <summary>
    /// Topology repair (a pointer edit) extends a child's range down to <paramref name="newMin"/>,
    /// below the min of the node that holds its pointer. fsck walks an interior node by the range
    /// it read, but an earlier edit of the same walk may have split that node (its live pointers no
    /// longer fit in one: a range filled from the node scan), so what fsck sees as one node is two
    /// here, and the child now straddles their boundary. The boundary moves down to
    /// <paramref name="newMin"/>: the left sibling is rebuilt ending just before it (or dropped,
    /// when the extension swallows its whole range), the node rebuilt starting at it, and the
    /// parent's pointers follow (which may move a boundary one level up the same way). The walk has
    /// already deleted the left sibling's pointers at or after <paramref name="newMin"/> (the child
    /// before the extended one ends just before it); when some are still there the boundary stays.
    /// </summary>
    private BoundaryMove MoveBoundaryDown(Btree tree, BtreeNode node, Bpos newMin, out NodeMiss miss)
    {
        var r = FindNode(tree, node.Level, node.MinKey.Predecessor(), out var left, out miss);
        if (r == FindResult.Miss)
            return BoundaryMove.Miss;
        if (r != FindResult.Found || left == node || left.MaxKey != node.MinKey.Predecessor() || tree.RootNode == node)
            return BoundaryMove.NotMovable;
        var from = new NodeCursor(left, newMin, reverse: false);
        if (from.Next(out _, out _))
            return BoundaryMove.NotMovable;
        EnsureReserve(tree);
        _structureDepth++;
        try
        {
            var parentLevel = (byte)(node.Level + 1);
            var swallowed = left.MinKey >= newMin;
            var boundary = swallowed ? left.MinKey : newMin;
            var leftMax = left.MaxKey;
            // The left sibling's pointer goes first: until the node's pointer is overwritten, no
            // pointer reaches [boundary, node's min), which holds no key.
            DeleteKeyCached(tree, parentLevel, leftMax);
            if (!swallowed)
            {
                var shrunk = NewNode(tree, left.Level, left.MinKey, newMin.Predecessor(), left.Generation + 1, left.CollectLive(), left);
                FreeNode(left);
                InsertKeyCached(tree, parentLevel, new Bkey(shrunk.MaxKey, KeyType.BtreePtr), shrunk.MakePtr(_geometry.Device).ToBytes());
            }
            else
            {
                FreeNode(left);
            }
            var extended = NewNode(tree, node.Level, boundary, node.MaxKey, node.Generation + 1, node.CollectLive(), node);
            FreeNode(node);
            InsertKeyCached(tree, parentLevel, new Bkey(extended.MaxKey, KeyType.BtreePtr), extended.MakePtr(_geometry.Device).ToBytes());
            _compactions++;
            return BoundaryMove.Moved;
        }
        finally
        {
            _structureDepth--;
        }
    }

    /// <summary>Would the node's next write hold these bytes? Written nodes append; new nodes write everything at once.</summary>
    private bool Fits(BtreeNode node, long liveAfter, long unwrittenAfter)
    {
        var nodeSize = _geometry.NodeSize;
        if (!node.HasFirstRecord)
            return BtreeNodeWriter.FirstRecordSize(liveAfter, _geometry.BlockSize) <= nodeSize;
        var used = (long)node.WrittenSectors * FormatLimits.SectorSize;
        if (unwrittenAfter > 0)
            used += BtreeNodeWriter.AppendRecordSize(unwrittenAfter, _geometry.BlockSize);
        return used <= nodeSize;
    }

    private void MarkDirty(BtreeNode node)
    {
        node.Version++;
        if (node.IsDirty)
            return;
        node.IsDirty = true;
        _dirty.Add(node);
    }

    /// <summary>Rebuilds a full node: split when its live data (after the pending change) exceeds 2/3, else compact.</summary>
    /// <param name="dropping">A key being deleted: left out of the rebuilt node(s).</param>
    private void Restructure(Btree tree, BtreeNode node, long liveAfter, Bpos? dropping = null)
    {
        EnsureReserve(tree);
        _structureDepth++;
        try
        {
            // A pointer edit of topology repair (fsck's level edits) splits only a node whose live
            // keys no longer fit in one: fsck walks the node it is repairing by its range, which a
            // split in the middle of the walk would move under it.
            var split = _pointerRepair
                ? BtreeNodeWriter.FirstRecordSize(liveAfter, _geometry.BlockSize) > _geometry.NodeSize
                : liveAfter * 3 > (long)NodeCapacity * 2;
            if (split && node.CountLive(dropping is null ? 2 : 3) >= (dropping is null ? 2 : 3))
                Split(tree, node, dropping);
            else
                Replace(tree, node, dropping is { } d ? CollectLiveExcept(node, d) : node.CollectLive(), countAsCompaction: true);
        }
        finally
        {
            _structureDepth--;
        }
    }

    private static KeyRun CollectLiveExcept(BtreeNode node, Bpos dropping)
    {
        var live = node.CollectLive();
        var keys = new KeyRunBuilder(live.Count, Math.Max(16, live.ArenaLength));
        for (var k = 0; k < live.Count; k++)
        {
            if (live[k].Pos != dropping)
                keys.Add(live[k].Key, live.ValueOf(k));
        }
        return keys.Build();
    }

    private void Split(Btree tree, BtreeNode node, Bpos? dropping = null)
    {
        if (tree.RootNode == node && node.Level + 1 >= FormatLimits.MaxBtreeDepth)
            BasaltException.Throw(ErrorCode.InvariantViolated, $"{node.ToText()}: btree would exceed {FormatLimits.MaxBtreeDepth} levels");
        // One pass over the live keys: the first node takes keys while it stays within half of the
        // live bytes (at least one key), the second the rest (at least one: the caller saw two).
        var half = node.LiveBytes / 2;
        var estimate = (node.Merged.Count + node.Unwritten.Count) / 2 + 1;
        var first = new KeyRunBuilder(estimate, (int)Math.Min(int.MaxValue, half + 64));
        var second = new KeyRunBuilder(estimate, (int)Math.Min(int.MaxValue, half + 64));
        long acc = 0;
        var cursor = new NodeCursor(node, node.MinKey, reverse: false);
        while (cursor.Next(out var run, out var i))
        {
            ref readonly var e = ref run.Entries[i];
            if (e.Key.Pos == dropping)
                continue;
            if (first.Count == 0 || (second.Count == 0 && acc + e.EncodedSize <= half))
            {
                first.Add(e.Key, run.ValueOf(i));
                acc += e.EncodedSize;
            }
            else
            {
                second.Add(e.Key, run.ValueOf(i));
            }
        }
        if (second.Count == 0)
            throw new InvalidOperationException($"{node.ToText()}: split left the second node empty (live bytes {node.LiveBytes})");
        var pivot = first.LastPos;
        var generation = node.Generation + 1;
        var n1 = NewNode(tree, node.Level, node.MinKey, pivot, generation, first.Build(), node);
        var n2 = NewNode(tree, node.Level, pivot.Successor(), node.MaxKey, generation, second.Build(), node);
        var wasRoot = tree.RootNode == node;
        FreeNode(node);
        _splits++;
        if (wasRoot)
        {
            var builder = new KeyRunBuilder(2, 2 * BtreePtrValue.SizeFor(1));
            builder.Add(new Bkey(pivot, KeyType.BtreePtr), n1.MakePtr(_geometry.Device).ToBytes());
            builder.Add(new Bkey(Bpos.Max, KeyType.BtreePtr), n2.MakePtr(_geometry.Device).ToBytes());
            // The new root's two pointers are part of its first write, not interior edits of their
            // own: the new root is blocked until both children are durable (IsBlocked).
            SetRoot(tree, NewNode(tree, (byte)(node.Level + 1), Bpos.Min, Bpos.Max, generation, builder.Build()));
            _rootSplits++;
            return;
        }
        // Upper half first: until n1's pointer lands, [min, pivot] is a gap without keys, so any
        // restructure of the parent in between keeps that range and pivot's position together.
        var parentLevel = (byte)(node.Level + 1);
        InsertKeyCached(tree, parentLevel, new Bkey(node.MaxKey, KeyType.BtreePtr), n2.MakePtr(_geometry.Device).ToBytes());
        InsertKeyCached(tree, parentLevel, new Bkey(pivot, KeyType.BtreePtr), n1.MakePtr(_geometry.Device).ToBytes());
    }

    /// <summary>Copy-on-write rewrite of one node: same keys and range, generation + 1.</summary>
    private BtreeNode Replace(Btree tree, BtreeNode node, KeyRun keys, bool countAsCompaction)
    {
        var fresh = NewNode(tree, node.Level, node.MinKey, node.MaxKey, node.Generation + 1, keys, node);
        var wasRoot = tree.RootNode == node;
        FreeNode(node);
        if (countAsCompaction)
            _compactions++;
        if (wasRoot)
            SetRoot(tree, fresh);
        else
            InsertKeyCached(tree, (byte)(node.Level + 1), new Bkey(node.MaxKey, KeyType.BtreePtr), fresh.MakePtr(_geometry.Device).ToBytes());
        return fresh;
    }

    /// <summary>
    /// After deletes: merges the node covering pos with a sibling while it is underfull (live &lt; 1/3
    /// and the pair fits in 2/3, or the node is empty), walking up; then collapses single-child roots.
    /// False on a miss (a sibling or child to read).
    /// </summary>
    internal bool TryMergeAt(Btree tree, byte level, Bpos pos, out NodeMiss miss)
    {
        miss = default;
        var cap = (long)NodeCapacity;
        var compactedParent = false;
        while (tree.RootNode is { } root && level < root.Level)
        {
            var r = FindNode(tree, level, pos, out var node, out miss);
            if (r == FindResult.Miss)
                return false;
            if (r != FindResult.Found || node.LiveBytes * 3 >= cap)
                break;
            var parent = FindCached(tree, (byte)(level + 1), pos);
            if (!TryFindSibling(parent, node, out var siblingMax, out var siblingValue))
                break;
            var offset = PtrFields.OffsetBytes(siblingValue);
            if (!_cache.TryGet(offset, out var sibling) || sibling.Seq != PtrFields.Seq(siblingValue))
            {
                miss = new NodeMiss(tree, parent, level, siblingMax, siblingValue.ToArray());
                return false;
            }
            var combined = node.LiveBytes + sibling.LiveBytes;
            if ((combined * 3 > cap * 2 && node.LiveBytes != 0) ||
                BtreeNodeWriter.FirstRecordSize(combined, _geometry.BlockSize) > _geometry.NodeSize ||
                !HasMergeReserve(tree))
                break;
            if (!ParentAbsorbsMerge(parent))
            {
                // Compact the parent first (a fresh node has room for both edits); a parent that
                // would split instead is left alone and the merge waits.
                if (compactedParent || parent.LiveBytes * 3 > cap * 2 || !HasReserve(tree))
                    break;
                Restructure(tree, parent, parent.LiveBytes);
                compactedParent = true;
                continue;
            }
            var (lower, upper) = node.MinKey < sibling.MinKey ? (node, sibling) : (sibling, node);
            Merge(tree, lower, upper);
            compactedParent = false;
            level++;
        }
        return CollapseRoot(tree, out miss);
    }

    private static bool TryFindSibling(BtreeNode parent, BtreeNode node, out Bpos siblingMax, out ReadOnlySpan<byte> value)
    {
        if (node.MaxKey < parent.MaxKey)
        {
            var next = new NodeCursor(parent, node.MaxKey.Successor(), reverse: false);
            if (next.Next(out var run, out var i))
            {
                siblingMax = run.Entries[i].Key.Pos;
                value = run.ValueOf(i);
                return PtrFields.IsWellFormed(value);
            }
        }
        if (node.MinKey > parent.MinKey)
        {
            var prev = new NodeCursor(parent, node.MinKey.Predecessor(), reverse: true);
            if (prev.Next(out var run, out var i))
            {
                siblingMax = run.Entries[i].Key.Pos;
                value = run.ValueOf(i);
                return PtrFields.IsWellFormed(value);
            }
        }
        siblingMax = default;
        value = default;
        return false;
    }

    /// <summary>
    /// Both parent edits of a merge (drop the lower pointer, overwrite the upper one) must land in
    /// this parent without restructuring it: a split between them could put the pivot at the lower
    /// pointer's key and leave a parent whose range no child pointer covers. When they would not
    /// fit, the parent is compacted first, or the merge waits when it would have to split.
    /// </summary>
    private bool ParentAbsorbsMerge(BtreeNode parent)
    {
        var pointerBytes = BkeyFormat.EncodedSize(BtreePtrValue.SizeFor(1));
        var unwrittenAfter = parent.Unwritten.EncodedBytes + BkeyFormat.HeaderSize + pointerBytes;
        return Fits(parent, parent.LiveBytes, unwrittenAfter);
    }

    private void Merge(Btree tree, BtreeNode lower, BtreeNode upper)
    {
        _structureDepth++;
        try
        {
            var a = lower.CollectLive();
            var b = upper.CollectLive();
            var builder = new KeyRunBuilder(a.Count + b.Count + 1, a.ArenaLength + b.ArenaLength + 16);
            for (var i = 0; i < a.Count; i++)
                builder.Add(a[i].Key, a.ValueOf(i));
            for (var i = 0; i < b.Count; i++)
                builder.Add(b[i].Key, b.ValueOf(i));
            var generation = Math.Max(lower.Generation, upper.Generation) + 1;
            var merged = NewNode(tree, lower.Level, lower.MinKey, upper.MaxKey, generation, builder.Build(), lower, upper);
            FreeNode(lower);
            FreeNode(upper);
            _merges++;
            // Drop the lower pointer first: the gap it leaves is next to the upper pointer's key, so
            // any restructure of the parent keeps both in one node for the overwrite that follows.
            var parentLevel = (byte)(lower.Level + 1);
            DeleteKeyCached(tree, parentLevel, lower.MaxKey);
            InsertKeyCached(tree, parentLevel, new Bkey(upper.MaxKey, KeyType.BtreePtr), merged.MakePtr(_geometry.Device).ToBytes());
        }
        finally
        {
            _structureDepth--;
        }
    }

    /// <summary>While the root is interior with exactly one child, that child becomes the root.</summary>
    private bool CollapseRoot(Btree tree, out NodeMiss miss)
    {
        miss = default;
        while (tree.RootNode is { Level: > 0 } root && root.CountLive(2) == 1)
        {
            var cursor = new NodeCursor(root, Bpos.Min, reverse: false);
            cursor.Next(out var run, out var i);
            var value = run.ValueOf(i);
            if (!PtrFields.IsWellFormed(value))
                return true;
            if (!_cache.TryGet(PtrFields.OffsetBytes(value), out var child) || child.Seq != PtrFields.Seq(value))
            {
                miss = new NodeMiss(tree, root, (byte)(root.Level - 1), run.Entries[i].Key.Pos, value.ToArray());
                return false;
            }
            if (child.MinKey != Bpos.Min || child.MaxKey != Bpos.Max)
                return true;
            using var change = OpenChange();
            HandPinsToNewRoot(child, root);
            FreeNode(root);
            DropPendingAtLevel(tree.Id, root.Level);
            SetRoot(tree, child);
            // Interior keys journaled for the level that is gone are void from this commit on.
            VoidLevelsWithRootChange(tree.Id, root.Level);
            _rootCollapses++;
        }
        return true;
    }

    /// <summary>A fresh dirty node in a new slot; it inherits the journal pins of the nodes it replaces.</summary>
    private BtreeNode NewNode(Btree tree, byte level, Bpos min, Bpos max, uint generation, KeyRun keys, params ReadOnlySpan<BtreeNode> replacing)
    {
        var offset = AllocateSlot();
        var node = new BtreeNode(tree.Id, level, min, max, NextSeq(), generation, offset, keys);
        _cache.Add(node);
        MarkDirty(node);
        foreach (var old in replacing)
            InheritPins(node, old);
        if (replacing.Length > 0)
        {
            var contentSeq = ulong.MaxValue;
            foreach (var old in replacing)
                contentSeq = Math.Min(contentSeq, old.ContentSeq);
            node.ContentSeq = contentSeq;
        }
        return node;
    }

    private long AllocateSlot()
    {
        if (_earlyReusable is { } early && _options.DebugFaults.ReuseFreedSlotEarly)
        {
            // Debug-only ordering bug (d): the slot a structure change just freed, at once.
            _earlyReusable = null;
            if (_allocator.MarkUsed(early))
            {
                _options.NodeSpaceObserver?.NodeAllocated(early, _geometry.NodeSize);
                return early;
            }
        }
        return _allocator.Allocate();
    }

    /// <summary>Makes <paramref name="node"/> the root of <paramref name="tree"/>; the root change is journaled once it is durable.</summary>
    private void SetRoot(Btree tree, BtreeNode node)
    {
        tree.RootNode = node;
        tree.PendingRoot = null;
        Record(PendingPosition.Root(tree.Id));
    }

    /// <summary>
    /// Drops a replaced node from memory. A slot that was never written is free at once; a written
    /// one is freed by the interior update that stops pointing at it (reusable once that is durable).
    /// </summary>
    private void FreeNode(BtreeNode node, PendingPosition? pointer = null)
    {
        var at = pointer ?? PointerPosition(node);
        node.IsFreed = true;
        node.IsDirty = false;
        node.Version++;
        _dirty.Remove(node);
        _cache.Remove(node);
        DropPins(node);
        if (node.Reachable && node.Level > 0)
            DropPendingInside(node, at);
        ReleaseHeldFrees(node, at);
        if (node.HasFirstRecord)
            FreeLater(node.Offset, at);
        else
            _allocator.Release(node.Offset);
    }

    /// <summary>
    /// A level of <paramref name="btree"/> is gone (its root collapsed, or the btree was reset):
    /// pending edits at it are moot; their freed slots go with the root change.
    /// </summary>
    private void DropPendingAtLevel(BtreeId btree, byte level)
    {
        var root = Record(PendingPosition.Root(btree));
        foreach (var p in _pendingByPosition.Keys.Where(p => p.Btree == btree && p.Level == level).ToList())
        {
            var group = _pendingByPosition[p];
            _pendingByPosition.Remove(p);
            _pendingByLevel[(btree, level)].Remove(p.Pos);
            group.Positions.Remove(p);
            if (group != root)
            {
                root?.Frees.AddRange(group.Frees);
                group.Frees.Clear();
                if (group.Positions.Count == 0)
                    _pendingGroups.Remove(group);
            }
        }
    }

    /// <summary>
    /// Slots one structure change may need (a split at every level plus a new root), plus what a
    /// Sync's capture may need to restructure parents; checked before an operation changes anything
    /// so running out of node space fails cleanly and a Sync can still persist what exists.
    /// </summary>
    private int ReserveNeeded(Btree tree) => ReserveFor(tree.RootNode?.Level ?? 0);

    /// <summary>
    /// The reserve of a btree whose root is at <paramref name="rootLevel"/>: a split at every level
    /// plus a new root, and the Sync reserve as it will be once this cascade has added up to one
    /// interior node per level.
    /// </summary>
    private int ReserveFor(int rootLevel)
    {
        var levels = rootLevel + 2;
        return (2 * levels) + 1 + SyncReserve() + (2 * levels);
    }

    private int SyncReserve() => (2 * _cache.InteriorCount) + (2 * (MaxRootLevel() + 2));

    private int MaxRootLevel()
    {
        var maxLevel = 0;
        foreach (var t in _trees)
        {
            if (t?.RootNode is { } r)
                maxLevel = Math.Max(maxLevel, r.Level);
        }
        return maxLevel;
    }

    /// <summary>
    /// A merge takes one slot and frees two (later); its parent edits may restructure a node per
    /// level. Smaller than the insert reserve, so deletes can still merge when space is short.
    /// </summary>
    private bool HasMergeReserve(Btree tree) =>
        _allocator.Available >= 2 + (2 * ((tree.RootNode?.Level ?? 0) + 1)) + SyncReserve();

    private bool HasReserve(Btree tree) => _inCapture || _structureDepth > 0 || _allocator.Available >= ReserveNeeded(tree);

    private void EnsureReserve(Btree tree)
    {
        if (HasReserve(tree))
            return;
        BasaltException.Throw(ErrorCode.BtreeNodeSpaceFull,
            $"btree {tree.Id.ToText()}: node space full: {_allocator.Available} of {_allocator.SlotCount} node slots free, " +
            $"{ReserveNeeded(tree)} needed to restructure safely ({_allocator.PendingFreeCount} freed slots become reusable once the journal entries that freed them are flushed)");
    }
}
