using Basalt.Devices;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Devices.DeviceTestData;

namespace Basalt.Tests.Devices;

public sealed class CrashStateEnumeratorTests(ITestOutputHelper output)
{
    private static readonly CrashStateOptions s_noRandom = new() { RandomSubsets = 0 };

    // epoch 0: w0, w1 | flush | epoch 1: w2, w3, w4 (4 sectors) | flush | epoch 2: w5
    private static WriteLog ThreeEpochs()
    {
        var log = new WriteLog();
        log.AddWrite(0, Pattern(Sector, 0));
        log.AddWrite(Sector, Pattern(Sector, 1));
        log.AddFlush();
        log.AddWrite(2 * Sector, Pattern(Sector, 2));
        log.AddWrite(3 * Sector, Pattern(Sector, 3));
        log.AddWrite(4 * Sector, Pattern(4 * Sector, 4));
        log.AddFlush();
        log.AddWrite(8 * Sector, Pattern(Sector, 5));
        return log;
    }

    [Fact]
    public void Epochs_CountFlushesBeforeEachWrite()
    {
        var log = ThreeEpochs();
        Assert.Equal(new[] { 0, 0, 1, 1, 1, 2 }, log.Writes.Select(w => w.Epoch));
        Assert.Equal(new[] { 2, 5 }, log.Flushes);
        Assert.Equal(0, log.DurableCount(2)); // the flush at 2 has not returned when crashing before write 2
        Assert.Equal(2, log.DurableCount(3));
        Assert.Equal(2, log.DurableCount(5));
        Assert.Equal(5, log.DurableCount(6));
    }

    [Fact]
    public void StatesAt_CountsPrefixesDropOnesAndTornVariants()
    {
        var enumerator = new CrashStateEnumerator(ThreeEpochs(), s_noRandom);
        var states = enumerator.StatesAt(5);
        // current epoch {2,3,4}: prefixes {}, {2}, {2,3}, {2,3,4}; drop-one {3,4}, {2,4} ({2,3} is a prefix);
        // torn 4-sector w4 on {2,3}: 1, 2 and 3 sectors.
        Assert.Equal(9, states.Count);
        Assert.Equal(4, states.Count(s => s.Kind == CrashStateKind.Prefix));
        Assert.Equal(2, states.Count(s => s.Kind == CrashStateKind.DropOne));
        Assert.Equal(new[] { 1, 2, 3 }, states.Where(s => s.Kind == CrashStateKind.Torn).Select(s => s.TornSectors));
        Assert.All(states.Where(s => s.Kind == CrashStateKind.Torn), s => Assert.Equal(new[] { 2, 3 }, s.Applied));
        Assert.Equal(1, enumerator.DuplicatesDropped);
        Assert.All(states, s => Assert.Equal(2, s.DurableCount));
        Assert.Equal(states.Count, states.Select(s => s.ContentHash).Distinct().Count());
    }

    [Fact]
    public void CrashPointZero_IsTheBaseOnly()
    {
        var states = new CrashStateEnumerator(ThreeEpochs()).StatesAt(0);
        var state = Assert.Single(states);
        Assert.Empty(state.Applied);
        Assert.Equal(0, state.DurableCount);
        Assert.Equal(-1, state.TornWrite);
    }

    [Fact]
    public void RightAfterAFlush_OnlyTheDurableStateAndTheFlushedEpochsSubsets()
    {
        // Crash point 3: the flush at 2 returned, write 2 is the only current write.
        var states = new CrashStateEnumerator(ThreeEpochs(), s_noRandom).StatesAt(3);
        Assert.Equal(2, states.Count); // without and with w2 (1 sector: no torn variant)
        Assert.All(states, s => Assert.True(s.Contains(0) && s.Contains(1)));
    }

    [Fact]
    public void NoState_ContainsAWriteIssuedAfterTheCrashPoint()
    {
        var seed = TestSeed.Get(output);
        var log = RandomLog(new Random(seed), writes: 40, sectors: 32, flushEvery: 6, distinctPatterns: 1000);
        var enumerator = new CrashStateEnumerator(log, new CrashStateOptions { Seed = seed, RandomSubsets = 6 });
        foreach (var point in enumerator.CrashPoints)
        {
            foreach (var state in enumerator.StatesAt(point))
            {
                for (var i = 0; i < log.Count; i++)
                {
                    if (i >= point)
                        Assert.False(state.Contains(i), $"{state} contains write {i}");
                    if (i < state.DurableCount)
                        Assert.True(state.Contains(i));
                }
                Assert.All(state.Applied, i => Assert.Equal(log.Writes[point - 1].Epoch, log.Writes[i].Epoch));
                Assert.Equal(log.DurableCount(point), state.DurableCount);
            }
        }
    }

    [Fact]
    public void EqualContent_HashesEqual_AndDifferentContentHashesDifferently()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        // Few patterns and few sectors: many states coincide and must be deduplicated.
        var log = RandomLog(random, writes: 30, sectors: 12, flushEvery: 7, distinctPatterns: 3);
        var baseImage = Pattern(16 * Sector, 77);
        var enumerator = new CrashStateEnumerator(log, new CrashStateOptions { Seed = seed, RandomSubsets = 10, Prefixes = true });
        var dropped = 0;
        foreach (var point in enumerator.CrashPoints)
        {
            var candidates = enumerator.CandidatesAt(point).ToList();
            var contents = candidates.Select(s => Convert.ToHexString(ReadAll(s.MaterialiseInMemory(baseImage)))).ToList();
            for (var i = 0; i < candidates.Count; i++)
            {
                for (var j = i + 1; j < candidates.Count; j++)
                {
                    Assert.True((candidates[i].ContentHash == candidates[j].ContentHash) == (contents[i] == contents[j]),
                        $"{candidates[i]} vs {candidates[j]}: hash and content disagree");
                }
            }
            var kept = enumerator.StatesAt(point);
            Assert.Equal(contents.Distinct().Count(), kept.Count);
            dropped += candidates.Count - kept.Count;
        }
        Assert.True(dropped > 0, "the log was built to produce duplicate states");
    }

    [Fact]
    public void Materialise_AppliesDurableThenSubsetInIssueOrder()
    {
        var log = new WriteLog();
        log.AddWrite(0, Pattern(2 * Sector, 1));
        log.AddFlush();
        log.AddWrite(Sector, Pattern(2 * Sector, 2));   // overlaps the durable write
        log.AddWrite(2 * Sector, Pattern(Sector, 3));   // overlaps write 1
        log.AddDiscard(0, Sector);
        var baseImage = Pattern(8 * Sector, 9);
        var states = new CrashStateEnumerator(log, s_noRandom).StatesAt(4);
        foreach (var state in states)
        {
            var model = (byte[])baseImage.Clone();
            void Apply(RecordedWrite w, int sectors)
            {
                if (w.Data is null)
                    Array.Clear(model, (int)w.Offset, sectors * Sector);
                else
                    Array.Copy(w.Data, 0, model, w.Offset, sectors * Sector);
            }
            Apply(log.Writes[0], 2);
            foreach (var i in state.Applied)
                Apply(log.Writes[i], log.Writes[i].Sectors);
            if (state.TornWrite >= 0)
                Apply(log.Writes[state.TornWrite], state.TornSectors);

            Assert.Equal(model, ReadAll(state.MaterialiseInMemory(baseImage)));
            using var baseDevice = new MemoryBlockDevice(baseImage);
            using var overlay = state.Materialise(baseDevice);
            Assert.Equal(model, ReadAll(overlay));
            Assert.Equal(baseImage, ReadAll(baseDevice));
        }
    }

    [Fact]
    public void IdenticalRewrites_Deduplicate()
    {
        var log = new WriteLog();
        log.AddWrite(0, Pattern(Sector, 1));
        log.AddWrite(0, Pattern(Sector, 1));
        var enumerator = new CrashStateEnumerator(log, s_noRandom);
        var states = enumerator.StatesAt(2);
        Assert.Equal(2, states.Count); // base, or the sector written (once or twice: same bytes)
        Assert.Equal(3, enumerator.DuplicatesDropped); // prefix {0,1}, drop-one {1} and {0}
    }

    [Theory]
    [InlineData(1, 4, new int[0])]
    [InlineData(3, 4, new[] { 1, 2 })]
    [InlineData(5, 4, new[] { 1, 2, 3, 4 })]
    public void TornVariants_CoverEverySizeWhenFew(int sectors, int max, int[] expected)
    {
        var log = new WriteLog();
        log.AddWrite(0, Pattern(sectors * Sector, 1));
        var states = new CrashStateEnumerator(log, new CrashStateOptions { MaxTornVariants = max }).StatesAt(1);
        Assert.Equal(expected, states.Where(s => s.Kind == CrashStateKind.Torn).Select(s => s.TornSectors));
    }

    [Fact]
    public void TornVariants_OfALargeWrite_AreBoundedAndIncludeBothEnds()
    {
        var seed = TestSeed.Get(output);
        var log = new WriteLog();
        log.AddWrite(0, Pattern(100 * Sector, 1));
        var states = new CrashStateEnumerator(log, new CrashStateOptions { MaxTornVariants = 5, Seed = seed }).StatesAt(1);
        var torn = states.Where(s => s.Kind == CrashStateKind.Torn).Select(s => s.TornSectors).ToList();
        Assert.Equal(5, torn.Count);
        Assert.Contains(1, torn);
        Assert.Contains(99, torn);
        Assert.All(torn, t => Assert.InRange(t, 1, 99));
        Assert.Equal(torn.Count, torn.Distinct().Count());
    }

    [Fact]
    public void RandomSubsets_AreReproducibleFromTheSeed()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        // A flushed history, then 20 writes no flush covers: random subsets exist only for a crash point
        // with at least two unflushed writes, so the log must not leave that to chance.
        var log = new WriteLog();
        AddRandomWrites(log, random, writes: 10, sectors: 64, flushEvery: 3, distinctPatterns: 1000);
        log.AddFlush();
        AddRandomWrites(log, random, writes: 20, sectors: 64, flushEvery: null, distinctPatterns: 1000);
        var crashPoint = log.Count;
        Assert.Equal(crashPoint - 20, log.DurableCount(crashPoint));
        var options = new CrashStateOptions { Seed = seed, RandomSubsets = 12, Prefixes = false, DropOne = false, Torn = false };

        var a = new CrashStateEnumerator(log, options).StatesAt(crashPoint);
        var b = new CrashStateEnumerator(log, options).StatesAt(crashPoint);

        Assert.Equal(a.Select(s => string.Join(",", s.Applied)), b.Select(s => string.Join(",", s.Applied)));
        Assert.Equal(a.Select(s => s.ContentHash), b.Select(s => s.ContentHash));
        Assert.All(a, s => Assert.Equal(CrashStateKind.RandomSubset, s.Kind));
        Assert.InRange(a.Count, 2, 12); // 2^20 subsets: a repeat is unlikely but dedupe may drop one
    }

    [Fact]
    public void AllStates_DeduplicatesAcrossCrashPoints()
    {
        var log = ThreeEpochs();
        var enumerator = new CrashStateEnumerator(log, s_noRandom);
        var all = enumerator.AllStates().ToList();
        Assert.Equal(all.Count, all.Select(s => s.ContentHash).Distinct().Count());
        // The full prefix of crash point p is the empty-subset state of crash point p+1 within an epoch.
        Assert.True(enumerator.DuplicatesDropped > 0);
        Assert.Contains(all, s => s.CrashPoint == 6 && s.Applied.SequenceEqual([5]));
    }

    [Fact]
    public void RecordingDevice_LogsWritesFlushesAndDiscards()
    {
        var inner = new MemoryBlockDevice(32 * Sector);
        using var recorder = new RecordingBlockDevice(inner);
        recorder.Write(0, Pattern(Sector, 1));
        recorder.Flush();
        recorder.Write(Sector, Pattern(2 * Sector, 2));
        recorder.Discard(8 * Sector, Sector);
        recorder.Recording = false;
        recorder.Write(9 * Sector, Pattern(Sector, 3));
        var log = recorder.Log;
        Assert.Equal(3, log.Count);
        Assert.Equal(new[] { 1 }, log.Flushes);
        Assert.Equal(Pattern(2 * Sector, 2), log.Writes[1].Data);
        Assert.True(log.Writes[2].IsDiscard);
        Assert.Equal(Sector, log.Writes[2].Length);
        Assert.Equal(Pattern(Sector, 3), inner.Contents.Slice(9 * Sector, Sector).ToArray()); // passed through anyway

        // The recorded data is a copy: changing the caller's buffer afterwards changes nothing.
        var buffer = Pattern(Sector, 4);
        recorder.Recording = true;
        recorder.Write(10 * Sector, buffer);
        buffer[0] ^= 0xFF;
        Assert.Equal(Pattern(Sector, 4), log.Writes[3].Data);
        Assert.NotEmpty(recorder.CrashStates().StatesAt(log.Count));
    }

    [Fact]
    public void TestKit_WalksEveryStateAndNamesTheFailingOne()
    {
        var baseDevice = new MemoryBlockDevice(16 * Sector);
        baseDevice.Write(0, Pattern(16 * Sector, 3));
        var baseImage = DevicesTestKit.Capture(baseDevice);
        var log = ThreeEpochs();
        var seen = new List<CrashState>();
        var count = DevicesTestKit.ForEachCrashState(baseImage, log, s_noRandom, (state, device) =>
        {
            seen.Add(state);
            var first = new byte[Sector];
            device.Read(0, first);
            Assert.Equal(state.Contains(0) ? Pattern(Sector, 0) : Pattern(16 * Sector, 3)[..Sector], first);
        });
        Assert.Equal(seen.Count, count);
        Assert.Equal(new CrashStateEnumerator(log, s_noRandom).AllStates().Count(), count);

        var failure = Assert.Throws<CrashStateFailure>(() => DevicesTestKit.ForEachCrashState(baseImage, log, s_noRandom,
            (state, _) => Assert.False(state.CrashPoint == 4 && state.Kind == CrashStateKind.DropOne)));
        Assert.Contains("crash point 4: DropOne", failure.Message, StringComparison.Ordinal);
    }

    private static WriteLog RandomLog(Random random, int writes, int sectors, int flushEvery, int distinctPatterns)
    {
        var log = new WriteLog();
        AddRandomWrites(log, random, writes, sectors, flushEvery, distinctPatterns);
        return log;
    }

    /// <summary>Appends writes of 1-3 sectors; after each a flush with probability 1/<paramref name="flushEvery"/> (never when null).</summary>
    private static void AddRandomWrites(WriteLog log, Random random, int writes, int sectors, int? flushEvery, int distinctPatterns)
    {
        for (var i = 0; i < writes; i++)
        {
            var length = random.Next(1, 4);
            var at = random.Next(0, sectors - length + 1);
            log.AddWrite(at * Sector, Pattern(length * Sector, random.Next(distinctPatterns)));
            if (flushEvery is { } every && random.Next(every) == 0)
                log.AddFlush();
        }
    }
}
