// Walks the crash states of a recorded btree workload (DESIGN §5) and checks each against the
// oracle:
//   - the state mounts: the superblock reads, BtreeEngine.Open finds no problem;
//   - its counter key k lies in [last Sync returned before the crash point, last Sync started];
//   - a full scan is strictly sorted and equals the model's snapshot k exactly;
//   - every reachable node (root, every child pointer at every level) was read, and every read was
//     clean: no finding of any kind (bsets beyond a pointer's sectors_written are only counted);
//   - topology: each level's pointers tile [min, max], and a lookup at both ends of every node's
//     range descends cleanly (each node's children cover its whole range).
//
// States are generated per crash point by CrashStateEnumerator (prefixes, drop-one, seeded random
// subsets, torn last write). Deduplication is by content hash *and* bounds: the same bytes found at
// a later crash point may face a higher lower bound (a Sync returned in between), so a content
// seen before is mounted once and its k re-checked against every new pair of bounds. Materialising
// starts from a durable image kept up to date incrementally (crash points ascend), so a state costs
// one image copy plus its current-epoch writes, not a replay of the whole log.
using System.Diagnostics;
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.Tests.Crash;

internal sealed record BtreeCrashSearchOptions
{
    /// <summary>Seed of the enumerator's random subsets and torn sizes, and of crash point sampling.</summary>
    public int Seed { get; init; }

    /// <summary>Check this many crash points chosen at random (plus the last); null checks every crash point.</summary>
    public int? SampledCrashPoints { get; init; }

    /// <summary>Stop after mounting this many distinct states.</summary>
    public int MaxStates { get; init; } = int.MaxValue;

    /// <summary>Stop after this many violations (the must-fail checks stop at the first).</summary>
    public int MaxViolations { get; init; } = 20;

    public int RandomSubsets { get; init; } = 8;
    public int MaxTornVariants { get; init; } = 4;
}

internal sealed class BtreeCrashSearchResult
{
    public int CrashPoints { get; set; }
    public int Candidates { get; set; }

    /// <summary>Distinct contents materialised and mounted.</summary>
    public int StatesMounted { get; set; }

    /// <summary>Contents seen before, re-checked only against new bounds.</summary>
    public int BoundsRechecked { get; set; }

    public int IgnoredBsets { get; set; }
    public bool Capped { get; set; }
    public TimeSpan Elapsed { get; set; }
    public List<string> Violations { get; } = [];

    /// <summary>How many mounted states held each k.</summary>
    public SortedDictionary<int, int> KHistogram { get; } = [];

    public string ToText() =>
        $"{CrashPoints} crash points, {Candidates} candidate states, {StatesMounted} distinct states mounted, " +
        $"{BoundsRechecked} re-checked for bounds, {IgnoredBsets} bsets beyond sectors_written ignored, " +
        $"{KHistogram.Count} distinct k, {Violations.Count} violations{(Capped ? " (capped)" : "")}, {Elapsed.TotalSeconds:F1} s";
}

internal static class BtreeCrashSearch
{
    public static BtreeCrashSearchResult Run(BtreeCrashRecording recording, BtreeCrashSearchOptions options)
    {
        var clock = Stopwatch.StartNew();
        var result = new BtreeCrashSearchResult();
        var enumerator = new CrashStateEnumerator(recording.Log, new CrashStateOptions
        {
            Seed = options.Seed,
            RandomSubsets = options.RandomSubsets,
            MaxTornVariants = options.MaxTornVariants,
        });
        var images = new DurableImage(recording.BaseImage, recording.Log);
        var outcomes = new Dictionary<ulong, StateOutcome>();
        var checkedBounds = new HashSet<(ulong Hash, int Lower, int Upper)>();

        foreach (var point in CrashPoints(recording.Log.Count, options))
        {
            result.CrashPoints++;
            var lower = recording.LowerBound(point);
            var upper = recording.UpperBound(point);
            foreach (var state in enumerator.CandidatesAt(point))
            {
                result.Candidates++;
                if (!checkedBounds.Add((state.ContentHash, lower, upper)))
                    continue;
                if (!outcomes.TryGetValue(state.ContentHash, out var outcome))
                {
                    if (result.StatesMounted >= options.MaxStates)
                    {
                        result.Capped = true;
                        break;
                    }
                    using (var device = images.Materialise(state))
                        outcome = CheckState(device, recording);
                    outcomes[state.ContentHash] = outcome;
                    result.StatesMounted++;
                    result.IgnoredBsets += outcome.IgnoredBsets;
                    if (outcome.K >= 0)
                        result.KHistogram[outcome.K] = result.KHistogram.GetValueOrDefault(outcome.K) + 1;
                }
                else
                {
                    result.BoundsRechecked++;
                }

                var problem = outcome.Problem;
                if (problem is null && (outcome.K < lower || outcome.K > upper))
                    problem = $"counter k = {outcome.K} outside [{lower}, {upper}] (last Sync returned, last Sync started)";
                if (problem is not null)
                {
                    result.Violations.Add($"{state}: {problem}");
                    if (result.Violations.Count >= options.MaxViolations)
                    {
                        result.Capped = true;
                        break;
                    }
                }
            }
            if (result.Capped)
                break;
        }
        result.Elapsed = clock.Elapsed;
        return result;
    }

    private static IEnumerable<int> CrashPoints(int writes, BtreeCrashSearchOptions options)
    {
        if (options.SampledCrashPoints is not { } sample || sample >= writes)
            return Enumerable.Range(0, writes + 1);
        var random = new Random(options.Seed ^ 0x5EED);
        var points = new SortedSet<int> { writes };
        while (points.Count < sample + 1)
            points.Add(random.Next(writes));
        return points;
    }

    private readonly record struct StateOutcome(int K, string? Problem, int IgnoredBsets);

    /// <summary>Mounts one state and checks everything that does not depend on the crash point.</summary>
    private static StateOutcome CheckState(IBlockDevice device, BtreeCrashRecording recording)
    {
        var reads = new List<(BtreeId Btree, byte Level, BtreePtrValue Ptr, NodeReadResult Result)>();
        var options = new BtreeEngineOptions
        {
            CacheBudgetBytes = 64L * 1024 * 1024,
            NodeReadObserver = (btree, level, ptr, result) => reads.Add((btree, level, ptr, result)),
            Random = new Random(1),
        };
        var k = -1;
        try
        {
            using var engine = CrashMount.Mount(device, options, new RefusingRootCommitter(), out _);
            if (engine.MountProblems.Count > 0)
                return new(k, "mount problems: " + string.Join("; ", engine.MountProblems), 0);
            var tree = engine[BtreeId.Test];

            if (tree.TryGet(BtreeCrashWorkload.CounterPos, out var counter))
            {
                k = BtreeCrashWorkload.ReadCounter(counter);
                if (k < 1 || k >= recording.Snapshots.Count)
                    return new(-1, $"counter key holds {Convert.ToHexString(counter)}, not a transaction number", 0);
            }
            else
            {
                k = 0;
            }

            var problem = CompareWithSnapshot(tree, recording.Snapshots[k], k)
                ?? CheckEveryNodeRead(tree, reads);
            return new(k, problem, reads.Sum(r => r.Result.IgnoredBsetsBeyondWritten));
        }
        catch (Exception e)
        {
            var findings = reads.Where(r => !r.Result.Ok || r.Result.Findings.Count > 0)
                .Select(r => $" [{Describe(r.Btree, r.Level, r.Ptr)}: {r.Result.ToText()}]");
            return new(k, $"mount or scan threw {e.GetType().Name}: {e.Message}{string.Concat(findings)}", 0);
        }
    }

    /// <summary>A forward scan is strictly sorted and equals the snapshot, keys and values.</summary>
    private static string? CompareWithSnapshot(Basalt.Btree.Btree tree, SortedDictionary<Bpos, byte[]> snapshot, int k)
    {
        using var expected = snapshot.GetEnumerator();
        var it = tree.Iterate(Bpos.Min, Bpos.Max);
        var n = 0;
        Bpos? previous = null;
        while (it.MoveNext())
        {
            var pos = it.Key.Pos;
            if (previous is { } p && pos <= p)
                return $"scan not sorted: {pos.ToText()} after {p.ToText()}";
            previous = pos;
            if (!expected.MoveNext())
                return $"snapshot {k}: extra key {pos.ToText()} after {n} keys";
            if (expected.Current.Key != pos)
                return $"snapshot {k}: key {n} is {pos.ToText()}, expected {expected.Current.Key.ToText()}";
            if (!expected.Current.Value.AsSpan().SequenceEqual(it.Value))
                return $"snapshot {k}: value of {pos.ToText()} differs";
            n++;
        }
        return expected.MoveNext() ? $"snapshot {k}: key {expected.Current.Key.ToText()} missing (scan ended after {n} keys)" : null;
    }

    /// <summary>Every reachable node was read once, cleanly: the root plus one node per child pointer.</summary>
    private static string? CheckEveryNodeRead(Basalt.Btree.Btree tree, List<(BtreeId Btree, byte Level, BtreePtrValue Ptr, NodeReadResult Result)> reads)
    {
        foreach (var (btree, level, ptr, result) in reads)
        {
            if (!result.Ok || result.Findings.Count > 0)
                return $"node read with findings: {Describe(btree, level, ptr)}: {result.ToText()}";
        }
        if (tree.Root is not { } root)
            return reads.Count == 0 ? null : $"empty btree but {reads.Count} node reads";
        BtreeAssertions.AssertTopology(tree);
        var expected = new HashSet<long> { root.Ptr.Ptrs[0].OffsetBytes };
        var ranges = new List<(Bpos Min, Bpos Max)>();
        for (var level = (byte)1; level <= root.Level; level++)
        {
            var it = tree.Iterate(Bpos.Min, Bpos.Max, level: level);
            while (it.MoveNext())
            {
                if (!BtreePtrValue.TryRead(it.Value, out var ptr, out var problem))
                    return $"level {level} pointer at {it.Key.Pos.ToText()}: {problem}";
                if (!expected.Add(ptr.Ptrs[0].OffsetBytes))
                    return $"level {level} pointer at {it.Key.Pos.ToText()}: slot {ptr.Ptrs[0].OffsetBytes} reachable twice";
                ranges.Add((ptr.MinKey, it.Key.Pos));
            }
        }
        // Every node's range is covered by its parent's children: a lookup at both ends of every
        // node's range descends without a topology error (a node whose last child pointer ends
        // before its own max key fails here, which the per-level tiling above cannot see).
        foreach (var (min, max) in ranges)
        {
            tree.TryGet(min, out _);
            tree.TryGet(max, out _);
        }
        var read = reads.Select(r => r.Ptr.Ptrs[0].OffsetBytes).ToHashSet();
        if (!read.SetEquals(expected))
            return $"{expected.Count} reachable nodes but {read.Count} distinct nodes read ({reads.Count} reads)";
        return null;
    }

    private static string Describe(BtreeId btree, byte level, BtreePtrValue ptr) => $"{btree.ToText()} level {level} {ptr.ToText()}";

    /// <summary>The image holding every write of earlier epochs, advanced as crash points ascend.</summary>
    private sealed class DurableImage(byte[] baseImage, WriteLog log)
    {
        private readonly byte[] _image = baseImage.ToArray();
        private int _applied;

        public MemoryBlockDevice Materialise(CrashState state)
        {
            if (state.DurableCount < _applied)
            {
                baseImage.CopyTo(_image, 0);
                _applied = 0;
            }
            for (; _applied < state.DurableCount; _applied++)
                Apply(_image, log.Writes[_applied], log.Writes[_applied].Sectors);
            var device = new MemoryBlockDevice(_image, $"crash state {state.CrashPoint}/{state.Kind}");
            foreach (var i in state.Applied)
                Apply(device.Contents, log.Writes[i], log.Writes[i].Sectors);
            if (state.TornWrite >= 0)
                Apply(device.Contents, log.Writes[state.TornWrite], state.TornSectors);
            return device;
        }

        private static void Apply(Span<byte> image, RecordedWrite write, int sectors)
        {
            var length = sectors * FormatLimits.SectorSize;
            var target = image.Slice(checked((int)write.Offset), length);
            if (write.Data is null)
                target.Clear();
            else
                write.Data.AsSpan(0, length).CopyTo(target);
        }
    }
}
