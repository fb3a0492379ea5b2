// What recovery needs from the engine: the node allocator's state (derived, rebuilt at every
// mount from the pointers reachable from the roots) and journal replay.
//
// Allocator: without keys to replay, one walk of the interior nodes marks every reachable slot
// (and caches those nodes). Before a replay the nodes on disk may be older than the journal says
// (a parent's pointer still has the old sectors_written, a split's new nodes are named only by
// journal keys), so the walk reads every bset a node has (sectors_written ignored) and also marks
// what the journal's interior keys name: a superset, so no slot in use is handed out while
// replay restructures. After the replay, FinishReplay rebuilds the allocator exactly from the
// replayed tree, keeping the slots that pending interior edits still have to free.
//
// Replay applies the deduplicated journal keys, interior levels first (highest first, so every
// descent already sees its replayed pointers), then the leaves. A replayed key is not journaled
// again: its node pins the key's original seq until it is written. The structure changes a
// replay causes are ordinary pending interior edits, journaled by write-back once the journal
// has started. In tolerant mode (fsck, read-only mounts) a key that cannot be replayed because a
// node on its path is unreadable is set aside, its seq stays pinned, and RetryReplay tries again
// after topology repair. fsck checkpoints before that retry: a checkpoint covers every seq
// replayed at mount, so a key retried after one pins nothing (there is no entry left to keep);
// it lives in memory, in a dirty node or set aside again, until the next checkpoint.
using Basalt.Btree.Node;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>
/// A journal key to replay and the seq of the entry that holds it; for a journal-only delta, its
/// ordinal among the deltas at its position in that entry (from 1, in commit order).
/// </summary>
public readonly record struct ReplayKey(BtreeUpdate Update, ulong Seq, uint Ordinal = 0)
{
    /// <summary>The version a replayed delta folds at.</summary>
    public DeltaVersion Version => new(Seq, Ordinal);
}

/// <summary>A key replay could not apply, and why.</summary>
public sealed record ReplayFailure(ReplayKey Key, string Reason);

public sealed partial class BtreeEngine
{
    private readonly List<(ReplayFailure Failure, bool Pinned)> _unreplayed = [];

    /// <summary>Interior nodes MarkSubtreeConservatively has read, by btree, level, slot and node seq (cleared by FinishReplay).</summary>
    private readonly HashSet<(BtreeId Btree, byte Level, long Offset, ulong Seq)> _conservativelyMarked = [];

    /// <summary>The journal seq the newest checkpoint covered (0: none since mount).</summary>
    private ulong _checkpointedSeq;

    /// <summary>Keys set aside by a tolerant replay (their seqs stay pinned until RetryReplay, unless a checkpoint covered them).</summary>
    public IReadOnlyList<ReplayFailure> Unreplayed
    {
        get
        {
            lock (_writerGate)
                return [.. _unreplayed.Select(u => u.Failure)];
        }
    }

    /// <summary>
    /// Replays <paramref name="keys"/> (deduplicated, newest per position). Interior keys first,
    /// top level down; <paramref name="beforeLeaves"/> runs between the interior levels and the
    /// leaves, when the tree's structure is the replayed one and its leaves are still the disk's.
    /// </summary>
    public void Replay(IReadOnlyList<ReplayKey> keys, bool tolerant, Action? beforeLeaves = null)
    {
        ArgumentNullException.ThrowIfNull(keys);
        // One list per level, each in (btree, position) order: a replay plan's keys already are,
        // so each list is only checked, and sorted only when it is not.
        var byLevel = new SortedDictionary<byte, List<ReplayKey>>(Comparer<byte>.Create(static (a, b) => b.CompareTo(a)));
        var counts = new Dictionary<byte, int>();
        foreach (var key in keys)
            counts[key.Update.Level] = counts.GetValueOrDefault(key.Update.Level) + 1;
        foreach (var (level, count) in counts)
            byLevel.Add(level, new List<ReplayKey>(count));
        foreach (var key in keys)
            byLevel[key.Update.Level].Add(key);
        foreach (var (level, list) in byLevel)
        {
            if (level == 0 && beforeLeaves is not null)
            {
                beforeLeaves();
                beforeLeaves = null;
            }
            if (!IsInReplayOrder(list))
                list.Sort(static (x, y) => x.Update.Btree != y.Update.Btree ? ((int)x.Update.Btree).CompareTo((int)y.Update.Btree) : x.Update.Key.Pos.CompareTo(y.Update.Key.Pos));
            foreach (var key in list)
                ReplayOne(key, tolerant);
        }
        beforeLeaves?.Invoke();
    }

    private static bool IsInReplayOrder(List<ReplayKey> keys)
    {
        for (var i = 1; i < keys.Count; i++)
        {
            var a = keys[i - 1].Update;
            var b = keys[i].Update;
            if (a.Btree > b.Btree || (a.Btree == b.Btree && a.Key.Pos > b.Key.Pos))
                return false;
        }
        return true;
    }

    /// <summary>Tries the keys a tolerant replay set aside again (after topology repair); returns those that still fail.</summary>
    public IReadOnlyList<ReplayFailure> RetryReplay()
    {
        List<ReplayFailure> again;
        lock (_writerGate)
        {
            again = [.. _unreplayed.Select(u => u.Failure)];
            UnpinUnreplayed();
        }
        foreach (var f in again.OrderByDescending(f => f.Key.Update.Level))
            ReplayOne(f.Key, tolerant: true);
        lock (_writerGate)
            return [.. _unreplayed.Select(u => u.Failure)];
    }

    /// <summary>Gives up on the keys still set aside: their pins are released (the caller reports them lost).</summary>
    public IReadOnlyList<ReplayFailure> AbandonUnreplayed()
    {
        lock (_writerGate)
        {
            var lost = _unreplayed.Select(u => u.Failure).ToList();
            UnpinUnreplayed();
            return lost;
        }
    }

    /// <summary>Releases the pins the set-aside keys hold and forgets them (writer gate held).</summary>
    private void UnpinUnreplayed()
    {
        foreach (var (f, pinned) in _unreplayed)
        {
            if (pinned)
                _journal.Unpin(f.Key.Seq);
        }
        _unreplayed.Clear();
    }

    /// <summary>A replayed key still needs its entry: no checkpoint has covered its seq yet.</summary>
    private bool NeedsPin(ulong seq) => seq > Volatile.Read(ref _checkpointedSeq);

    /// <summary>A checkpoint made every commit up to <paramref name="seq"/> part of the btrees on disk.</summary>
    private void CheckpointCovered(ulong seq)
    {
        if (seq > _checkpointedSeq)
            Volatile.Write(ref _checkpointedSeq, seq);
    }

    private void ReplayOne(ReplayKey key, bool tolerant)
    {
        try
        {
            var op = new ReplayOp(key);
            Run<ReplayOp, bool>(ref op, LockMode.Write);
        }
        catch (BasaltException ex) when (tolerant && ex.Class is ErrorClass.Corruption or ErrorClass.Io or ErrorClass.Usage)
        {
            lock (_writerGate)
            {
                var pinned = NeedsPin(key.Seq);
                if (pinned)
                    _journal.Pin(key.Seq);
                _unreplayed.Add((new ReplayFailure(key, ex.Message), pinned));
            }
        }
    }

    private readonly struct ReplayOp(ReplayKey key) : IEngineOp<bool>
    {
        public bool TryRun(BtreeEngine engine, out bool result, out Restart restart)
        {
            result = true;
            restart = default;
            var u = key.Update;
            var tree = engine[u.Btree];
            var r = engine.FindNode(tree, u.Level, u.Key.Pos, out var holder, out var miss);
            if (r == FindResult.Miss)
            {
                restart = Restart.ForMiss(miss);
                return false;
            }
            if (r != FindResult.Found)
            {
                if (u.IsDeletion)
                    return true;
                if (u.Level > 0)
                {
                    BasaltException.Throw(ErrorCode.TopologyError,
                        $"journal replay: btree {u.Btree.ToText()} has no level {u.Level} for the pointer at {u.Key.Pos.ToText()} (seq {key.Seq})");
                }
            }
            // An interior key the node's durable content already holds (or holds a newer edit of):
            // replaying it again would put back a pointer a later, unjournaled edit of a node not
            // yet reachable then replaced.
            if (u.Level > 0 && holder is not null && holder.ContentSeq >= key.Seq)
                return true;
            // A delta is folded into its total, unless the total already holds it.
            var insertKey = u.Key;
            var insertValue = u.Value.Span;
            if (u.Level == 0 && KeyTypeTable.AccumulatorOf(u.Key.Type) is { } accumulator)
            {
                if (!engine.FoldDelta(tree, u, accumulator, key.Seq, key.Version, out insertKey))
                    return true;
                insertValue = engine._foldBuffer.AsSpan(0, accumulator.ValueBytes);
            }
            using var change = engine.OpenChange();
            engine._structureDepth++;
            engine._replayedPosition = u.Level > 0 ? new PendingPosition(u.Btree, u.Level, u.Key.Pos) : null;
            try
            {
                long? oldChild = null;
                if (u.Level > 0 && holder is not null && holder.TryFind(u.Key.Pos, out var run, out var i) && PtrFields.IsWellFormed(run.ValueOf(i)))
                    oldChild = PtrFields.OffsetBytes(run.ValueOf(i));
                if (u.IsDeletion)
                {
                    if (engine.DeleteKey(tree, u.Level, u.Key.Pos, out _) == DeleteOutcome.Miss)
                        throw new InvalidOperationException($"journal replay of {u.ToText()}: node miss after the descent");
                }
                else
                {
                    if (u.Level == 0)
                        engine.EnsureRoot(tree);
                    if (!engine.InsertKey(tree, u.Level, insertKey, insertValue, out _))
                        throw new InvalidOperationException($"journal replay of {u.ToText()}: node miss after the descent");
                }
                if (engine.FindNode(tree, u.Level, u.Key.Pos, out var now, out _) == FindResult.Found && now.IsDirty)
                {
                    if (engine.NeedsPin(key.Seq))
                        engine.PinNode(now, key.Seq);
                    else if (key.Seq > now.MaxSeq)
                        now.MaxSeq = key.Seq;
                }
                if (u.Level > 0)
                    engine.ReplayedPointer(u, oldChild);
                engine._cache.Tick();
            }
            finally
            {
                engine._replayedPosition = null;
                engine._structureDepth--;
            }
            return true;
        }
    }

    /// <summary>
    /// A replayed pointer names a node the walk may not have marked, or names a node the cache
    /// holds an older view of (its pointer's sectors_written grew): mark it, drop the stale copy.
    /// The node the pointer named before is no longer reachable from this pointer.
    /// </summary>
    private void ReplayedPointer(BtreeUpdate u, long? oldChild)
    {
        if (oldChild is { } old && _cache.TryGet(old, out var stale) && !stale.IsDirty && stale.InFlight is null &&
            _trees[(int)u.Btree]!.RootNode != stale)
        {
            _cache.Remove(stale);
        }
        if (u.IsDeletion || !BtreePtrValue.TryRead(u.Value.Span, out var ptr, out _) || ptr.Ptrs.Count == 0)
            return;
        if (_cache.TryGet(ptr.Ptrs[0].OffsetBytes, out var child) && child.Seq == ptr.Seq && !child.IsDirty &&
            child.InFlight is null && child.DurableSectors != ptr.SectorsWritten)
        {
            _cache.Remove(child);
        }
        MarkSubtreeConservatively(u.Btree, (byte)(u.Level - 1), ptr, u.Key.Pos);
    }

    /// <summary>Before a replay: marks every slot the on-disk tree or the journal's interior keys may reach.</summary>
    private void MarkConservatively(IReadOnlyList<BtreeUpdate> interiorKeys)
    {
        foreach (var tree in _trees)
        {
            if (tree?.PendingRoot is { } root && root.Ptr.Ptrs.Count > 0)
                MarkSubtreeConservatively(root.Btree, root.Level, RootReadPtr(root.Ptr), Bpos.Max);
        }
        foreach (var key in interiorKeys)
        {
            if (key.Level > 0 && !key.IsDeletion && BtreePtrValue.TryRead(key.Value.Span, out var ptr, out _))
                MarkSubtreeConservatively(key.Btree, (byte)(key.Level - 1), ptr, key.Key.Pos);
        }
    }

    /// <summary>
    /// Marks a node's slot and, for an interior node read whole (every bset of its seq), its
    /// children's. A slot is followed once per (btree, level, node seq): old pointer versions may
    /// name the slot as the nodes it held before, at another level (a leaf once, an interior node
    /// since) or at the same one (freed and reused for a node of the same level). A read with an
    /// earlier occupant's seq finds nothing to follow, and the visit with the seq of the node the
    /// slot holds now must still reach that node's children.
    /// </summary>
    private void MarkSubtreeConservatively(BtreeId btree, byte level, BtreePtrValue ptr, Bpos max)
    {
        if (ptr.Ptrs.Count == 0)
            return;
        var offset = ptr.Ptrs[0].OffsetBytes;
        // Only the slot is registered: a pointer found here may come from a bset beyond its node's
        // committed sectors_written, so the durable prefix waits for FinishReplay's exact walk.
        if (_allocator.MarkUsed(offset))
            _options.NodeSpaceObserver?.NodeAllocated(offset, _geometry.NodeSize);
        if (level == 0 || !_conservativelyMarked.Add((btree, level, offset, ptr.Seq)))
            return;
        // Every version of every pointer in every bset of the node, not only the newest: the replayed
        // tree may see the node at any of its sectors_written, and each version names its own child.
        foreach (var (key, value) in ReadAllVersions(btree, level, ptr, max))
        {
            if (key.Type == KeyType.BtreePtr && BtreePtrValue.TryRead(value, out var childPtr, out _))
                MarkSubtreeConservatively(btree, (byte)(level - 1), childPtr, key.Pos);
        }
    }

    /// <summary>Reads a node's slot raw and returns every key of every bset of it (nothing when unreadable).</summary>
    private List<(Bkey Key, byte[] Value)> ReadAllVersions(BtreeId btree, byte level, BtreePtrValue ptr, Bpos max)
    {
        var offset = ptr.Ptrs[0].OffsetBytes;
        var size = _geometry.NodeSize;
        if (offset < 0 || offset % FormatLimits.SectorSize != 0 || offset + size > _device.Size)
            return [];
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(size);
        try
        {
            try
            {
                _device.Read(offset, buffer.AsSpan(0, size));
            }
            catch (BasaltException ex) when (ex.Class == ErrorClass.Io)
            {
                return [];
            }
            var ctx = new NodeReadContext(btree, level, max, ptr.With(sectorsWritten: 0, flags: ptr.Flags | BtreePtrFlags.RangeUpdated),
                _geometry.NodeMagic, size, _geometry.BlockSize, _geometry.Version, _geometry.VersionMin, _device.Size);
            return BtreeNodeReader.ReadAllVersions(buffer.AsSpan(0, size), ctx);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// After a replay: rebuilds the node allocator exactly from the replayed tree (reading and
    /// caching its interior nodes), keeping the slots pending interior edits have yet to free.
    /// </summary>
    public void FinishReplay()
    {
        lock (_writerGate)
        {
            _lock.EnterWriteLock();
            try
            {
                _conservativelyMarked.Clear();
                var reachable = new Dictionary<long, int>();
                WalkFromRoots(ptr => reachable.TryAdd(ptr.Ptrs[0].OffsetBytes, ptr.SectorsWritten * FormatLimits.SectorSize));
                foreach (var group in _pendingGroups)
                {
                    foreach (var offset in group.Frees)
                        reachable.TryAdd(offset, -1);
                }
                foreach (var node in _cache.Nodes)
                {
                    foreach (var offset in node.HeldFrees ?? [])
                        reachable.TryAdd(offset, -1);
                }
                foreach (var offset in _allocator.UsedSlots())
                {
                    if (!reachable.ContainsKey(offset) && _allocator.IsUsed(offset))
                        _allocator.Release(offset);
                }
                if (_mountProblems.Count > 0 || _options.KeepSlotsHoldingNodes)
                    KeepSlotsHoldingNodes();
                var observer = _options.NodeSpaceObserver;
                List<long>? missed = null;
                foreach (var (offset, written) in reachable)
                {
                    if (!_allocator.CanHold(offset))
                        continue;
                    if (_allocator.MarkUsed(offset))
                    {
                        // The conservative marking is a superset of what the replayed tree reaches:
                        // a reachable slot it missed was free for replay to hand out.
                        if (written >= 0)
                            (missed ??= []).Add(offset);
                        observer?.NodeAllocated(offset, _geometry.NodeSize);
                        if (written >= 0)
                            observer?.NodeWritten(offset, written);
                    }
                    else if (written > 0)
                    {
                        observer?.NodeWritten(offset, written);
                    }
                }
                if (missed is not null)
                {
                    BasaltException.Throw(ErrorCode.InvariantViolated,
                        $"journal replay: the replayed btrees reach node slots the marking before the replay did not hold: {string.Join(", ", missed.Order())}");
                }
                // Buckets only old pointer versions named, and nothing reachable lives in now.
                _allocator.DropEmptyFound();
                Evict();
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
    }

    /// <summary>Reads the whole interior structure from the roots and marks every reachable slot used.</summary>
    private void RebuildAllocator()
    {
        WalkFromRoots(MarkReachable);
        if (_mountProblems.Count > 0 || _options.KeepSlotsHoldingNodes)
            KeepSlotsHoldingNodes();
        Evict();
    }

    /// <summary>
    /// Walks every btree's interior nodes from its root (reading and caching the ones not cached),
    /// handing each pointer to <paramref name="mark"/>; false from it means "seen before". Problems
    /// (unreadable nodes, bad pointers, a node reachable twice) go to <see cref="MountProblems"/>.
    /// </summary>
    private void WalkFromRoots(Func<BtreePtrValue, bool> mark)
    {
        foreach (var tree in _trees)
        {
            if (tree is null)
                continue;
            var root = tree.RootNode is { } r ? new BtreeRoot(tree.Id, r.Level, r.MakePtr(_geometry.Device)) : tree.PendingRoot;
            if (root is null)
                continue;
            if (root.Ptr.Ptrs.Count == 0)
            {
                _mountProblems.Add($"{root.Btree.ToText()}: root pointer without a device pointer");
                continue;
            }
            mark(root.Ptr);
            if (root.Level == 0)
                continue;
            var node = tree.RootNode;
            if (node is null)
            {
                try
                {
                    node = ReadNode(root.Btree, root.Level, RootReadPtr(root.Ptr), Bpos.Max);
                }
                catch (BasaltException ex) when (ex.Class is ErrorClass.Corruption or ErrorClass.Io)
                {
                    _mountProblems.Add(ex.Message);
                    continue;
                }
                _cache.Add(node);
                tree.RootNode = node;
                tree.PendingRoot = null;
            }
            WalkInterior(node, mark);
        }
    }

    private void WalkInterior(BtreeNode node, Func<BtreePtrValue, bool> mark)
    {
        var cursor = new NodeCursor(node, node.MinKey, reverse: false);
        var children = new List<(Bpos Max, byte[] Value)>();
        while (cursor.Next(out var run, out var i))
            children.Add((run.Entries[i].Key.Pos, run.ValueOf(i).ToArray()));
        foreach (var (max, value) in children)
        {
            if (!BtreePtrValue.TryRead(value, out var ptr, out var problem) || ptr.Ptrs.Count == 0)
            {
                _mountProblems.Add($"{node.ToText()}: child pointer at {max.ToText()}: {problem ?? "no device pointer"}");
                continue;
            }
            if (!mark(ptr))
            {
                _mountProblems.Add($"{node.ToText()}: child at {max.ToText()} (offset {ptr.Ptrs[0].OffsetBytes}) is reachable twice");
                continue;
            }
            if (node.Level == 1)
                continue;
            if (!_cache.TryGet(ptr.Ptrs[0].OffsetBytes, out var child) || child.Seq != ptr.Seq)
            {
                try
                {
                    child = ReadNode(node.Btree, (byte)(node.Level - 1), ptr, max);
                }
                catch (BasaltException ex) when (ex.Class is ErrorClass.Corruption or ErrorClass.Io)
                {
                    _mountProblems.Add(ex.Message);
                    continue;
                }
                _cache.Add(child);
            }
            WalkInterior(child, mark);
        }
    }

    /// <summary>Marks a pointer's slot used; false when it was marked already (reachable twice).</summary>
    private bool MarkReachable(BtreePtrValue ptr)
    {
        var offset = ptr.Ptrs[0].OffsetBytes;
        if (!_allocator.CanHold(offset))
            return true;
        if (!_allocator.MarkUsed(offset))
            return false;
        if (_options.NodeSpaceObserver is { } observer)
        {
            observer.NodeAllocated(offset, _geometry.NodeSize);
            observer.NodeWritten(offset, ptr.SectorsWritten * FormatLimits.SectorSize);
        }
        return true;
    }
}
