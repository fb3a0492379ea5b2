// The crash suite's must-fail checks against the engine's own ordering (DESIGN §5): with each
// debug-only ordering bug of BtreeDebugFaults switched on, the crash search over the recorded
// workload must find at least one crash state that violates the oracle. The control is
// BtreeCrashTests' main test: the same workload options with every switch off pass
// (BASALT_SEED=<seed> replays both with one seed).
using Basalt.Btree;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Crash;

public sealed class BtreeCrashDebugFaultTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(nameof(BtreeDebugFaults.SkipLevelFlush))]
    [InlineData(nameof(BtreeDebugFaults.WriteParentBeforeChildren))]
    [InlineData(nameof(BtreeDebugFaults.ReuseFreedSlotEarly))]
    public void An_engine_ordering_bug_is_caught(string fault)
    {
        var seed = TestSeed.Get(output, $"{nameof(An_engine_ordering_bug_is_caught)}({fault})");
        var faults = fault switch
        {
            nameof(BtreeDebugFaults.SkipLevelFlush) => new BtreeDebugFaults { SkipLevelFlush = true },
            nameof(BtreeDebugFaults.WriteParentBeforeChildren) => new BtreeDebugFaults { WriteParentBeforeChildren = true },
            nameof(BtreeDebugFaults.ReuseFreedSlotEarly) => new BtreeDebugFaults { ReuseFreedSlotEarly = true },
            _ => throw new ArgumentOutOfRangeException(nameof(fault)),
        };
        var recording = BtreeCrashWorkload.Record(new BtreeCrashWorkloadOptions
        {
            Seed = seed,
            ConfigureEngine = o => o with { DebugFaults = faults },
        });
        output.WriteLine($"workload ({fault}): {recording.ToText()}");
        var result = BtreeCrashSearch.Run(recording, new BtreeCrashSearchOptions
        {
            Seed = seed,
            MaxStates = BtreeCrashTests.DefaultMaxStates,
            MaxViolations = 1,
        });
        output.WriteLine($"crash search: {result.ToText()}");
        Assert.True(result.Violations.Count > 0, $"{fault}: the crash search found no bad state in {result.StatesMounted} states");
        output.WriteLine($"first violation: {result.Violations[0]}");
    }
}
