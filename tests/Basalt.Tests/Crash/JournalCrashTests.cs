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

    private void AssertNoViolations(JournalCrashSearchResult result)
    {
        foreach (var v in result.Violations)
            output.WriteLine($"violation: {v}");
        Assert.True(result.Violations.Count == 0, $"{result.Violations.Count} violations; first: {result.Violations.FirstOrDefault()}");
    }
}
