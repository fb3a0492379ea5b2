// How a transaction's leaf updates enter the btrees. The transaction layer holds the writer gate
// across its body and commit; for the commit it takes the write lock and calls
// TryPrepareCommit (every leaf the updates land in is cached and node space suffices for the
// worst case, or a restart says what to fetch or wait for), then appends the updates to the
// journal, then ApplyCommit, which can no longer fail for want of a node or a slot. Each leaf
// an update dirties pins the commit's seq until it is written (rule c).
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>The writers' entry point into a mounted engine, registered by the transaction layer.</summary>
public interface IBtreeWritePath
{
    void Insert(BtreeId btree, in Bkey key, ReadOnlySpan<byte> value);

    bool Delete(BtreeId btree, Bpos pos);

    long DeleteRange(BtreeId btree, Bpos start, Bpos end);
}

public sealed partial class BtreeEngine
{
    private IBtreeWritePath? _writePath;

    /// <summary>Registers the transaction layer as the way key updates reach the btrees (at mount).</summary>
    public void SetWritePath(IBtreeWritePath writePath) => _writePath = writePath;

    internal IBtreeWritePath WritePath =>
        _writePath ?? throw new InvalidOperationException("this engine has no write path: it was opened without a journal and transactions");

    /// <summary>
    /// With the writer gate and write lock held: true when <paramref name="updates"/> can be applied
    /// without a node miss or a node-space shortage; otherwise the restart that removes the obstacle.
    /// </summary>
    internal bool TryPrepareCommit(IReadOnlyList<BtreeUpdate> updates, out Restart restart)
    {
        restart = default;
        ThrowIfReadOnly();
        _allocator.ReleaseFreedUpTo(_journal.DurableSeq);
        // Per leaf, the bytes the updates may add (live: inserted values; unwritten: whiteouts too):
        // a leaf that still fits them needs no new node.
        Dictionary<BtreeNode, (long Live, long Unwritten)>? growth = null;
        Dictionary<BtreeId, long>? emptyTrees = null;
        for (var i = 0; i < updates.Count; i++)
        {
            var u = updates[i];
            if (u.Level != 0)
                throw new ArgumentException($"{u.ToText()}: transactions update leaves only", nameof(updates));
            var tree = this[u.Btree];
            var r = FindNode(tree, 0, u.Key.Pos, out var leaf, out var miss);
            if (r == FindResult.Miss)
            {
                restart = Restart.ForMiss(miss);
                return false;
            }
            if (r != FindResult.Found)
            {
                // Bytes the commit puts into an empty btree (a deletion there is a no-op).
                emptyTrees ??= [];
                emptyTrees[u.Btree] = emptyTrees.GetValueOrDefault(u.Btree) + (u.IsDeletion ? 0 : BkeyFormat.EncodedSize(u.Value.Length));
                continue;
            }
            growth ??= ReusedGrowth();
            var (live, unwritten) = growth.GetValueOrDefault(leaf);
            growth[leaf] = u.IsDeletion
                ? (live, unwritten + BkeyFormat.HeaderSize)
                : (live + BkeyFormat.EncodedSize(u.Value.Length), unwritten + BkeyFormat.EncodedSize(u.Value.Length));
        }
        Dictionary<BtreeId, long>? needed = null;
        if (growth is not null)
        {
            foreach (var (leaf, (live, unwritten)) in growth)
            {
                if (Fits(leaf, leaf.LiveBytes + live, leaf.Unwritten.EncodedBytes + unwritten))
                    continue;
                (needed ??= [])[leaf.Btree] = 0;
            }
        }
        if (emptyTrees is not null)
        {
            foreach (var (btree, _) in emptyTrees)
                (needed ??= [])[btree] = 0;
        }
        if (needed is null)
            return true;
        foreach (var btree in needed.Keys.ToList())
        {
            var tree = this[btree];
            // An empty btree gets a root leaf that the commit's keys then split: every leaf of the
            // result holds at least a third of a node, and the interior nodes above them are
            // fewer than the leaves.
            var slots = emptyTrees is not null && emptyTrees.TryGetValue(btree, out var bytes)
                ? ReserveNeeded(tree) + (2 * (1 + ((3 * bytes) / NodeCapacity)))
                : CommitRestructureBound(tree, growth!) + SyncReserve() + (2 * ((tree.RootNode?.Level ?? 0) + 2));
            if (_allocator.Available < slots)
            {
                restart = Restart.ForNodeSpace((int)Math.Min(slots, int.MaxValue),
                    $"btree {btree.ToText()}: node space full: {_allocator.Available} of {_allocator.SlotCount} node slots free, " +
                    $"{slots} needed to restructure safely ({_allocator.PendingFreeCount} freed slots become reusable once the journal entries that freed them are flushed)");
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// The per-leaf growth map of <see cref="TryPrepareCommit"/>, emptied for each commit: one map
    /// kept for every commit (they run one at a time, under the write lock) instead of one each.
    /// </summary>
    private Dictionary<BtreeNode, (long Live, long Unwritten)> ReusedGrowth()
    {
        var growth = _commitGrowth ??= [];
        growth.Clear();
        return growth;
    }

    private Dictionary<BtreeNode, (long Live, long Unwritten)>? _commitGrowth;

    /// <summary>
    /// An upper bound on the new nodes a commit's restructures in <paramref name="tree"/> take,
    /// level by level: a leaf that will not fit compacts (one node, one pointer edit in its parent)
    /// or splits (two nodes and two edits per split); a parent whose edits will not fit restructures once per
    /// third of a node of edits (a rebuilt node has at least that much room), each time taking two
    /// nodes and making two edits one level up; a root that restructures takes one more (a new root).
    /// </summary>
    private long CommitRestructureBound(Btree tree, Dictionary<BtreeNode, (long Live, long Unwritten)> growth)
    {
        var pointerBytes = BkeyFormat.EncodedSize(BtreePtrValue.SizeFor(1));
        long nodes = 0;
        var edits = new Dictionary<BtreeNode, long>();
        foreach (var (leaf, (live, unwritten)) in growth)
        {
            if (leaf.Btree != tree.Id || Fits(leaf, leaf.LiveBytes + live, leaf.Unwritten.EncodedBytes + unwritten))
                continue;
            // A split leaves halves of at least a third of a node each: what does not fit one
            // node splits again, once per third of a node beyond it.
            var total = leaf.LiveBytes + live;
            var made = total * 3 <= (long)NodeCapacity * 2 ? 1
                : total <= NodeCapacity ? 2
                : 2 * (1 + (((3 * (total - NodeCapacity)) + NodeCapacity - 1) / NodeCapacity));
            nodes += made;
            AddParentEdits(tree, leaf, made, edits, ref nodes);
        }
        while (edits.Count > 0)
        {
            var next = new Dictionary<BtreeNode, long>();
            foreach (var (node, count) in edits)
            {
                var bytes = count * pointerBytes;
                if (Fits(node, node.LiveBytes + bytes, node.Unwritten.EncodedBytes + bytes))
                    continue;
                var made = 2 * (1 + (bytes * 3 / NodeCapacity));
                nodes += made;
                AddParentEdits(tree, node, made, next, ref nodes);
            }
            edits = next;
        }
        return nodes;
    }

    /// <summary>A node replaced by <paramref name="made"/> nodes makes as many pointer edits in its parent (a root: one new root).</summary>
    private void AddParentEdits(Btree tree, BtreeNode node, long made, Dictionary<BtreeNode, long> edits, ref long nodes)
    {
        if (tree.RootNode == node || FindNode(tree, (byte)(node.Level + 1), node.MaxKey, out var parent, out _) != FindResult.Found)
        {
            nodes += 1;
            return;
        }
        edits[parent] = edits.GetValueOrDefault(parent) + made;
    }

    /// <summary>
    /// With the writer gate and write lock held, after a successful <see cref="TryPrepareCommit"/>
    /// and the journal append that gave <paramref name="seq"/>: applies the updates. Returns the
    /// positions whose keys were deleted (the caller merges underfull nodes there afterwards).
    /// </summary>
    internal void ApplyCommit(IReadOnlyList<BtreeUpdate> updates, ulong seq, List<(BtreeId, Bpos)>? deleted)
    {
        using var change = OpenChange();
        _structureDepth++;
        try
        {
            for (var i = 0; i < updates.Count; i++)
            {
                var u = updates[i];
                var tree = this[u.Btree];
                BtreeNode? leaf = null;
                if (u.IsDeletion)
                {
                    var outcome = DeleteKey(tree, 0, u.Key.Pos, out _);
                    if (outcome == DeleteOutcome.Miss)
                        throw new InvalidOperationException($"commit of {u.ToText()}: node miss after prepare");
                    if (outcome == DeleteOutcome.Deleted)
                        deleted?.Add((u.Btree, u.Key.Pos));
                    // A deletion that restructured the leaf left the key's range in a new node.
                    if (FindNode(tree, 0, u.Key.Pos, out var now, out _) == FindResult.Found)
                        leaf = now;
                }
                else
                {
                    EnsureRoot(tree);
                    var key = u.Key;
                    var value = u.Value.Span;
                    if (KeyTypeTable.AccumulatorOf(key.Type) is { } accumulator)
                    {
                        FoldDelta(tree, u, accumulator, seq, replayed: null, out key);
                        value = _foldBuffer.AsSpan(0, accumulator.ValueBytes);
                    }
                    if (!InsertKey(tree, 0, key, value, out _, out leaf))
                        throw new InvalidOperationException($"commit of {u.ToText()}: node miss after prepare");
                }
                if (leaf is { IsDirty: true })
                    PinNode(leaf, seq);
            }
            _cache.Tick();
        }
        finally
        {
            _structureDepth--;
        }
    }

    /// <summary>Where a journal-only delta is folded into its total before the insert (the write lock held by every caller).</summary>
    private byte[] _foldBuffer = new byte[64];

    /// <summary>
    /// Folds the journal-only delta <paramref name="u"/> into the total its leaf holds at its
    /// position (none: a total of zero): the total's key comes back in <paramref name="total"/>, its
    /// value in <see cref="_foldBuffer"/>. A commit (<paramref name="replayed"/> null) folds it as the
    /// next delta of <paramref name="seq"/>; a replay folds it at the version the plan gave it, and
    /// returns false when the total already holds that version (a node written after the delta's
    /// commit counted it).
    /// </summary>
    private bool FoldDelta(Btree tree, in BtreeUpdate u, IKeyAccumulator accumulator, ulong seq, DeltaVersion? replayed, out Bkey total)
    {
        total = new Bkey(u.Key.Pos, accumulator.TotalType);
        ReadOnlySpan<byte> current = default;
        if (FindNode(tree, 0, u.Key.Pos, out var leaf, out _) == FindResult.Found && leaf.TryFind(u.Key.Pos, out var run, out var i) &&
            run.Entries[i].Key.Type == accumulator.TotalType)
        {
            current = run.ValueOf(i);
        }
        if (_foldBuffer.Length < accumulator.ValueBytes)
            _foldBuffer = new byte[accumulator.ValueBytes];
        var result = _foldBuffer.AsSpan(0, accumulator.ValueBytes);
        if (replayed is { } version)
            return accumulator.TryFoldReplayed(current, u.Value.Span, version, result);
        var folded = current.IsEmpty ? default : accumulator.FoldedVersion(current);
        accumulator.Fold(current, u.Value.Span, folded.Next(seq), result);
        return true;
    }

    /// <summary>After deletes: merges underfull nodes around each position (best effort, own restarts).</summary>
    internal void MergeAfterDeletes(List<(BtreeId Btree, Bpos Pos)> positions)
    {
        foreach (var (btree, pos) in positions)
        {
            if (IsEmergencyReadOnly)
                return;
            MergeAfterDelete(this[btree], 0, pos);
        }
    }

    /// <summary>Reads a leaf key for a transaction (read lock taken here); a miss is returned, not resolved.</summary>
    internal FindResult TryReadLeaf(BtreeId btree, Bpos pos, out byte[]? value, out Bkey key, out NodeMiss miss)
    {
        value = null;
        key = new Bkey(pos, KeyType.Deleted);
        _lock.EnterReadLock();
        try
        {
            var r = FindNode(this[btree], 0, pos, out var leaf, out miss);
            if (r == FindResult.Found && leaf.TryFind(pos, out var run, out var i))
            {
                value = run.ValueOf(i).ToArray();
                key = run.Entries[i].Key;
            }
            return r;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>
    /// Reads the keys of the leaf covering <paramref name="start"/> that lie in [start, end] (at most
    /// <paramref name="limit"/>) for a transaction; a miss is returned, not resolved.
    /// </summary>
    internal FindResult TryReadLeafRange(BtreeId btree, Bpos start, Bpos end, int limit, List<(Bkey Key, byte[] Value)> into,
        out Bpos leafMax, out NodeMiss miss)
    {
        leafMax = default;
        _lock.EnterReadLock();
        try
        {
            var r = FindNode(this[btree], 0, start, out var leaf, out miss);
            if (r != FindResult.Found)
                return r;
            leafMax = leaf.MaxKey;
            var cursor = new NodeCursor(leaf, start, reverse: false);
            var taken = 0;
            while (taken < limit && cursor.Next(out var run, out var i) && run.Entries[i].Key.Pos <= end)
            {
                into.Add((run.Entries[i].Key, run.ValueOf(i).ToArray()));
                taken++;
            }
            if (taken == limit)
                leafMax = end; // the caller has what it asked for
            return r;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Tests: a random restart inside a transaction body (RestartInjection).</summary>
    internal void MaybeInjectRestart()
    {
        if (_options.RestartInjection is { } injection && injection.Next())
            throw new RestartException(Restart.For(RestartReason.Injected, "injected"));
    }

    /// <summary>The restart injection of this engine, for the transaction layer's commit step.</summary>
    internal RestartInjection? Injection => _options.RestartInjection;
}
