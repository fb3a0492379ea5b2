using Basalt.Btree;
using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Btree;

/// <summary>
/// Random operations against a SortedDictionary model with checkpoints, clean remounts and crash
/// remounts (nothing flushed since the last checkpoint survives: the model rolls back to it).
/// Cycles of growth and shrinkage make every structure change happen many times; the counters
/// prove it.
/// </summary>
public sealed class BtreeModelTests(ITestOutputHelper output)
{
    private const int KeySpace = 4000;

    [Theory]
    [InlineData(256L * 1024 * 1024, 100_000)]
    [InlineData(48L * 4096, 50_000)] // a cache far smaller than the tree: evictions and re-reads everywhere
    public void Random_operations_match_the_model_across_syncs_and_remounts(long cacheBudget, int operations)
    {
        var seed = TestSeed.Get(output, nameof(Random_operations_match_the_model_across_syncs_and_remounts));
        var rng = new Random(seed);
        using var fx = new BtreeFixture(seed: seed, cacheBudget: cacheBudget);
        var model = new SortedDictionary<Bpos, byte[]>();
        var synced = new SortedDictionary<Bpos, byte[]>();
        var totals = new Totals();
        var ops = LongTests.Scale(operations);
        var scale = ops / 100_000.0;
        const int cycle = 10_000;
        var remounts = 0;
        ulong durableAtSync = fx.Journal.DurableSeq;
        for (var op = 0; op < ops; op++)
        {
            var t = fx.Test;
            var growing = op % cycle < cycle / 2;
            var r = rng.Next(100);
            if (op % cycle == cycle - 1)
            {
                // End of a shrink phase: clear what is left so the tree collapses to one leaf.
                var n = t.DeleteRange(Bpos.Min, Bpos.Max);
                Assert.Equal(model.Count, n);
                model.Clear();
            }
            else if (r < (growing ? 60 : 20))
            {
                var pos = BtreeFixture.Pos(rng.Next(KeySpace));
                var value = RandomValue(rng, fx.Engine.MaxValueBytes);
                t.Insert(pos, value);
                model[pos] = value;
            }
            else if (r < (growing ? 70 : 60))
            {
                var pos = model.Count > 0 && rng.Next(4) != 0 ? model.Keys.ElementAt(rng.Next(model.Count)) : BtreeFixture.Pos(rng.Next(KeySpace));
                Assert.Equal(model.Remove(pos), t.Delete(pos));
            }
            else if (r < (growing ? 72 : 66))
            {
                var a = rng.Next(KeySpace);
                var b = a + rng.Next(growing ? 50 : 600);
                var start = BtreeFixture.Pos(a);
                var end = BtreeFixture.Pos(b);
                var expected = model.Keys.Where(k => k >= start && k <= end).ToList();
                foreach (var k in expected)
                    model.Remove(k);
                Assert.Equal(expected.Count, t.DeleteRange(start, end));
            }
            else if (r < 85)
            {
                var pos = BtreeFixture.Pos(rng.Next(KeySpace));
                var found = t.TryGet(pos, out var value);
                Assert.Equal(model.TryGetValue(pos, out var expected), found);
                if (found)
                    Assert.Equal(expected, value);
            }
            else
            {
                Scan(t, model, rng, reverse: r >= 93);
            }

            if (op % 997 == 996)
            {
                fx.Checkpoint();
                synced = new SortedDictionary<Bpos, byte[]>(model);
                durableAtSync = fx.Journal.DurableSeq;
            }
            if (op % 7919 == 7918)
            {
                totals.Add(fx.Engine.Stats);
                var crash = rng.Next(3) == 0;
                if (!crash)
                {
                    fx.Checkpoint();
                    synced = new SortedDictionary<Bpos, byte[]>(model);
                }
                else
                {
                    // The journal is large enough that nothing forced a flush since the last
                    // checkpoint: a crash must bring back exactly the checkpointed state.
                    Assert.Equal(durableAtSync, fx.Journal.DurableSeq);
                }
                fx.Remount();
                remounts++;
                durableAtSync = fx.Journal.DurableSeq;
                model = new SortedDictionary<Bpos, byte[]>(synced);
                BtreeAssertions.AssertTopology(fx.Test);
                BtreeAssertions.AssertContents(fx.Test, model);
            }
        }
        totals.Add(fx.Engine.Stats);
        fx.Checkpoint();
        fx.Remount();
        BtreeAssertions.AssertTopology(fx.Test);
        BtreeAssertions.AssertContents(fx.Test, model);
        output.WriteLine($"{ops} ops, {remounts} remounts: {totals.Stats()}");
        Assert.True(totals.Splits >= 200 * scale, $"splits {totals.Splits}");
        Assert.True(totals.RootSplits >= 10 * scale, $"root splits {totals.RootSplits}");
        Assert.True(totals.Compactions >= 50 * scale, $"compactions {totals.Compactions}");
        Assert.True(totals.Merges >= 100 * scale, $"merges {totals.Merges}");
        Assert.True(totals.RootCollapses >= 10 * scale, $"root collapses {totals.RootCollapses}");
        if (cacheBudget < 1024 * 1024)
            Assert.True(totals.Reads > 1000, $"node reads {totals.Reads}");
    }

    private static void Scan(Basalt.Btree.Btree t, SortedDictionary<Bpos, byte[]> model, Random rng, bool reverse)
    {
        var a = BtreeFixture.Pos(rng.Next(KeySpace));
        var b = BtreeFixture.Pos(rng.Next(KeySpace));
        if (a > b)
            (a, b) = (b, a);
        var limit = rng.Next(1, 120);
        var expected = reverse
            ? model.Keys.Where(k => k >= a && k <= b).Reverse().Take(limit).ToList()
            : model.Keys.Where(k => k >= a && k <= b).Take(limit).ToList();
        var it = t.Iterate(a, b, reverse);
        var n = 0;
        while (n < limit && it.MoveNext())
        {
            Assert.True(n < expected.Count, $"scan returned extra key {it.Key.Pos.ToText()}");
            Assert.Equal(expected[n], it.Key.Pos);
            Assert.True(model[expected[n]].AsSpan().SequenceEqual(it.Value));
            n++;
        }
        Assert.Equal(expected.Count, n);
    }

    private static byte[] RandomValue(Random rng, int max)
    {
        var length = rng.Next(20) == 0 ? rng.Next(max + 1) : rng.Next(0, 160);
        var value = new byte[length];
        rng.NextBytes(value);
        return value;
    }

    private sealed class Totals
    {
        public long Splits;
        public long RootSplits;
        public long Compactions;
        public long Merges;
        public long RootCollapses;
        public long Writes;
        public long Reads;

        public void Add(BtreeStats s)
        {
            Splits += s.Splits;
            RootSplits += s.RootSplits;
            Compactions += s.Compactions;
            Merges += s.Merges;
            RootCollapses += s.RootCollapses;
            Writes += s.NodeWrites;
            Reads += s.NodeReads;
        }

        public string Stats() =>
            $"splits {Splits}, root splits {RootSplits}, compactions {Compactions}, merges {Merges}, root collapses {RootCollapses}, node writes {Writes}, node reads {Reads}";
    }
}
