// Walks the crash states of a recorded workload (DESIGN §5) and checks each against the oracle:
//   - the state mounts (recovery: journal read, validated, replayed) with no journal finding: a
//     crash may lose unflushed entries and tear the last write, never a flushed one;
//   - its counter key k lies in [last flush returned, last commit] for the crash point;
//   - a full scan of the test btree equals the model's snapshot k (keys, types, values) and the
//     counted-keys summary matches the keys;
//   - every node read during the mount and scan read cleanly (bsets beyond sectors_written and
//     blacklisted bsets are only counted);
//   - fsck -n on the state reports no finding.
// States are generated per crash point by CrashStateEnumerator (prefixes, drop-one, seeded random
// subsets, torn last write) and deduplicated by content hash; a content seen before is re-checked
// only against new bounds. For a sample of states the recovering mount itself is recorded (mount,
// one commit, clean unmount) and every crash state of that recording must recover the same k.
using System.Diagnostics;
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Journal;
using Basalt.Transactions;

namespace Basalt.Tests.Crash;

internal sealed record JournalCrashSearchOptions
{
    public int Seed { get; init; }

    /// <summary>Check this many crash points chosen at random (plus the last); null checks every crash point.</summary>
    public int? SampledCrashPoints { get; init; }

    /// <summary>Only crash points in this range (inclusive; null: all).</summary>
    public (int First, int Last)? CrashPointRange { get; init; }

    public int MaxStates { get; init; } = int.MaxValue;

    /// <summary>Stop after this many violations (the must-fail checks stop at the first).</summary>
    public int MaxViolations { get; init; } = 10;

    public TimeSpan? TimeLimit { get; init; }

    public int RandomSubsets { get; init; } = 8;
    public int MaxTornVariants { get; init; } = 4;

    /// <summary>Every this many distinct states, record the recovering mount and check its crash states too (0: never).</summary>
    public int RecoveryRecordingEvery { get; init; }

    /// <summary>Run fsck -n on every state (the suite does; the must-fail searches may skip it for speed).</summary>
    public bool Fsck { get; init; } = true;
}

internal sealed class JournalCrashSearchResult
{
    public int CrashPoints { get; set; }
    public int Candidates { get; set; }
    public int StatesMounted { get; set; }
    public int BoundsRechecked { get; set; }
    public int RecoveryStates { get; set; }
    public long IgnoredBsets { get; set; }
    public long BlacklistedBsets { get; set; }
    public bool Capped { get; set; }
    public TimeSpan Elapsed { get; set; }
    public List<string> Violations { get; } = [];
    public SortedDictionary<int, int> KHistogram { get; } = [];

    public string ToText() =>
        $"{CrashPoints} crash points, {Candidates} candidate states, {StatesMounted} distinct states mounted, " +
        $"{BoundsRechecked} re-checked for bounds, {RecoveryStates} crash states of recovering mounts, " +
        $"{IgnoredBsets} bsets beyond sectors_written and {BlacklistedBsets} blacklisted bsets ignored, " +
        $"{KHistogram.Count} distinct k, {Violations.Count} violations{(Capped ? " (capped)" : "")}, {Elapsed.TotalSeconds:F1} s";
}

internal static class JournalCrashSearch
{
    public static JournalCrashSearchResult Run(JournalCrashRecording recording, JournalCrashSearchOptions options)
    {
        var clock = Stopwatch.StartNew();
        var result = new JournalCrashSearchResult();
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
                    if (result.StatesMounted >= options.MaxStates || (options.TimeLimit is { } limit && clock.Elapsed > limit))
                    {
                        result.Capped = true;
                        break;
                    }
                    var image = images.Materialise(state);
                    outcome = CheckState(image, state.ToString(), recording, options);
                    outcomes[state.ContentHash] = outcome;
                    result.StatesMounted++;
                    result.IgnoredBsets += outcome.IgnoredBsets;
                    result.BlacklistedBsets += outcome.BlacklistedBsets;
                    if (outcome.K >= 0)
                        result.KHistogram[outcome.K] = result.KHistogram.GetValueOrDefault(outcome.K) + 1;
                    if (outcome.Problem is null && options.RecoveryRecordingEvery > 0 && result.StatesMounted % options.RecoveryRecordingEvery == 0)
                    {
                        var (states, problem) = CheckRecoveringMount(image, outcome.K, recording, options);
                        result.RecoveryStates += states;
                        if (problem is not null)
                            outcome = outcome with { Problem = $"recovering mount: {problem}" };
                    }
                }
                else
                {
                    result.BoundsRechecked++;
                }

                var violation = outcome.Problem;
                if (violation is null && (outcome.K < lower || outcome.K > upper))
                    violation = $"counter k = {outcome.K} outside [{lower}, {upper}] (last flush returned, last commit)";
                if (violation is not null)
                {
                    result.Violations.Add($"{state} (lower {lower}, upper {upper}): {violation}");
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

    private static IEnumerable<int> CrashPoints(int writes, JournalCrashSearchOptions options)
    {
        if (options.CrashPointRange is { } range)
            return Enumerable.Range(range.First, Math.Min(range.Last, writes) - range.First + 1);
        if (options.SampledCrashPoints is not { } sample || sample >= writes)
            return Enumerable.Range(0, writes + 1);
        var random = new Random(options.Seed ^ 0x5EED);
        var points = new SortedSet<int> { writes };
        while (points.Count < sample + 1)
            points.Add(random.Next(writes));
        return points;
    }

    internal readonly record struct StateOutcome(int K, string? Problem, long IgnoredBsets, long BlacklistedBsets);

    /// <summary>Mounts one state read-only and checks everything that does not depend on the crash point.</summary>
    internal static StateOutcome CheckState(byte[] image, string name, JournalCrashRecording recording, JournalCrashSearchOptions options)
    {
        var reads = new List<(BtreeId Btree, byte Level, BtreePtrValue Ptr, NodeReadResult Result)>();
        var k = -1;
        try
        {
            using var device = new MemoryBlockDevice(image, name);
            using (var fs = BasaltFileSystem.Mount(device, new MountOptions
            {
                ReadOnly = true,
                Engine = new BtreeEngineOptions { NodeReadObserver = (b, l, p, r) => reads.Add((b, l, p, r)), Random = new Random(1) },
                Journal = new JournalOptions { Manual = true },
            }))
            {
                if (fs.Recovery.Damage.FirstOrDefault(d => d.Id is FsckErrorId.JournalEntriesMissing or FsckErrorId.JournalSeqBlacklistedFlush
                        or FsckErrorId.JournalCleanMismatch or FsckErrorId.JournalLastSeqNewerThanSeq) is { } damage)
                    return new(k, $"recovery: {damage.ToText()}", 0, 0);
                if (fs.Btrees.MountProblems.Count > 0)
                    return new(k, "mount problems: " + string.Join("; ", fs.Btrees.MountProblems), 0, 0);
                if (fs.Recovery.Unreplayed.Count > 0)
                    return new(k, "keys not replayed: " + string.Join("; ", fs.Recovery.Unreplayed.Select(u => u.Reason)), 0, 0);
                var tree = fs.Btrees[BtreeId.Test];
                k = tree.TryGet(JournalCrashWorkload.CounterPos, out var counter) ? JournalCrashWorkload.ReadCounter(counter) : 0;
                if (k < 0 || k >= recording.Snapshots.Count)
                    return new(-1, $"counter key holds {Convert.ToHexString(counter)}, not a transaction number", 0, 0);
                var problem = CompareWithSnapshot(tree, recording.Snapshots[k], k)
                    ?? CompareData(fs, recording, k)
                    ?? CountedKeys.CheckSummary(tree)
                    ?? BadReads(reads);
                if (problem is not null)
                    return new(k, problem, 0, 0);
                var stats = fs.Btrees.Stats;
                if (options.Fsck)
                {
                    var report = Basalt.Fsck.Fsck.Run(device, new Basalt.Fsck.FsckOptions { Mode = Basalt.Fsck.FsckMode.CheckOnly });
                    if (report.Findings.Count > 0)
                        return new(k, "fsck -n: " + string.Join("; ", report.Findings.Select(f => f.ToText())), 0, 0);
                }
                return new(k, null, stats.IgnoredBsetsBeyondWritten, stats.BlacklistedBsets);
            }
        }
        catch (Exception e)
        {
            var findings = reads.Where(r => !r.Result.Ok || r.Result.Findings.Count > 0)
                .Select(r => $" [{r.Btree.ToText()} level {r.Level} {r.Ptr.ToText()}: {r.Result.ToText()}]");
            return new(k, $"mount or scan threw {e.GetType().Name}: {e.Message}{string.Concat(findings)}", 0, 0);
        }
    }

    /// <summary>
    /// Mounts the state read-write on a recording device (recovery writes: dirty superblock, the first
    /// entry, maybe a checkpoint), commits nothing new, unmounts cleanly; every crash state of that
    /// recording must recover the same transaction.
    /// </summary>
    private static (int States, string? Problem) CheckRecoveringMount(byte[] image, int k, JournalCrashRecording recording, JournalCrashSearchOptions options)
    {
        var copy = image.ToArray();
        var memory = new MemoryBlockDevice(copy.ToArray(), "recovering mount");
        var recorder = new RecordingBlockDevice(memory);
        using (var fs = BasaltFileSystem.Mount(recorder, new MountOptions { Journal = new JournalOptions { Manual = true } }))
        {
            fs.Sync();
        }
        var enumerator = new CrashStateEnumerator(recorder.Log, new CrashStateOptions { Seed = options.Seed, RandomSubsets = 4, MaxTornVariants = 2 });
        var images = new DurableImage(copy, recorder.Log);
        var seen = new HashSet<ulong>();
        var states = 0;
        foreach (var state in enumerator.AllStates())
        {
            if (!seen.Add(state.ContentHash))
                continue;
            states++;
            var outcome = CheckState(images.Materialise(state), $"recovering {state}", recording, options with { Fsck = false });
            if (outcome.Problem is not null)
                return (states, $"{state}: {outcome.Problem}");
            if (outcome.K != k)
                return (states, $"{state}: recovered k = {outcome.K}, the state before recovery held {k}");
        }
        return (states, null);
    }

    private static string? CompareWithSnapshot(Basalt.Btree.Btree tree, SortedDictionary<Bpos, (KeyType Type, byte[] Value)> snapshot, int k)
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
            if (expected.Current.Value.Type != it.Key.Type || !expected.Current.Value.Value.AsSpan().SequenceEqual(it.Value))
                return $"snapshot {k}: key {pos.ToText()} differs ({it.Key.Type.ToText()}, expected {expected.Current.Value.Type.ToText()})";
            n++;
        }
        return expected.MoveNext() ? $"snapshot {k}: key {expected.Current.Key.ToText()} missing (scan ended after {n} keys)" : null;
    }

    /// <summary>Data mode: every inode reads back as snapshot k has it, zeros past its end, no read error.</summary>
    private static string? CompareData(BasaltFileSystem fs, JournalCrashRecording recording, int k)
    {
        if (recording.DataSnapshots is not { } snapshots)
            return null;
        for (var inode = JournalCrashWorkload.FirstDataInode; inode < JournalCrashWorkload.FirstDataInode + (ulong)recording.Options.DataInodes; inode++)
        {
            var expected = snapshots[k].GetValueOrDefault(inode) ?? [];
            var read = new byte[recording.Options.DataSpan + (64 * 1024)];
            try
            {
                fs.Data.Read(inode, 0, read);
            }
            catch (Basalt.Diagnostics.BasaltException e)
            {
                return $"snapshot {k}: inode {inode}: {e.Message}";
            }
            var differs = read.AsSpan(0, expected.Length).CommonPrefixLength(expected);
            if (differs < expected.Length)
                return $"snapshot {k}: inode {inode} differs at byte {differs}";
            var extra = read.AsSpan(expected.Length).IndexOfAnyExcept((byte)0);
            if (extra >= 0)
                return $"snapshot {k}: inode {inode} has data at byte {expected.Length + extra}, past its {expected.Length} bytes";
        }
        return null;
    }

    private static string? BadReads(List<(BtreeId Btree, byte Level, BtreePtrValue Ptr, NodeReadResult Result)> reads)
    {
        foreach (var (btree, level, ptr, result) in reads)
        {
            if (!result.Ok || result.Findings.Count > 0)
                return $"node read with findings: {btree.ToText()} level {level} {ptr.ToText()}: {result.ToText()}";
        }
        return null;
    }

    /// <summary>The image holding every write of earlier epochs, advanced as crash points ascend.</summary>
    internal sealed class DurableImage(byte[] baseImage, WriteLog log)
    {
        private readonly byte[] _image = baseImage.ToArray();
        private int _applied;

        public byte[] Materialise(CrashState state)
        {
            var copy = new byte[_image.Length];
            MaterialiseInto(state, copy);
            return copy;
        }

        /// <summary>Writes the state's bytes into <paramref name="target"/> (the image's size), allocating nothing.</summary>
        public void MaterialiseInto(CrashState state, byte[] target)
        {
            if (state.DurableCount < _applied)
            {
                baseImage.CopyTo(_image, 0);
                _applied = 0;
            }
            for (; _applied < state.DurableCount; _applied++)
                Apply(_image, log.Writes[_applied], log.Writes[_applied].Sectors);
            _image.CopyTo(target, 0);
            var copy = target;
            foreach (var i in state.Applied)
                Apply(copy, log.Writes[i], log.Writes[i].Sectors);
            if (state.TornWrite >= 0)
                Apply(copy, log.Writes[state.TornWrite], state.TornSectors);
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
