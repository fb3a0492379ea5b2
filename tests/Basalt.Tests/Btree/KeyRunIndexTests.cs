using Basalt.Btree;
using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Btree;

/// <summary>KeyRun.LowerBound through the prefix index against a linear scan, on key sets that stress the prefix window.</summary>
public sealed class KeyRunIndexTests
{
    private readonly ITestOutputHelper _output;

    public KeyRunIndexTests(ITestOutputHelper output) => _output = output;

    public enum Shape
    {
        /// <summary>One inode, spread offsets: distinct prefixes.</summary>
        Spread,
        /// <summary>Keys that differ only in the snapshot, under a window set by distant offsets: long prefix ties.</summary>
        SnapshotTies,
        /// <summary>Interior-node-like: a far first key and Bpos.Max last, so the window saturates at both ends.</summary>
        FarEnds,
        /// <summary>Several inodes with dense offsets.</summary>
        Inodes,
    }

    [Theory]
    [InlineData(Shape.Spread, 40)]
    [InlineData(Shape.Spread, 2000)]
    [InlineData(Shape.SnapshotTies, 64)]
    [InlineData(Shape.SnapshotTies, 3000)]
    [InlineData(Shape.FarEnds, 100)]
    [InlineData(Shape.FarEnds, 5000)]
    [InlineData(Shape.Inodes, 1500)]
    public void Lower_bound_matches_a_linear_scan(Shape shape, int count)
    {
        var seed = TestSeed.Get(_output);
        var rng = new Random(seed);
        var keys = MakeKeys(shape, count, rng);
        var builder = new KeyRunBuilder();
        foreach (var k in keys)
            builder.Add(new Bkey(k, KeyType.Cookie), [(byte)k.Offset]);
        var run = builder.Build();

        var probes = new List<Bpos>(keys);
        foreach (var k in keys)
        {
            if (!k.IsMin)
                probes.Add(k.Predecessor());
            if (!k.IsMax)
                probes.Add(k.Successor());
        }
        probes.Add(Bpos.Min);
        probes.Add(Bpos.Max);
        for (var i = 0; i < 2000; i++)
            probes.Add(new Bpos((ulong)rng.Next(0, 6), (ulong)rng.NextInt64(), (uint)rng.Next()));

        foreach (var p in probes)
        {
            var expected = 0;
            while (expected < keys.Count && keys[expected] < p)
                expected++;
            var actual = run.LowerBound(p);
            Assert.True(expected == actual, $"{shape} n={count} seed={seed}: LowerBound({p.ToText()}) = {actual}, expected {expected}");
            var found = run.View.Find(p, prefetchValue: true);
            Assert.Equal(expected < keys.Count && keys[expected] == p ? expected : -1, found);
        }
    }

    /// <summary>
    /// Unwritten runs have no index: the branch-free search (and its prefetch of the next probes in
    /// long runs) against a linear scan, for every length up to a few hundred and a long run.
    /// </summary>
    [Theory]
    [InlineData(Shape.Spread)]
    [InlineData(Shape.SnapshotTies)]
    [InlineData(Shape.Inodes)]
    public void Unindexed_lower_bound_matches_a_linear_scan(Shape shape)
    {
        var seed = TestSeed.Get(_output);
        var rng = new Random(seed);
        foreach (var count in Enumerable.Range(0, 300).Append(3000))
        {
            var keys = MakeKeys(shape, count, rng);
            var unwritten = new UnwrittenRun();
            foreach (var k in keys.OrderBy(_ => rng.Next()))
                unwritten.Set(new Bkey(k, KeyType.Cookie), [(byte)k.Offset]);
            var view = unwritten.View;
            var probes = new List<Bpos> { Bpos.Min, Bpos.Max };
            foreach (var k in keys)
            {
                probes.Add(k);
                if (!k.IsMin)
                    probes.Add(k.Predecessor());
                if (!k.IsMax)
                    probes.Add(k.Successor());
            }
            foreach (var p in probes)
            {
                var expected = 0;
                while (expected < keys.Count && keys[expected] < p)
                    expected++;
                var actual = view.LowerBound(p);
                Assert.True(expected == actual, $"{shape} n={count} seed={seed}: LowerBound({p.ToText()}) = {actual}, expected {expected}");
            }
        }
    }

    private static List<Bpos> MakeKeys(Shape shape, int count, Random rng)
    {
        var set = new SortedSet<Bpos>();
        while (set.Count < count)
        {
            switch (shape)
            {
                case Shape.Spread:
                    set.Add(new Bpos(1, (ulong)rng.NextInt64(0, 1L << 40)));
                    break;
                case Shape.SnapshotTies:
                    // Offsets 0 and 2^60 fix a window that cuts off the low offset bits and the snapshot.
                    set.Add(new Bpos(3, set.Count % 7 == 0 ? (1UL << 60) + (ulong)rng.Next(4) : (ulong)rng.Next(4), (uint)rng.Next()));
                    break;
                case Shape.FarEnds:
                    set.Add(new Bpos(2, (ulong)rng.NextInt64(1, 1L << 20)));
                    break;
                case Shape.Inodes:
                    set.Add(new Bpos((ulong)rng.Next(1, 5), (ulong)rng.Next(0, 1000)));
                    break;
            }
        }
        if (shape == Shape.FarEnds)
        {
            set.Remove(set.Min);
            set.Remove(set.Max);
            set.Add(new Bpos(0, 5));
            set.Add(Bpos.Max);
        }
        return [.. set];
    }
}
