// A seeded transaction workload recorded for crash testing (DESIGN §5).
//
// A tiny filesystem (1 KiB nodes, 512 B blocks, a journal of 8 buckets of 4 KiB that wraps many
// times) runs on WriteOnceChecker -> RecordingBlockDevice -> MemoryBlockDevice. The base image is
// taken after format and the first mount; from then on the log holds every journal, node and
// superblock write and every flush completion.
//
// Transaction k (1..N) makes a few random inserts (cookies and counted keys), overwrites, deletes
// and a range delete in the test btree, and sets the counter key to k; the model after
// transaction k is snapshot k, so a recovered state reveals which transaction it holds by its
// counter key alone. Some transactions commit with a flush. Between transactions the journal
// writer and write-back are stepped at random (deterministic step mode): no-flush and flush entry
// writes, write-back rounds of some or all dirty nodes, checkpoints and clean remounts, so the
// log interleaves every kind of write. Growth, shrink and regrowth phases make splits, merges,
// root splits and collapses happen.
//
// Oracle bounds per crash point: the last transaction whose flush had returned (lower) and the
// last transaction committed (upper).
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Journal;
using Basalt.TestKit;
using Basalt.Transactions;

namespace Basalt.Tests.Crash;

internal sealed record JournalCrashWorkloadOptions
{
    public int Seed { get; init; }

    public int Transactions { get; init; } = 60;

    /// <summary>Operations per transaction: 1..this.</summary>
    public int MaxOperations { get; init; } = 12;

    public int KeySpace { get; init; } = 500;

    /// <summary>Probability that a transaction commits with a flush.</summary>
    public double FlushProbability { get; init; } = 0.25;

    public int JournalBuckets { get; init; } = 8;

    public int JournalBucketSize { get; init; } = 4096;

    /// <summary>Percent of the steps between transactions that write a flush entry (at most 10; the rest of them write no-flush entries).</summary>
    public int FlushStepPercent { get; init; } = 10;

    /// <summary>Percent of the steps that run a write-back round (at most 20; the rest of them write no-flush entries).</summary>
    public int WriteBackStepPercent { get; init; } = 20;

    /// <summary>
    /// Steps write no-flush entries only, and a full write-back round once half the journal
    /// buckets are in use: the ring wraps soon after pins are released, between flush entries.
    /// </summary>
    public bool WriteBackWhenJournalHalfFull { get; init; }

    public int Slots { get; init; } = 160;

    /// <summary>
    /// Node-bucket mode: the node area is the smallest format allows and the device has room to
    /// claim btree buckets beyond it; after some transactions the emptied ones are given back and
    /// discarded, so crash states fall between claims, releases and reuses.
    /// </summary>
    public bool NodeBuckets { get; init; }

    /// <summary>Engine debug faults (ordering bugs the suite must catch).</summary>
    public BtreeDebugFaults? EngineFaults { get; init; }

    /// <summary>Allocation debug faults (data mode).</summary>
    public Basalt.Alloc.SpaceOptions? SpaceFaults { get; init; }

    /// <summary>Journal debug faults.</summary>
    public JournalDebugFaults? JournalFaults { get; init; }

    /// <summary>
    /// Run the journal writer and reclaim as their own threads (not stepped) and commit from
    /// <see cref="Threads"/> threads at once: transaction k is the one that read counter k - 1.
    /// </summary>
    public bool Threaded { get; init; }

    /// <summary>Committing threads of a threaded workload.</summary>
    public int Threads { get; init; } = 3;

    /// <summary>
    /// Data mode (stepped workloads only): with this probability a transaction is a data write or
    /// punch of one of <see cref="DataInodes"/> inodes, its test-btree operations and counter
    /// committed in the same transaction as the extents; steps also run the discard worker.
    /// </summary>
    public double DataProbability { get; init; }

    public int DataInodes { get; init; } = 3;

    /// <summary>Data writes and punches land in [0, this) bytes of an inode.</summary>
    public int DataSpan { get; init; } = 48 * 1024;
}

/// <summary>What the durability oracle knows after a workload step: writes logged so far and the durable seq.</summary>
internal readonly record struct DurableMark(int LogCount, ulong DurableSeq);

internal sealed class JournalCrashRecording
{
    public required JournalCrashWorkloadOptions Options { get; init; }
    public required byte[] BaseImage { get; init; }
    public required WriteLog Log { get; init; }

    /// <summary>Snapshot k: the test btree's keys after transaction k (counter and summary keys included).</summary>
    public required IReadOnlyList<SortedDictionary<Bpos, (KeyType Type, byte[] Value)>> Snapshots { get; init; }

    /// <summary>Data mode: each inode's bytes after transaction k (null otherwise).</summary>
    public IReadOnlyList<Dictionary<ulong, byte[]>>? DataSnapshots { get; init; }

    /// <summary>Transaction k's journal seq (index 0: nothing).</summary>
    public required IReadOnlyList<ulong> Seqs { get; init; }

    /// <summary>Transaction k committed when the log held this many writes (threaded: began; none of its writes come earlier).</summary>
    public required IReadOnlyList<int> CommittedAt { get; init; }

    public required IReadOnlyList<DurableMark> Durable { get; init; }

    /// <summary>Data mode: buckets the workload emptied and freed again (gen raised), and sectors copygc moved.</summary>
    public long BucketsFreed { get; init; }

    public long NodeBucketsClaimed { get; init; }

    public long NodeBucketsReleased { get; init; }

    /// <summary>The engine's and journal's counters at the end (null for a recording loaded from a file).</summary>
    public BtreeStats? Stats { get; init; }
    public JournalStats? JournalStats { get; init; }
    public int MaxRootLevel { get; init; }

    /// <summary>The last transaction a completed flush had made durable before crash point <paramref name="crashPoint"/>.</summary>
    public int LowerBound(int crashPoint)
    {
        ulong durable = 0;
        foreach (var m in Durable)
        {
            if (m.LogCount < crashPoint && m.DurableSeq > durable)
                durable = m.DurableSeq;
        }
        var k = 0;
        for (var i = 1; i < Seqs.Count; i++)
        {
            if (Seqs[i] <= durable)
                k = i;
        }
        return k;
    }

    /// <summary>The last transaction committed before crash point <paramref name="crashPoint"/>.</summary>
    public int UpperBound(int crashPoint)
    {
        var k = 0;
        for (var i = 1; i < CommittedAt.Count; i++)
        {
            if (CommittedAt[i] <= crashPoint)
                k = i;
        }
        return k;
    }

    public string ToText() =>
        $"{Snapshots.Count - 1} transactions, {Log.Count} writes, {Log.Flushes.Count} flushes, tree depth up to {MaxRootLevel + 1}, " +
        $"final keys {Snapshots[^1].Count}, btree buckets claimed {NodeBucketsClaimed} and given back {NodeBucketsReleased}" +
        (Stats is null || JournalStats is null ? " (loaded from a file)" : $"; {Stats.ToText()}; journal {JournalStats.ToText()}");
}

internal static class JournalCrashWorkload
{
    /// <summary>The counter key: its value is the number of the transaction the btree holds.</summary>
    public static readonly Bpos CounterPos = new(0xC0_0000, 0);

    /// <summary>The data inodes' numbers start here: no inode and no name, so fsck's file passes take their extents for the data layer's.</summary>
    public const ulong FirstDataInode = 1001;

    public static Bpos Pos(int i) => new((ulong)(i / 100), (ulong)(i % 100));

    public static byte[] CounterValue(int k)
    {
        var value = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(value, k);
        return value;
    }

    public static int ReadCounter(ReadOnlySpan<byte> value) =>
        value.Length == 8 ? checked((int)BinaryPrimitives.ReadInt64LittleEndian(value)) : -1;

    public static JournalCrashRecording Record(JournalCrashWorkloadOptions options)
    {
        RecordingBlockDevice? recorder = null;
        using var fx = new BtreeFixture(nodeSize: 1024, blockSize: 512, slots: options.NodeBuckets ? 0 : options.Slots, seed: options.Seed,
            decorate: d => recorder = new RecordingBlockDevice(d) { Recording = false }, dataBuckets: options.NodeBuckets ? 256 : 0,
            journalBuckets: options.JournalBuckets, bucketSize: options.JournalBucketSize,
            journal: new JournalOptions
            {
                Manual = !options.Threaded,
                FlushDelay = TimeSpan.FromMilliseconds(2),
                ReclaimInterval = TimeSpan.FromMilliseconds(1),
                WriteBackAge = TimeSpan.FromMilliseconds(5),
                DebugFaults = options.JournalFaults ?? JournalDebugFaults.None,
            });
        if (options.EngineFaults is { } faults)
        {
            fx.DebugFaults = faults;
            fx.CleanRemount();
        }
        if (options.SpaceFaults is { } space)
        {
            fx.SpaceOptions = space;
            fx.CleanRemount();
        }
        var baseImage = fx.Memory.Contents.ToArray();
        var log = recorder!.Log;
        recorder.Recording = true;

        var snapshots = new List<SortedDictionary<Bpos, (KeyType Type, byte[] Value)>> { new() };
        var dataSnapshots = options.DataProbability > 0 ? new List<Dictionary<ulong, byte[]>> { new() } : null;
        var seqs = new List<ulong> { 0 };
        var committedAt = new List<int> { 0 };
        var durable = new List<DurableMark>();
        var maxLevel = 0;
        // The durable seq is read before the log's length: whatever it claims was already true
        // when the log held that many writes (a flush completing in between only makes it lag).
        void Mark()
        {
            var seq = fx.Journal.DurableSeq;
            var count = log.Count;
            lock (durable)
                durable.Add(new DurableMark(count, seq));
        }

        if (options.Threaded)
        {
            RunThreads(fx, options, log, snapshots, seqs, committedAt, Mark);
            maxLevel = fx.Test.Root?.Level ?? 0;
        }
        else
        {
            var rng = new Random(options.Seed);
            var model = new SortedDictionary<Bpos, (KeyType Type, byte[] Value)>();
            var files = new Dictionary<ulong, byte[]>();
            for (var k = 1; k <= options.Transactions; k++)
            {
                var flush = rng.NextDouble() < options.FlushProbability;
                var plan = PlanTransaction(rng, options, Phase(options, k));
                var commit = flush ? CommitOptions.Durable : CommitOptions.Default;
                CommitResult result;
                if (dataSnapshots is not null && rng.NextDouble() < options.DataProbability)
                {
                    // With the data and its triggers, the tiny journal's entry takes only a few
                    // test btree operations: no range deletes, at most two.
                    var ops = plan.Where(op => op.Kind != 3).Take(2).ToList();
                    plan = ops;
                    result = DataTransaction(fx, rng, options, files, t =>
                    {
                        // The data, the plan and the counter must commit as one transaction: a
                        // second transaction of the same operation would find the counter set.
                        if (t.TryGet(BtreeId.Test, CounterPos, out var counter) && ReadCounter(counter) == k)
                            throw new InvalidOperationException($"data transaction {k} spans more than one commit");
                        Apply(t, ops, k);
                    }, commit);
                }
                else
                {
                    while (true)
                    {
                        try
                        {
                            fx.Fs.Transactor.Transact(t =>
                            {
                                Apply(t, plan, k);
                                return true;
                            }, commit, out result);
                            break;
                        }
                        catch (BasaltException e) when (e.Code == ErrorCode.TransactionTooLarge && plan.Count > 1)
                        {
                            // A plan whose range deletes reach more keys than the tiny journal's entry
                            // holds (nothing was committed): the same transaction with fewer operations.
                            plan = [.. plan.Where(op => op.Kind != 3).Take(plan.Count / 2)];
                        }
                    }
                }
                ApplyToModel(model, plan, k);
                snapshots.Add(new SortedDictionary<Bpos, (KeyType Type, byte[] Value)>(model));
                dataSnapshots?.Add(files.ToDictionary(f => f.Key, f => f.Value.ToArray()));
                seqs.Add(result.Seq);
                committedAt.Add(log.Count);
                Mark();
                maxLevel = Math.Max(maxLevel, fx.Test.Root?.Level ?? 0);
                if (dataSnapshots is not null && rng.Next(4) == 0)
                    fx.Fs.Space.RunDiscards();
                if (options.NodeBuckets && rng.Next(6) == 0)
                {
                    fx.Fs.Space.ReleaseEmptyNodeBuckets(keepFree: 0);
                    fx.Fs.Space.RunDiscards();
                }
                Step(fx, rng, options);
                Mark();
            }
        }
        fx.Sync();
        Mark();
        var recording = new JournalCrashRecording
        {
            Options = options,
            BaseImage = baseImage,
            Log = log,
            Snapshots = snapshots,
            DataSnapshots = dataSnapshots,
            BucketsFreed = fx.Fs.Space.Invalidated,
            NodeBucketsClaimed = fx.Fs.Space.NodeBucketsClaimed,
            NodeBucketsReleased = fx.Fs.Space.NodeBucketsReleased,
            Seqs = seqs,
            CommittedAt = committedAt,
            Durable = durable,
            Stats = fx.Engine.Stats,
            JournalStats = fx.Journal.Stats,
            MaxRootLevel = maxLevel,
        };
        return recording;
    }

    /// <summary>
    /// One data write or punch committed as exactly one transaction together with <paramref name="also"/>
    /// (the test btree operations and the counter), applied to <paramref name="files"/>.
    /// </summary>
    private static CommitResult DataTransaction(BtreeFixture fx, Random rng, JournalCrashWorkloadOptions options, Dictionary<ulong, byte[]> files,
        Action<Transaction> also, CommitOptions commit)
    {
        var inode = FirstDataInode + (ulong)rng.Next(options.DataInodes);
        var file = files.GetValueOrDefault(inode) ?? [];
        var offset = rng.Next(options.DataSpan);
        CommitResult result;
        if (rng.Next(4) == 0)
        {
            // A punch of up to four whole sectors, cleared in one transaction of its own (a
            // punch through ExtentStore may take several when the journal is this small).
            var start = offset / 512 * 512;
            var length = (1 + rng.Next(4)) * 512;
            fx.Fs.Transactor.Transact(t =>
            {
                Basalt.Data.ExtentEdits.Clear(t, inode, (ulong)start / 512, (ulong)(start + length) / 512, int.MaxValue);
                also(t);
                return true;
            }, commit, out result);
            if (start < file.Length)
                Array.Clear(file, start, Math.Min(length, file.Length - start));
        }
        else
        {
            // Less than one bucket: at most two runs, which one transaction of the tiny journal takes.
            var length = 1 + rng.Next(fx.FormatOptions.BucketSize!.Value - 512);
            var data = new byte[length];
            rng.NextBytes(data);
            result = fx.Fs.Data.Write(inode, offset, data, commit, (t, _) => also(t));
            if (offset + length > file.Length)
                Array.Resize(ref file, offset + length);
            data.CopyTo(file, offset);
        }
        files[inode] = file;
        return result;
    }

    private static int Phase(JournalCrashWorkloadOptions options, int k) =>
        k <= options.Transactions * 45 / 100 ? 0 : k <= options.Transactions * 75 / 100 ? 1 : 2;

    /// <summary>
    /// The threaded form: each thread plans its transactions from its own generator, and each
    /// transaction reads the counter and sets it one higher, so k orders the commits (the engine
    /// serialises writers) whatever the threads' interleaving. The upper bound of a transaction
    /// is the log's length when it began: none of its writes can come before that.
    /// </summary>
    private static void RunThreads(BtreeFixture fx, JournalCrashWorkloadOptions options, WriteLog log,
        List<SortedDictionary<Bpos, (KeyType Type, byte[] Value)>> snapshots, List<ulong> seqs, List<int> committedAt, Action mark)
    {
        var commits = new List<(int K, List<Op> Plan, ulong Seq, int StartedAt)>();
        var perThread = Math.Max(1, options.Transactions / options.Threads);
        var failures = new List<Exception>();
        var threads = Enumerable.Range(0, options.Threads).Select(thread => new Thread(() =>
        {
            try
            {
                var rng = new Random(HashCode.Combine(options.Seed, thread));
                for (var i = 1; i <= perThread; i++)
                {
                    var plan = PlanTransaction(rng, options, Phase(options, i * options.Threads));
                    var flush = rng.NextDouble() < options.FlushProbability;
                    var startedAt = log.Count;
                    var k = fx.Fs.Transactor.Transact(t =>
                    {
                        var n = t.TryGet(BtreeId.Test, CounterPos, out var value) ? ReadCounter(value) + 1 : 1;
                        Apply(t, plan, n);
                        return n;
                    }, flush ? CommitOptions.Durable : CommitOptions.Default, out var result);
                    lock (commits)
                        commits.Add((k, plan, result.Seq, startedAt));
                    mark();
                }
            }
            catch (Exception ex)
            {
                lock (failures)
                    failures.Add(ex);
            }
        }) { Name = $"crash workload committer {thread}" }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (failures.Count > 0)
            throw new AggregateException("a committing thread failed", failures);

        commits.Sort((a, b) => a.K.CompareTo(b.K));
        var model = new SortedDictionary<Bpos, (KeyType Type, byte[] Value)>();
        for (var i = 0; i < commits.Count; i++)
        {
            var (k, plan, seq, startedAt) = commits[i];
            if (k != i + 1)
                throw new InvalidOperationException($"transaction numbers are not 1..{commits.Count}: {k} at {i + 1}");
            if (i > 0 && seq < commits[i - 1].Seq)
                throw new InvalidOperationException($"transaction {k} has seq {seq}, before {commits[i - 1].Seq}");
            ApplyToModel(model, plan, k);
            snapshots.Add(new SortedDictionary<Bpos, (KeyType Type, byte[] Value)>(model));
            seqs.Add(seq);
            committedAt.Add(startedAt);
        }
    }

    /// <summary>A random step of the journal writer or write-back between transactions.</summary>
    private static void Step(BtreeFixture fx, Random rng, JournalCrashWorkloadOptions options)
    {
        if (options.WriteBackWhenJournalHalfFull)
        {
            if (fx.Journal.Stats.BucketsInUse >= options.JournalBuckets / 2)
                fx.Engine.WriteBack(null);
            else
                fx.Journal.Step(flush: false);
            return;
        }
        switch (rng.Next(100))
        {
            case < 25:
                fx.Journal.Step(flush: false);
                break;
            case < 35:
                // A flush entry (FlushStepPercent of all steps; the rest of this band writes no-flush ones).
                fx.Journal.Step(flush: options.FlushStepPercent >= 10 || rng.Next(10) < options.FlushStepPercent);
                break;
            case < 55 when options.WriteBackStepPercent < 20 && rng.Next(20) >= options.WriteBackStepPercent:
                fx.Journal.Step(flush: false);
                break;
            case < 50:
                fx.Engine.WriteBack(fx.Journal.OldestPin == 0 ? null : fx.Journal.OldestPin + (ulong)rng.Next(4), maxNodes: 1 + rng.Next(6));
                break;
            case < 55:
                fx.Engine.WriteBack(null);
                break;
            case < 57:
                fx.Checkpoint();
                break;
            case < 58:
                fx.CleanRemount();
                break;
        }
    }

    private readonly record struct Op(int Kind, int Key, int Key2, int ValueSeed);

    private static List<Op> PlanTransaction(Random rng, JournalCrashWorkloadOptions options, int phase)
    {
        var (insert, overwrite, delete) = phase switch
        {
            0 => (70, 15, 10),
            1 => (15, 15, 60),
            _ => (60, 20, 15),
        };
        var ops = new List<Op>();
        var n = 1 + rng.Next(options.MaxOperations);
        for (var i = 0; i < n; i++)
        {
            var r = rng.Next(100);
            var kind = r < insert ? 0 : r < insert + overwrite ? 1 : r < insert + overwrite + delete ? 2 : 3;
            var key = rng.Next(options.KeySpace);
            ops.Add(new Op(kind, key, Math.Min(options.KeySpace - 1, key + rng.Next(phase == 1 ? 80 : 15)), rng.Next()));
        }
        return ops;
    }

    private static byte[] ValueFor(Op op)
    {
        if (op.ValueSeed % 3 == 0)
            return CountedKeys.Value((ulong)op.ValueSeed);
        var value = new byte[op.ValueSeed % 90];
        new Random(op.ValueSeed).NextBytes(value);
        return value;
    }

    private static KeyType TypeFor(Op op) => op.ValueSeed % 3 == 0 ? KeyType.Counted : KeyType.Cookie;

    private static void Apply(Transaction t, List<Op> plan, int k)
    {
        foreach (var op in plan)
        {
            switch (op.Kind)
            {
                case 0 or 1:
                    t.Set(BtreeId.Test, Pos(op.Key), ValueFor(op), TypeFor(op));
                    break;
                case 2:
                    t.Delete(BtreeId.Test, Pos(op.Key));
                    break;
                default:
                    foreach (var (key, _) in t.Range(BtreeId.Test, Pos(op.Key), Pos(op.Key2)))
                        t.Delete(BtreeId.Test, key.Pos);
                    break;
            }
        }
        t.Set(BtreeId.Test, CounterPos, CounterValue(k));
    }

    /// <summary>The model's view of a transaction: the same plan, the summary key kept as the trigger keeps it.</summary>
    private static void ApplyToModel(SortedDictionary<Bpos, (KeyType Type, byte[] Value)> model, List<Op> plan, int k)
    {
        var before = new Dictionary<Bpos, (KeyType Type, byte[] Value)?>();
        void Touch(Bpos p)
        {
            if (!before.ContainsKey(p))
                before[p] = model.TryGetValue(p, out var v) ? v : null;
        }
        foreach (var op in plan)
        {
            switch (op.Kind)
            {
                case 0 or 1:
                    Touch(Pos(op.Key));
                    model[Pos(op.Key)] = (TypeFor(op), ValueFor(op));
                    break;
                case 2:
                    Touch(Pos(op.Key));
                    model.Remove(Pos(op.Key));
                    break;
                default:
                    foreach (var key in model.Keys.Where(p => p >= Pos(op.Key) && p <= Pos(op.Key2)).ToList())
                    {
                        Touch(key);
                        model.Remove(key);
                    }
                    break;
            }
        }
        model[CounterPos] = (KeyType.Cookie, CounterValue(k));
        // The trigger writes the summary when some position's (old, new) pair changes the count or sum.
        var changed = false;
        foreach (var (pos, old) in before)
        {
            var now = model.TryGetValue(pos, out var v) ? v : ((KeyType, byte[])?)null;
            if (Counted(old) != Counted(now))
                changed = true;
        }
        if (!changed)
            return;
        ulong count = 0, sum = 0;
        foreach (var (pos, (type, value)) in model)
        {
            if (type == KeyType.Counted)
            {
                count++;
                sum += BinaryPrimitives.ReadUInt64LittleEndian(value);
            }
        }
        var summary = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(summary, count);
        BinaryPrimitives.WriteUInt64LittleEndian(summary.AsSpan(8), sum);
        model[CountedKeys.SummaryPos] = (KeyType.Cookie, summary);
    }

    private static (ulong Count, ulong Sum) Counted((KeyType Type, byte[] Value)? key) =>
        key is { Type: KeyType.Counted } k ? (1UL, BinaryPrimitives.ReadUInt64LittleEndian(k.Value)) : (0UL, 0UL);
}
