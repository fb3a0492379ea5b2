// The allocator of a mounted filesystem: which buckets are open, the gens of every bucket, write
// points, reservations, and the background work that turns emptied buckets back into free ones.
//
// Bucket lifecycle (docs/allocation.md): a free bucket (a freespace key) is opened by a write
// point; data is appended into it; the first extent that commits into it makes it a user bucket
// (the triggers). When overwrites and deletes take its last live sector it becomes need_discard.
// The discard worker waits until the journal entry that emptied it is flushed (rule d), discards
// it (punch hole / BLKDISCARD, unless discards are off), and in one transaction increments its gen
// and makes it free again — every pointer that might still name the old contents is stale from
// then on. Nothing in memory changes before the commit that justifies it: gens and pending frees
// follow commits through ICommitObserver.
//
// ENOSPC: a write first reserves its sectors. When the free space cannot cover a reservation the
// allocator flushes the journal, runs the discards, then copygc (which moves live data out of the
// emptiest buckets), and only then reports ENOSPC. Reserves: ordinary writes may not take the last
// ReserveBuckets free buckets; copygc may, so it can always make progress on a full device.
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Superblocks;
using Basalt.Transactions;

namespace Basalt.Alloc;

/// <summary>The layer that owns the data in buckets (extents): what copygc and gc_gens need from it.</summary>
public interface ISpaceOwners
{
    /// <summary>Moves the live data out of <paramref name="bucket"/>; returns the sectors moved.</summary>
    long Evacuate(BucketRef bucket);

    /// <summary>Recomputes every bucket's oldest_gen from the pointers into it; returns the alloc keys changed.</summary>
    int RunGcGens();
}

/// <summary>Who may take the last free buckets.</summary>
public enum Watermark
{
    /// <summary>User writes: stop at the reserve.</summary>
    Normal,
    /// <summary>Copygc and repairs: may use the reserve.</summary>
    Reserve,
}

/// <summary>A stream of appends into one open bucket at a time.</summary>
public sealed class WritePoint
{
    internal WritePoint(string name, Watermark watermark)
    {
        Name = name;
        Watermark = watermark;
    }

    public string Name { get; }

    public Watermark Watermark { get; }

    internal BucketRef? Bucket { get; set; }

    internal byte Gen { get; set; }

    /// <summary>Sectors of the open bucket handed out so far.</summary>
    internal uint Used { get; set; }
}

/// <summary>Options of the allocation layer for one mount.</summary>
public sealed record SpaceOptions
{
    /// <summary>Discard freed buckets; null = the device's format setting.</summary>
    public bool? Discard { get; init; }

    /// <summary>Start the background discard worker (tests may drive it by hand).</summary>
    public bool BackgroundWorker { get; init; } = true;

    /// <summary>
    /// Claim free buckets for btree nodes when node space runs short (the default). Off, node
    /// space stays the node area and the buckets claimed already: tests that need it to run short.
    /// </summary>
    public bool ClaimNodeBuckets { get; init; } = true;

    /// <summary>Debug-only ordering bug (rule d): free emptied buckets without waiting for the journal entry that emptied them to be flushed.</summary>
    internal bool DebugFreeBeforeFlush { get; init; }
}

/// <summary>A reservation of sectors for a write; dispose to return what was not used.</summary>
public sealed class SpaceReservation : IDisposable
{
    private readonly SpaceManager _space;
    private long _sectors;

    internal SpaceReservation(SpaceManager space, long sectors)
    {
        _space = space;
        _sectors = sectors;
    }

    public long Sectors => Interlocked.Read(ref _sectors);

    /// <summary>Marks <paramref name="sectors"/> as used (they now sit in an open bucket's used part).</summary>
    internal void Consume(long sectors)
    {
        var take = Math.Min(sectors, Interlocked.Read(ref _sectors));
        Interlocked.Add(ref _sectors, -take);
        _space.ReleaseReserved(take);
    }

    public void Dispose()
    {
        var left = Interlocked.Exchange(ref _sectors, 0);
        if (left > 0)
            _space.ReleaseReserved(left);
    }
}

public sealed partial class SpaceManager : ICommitObserver, INodeSpaceKeeper, IDisposable
{
    /// <summary>Buckets per transaction of discard and gc_gens batches, at most.</summary>
    private const int MaxBatch = 64;

    /// <summary>Journal bytes one bucket's state change may take: its alloc key, bucket_gens key, index and accounting edits.</summary>
    private const int JournalBytesPerBucket = 768;

    private readonly BtreeEngine _engine;
    private readonly Transactor? _transactor;
    private readonly JournalWriter? _journal;
    private readonly IBlockDevice _device;
    private readonly SuperblockStore _superblocks;
    private readonly SpaceOptions _options;
    private readonly Lock _lock = new();
    // Every bucket's gen, per device. Written only under _lock (by the commit observer, after the
    // commit that changed the alloc key) and read by IsStale without it: see IsStale.
    private readonly byte[][] _gens;
    // Per device, the sectors of a bucket: IsStale's pointer-to-bucket step without the layout's lists.
    private readonly uint[] _bucketSectors;
    private readonly ulong[][] _open;
    private readonly ulong[] _cursor;
    private readonly Dictionary<BucketRef, ulong> _emptiedAt = [];
    private readonly AutoResetEvent _wake = new(false);
    private readonly SemaphoreSlim _workerRound = new(1, 1);
    private readonly Thread? _worker;
    // IsFreeInBtree's iterator, used with the lock held.
    private BtreeIterator? _freespaceProbe;
    private long _reserved;
    private volatile bool _stopping;
    private long _discards;
    private long _invalidated;
    private long _copygcMoved;
    private long _nodeClaims;
    private long _nodeReleases;
    private Exception? _workerError;

    private SpaceManager(BtreeEngine engine, Transactor? transactor, JournalWriter? journal, IBlockDevice device, SuperblockStore superblocks,
        SpaceOptions options)
    {
        _engine = engine;
        _transactor = transactor;
        _journal = journal;
        _device = device;
        _superblocks = superblocks;
        _options = options;
        Layout = SpaceLayout.From(superblocks.Current);
        _gens = Layout.Devices.Select(d => new byte[d.Nbuckets]).ToArray();
        _bucketSectors = Layout.Devices.Select(d => d.BucketSectors).ToArray();
        _open = Layout.Devices.Select(d => new ulong[(d.Nbuckets + 63) / 64]).ToArray();
        _cursor = Layout.Devices.Select(d => (ulong)d.FirstBucket).ToArray();
        Batch = journal is null ? MaxBatch : (int)Math.Clamp(((long)journal.MaxCommitBytes - 1024) / JournalBytesPerBucket, 1, MaxBatch);
        UserWrites = new WritePoint("user", Watermark.Normal);
        CopygcWrites = new WritePoint("copygc", Watermark.Reserve);
        if (transactor is not null && options.BackgroundWorker)
        {
            _worker = new Thread(WorkerLoop) { IsBackground = true, Name = "basalt-space" };
        }
    }

    /// <summary>
    /// Opens the allocation layer on a mounted engine: registers the triggers' services, loads the
    /// gens, creates the allocation info of a device that has none yet (writable mounts), and
    /// starts the discard worker.
    /// </summary>
    public static SpaceManager Open(BtreeEngine engine, Transactor? transactor, JournalWriter? journal, IBlockDevice device,
        SuperblockStore superblocks, SpaceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(superblocks);
        SpaceKeyTypes.Register();
        var space = new SpaceManager(engine, transactor, journal, device, superblocks, options ?? new SpaceOptions());
        engine.SetService(space.Layout);
        engine.SetService(space);
        space.LoadGens();
        if (transactor is not null)
        {
            transactor.AddCommitObserver(space);
            transactor.NodeSpaceKeeper = space;
            space.InitializeIfNeeded();
            space._worker?.Start();
        }
        return space;
    }

    public SpaceLayout Layout { get; }

    /// <summary>Buckets one transaction of the discard worker or gc_gens changes (fewer with a small journal).</summary>
    public int Batch { get; }

    /// <summary>The write point of ordinary data writes.</summary>
    public WritePoint UserWrites { get; }

    /// <summary>The write point copygc moves live data into (may use the reserve).</summary>
    public WritePoint CopygcWrites { get; }

    public bool ReadOnly => _transactor is null;

    /// <summary>Discards are issued for freed buckets (format flag, overridden by the mount option).</summary>
    public bool DiscardEnabled =>
        _options.Discard ?? (_superblocks.Current.Member.Flags & MemberFlags.Discard) != 0;

    /// <summary>What owns the data in buckets (the data layer registers itself): copygc and gc_gens go through it.</summary>
    public ISpaceOwners? Owners { get; set; }

    public long Discards => Interlocked.Read(ref _discards);

    public long Invalidated => Interlocked.Read(ref _invalidated);

    public long CopygcMovedSectors => Interlocked.Read(ref _copygcMoved);

    /// <summary>Buckets ordinary writes leave free: 1/64 of the data buckets, at least 2 and at most 512.</summary>
    public ulong ReserveBuckets(byte device) => Math.Clamp(Layout[device].DataBuckets / 64, 2, 512);

    /// <summary>The current gen of a bucket (as of the last commit).</summary>
    public byte GenOf(BucketRef bucket)
    {
        lock (_lock)
            return bucket.Bucket < (ulong)_gens[bucket.Device].Length ? _gens[bucket.Device][bucket.Bucket] : (byte)0;
    }

    /// <summary>True when <paramref name="ptr"/> is stale: its bucket was invalidated after the pointer was made.</summary>
    /// <remarks>
    /// Every data read asks this, so it takes no lock: it reads the bucket's gen with acquire
    /// semantics (a byte is written and read whole), and the commit observer writes gens with
    /// release semantics under <c>_lock</c>. That is as safe as taking the lock, because the lock
    /// never covered the read that follows either: a pointer found fresh here may have its bucket
    /// invalidated, discarded and rewritten before the device read returns, with or without the
    /// lock. What keeps such a read from returning wrong bytes is the run's checksum (the bucket
    /// holds zeros or other data, which fail it) and the reader's next step after a failure: the
    /// general read looks the extent up again, and the extent that named the old bucket is gone
    /// (a bucket is invalidated only once nothing live points into it). What this check must
    /// guarantee is only that a gen increment that committed before the read looked its pointer
    /// up is seen, so a stale pointer that is still in the btree (a lost punch, a planted key) is
    /// never read: the acquire read sees every gen written before the commit that published it
    /// returned, as the lock did.
    /// </remarks>
    public bool IsStale(DevicePtr ptr)
    {
        var gens = _gens;
        if (ptr.Device >= gens.Length)
            return true;
        var deviceGens = gens[ptr.Device];
        var bucket = ptr.OffsetSectors / _bucketSectors[ptr.Device];
        if (bucket >= (ulong)deviceGens.Length)
            return true;
        return Gens.IsStale(Volatile.Read(ref deviceGens[bucket]), ptr.Gen);
    }

    public bool IsOpen(BucketRef bucket)
    {
        lock (_lock)
            return IsOpenLocked(bucket);
    }

    private bool IsOpenLocked(BucketRef b) => (_open[b.Device][b.Bucket >> 6] & (1UL << (int)(b.Bucket & 63))) != 0;

    private void SetOpenLocked(BucketRef b, bool open)
    {
        ref var word = ref _open[b.Device][b.Bucket >> 6];
        if (open)
            word |= 1UL << (int)(b.Bucket & 63);
        else
            word &= ~(1UL << (int)(b.Bucket & 63));
    }

    // ---- Mount -------------------------------------------------------------------------------

    private void LoadGens()
    {
        var it = _engine[BtreeId.BucketGens].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            var pos = it.Key.Pos;
            if (pos.Inode >= (ulong)_gens.Length || it.Value.Length != BucketGensValue.Size)
                continue;
            var gens = _gens[pos.Inode];
            var first = pos.Offset * SpacePositions.GensPerKey;
            for (var i = 0; i < SpacePositions.GensPerKey; i++)
            {
                var b = first + (ulong)i;
                if (b < (ulong)gens.Length)
                    gens[b] = it.Value[i];
            }
        }
    }

    /// <summary>
    /// Creates the allocation info of a device formatted without it: the freespace runs of its
    /// data buckets and the accounting (journal and node-area buckets need no alloc key: a bucket
    /// without one is in its layout state). One transaction per device, written whole, so a crash
    /// before the member flag is set just repeats it.
    /// </summary>
    private void InitializeIfNeeded()
    {
        var sb = _superblocks.Current;
        if ((sb.Member.Flags & MemberFlags.AllocInitialized) != 0)
            return;
        foreach (var dev in Layout.Devices)
        {
            var usage = new Dictionary<BucketDataType, DeviceUsage>();
            var runs = new List<(ulong Start, ulong End)>();
            for (var b = (ulong)dev.FirstBucket; b < dev.Nbuckets; b++)
            {
                var type = dev.FixedType(b);
                usage[type] = usage.GetValueOrDefault(type).Add(new DeviceUsage(1, type == BucketDataType.Free ? 0 : dev.BucketSectors, 0));
                if (type != BucketDataType.Free)
                    continue;
                if (runs.Count > 0 && runs[^1].End == b)
                    runs[^1] = (runs[^1].Start, b + 1);
                else
                    runs.Add((b, b + 1));
            }
            _transactor!.Transact(tx =>
            {
                foreach (var old in tx.Range(BtreeId.Freespace, new Bpos(dev.Index, 0), new Bpos(dev.Index, ulong.MaxValue)))
                    tx.Delete(BtreeId.Freespace, old.Key.Pos);
                foreach (var (start, end) in runs)
                    tx.Set(BtreeId.Freespace, FreespaceEdits.RunKey(dev.Index, start, end), []);
                foreach (var type in BucketDataTypes.All)
                    SpaceTriggers.SetUsage(tx, dev.Index, type, usage.GetValueOrDefault(type));
            }, CommitOptions.Durable);
        }
        _superblocks.Update(current => current with
        {
            Members = current.Members.Select(m => m with { Flags = m.Flags | MemberFlags.AllocInitialized }).ToList(),
        });
    }

    // ---- Commit observer -----------------------------------------------------------------------

    void ICommitObserver.Committed(IReadOnlyList<BtreeUpdate> updates, ulong seq)
    {
        var wake = false;
        lock (_lock)
        {
            for (var i = 0; i < updates.Count; i++)
            {
                var u = updates[i];
                if (u.Btree != BtreeId.Alloc || !SpacePositions.TryBucketOf(u.Key.Pos, out var b) || b.Device >= _gens.Length ||
                    b.Bucket >= (ulong)_gens[b.Device].Length)
                {
                    continue;
                }
                var value = u.Key.Type == KeyType.Alloc && AllocValue.TryRead(u.Value.Span, out var a, out _) ? a : AllocValue.Empty;
                Volatile.Write(ref _gens[b.Device][b.Bucket], value.Gen); // read without the lock by IsStale
                if (value.DataType == BucketDataType.NeedDiscard)
                {
                    _emptiedAt[b] = seq;
                    wake = true;
                }
                else
                {
                    _emptiedAt.Remove(b);
                }
            }
        }
        if (wake)
            _wake.Set();
    }

    // ---- Usage -----------------------------------------------------------------------------------

    /// <summary>The accounting counters of one device, by data type (zero where there is no key).</summary>
    public IReadOnlyDictionary<BucketDataType, DeviceUsage> Usage(byte device)
    {
        var result = new Dictionary<BucketDataType, DeviceUsage>();
        foreach (var type in BucketDataTypes.All)
        {
            result[type] = _engine[BtreeId.Accounting].TryGet(DeviceUsage.Position(device, type), out var v) &&
                           DeviceUsage.TryRead(v, out var u, out _)
                ? u
                : default;
        }
        return result;
    }

    private long FreeBuckets(byte device) =>
        _engine[BtreeId.Accounting].TryGet(DeviceUsage.Position(device, BucketDataType.Free), out var v) &&
        DeviceUsage.TryRead(v, out var u, out _)
            ? u.Buckets
            : 0;

    /// <summary>
    /// Sectors ordinary writes can still get: the free buckets not open, less the reserve, plus
    /// what is left in open buckets, less what other writes have reserved.
    /// </summary>
    public long AvailableSectors(Watermark watermark = Watermark.Normal)
    {
        long total = 0;
        foreach (var dev in Layout.Devices)
        {
            // Only the open bucket of the write point this watermark writes through can take the data.
            long openLeft = 0;
            var own = watermark == Watermark.Normal ? UserWrites : CopygcWrites;
            lock (_lock)
            {
                if (own.Bucket is { } b && b.Device == dev.Index)
                    openLeft = dev.BucketSectors - own.Used;
            }
            total += (Math.Max(0, UsableFreeBuckets(dev, watermark)) * dev.BucketSectors) + openLeft;
        }
        return total - Interlocked.Read(ref _reserved);
    }

    /// <summary>
    /// Free buckets a new bucket may come from: free in the accounting, less those a write point
    /// holds open (still free until their first commit), less the reserve for ordinary writes.
    /// </summary>
    private long UsableFreeBuckets(DeviceLayout dev, Watermark watermark)
    {
        long openFree = 0;
        lock (_lock)
        {
            if (IsOpenAndFree(UserWrites, dev.Index))
                openFree++;
            if (IsOpenAndFree(CopygcWrites, dev.Index))
                openFree++;
        }
        return FreeBuckets(dev.Index) - openFree - (watermark == Watermark.Normal ? (long)ReserveBuckets(dev.Index) : 0);
    }

    private bool IsOpenAndFree(WritePoint wp, byte device) => wp.Bucket is { } b && b.Device == device && IsFreeInBtree(b);

    /// <summary>
    /// With the lock held: whether a freespace key covers <paramref name="b"/>. Every data write's
    /// reservation asks this, so it seeks one iterator kept for it (guarded by the lock) and copies
    /// a single key, instead of building an iterator per call.
    /// </summary>
    private bool IsFreeInBtree(BucketRef b)
    {
        var it = _freespaceProbe ??= _engine[BtreeId.Freespace].Iterate(Bpos.Min, Bpos.Max);
        it.Seek(new Bpos(b.Device, b.Bucket + 1), firstBatch: 1);
        return it.MoveNext() && it.Key.Pos.Inode == b.Device && it.Key.Pos.Offset - it.Key.Size <= b.Bucket;
    }

    internal void ReleaseReserved(long sectors) => Interlocked.Add(ref _reserved, -sectors);

    /// <summary>
    /// Reserves <paramref name="sectors"/> for a write. When they are not available it makes room
    /// (journal flush, discards, copygc) and fails with DeviceFull only when that frees nothing.
    /// </summary>
    public SpaceReservation Reserve(long sectors, Watermark watermark = Watermark.Normal)
    {
        ThrowIfReadOnly();
        for (var attempt = 0; ; attempt++)
        {
            lock (_lock)
            {
                if (AvailableSectors(watermark) >= sectors)
                {
                    _reserved += sectors;
                    return new SpaceReservation(this, sectors);
                }
            }
            if (attempt >= 2 || !MakeRoom(aggressive: attempt > 0))
            {
                throw new BasaltException(ErrorCode.DeviceFull,
                    $"{_device.Name}: no space left: {sectors * FormatLimits.SectorSize} bytes needed, " +
                    $"{Math.Max(0, AvailableSectors(watermark)) * FormatLimits.SectorSize} available");
            }
        }
    }

    private void ThrowIfReadOnly()
    {
        if (_transactor is null)
            throw new BasaltException(ErrorCode.ReadOnlyDevice, $"{_device.Name}: the filesystem is mounted read-only");
    }

    /// <summary>Flushes the journal and turns emptied buckets into free ones; with <paramref name="aggressive"/> also runs copygc. True when anything was freed.</summary>
    public bool MakeRoom(bool aggressive)
    {
        ThrowIfReadOnly();
        var released = ReleaseEmptyNodeBuckets(keepFree: NodeLowWater);
        _journal?.WaitDurable(_journal.CommittedSeq);
        var freed = RunDiscards(waitForJournal: true);
        if (released > 0 && freed == 0)
            freed = released;
        if (freed > 0 && !aggressive)
            return true;
        if (RunGcGensIfNeeded())
            freed++;
        var moved = RunCopygc();
        if (moved > 0)
        {
            _journal?.WaitDurable(_journal.CommittedSeq);
            freed += RunDiscards(waitForJournal: true);
        }
        return freed > 0 || moved > 0;
    }

    // ---- Allocation ------------------------------------------------------------------------------

    /// <summary>
    /// Hands out up to <paramref name="want"/> sectors of <paramref name="wp"/>'s open bucket
    /// (opening a new one when it is full), as a pointer with the bucket's current gen. The run
    /// never spans two buckets, so fewer sectors may come back.
    /// </summary>
    public DevicePtr Allocate(WritePoint wp, uint want, out uint granted)
    {
        ArgumentNullException.ThrowIfNull(wp);
        ThrowIfReadOnly();
        if (want == 0)
            throw new ArgumentOutOfRangeException(nameof(want));
        lock (_lock)
        {
            if (wp.Bucket is { } current && wp.Used < Layout[current.Device].BucketSectors)
                return Take(wp, want, out granted);
            CloseLocked(wp);
        }
        var (bucket, gen) = FindFreeBucket(wp.Watermark);
        lock (_lock)
        {
            wp.Bucket = bucket;
            wp.Gen = gen;
            wp.Used = 0;
            return Take(wp, want, out granted);
        }
    }

    private DevicePtr Take(WritePoint wp, uint want, out uint granted)
    {
        var b = wp.Bucket!.Value;
        var dev = Layout[b.Device];
        granted = Math.Min(want, dev.BucketSectors - wp.Used);
        var ptr = new DevicePtr(b.Device, dev.BucketStartSector(b.Bucket) + wp.Used, wp.Gen);
        wp.Used += granted;
        return ptr;
    }

    /// <summary>Closes the write point's bucket (the next allocation opens another).</summary>
    public void Close(WritePoint wp)
    {
        ArgumentNullException.ThrowIfNull(wp);
        lock (_lock)
            CloseLocked(wp);
        _wake.Set();
    }

    private void CloseLocked(WritePoint wp)
    {
        if (wp.Bucket is { } b)
            SetOpenLocked(b, false);
        wp.Bucket = null;
        wp.Used = 0;
    }

    /// <summary>Finds and opens a free bucket: in a freespace run, its alloc key agreeing, not open.</summary>
    private (BucketRef Bucket, byte Gen) FindFreeBucket(Watermark watermark)
    {
        foreach (var dev in Layout.Devices)
        {
            if (UsableFreeBuckets(dev, watermark) <= 0)
                continue;
            for (var pass = 0; pass < 2; pass++)
            {
                var from = pass == 0 ? _cursor[dev.Index] : dev.FirstBucket;
                var it = _engine[BtreeId.Freespace].Iterate(new Bpos(dev.Index, from + 1), new Bpos(dev.Index, ulong.MaxValue));
                while (it.MoveNext())
                {
                    var end = Math.Min(it.Key.Pos.Offset, dev.Nbuckets);
                    var start = Math.Max(Math.Max(it.Key.Pos.Offset - it.Key.Size, from), dev.FirstBucket);
                    for (var bucket = start; bucket < end; bucket++)
                    {
                        var b = new BucketRef(dev.Index, bucket);
                        if (dev.FixedType(bucket) != BucketDataType.Free)
                            continue;
                        var alloc = _engine[BtreeId.Alloc].TryGet(SpacePositions.Bucket(b), out var v) && AllocValue.TryRead(v, out var a, out _)
                            ? a
                            : dev.DefaultAlloc(bucket);
                        if (alloc.DataType != BucketDataType.Free)
                            continue; // the index disagrees with the alloc key: check_alloc_info repairs it
                        if (_engine.IsNodeBucket(bucket))
                            continue; // a reachable node lives there: check_allocations repairs the alloc key
                        lock (_lock)
                        {
                            if (IsOpenLocked(b) || _gens[b.Device][b.Bucket] != alloc.Gen)
                                continue;
                            SetOpenLocked(b, true);
                            _cursor[dev.Index] = b.Bucket + 1 < dev.Nbuckets ? b.Bucket + 1 : dev.FirstBucket;
                            return (b, alloc.Gen);
                        }
                    }
                }
            }
        }
        throw new BasaltException(ErrorCode.DeviceFull, $"{_device.Name}: no space left: no free bucket{(watermark == Watermark.Normal ? " outside the reserve" : "")}");
    }

    // ---- Discards --------------------------------------------------------------------------------

    /// <summary>
    /// Turns need_discard buckets into free ones: those not open whose emptying commit is durable
    /// (with <paramref name="waitForJournal"/> it waits for that flush instead of skipping them).
    /// Returns the buckets freed.
    /// </summary>
    public int RunDiscards(bool waitForJournal = false)
    {
        if (_transactor is null)
            return 0;
        var candidates = new List<BucketRef>();
        var it = _engine[BtreeId.NeedDiscard].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext() && candidates.Count < 4096)
        {
            if (SpacePositions.TryBucketOf(it.Key.Pos, out var b) && Layout.TryGet(b.Device, out var dev) && b.Bucket < dev.Nbuckets)
                candidates.Add(b);
        }
        if (candidates.Count == 0)
            return 0;
        ulong needed = 0;
        lock (_lock)
        {
            foreach (var b in candidates)
                needed = Math.Max(needed, _emptiedAt.GetValueOrDefault(b));
        }
        if (_journal is not null && needed > _journal.DurableSeq && waitForJournal && !_options.DebugFreeBeforeFlush)
            _journal.WaitDurable(needed);
        var durable = _journal?.DurableSeq ?? ulong.MaxValue;
        var ready = new List<BucketRef>();
        lock (_lock)
        {
            foreach (var b in candidates)
            {
                if (!IsOpenLocked(b) && (_emptiedAt.GetValueOrDefault(b) <= durable || _options.DebugFreeBeforeFlush))
                    ready.Add(b);
            }
        }
        var freed = 0;
        for (var i = 0; i < ready.Count; i += Batch)
        {
            var batch = ready.GetRange(i, Math.Min(Batch, ready.Count - i));
            if (DiscardEnabled)
            {
                foreach (var b in batch)
                {
                    var dev = Layout[b.Device];
                    _device.Discard(dev.BucketOffset(b.Bucket), dev.BucketSize);
                    Interlocked.Increment(ref _discards);
                }
            }
            freed += _transactor.Transact(t =>
            {
                var n = 0;
                foreach (var b in batch)
                {
                    var a = SpaceTriggers.ReadAlloc(t, Layout[b.Device], b);
                    if (a.DataType != BucketDataType.NeedDiscard)
                        continue;
                    if ((a.Flags & AllocFlags.NeedIncGen) != 0)
                        a.Gen++;
                    a.Flags = AllocFlags.None;
                    a.DataType = a.DeriveType(BucketDataType.User);
                    a.FragmentationLru = 0;
                    SpaceTriggers.WriteAlloc(t, b, a);
                    n++;
                }
                return n;
            });
        }
        Interlocked.Add(ref _invalidated, freed);
        return freed;
    }

    private void WorkerLoop()
    {
        while (!_stopping)
        {
            _wake.WaitOne(TimeSpan.FromSeconds(1));
            if (_stopping)
                break;
            if (!_workerRound.Wait(0))
                continue; // paused
            try
            {
                KeepNodeSpace();
                RunDiscards();
            }
            catch (BasaltException ex)
            {
                // Emergency read-only, a full journal at unmount, an I/O error: the next round or
                // the next mount retries; the error is kept for diagnostics.
                _workerError = ex;
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            finally
            {
                _workerRound.Release();
            }
        }
    }

    /// <summary>
    /// Keeps the background worker from starting a round until the result is disposed (a round in
    /// progress is waited for): what must see the buckets hold still, like the space checks, runs
    /// inside it.
    /// </summary>
    public IDisposable PauseBackground()
    {
        _workerRound.Wait();
        return new Resume(_workerRound);
    }

    private sealed class Resume(SemaphoreSlim gate) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
                gate.Release();
        }
    }

    /// <summary>The last error the background worker met (null when none).</summary>
    public Exception? WorkerError => _workerError;

    // ---- Btree buckets ---------------------------------------------------------------------------

    /// <summary>
    /// Free node slots below which buckets are claimed for btree nodes: the reserve every commit
    /// must leave, plus four buckets' worth (at least 16 slots), so the claim's own commit and
    /// the ones running beside it never find node space short.
    /// </summary>
    private int NodeLowWater => _engine.NodeSlotsReserve + Math.Max(4 * _engine.NodeSlotsPerBucket, 16);

    int INodeSpaceKeeper.LowWater => NodeLowWater;

    bool INodeSpaceKeeper.Grow(int slotsNeeded) => GrowNodeSpace(slotsNeeded);

    /// <summary>Free node slots above which emptied btree buckets are given back: four more buckets' worth.</summary>
    private int NodeHighWater => NodeLowWater + (4 * _engine.NodeSlotsPerBucket);

    public long NodeBucketsClaimed => Interlocked.Read(ref _nodeClaims);

    public long NodeBucketsReleased => Interlocked.Read(ref _nodeReleases);

    [ThreadStatic]
    private static bool s_claiming;

    /// <summary>Gives emptied btree buckets back while free node slots are above the high watermark (commits claim below the low one).</summary>
    private void KeepNodeSpace()
    {
        if (_transactor is null)
            return;
        if (_engine.NodeSlotsAvailable > NodeHighWater)
            ReleaseEmptyNodeBuckets(NodeHighWater);
    }

    /// <summary>
    /// Claims buckets for btree nodes until <paramref name="slotsNeeded"/> node slots are free.
    /// True when they are; false when no bucket could be claimed (the device is full, or a claim
    /// is already running on this thread: its own commit needs slots the claim cannot give).
    /// </summary>
    public bool GrowNodeSpace(int slotsNeeded)
    {
        if (_transactor is null || s_claiming || !_options.ClaimNodeBuckets)
            return false;
        s_claiming = true;
        try
        {
            while (_engine.NodeSlotsAvailable < slotsNeeded)
            {
                if (!ClaimNodeBucket())
                    return false;
            }
            return true;
        }
        catch (BasaltException ex) when (ex.Code == ErrorCode.BtreeNodeSpaceFull)
        {
            // The claim's own commit found node space short: the caller falls back to waiting for freed slots.
            return false;
        }
        finally
        {
            s_claiming = false;
        }
    }

    /// <summary>
    /// Claims one free bucket for btree nodes: its region joins the superblock's node-region map
    /// first (so the node scan will read it), then its alloc key says btree, full, and once that
    /// commits the engine may hand out its slots. False when no bucket is free.
    /// </summary>
    private bool ClaimNodeBucket()
    {
        BucketRef bucket;
        try
        {
            (bucket, _) = FindFreeBucket(Watermark.Reserve);
        }
        catch (BasaltException ex) when (ex.Code == ErrorCode.DeviceFull)
        {
            return false;
        }
        try
        {
            var dev = Layout[bucket.Device];
            _superblocks.Update(current =>
            {
                var m = current.Members[bucket.Device];
                var bit = m.NodeRegionBits(bucket.Bucket, bucket.Bucket + 1);
                if ((m.NodeRegionMap & bit) == bit)
                    return current;
                var members = current.Members.ToArray();
                members[bucket.Device] = m with { NodeRegionMap = m.NodeRegionMap | bit };
                return current with { Members = members };
            });
            var claimed = _transactor!.Transact(t =>
            {
                var a = SpaceTriggers.ReadAlloc(t, dev, bucket);
                if (a.DataType != BucketDataType.Free)
                    return false;
                a.Flags = 0;
                a.DataType = BucketDataType.Btree;
                a.DirtySectors = dev.BucketSectors;
                a.CachedSectors = 0;
                a.FragmentationLru = 0;
                a.WriteTime = SpaceTriggers.NowNanos();
                SpaceTriggers.WriteAlloc(t, bucket, a);
                return true;
            });
            if (!claimed)
                return false;
            _engine.ClaimNodeBucket(bucket.Bucket);
            Interlocked.Increment(ref _nodeClaims);
            return true;
        }
        finally
        {
            lock (_lock)
                SetOpenLocked(bucket, false);
        }
    }

    /// <summary>
    /// Gives back btree buckets that hold no node (and no free waiting for a flush), keeping
    /// <paramref name="keepFree"/> free node slots: their alloc keys go to need_discard with the
    /// gen to increment, so they are reused only after the journal entry is flushed (rule d).
    /// Returns the buckets given back.
    /// </summary>
    public int ReleaseEmptyNodeBuckets(int keepFree)
    {
        if (_transactor is null)
            return 0;
        var taken = _engine.TakeEmptyNodeBuckets(keepFree, Batch);
        if (taken.Count == 0)
            return 0;
        var dev = Layout.Devices[0];
        try
        {
            _transactor.Transact(t =>
            {
                foreach (var b in taken)
                {
                    var bucket = new BucketRef(dev.Index, b);
                    var a = SpaceTriggers.ReadAlloc(t, dev, bucket);
                    if (a.DataType != BucketDataType.Btree)
                        continue;
                    a.DirtySectors = 0;
                    a.Flags |= AllocFlags.NeedDiscard | AllocFlags.NeedIncGen;
                    a.DataType = a.DeriveType(BucketDataType.Btree);
                    SpaceTriggers.WriteAlloc(t, bucket, a);
                }
            });
        }
        catch
        {
            // Not given back: they stay node space.
            foreach (var b in taken)
                _engine.ClaimNodeBucket(b);
            throw;
        }
        Interlocked.Add(ref _nodeReleases, taken.Count);
        return taken.Count;
    }

    // ---- Copygc and gc_gens ------------------------------------------------------------------

    /// <summary>
    /// Moves the live data out of the emptiest partly-used buckets (the fragmentation LRU, skipping
    /// open buckets) so they empty and can be freed. Returns the sectors moved.
    /// </summary>
    public long RunCopygc(int maxBuckets = 16)
    {
        if (_transactor is null || Owners is not { } owners)
            return 0;
        var victims = new List<BucketRef>();
        var it = _engine[BtreeId.Lru].Iterate(SpacePositions.Lru(LruKind.Fragmentation, 0, default),
            SpacePositions.Lru(LruKind.Fragmentation, (1UL << 48) - 1, new BucketRef(byte.MaxValue, (1UL << 48) - 1)));
        while (it.MoveNext() && victims.Count < maxBuckets)
        {
            if (!SpacePositions.TryReadLru(it.Key.Pos, out _, out _, out var b) || !Layout.TryGet(b.Device, out _))
                continue;
            lock (_lock)
            {
                if (IsOpenLocked(b))
                    continue;
            }
            victims.Add(b);
        }
        long moved = 0;
        foreach (var b in victims)
        {
            try
            {
                moved += owners.Evacuate(b);
            }
            catch (BasaltException e) when (e.Code == ErrorCode.DeviceFull)
            {
                // The reserve is used up: what moved so far empties its buckets once the journal
                // is flushed and the discards run; the caller tries again after that.
                break;
            }
        }
        Interlocked.Add(ref _copygcMoved, moved);
        Close(CopygcWrites);
        return moved;
    }

    /// <summary>
    /// When buckets wait in need_gc_gens, recomputes every bucket's oldest_gen from the pointers
    /// that name it (gc_gens) so they can be reused. True when any bucket came out of need_gc_gens.
    /// </summary>
    public bool RunGcGensIfNeeded()
    {
        if (_transactor is null)
            return false;
        var waiting = false;
        foreach (var dev in Layout.Devices)
        {
            if (Usage(dev.Index)[BucketDataType.NeedGcGens].Buckets > 0)
                waiting = true;
        }
        return waiting && Owners is { } owners && owners.RunGcGens() > 0;
    }

    public void Dispose()
    {
        if (_transactor is not null && ReferenceEquals(_transactor.NodeSpaceKeeper, this))
            _transactor.NodeSpaceKeeper = null;
        _stopping = true;
        _wake.Set();
        if (_worker is { IsAlive: true })
            _worker.Join();
        _wake.Dispose();
        _workerRound.Dispose();
    }
}
