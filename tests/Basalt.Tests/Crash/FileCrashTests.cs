// The filesystem crash suite (FileCrashWorkload): every one-operation sequence and a seeded sample
// of two- and three-operation sequences (the long form, BASALT_LONG=1: every two-operation
// sequence too); every crash state of each must pass fsck -n with no finding, mount, and show the
// tree after some operation k within its bounds.
using System.Diagnostics;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Crash;

public sealed class FileCrashTests(ITestOutputHelper output)
{
    private sealed class Totals
    {
        public int Sequences;
        public int CrashPoints;
        public int States;
        public readonly SortedDictionary<int, int> KHistogram = [];
        public readonly List<string> Violations = [];
    }

    [Fact]
    public void Every_one_operation_sequence_recovers_an_allowed_state_at_every_crash_point()
    {
        var seed = TestSeed.Get(output);
        var totals = new Totals();
        var clock = Stopwatch.StartNew();
        var sequences = Enum.GetValues<FileOpKind>()
            .SelectMany(kind => Enumerable.Range(0, LongTests.Scale(4, 5)).Select(variant => (Ops: new[] { kind }, Seed: seed + (variant * 7919) + (int)kind)))
            .ToList();
        Parallel.ForEach(sequences, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, s => Search(s.Ops, s.Seed, totals));
        Report(totals, clock);
        Assert.True(totals.Violations.Count == 0, string.Join("\n", totals.Violations.Take(10)));
        Assert.True(totals.States >= 1000, $"only {totals.States} distinct crash states");
    }

    [Fact]
    public void A_seeded_sample_of_two_and_three_operation_sequences_recovers_allowed_states()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        var kinds = Enum.GetValues<FileOpKind>();
        var totals = new Totals();
        var clock = Stopwatch.StartNew();
        var sequences = Enumerable.Range(0, LongTests.Scale(80, 20))
            .Select(_ => (Ops: Enumerable.Range(0, 2 + random.Next(2)).Select(_ => kinds[random.Next(kinds.Length)]).ToArray(), Seed: random.Next()))
            .ToList();
        Parallel.ForEach(sequences, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, s => Search(s.Ops, s.Seed, totals));
        Report(totals, clock);
        Assert.True(totals.Violations.Count == 0, string.Join("\n", totals.Violations.Take(10)));
    }

    /// <summary>
    /// The long form (BASALT_LONG=1): every ordered pair of operation types, two seeds each.
    /// </summary>
    [SkippableFact]
    public void Every_two_operation_sequence_recovers_allowed_states()
    {
        Skip.IfNot(LongTests.Enabled, "the exhaustive two-operation set runs with BASALT_LONG=1");
        var seed = TestSeed.Get(output);
        var kinds = Enum.GetValues<FileOpKind>();
        var totals = new Totals();
        var clock = Stopwatch.StartNew();
        var sequences = (from a in kinds from b in kinds from variant in Enumerable.Range(0, 2)
                         select (Ops: new[] { a, b }, Seed: seed + (variant * 104_729) + ((int)a * 31) + (int)b)).ToList();
        Parallel.ForEach(sequences, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, s => Search(s.Ops, s.Seed, totals));
        Report(totals, clock);
        Assert.True(totals.Violations.Count == 0, string.Join("\n", totals.Violations.Take(10)));
        Assert.Equal(kinds.Length * kinds.Length * 2, totals.Sequences);
    }

    [Theory]
    [InlineData(nameof(FilesDebugFault.FsyncWithoutFlush))]
    [InlineData(nameof(FilesDebugFault.RenameInTwoTransactions))]
    public void A_file_layer_ordering_bug_is_caught(string faultName)
    {
        var fault = Enum.Parse<FilesDebugFault>(faultName);
        // Must fail: an fsync that flushes nothing loses a file it promised; a rename in two
        // transactions shows both names. Each sequence below meets its bug on every seed.
        FileOpKind[] ops = fault == FilesDebugFault.FsyncWithoutFlush
            ? [FileOpKind.Write, FileOpKind.Fsync, FileOpKind.SetXattr]
            : [FileOpKind.Rename];
        var totals = new Totals();
        for (var seed = 1; seed <= 6 && totals.Violations.Count == 0; seed++)
            Search(ops, seed, totals, fault);
        output.WriteLine(totals.Violations.FirstOrDefault() ?? "no violation");
        Assert.True(totals.Violations.Count > 0, $"the {fault} bug went unnoticed in {totals.States} crash states");
    }

    private void Report(Totals totals, Stopwatch clock) =>
        output.WriteLine($"{totals.Sequences} sequences, {totals.CrashPoints} crash points, {totals.States} distinct crash states mounted, " +
            $"k histogram [{string.Join(", ", totals.KHistogram.Select(kv => $"{kv.Key}:{kv.Value}"))}], {totals.Violations.Count} violations, " +
            $"{clock.Elapsed.TotalSeconds:F1} s");

    private static void Search(IReadOnlyList<FileOpKind> ops, int seed, Totals totals, FilesDebugFault fault = FilesDebugFault.None)
    {
        var recording = FileCrashWorkload.Record(ops, seed, fault);
        lock (totals)
            totals.Sequences++;
        var enumerator = new CrashStateEnumerator(recording.Log, new CrashStateOptions { Seed = seed, RandomSubsets = 4, MaxTornVariants = 2 });
        var images = new JournalCrashSearch.DurableImage(recording.BaseImage, recording.Log);
        var outcomes = new Dictionary<ulong, (string? Capture, string? Problem)>();
        var scratch = new byte[recording.BaseImage.Length];
        foreach (var point in enumerator.CrashPoints)
        {
            lock (totals)
                totals.CrashPoints++;
            var lower = recording.LowerBound(point);
            var upper = recording.UpperBound(point);
            foreach (var state in enumerator.CandidatesAt(point))
            {
                if (!outcomes.TryGetValue(state.ContentHash, out var outcome))
                {
                    images.MaterialiseInto(state, scratch);
                    outcome = Check(scratch, state.ToString());
                    outcomes[state.ContentHash] = outcome;
                    lock (totals)
                        totals.States++;
                }
                var where = $"ops [{recording.Sequence}] seed {seed}, {state} (k in [{lower}, {upper}])";
                if (outcome.Problem is not null)
                {
                    lock (totals)
                        totals.Violations.Add($"{where}: {outcome.Problem}");
                    return;
                }
                var k = -1;
                for (var i = lower; i <= upper && i < recording.Captures.Count; i++)
                {
                    if (recording.Captures[i] == outcome.Capture)
                    {
                        k = i;
                        break;
                    }
                }
                if (k < 0)
                {
                    var any = recording.Captures.ToList().IndexOf(outcome.Capture!);
                    lock (totals)
                        totals.Violations.Add($"{where}: the recovered tree is {(any < 0 ? "no state of the history" : $"the state after {any} operations")}:\n{outcome.Capture}\nexpected one of:\n"
                        + string.Join("--\n", recording.Captures.Skip(lower).Take(upper - lower + 1)));
                    return;
                }
                lock (totals)
                    totals.KHistogram[k] = totals.KHistogram.GetValueOrDefault(k) + 1;
            }
        }
    }

    private static (string? Capture, string? Problem) Check(byte[] image, string name)
    {
        try
        {
            using var device = MemoryBlockDevice.Wrap(image, name);
            var report = Basalt.Fsck.Fsck.Run(device, new Basalt.Fsck.FsckOptions
            {
                Mode = Basalt.Fsck.FsckMode.CheckOnly,
                Journal = new Basalt.Journal.JournalOptions { Manual = true },
            });
            if (report.Findings.Count > 0)
                return (null, "fsck -n: " + string.Join("; ", report.Findings.Select(f => f.ToText())));
            using var fs = BasaltFileSystem.Mount(device, FileCrashWorkload.Mount());
            if (fs.Recovery.Damage.FirstOrDefault(d => d.Id is FsckErrorId.JournalEntriesMissing or FsckErrorId.JournalSeqBlacklistedFlush
                    or FsckErrorId.JournalLastSeqNewerThanSeq) is { } damage)
                return (null, $"recovery: {damage.ToText()}");
            if (fs.Files.Orphans().Count > 0)
                return (null, $"orphans left after mount: {string.Join(", ", fs.Files.Orphans())}");
            return (FileCrashWorkload.Capture(fs.Files), null);
        }
        catch (Exception e)
        {
            return (null, $"mount or capture threw {e.GetType().Name}: {e.Message}");
        }
    }
}
