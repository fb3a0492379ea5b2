// The restartable operation loops behind the Btree API: each runs under the lock until it
// completes or meets a node that is not cached; then it drops the lock, reads the node,
// installs it and runs again from the start.
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

public sealed partial class BtreeEngine
{
    internal void InsertAt(Btree tree, byte level, in Bkey key, ReadOnlySpan<byte> value)
    {
        while (true)
        {
            NodeMiss miss;
            _lock.EnterWriteLock();
            try
            {
                ThrowIfReadOnly();
                if (level == 0)
                    EnsureRoot(tree);
                else if (tree.RootNode is null && tree.PendingRoot is null)
                    BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {tree.Id.ToText()} is empty: no level {level}");
                if (InsertKey(tree, level, key, value, out miss))
                {
                    _cache.Tick();
                    return;
                }
            }
            finally
            {
                _lock.ExitWriteLock();
            }
            LoadMissing(miss);
        }
    }

    private void EnsureRoot(Btree tree)
    {
        if (tree.RootNode is not null || tree.PendingRoot is not null)
            return;
        EnsureReserve(tree);
        tree.RootNode = NewNode(tree, 0, Bpos.Min, Bpos.Max, 1, KeyRun.Empty);
    }

    internal bool DeleteAt(Btree tree, byte level, Bpos pos, bool merge)
    {
        while (true)
        {
            NodeMiss miss;
            _lock.EnterWriteLock();
            try
            {
                ThrowIfReadOnly();
                var outcome = DeleteKey(tree, level, pos, out miss);
                if (outcome == DeleteOutcome.NotFound)
                    return false;
                if (outcome == DeleteOutcome.Deleted)
                {
                    _cache.Tick();
                    break;
                }
            }
            finally
            {
                _lock.ExitWriteLock();
            }
            LoadMissing(miss);
        }
        if (merge)
            MergeAfterDelete(tree, level, pos);
        return true;
    }

    private void MergeAfterDelete(Btree tree, byte level, Bpos pos)
    {
        while (true)
        {
            NodeMiss miss;
            _lock.EnterWriteLock();
            try
            {
                if (IsEmergencyReadOnly || TryMergeAt(tree, level, pos, out miss))
                    return;
            }
            finally
            {
                _lock.ExitWriteLock();
            }
            LoadMissing(miss);
        }
    }

    internal long DeleteRange(Btree tree, Bpos start, Bpos end)
    {
        if (start > end)
            return 0;
        long deleted = 0;
        var next = start;
        var positions = new List<Bpos>();
        while (true)
        {
            NodeMiss miss;
            Bpos leafMax;
            bool missed;
            _lock.EnterWriteLock();
            try
            {
                ThrowIfReadOnly();
                var r = FindNode(tree, 0, next, out var leaf, out miss);
                if (r is FindResult.Empty or FindResult.NoSuchLevel)
                    return deleted;
                missed = r == FindResult.Miss;
                leafMax = missed ? default : leaf.MaxKey;
                if (!missed)
                {
                    positions.Clear();
                    var cursor = new NodeCursor(leaf, next, reverse: false);
                    while (cursor.Next(out var run, out var i) && run.Entries[i].Key.Pos <= end)
                        positions.Add(run.Entries[i].Key.Pos);
                    foreach (var pos in positions)
                    {
                        if (DeleteKey(tree, 0, pos, out _) == DeleteOutcome.Deleted)
                            deleted++;
                    }
                    _cache.Tick();
                }
            }
            finally
            {
                _lock.ExitWriteLock();
            }
            if (missed)
            {
                LoadMissing(miss);
                continue;
            }
            MergeAfterDelete(tree, 0, next);
            if (leafMax >= end || leafMax.IsMax)
                return deleted;
            next = leafMax.Successor();
        }
    }

    internal bool Lookup(Btree tree, Bpos pos, out byte[]? value)
    {
        while (true)
        {
            NodeMiss miss;
            _lock.EnterReadLock();
            try
            {
                var r = FindNode(tree, 0, pos, out var leaf, out miss);
                if (r == FindResult.Found)
                {
                    if (leaf.TryFind(pos, out var run, out var i))
                    {
                        value = run.ValueOf(i).ToArray();
                        return true;
                    }
                    value = null;
                    return false;
                }
                if (r != FindResult.Miss)
                {
                    value = null;
                    return false;
                }
            }
            finally
            {
                _lock.ExitReadLock();
            }
            LoadMissing(miss);
        }
    }

    internal bool LookupInto(Btree tree, Bpos pos, Span<byte> buffer, out int length)
    {
        while (true)
        {
            NodeMiss miss;
            _lock.EnterReadLock();
            try
            {
                var r = FindNode(tree, 0, pos, out var leaf, out miss);
                if (r == FindResult.Found)
                {
                    if (leaf.TryFind(pos, out var run, out var i))
                    {
                        var v = run.ValueOf(i);
                        length = v.Length;
                        if (v.Length <= buffer.Length)
                            v.CopyTo(buffer);
                        return true;
                    }
                    length = 0;
                    return false;
                }
                if (r != FindResult.Miss)
                {
                    length = 0;
                    return false;
                }
            }
            finally
            {
                _lock.ExitReadLock();
            }
            LoadMissing(miss);
        }
    }

    internal void RewriteNode(Btree tree, byte level, Bpos pos)
    {
        while (true)
        {
            NodeMiss miss;
            _lock.EnterWriteLock();
            try
            {
                ThrowIfReadOnly();
                var r = FindNode(tree, level, pos, out var node, out miss);
                if (r is FindResult.Empty or FindResult.NoSuchLevel)
                    BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {tree.Id.ToText()}: no node at level {level} covering {pos.ToText()}");
                if (r == FindResult.Found)
                {
                    EnsureReserve(tree);
                    _structureDepth++;
                    try
                    {
                        RewriteOverPointerRange(tree, level, pos, node);
                    }
                    finally
                    {
                        _structureDepth--;
                    }
                    _cache.Tick();
                    return;
                }
            }
            finally
            {
                _lock.ExitWriteLock();
            }
            LoadMissing(miss);
        }
    }

    internal void ResetToEmpty(Btree tree)
    {
        _lock.EnterWriteLock();
        try
        {
            ThrowIfReadOnly();
            EnsureReserve(tree);
            var generation = (tree.RootNode?.Generation ?? 0) + 1;
            foreach (var node in _cache.Nodes.Where(n => n.Btree == tree.Id).ToList())
                FreeNode(node);
            if (tree.PendingRoot is { } pending && pending.Ptr.Ptrs.Count > 0 && _allocator.IsUsed(pending.Ptr.Ptrs[0].OffsetBytes))
                _allocator.Free(pending.Ptr.Ptrs[0].OffsetBytes, _syncsStarted);
            tree.PendingRoot = null;
            tree.RootNode = NewNode(tree, 0, Bpos.Min, Bpos.Max, generation, KeyRun.Empty);
            _cache.Tick();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }
}
