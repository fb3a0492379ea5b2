// The `debug load` workload under lost writes: the load runs in process, multi-threaded with the
// journal's own threads, on a recorded device; then crash states of the recording — any subset of
// the writes since the last completed flush, torn last writes included — are recovered and
// verified with the load's own checker. Each thread must be at or past the last transaction it
// reported durable before the crash point, with exactly the keys its counter calls for; a few
// states are written to files and checked through `basalt debug load --verify` as well. The
// must-fail check drops every flush and expects the oracle to notice.
using System.Text.Json;
using Basalt.Cli;
using Basalt.Devices;
using Basalt.Fs;
using Basalt.Journal;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Crash;

public sealed class LoadCrashStateTests(ITestOutputHelper output)
{
    private const int Threads = 2;

    private sealed record Recording(byte[] BaseImage, WriteLog Log, LoadParameters Parameters, List<(int Thread, long Transaction, int LogCount)> Durable,
        long[] BaseCounters)
    {
        /// <summary>The last transaction of <paramref name="thread"/> reported durable before crash point <paramref name="crashPoint"/>.</summary>
        public long LowerBound(int thread, int crashPoint)
        {
            var bound = BaseCounters[thread];
            foreach (var d in Durable)
            {
                // The flush completed before the report, and so before the log held LogCount writes.
                if (d.Thread == thread && d.LogCount < crashPoint)
                    bound = Math.Max(bound, d.Transaction);
            }
            return bound;
        }
    }

    private Recording Record(int seed, bool dropFlushes)
    {
        RecordingBlockDevice? recorder = null;
        using var fx = new BtreeFixture(nodeSize: 1024, blockSize: 512, slots: 600, seed: seed,
            decorate: d =>
            {
                recorder = new RecordingBlockDevice(d) { Recording = false };
                return dropFlushes ? new FlushDroppingDevice(recorder) : recorder;
            },
            journalBuckets: 8, bucketSize: 4096,
            journal: new JournalOptions
            {
                FlushDelay = TimeSpan.FromMilliseconds(2),
                ReclaimInterval = TimeSpan.FromMilliseconds(1),
                WriteBackAge = TimeSpan.FromMilliseconds(5),
            });
        var p = LoadRunner.Prepare(fx.Fs, new LoadFlags(seed, Threads, 24, 120), out var created);
        Assert.True(created);
        // A first run, unmounted cleanly: the base image already holds counters.
        LoadRunner.Run(fx.Fs, p, new LoadRunOptions { Transactions = 10, FlushEvery = 5 }, (_, _) => { });
        fx.CleanRemount();
        var baseCounters = Enumerable.Range(0, Threads).Select(t => LoadRunner.ReadCounter(fx.Fs, p, t)).ToArray();
        Assert.Equal([10L, 10L], baseCounters);
        var baseImage = DevicesTestKit.Capture(fx.Memory);
        recorder!.Recording = true;

        var durable = new List<(int, long, int)>();
        var result = LoadRunner.Run(fx.Fs, p, new LoadRunOptions { Transactions = 120, FlushEvery = 3 }, (t, i) =>
        {
            lock (durable)
                durable.Add((t, i, recorder.Log.Count));
        });
        Assert.All(result.Threads, t => Assert.Equal(130, t.Last));
        fx.Fs.Close(sync: false);
        return new Recording(baseImage, recorder.Log, p, durable, baseCounters);
    }

    /// <summary>Null when the state recovers every durable commit with exactly the expected keys; else what is wrong.</summary>
    private static string? Check(Recording recording, CrashState state, IBlockDevice device)
    {
        using var fs = BasaltFileSystem.Mount(device, new MountOptions { ReadOnly = true });
        var differences = new List<LoadDifference>();
        var v = LoadVerifier.Verify(fs, recording.Parameters, counters: null, differences.Add);
        if (differences.Count > 0)
            return $"{differences.Count} differences, the first {differences[0].ToText()}";
        foreach (var t in v.Threads)
        {
            var bound = recording.LowerBound(t.Thread, state.CrashPoint);
            if (t.Recovered < bound)
                return $"thread {t.Thread} recovered transaction {t.Recovered}, but {bound} had been reported durable";
        }
        return null;
    }

    [Fact]
    public void Every_crash_state_of_a_load_holds_every_durable_commit_and_exactly_the_keys_its_counters_name()
    {
        var seed = TestSeed.Get(output, nameof(Every_crash_state_of_a_load_holds_every_durable_commit_and_exactly_the_keys_its_counters_name));
        var recording = Record(seed, dropFlushes: false);
        var log = recording.Log;
        output.WriteLine($"recorded {log.Count} writes, {log.Flushes.Count} flushes, {recording.Durable.Count} durable reports");
        Assert.True(log.Flushes.Count > 20, "the run flushed often");

        var random = new Random(seed);
        var enumerator = new CrashStateEnumerator(log, new CrashStateOptions { Seed = seed, RandomSubsets = 4, MaxTornVariants = 2 });
        var points = Enumerable.Range(0, LongTests.Scale(40)).Select(_ => random.Next(log.Count + 1)).Append(log.Count).Distinct().Order().ToList();
        int states = 0, torn = 0, partial = 0;
        var highest = new long[Threads];
        var viaCli = new List<(CrashState State, byte[] Image)>();
        foreach (var point in points)
        {
            var all = enumerator.StatesAt(point);
            // Every torn and drop-one state of the point, and a seeded sample of the rest.
            var chosen = all.Where(s => s.Kind is CrashStateKind.Torn or CrashStateKind.DropOne).Take(6)
                .Concat(all.Where(s => s.Kind is CrashStateKind.Prefix or CrashStateKind.RandomSubset).OrderBy(_ => random.Next()).Take(4));
            foreach (var state in chosen)
            {
                using var device = state.MaterialiseInMemory(recording.BaseImage);
                var problem = Check(recording, state, device);
                Assert.True(problem is null, $"seed {seed}, {state}: {problem}");
                states++;
                torn += state.Kind == CrashStateKind.Torn ? 1 : 0;
                partial += state.Applied.Count + state.DurableCount < state.CrashPoint ? 1 : 0;
                for (var t = 0; t < Threads; t++)
                    highest[t] = Math.Max(highest[t], recording.LowerBound(t, point));
                if (viaCli.Count < 3 && state.Kind != CrashStateKind.Prefix && random.Next(8) == 0)
                    viaCli.Add((state, device.Contents.ToArray()));
            }
        }
        output.WriteLine($"{points.Count} crash points, {states} states checked ({torn} torn, {partial} missing some write), " +
                         $"durable bounds reached: {string.Join(", ", highest)}");
        Assert.True(torn > 0 && partial > 0, "torn writes and lost writes were both exercised");
        Assert.All(highest, h => Assert.True(h > 100, $"a bound of {h}: the crash points reach late durable reports"));

        // The same verdict from the command line, on image files.
        Assert.NotEmpty(viaCli);
        using var dir = new TempDirectory("load-crash");
        foreach (var (state, image) in viaCli)
        {
            var path = dir.File($"state-{state.CrashPoint}.img");
            File.WriteAllBytes(path, image);
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var code = Program.Run(["debug", "load", "--verify", "--json", path], stdout, stderr);
            Assert.True(code == 0, $"{state}: exit {code}: {stdout}{stderr}");
            using var doc = JsonDocument.Parse(stdout.ToString());
            foreach (var t in doc.RootElement.GetProperty("threads").EnumerateArray())
            {
                var thread = t.GetProperty("thread").GetInt32();
                Assert.True(t.GetProperty("recovered").GetInt64() >= recording.LowerBound(thread, state.CrashPoint), $"{state}: thread {thread}");
            }
        }
        output.WriteLine($"{viaCli.Count} states verified through basalt debug load --verify");
    }

    [Fact]
    public void Dropping_every_flush_makes_the_oracle_fail()
    {
        var seed = TestSeed.Get(output, nameof(Dropping_every_flush_makes_the_oracle_fail));
        var recording = Record(seed, dropFlushes: true);
        Assert.Empty(recording.Log.Flushes);
        Assert.NotEmpty(recording.Durable);

        // With no flush on record the whole run is one epoch: a crash after the last write may have
        // lost all of it, although the load reported durable commits.
        var none = new CrashStateEnumerator(recording.Log, new CrashStateOptions { DropOne = false, RandomSubsets = 0, Torn = false })
            .CandidatesAt(recording.Log.Count).First();
        Assert.Empty(none.Applied);
        using var device = none.MaterialiseInMemory(recording.BaseImage);
        var problem = Check(recording, none, device);
        Assert.NotNull(problem);
        Assert.Contains("recovered transaction 10, but", problem, StringComparison.Ordinal);
    }
}
