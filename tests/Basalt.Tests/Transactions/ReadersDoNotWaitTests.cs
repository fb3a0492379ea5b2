// No engine lock is held across device I/O: while a committer's journal flush, or a write-back's
// node write, is held at the device, readers (point reads, scans, read-only transactions) and
// commits that do not ask for a flush all complete. The device gate makes this a fact about
// ordering, not timing: the held operation cannot finish until the test releases it, and the
// failsafe wait only turns a deadlock into a failure instead of a hang.
using Basalt.Format;
using Basalt.TestKit;
using Basalt.Transactions;
using static Basalt.Tests.Transactions.TransactionTestData;

namespace Basalt.Tests.Transactions;

public sealed class ReadersDoNotWaitTests
{
    private const int Keys = 400;
    private static readonly TimeSpan s_failsafe = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("journal flush")]
    [InlineData("node write")]
    public async Task Readers_and_unflushed_commits_complete_while_a_device_operation_is_held(string held)
    {
        GatedDevice? gate = null;
        using var fx = new BtreeFixture(decorate: d => gate = new GatedDevice(d));
        fx.Fs.Transact(t =>
        {
            for (var i = 0; i < Keys; i++)
                t.Set(BtreeId.Test, BtreeFixture.Pos(i), U64((ulong)i));
        }, CommitOptions.Durable);
        Assert.True(fx.Engine.DirtyNodeCount > 0);
        var sb = fx.Fs.Superblock;

        Task blocked;
        if (held == "journal flush")
        {
            gate!.HoldFlushes();
            blocked = Run(() => fx.Fs.Transact(t => t.Set(BtreeId.Test, BtreeFixture.Pos(Keys), U64(Keys)), CommitOptions.Durable));
        }
        else
        {
            var (start, end) = ((long)sb.NodeAreaOffset, (long)(sb.NodeAreaOffset + sb.NodeAreaLength));
            gate!.HoldWrites(offset => offset >= start && offset < end);
            blocked = Run(() => fx.Engine.WriteBack(null));
        }
        try
        {
            Assert.True(gate.WaitUntilSomeoneWaits(s_failsafe), $"the {held} never reached the device");

            var reader = Run(() =>
            {
                for (var i = 0; i < Keys; i += 7)
                    Assert.Equal((ulong)i, ReadU64(fx.Test.TryGet(BtreeFixture.Pos(i), out var v) ? v : U64(ulong.MaxValue)));
                var scanned = BtreeAssertions.Contents(fx.Test);
                Assert.True(scanned.Count >= Keys);
                // A read-only transaction, and a commit that does not wait for a flush.
                var read = fx.Fs.Transact(t => t.Range(BtreeId.Test, Bpos.Min, Bpos.Max).Count);
                Assert.Equal(scanned.Count, read);
                fx.Fs.Transact(t => t.Set(BtreeId.Test, BtreeFixture.Pos(3), U64(3003)));
                Assert.True(fx.Test.TryGet(BtreeFixture.Pos(3), out var three) && ReadU64(three) == 3003);
            });
            var first = await Task.WhenAny(reader, blocked, Task.Delay(s_failsafe));
            Assert.True(first == reader, first == blocked ? $"the held {held} completed" : "the reader did not complete");
            await reader;
            Assert.Equal(1, gate.Waiting);
            Assert.False(blocked.IsCompleted);
        }
        finally
        {
            gate.Release();
        }
        await blocked;

        fx.Sync();
        fx.Checkpoint();
        fx.Remount();
        Assert.True(fx.Test.TryGet(BtreeFixture.Pos(3), out var v3) && ReadU64(v3) == 3003);
        Assert.Equal(held == "journal flush" ? Keys + 1 : Keys, BtreeAssertions.Contents(fx.Test).Count);
    }

    private static Task Run(Action action) =>
        Task.Factory.StartNew(action, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}
