// Reclaim's timer: dirty nodes pinning commits older than WriteBackAge are written back even when
// the journal is nowhere near its watermark; with a long WriteBackAge they stay dirty.
using Basalt.Journal;
using Basalt.TestKit;

namespace Basalt.Tests.Journal;

public sealed class ReclaimTimerTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Nodes_dirty_longer_than_the_write_back_age_are_written_back_without_journal_pressure(bool shortAge)
    {
        var options = new JournalOptions
        {
            FlushDelay = TimeSpan.FromMilliseconds(10),
            ReclaimInterval = TimeSpan.FromMilliseconds(10),
            WriteBackAge = shortAge ? TimeSpan.FromMilliseconds(100) : TimeSpan.FromHours(1),
        };
        using var fx = new BtreeFixture(journal: options);
        for (var i = 0; i < 50; i++)
            fx.Insert(BtreeFixture.Pos(i), [(byte)i]);
        fx.Sync();
        Assert.True(fx.Journal.Fill < 0.5, $"the journal is at its watermark: {fx.Journal.Stats.ToText()}");
        Assert.True(fx.Engine.DirtyNodeCount > 0);
        var pinned = fx.Journal.OldestPin;
        Assert.NotEqual(0UL, pinned);

        if (shortAge)
        {
            Assert.True(SpinWait.SpinUntil(() => fx.Engine.DirtyNodeCount == 0 && fx.Journal.OldestPin == 0, TimeSpan.FromSeconds(60)),
                $"{fx.Engine.DirtyNodeCount} nodes still dirty, oldest pin {fx.Journal.OldestPin}: {fx.Journal.Stats.ToText()}");
            Assert.True(fx.Fs.Reclaim!.Rounds > 0);
            // The next flush entry carries the new last_seq: a crash then replays nothing the write-back covered.
            fx.Fs.Transact(t => t.Set(Basalt.Format.BtreeId.Test, BtreeFixture.Pos(50), [50]), Basalt.Transactions.CommitOptions.Durable);
            Assert.True(fx.Journal.Stats.LastSeqOnDisk > pinned, fx.Journal.Stats.ToText());
        }
        else
        {
            Thread.Sleep(500);
            Assert.True(fx.Engine.DirtyNodeCount > 0, "nodes were written back with no journal pressure and a write-back age of an hour");
            Assert.Equal(pinned, fx.Journal.OldestPin);
            Assert.Equal(0, fx.Fs.Reclaim!.Rounds);
        }
        fx.Remount();
        for (var i = 0; i < 50; i++)
            Assert.True(fx.Test.TryGet(BtreeFixture.Pos(i), out var v) && v[0] == (byte)i, $"key {i}");
    }
}
