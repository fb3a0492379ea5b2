// Mount and unmount (docs/recovery.md): how a filesystem comes up from what is on the device,
// and how it goes down so that the next mount needs no replay.
//
// Mount:
//  1. The superblock (already read, with fallback between copies) gives the geometry, the roots
//     as of its checkpoint seq, the blacklist and whether the last unmount was clean.
//  2. Unclean (or asked to verify): every journal bucket is read and validated (JournalScan), and
//     the replay plan decides what to replay: the window from the newest flush entry's last_seq
//     to that entry, cut at the first missing or damaged seq; its newest entry's roots; its keys,
//     deduplicated. Later (unflushed) seqs are blacklisted. A clean superblock whose journal holds
//     newer entries is treated as unclean (a finding).
//  3. The engine opens on those roots and replays the keys (interior levels first), reading nodes
//     as it goes; bsets carrying blacklisted seqs are ignored. The allocator is rebuilt exactly.
//  4. Writable mounts: the superblock is marked dirty (with the new blacklist) and flushed before
//     the first journal write (rule e); the journal starts at a new seq with a flush entry; reclaim
//     starts. A journal too full to start in is emptied by a checkpoint first.
//     Read-only mounts stop after step 3: the replayed state lives in memory on an overlay.
// Unmount (clean): the journal is flushed, every dirty node written bottom-up with a flush per
// level, and the superblock written with Clean, every root and the checkpoint seq (rule e:
// clean only after every node and the journal are flushed).
using System.Diagnostics;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Superblocks;
using Basalt.Transactions;

namespace Basalt.Recovery;

/// <summary>What a mount is asked to do.</summary>
public sealed record RecoveryOptions
{
    /// <summary>Replay in memory and write nothing (the caller supplies an overlay device).</summary>
    public bool ReadOnly { get; init; }

    public BtreeEngineOptions Engine { get; init; } = new();

    public JournalOptions Journal { get; init; } = new();

    /// <summary>Read the journal of a clean filesystem too and check the clean section against it.</summary>
    public bool Verify { get; init; }

    /// <summary>
    /// Keys replay cannot apply (a node on their path unreadable) are set aside instead of failing
    /// the mount: fsck retries them after topology repair. Read-only mounts always tolerate them.
    /// </summary>
    public bool TolerateReplayFailures { get; init; }

    /// <summary>Route node writes through a write-once checker (tests).</summary>
    public bool CheckWriteOnce { get; init; }

    /// <summary>For tests: called with the replay overlay once the interior keys are replayed, before the leaf keys are.</summary>
    internal Action<ReplayOverlay>? BeforeLeafReplay { get; init; }
}

/// <summary>What recovery found and did at mount.</summary>
public sealed record RecoveryReport
{
    public required bool WasClean { get; init; }

    /// <summary>The journal was read (an unclean mount, or a verified one).</summary>
    public required bool JournalRead { get; init; }

    /// <summary>The superblock's checkpoint seq at mount: entries at or below it were never read for replay.</summary>
    public ulong CheckpointSeq { get; init; }

    public SeqRange? Replayed { get; init; }

    public int KeysReplayed { get; init; }

    public SeqRange? NewBlacklist { get; init; }

    /// <summary>Seqs a flush had made durable that could not be replayed (damaged or missing entries).</summary>
    public SeqRange? Lost { get; init; }

    public int DroppedUnflushed { get; init; }

    public IReadOnlyList<JournalDamage> Damage { get; init; } = [];

    public IReadOnlyList<ReplayFailure> Unreplayed { get; init; } = [];

    public bool CheckpointedAtMount { get; init; }

    public long JournalBytesRead { get; init; }

    /// <summary>The whole mount, superblock read to journal start.</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>Reading and validating every journal bucket.</summary>
    public TimeSpan ScanElapsed { get; init; }

    /// <summary>Choosing the entries to replay, sorting and deduplicating their keys.</summary>
    public TimeSpan PlanElapsed { get; init; }

    /// <summary>Applying the keys to the btrees (interior levels first).</summary>
    public TimeSpan ReplayElapsed { get; init; }

    public string ToText()
    {
        if (!JournalRead)
            return WasClean ? "clean: nothing to replay" : "nothing to replay";
        var parts = new List<string>
        {
            WasClean ? "clean, journal verified" : "unclean",
            Replayed is { } r ? $"replayed {r.ToText()} ({KeysReplayed} keys)" : "nothing to replay",
        };
        if (DroppedUnflushed > 0)
            parts.Add($"{DroppedUnflushed} unflushed entries dropped");
        if (NewBlacklist is { } b)
            parts.Add($"blacklisted {b.ToText()}");
        if (Lost is { } l)
            parts.Add($"LOST {l.ToText()}");
        if (Damage.Count > 0)
            parts.Add($"{Damage.Count} damaged journal entries");
        if (Unreplayed.Count > 0)
            parts.Add($"{Unreplayed.Count} keys not replayed");
        if (CheckpointedAtMount)
            parts.Add("checkpointed (journal full)");
        return string.Join(", ", parts);
    }
}

public sealed class MountCore : IDisposable, ICheckpointCommitter
{
    private readonly RecoveryOptions _options;
    private bool _checkpointClean;
    private bool _closed;

    private MountCore(RecoveryOptions options, FlushTrackingDevice device, SuperblockStore superblocks, EmergencyState emergency)
    {
        _options = options;
        Device = device;
        Superblocks = superblocks;
        Emergency = emergency;
    }

    /// <summary>The device every write goes through (counts writes for the journal's pre-flush decision).</summary>
    public FlushTrackingDevice Device { get; }

    public SuperblockStore Superblocks { get; }

    public EmergencyState Emergency { get; }

    public BtreeEngine Engine { get; private set; } = null!;

    public JournalWriter Journal { get; private set; } = null!;

    /// <summary>Null on a read-only mount.</summary>
    public JournalReclaim? Reclaim { get; private set; }

    /// <summary>Null on a read-only mount.</summary>
    public Transactor? Transactor { get; private set; }

    public WriteOnceCheckingDevice? WriteOnceChecker { get; private set; }

    public RecoveryReport Report { get; private set; } = null!;

    public bool ReadOnly => _options.ReadOnly;

    /// <summary>Recovers the filesystem whose superblock <paramref name="read"/> found on <paramref name="device"/>.</summary>
    public static MountCore Open(IBlockDevice device, SuperblockReadResult read, RecoveryOptions options)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(options);
        var sb = read.Superblock;
        var clock = Stopwatch.StartNew();
        var emergency = new EmergencyState();
        var tracking = new FlushTrackingDevice(device);
        var core = new MountCore(options, tracking, new SuperblockStore(tracking, read, emergency, options.ReadOnly), emergency);
        try
        {
            // A writable mount first finishes a superblock write a crash cut short, so the next
            // write replaces the same version in every copy (and records it, docs/format.md).
            core.Superblocks.FinishInterruptedWrite(read);
            core.Recover(sb, clock);
            return core;
        }
        catch
        {
            core.Abandon();
            throw;
        }
    }

    /// <summary>
    /// What a mount of the filesystem whose superblock is <paramref name="sb"/> replays from the
    /// journal <paramref name="scan"/> found: null when the superblock is clean and the journal holds
    /// nothing newer than its checkpoint. The scan's damage and the plan's findings (and a clean
    /// superblock contradicted by newer entries) are added to <paramref name="damage"/>.
    /// </summary>
    public static JournalReplayPlan? PlanReplay(Superblock sb, JournalScanResult scan, List<JournalDamage> damage)
    {
        ArgumentNullException.ThrowIfNull(sb);
        ArgumentNullException.ThrowIfNull(scan);
        ArgumentNullException.ThrowIfNull(damage);
        var checkpoint = sb.CleanInfo.JournalSeq;
        var plan = JournalReplayPlan.Build(scan, checkpoint, sb.JournalBlacklist);
        damage.AddRange(scan.Damage);
        damage.AddRange(plan.Findings);
        if (!sb.IsClean)
            return plan;
        var newer = scan.Entries.Keys.Where(s => s > checkpoint).ToList();
        if (newer.Count == 0)
            return null;
        damage.Add(new JournalDamage(FsckErrorId.JournalCleanMismatch, newer.Max(), null,
            $"the superblock is clean at journal seq {checkpoint} but the journal holds {newer.Count} newer entries: recovering as after a crash"));
        return plan;
    }

    /// <summary>The btree geometry a superblock describes.</summary>
    public static BtreeGeometry GeometryOf(Superblock sb)
    {
        ArgumentNullException.ThrowIfNull(sb);
        return new BtreeGeometry
        {
            NodeSize = sb.NodeSize,
            BlockSize = sb.BlockSize,
            NodeAreaOffset = sb.NodeAreaOffset,
            NodeAreaLength = sb.NodeAreaLength,
            BucketSize = sb.BucketSize,
            FirstBucket = sb.Member.FirstBucket,
            Buckets = sb.Member.Nbuckets,
            ReservedBuckets = [.. sb.JournalBuckets.Select(r => (r.Start, r.End))],
            NodeRegions = sb.NodeRegionBytes(),
            NodeMagic = sb.NodeMagic,
            ChecksumType = sb.MetadataChecksumType,
            Version = sb.Version,
            VersionMin = sb.VersionMin,
            Device = sb.DeviceIndex,
        };
    }

    /// <summary>
    /// Makes the buckets the allocation layer claimed for btree nodes (alloc key: btree) node
    /// space before replay may allocate in them. Before any replay only the journal's claims are
    /// known; once the interior keys are replayed (<paramref name="overlay"/>), the alloc btree as
    /// replay will leave it. A bucket whose alloc key says btree but that backpointers show
    /// holding data is a damaged alloc key (check_allocations repairs it), never node space:
    /// nodes would overwrite the data. An alloc btree that cannot be read leaves the claims out:
    /// check_allocations recounts.
    /// </summary>
    private void ClaimNodeBuckets(Superblock sb, JournalReplayPlan? plan, ReplayOverlay? overlay)
    {
        var device = sb.DeviceIndex;
        var claims = new List<ulong>();
        if (overlay is null)
        {
            foreach (var key in plan?.Keys ?? [])
            {
                var u = key.Update;
                if (u.Btree == BtreeId.Alloc && u.Level == 0 && u.Key.Pos.Inode == device && IsBtreeBucket(u.Key.Type, u.Value.Span))
                    claims.Add(u.Key.Pos.Offset);
            }
            // Only buckets no backpointer in the journal names: the tree's are read once it can be.
            var journalData = (plan?.Keys ?? []).Where(k => k.Update is { Btree: BtreeId.Backpointers, Level: 0, IsDeletion: false })
                .Select(k => Backpointers.BackpointerValue.Decode(k.Update.Key.Pos).Sector / (ulong)(sb.BucketSize / FormatLimits.SectorSize))
                .ToHashSet();
            claims.RemoveAll(journalData.Contains);
        }
        else
        {
            try
            {
                foreach (var (key, value) in overlay.Range(BtreeId.Alloc, new Bpos(device, 0), new Bpos(device, ulong.MaxValue)))
                {
                    if (IsBtreeBucket(key.Type, value) && !HoldsBackpointers(overlay, device, key.Pos.Offset, sb.BucketSize / FormatLimits.SectorSize))
                        claims.Add(key.Pos.Offset);
                }
            }
            catch (BasaltException ex) when (ex.Class is ErrorClass.Corruption or ErrorClass.Io)
            {
                Engine.MarkNodeSpaceUnknown();
            }
        }
        foreach (var bucket in claims)
            Engine.ClaimNodeBucket(bucket);
    }

    /// <summary>True when a backpointer names data in the bucket (or the backpointers btree cannot be read there).</summary>
    private bool HoldsBackpointers(ReplayOverlay overlay, byte device, ulong bucket, int bucketSectors)
    {
        try
        {
            var start = Backpointers.BackpointerValue.BucketStart(new Alloc.BucketRef(device, bucket), bucketSectors);
            var end = Backpointers.BackpointerValue.BucketStart(new Alloc.BucketRef(device, bucket + 1), bucketSectors);
            return overlay.Range(BtreeId.Backpointers, start, end).Any(k => k.Key.Pos < end);
        }
        catch (BasaltException ex) when (ex.Class is ErrorClass.Corruption or ErrorClass.Io)
        {
            Engine.MarkNodeSpaceUnknown();
            return true;
        }
    }

    private static bool IsBtreeBucket(KeyType type, ReadOnlySpan<byte> value) =>
        type == KeyType.Alloc && Alloc.AllocValue.TryRead(value, out var a, out _) && a.DataType == Alloc.BucketDataType.Btree;

    private void Recover(Superblock sb, Stopwatch clock)
    {
        // The transaction layer's key types register their behaviour; every type must have an entry.
        CountedKeys.Register();
        KeyTypeTable.CheckComplete();
        var ring = JournalRing.Of(sb);
        var checkpoint = sb.CleanInfo.JournalSeq;
        var context = new JournalReadContext(JournalFormat.MagicFor(sb.Uuid), sb.BlockSize, sb.NodeSize);
        JournalScanResult? scan = null;
        JournalReplayPlan? plan = null;
        var damage = new List<JournalDamage>();
        var phase = Stopwatch.StartNew();
        TimeSpan scanTime = default, planTime = default, replayTime = default;
        if (!sb.IsClean || _options.Verify)
        {
            scan = JournalScan.Scan(Device, ring, context);
            scanTime = phase.Elapsed;
            plan = PlanReplay(sb, scan, damage);
            planTime = phase.Elapsed - scanTime;
        }

        // Where the journal continues: a new seq after everything seen, in the bucket after the newest entry.
        var nextSeq = plan?.NextSeq ?? Math.Max(checkpoint, scan?.NewestSeqSeen ?? 0) + 1;
        var bucketNewest = new ulong[ring.Count];
        var startIndex = 0;
        if (scan is not null)
        {
            var newestBucket = -1;
            ulong newestSeq = 0;
            for (var i = 0; i < ring.Count; i++)
            {
                bucketNewest[i] = scan.BucketNewestSeq[i] > checkpoint ? scan.BucketNewestSeq[i] : 0;
                if (scan.BucketNewestSeq[i] > newestSeq)
                {
                    newestSeq = scan.BucketNewestSeq[i];
                    newestBucket = i;
                }
            }
            startIndex = newestBucket < 0 ? 0 : ring.Next(newestBucket);
        }
        var durable = plan?.Range?.Last ?? checkpoint;
        var roots = plan?.Roots ?? sb.Roots;
        var start = new JournalStart
        {
            NextSeq = nextSeq,
            RingIndex = startIndex,
            BucketNewestSeq = bucketNewest,
            DurableSeq = durable,
            LastSeq = plan?.Range?.First ?? nextSeq,
            CheckpointSeq = checkpoint,
            Roots = roots,
            Blacklist = plan?.Blacklist ?? sb.JournalBlacklist,
            NewBlacklist = plan?.NewBlacklist,
        };
        Journal = new JournalWriter(Device, ring, start, _options.Journal, Emergency, JournalFormat.MagicFor(sb.Uuid),
            sb.MetadataChecksumType, sb.BlockSize);

        IBlockDevice engineDevice = Device;
        var engineOptions = _options.Engine;
        if (_options.CheckWriteOnce)
        {
            WriteOnceChecker = new WriteOnceCheckingDevice(Device);
            engineDevice = WriteOnceChecker;
            engineOptions = engineOptions with
            {
                NodeSpaceObserver = engineOptions.NodeSpaceObserver is { } other ? new BothObservers(WriteOnceChecker, other) : WriteOnceChecker,
            };
        }
        var replay = plan is { Keys.Count: > 0 };
        var interior = replay ? plan!.Keys.Where(k => k.Update.Level > 0).Select(k => k.Update).ToList() : null;
        Engine = BtreeEngine.Open(engineDevice, GeometryOf(sb), roots, engineOptions, Journal, Emergency, interior);
        // Node space before anything allocates: the journal's claims now; the tree's once the
        // interior keys are replayed (before that its structure is the disk's, which may name
        // nodes that were freed, and their buckets given back, since).
        ClaimNodeBuckets(sb, plan, replay ? null : new ReplayOverlay(Engine, null));
        if (replay)
        {
            var replayStart = phase.Elapsed;
            Engine.Replay(plan!.Keys, tolerant: _options.TolerateReplayFailures || _options.ReadOnly,
                beforeLeaves: () =>
                {
                    var overlay = new ReplayOverlay(Engine, plan);
                    ClaimNodeBuckets(sb, plan, overlay);
                    _options.BeforeLeafReplay?.Invoke(overlay);
                });
            Engine.FinishReplay();
            replayTime = phase.Elapsed - replayStart;
        }

        var checkpointed = false;
        if (!_options.ReadOnly)
        {
            var now = DateTimeOffset.UtcNow;
            Superblocks.Update(s => s with
            {
                Flags = s.Flags & ~SuperblockFlags.Clean,
                CleanInfo = s.CleanInfo with { LastMount = now },
                JournalBlacklist = JournalReplayPlan.Merge(plan?.NewBlacklist is { } b ? [.. s.JournalBlacklist, b] : s.JournalBlacklist),
            });
            Transactor = new Transactor(Engine, Journal, Emergency);
            Reclaim = new JournalReclaim(Journal, Engine, () => Checkpoint(clean: false), _options.Journal, Emergency);
            Engine.SetRestartHandler(Reclaim);
            try
            {
                Journal.Start();
            }
            catch (BasaltException ex) when (ex.Code == ErrorCode.JournalFull)
            {
                // Every bucket still holds needed entries: a checkpoint needs no journal space and frees them all.
                Checkpoint(clean: false);
                checkpointed = true;
                Journal.Start();
            }
            Reclaim.Start();
        }
        else
        {
            Engine.SetWritePath(new ReadOnlyWritePath(Device.Name));
        }
        Report = new RecoveryReport
        {
            WasClean = sb.IsClean,
            JournalRead = scan is not null,
            CheckpointSeq = checkpoint,
            Replayed = plan?.Range,
            KeysReplayed = plan?.KeyCount ?? 0,
            NewBlacklist = plan?.NewBlacklist,
            Lost = plan?.LostRange,
            DroppedUnflushed = plan?.DroppedUnflushed ?? 0,
            Damage = damage,
            Unreplayed = Engine.Unreplayed,
            CheckpointedAtMount = checkpointed,
            JournalBytesRead = scan?.BytesRead ?? 0,
            ScanElapsed = scanTime,
            PlanElapsed = planTime,
            ReplayElapsed = replayTime,
            Elapsed = clock.Elapsed,
        };
    }

    /// <summary>
    /// Writes every dirty node and commits every root and the journal seq they hold through the
    /// superblock; with <paramref name="clean"/> the superblock is also marked clean.
    /// </summary>
    public void Checkpoint(bool clean)
    {
        if (_options.ReadOnly)
            throw new BasaltException(ErrorCode.ReadOnlyDevice, "a read-only mount cannot checkpoint");
        _checkpointClean = clean;
        Engine.Checkpoint(this);
    }

    void ICheckpointCommitter.CommitCheckpoint(IReadOnlyList<BtreeRoot> roots, ulong journalSeq)
    {
        var clean = _checkpointClean;
        var now = DateTimeOffset.UtcNow;
        journalSeq = Journal.BeginCheckpoint(journalSeq, roots);
        Superblocks.Update(s => s with
        {
            Roots = [.. roots.OrderBy(r => r.Btree)],
            CleanInfo = s.CleanInfo with { JournalSeq = journalSeq, LastUnmount = clean ? now : s.CleanInfo.LastUnmount },
            Flags = clean ? s.Flags | SuperblockFlags.Clean : s.Flags & ~SuperblockFlags.Clean,
            // Seqs at or below a checkpoint are never replayed again: their blacklist entries are moot.
            JournalBlacklist = [.. s.JournalBlacklist.Where(r => r.Last > journalSeq)],
        });
        Journal.Checkpointed(journalSeq, roots);
    }

    /// <summary>
    /// Unmounts. Clean (<paramref name="clean"/>, writable, healthy): the journal is flushed, every
    /// node written and the superblock marked clean. Otherwise nothing more is written: what is on
    /// disk is what a crash at this moment would leave, and the next mount replays the journal.
    /// </summary>
    public void Close(bool clean)
    {
        if (_closed)
            return;
        _closed = true;
        try
        {
            if (clean && !_options.ReadOnly && !Emergency.IsSet)
            {
                Reclaim?.Stop();
                Journal.WaitDurable(Journal.CommittedSeq);
                Checkpoint(clean: true);
                Journal.Stop();
            }
        }
        finally
        {
            Abandon();
        }
    }

    /// <summary>Stops every thread without writing anything (a crash; also the end of every close).</summary>
    public void Abandon()
    {
        Reclaim?.Stop();
        Journal?.Abandon();
        Engine?.Dispose();
    }

    public void Dispose() => Close(clean: true);

    /// <summary>The write path of a read-only mount: every update is refused.</summary>
    private sealed class ReadOnlyWritePath(string device) : IBtreeWritePath
    {
        public void Insert(BtreeId btree, in Bkey key, ReadOnlySpan<byte> value) => Refuse<bool>();

        public bool Delete(BtreeId btree, Bpos pos) => Refuse<bool>();

        public long DeleteRange(BtreeId btree, Bpos start, Bpos end) => Refuse<long>();

        private T Refuse<T>() =>
            throw new BasaltException(ErrorCode.ReadOnlyDevice, $"{device}: the filesystem is mounted read-only");
    }

    /// <summary>Tells two observers about every slot event (the write-once checker and a test's log).</summary>
    private sealed class BothObservers(INodeSpaceObserver first, INodeSpaceObserver second) : INodeSpaceObserver
    {
        public void NodeAllocated(long offset, int length)
        {
            first.NodeAllocated(offset, length);
            second.NodeAllocated(offset, length);
        }

        public void NodeWritten(long offset, int writtenBytes)
        {
            first.NodeWritten(offset, writtenBytes);
            second.NodeWritten(offset, writtenBytes);
        }

        public void NodeFreed(long offset)
        {
            first.NodeFreed(offset);
            second.NodeFreed(offset);
        }
    }
}
