// What topology repair needs from the btree engine (docs/topology.md, "What the passes need
// from the btree engine"): a pointer's range is the truth for the node it leads to, and a node
// whose pointer was deleted stays gone. The engine calls these at four points: reading a root,
// descending to a cached child, rewriting a node, and capturing a dirty node for a Sync.
using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

public sealed partial class BtreeEngine
{
    /// <summary>The device the btree passes read nodes from raw.</summary>
    internal IBlockDevice CheckDevice => _device;

    /// <summary>
    /// The pointer a root is read through: a root covers [min, max] whatever its header says, so a
    /// root with a bad range still loads (check_topology reports it and rewrites it over [min, max]).
    /// </summary>
    private static BtreePtrValue RootReadPtr(BtreePtrValue ptr) =>
        ptr.With(minKey: Bpos.Min, flags: ptr.Flags | BtreePtrFlags.RangeUpdated);

    /// <summary>
    /// A clean cached child whose range differs from the RangeUpdated pointer that leads to it
    /// (topology repair moved its range): the descent treats it as a miss, so the node is read
    /// again (the reader applies the pointer's range) and the install replaces the stale copy under
    /// the write lock. A descent never changes the cache itself: it may hold only the read lock.
    /// </summary>
    private static bool RangeMoved(BtreeNode child, ReadOnlySpan<byte> ptrValue, Bpos max)
    {
        // Only repair writes RangeUpdated pointers: the common descent pays one flag test.
        var flags = (BtreePtrFlags)BinaryPrimitives.ReadUInt16LittleEndian(ptrValue[BtreePtrValue.FlagsOffset..]);
        if ((flags & BtreePtrFlags.RangeUpdated) == 0 || child.IsDirty || child.InFlight is not null)
            return false;
        return child.MaxKey != max || child.MinKey != Bpos.Read(ptrValue[BtreePtrValue.MinKeyOffset..]);
    }

    /// <summary>A cached copy the install of <paramref name="fresh"/> replaces: same node, clean, another range.</summary>
    private static bool IsStaleCopy(BtreeNode cached, BtreeNode fresh) =>
        cached.Seq == fresh.Seq && !cached.IsDirty && cached.InFlight is null &&
        (cached.MinKey != fresh.MinKey || cached.MaxKey != fresh.MaxKey);

    /// <summary>
    /// RewriteNode's copy of <paramref name="node"/>: over the range its parent's pointer gives
    /// ([min, max] for a root), keys outside it dropped, its pointer keyed at the range's max.
    /// </summary>
    private void RewriteOverPointerRange(Btree tree, byte level, Bpos pos, BtreeNode node)
    {
        var (min, max) = (Bpos.Min, Bpos.Max);
        if (tree.RootNode != node)
        {
            var parent = FindCached(tree, (byte)(level + 1), pos);
            var cursor = new NodeCursor(parent, pos, reverse: false);
            if (!cursor.Next(out var run, out var i))
                throw new InvalidOperationException($"{parent.ToText()}: no pointer covers {pos.ToText()}");
            max = run.Entries[i].Key.Pos;
            min = Bpos.Read(run.ValueOf(i)[BtreePtrValue.MinKeyOffset..]);
        }
        var live = node.CollectLive();
        var keys = new KeyRunBuilder(live.Count + 1, Math.Max(16, live.ArenaLength));
        for (var k = 0; k < live.Count; k++)
        {
            if (live[k].Pos >= min && live[k].Pos <= max)
                keys.Add(live[k].Key, live.ValueOf(k));
        }
        var fresh = NewNode(tree, node.Level, min, max, node.Generation + 1, keys.Build(), node);
        var wasRoot = tree.RootNode == node;
        FreeNode(node);
        if (wasRoot)
            SetRoot(tree, fresh);
        else
            InsertKeyCached(tree, (byte)(level + 1), new Bkey(max, KeyType.BtreePtr), fresh.MakePtr(_geometry.Device).ToBytes());
    }

    /// <summary>
    /// A dirty node whose parent no longer points at it (topology repair deleted its pointer after
    /// editing inside it): writing it would put its pointer back, so write-back frees it instead.
    /// </summary>
    private bool IsOrphaned(BtreeNode node)
    {
        var tree = _trees[(int)node.Btree]!;
        if (tree.RootNode == node)
            return false;
        if (FindNode(tree, (byte)(node.Level + 1), node.MaxKey, out var parent, out _) != FindResult.Found)
            return false;
        return !parent.TryFind(node.MaxKey, out var run, out var i) || PtrFields.Seq(run.ValueOf(i)) != node.Seq;
    }

    /// <summary>The journal's blacklist, as node reads apply it (the node scan uses it too).</summary>
    internal Func<ulong, bool> JournalIsBlacklisted => _journal.IsBlacklisted;

    /// <summary>
    /// Marks the slot of a node the node scan found as used, with every slot below it, before
    /// topology repair splices a pointer to it in: it was unreachable (below an unreadable node),
    /// so the allocator counted it and its subtree free. The subtree is marked conservatively
    /// (every pointer version of every bset); the next mount's exact walk releases what is not
    /// reachable after all.
    /// </summary>
    /// <summary>
    /// True when the slot at <paramref name="offset"/> holds another node than the one with
    /// <paramref name="seq"/> the scan read there: a node of this mount took the slot since.
    /// </summary>
    internal bool IsSlotTakenByAnother(long offset, ulong seq)
    {
        _lock.EnterReadLock();
        try
        {
            return _cache.TryGet(offset, out var node) && node.Seq != seq;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private bool _slotsHoldingNodesKept;

    /// <summary>
    /// Before topology repair's first edit: the slots holding nodes the node scan may pull in are
    /// handed out last (KeepSlotsHoldingNodes), so the copy-on-write of the parents it edits does
    /// not overwrite them. Once per mount.
    /// </summary>
    internal void KeepSlotsHoldingNodesForRepair()
    {
        lock (_writerGate)
        {
            _lock.EnterWriteLock();
            try
            {
                if (_slotsHoldingNodesKept)
                    return;
                _slotsHoldingNodesKept = true;
                KeepSlotsHoldingNodes();
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
    }

    internal void AdoptScannedNode(BtreeId btree, byte level, BtreePtrValue ptr, Bpos max)
    {
        _lock.EnterWriteLock();
        try
        {
            MarkSubtreeConservatively(btree, level, ptr, max);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    internal void RebuildRoot(Btree tree, byte level, IReadOnlyList<(Bpos Max, BtreePtrValue Ptr)> children)
    {
        ArgumentNullException.ThrowIfNull(children);
        if (level == 0 || level > FormatLimits.MaxBtreeLevel || children.Count == 0)
            throw new ArgumentException($"a rebuilt root needs a level in 1..{FormatLimits.MaxBtreeLevel} and children", nameof(children));
        foreach (var (max, ptr) in children)
            AdoptScannedNode(tree.Id, (byte)(level - 1), ptr.With(flags: ptr.Flags & ~BtreePtrFlags.RangeUpdated), max);
        var op = new RebuildRootOp(tree, level, children);
        Run<RebuildRootOp, bool>(ref op, LockMode.Write);
    }

    /// <summary>
    /// The old root (unreadable, so never cached) and every cached node of the btree at the new
    /// root's level or above are dropped; the new root holds as many child pointers as fit, and
    /// the rest go in through ordinary interior inserts, which split and grow it as needed. Journal
    /// keys of the old tree's interior levels are void from the root change on; leaf keys stay
    /// valid, since the leaves are kept.
    /// </summary>
    private readonly struct RebuildRootOp(Btree tree, byte level, IReadOnlyList<(Bpos Max, BtreePtrValue Ptr)> children) : IEngineOp<bool>
    {
        public bool TryRun(BtreeEngine engine, out bool result, out Restart restart)
        {
            result = true;
            restart = default;
            engine.ThrowIfReadOnly();
            engine.EnsureReserve(tree);
            using var change = engine.OpenChange();
            var id = tree.Id;
            var rootAt = PendingPosition.Root(id);
            var kept = children.Select(c => c.Ptr.Ptrs[0].OffsetBytes).ToHashSet();
            var fromLevel = level;
            foreach (var node in engine._cache.Nodes.Where(n => n.Btree == id && n.Level >= fromLevel && !kept.Contains(n.Offset)).ToList())
                engine.FreeNode(node, rootAt);
            if (tree.PendingRoot is { } pending && pending.Ptr.Ptrs.Count > 0 && !kept.Contains(pending.Ptr.Ptrs[0].OffsetBytes) &&
                engine._allocator.IsUsed(pending.Ptr.Ptrs[0].OffsetBytes))
            {
                engine.FreeLater(pending.Ptr.Ptrs[0].OffsetBytes, rootAt);
            }
            for (var l = level; l < FormatLimits.MaxBtreeDepth; l++)
                engine.DropPendingAtLevel(id, l);
            tree.PendingRoot = null;

            var builder = new KeyRunBuilder();
            var bytes = 0;
            var first = 0;
            for (; first < children.Count; first++)
            {
                var value = children[first].Ptr.ToBytes();
                var size = BkeyFormat.EncodedSize(value.Length);
                if (first > 0 && bytes + size > engine.NodeCapacity)
                    break;
                bytes += size;
                builder.Add(new Bkey(children[first].Max, KeyType.BtreePtr), value);
            }
            engine.SetRoot(tree, engine.NewNode(tree, level, Bpos.Min, Bpos.Max, 1, builder.Build()));
            engine.VoidLevelsWithRootChange(id, 1);
            for (var i = first; i < children.Count; i++)
                engine.InsertKeyCached(tree, level, new Bkey(children[i].Max, KeyType.BtreePtr), children[i].Ptr.ToBytes());
            engine._cache.Tick();
            return true;
        }
    }

    /// <summary>
    /// A mount that met an unreadable node cannot tell which slots hang below it, and they are
    /// what topology repair's node scan rebuilds from: every free slot whose header carries this
    /// filesystem's node magic is handed out only after every other free slot (NodeAllocator.Avoid),
    /// so the writes of this mount (replay, a checkpoint) land elsewhere while there is room. The
    /// node area is read in large sequential chunks; only the magic is looked at.
    /// </summary>
    private void KeepSlotsHoldingNodes()
    {
        var nodeSize = _geometry.NodeSize;
        var chunk = Math.Max(nodeSize, NodeScan.ChunkBytes / nodeSize * nodeSize);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(chunk);
        try
        {
            foreach (var (offset, length) in _allocator.UnitRanges())
            {
                var end = Math.Min(offset + length, _device.Size);
                for (var at = offset; at + nodeSize <= end; at += chunk)
                {
                    var bytes = (int)Math.Min(chunk, (end - at) / nodeSize * nodeSize);
                    try
                    {
                        _device.Read(at, buffer.AsSpan(0, bytes));
                    }
                    catch (BasaltException ex) when (ex.Class == ErrorClass.Io)
                    {
                        continue;
                    }
                    for (var o = 0; o < bytes; o += nodeSize)
                    {
                        var magic = BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(o + Node.BtreeNodeFormat.NodeMagicOffset));
                        if (magic == _geometry.NodeMagic)
                            _allocator.Avoid(at + o);
                    }
                }
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
