// The operations behind the Btree API, each one attempt (IEngineOp) run by the restart driver
// (Restart.cs): an attempt that needs a node that is not cached stops with a node-miss restart,
// and the driver reads the node with no lock held and runs it again. Mutating operations hold the
// writer gate and run inside a change scope, so their interior edits are grouped for the journal.
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>What <see cref="BtreeEngine.ReadPoint"/> found.</summary>
internal enum PointRead
{
    /// <summary>No live key at the position.</summary>
    Absent,
    Found,
    /// <summary>A node on the way is not cached: the attempt restarts once it is read.</summary>
    Miss,
}

public sealed partial class BtreeEngine
{
    internal void InsertAt(Btree tree, byte level, in Bkey key, ReadOnlySpan<byte> value)
    {
        var op = new InsertOp(tree, level, key, value.ToArray());
        Run<InsertOp, bool>(ref op, LockMode.Write);
    }

    internal bool DeleteAt(Btree tree, byte level, Bpos pos, bool merge)
    {
        var op = new DeleteOp(tree, level, pos);
        if (!Run<DeleteOp, bool>(ref op, LockMode.Write))
            return false;
        if (merge)
            MergeAfterDelete(tree, level, pos);
        return true;
    }

    private void MergeAfterDelete(Btree tree, byte level, Bpos pos)
    {
        var op = new MergeOp(tree, level, pos);
        Run<MergeOp, bool>(ref op, LockMode.Write);
    }

    internal long DeleteRange(Btree tree, Bpos start, Bpos end)
    {
        if (start > end)
            return 0;
        long deleted = 0;
        var op = new DeleteLeafRangeOp(tree, start, end);
        while (true)
        {
            var (count, leafMax, more) = Run<DeleteLeafRangeOp, (long, Bpos, bool)>(ref op, LockMode.Write);
            deleted += count;
            if (!more)
                return deleted;
            MergeAfterDelete(tree, 0, op.Next);
            if (leafMax >= end || leafMax.IsMax)
                return deleted;
            op.Next = leafMax.Successor();
        }
    }

    internal bool Lookup(Btree tree, Bpos pos, out byte[]? value)
    {
        var op = new LookupOp(tree, pos);
        value = Run<LookupOp, byte[]?>(ref op, LockMode.Read);
        return value is not null;
    }

    internal bool LookupInto(Btree tree, Bpos pos, Span<byte> buffer, out int length)
    {
        var op = new LookupIntoOp(tree, pos, buffer);
        var found = Run<LookupIntoOp, int>(ref op, LockMode.Read);
        length = Math.Max(found, 0);
        return found >= 0;
    }

    internal bool LookupKeyInto(Btree tree, Bpos pos, Span<byte> buffer, out Bkey key, out int length)
    {
        var op = new LookupKeyIntoOp(tree, pos, buffer);
        (key, length) = Run<LookupKeyIntoOp, (Bkey, int)>(ref op, LockMode.Read);
        if (length >= 0)
            return true;
        length = 0;
        return false;
    }

    /// <summary>
    /// One point read for an operation that already holds the lock (read or write), so a caller can
    /// make several reads, of any btrees, one attempt that sees one version of them: the live key at
    /// <paramref name="pos"/> and its value's length, the value copied into <paramref name="buffer"/>
    /// when it fits. <see cref="PointRead.Miss"/>: end the attempt with a restart for
    /// <paramref name="miss"/>.
    /// </summary>
    internal PointRead ReadPoint(Btree tree, Bpos pos, Span<byte> buffer, out Bkey key, out int length, out NodeMiss miss)
    {
        key = default;
        length = 0;
        var r = FindNode(tree, 0, pos, out var leaf, out miss);
        if (r == FindResult.Miss)
            return PointRead.Miss;
        if (r != FindResult.Found || !leaf.TryFind(pos, out var run, out var i))
            return PointRead.Absent;
        var v = run.ValueOf(i);
        if (v.Length <= buffer.Length)
            v.CopyTo(buffer);
        key = run.Entries[i].Key;
        length = v.Length;
        return PointRead.Found;
    }

    internal bool LookupAtOrAfter(Btree tree, Bpos pos, Bpos end, Span<byte> buffer, out Bkey key, out int length)
    {
        var op = new LookupAtOrAfterOp(tree, pos, end, buffer);
        (key, length) = Run<LookupAtOrAfterOp, (Bkey, int)>(ref op, LockMode.Read);
        if (length >= 0)
            return true;
        length = 0;
        return false;
    }

    internal void RewriteNode(Btree tree, byte level, Bpos pos)
    {
        var op = new RewriteOp(tree, level, pos);
        Run<RewriteOp, bool>(ref op, LockMode.Write);
    }

    internal void ResetToEmpty(Btree tree)
    {
        var op = new ResetOp(tree);
        Run<ResetOp, bool>(ref op, LockMode.Write);
    }

    /// <summary>The current root of <paramref name="tree"/> (in memory), or null when empty.</summary>
    internal BtreeRoot? RootOf(Btree tree)
    {
        _lock.EnterReadLock();
        try
        {
            return tree.RootNode is { } r ? new BtreeRoot(tree.Id, r.Level, r.MakePtr(_geometry.Device)) : tree.PendingRoot;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private void EnsureRoot(Btree tree)
    {
        if (tree.RootNode is not null || tree.PendingRoot is not null)
            return;
        EnsureReserve(tree);
        SetRoot(tree, NewNode(tree, 0, Bpos.Min, Bpos.Max, 1, KeyRun.Empty));
    }

    private readonly struct InsertOp(Btree tree, byte level, Bkey key, byte[] value) : IEngineOp<bool>
    {
        public bool TryRun(BtreeEngine engine, out bool result, out Restart restart)
        {
            result = true;
            engine.ThrowIfReadOnly();
            using var change = engine.OpenChange();
            if (level == 0)
                engine.EnsureRoot(tree);
            else if (tree.RootNode is null && tree.PendingRoot is null)
                BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {tree.Id.ToText()} is empty: no level {level}");
            var outer = engine._pointerRepair;
            engine._pointerRepair = level > 0;
            try
            {
                if (!engine.InsertKey(tree, level, key, value, out var miss))
                {
                    restart = Restart.ForMiss(miss);
                    return false;
                }
            }
            finally
            {
                engine._pointerRepair = outer;
            }
            engine._cache.Tick();
            restart = default;
            return true;
        }
    }

    private readonly struct DeleteOp(Btree tree, byte level, Bpos pos) : IEngineOp<bool>
    {
        public bool TryRun(BtreeEngine engine, out bool result, out Restart restart)
        {
            engine.ThrowIfReadOnly();
            restart = default;
            using var change = engine.OpenChange();
            var outer = engine._pointerRepair;
            engine._pointerRepair = level > 0;
            DeleteOutcome outcome;
            NodeMiss miss;
            try
            {
                outcome = engine.DeleteKey(tree, level, pos, out miss);
            }
            finally
            {
                engine._pointerRepair = outer;
            }
            result = outcome == DeleteOutcome.Deleted;
            if (outcome == DeleteOutcome.Miss)
            {
                restart = Restart.ForMiss(miss);
                return false;
            }
            if (result)
                engine._cache.Tick();
            return true;
        }
    }

    private readonly struct MergeOp(Btree tree, byte level, Bpos pos) : IEngineOp<bool>
    {
        public bool TryRun(BtreeEngine engine, out bool result, out Restart restart)
        {
            result = true;
            restart = default;
            using var change = engine.OpenChange();
            if (engine.IsEmergencyReadOnly || engine.TryMergeAt(tree, level, pos, out var miss))
                return true;
            restart = Restart.ForMiss(miss);
            return false;
        }
    }

    /// <summary>Deletes the keys of one leaf in [Next, end]; reports the leaf's max and whether a leaf was found.</summary>
    private struct DeleteLeafRangeOp(Btree tree, Bpos start, Bpos end) : IEngineOp<(long Deleted, Bpos LeafMax, bool Found)>
    {
        private readonly List<Bpos> _positions = [];

        public Bpos Next { get; set; } = start;

        public readonly bool TryRun(BtreeEngine engine, out (long Deleted, Bpos LeafMax, bool Found) result, out Restart restart)
        {
            engine.ThrowIfReadOnly();
            restart = default;
            var r = engine.FindNode(tree, 0, Next, out var leaf, out var miss);
            if (r == FindResult.Miss)
            {
                result = default;
                restart = Restart.ForMiss(miss);
                return false;
            }
            if (r is FindResult.Empty or FindResult.NoSuchLevel)
            {
                result = (0, default, false);
                return true;
            }
            _positions.Clear();
            using var change = engine.OpenChange();
            var cursor = new NodeCursor(leaf, Next, reverse: false);
            while (cursor.Next(out var run, out var i) && run.Entries[i].Key.Pos <= end)
                _positions.Add(run.Entries[i].Key.Pos);
            long deleted = 0;
            foreach (var pos in _positions)
            {
                if (engine.DeleteKey(tree, 0, pos, out _) == DeleteOutcome.Deleted)
                    deleted++;
            }
            engine._cache.Tick();
            result = (deleted, leaf.MaxKey, true);
            return true;
        }
    }

    private readonly struct LookupOp(Btree tree, Bpos pos) : IEngineOp<byte[]?>
    {
        public bool TryRun(BtreeEngine engine, out byte[]? result, out Restart restart)
        {
            restart = default;
            result = null;
            var r = engine.FindNode(tree, 0, pos, out var leaf, out var miss);
            if (r == FindResult.Miss)
            {
                restart = Restart.ForMiss(miss);
                return false;
            }
            if (r == FindResult.Found && leaf.TryFind(pos, out var run, out var i))
                result = run.ValueOf(i).ToArray();
            return true;
        }
    }

    /// <summary>Copies the value into the buffer; the result is its length, or -1 when there is no key.</summary>
    private ref struct LookupIntoOp(Btree tree, Bpos pos, Span<byte> buffer) : IEngineOp<int>
    {
        private readonly Span<byte> _buffer = buffer;

        public readonly bool TryRun(BtreeEngine engine, out int result, out Restart restart)
        {
            restart = default;
            switch (engine.ReadPoint(tree, pos, _buffer, out _, out var length, out var miss))
            {
                case PointRead.Miss:
                    result = default;
                    restart = Restart.ForMiss(miss);
                    return false;
                case PointRead.Found:
                    result = length;
                    return true;
                default:
                    result = -1;
                    return true;
            }
        }
    }

    /// <summary>As <see cref="LookupIntoOp"/>, with the key: the result is the key and the value's length (-1: no key).</summary>
    private ref struct LookupKeyIntoOp(Btree tree, Bpos pos, Span<byte> buffer) : IEngineOp<(Bkey Key, int Length)>
    {
        private readonly Span<byte> _buffer = buffer;

        public readonly bool TryRun(BtreeEngine engine, out (Bkey Key, int Length) result, out Restart restart)
        {
            restart = default;
            switch (engine.ReadPoint(tree, pos, _buffer, out var key, out var length, out var miss))
            {
                case PointRead.Miss:
                    result = default;
                    restart = Restart.ForMiss(miss);
                    return false;
                case PointRead.Found:
                    result = (key, length);
                    return true;
                default:
                    result = (default, -1);
                    return true;
            }
        }
    }

    /// <summary>
    /// The first live leaf key in [pos, end]: copies its value into the buffer when it fits; the
    /// result is the key and the value's length, or length -1 when there is no such key. A leaf
    /// with no key at or after the position sends the search on to the next leaf, all in one attempt.
    /// </summary>
    private ref struct LookupAtOrAfterOp(Btree tree, Bpos pos, Bpos end, Span<byte> buffer) : IEngineOp<(Bkey Key, int Length)>
    {
        private readonly Span<byte> _buffer = buffer;

        public readonly bool TryRun(BtreeEngine engine, out (Bkey Key, int Length) result, out Restart restart)
        {
            restart = default;
            result = (default, -1);
            var next = pos;
            while (next <= end)
            {
                var r = engine.FindNode(tree, 0, next, out var leaf, out var miss);
                if (r == FindResult.Miss)
                {
                    restart = Restart.ForMiss(miss);
                    return false;
                }
                if (r != FindResult.Found)
                    return true;
                if (leaf.TryFindAtOrAfter(next, prefetchValue: true, out var run, out var i))
                {
                    ref readonly var entry = ref run.Entries[i];
                    if (entry.Key.Pos > end)
                        return true;
                    var v = run.ValueOf(i);
                    if (v.Length <= _buffer.Length)
                        v.CopyTo(_buffer);
                    result = (entry.Key, v.Length);
                    return true;
                }
                if (leaf.MaxKey.IsMax)
                    return true;
                next = leaf.MaxKey.Successor();
            }
            return true;
        }
    }

    private readonly struct RewriteOp(Btree tree, byte level, Bpos pos) : IEngineOp<bool>
    {
        public bool TryRun(BtreeEngine engine, out bool result, out Restart restart)
        {
            result = true;
            restart = default;
            engine.ThrowIfReadOnly();
            var r = engine.FindNode(tree, level, pos, out var node, out var miss);
            if (r is FindResult.Empty or FindResult.NoSuchLevel)
                BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {tree.Id.ToText()}: no node at level {level} covering {pos.ToText()}");
            if (r == FindResult.Miss)
            {
                restart = Restart.ForMiss(miss);
                return false;
            }
            engine.EnsureReserve(tree);
            using var change = engine.OpenChange();
            engine._structureDepth++;
            try
            {
                engine.RewriteOverPointerRange(tree, level, pos, node);
            }
            finally
            {
                engine._structureDepth--;
            }
            engine._cache.Tick();
            return true;
        }
    }

    private readonly struct ResetOp(Btree tree) : IEngineOp<bool>
    {
        public bool TryRun(BtreeEngine engine, out bool result, out Restart restart)
        {
            result = true;
            restart = default;
            engine.ThrowIfReadOnly();
            engine.EnsureReserve(tree);
            using var change = engine.OpenChange();
            var generation = (tree.RootNode?.Generation ?? 0) + 1;
            var id = tree.Id;
            var root = PendingPosition.Root(id);
            // Every slot of the old tree is freed by the root change; edits pending inside it are moot.
            foreach (var node in engine._cache.Nodes.Where(n => n.Btree == id).ToList())
                engine.FreeNode(node, root);
            if (tree.PendingRoot is { } pending && pending.Ptr.Ptrs.Count > 0 && engine._allocator.IsUsed(pending.Ptr.Ptrs[0].OffsetBytes))
                engine.FreeLater(pending.Ptr.Ptrs[0].OffsetBytes, root);
            for (var level = 1; level < FormatLimits.MaxBtreeDepth; level++)
                engine.DropPendingAtLevel(id, (byte)level);
            tree.PendingRoot = null;
            engine.SetRoot(tree, engine.NewNode(tree, 0, Bpos.Min, Bpos.Max, generation, KeyRun.Empty));
            // Every key journaled for the old tree, leaves included, is void from this commit on.
            engine.VoidLevelsWithRootChange(id, 0);
            engine._cache.Tick();
            return true;
        }
    }
}
