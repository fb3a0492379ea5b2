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

    private static void AssertWithinBudget(BtreeFixture fx, long budget)
    {
        var s = fx.Engine.Stats;
        Assert.True(s.CacheBytes <= budget + s.DirtyBytes, $"cache {s.CacheBytes} bytes > budget {budget} + dirty {s.DirtyBytes}");
    }
}
