// The crash-state suite for the durability model before the journal (DESIGN §5): a seeded btree
// workload whose every commit is BtreeEngine.Sync (nodes level by level with a flush after each,
// then the roots through the superblock) is recorded; every crash state of the recording must
// mount, hold a committed transaction k within the oracle's bounds and equal the model's
// snapshot k, with every node reading cleanly. The suite must also fail when an ordering bug is
// switched on: a device that drops flushes must produce violations.
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Crash;

public sealed class BtreeCrashTests(ITestOutputHelper output)
{
    /// <summary>Caps the default run so the fast tier stays fast (about 30 s on 2 cores for everything here).</summary>
    internal const int DefaultMaxStates = 12_000;

    [Fact]
    public void Every_crash_state_of_a_synced_workload_mounts_as_a_committed_transaction()
    {
        var seed = TestSeed.Get(output, nameof(Every_crash_state_of_a_synced_workload_mounts_as_a_committed_transaction));
        var recording = BtreeCrashWorkload.Record(new BtreeCrashWorkloadOptions { Seed = seed });
        output.WriteLine($"workload: {recording.ToText()}");
        AssertExercisesEveryStructureChange(recording);

        var result = BtreeCrashSearch.Run(recording, new BtreeCrashSearchOptions { Seed = seed, MaxStates = DefaultMaxStates });
        output.WriteLine($"crash search: {result.ToText()}");
        AssertNoViolations(result);
        Assert.True(result.CrashPoints == recording.Log.Count + 1 || result.Capped, "every crash point was walked");
        Assert.True(result.KHistogram.Count > recording.Syncs.Count / 2, "recovered states span many transactions");
    }

    // Seeds whose workload once broke a merge: deleting the lower sibling's pointer restructured
    // the parent by a split that cut between the two pointers, leaving a range no pointer covered.
    [Theory]
    [InlineData(75)]
    [InlineData(170)]
    [InlineData(258)]
    public void Regression_workloads_that_broke_merge_record_and_pass(int seed)
    {
        var recording = BtreeCrashWorkload.Record(new BtreeCrashWorkloadOptions { Seed = seed });
        output.WriteLine($"workload: {recording.ToText()}");
        var result = BtreeCrashSearch.Run(recording, new BtreeCrashSearchOptions { Seed = seed, MaxStates = DefaultMaxStates });
        output.WriteLine($"crash search: {result.ToText()}");
        AssertNoViolations(result);
    }

    [Fact]
    public void Long_form_samples_crash_points_of_a_larger_workload()
    {
        if (!LongTests.Enabled)
        {
            output.WriteLine("long form: set BASALT_LONG=1");
            return;
        }
        var seed = TestSeed.Get(output, nameof(Long_form_samples_crash_points_of_a_larger_workload));
        var recording = BtreeCrashWorkload.Record(new BtreeCrashWorkloadOptions
        {
            Seed = seed,
            Transactions = 200,
            MaxOperations = 60,
            KeySpace = 2000,
            NodeAreaBuckets = 120,
            DeviceSize = 2 * 1024 * 1024,
        });
        output.WriteLine($"workload: {recording.ToText()}");
        AssertExercisesEveryStructureChange(recording);
        var result = BtreeCrashSearch.Run(recording, new BtreeCrashSearchOptions
        {
            Seed = seed,
            SampledCrashPoints = 1500,
            RandomSubsets = 16,
            MaxTornVariants = 8,
        });
        output.WriteLine($"crash search: {result.ToText()}");
        AssertNoViolations(result);
    }

    [Fact]
    public void Dropping_every_flush_is_caught()
    {
        var seed = TestSeed.Get(output, nameof(Dropping_every_flush_is_caught));
        FlushDroppingDevice? dropper = null;
        var recording = BtreeCrashWorkload.Record(new BtreeCrashWorkloadOptions
        {
            Seed = seed,
            Decorate = d => dropper = new FlushDroppingDevice(d),
        });
        output.WriteLine($"workload: {recording.ToText()}");
        Assert.True(dropper!.FlushesDropped > 0);
        Assert.Empty(recording.Log.Flushes);
        AssertBugIsCaught(recording, seed);
    }

    [Fact]
    public void A_lost_superblock_write_is_caught_by_the_counter_bound()
    {
        // The superblock copies of one commit are acknowledged but lost: every node is intact and
        // the older superblock mounts cleanly, so only the oracle's lower bound (a Sync returned,
        // its k must survive) can tell.
        var seed = TestSeed.Get(output, nameof(A_lost_superblock_write_is_caught_by_the_counter_bound));
        const int LostCommit = 10;
        WriteDroppingDevice? dropper = null;
        var recording = BtreeCrashWorkload.Record(new BtreeCrashWorkloadOptions
        {
            Seed = seed,
            Decorate = d =>
            {
                var copies = SuperblockIo.CopyOffsets(d.Size);
                var commits = 0;
                return dropper = new WriteDroppingDevice(d, (offset, _) =>
                {
                    if (offset == copies[0])
                        commits++;
                    return commits == LostCommit && copies.Contains(offset);
                });
            },
        });
        output.WriteLine($"workload: {recording.ToText()}");
        Assert.Equal(3, dropper!.WritesDropped);
        var result = AssertBugIsCaught(recording, seed);
        Assert.Contains($"counter k = {LostCommit - 1} outside [{LostCommit}, ", result.Violations[0]);
    }

    private BtreeCrashSearchResult AssertBugIsCaught(BtreeCrashRecording recording, int seed)
    {
        var result = BtreeCrashSearch.Run(recording, new BtreeCrashSearchOptions { Seed = seed, MaxStates = DefaultMaxStates, MaxViolations = 1 });
        output.WriteLine($"crash search: {result.ToText()}");
        Assert.True(result.Violations.Count > 0, $"the crash search found no bad state in {result.StatesMounted} states");
        output.WriteLine($"first violation: {result.Violations[0]}");
        return result;
    }

    private static void AssertExercisesEveryStructureChange(BtreeCrashRecording recording)
    {
        var s = recording.Stats;
        Assert.True(s.Splits > 0 && s.RootSplits > 1 && s.Compactions > 0 && s.Merges > 0 && s.RootCollapses > 0,
            $"the workload must split, split the root twice, compact, merge and collapse the root: {s.ToText()}");
        Assert.True(recording.MaxRootLevel >= 2, $"tree depth only {recording.MaxRootLevel + 1}");
    }

    private static void AssertNoViolations(BtreeCrashSearchResult result) =>
        Assert.True(result.Violations.Count == 0,
            $"{result.Violations.Count} crash states violate the oracle:\n{string.Join("\n", result.Violations.Take(10))}");
}
