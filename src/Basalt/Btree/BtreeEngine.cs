// The btree engine: every btree of one mounted filesystem, their cached nodes, the node-space
// allocator and Sync, the durability path that is used until the journal exists.
//
// Key decisions (docs/btree.md has the full story):
//  - Nodes are copy-on-write: a node that runs out of space is compacted or split into fresh
//    nodes, underfull siblings are merged into a fresh node; the parent's pointer is replaced.
//    A written node is only ever appended to (one bset per Sync), never rewritten in place.
//  - Sync writes dirty nodes bottom-up (level 0, flush, level 1, flush, ...) and then commits the
//    roots; a crash at any point leaves the last committed roots pointing at intact nodes.
//  - Freed node slots are reused only after a Sync that began after the free has completed.
//  - One engine-wide ReaderWriterLockSlim: readers share it, writers (and Sync's capture and
//    fold phases) take it exclusively, so writers are serialised engine-wide. No lock is held
//    across device I/O: a missing node is read with the lock dropped, then installed and the
//    operation restarted; Sync writes captured images without the lock.
//  - The cache is the node table (lookup by slot offset). Clean nodes are evicted LRU-ish under a
//    byte budget; roots, dirty and in-flight nodes and parents of cached nodes stay, so the
//    cached set is always closed under "parent of".
using System.Diagnostics.CodeAnalysis;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

public sealed partial class BtreeEngine : IDisposable
{
    private readonly IBlockDevice _device;
    private readonly BtreeGeometry _geometry;
    private readonly BtreeEngineOptions _options;
    private readonly IRootCommitter _committer;
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly object _syncGate = new();
    private readonly NodeCache _cache;
    private readonly HashSet<BtreeNode> _dirty = [];
    private readonly NodeAllocator _allocator;
    private readonly Btree?[] _trees = new Btree?[BtreeIds.MaxId + 1];
    private readonly Random _random;
    private readonly List<string> _mountProblems = [];
    private IReadOnlyList<BtreeRoot> _committedRoots;
    private Exception? _emergencyCause;
    private long _syncsStarted;
    private int _structureDepth;
    private bool _inCapture;
    private IRestartHandler? _restartHandler;
    private bool _disposed;

    // Counters; the ones readers bump are updated with Interlocked.
    private long _splits;
    private long _rootSplits;
    private long _compactions;
    private long _merges;
    private long _rootCollapses;
    private long _nodeReads;
    private long _nodeWrites;
    private long _nodeBytesWritten;
    private long _ignoredBsets;
    private long _nodesNeedingRewrite;
    private long _syncs;

    private BtreeEngine(IBlockDevice device, BtreeGeometry geometry, IReadOnlyList<BtreeRoot> roots, BtreeEngineOptions options,
        IRootCommitter committer)
    {
        _device = device;
        _geometry = geometry;
        _options = options;
        _committer = committer;
        _random = options.Random ?? new Random();
        _cache = new NodeCache(_lock);
        _allocator = new NodeAllocator(geometry, options.NodeSpaceObserver);
        _committedRoots = roots.ToArray();
        var limit = Math.Min(BkeyFormat.MaxValueBytes, geometry.NodeSize / 4);
        MaxValueBytes = Math.Min(options.MaxValueBytes ?? limit, limit);
        NodeCapacity = geometry.NodeSize - BtreeNodeWriter.FirstRecordSize(0, 8);
        foreach (var d in BtreeIds.All)
            _trees[(int)d.Id] = new Btree(this, d.Id);
    }

    /// <summary>
    /// Opens the btrees of a filesystem from its committed roots. Walks the interior nodes to
    /// rebuild the node allocator (leaves are not read) and caches them. A node that cannot be read
    /// during the walk is remembered in <see cref="MountProblems"/>; operations that reach it throw.
    /// </summary>
    public static BtreeEngine Open(IBlockDevice device, BtreeGeometry geometry, IReadOnlyList<BtreeRoot> roots,
        BtreeEngineOptions options, IRootCommitter committer)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(geometry);
        ArgumentNullException.ThrowIfNull(roots);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(committer);
        CheckGeometry(device, geometry);
        var engine = new BtreeEngine(device, geometry, roots, options, committer);
        foreach (var root in roots)
        {
            if (!BtreeIds.IsKnown((byte)root.Btree))
                BasaltException.Throw(ErrorCode.InvalidArgument, $"root for unknown btree id {(byte)root.Btree}");
            var tree = engine[root.Btree];
            if (tree.RootNode is not null || tree.PendingRoot is not null)
                BasaltException.Throw(ErrorCode.InvalidArgument, $"two roots for btree {root.Btree.ToText()}");
            tree.PendingRoot = root;
        }
        engine._lock.EnterWriteLock();
        try
        {
            engine.RebuildAllocator();
        }
        finally
        {
            engine._lock.ExitWriteLock();
        }
        return engine;
    }

    private static void CheckGeometry(IBlockDevice device, BtreeGeometry g)
    {
        if (g.BlockSize < 512 || g.BlockSize > 65536 || (g.BlockSize & (g.BlockSize - 1)) != 0 ||
            g.NodeSize < g.BlockSize || g.NodeSize % g.BlockSize != 0 || g.NodeSize > 1024 * 1024 ||
            g.NodeAreaOffset < 0 || g.NodeAreaOffset % FormatLimits.SectorSize != 0 || g.NodeAreaLength < g.NodeSize ||
            g.NodeAreaOffset + g.NodeAreaLength > device.Size)
        {
            BasaltException.Throw(ErrorCode.InvalidArgument,
                $"{device.Name}: unusable btree geometry: node {g.NodeSize}, block {g.BlockSize}, area {g.NodeAreaOffset}+{g.NodeAreaLength}, device {device.Size}");
        }
    }

    /// <summary>The btree with the given id. A btree without a root is empty; its first insert creates a leaf root.</summary>
    public Btree this[BtreeId id] =>
        (byte)id <= BtreeIds.MaxId && _trees[(int)id] is { } t ? t : throw new ArgumentOutOfRangeException(nameof(id), $"unknown btree id {(byte)id}");

    public BtreeGeometry Geometry => _geometry;

    /// <summary>Largest value accepted by Insert.</summary>
    public int MaxValueBytes { get; }

    /// <summary>The roots committed by the last completed Sync (or given to Open).</summary>
    public IReadOnlyList<BtreeRoot> Roots => Volatile.Read(ref _committedRoots);

    /// <summary>Problems met while walking the interior nodes at Open (unreadable nodes).</summary>
    public IReadOnlyList<string> MountProblems => _mountProblems;

    public bool IsEmergencyReadOnly => Volatile.Read(ref _emergencyCause) is not null;

    /// <summary>The failure that put the engine into emergency read-only, if any.</summary>
    public Exception? EmergencyCause => Volatile.Read(ref _emergencyCause);

    /// <summary>Key bytes a node can hold in its first record.</summary>
    internal int NodeCapacity { get; }

    public BtreeStats Stats
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                long dirty = 0;
                foreach (var node in _cache.Nodes)
                {
                    if (node.IsDirty || node.InFlight is not null)
                        dirty++;
                }
                return new BtreeStats
                {
                    Splits = _splits,
                    RootSplits = _rootSplits,
                    Compactions = _compactions,
                    Merges = _merges,
                    RootCollapses = _rootCollapses,
                    NodeReads = Interlocked.Read(ref _nodeReads),
                    NodeWrites = _nodeWrites,
                    NodeBytesWritten = _nodeBytesWritten,
                    Evictions = _cache.Evictions,
                    CacheBytes = (long)_cache.Count * _geometry.NodeSize,
                    DirtyBytes = dirty * _geometry.NodeSize,
                    IgnoredBsetsBeyondWritten = Interlocked.Read(ref _ignoredBsets),
                    NodesNeedingRewrite = Interlocked.Read(ref _nodesNeedingRewrite),
                    Syncs = _syncs,
                };
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>
    /// Releases the engine's resources. It does NOT sync: unsynced changes are dropped, exactly as a
    /// crash would drop them. Call <see cref="Sync"/> first to keep them. No operation may run
    /// concurrently with or after Dispose.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _lock.Dispose();
    }

    internal void ThrowIfReadOnly()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Volatile.Read(ref _emergencyCause) is { } cause)
            ThrowEmergency(cause);
    }

    [DoesNotReturn]
    private static void ThrowEmergency(Exception cause) =>
        throw new BasaltException(ErrorCode.EmergencyReadOnly, $"btree engine is in emergency read-only after: {cause.Message}", cause);

    private void EnterEmergency(Exception cause) => Interlocked.CompareExchange(ref _emergencyCause, cause, null);

    private ulong NextSeq()
    {
        ulong seq;
        do
        {
            seq = (ulong)_random.NextInt64() ^ ((ulong)_random.Next() << 63);
        }
        while (seq == 0);
        return seq;
    }

    /// <summary>For tests: the allocator's used slots (pending frees included) and pending frees.</summary>
    internal (IReadOnlyList<long> Used, IReadOnlyList<long> PendingFree, int Available) AllocatorState()
    {
        _lock.EnterReadLock();
        try
        {
            return (_allocator.UsedSlots(), _allocator.PendingFree(), _allocator.Available);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>For tests: the cache's interior-node counter and the number of interior nodes actually cached.</summary>
    internal (int Counter, int Actual) CacheInteriorCounts()
    {
        _lock.EnterReadLock();
        try
        {
            return (_cache.InteriorCount, _cache.Nodes.Count(n => n.Level > 0));
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Reads the whole interior structure from the roots and marks every reachable slot used.</summary>
    private void RebuildAllocator()
    {
        foreach (var tree in _trees)
        {
            if (tree?.PendingRoot is not { } root)
                continue;
            if (root.Ptr.Ptrs.Count == 0)
            {
                _mountProblems.Add($"{root.Btree.ToText()}: root pointer without a device pointer");
                continue;
            }
            MarkReachable(root.Ptr);
            if (root.Level == 0)
                continue;
            BtreeNode node;
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
            WalkInterior(node);
        }
        Evict();
    }

    private void WalkInterior(BtreeNode node)
    {
        var cursor = new NodeCursor(node, node.MinKey, reverse: false);
        var children = new List<(Bpos Max, byte[] Value)>();
        while (cursor.Next(out var run, out var i))
            children.Add((run.Entries[i].Key.Pos, run.ValueOf(i).ToArray()));
        foreach (var (max, value) in children)
        {
            if (!BtreePtrValue.TryRead(value, out var ptr, out var problem))
            {
                _mountProblems.Add($"{node.ToText()}: child pointer at {max.ToText()}: {problem}");
                continue;
            }
            MarkReachable(ptr);
            if (node.Level == 1)
                continue;
            BtreeNode child;
            try
            {
                child = ReadNode(node.Btree, (byte)(node.Level - 1), ptr, max);
            }
            catch (BasaltException ex) when (ex.Class is ErrorClass.Corruption or ErrorClass.Io)
            {
                _mountProblems.Add(ex.Message);
                continue;
            }
            if (_cache.TryGet(child.Offset, out _))
            {
                _mountProblems.Add($"{child.ToText()}: reachable twice");
                continue;
            }
            _cache.Add(child);
            WalkInterior(child);
        }
    }

    private void MarkReachable(BtreePtrValue ptr)
    {
        if (ptr.Ptrs.Count == 0)
            return;
        var offset = ptr.Ptrs[0].OffsetBytes;
        if (_allocator.MarkUsed(offset) && _options.NodeSpaceObserver is { } observer)
        {
            observer.NodeAllocated(offset, _geometry.NodeSize);
            observer.NodeWritten(offset, ptr.SectorsWritten * FormatLimits.SectorSize);
        }
    }
}
