// The journal under a mounted filesystem, with the engine and reclaim running: group commit on a
// real file, a tiny ring wrapping many times under load with every durable commit surviving a
// crash, dirty nodes holding last_seq back until they are written back, reclaim falling back to a
// checkpoint when the journal cannot take its own pointer updates, committers blocked by a full
// journal resuming once node writes can proceed, a failed journal write putting the filesystem
// into emergency read-only, and format allocating the journal with real writes.
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Journal;
using Basalt.Superblocks;
using Basalt.TestKit;
using Basalt.Transactions;
using Xunit.Abstractions;

namespace Basalt.Tests.Journal;

public sealed class JournalRuntimeTests(ITestOutputHelper output)
{
    /// <summary>Where a transaction workload keeps the number of the last transaction it committed.</summary>
    private static readonly Bpos s_counterPos = new(999_999, 0);

    private static (long Start, long End) JournalBytes(Superblock sb)
    {
        var range = sb.JournalBuckets.Single();
        return ((long)range.Start * sb.BucketSize, (long)range.End * sb.BucketSize);
    }

    private static void AssertFsckClean(IBlockDevice device)
    {
        var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly, Journal = new JournalOptions { Manual = true } });
        Assert.True(report.Clean, string.Join("; ", report.Findings.Select(f => f.ToText())));
    }

    // ---- Group commit ---------------------------------------------------------------------

    [Fact]
    public void Group_commit_on_a_file_shares_each_device_flush_among_concurrent_durable_commits()
    {
        const int threads = 8;
        const int perThread = 1250;
        using var dir = new TempDirectory("group-commit");
        var path = dir.File("fs.img");
        // The default block size; a journal of 32 MiB holds the whole run, so no node is written back
        // meanwhile: only the commits write to the device, and each flush entry costs one device
        // flush (the pre-flush is skipped).
        var format = new FormatOptions { BlockSize = 4096, BucketSize = 128 * 1024, NodeSize = 4096, JournalBuckets = 256 };
        var mount = new MountOptions { CheckWriteOnce = true, Journal = new JournalOptions { WriteBackAge = TimeSpan.FromHours(1) } };
        var notDurable = 0;
        var errors = new List<Exception>();
        JournalStats stats;
        using (var fs = BasaltFileSystem.Format(path, 64L * 1024 * 1024, format, mount))
        {
            var workers = Enumerable.Range(0, threads).Select(w => new Thread(() =>
            {
                try
                {
                    for (var i = 0; i < perThread; i++)
                    {
                        var pos = new Bpos((ulong)w + 1, (ulong)i);
                        fs.Transactor.Transact(t =>
                        {
                            t.Set(BtreeId.Test, pos, BitConverter.GetBytes(i));
                            return true;
                        }, CommitOptions.Durable, out var result);
                        // A durable commit returns only once a flush covered it.
                        if (fs.Journal.DurableSeq < result.Seq)
                            Interlocked.Increment(ref notDurable);
                    }
                }
                catch (Exception ex)
                {
                    lock (errors)
                        errors.Add(ex);
                }
            }) { IsBackground = true, Name = $"committer {w}" }).ToList();
            // Format's own commit (the allocation info) is not part of the workload.
            var before = fs.Journal.Stats;
            workers.ForEach(t => t.Start());
            workers.ForEach(t => t.Join());
            stats = fs.Journal.Stats;
            output.WriteLine($"journal: {stats.ToText()}");
            Assert.Empty(errors);
            Assert.Equal(0, notDurable);
            Assert.Equal(threads * perThread, stats.Commits - before.Commits);
            Assert.Equal(threads * perThread, stats.FlushCommits - before.FlushCommits);
            Assert.True(stats.CommitsPerDeviceFlush >= 3,
                $"{stats.Commits} durable commits took {stats.DeviceFlushes} device flushes ({stats.CommitsPerDeviceFlush:F2} per flush): {stats.ToText()}");
            fs.Close(sync: false);
        }

        // Every commit was durable when it returned: a crash right after keeps them all.
        using var again = BasaltFileSystem.Mount(path, mount);
        Assert.False(again.Recovery.WasClean);
        Assert.Null(again.Recovery.Lost);
        var tree = again.Btrees[BtreeId.Test];
        for (var w = 0; w < threads; w++)
        {
            for (var i = 0; i < perThread; i++)
            {
                Assert.True(tree.TryGet(new Bpos((ulong)w + 1, (ulong)i), out var v) && BitConverter.ToInt32(v) == i,
                    $"committer {w} transaction {i} lost after the crash");
            }
        }
    }

    // ---- A tiny ring wrapping under load ------------------------------------------------------

    /// <summary>A recorded transaction workload: each transaction's operations, and the counter key set to its number.</summary>
    private sealed class Workload(Random rng, int keySpace)
    {
        private readonly List<(Bpos Pos, byte[]? Value)[]> _log = [];

        public int Count => _log.Count;

        /// <summary>Journal seq of each transaction's commit (index k-1 for transaction k).</summary>
        public List<ulong> Seqs { get; } = [];

        /// <summary>Commits transaction Count+1: a few random sets and deletes, and the counter.</summary>
        public void Next(Transactor transactor, bool durable)
        {
            var k = _log.Count + 1;
            var ops = new (Bpos, byte[]?)[rng.Next(1, 7)];
            for (var i = 0; i < ops.Length; i++)
            {
                byte[]? value = null;
                if (rng.Next(8) != 0)
                {
                    value = new byte[rng.Next(0, 48)];
                    rng.NextBytes(value);
                }
                ops[i] = (BtreeFixture.Pos(rng.Next(keySpace)), value);
            }
            var counter = BitConverter.GetBytes((long)k);
            transactor.Transact(t =>
            {
                foreach (var (pos, value) in ops)
                {
                    if (value is null)
                        t.Delete(BtreeId.Test, pos);
                    else
                        t.Set(BtreeId.Test, pos, value);
                }
                t.Set(BtreeId.Test, s_counterPos, counter);
                return true;
            }, durable ? CommitOptions.Durable : CommitOptions.Default, out var result);
            _log.Add(ops);
            Seqs.Add(result.Seq);
        }

        /// <summary>The test btree's contents after transaction <paramref name="k"/>.</summary>
        public SortedDictionary<Bpos, byte[]> ModelAfter(int k)
        {
            var model = new SortedDictionary<Bpos, byte[]>();
            for (var i = 0; i < k; i++)
            {
                foreach (var (pos, value) in _log[i])
                {
                    if (value is null)
                        model.Remove(pos);
                    else
                        model[pos] = value;
                }
            }
            if (k > 0)
                model[s_counterPos] = BitConverter.GetBytes((long)k);
            return model;
        }

        /// <summary>The last transaction whose commit is at or below <paramref name="durableSeq"/>.</summary>
        public int LastDurable(ulong durableSeq)
        {
            var k = 0;
            for (var i = 0; i < Seqs.Count; i++)
            {
                if (Seqs[i] <= durableSeq)
                    k = i + 1;
            }
            return k;
        }

        /// <summary>Forgets the transactions after <paramref name="k"/> (a crash lost them).</summary>
        public void TruncateTo(int k)
        {
            _log.RemoveRange(k, _log.Count - k);
            Seqs.RemoveRange(k, Seqs.Count - k);
        }
    }

    private static int CounterOf(Basalt.Btree.Btree tree) =>
        tree.TryGet(s_counterPos, out var v) ? (int)BinaryPrimitives.ReadInt64LittleEndian(v) : 0;

    [Fact]
    public void A_tiny_journal_wraps_fifty_times_under_load_and_a_crash_keeps_every_durable_commit()
    {
        var seed = TestSeed.Get(output, nameof(A_tiny_journal_wraps_fifty_times_under_load_and_a_crash_keeps_every_durable_commit));
        var rng = new Random(seed);
        RingWrapCounter? counter = null;
        // The writer and reclaim threads run: entries are written as commits arrive, reclaim writes
        // nodes back as the four 8 KiB buckets fill.
        var options = new JournalOptions
        {
            FlushDelay = TimeSpan.FromMilliseconds(2),
            ReclaimInterval = TimeSpan.FromMilliseconds(2),
            WriteBackAge = TimeSpan.FromMilliseconds(50),
        };
        using var fx = new BtreeFixture(slots: 1024, journalBuckets: 4, bucketSize: 8192, journal: options, decorate: d => counter = new RingWrapCounter(d));
        var (start, end) = JournalBytes(fx.Fs.Superblock);
        counter!.Watch(start, end, fx.Fs.Superblock.BucketSize);
        var workload = new Workload(rng, keySpace: 3000);
        while (counter.Wraps < 50 && workload.Count < 200_000)
            workload.Next(fx.Fs.Transactor, durable: rng.Next(16) == 0);
        var stats = fx.Journal.Stats;
        output.WriteLine($"{workload.Count} transactions, {counter.Wraps} wraps, {counter.JournalWrites} journal writes; journal: {stats.ToText()}");
        output.WriteLine($"reclaim rounds {fx.Fs.Reclaim!.Rounds}, checkpoints {fx.Fs.Reclaim.Checkpoints}");
        Assert.True(counter.Wraps >= 50, $"seed {seed}: {counter.Wraps} wraps after {workload.Count} transactions");
        // Writing moves through the ring bucket by bucket: a lap writes at least one entry per bucket.
        Assert.True(stats.EntriesWritten >= 50L * stats.Buckets, $"{stats.EntriesWritten} entries written");
        Assert.True(fx.Fs.Reclaim.Rounds > 0, "reclaim never wrote nodes back, yet the ring was reused");

        // A crash now: the recovered state is the state after some transaction k, and k is at least
        // the last transaction a flush had made durable.
        var durable = workload.LastDurable(fx.Journal.DurableSeq);
        fx.Remount();
        Assert.False(fx.Fs.Recovery.WasClean);
        Assert.Null(fx.Fs.Recovery.Lost);
        var k = CounterOf(fx.Test);
        Assert.True(k >= durable && k <= workload.Count, $"seed {seed}: recovered transaction {k}; durable {durable}, committed {workload.Count}");
        BtreeAssertions.AssertContents(fx.Test, workload.ModelAfter(k));
        BtreeAssertions.AssertTopology(fx.Test);

        // More laps after the crash, then a clean unmount.
        workload.TruncateTo(k);
        for (var i = 0; i < 300; i++)
            workload.Next(fx.Fs.Transactor, durable: false);
        fx.CleanRemount();
        Assert.True(fx.Fs.Recovery.WasClean);
        BtreeAssertions.AssertContents(fx.Test, workload.ModelAfter(workload.Count));

        fx.Fs.Close(sync: true);
        AssertFsckClean(fx.Memory);
    }

    // ---- Pins and last_seq ------------------------------------------------------------------

    [Fact]
    public void A_dirty_node_holds_last_seq_at_its_oldest_commit_until_it_is_written_back()
    {
        using var fx = new BtreeFixture();
        for (var i = 0; i < 400; i++)
            fx.Insert(BtreeFixture.Pos(i), new byte[32]);
        fx.Checkpoint();
        Assert.Equal(0UL, fx.Journal.OldestPin);
        Assert.Equal(0, fx.Engine.DirtyNodeCount);

        // Two commits to one leaf in two entries: the leaf keeps the older one pinned.
        var s1 = fx.Insert(BtreeFixture.Pos(5), [1]);
        Assert.Equal(s1, fx.Journal.OldestPin);
        Assert.True(fx.Journal.Step(flush: false));
        var s2 = fx.Insert(BtreeFixture.Pos(6), [2]);
        Assert.True(s2 > s1, $"seq {s2} after a step, {s1} before it");
        Assert.Equal(s1, fx.Journal.OldestPin);
        Assert.Equal(1, fx.Engine.DirtyNodeCount);
        // A commit to another leaf, in a later entry.
        Assert.True(fx.Journal.Step(flush: false));
        var s3 = fx.Insert(BtreeFixture.Pos(200), [3]);
        Assert.True(s3 > s2);
        Assert.Equal(2, fx.Engine.DirtyNodeCount);
        fx.Sync();
        Assert.Equal(s1, fx.Journal.Stats.LastSeqOnDisk);
        Assert.Equal(s1, fx.Journal.LastSeq);

        // Entries keep coming; last_seq does not move while the first leaf is dirty.
        for (var i = 0; i < 20; i++)
        {
            fx.Insert(BtreeFixture.Pos(201), [(byte)i]);
            fx.Sync();
        }
        Assert.Equal(s1, fx.Journal.Stats.LastSeqOnDisk);

        // Writing back only what pins s1: the first leaf is written and its pointer update is
        // journaled (rule c); last_seq moves on to the second leaf's oldest commit.
        var round = fx.Engine.WriteBack(upToSeq: s1);
        Assert.Equal(1, round.NodesWritten);
        Assert.False(round.JournalFull);
        Assert.Equal(s3, fx.Journal.OldestPin);
        fx.Sync();
        Assert.Equal(s3, fx.Journal.Stats.LastSeqOnDisk);

        fx.WriteBackAll();
        Assert.Equal(0, fx.Engine.DirtyNodeCount);
        Assert.Equal(0UL, fx.Journal.OldestPin);
        var lastSeq = fx.Journal.Stats.LastSeqOnDisk;
        Assert.True(lastSeq > s3, $"last_seq on disk {lastSeq} after every node was written back");

        // What a crash now replays starts after every commit above: their keys come from the nodes.
        fx.Remount();
        Assert.True(fx.Fs.Recovery.Replayed is null || fx.Fs.Recovery.Replayed.Value.First >= lastSeq, fx.Fs.Recovery.ToText());
        Assert.True(fx.Test.TryGet(BtreeFixture.Pos(5), out var v5) && v5.SequenceEqual(new byte[] { 1 }));
        Assert.True(fx.Test.TryGet(BtreeFixture.Pos(6), out var v6) && v6.SequenceEqual(new byte[] { 2 }));
        Assert.True(fx.Test.TryGet(BtreeFixture.Pos(200), out var v200) && v200.SequenceEqual(new byte[] { 3 }));
        Assert.True(fx.Test.TryGet(BtreeFixture.Pos(201), out var v201) && v201.SequenceEqual(new byte[] { 19 }));
    }

    // ---- Reclaim's fallback -----------------------------------------------------------------

    [Fact]
    public void Reclaim_checkpoints_when_the_journal_cannot_take_the_pointer_updates_of_its_write_back()
    {
        using var fx = new BtreeFixture(slots: 2048, journalBuckets: 4, bucketSize: 8192);
        var model = new SortedDictionary<Bpos, byte[]>();
        for (var i = 0; i < 6000; i++)
        {
            var value = new byte[64];
            BinaryPrimitives.WriteInt64LittleEndian(value, (long)i * 31);
            fx.Insert(BtreeFixture.Pos(i), value);
            model[BtreeFixture.Pos(i)] = value;
        }
        fx.Checkpoint();
        // One existing key of every leaf.
        var leaves = new List<Bpos>();
        var pointers = fx.Test.Iterate(Bpos.Min, Bpos.Max, level: 1);
        while (pointers.MoveNext())
        {
            Assert.True(BtreePtrValue.TryRead(pointers.Value, out var ptr, out _));
            var keys = fx.Test.Iterate(ptr.MinKey, pointers.Key.Pos);
            Assert.True(keys.MoveNext());
            leaves.Add(keys.Key.Pos);
        }
        var reclaim = fx.Fs.Reclaim!;
        var checkpointsBefore = reclaim.Checkpoints;
        var roundsBefore = reclaim.Rounds;
        var checkpointSeqBefore = fx.Fs.Superblock.CleanInfo.JournalSeq;
        var fullWaitsBefore = fx.Journal.Stats.JournalFullWaits;

        // One small commit per leaf, leaf after leaf: the journal fills with commits that each pin
        // another leaf. Writing back the older half of them means one pointer update per leaf,
        // more than one entry holds, so reclaim's own update does not fit and it checkpoints.
        var pointerUpdateBytes = BkeyFormat.EncodedSize(BtreePtrValue.SizeFor(1));
        Assert.True(leaves.Count / 2 * pointerUpdateBytes > fx.Journal.MaxCommitBytes,
            $"{leaves.Count} leaves are too few to overflow an entry of {fx.Journal.MaxCommitBytes} bytes");
        long? fullWaitsOfFallback = null;
        for (var lap = 0; lap < 4 && reclaim.Checkpoints == checkpointsBefore; lap++)
        {
            foreach (var pos in leaves)
            {
                var waits = fx.Journal.Stats.JournalFullWaits;
                var checkpoints = reclaim.Checkpoints;
                model[pos] = [];
                fx.Insert(pos, []);
                if (fullWaitsOfFallback is null && reclaim.Checkpoints > checkpoints)
                    fullWaitsOfFallback = fx.Journal.Stats.JournalFullWaits - waits;
            }
        }
        var stats = fx.Journal.Stats;
        output.WriteLine($"{leaves.Count} leaves; reclaim rounds {reclaim.Rounds - roundsBefore}, checkpoints {reclaim.Checkpoints - checkpointsBefore}; journal: {stats.ToText()}");
        Assert.True(stats.JournalFullWaits > fullWaitsBefore, "the journal never filled up");
        Assert.True(reclaim.Rounds > roundsBefore, "reclaim ran no write-back round");
        Assert.True(reclaim.Checkpoints > checkpointsBefore, "reclaim never fell back to a checkpoint");
        // The committer that found the journal full waited once: the round that could not journal
        // its pointer updates checkpointed at once, rather than leaving the committer to retry.
        Assert.Equal((long?)1, fullWaitsOfFallback);
        Assert.True(fx.Fs.Superblock.CleanInfo.JournalSeq > checkpointSeqBefore, "the superblock's checkpoint seq did not move");
        BtreeAssertions.AssertContents(fx.Test, model);

        fx.Remount();
        Assert.Null(fx.Fs.Recovery.Lost);
        BtreeAssertions.AssertContents(fx.Test, model);
        BtreeAssertions.AssertTopology(fx.Test);
        fx.Fs.Close(sync: true);
        AssertFsckClean(fx.Memory);
    }

    [Fact]
    public void Committers_blocked_by_a_full_journal_resume_without_error_once_node_writes_proceed()
    {
        WriteGate? gate = null;
        var options = new JournalOptions
        {
            FlushDelay = TimeSpan.FromMilliseconds(5),
            ReclaimInterval = TimeSpan.FromMilliseconds(5),
            WriteBackAge = TimeSpan.FromHours(1),
        };
        using var fx = new BtreeFixture(slots: 1024, journalBuckets: 4, bucketSize: 8192, journal: options, decorate: d => gate = new WriteGate(d));
        for (var i = 0; i < 200; i++)
            fx.Insert(BtreeFixture.Pos(i), [1]);
        fx.Sync();
        var sb = fx.Fs.Superblock;

        const int threads = 4;
        const int perThread = 300;
        var done = new int[threads];
        var errors = new List<Exception>();
        var workers = Enumerable.Range(0, threads).Select(w => new Thread(() =>
        {
            try
            {
                for (var i = 0; i < perThread; i++)
                {
                    var first = (ulong)i * 8;
                    fx.Fs.Transact(t =>
                    {
                        for (var k = 0u; k < 5; k++)
                            t.Set(BtreeId.Test, new Bpos(100 + (ulong)w, first + k), new byte[40]);
                    });
                    Interlocked.Increment(ref done[w]);
                }
            }
            catch (Exception ex)
            {
                lock (errors)
                    errors.Add(ex);
            }
        }) { IsBackground = true, Name = $"committer {w}" }).ToList();

        try
        {
            // Node writes (write-back, checkpoints) wait at the gate: the journal can only fill up.
            gate!.Close(sb.NodeAreaOffset, sb.NodeAreaOffset + sb.NodeAreaLength);
            workers.ForEach(t => t.Start());
            Assert.True(SpinWait.SpinUntil(() => (fx.Journal.Stats.JournalFullWaits > 0 && gate.Held > 0) || errors.Count > 0, TimeSpan.FromSeconds(60)),
                $"the journal never filled: {fx.Journal.Stats.ToText()}, {gate.Held} writes held");
            Assert.Empty(errors);
            var finished = done.Sum();
            Assert.True(finished < threads * perThread, $"{finished} transactions finished with node writes held");
        }
        finally
        {
            gate!.Open();
        }
        foreach (var t in workers)
            Assert.True(t.Join(TimeSpan.FromSeconds(60)), $"{t.Name} did not finish after the gate opened: {fx.Journal.Stats.ToText()}");
        Assert.True(errors.Count == 0, string.Join("; ", errors.Select(e => e.Message)));
        Assert.Equal(threads * perThread, done.Sum());
        output.WriteLine($"journal: {fx.Journal.Stats.ToText()}; reclaim rounds {fx.Fs.Reclaim!.Rounds}, checkpoints {fx.Fs.Reclaim.Checkpoints}");

        fx.Sync();
        fx.Remount();
        for (var w = 0; w < threads; w++)
        {
            for (var i = 0; i < perThread; i++)
            {
                Assert.True(fx.Test.TryGet(new Bpos(100 + (ulong)w, ((ulong)i * 8) + 4), out _), $"committer {w} transaction {i} lost");
            }
        }
    }

    // ---- Write errors -----------------------------------------------------------------------

    [Fact]
    public void A_failed_journal_write_enters_emergency_read_only_and_a_remount_recovers_every_flushed_commit()
    {
        FaultyBlockDevice? faulty = null;
        var options = new JournalOptions { FlushDelay = TimeSpan.FromMilliseconds(5), ReclaimInterval = TimeSpan.FromMilliseconds(5) };
        using var fx = new BtreeFixture(journalBuckets: 8, bucketSize: 8192, journal: options,
            decorate: d => faulty = new FaultyBlockDevice(d, seed: 1, ownsInner: false));
        var (start, end) = JournalBytes(fx.Fs.Superblock);
        var rule = faulty!.FailWrites(start, end - start);
        rule.Disarm();

        // Commits with and without a flush; each one's seq is kept to tell which a flush covered.
        var commits = new List<(Bpos Pos, ulong Seq)>();
        for (var i = 0; i < 300; i++)
        {
            var pos = BtreeFixture.Pos(i);
            var value = BitConverter.GetBytes(i);
            fx.Fs.Transactor.Transact(t =>
            {
                t.Set(BtreeId.Test, pos, value);
                return true;
            }, i % 3 == 0 ? CommitOptions.Durable : CommitOptions.Default, out var result);
            commits.Add((pos, result.Seq));
        }

        rule.Arm();
        var durableBefore = fx.Journal.DurableSeq;
        var failedAt = BtreeFixture.Pos(1_000);
        var first = Assert.Throws<BasaltException>(() => fx.Fs.Transact(t => t.Set(BtreeId.Test, failedAt, [1]), CommitOptions.Durable));
        output.WriteLine(first.Message);
        Assert.True(rule.Hits > 0);
        Assert.Equal(ErrorCode.EmergencyReadOnly, first.Code);
        var cause = Assert.IsType<BasaltException>(fx.Fs.Emergency.Cause);
        Assert.Equal(ErrorCode.IoError, cause.Code);
        // The message says what failed, where, and what state the filesystem is in.
        Assert.Contains("emergency read-only", first.Message, StringComparison.Ordinal);
        Assert.Contains("journal write of seq", first.Message, StringComparison.Ordinal);
        Assert.Contains($"{fx.Memory.Name}:", cause.Message, StringComparison.Ordinal);
        Assert.Matches(@"at byte \d+", cause.Message);
        Assert.Same(cause, first.InnerException);

        // Every later mutation fails fast with the original cause; reads still work.
        var hitsAfterFailure = rule.Hits;
        var later = Assert.Throws<BasaltException>(() => fx.Fs.Transact(t => t.Set(BtreeId.Test, BtreeFixture.Pos(1_001), [1])));
        Assert.Equal(ErrorCode.EmergencyReadOnly, later.Code);
        Assert.Same(cause, later.InnerException);
        Assert.Equal(ErrorCode.EmergencyReadOnly, Assert.Throws<BasaltException>(() => fx.Fs.Sync()).Code);
        Assert.Throws<BasaltException>(() => fx.Fs.Checkpoint());
        Assert.True(fx.Test.TryGet(BtreeFixture.Pos(0), out _));
        Assert.Equal(hitsAfterFailure, rule.Hits);

        // A clean unmount writes nothing in emergency read-only: the next mount recovers from the journal.
        rule.Disarm();
        fx.CleanRemount();
        Assert.False(fx.Fs.Recovery.WasClean);
        Assert.Null(fx.Fs.Recovery.Lost);
        var flushed = commits.Where(c => c.Seq <= durableBefore).ToList();
        Assert.True(flushed.Count >= 298, $"{flushed.Count} commits flushed before the failure");
        foreach (var (pos, seq) in flushed)
            Assert.True(fx.Test.TryGet(pos, out _), $"the commit of {pos.ToText()} at seq {seq}, flushed before the failure, was lost");
        fx.Fs.Transact(t => t.Set(BtreeId.Test, BtreeFixture.Pos(2_000), [2]), CommitOptions.Durable);
        fx.Fs.Close(sync: true);
        AssertFsckClean(fx.Memory);
    }

    // ---- Format -----------------------------------------------------------------------------

    [Fact]
    public void Format_zeroes_the_journal_with_real_writes_over_an_earlier_filesystems_entries()
    {
        using var memory = new MemoryBlockDevice(8 * 1024 * 1024, "old.img");
        var options = new FormatOptions { BlockSize = 512, BucketSize = 64 * 1024, NodeSize = 4096, Uuid = Guid.NewGuid() };
        // An earlier filesystem with the same geometry left journal entries and garbage everywhere.
        memory.Contents.Fill(0xA5);
        using (var fs = BasaltFileSystem.Format(memory, options))
        {
            for (var i = 0; i < 50; i++)
                fs.Transact(t => t.Set(BtreeId.Test, new Bpos(1, (ulong)i), [1]), CommitOptions.Durable);
            fs.Close(sync: false);
        }
        using var recording = new RecordingBlockDevice(memory);
        // The same uuid again: leftover entries would carry the right magic.
        SuperblockIo.Format(recording, options);

        var sb = SuperblockIo.Read(memory).Superblock;
        var (start, end) = JournalBytes(sb);
        Assert.True(memory.Contents[(int)start..(int)end].IndexOfAnyExcept((byte)0) < 0, "the journal is zero after format");
        // Written, not left discarded: a sparse hole would leave allocation to the first journal
        // write. In log order a discard uncovers a sector and a write covers it.
        var covered = new bool[(end - start) / 512];
        var journalWrites = recording.Log.Writes.Where(w => w.Offset < end && w.Offset + w.Length > start).ToList();
        foreach (var w in journalWrites)
        {
            for (var o = Math.Max(w.Offset, start); o < Math.Min(w.Offset + w.Length, end); o += 512)
                covered[(o - start) / 512] = !w.IsDiscard;
        }
        Assert.DoesNotContain(false, covered);
        // Flushed before the superblock that says the filesystem exists is written.
        var lastJournalWrite = journalWrites.Last();
        var superblockWrite = recording.Log.Writes.Last(w => w.Offset == sb.CopyOffsets[0]);
        Assert.True(superblockWrite.Index > lastJournalWrite.Index && superblockWrite.Epoch > lastJournalWrite.Epoch,
            $"the superblock ({superblockWrite}) is not written after a flush that follows the journal's zeroes ({lastJournalWrite})");

        using var mounted = BasaltFileSystem.Mount(memory, new MountOptions { Verify = true });
        Assert.Empty(mounted.Recovery.Damage);
        Assert.False(mounted.Btrees[BtreeId.Test].TryGet(new Bpos(1, 1), out _));
    }

    [Fact]
    public void Capped_write_back_rounds_write_new_nodes_first_so_their_pointer_updates_commit()
    {
        // More dirty leaves than a round takes, every round: old leaves dirtied again by each batch
        // of inserts sit at low offsets, the leaves new splits make come from the allocator's
        // cursor, further on. If rounds took nodes by offset the new leaves would never be written
        // and their splits' pointer updates never journaled (the root holding them could then
        // never be written, and the journal fills up behind its pins). Rounds take never-written
        // nodes first. The root stays at level 1 here, so nothing else blocks those updates.
        var seed = TestSeed.Get(output, nameof(Capped_write_back_rounds_write_new_nodes_first_so_their_pointer_updates_commit));
        using var fx = new BtreeFixture(nodeSize: 4096, slots: 1024, seed: 1);
        var rng = new Random(seed);
        var value = new byte[24];
        for (var i = 0; i < 400; i++)
            fx.Insert(new Bpos(1, (ulong)i * 1000), value);
        fx.Checkpoint();
        var reclaim = fx.Fs.Reclaim!;
        var reclaimCheckpoints = reclaim.Checkpoints;
        var engineCheckpoints = fx.Engine.Stats.Checkpoints;
        var pendingAfterRounds = new List<int>();
        for (var round = 0; round < 40; round++)
        {
            for (var i = 0; i < 15; i++)
                fx.Insert(new Bpos(1, (ulong)rng.NextInt64(0, 400_000)), value);
            fx.Engine.WriteBack(null, maxNodes: 4);
            fx.Journal.Step(flush: true);
            pendingAfterRounds.Add(fx.Engine.PendingPositionCount);
        }
        output.WriteLine($"pending interior edits after each round: {string.Join(' ', pendingAfterRounds)}; root level {fx.Test.Root!.Level}");
        Assert.Equal(1, fx.Test.Root!.Level);
        // Each round writes the leaves the last batch split off, so their updates commit: what is
        // pending after a round is about one batch's splits (3-4 here), not a backlog that grows
        // every round (13-17 by the end when rounds take nodes by offset).
        Assert.True(pendingAfterRounds.TakeLast(10).Average() <= 6, $"pending interior edits keep growing: {string.Join(' ', pendingAfterRounds)}");
        // The rounds alone kept up: reclaim never had to fall back to a checkpoint, nor did anything else.
        Assert.Equal(reclaimCheckpoints, reclaim.Checkpoints);
        Assert.Equal(engineCheckpoints, fx.Engine.Stats.Checkpoints);
        fx.Checkpoint();
        Assert.Equal(0, fx.Engine.PendingPositionCount);
    }
}
