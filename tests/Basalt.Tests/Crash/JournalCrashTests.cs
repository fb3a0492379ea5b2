// The crash-state suite (DESIGN §5, docs/recovery.md): recorded transaction workloads whose every
// crash state must recover a prefix of the commit history holding every commit whose flush
// returned, with fsck clean; and the must-fail checks: each debug-only ordering bug must make the
// search fail, quickly.
using Basalt.Btree;
using Basalt.Journal;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Crash;

public sealed class JournalCrashTests(ITestOutputHelper output)
{
    /// <summary>
    /// Stepped workloads of five shapes: the default (a journal of 8 buckets that wraps), a long
    /// one that grows the tree to depth 3 and back, a tiny journal that write-back keeps at half
    /// full, data writes that empty and reuse buckets, and btrees that outgrow the node area into
    /// claimed btree buckets and give emptied ones back. In long mode (BASALT_LONG=1) each shape
    /// runs ten seeds with no state limit.
    /// </summary>
    public static TheoryData<string> Shapes => ["default", "long", "tiny journal", "data", "node buckets"];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Every_crash_state_recovers_a_prefix_holding_every_flushed_commit(string shape)
    {
        var seed = TestSeed.Get(output, $"{nameof(Every_crash_state_recovers_a_prefix_holding_every_flushed_commit)}({shape})");
        var mounted = 0;
        for (var i = 0; i < LongTests.Scale(1); i++)
        {
            var options = new JournalCrashWorkloadOptions { Seed = seed + i };
            options = shape switch
            {
                "long" => options with { Transactions = 150, KeySpace = 1500, Slots = 320 },
                "tiny journal" => options with { Transactions = 100, JournalBuckets = 4, WriteBackWhenJournalHalfFull = true, FlushProbability = 0.1 },
                "data" => options with { Transactions = 120, DataProbability = 0.5, DataSpan = 16 * 1024 },
                "node buckets" => options with { Transactions = 120, KeySpace = 1500, NodeBuckets = true },
                _ => options with { Transactions = 100 },
            };
            var recording = JournalCrashWorkload.Record(options);
            // A data workload that happens to empty no bucket does not test reuse, nor a node-bucket
            // workload whose btrees never outgrow the node area (or never shrink back) claims and
            // releases: take the next seed.
            for (var retry = 1; !Exercises(shape, recording) && retry <= 8; retry++)
            {
                output.WriteLine($"workload seed {options.Seed} did not exercise its shape: recording seed {seed + i + (retry * 7919)} instead");
                options = options with { Seed = seed + i + (retry * 7919) };
                recording = JournalCrashWorkload.Record(options);
            }
            output.WriteLine($"workload seed {options.Seed}: {recording.ToText()}");
            var result = JournalCrashSearch.Run(recording, new JournalCrashSearchOptions
            {
                Seed = options.Seed,
                // Crash points spread over the whole workload (growth, shrink and regrowth alike).
                // The search walks them in order, so the sample is sized for the state limit (a
                // guard) not to cut the end off: the long and data workloads give about 16 states a
                // crash point, the others about 8; node buckets about 16 from fewer points, so
                // claims, releases and reuses late in the workload are reached within its budget.
                // The CI budget (docs/crash.md): the suite mounts at least 10,000 distinct states
                // in at most 3 minutes.
                SampledCrashPoints = LongTests.Enabled ? null : shape switch { "long" or "data" => 160, "node buckets" => 90, _ => 300 },
                MaxStates = LongTests.Enabled ? int.MaxValue : shape == "node buckets" ? 1500 : 4000,
                RecoveryRecordingEvery = LongTests.Enabled ? 1000 : 1500,
            });
            output.WriteLine($"crash search: {result.ToText()}");
            AssertNoViolations(result, recording, shape.Replace(' ', '-'));
            Assert.True(result.KHistogram.Count > 10, "recovered states span many transactions");
            if (shape == "data")
                Assert.True(recording.BucketsFreed > 0, "the data workload empties and reuses buckets");
            if (shape == "node buckets")
            {
                Assert.True(recording.NodeBucketsClaimed > 0, "the btrees outgrew the node area");
                Assert.True(recording.NodeBucketsReleased > 0, "emptied btree buckets were given back");
            }
            mounted += result.StatesMounted;
        }
        Assert.True(mounted >= 1000, $"only {mounted} distinct crash states: the workload no longer makes enough writes");
    }

    /// <summary>Whether a recorded workload did what its shape is there to test.</summary>
    private static bool Exercises(string shape, JournalCrashRecording recording) => shape switch
    {
        "data" => recording.BucketsFreed > 0,
        "node buckets" => recording.NodeBucketsClaimed > 0 && recording.NodeBucketsReleased > 0,
        _ => true,
    };

    [Fact]
    public void Replay_never_allocates_a_slot_an_old_pointer_named_at_another_level()
    {
        // Regression, from a saved write log: a slot named by an old bset's pointer as a leaf, and
        // holding an interior node since, was marked once at the old level and never followed at
        // the new one; replay then allocated that interior node's children's slots to its new
        // nodes, and recovery found leaves reachable twice. The workload and crash points are the
        // ones that showed it.
        var recording = JournalCrashWorkload.Record(new JournalCrashWorkloadOptions { Seed = 79953753, Transactions = 150, KeySpace = 1500 });
        var result = JournalCrashSearch.Run(recording, new JournalCrashSearchOptions { Seed = 79953753, CrashPointRange = (480, 492) });
        output.WriteLine($"crash search: {result.ToText()}");
        AssertNoViolations(result, recording, "regression");
        Assert.True(result.StatesMounted > 20, "the crash points searched exist in this workload");
    }

    [Fact]
    public void A_checkpoint_flushes_the_nodes_write_back_wrote_before_it()
    {
        // Regression: a checkpoint with nothing left to capture committed the superblock right
        // after a write-back round's node writes, which nothing had flushed yet; a crash could
        // keep the superblock and lose a node its roots name. Crash points 50-60 of this workload
        // are where it showed.
        var recording = JournalCrashWorkload.Record(new JournalCrashWorkloadOptions
        {
            Seed = 453840594, Transactions = 100, JournalBuckets = 4, WriteBackWhenJournalHalfFull = true, FlushProbability = 0.1,
        });
        var result = JournalCrashSearch.Run(recording, new JournalCrashSearchOptions { Seed = 453840594, CrashPointRange = (50, 60) });
        output.WriteLine($"crash search: {result.ToText()}");
        AssertNoViolations(result, recording, "regression");
        Assert.True(result.StatesMounted > 20, "the crash points searched exist in this workload");
    }

    [Fact]
    public void A_small_tree_in_a_tiny_journal_recovers_a_prefix()
    {
        // Found while tuning the rule (f) search: 150 transactions over 60 keys in a ring of four
        // 4 KiB buckets written back at half full. At crash point 332 a root collapse had dropped
        // the old root's pins before the root change naming its child was journaled, so last_seq
        // passed the old root's interior keys while recovery still started from the old root.
        var options = new JournalCrashWorkloadOptions
        {
            Seed = 12, Transactions = 150, KeySpace = 60, JournalBuckets = 4, JournalBucketSize = 4096, FlushProbability = 0.02, WriteBackWhenJournalHalfFull = true,
        };
        var recording = JournalCrashWorkload.Record(options);
        var result = JournalCrashSearch.Run(recording, new JournalCrashSearchOptions { Seed = 12 });
        output.WriteLine($"crash search: {result.ToText()}");
        AssertNoViolations(result, recording, "small-tree");
    }

    [Fact]
    public void Threaded_commits_with_writer_and_reclaim_threads_recover_a_prefix_holding_every_flushed_commit()
    {
        // Three committing threads, the journal writer and reclaim all running: the interleavings
        // are the scheduler's, so the seed fixes the plans but not the write log; a failing log is
        // saved (AssertNoViolations) so it can be searched again.
        var seed = TestSeed.Get(output, nameof(Threaded_commits_with_writer_and_reclaim_threads_recover_a_prefix_holding_every_flushed_commit));
        var recording = JournalCrashWorkload.Record(new JournalCrashWorkloadOptions { Seed = seed, Threaded = true, Transactions = 90 });
        output.WriteLine($"workload: {recording.ToText()}");
        var result = JournalCrashSearch.Run(recording, new JournalCrashSearchOptions
        {
            Seed = seed,
            MaxStates = LongTests.Enabled ? int.MaxValue : 3000,
            RecoveryRecordingEvery = LongTests.Enabled ? 300 : 600,
        });
        output.WriteLine($"crash search: {result.ToText()}");
        AssertNoViolations(result, recording, "threaded");
        Assert.True(result.KHistogram.Count > 10, "recovered states span many transactions");
    }

    /// <summary>The debug-only ordering bugs, by the rule each breaks (docs/format.md).</summary>
    public static TheoryData<string> OrderingBugs => ["b", "c", "d", "e", "f", "g", "h", "d-data", "g-data"];

    [Theory]
    [MemberData(nameof(OrderingBugs))]
    public void Each_ordering_bug_makes_the_search_fail(string rule)
    {
        // Workloads of consecutive seeds are searched until one shows the bug, up to 15,000
        // distinct states in all (counted, not timed, so a busy machine is only slower; the clock
        // cap is a guard against a hang). A workload that happens not to exercise the broken rule
        // just passes its turn. Rule (f) only bites when a write-back released pins and the
        // bucket reused early still held entries the durable last_seq needs, which depends on how
        // entries fell into buckets; its search starts from a workload known to show it (and
        // known to pass with the rule kept).
        var seed = rule == "f" ? 15 : TestSeed.Get(output, $"{nameof(Each_ordering_bug_makes_the_search_fail)}({rule})");
        const int stateBudget = 15_000;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var guard = TimeSpan.FromMinutes(5);
        var searched = 0;
        for (var i = 0; searched < stateBudget && clock.Elapsed < guard; i++)
        {
            var workload = WithOrderingBug(new JournalCrashWorkloadOptions { Seed = seed + i }, rule);
            JournalCrashRecording recording;
            try
            {
                recording = JournalCrashWorkload.Record(workload);
            }
            catch (Exception ex) when (ex is Basalt.Diagnostics.BasaltException or InvalidOperationException)
            {
                // Only the search counts as catching the bug: a workload the broken engine could not
                // even run passes its turn.
                output.WriteLine($"rule ({rule}), workload seed {seed + i}: the workload itself failed: {ex.Message}");
                continue;
            }
            var result = JournalCrashSearch.Run(recording, new JournalCrashSearchOptions
            {
                Seed = seed + i,
                MaxViolations = 1,
                MaxStates = stateBudget - searched,
                Fsck = false,
            });
            searched += result.StatesMounted;
            output.WriteLine($"rule ({rule}), workload seed {seed + i}: {result.ToText()}");
            if (result.Violations.Count > 0)
            {
                output.WriteLine($"first violation: {result.Violations[0]}");
                return;
            }
        }
        Assert.Fail($"rule ({rule}) broken, yet none of {searched} distinct crash states searched showed it");
    }

    private static JournalCrashWorkloadOptions WithOrderingBug(JournalCrashWorkloadOptions options, string rule) => rule switch
    {
        "b" => options with { EngineFaults = new BtreeDebugFaults { CommitPointerBeforeNodeDurable = true } },
        "c" => options with { EngineFaults = new BtreeDebugFaults { ReleasePinBeforeParentUpdate = true } },
        "d" => options with { EngineFaults = new BtreeDebugFaults { ReuseFreedSlotEarly = true } },
        "e" => options with { EngineFaults = new BtreeDebugFaults { CheckpointBeforeNodesFlushed = true } },
        // A bucket reused too early shows when a write-back released pins (in memory only: the
        // flush that makes the new last_seq durable has not happened) and no-flush entries then
        // move on to the next bucket: a small ring written back at half full, rare flushes, and
        // few keys, so that the tree stops splitting and write-back rounds release pins.
        "f" => options with
        {
            JournalFaults = new JournalDebugFaults { ReuseBucketBeforeLastSeqDurable = true },
            Transactions = 150, KeySpace = 60, JournalBuckets = 4, JournalBucketSize = 4096, FlushProbability = 0.02, WriteBackWhenJournalHalfFull = true,
        },
        "g" => options with { JournalFaults = new JournalDebugFaults { SkipPreFlush = true } },
        // A raise is journaled when a node written before is written again with an appended bset:
        // few keys, so that leaves stop splitting and are written back again and again. With the
        // default 500 keys about one workload in five showed it, and twelve in a row did not
        // (seed 1813062804); with 60 keys about two in three do.
        "h" => options with { EngineFaults = new BtreeDebugFaults { CommitRaiseBeforeWrite = true }, Transactions = 100, KeySpace = 60 },
        // Data: an emptied bucket freed (gen raised, discarded, reused) before the entry that
        // emptied it is flushed: a crash keeps the old extent over the new bucket contents.
        "d-data" => options with
        {
            DataProbability = 0.9, FlushProbability = 0.05, DataSpan = 8 * 1024,
            SpaceFaults = new Basalt.Alloc.SpaceOptions { BackgroundWorker = false, DebugFreeBeforeFlush = true },
        },
        // Data: the flush entry without its pre-flush: extents can be durable before their data.
        "g-data" => options with { DataProbability = 0.8, JournalFaults = new JournalDebugFaults { SkipPreFlush = true } },
        _ => throw new ArgumentOutOfRangeException(nameof(rule), rule, "no such ordering rule"),
    };

    [Fact]
    public void A_saved_workload_searches_the_same_as_the_recorded_one()
    {
        // The file a failing search leaves behind must reproduce it: save a recording, load it,
        // and the same search must mount the same states and recover the same counters. With
        // BASALT_CRASH_LOG set, the file named there is searched instead (no state limit).
        if (Environment.GetEnvironmentVariable("BASALT_CRASH_LOG") is { Length: > 0 } saved)
        {
            var loaded = JournalCrashFile.Load(saved);
            output.WriteLine($"searching {saved}: {loaded.ToText()}");
            var replay = JournalCrashSearch.Run(loaded, new JournalCrashSearchOptions { Seed = loaded.Options.Seed, RecoveryRecordingEvery = 200 });
            output.WriteLine($"crash search: {replay.ToText()}");
            AssertNoViolations(replay, loaded, "replay");
            return;
        }
        var seed = TestSeed.Get(output, nameof(A_saved_workload_searches_the_same_as_the_recorded_one));
        var recording = JournalCrashWorkload.Record(new JournalCrashWorkloadOptions { Seed = seed, Transactions = 25 });
        var path = Path.Combine(Path.GetTempPath(), $"basalt-crash-roundtrip-{Guid.NewGuid():N}.bcrash");
        try
        {
            JournalCrashFile.Save(recording, path);
            var copy = JournalCrashFile.Load(path);
            var options = new JournalCrashSearchOptions { Seed = seed, MaxStates = 400 };
            var original = JournalCrashSearch.Run(recording, options);
            var again = JournalCrashSearch.Run(copy, options);
            output.WriteLine($"original: {original.ToText()}");
            output.WriteLine($"loaded:   {again.ToText()}");
            Assert.Equal(recording.Log.Count, copy.Log.Count);
            Assert.Equal(recording.Log.Flushes, copy.Log.Flushes);
            Assert.Equal(recording.Log.Covered, copy.Log.Covered);
            Assert.Equal(original.CrashPoints, again.CrashPoints);
            Assert.Equal(original.Candidates, again.Candidates);
            Assert.Equal(original.StatesMounted, again.StatesMounted);
            Assert.Equal(original.KHistogram, again.KHistogram);
            Assert.True(original.StatesMounted > 50, "the round trip searched real states");
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Fails with the violations, leaving the recording in a file that BASALT_CRASH_LOG replays.</summary>
    private void AssertNoViolations(JournalCrashSearchResult result, JournalCrashRecording recording, string name)
    {
        if (result.Violations.Count == 0)
            return;
        foreach (var v in result.Violations)
            output.WriteLine($"violation: {v}");
        var path = JournalCrashFile.SaveForReplay(recording, name);
        output.WriteLine($"write log saved: search it again with BASALT_CRASH_LOG={path} dotnet test --filter {nameof(A_saved_workload_searches_the_same_as_the_recorded_one)}");
        Assert.Fail($"{result.Violations.Count} violations; first: {result.Violations[0]}; write log saved to {path}");
    }
}
