using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.TestKit;
using static Basalt.Tests.Btree.BtreeTestData;

namespace Basalt.Tests.Btree;

public sealed class BtreeDurabilityTests
{
    [Fact]
    public void Reopen_after_dropping_unsynced_structure_changes_equals_the_last_sync()
    {
        using var fx = new BtreeFixture();
        var synced = Fill(fx.Test, Enumerable.Range(0, 3000).Select(i => (long)i));
        fx.Checkpoint();
        var before = fx.Engine.Stats;
        // Heavy unsynced churn: deletes (merges), inserts (splits), overwrites.
        fx.Test.DeleteRange(BtreeFixture.Pos(100), BtreeFixture.Pos(1900));
        Fill(fx.Test, Enumerable.Range(5000, 3000).Select(i => (long)i));
        Fill(fx.Test, Enumerable.Range(0, 100).Select(i => (long)i), salt: 3);
        var after = fx.Engine.Stats;
        Assert.True(after.Merges > before.Merges && after.Splits > before.Splits);
        fx.Remount();
        BtreeAssertions.AssertTopology(fx.Test);
        BtreeAssertions.AssertContents(fx.Test, synced);
    }

    [Theory]
    [InlineData("leaf-write")]
    [InlineData("interior-write")]
    [InlineData("flush")]
    [InlineData("superblock")]
    public void A_failed_checkpoint_enters_emergency_read_only_and_loses_no_acknowledged_commit(string failure)
    {
        BtreeFaultDevice? faults = null;
        using var fx = new BtreeFixture(decorate: d => faults = new BtreeFaultDevice(d));
        var synced = Fill(fx.Test, Enumerable.Range(0, 2000).Select(i => (long)i));
        fx.Checkpoint();
        var model = new SortedDictionary<Bpos, byte[]>(synced);
        Fill(fx.Test, Enumerable.Range(2000, 2000).Select(i => (long)i), model: model);
        fx.Test.Delete(BtreeFixture.Pos(5));
        model.Remove(BtreeFixture.Pos(5));
        switch (failure)
        {
            case "leaf-write":
                faults!.FailWrites = true;
                break;
            case "interior-write":
                faults!.FailWrites = true;
                faults.WritesBeforeFailure = 5; // some leaves reach the device, then a write fails
                break;
            case "flush":
                faults!.FailFlushes = true;
                break;
            default:
                faults!.FailWriteAt = offset => offset < Basalt.Superblocks.SuperblockFormat.StartAreaEnd || offset >= fx.Memory.Size - (3 * 65536);
                break;
        }
        var e = Assert.Throws<BasaltException>(fx.Checkpoint);
        Assert.Equal(ErrorCode.EmergencyReadOnly, e.Code);
        Assert.True(fx.Engine.IsEmergencyReadOnly);
        Assert.Contains("injected", fx.Engine.EmergencyCause!.ToString());

        // Every later mutation or sync fails fast with the original cause; reads keep working.
        var insert = Assert.Throws<BasaltException>(() => fx.Test.Insert(BtreeFixture.Pos(9999), [1]));
        Assert.Equal(ErrorCode.EmergencyReadOnly, insert.Code);
        Assert.Contains("injected", insert.ToString());
        Assert.Same(fx.Engine.EmergencyCause, insert.InnerException);
        Assert.Equal(ErrorCode.EmergencyReadOnly, Assert.Throws<BasaltException>(() => fx.Test.Delete(BtreeFixture.Pos(1))).Code);
        Assert.Equal(ErrorCode.EmergencyReadOnly, Assert.Throws<BasaltException>(() => fx.Test.DeleteRange(Bpos.Min, Bpos.Max)).Code);
        Assert.Equal(ErrorCode.EmergencyReadOnly, Assert.Throws<BasaltException>(fx.Checkpoint).Code);
        Assert.True(fx.Test.TryGet(BtreeFixture.Pos(3000), out var v));
        Assert.Equal(ValueOf(3000), v);
        BtreeAssertions.AssertContents(fx.Test, model);

        faults!.FailWrites = false;
        faults.FailFlushes = false;
        faults.FailWriteAt = null;
        fx.Remount();
        BtreeAssertions.AssertTopology(fx.Test);
        // Nothing acknowledged is lost: the journal holds the commits its flush made durable. A
        // failed write or flush before that flush completed leaves the earlier durable state.
        var recovered = BtreeAssertions.Contents(fx.Test);
        if (failure == "superblock")
            Assert.Equal(model, recovered);
        else if (failure == "leaf-write")
            Assert.Equal(synced, recovered);
        else
            Assert.True(BtreeAssertions.SameContents(recovered, synced) || BtreeAssertions.SameContents(recovered, model), $"{failure}: recovered neither state");
        synced = recovered;

        // The engine continues from the committed state: appends land over ignored bsets.
        Fill(fx.Test, Enumerable.Range(4000, 500).Select(i => (long)i), model: synced);
        fx.Test.Delete(BtreeFixture.Pos(7));
        synced.Remove(BtreeFixture.Pos(7));
        fx.Checkpoint();
        fx.Remount();
        BtreeAssertions.AssertContents(fx.Test, synced);
    }

    [Fact]
    public void Running_out_of_node_space_fails_cleanly_and_sync_still_persists_what_exists()
    {
        using var fx = new BtreeFixture(slots: 48);
        var model = new SortedDictionary<Bpos, byte[]>();
        BasaltException? full = null;
        for (var i = 0; i < 100_000 && full is null; i++)
        {
            var v = ValueOf(i);
            try
            {
                fx.Test.Insert(BtreeFixture.Pos(i), v);
                model[BtreeFixture.Pos(i)] = v;
            }
            catch (BasaltException e)
            {
                full = e;
            }
            if (i % 300 == 299)
                fx.Checkpoint();
        }
        Assert.NotNull(full);
        Assert.Equal(ErrorCode.BtreeNodeSpaceFull, full!.Code);
        Assert.Contains("node space full", full.Message);
        BtreeAssertions.AssertContents(fx.Test, model);
        fx.Checkpoint();
        fx.Remount();
        BtreeAssertions.AssertTopology(fx.Test);
        BtreeAssertions.AssertContents(fx.Test, model);

        // Deleting frees space again (after syncs make the freed slots reusable).
        var cut = BtreeFixture.Pos(model.Count * 3 / 4);
        var removed = fx.Test.DeleteRange(Bpos.Min, cut);
        Assert.True(removed > 0);
        foreach (var k in model.Keys.Where(k => k <= cut).ToList())
            model.Remove(k);
        fx.Checkpoint();
        fx.Checkpoint();
        Fill(fx.Test, Enumerable.Range(0, 50).Select(i => (long)i), model: model);
        fx.Checkpoint();
        fx.Remount();
        BtreeAssertions.AssertContents(fx.Test, model);
    }
}
