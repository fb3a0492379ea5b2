// The btree engine: every btree of one mounted filesystem, their cached nodes, the node-space
// allocator, and write-back of dirty nodes. It sits below the journal (DESIGN §1): commits reach
// it already journaled (transactions apply their leaf updates here after the journal took them),
// and what it changes itself (interior updates from structure changes and write-back) it hands
// to the journal through IBtreeJournal once the nodes those updates name are durable.
//
// Key decisions (docs/btree.md and docs/recovery.md have the full story):
//  - Nodes are copy-on-write: a node that runs out of space is compacted or split into fresh
//    nodes, underfull siblings are merged into a fresh node; the parent's pointer is replaced.
//    A written node is only ever appended to (one bset per write), never rewritten in place.
//  - Write-back (BtreeEngine.WriteBack.cs) writes dirty nodes lazily: when the journal needs the
//    space their pins hold, on a timer, or on demand. A bset is written only once the journal
//    entries of its keys are durable (rule a); the parent's sectors_written update is journaled
//    only after the write completed (rule h), and only then the node's pin is released (rule c).
//  - Freed node slots are reused only once the journal entry that stopped pointing at them is
//    durable (rule d).
//  - Locks: a writer gate serialises every mutation (transactions hold it across their body, so
//    what they read does not change before they commit); the engine's ReaderWriterLockSlim
//    separates readers from the short phases that change memory. No lock is held across device
//    I/O: a missing node is read with the locks dropped and the operation restarted (Restart.cs);
//    write-back writes captured images without them. A checkpoint holds the writer gate across
//    its writes (it runs at mount, unmount and fsck), never the read side.
//  - The cache is the node table (NodeCache). Clean nodes are evicted LRU-ish under a byte
//    budget; roots, dirty, pinned and in-flight nodes and parents of cached nodes stay.
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
    private readonly IBtreeJournal _journal;
    private readonly EmergencyState _emergency;
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Lock _writerGate = new();

    // Set while an fsck pointer edit (InsertAt/DeleteAt above level 0) runs: restructures compact
    // rather than split while the node's keys fit (see Restructure).
    private bool _pointerRepair;
    private readonly Lock _writeBackGate = new();
    private readonly NodeCache _cache;
    private readonly HashSet<BtreeNode> _dirty = [];
    private readonly NodeAllocator _allocator;
    private readonly Btree?[] _trees = new Btree?[BtreeIds.MaxId + 1];
    private readonly Random _random;
    private readonly List<string> _mountProblems = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Type, object> _services = new();
    private IRestartHandler? _restartHandler;
    private long? _earlyReusable;
    private int _structureDepth;
    private bool _inCapture;
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
    private long _blacklistedBsets;
    private long _nodesNeedingRewrite;
    private long _interiorCommits;
    private long _writeBackRounds;
    private long _checkpoints;

    private BtreeEngine(IBlockDevice device, BtreeGeometry geometry, BtreeEngineOptions options, IBtreeJournal journal, EmergencyState emergency)
    {
        _device = device;
        _geometry = geometry;
        _options = options;
        _journal = journal;
        _emergency = emergency;
        _random = options.Random ?? new Random();
        _cache = new NodeCache(_lock);
        _allocator = new NodeAllocator(geometry, options.NodeSpaceObserver);
        var limit = Math.Min(BkeyFormat.MaxValueBytes, geometry.NodeSize / 4);
        MaxValueBytes = Math.Min(options.MaxValueBytes ?? limit, limit);
        NodeCapacity = geometry.NodeSize - BtreeNodeWriter.FirstRecordSize(0, 8);
        foreach (var d in BtreeIds.All)
            _trees[(int)d.Id] = new Btree(this, d.Id);
    }

    /// <summary>
    /// Opens the btrees of a filesystem from its roots (the superblock's, or the newest journal
    /// entry's). Without journal keys to replay it walks the interior nodes to rebuild the node
    /// allocator (leaves are not read) and caches them; a node that cannot be read during the walk
    /// is remembered in <see cref="MountProblems"/>, and operations that reach it throw. With
    /// <paramref name="replayInterior"/> (the interior keys recovery will replay) the allocator is
    /// marked conservatively instead, and <see cref="FinishReplay"/> rebuilds it exactly.
    /// </summary>
    public static BtreeEngine Open(IBlockDevice device, BtreeGeometry geometry, IReadOnlyList<BtreeRoot> roots,
        BtreeEngineOptions options, IBtreeJournal journal, EmergencyState emergency, IReadOnlyList<BtreeUpdate>? replayInterior = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(geometry);
        ArgumentNullException.ThrowIfNull(roots);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(journal);
        ArgumentNullException.ThrowIfNull(emergency);
        CheckGeometry(device, geometry);
        var engine = new BtreeEngine(device, geometry, options, journal, emergency);
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
            if (replayInterior is null)
                engine.RebuildAllocator();
            else
                engine.MarkConservatively(replayInterior);
        }
        finally
        {
            engine._lock.ExitWriteLock();
        }
        return engine;
    }

    private static void CheckGeometry(IBlockDevice device, BtreeGeometry g)
    {
        if (g.BlockSize < FormatLimits.SectorSize || g.BlockSize > 65536 || (g.BlockSize & (g.BlockSize - 1)) != 0 ||
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

    /// <summary>The current roots (in memory): every btree that has one, in btree id order.</summary>
    public IReadOnlyList<BtreeRoot> Roots
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return CurrentRoots();
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>Problems met while walking the interior nodes at Open (unreadable nodes).</summary>
    public IReadOnlyList<string> MountProblems => _mountProblems;

    public bool IsEmergencyReadOnly => _emergency.IsSet;

    /// <summary>The failure that put the filesystem into emergency read-only, if any.</summary>
    public Exception? EmergencyCause => _emergency.Cause;

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
                long pinned = 0;
                foreach (var node in _cache.Nodes)
                {
                    if (node.IsDirty || node.InFlight is not null)
                        dirty++;
                    if (node.IsPinned)
                        pinned++;
                }
                return new BtreeStats
                {
                    Splits = _splits,
                    RootSplits = _rootSplits,
                    Compactions = _compactions,
                    Merges = _merges,
                    RootCollapses = _rootCollapses,
                    NodeReads = Interlocked.Read(ref _nodeReads),
                    NodeWrites = Interlocked.Read(ref _nodeWrites),
                    NodeBytesWritten = Interlocked.Read(ref _nodeBytesWritten),
                    Evictions = _cache.Evictions,
                    CacheBytes = (long)_cache.Count * _geometry.NodeSize,
                    DirtyBytes = dirty * _geometry.NodeSize,
                    PinnedNodes = pinned,
                    PendingInteriorUpdates = _pendingByPosition.Count,
                    IgnoredBsetsBeyondWritten = Interlocked.Read(ref _ignoredBsets),
                    BlacklistedBsets = Interlocked.Read(ref _blacklistedBsets),
                    NodesNeedingRewrite = Interlocked.Read(ref _nodesNeedingRewrite),
                    InteriorCommits = _interiorCommits,
                    WriteBackRounds = Interlocked.Read(ref _writeBackRounds),
                    Checkpoints = Interlocked.Read(ref _checkpoints),
                };
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>
    /// Releases the engine's resources. It writes nothing: changes not yet written back stay only in
    /// the journal, exactly as after a crash. The mount glue checkpoints first on a clean unmount.
    /// No operation may run concurrently with or after Dispose.
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
        _emergency.ThrowIfSet();
    }

    /// <summary>Serialises mutations: transactions hold it across their body and commit; engine operations take it for each attempt.</summary>
    internal Lock WriterGate => _writerGate;

    /// <summary>
    /// Registers a higher layer's per-mount service (the allocator, say) so that what the btree
    /// runs on that layer's behalf (triggers) can reach it without the btree referencing the layer.
    /// </summary>
    public void SetService<T>(T service) where T : class => _services[typeof(T)] = service;

    /// <summary>The service registered for <typeparamref name="T"/>, or null.</summary>
    public T? GetService<T>() where T : class => _services.TryGetValue(typeof(T), out var s) ? (T)s : null;

    /// <summary>The engine's reader/writer lock, entered in write mode by the transaction layer to apply a commit.</summary>
    internal void EnterWriteLock() => _lock.EnterWriteLock();

    internal void ExitWriteLock() => _lock.ExitWriteLock();

    internal void EnterReadLock() => _lock.EnterReadLock();

    internal void ExitReadLock() => _lock.ExitReadLock();

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

    /// <summary>
    /// For tests: the allocator's used slots (pending frees included), the slots freed but not yet
    /// reusable (by interior updates not yet journaled, or journaled but not yet durable), and the
    /// free count.
    /// </summary>
    internal (IReadOnlyList<long> Used, IReadOnlyList<long> PendingFree, int Available) AllocatorState()
    {
        _lock.EnterReadLock();
        try
        {
            var pending = _allocator.PendingFree().Concat(_pendingGroups.SelectMany(g => g.Frees)).Order().ToList();
            return (_allocator.UsedSlots(), pending, _allocator.Available);
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
}
