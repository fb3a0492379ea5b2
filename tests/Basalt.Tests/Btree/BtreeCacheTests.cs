using Basalt.Format;
using Basalt.TestKit;
using static Basalt.Tests.Btree.BtreeTestData;

namespace Basalt.Tests.Btree;

public sealed class BtreeCacheTests
{
    [Fact]
    public void A_workload_ten_times_the_budget_stays_within_budget_plus_dirty_and_rereads_evicted_nodes()
    {
        const int nodeSize = 4096;
        const long budget = 32 * nodeSize;
        using var fx = new BtreeFixture(nodeSize: nodeSize, cacheBudget: budget);
        var rng = new Random(11);
        var model = new SortedDictionary<Bpos, byte[]>();
        for (var i = 0; i < 12_000; i++)
        {
            var k = rng.Next(40_000);
            var v = ValueOf(k);
            fx.Test.Insert(BtreeFixture.Pos(k), v);
            model[BtreeFixture.Pos(k)] = v;
            if (i % 500 == 499)
                fx.Checkpoint();
            if (i % 100 == 0)
                AssertWithinBudget(fx, budget);
        }
        fx.Checkpoint();
        var s = fx.Engine.Stats;
        Assert.True(s.NodeBytesWritten > 10 * budget, $"workload wrote {s.NodeBytesWritten} bytes");
        Assert.Equal(0, s.DirtyBytes);
        AssertWithinBudget(fx, budget);

        // Random reads over the whole tree: evicted leaves are read again.
        var keys = model.Keys.ToArray();
        var readsBefore = fx.Engine.Stats.NodeReads;
        for (var i = 0; i < 5000; i++)
        {
            var k = keys[rng.Next(keys.Length)];
            Assert.True(fx.Test.TryGet(k, out var v));
            Assert.Equal(model[k], v);
            if (i % 100 == 0)
                AssertWithinBudget(fx, budget);
        }
        s = fx.Engine.Stats;
        Assert.True(s.NodeReads - readsBefore > 100, $"only {s.NodeReads - readsBefore} node reads");
        Assert.True(s.Evictions > 100, $"only {s.Evictions} evictions");
        BtreeAssertions.AssertContents(fx.Test, model);
        AssertWithinBudget(fx, budget);

        // Writes that need evicted nodes read them back too (restart after the read).
        foreach (var k in keys.OrderBy(_ => rng.Next()).Take(2000))
        {
            Assert.True(fx.Test.Delete(k));
            model.Remove(k);
        }
        fx.Checkpoint();
        fx.Remount();
        BtreeAssertions.AssertContents(fx.Test, model);
    }

    [Fact]
    public void A_remembered_leaf_is_not_taken_after_the_btrees_changed_shape()
    {
        // A descent remembers the leaf it found (Btree.LeafHint). Work in other btrees changes
        // the shape (nodes made, read, evicted; pointers changed) and here evicts that very leaf;
        // an insert that then took the remembered leaf would write into a node no longer in the
        // cache or the tree, and the update would be lost.
        const int nodeSize = 4096;
        using var fx = new BtreeFixture(nodeSize: nodeSize, cacheBudget: 24 * nodeSize, dataBuckets: 256);
        for (var k = 0; k < 3000; k++)
            fx.Test.Insert(BtreeFixture.Pos(k), ValueOf(k));
        var block = new byte[512];
        for (var i = 0; i < 2000; i++)
            fx.Fs.Data.Write(1000 + (ulong)i, 0, block);
        fx.Checkpoint();
        fx.Remount(); // nodes read from disk are reachable, and so may be evicted
        var pos = BtreeFixture.Pos(1234);
        Assert.True(fx.Test.TryGet(pos, out _));
        var remembered = fx.Test.LeafHint;
        Assert.NotNull(remembered);
        // Reads of other btrees' nodes: the remembered leaf is no longer among the latest
        // installs (which eviction spares), and writes there push it out of the cache.
        for (var i = 0; i < 2000; i += 97)
            fx.Fs.Data.Read(1000 + (ulong)i, 0, block);
        for (var i = 0; i < 4000 && remembered.IsCached; i++)
        {
            fx.Fs.Data.Write(1000 + (ulong)(i % 2000), 512, block);
            if (i % 100 == 99)
                fx.Checkpoint();
        }
        Assert.False(remembered.IsCached, "the remembered leaf was never evicted: the test did not set up its case");
        Assert.Same(remembered, fx.Test.LeafHint);

        fx.Test.Insert(pos, [1, 2, 3]);
        fx.Checkpoint();
        fx.Remount();
        Assert.True(fx.Test.TryGet(pos, out var value));
        Assert.Equal(new byte[] { 1, 2, 3 }, value);
    }

    private static void AssertWithinBudget(BtreeFixture fx, long budget)
    {
        var s = fx.Engine.Stats;
        Assert.True(s.CacheBytes <= budget + s.DirtyBytes, $"cache {s.CacheBytes} bytes > budget {budget} + dirty {s.DirtyBytes}");
    }
}
