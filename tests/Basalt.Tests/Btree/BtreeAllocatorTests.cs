using Basalt.Format;
using Basalt.TestKit;
using static Basalt.Tests.Btree.BtreeTestData;

namespace Basalt.Tests.Btree;

public sealed class BtreeAllocatorTests
{
    [Fact]
    public void Freed_slots_are_not_reused_before_the_journal_entry_that_freed_them_is_durable()
    {
        using var fx = new BtreeFixture();
        Fill(fx.Test, Enumerable.Range(0, 3000).Select(i => (long)i));
        fx.Checkpoint();
        Assert.Empty(fx.Engine.AllocatorState().PendingFree);

        // Restructure: written nodes are replaced; their slots wait for the interior update that
        // stops pointing at them to be journaled and flushed (rule d).
        fx.Test.DeleteRange(BtreeFixture.Pos(0), BtreeFixture.Pos(1500));
        var pending = fx.Engine.AllocatorState().PendingFree.ToHashSet();
        Assert.NotEmpty(pending);
        var allocationsBefore = fx.NodeSpace.Allocations.Count;
        Fill(fx.Test, Enumerable.Range(10_000, 3000).Select(i => (long)i));
        var reused = fx.NodeSpace.Allocations.Skip(allocationsBefore).Where(pending.Contains).ToList();
        Assert.Empty(reused);
        Assert.True(fx.NodeSpace.Allocations.Count > allocationsBefore + 10);

        // Write-back journals the interior updates; once their entries are durable the slots are free.
        fx.WriteBackAll();
        fx.Engine.WriteBack(null);
        var state = fx.Engine.AllocatorState();
        Assert.DoesNotContain(state.Used, pending.Contains);
        Assert.DoesNotContain(state.PendingFree, pending.Contains);
    }

    [Fact]
    public void Allocator_state_rebuilt_at_mount_equals_the_state_before()
    {
        using var fx = new BtreeFixture();
        var rng = new Random(7);
        for (var round = 0; round < 5; round++)
        {
            Fill(fx.Test, Enumerable.Range(0, 2000).Select(_ => (long)rng.Next(20_000)));
            fx.Test.DeleteRange(BtreeFixture.Pos(rng.Next(20_000)), BtreeFixture.Pos(rng.Next(20_000)));
            fx.Checkpoint();
            var before = fx.Engine.AllocatorState();
            var live = before.Used.Except(before.PendingFree).ToList();
            fx.Remount();
            var after = fx.Engine.AllocatorState();
            Assert.Equal(live, after.Used);
            Assert.Empty(after.PendingFree);
            Assert.Equal(after.Used.Count, fx.Checker.LiveSlots);
        }
    }
}
