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
    [Fact]
    public void Every_crash_state_recovers_a_prefix_holding_every_flushed_commit()
    {
        var seed = TestSeed.Get(output, nameof(Every_crash_state_recovers_a_prefix_holding_every_flushed_commit));
        var recording = JournalCrashWorkload.Record(new JournalCrashWorkloadOptions { Seed = seed });
        output.WriteLine($"workload: {recording.ToText()}");
        var result = JournalCrashSearch.Run(recording, new JournalCrashSearchOptions
        {
            Seed = seed,
            MaxStates = LongTests.Enabled ? int.MaxValue : 4000,
            RecoveryRecordingEvery = 200,
        });
        output.WriteLine($"crash search: {result.ToText()}");
        AssertNoViolations(result);
        Assert.True(result.KHistogram.Count > 10, "recovered states span many transactions");
    }

    /// <summary>The debug-only ordering bugs, by the rule each breaks (docs/format.md).</summary>
    public static TheoryData<string> OrderingBugs => ["b", "c", "d", "e", "f", "g", "h"];

    [Theory]
    [MemberData(nameof(OrderingBugs))]
    public void Each_ordering_bug_makes_the_search_fail(string rule)
    {
        // Workloads of consecutive seeds are searched until one shows the bug; the whole search
        // has 30 s. A workload that happens not to exercise the broken rule just passes its turn.
        // Rule (f) only bites when the bucket reused early still held entries the durable last_seq
        // needs, which depends on how entries fell into buckets; about one workload in three does,
        // so its search starts from a workload known to show it and goes on from there.
        var seed = rule == "f" ? 11 : TestSeed.Get(output, $"{nameof(Each_ordering_bug_makes_the_search_fail)}({rule})");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var budget = TimeSpan.FromSeconds(30);
        for (var i = 0; clock.Elapsed < budget; i++)
        {
            var workload = WithOrderingBug(new JournalCrashWorkloadOptions { Seed = seed + i }, rule);
            JournalCrashRecording recording;
            try
            {
                recording = JournalCrashWorkload.Record(workload);
            }
            catch (Exception ex) when (ex is Basalt.Diagnostics.BasaltException or InvalidOperationException)
            {
                output.WriteLine($"rule ({rule}), workload seed {seed + i}: the workload itself failed: {ex.Message}");
                continue;
            }
            var result = JournalCrashSearch.Run(recording, new JournalCrashSearchOptions
            {
                Seed = seed + i,
                MaxViolations = 1,
                TimeLimit = budget - clock.Elapsed,
                Fsck = false,
            });
            output.WriteLine($"rule ({rule}), workload seed {seed + i}: {result.ToText()}");
            if (result.Violations.Count > 0)
            {
                output.WriteLine($"first violation: {result.Violations[0]}");
                return;
            }
        }
        Assert.Fail($"rule ({rule}) broken, yet no crash state of any workload searched in {budget.TotalSeconds:F0} s showed it");
    }

    private static JournalCrashWorkloadOptions WithOrderingBug(JournalCrashWorkloadOptions options, string rule) => rule switch
    {
        "b" => options with { EngineFaults = new BtreeDebugFaults { CommitPointerBeforeNodeDurable = true } },
        "c" => options with { EngineFaults = new BtreeDebugFaults { ReleasePinBeforeParentUpdate = true } },
        "d" => options with { EngineFaults = new BtreeDebugFaults { ReuseFreedSlotEarly = true } },
        "e" => options with { EngineFaults = new BtreeDebugFaults { CheckpointBeforeNodesFlushed = true } },
        // A bucket reused too early shows when a write-back released pins (in memory only: the
        // flush that makes the new last_seq durable has not happened) and no-flush entries then
        // move on to the next bucket: a small ring written back at half full, rare flushes.
        "f" => options with
        {
            JournalFaults = new JournalDebugFaults { ReuseBucketBeforeLastSeqDurable = true },
            Transactions = 100, JournalBuckets = 4, JournalBucketSize = 4096, FlushProbability = 0.02, WriteBackWhenJournalHalfFull = true,
        },
        "g" => options with { JournalFaults = new JournalDebugFaults { SkipPreFlush = true } },
        "h" => options with { EngineFaults = new BtreeDebugFaults { CommitRaiseBeforeWrite = true } },
        _ => throw new ArgumentOutOfRangeException(nameof(rule), rule, "no such ordering rule"),
    };

    private void AssertNoViolations(JournalCrashSearchResult result)
    {
        foreach (var v in result.Violations)
            output.WriteLine($"violation: {v}");
        Assert.True(result.Violations.Count == 0, $"{result.Violations.Count} violations; first: {result.Violations.FirstOrDefault()}");
    }
}
