// The node cache: descent from a root to the node covering a position, node reads (done with
// no lock held), installing a read node after re-checking that its parent still points at it,
// and eviction of clean nodes under the byte budget.
using System.Buffers;
using System.Runtime.CompilerServices;
using Basalt.Btree.Node;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

internal enum FindResult
{
    Found,
    /// <summary>A node on the way is not cached: read it (lock dropped) and restart.</summary>
    Miss,
    /// <summary>The btree has no root.</summary>
    Empty,
    /// <summary>The btree is not that deep.</summary>
    NoSuchLevel,
}

/// <summary>A node an operation needs that is not in the cache: how to read it and how to re-check it.</summary>
internal readonly struct NodeMiss
{
    public NodeMiss(Btree tree, BtreeNode? parent, byte level, Bpos maxKey, byte[] ptrValue)
    {
        Tree = tree;
        Parent = parent;
        Level = level;
        MaxKey = maxKey;
        PtrValue = ptrValue;
    }

    public Btree Tree { get; }

    /// <summary>The cached parent holding the pointer, or null for the root.</summary>
    public BtreeNode? Parent { get; }
    public byte Level { get; }
    public Bpos MaxKey { get; }
    public byte[] PtrValue { get; }
}

public sealed partial class BtreeEngine
{
    /// <summary>
    /// Finds the node at <paramref name="level"/> whose range covers <paramref name="pos"/>. Caller
    /// holds the lock (read or write).
    /// </summary>
    internal FindResult FindNode(Btree tree, byte level, Bpos pos, out BtreeNode node, out NodeMiss miss)
    {
        node = null!;
        miss = default;
        var n = tree.RootNode;
        if (n is null)
        {
            if (tree.PendingRoot is not { } root)
                return FindResult.Empty;
            if (level > root.Level)
                return FindResult.NoSuchLevel;
            miss = new NodeMiss(tree, null, root.Level, Bpos.Max, RootReadPtr(root.Ptr).ToBytes());
            return FindResult.Miss;
        }
        if (level > n.Level)
            return FindResult.NoSuchLevel;
        var stamp = _cache.Clock;
        var shape = _cache.Shape;
        if (level == 0 && Volatile.Read(ref tree.LeafHintShape) == shape && tree.LeafHint is { } hint && hint.MinKey <= pos && pos <= hint.MaxKey)
        {
            Touch(hint, stamp);
            node = hint;
            return FindResult.Found;
        }
        while (n.Level > level)
        {
            Touch(n, stamp);
            if (!n.TryFindChild(pos, out var run, out var i))
                ThrowTopology(n, pos, "no child pointer covers the position");
            var value = run.ValueOf(i);
            if (run.Entries[i].Key.Type != KeyType.BtreePtr || !PtrFields.IsWellFormed(value))
                ThrowTopology(n, pos, $"key {run.Entries[i].Key.ToText()} is not a btree pointer");
            var offset = PtrFields.OffsetBytes(value);
            if (!_cache.TryGet(offset, out var child) || child.Seq != PtrFields.Seq(value) || child.Level != n.Level - 1 ||
                RangeMoved(child, value, run.Entries[i].Key.Pos))
            {
                miss = new NodeMiss(tree, n, (byte)(n.Level - 1), run.Entries[i].Key.Pos, value.ToArray());
                return FindResult.Miss;
            }
            n = child;
        }
        Touch(n, stamp);
        node = n;
        if (level == 0)
        {
            tree.LeafHint = n;
            Volatile.Write(ref tree.LeafHintShape, shape);
        }
        return FindResult.Found;
    }

    /// <summary>The btrees' shape changed (a root, an interior pointer, the cached set): every leaf hint is void.</summary>
    internal void ShapeChanged() => _cache?.ShapeChanged();

    /// <summary>
    /// Marks a node used for eviction. Writes only when the clock moved: readers on many cores
    /// descend through the same root and upper nodes, and a store on every descent would make
    /// those nodes' cache lines bounce between the cores.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Touch(BtreeNode node, long stamp)
    {
        if (node.LastAccess != stamp)
            node.LastAccess = stamp;
    }

    /// <summary>Like FindNode for internal edits whose path is known to be cached.</summary>
    internal BtreeNode FindCached(Btree tree, byte level, Bpos pos)
    {
        var r = FindNode(tree, level, pos, out var node, out _);
        if (r != FindResult.Found)
            throw new InvalidOperationException($"{tree.Id.ToText()}: node at level {level} covering {pos.ToText()} is not cached ({r})");
        return node;
    }

    private static void ThrowTopology(BtreeNode node, Bpos pos, string what) =>
        BasaltException.Throw(ErrorCode.TopologyError, $"btree {node.Btree.ToText()} level {node.Level} node at offset {node.Offset}: {what} ({pos.ToText()})");

    /// <summary>Reads the node a miss names (no lock held), then installs it under the write lock.</summary>
    internal void LoadMissing(in NodeMiss miss)
    {
        if (!BtreePtrValue.TryRead(miss.PtrValue, out var ptr, out var problem))
        {
            BasaltException.Throw(ErrorCode.BtreeNodeCorrupt,
                $"btree {miss.Tree.Id.ToText()} level {miss.Level + 1}: pointer to the node ending at {miss.MaxKey.ToText()} is invalid: {problem}");
        }
        var node = ReadNode(miss.Tree.Id, miss.Level, ptr, miss.MaxKey);
        _lock.EnterWriteLock();
        try
        {
            Install(miss, node);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private void Install(in NodeMiss miss, BtreeNode node)
    {
        if (_cache.TryGet(node.Offset, out var cached) && !IsStaleCopy(cached, node))
        {
            Keep(cached);
            return;
        }
        if (miss.Parent is null)
        {
            var tree = miss.Tree;
            if (tree.RootNode is not null || tree.PendingRoot is not { } root || root.Ptr.Seq != node.Seq ||
                root.Ptr.Ptrs.Count == 0 || root.Ptr.Ptrs[0].OffsetBytes != node.Offset)
                return;
            tree.RootNode = node;
            tree.PendingRoot = null;
        }
        else
        {
            var parent = miss.Parent;
            if (!parent.IsCached || !parent.TryFind(miss.MaxKey, out var run, out var i))
                return;
            var value = run.ValueOf(i);
            // Same slot, same node and same written size: otherwise the node changed while it was
            // read (written again by a Sync after another copy was cached and evicted) and this
            // copy may be stale; the restarted operation reads it again.
            if (!PtrFields.IsWellFormed(value) || PtrFields.OffsetBytes(value) != node.Offset || PtrFields.Seq(value) != node.Seq ||
                PtrFields.SectorsWritten(value) != node.WrittenSectors)
                return;
        }
        _cache.Install(node, cached => IsStaleCopy(cached, node));
        Keep(node);
        Evict();
    }

    // The nodes a transaction on this thread had to read: kept cached until it ends, so a
    // transaction touching more nodes than a small cache holds still completes (each restart reads
    // one more node; none it read before is evicted meanwhile).
    [ThreadStatic]
    private static List<BtreeNode>? s_kept;

    /// <summary>
    /// From now until EndKeep, nodes read for this thread stay cached. Returns the enclosing
    /// transaction's list (a transaction run while another on this thread resolves a restart, such
    /// as the claim of a bucket for node space), which EndKeep restores.
    /// </summary>
    internal static List<BtreeNode>? BeginKeep()
    {
        var outer = s_kept;
        s_kept = [];
        return outer;
    }

    /// <summary>Releases the nodes kept for this thread's transaction and restores the enclosing one's.</summary>
    internal void EndKeep(List<BtreeNode>? outer)
    {
        var kept = s_kept;
        s_kept = outer;
        if (kept is null || kept.Count == 0)
            return;
        _lock.EnterWriteLock();
        try
        {
            foreach (var node in kept)
                node.KeepCount--;
            Evict();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private static void Keep(BtreeNode node)
    {
        if (s_kept is { } kept)
        {
            node.KeepCount++;
            kept.Add(node);
        }
    }

    /// <summary>Reads and validates one node. Throws BasaltException naming btree, level, node and finding on failure.</summary>
    internal BtreeNode ReadNode(BtreeId btree, byte level, BtreePtrValue ptr, Bpos maxKey) =>
        ReadNode(btree, level, ptr, maxKey, observe: true);

    private BtreeNode ReadNode(BtreeId btree, byte level, BtreePtrValue ptr, Bpos maxKey, bool observe)
    {
        var where = $"btree {btree.ToText()} level {level} node";
        if (ptr.Ptrs.Count == 0)
            BasaltException.Throw(ErrorCode.BtreeNodeCorrupt, $"{where} ending at {maxKey.ToText()}: pointer has no device pointer");
        var offset = ptr.Ptrs[0].OffsetBytes;
        var size = _geometry.NodeSize;
        if (offset < 0 || offset % FormatLimits.SectorSize != 0 || offset + size > _device.Size)
            BasaltException.Throw(ErrorCode.BtreeNodeCorrupt, $"{where} at offset {offset}: pointer is outside the device");
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            var slot = buffer.AsSpan(0, size);
            try
            {
                _device.Read(offset, slot);
            }
            catch (BasaltException ex) when (ex.Class == ErrorClass.Io)
            {
                throw new BasaltException(ErrorCode.IoError, $"{where} at offset {offset}: read failed: {ex.Message}", ex);
            }
            var ctx = new NodeReadContext(btree, level, maxKey, ptr, _geometry.NodeMagic, size, _geometry.BlockSize,
                _geometry.Version, _geometry.VersionMin, _device.Size, IsBlacklisted: _journal.IsBlacklisted);
            var result = BtreeNodeReader.Read(slot, ctx);
            Interlocked.Increment(ref _nodeReads);
            if (observe)
            {
                Interlocked.Add(ref _ignoredBsets, result.IgnoredBsetsBeyondWritten);
                Interlocked.Add(ref _blacklistedBsets, result.BlacklistedBsets);
                if (result.NeedsRewrite)
                    Interlocked.Increment(ref _nodesNeedingRewrite);
                _options.NodeReadObserver?.Invoke(btree, level, ptr, result);
            }
            if (!result.Ok)
            {
                var finding = result.Findings.Count > 0 ? result.Findings[^1].ToString() : "unreadable";
                var topology = result.FailureClass == NodeErrorClass.BadNode;
                BasaltException.Throw(topology ? ErrorCode.TopologyError : ErrorCode.BtreeNodeCorrupt,
                    $"{where} at offset {offset}: {finding}");
            }
            // Whatever a node on disk holds is durable: a bset naming a journal seq past the durable
            // end of the journal (damage with a valid checksum) must not make the node's next write
            // look like one that breaks rule (a), which would stop the filesystem (or fsck) cold.
            var contentSeq = Math.Min(result.MaxJournalSeq, _journal.DurableSeq);
            return new BtreeNode(btree, level, ptr.MinKey, maxKey, ptr.Seq, result.Header.Generation, offset, result.Keys)
            {
                WrittenSectors = ptr.SectorsWritten,
                DurableSectors = ptr.SectorsWritten,
                MaxSeq = contentSeq,
                ContentSeq = contentSeq,
                Reachable = true,
            };
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Evicts clean nodes, least recently used first, until the cache is within budget.</summary>
    private void Evict() => _cache.Evict(_options.CacheBudgetBytes, _geometry.NodeSize, MustStayCached);

    private bool MustStayCached(BtreeNode node) =>
        node.IsDirty || node.InFlight is not null || node.IsPinned || node.KeepCount > 0 || !node.Reachable ||
        _trees[(int)node.Btree]!.RootNode == node;
}
