// The node cache: the table of every btree node held in memory, keyed by its slot offset. It is
// the only code that changes cache membership, and every change asserts that the engine's write
// lock is held: readers (under the read lock) only look nodes up, so concurrent readers never
// mutate the table together. A node a reader finds stale (topology repair moved its range) is
// reported as a miss, and replaced here by the install that follows, under the write lock.
//
// Budget: clean nodes are evicted least recently used first once the cached bytes exceed the
// budget. The caller says which nodes must stay (roots, dirty, in-flight, pinned or blocked
// nodes); an interior node is evicted only when none of its children is cached, so the cached set
// stays closed under "parent of" and a descent from a root only misses at its last step.
// Recency is approximate: readers stamp LastAccess without ordering, which is all LRU needs.
using Basalt.Format;

namespace Basalt.Btree;

internal sealed class NodeCache
{
    private readonly ReaderWriterLockSlim _lock;
    private readonly Dictionary<long, BtreeNode> _nodes = [];
    private readonly BtreeNode?[] _recentInstalls = new BtreeNode?[8];
    private int _recentInstallIndex;
    private int _interiorNodes;
    private long _clock;

    public NodeCache(ReaderWriterLockSlim engineLock) => _lock = engineLock;

    /// <summary>Nodes in the cache.</summary>
    public int Count => _nodes.Count;

    /// <summary>Cached nodes above level 0 (the node-space reserve for write-back counts them).</summary>
    public int InteriorCount => _interiorNodes;

    /// <summary>Nodes evicted since the engine opened.</summary>
    public long Evictions { get; private set; }

    /// <summary>The recency clock: advanced by every change, read by descents to stamp nodes.</summary>
    public long Clock => Volatile.Read(ref _clock);

    /// <summary>Every cached node (caller holds the lock; do not change the cache while enumerating).</summary>
    public Dictionary<long, BtreeNode>.ValueCollection Nodes => _nodes.Values;

    /// <summary>The node cached at <paramref name="offset"/>. Read or write lock.</summary>
    public bool TryGet(long offset, out BtreeNode node) => _nodes.TryGetValue(offset, out node!);

    /// <summary>Advances the recency clock (after each completed operation).</summary>
    public void Tick() => Interlocked.Increment(ref _clock);

    private int _shape;

    /// <summary>
    /// The shape version: changed (under the write lock) whenever a node joins or leaves the cache,
    /// a root changes or an interior node's pointers change, so a leaf remembered at one version is
    /// still the cached leaf covering its range at that version (see Btree.LeafHint).
    /// </summary>
    public int Shape => Volatile.Read(ref _shape);

    /// <summary>Changes the shape version (write lock held).</summary>
    public void ShapeChanged() => Volatile.Write(ref _shape, _shape + 1);

    public void Add(BtreeNode node)
    {
        AssertWriteLock();
        _nodes.Add(node.Offset, node);
        node.IsCached = true;
        ShapeChanged();
        node.LastAccess = Interlocked.Increment(ref _clock);
        if (node.Level > 0)
            _interiorNodes++;
    }

    public void Remove(BtreeNode node)
    {
        AssertWriteLock();
        if (!node.IsCached)
            return;
        if (!_nodes.Remove(node.Offset, out var removed) || !ReferenceEquals(removed, node))
            throw new InvalidOperationException($"{node.ToText()}: marked cached but another node holds its slot in the cache");
        node.IsCached = false;
        ShapeChanged();
        if (node.Level > 0)
            _interiorNodes--;
        var i = Array.IndexOf(_recentInstalls, node);
        if (i >= 0)
            _recentInstalls[i] = null;
    }

    /// <summary>
    /// Installs a node just read from disk. A clean node cached at the same slot with another range
    /// (topology repair moved it) is replaced; returns false when another copy is already cached.
    /// </summary>
    public bool Install(BtreeNode node, Func<BtreeNode, bool> replaceable)
    {
        AssertWriteLock();
        if (_nodes.TryGetValue(node.Offset, out var cached))
        {
            if (!replaceable(cached))
                return false;
            Remove(cached);
        }
        Add(node);
        // The restarted operation needs this node (and maybe a few read just before it, like a
        // leaf and its sibling): the most recent installs are not evicted, so it makes progress.
        _recentInstalls[_recentInstallIndex++ % _recentInstalls.Length] = node;
        return true;
    }

    /// <summary>
    /// Evicts clean nodes, least recently used first, until the cache is within
    /// <paramref name="budgetBytes"/> (to 7/8 of it once it is over). <paramref name="mustStay"/>
    /// names the nodes that may not go.
    /// </summary>
    public void Evict(long budgetBytes, int nodeSize, Func<BtreeNode, bool> mustStay)
    {
        AssertWriteLock();
        if ((long)_nodes.Count * nodeSize <= budgetBytes)
            return;
        var target = budgetBytes - (budgetBytes / 8);
        // Leaves first; an interior node becomes evictable once none of its children is cached.
        for (var pass = 0; pass <= FormatLimits.MaxBtreeDepth && (long)_nodes.Count * nodeSize > target; pass++)
        {
            var candidates = new List<BtreeNode>();
            foreach (var node in _nodes.Values)
            {
                if (!mustStay(node) && Array.IndexOf(_recentInstalls, node) < 0)
                    candidates.Add(node);
            }
            if (candidates.Count == 0)
                return;
            candidates.Sort(static (a, b) => a.LastAccess.CompareTo(b.LastAccess));
            foreach (var node in candidates)
            {
                if ((long)_nodes.Count * nodeSize <= target)
                    return;
                if (node.Level > 0 && HasCachedChild(node))
                    continue;
                Remove(node);
                Evictions++;
            }
        }
    }

    private bool HasCachedChild(BtreeNode node)
    {
        var cursor = new NodeCursor(node, node.MinKey, reverse: false);
        while (cursor.Next(out var run, out var i))
        {
            var value = run.ValueOf(i);
            if (PtrFields.IsWellFormed(value) && _nodes.ContainsKey(PtrFields.OffsetBytes(value)))
                return true;
        }
        return false;
    }

    private void AssertWriteLock()
    {
        if (!_lock.IsWriteLockHeld)
            throw new InvalidOperationException("node cache changed without the engine's write lock");
    }
}
