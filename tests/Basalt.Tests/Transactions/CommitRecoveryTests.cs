// Recovery as transactions see it: a crash after a mix of flushed and unflushed commits recovers
// the state after some commit between the last durable one and the last one made (a prefix that
// holds every flushed commit), and a read-only mount of an unclean image shows the replayed keys
// without changing one byte of it.
using System.Security.Cryptography;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Journal;
using Basalt.TestKit;
using Basalt.Transactions;
using Xunit.Abstractions;
using static Basalt.Tests.Transactions.TransactionTestData;

namespace Basalt.Tests.Transactions;

public sealed class CommitRecoveryTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_crash_after_flushed_and_unflushed_commits_recovers_a_prefix_holding_every_flushed_one(bool threaded)
    {
        var seed = TestSeed.Get(output, $"{nameof(A_crash_after_flushed_and_unflushed_commits_recovers_a_prefix_holding_every_flushed_one)} threaded={threaded}");
        var rng = new Random(seed);
        // Threaded: the journal writer and reclaim run as threads and close entries every 2 ms.
        var journal = threaded ? new JournalOptions { FlushDelay = TimeSpan.FromMilliseconds(2) } : null;
        using var fx = new BtreeFixture(seed: seed, journal: journal, journalBuckets: 8, bucketSize: 16 * 1024);
        var model = new WorkloadModel();
        var history = new List<(WorkloadModel Model, ulong Seq)> { (model.Clone(), 0) };
        var outcomes = new List<string>();
        for (var crash = 0; crash < 8; crash++)
        {
            var acknowledged = 0;
            foreach (var plan in TransactionWorkload.Generate(rng, transactions: rng.Next(5, 40), keySpace: 200, durable: 0.15))
            {
                fx.Fs.Transactor.Transact(t => TransactionWorkload.Run(t, plan), plan.Durable ? CommitOptions.Durable : CommitOptions.Default,
                    out var result);
                model.Apply(plan);
                history.Add((model.Clone(), result.Seq));
                if (plan.Durable)
                    acknowledged = history.Count - 1;
                // Entries and nodes reach the device at random points, flushed or not.
                if (!threaded && rng.Next(6) == 0)
                    fx.Journal.Step(flush: rng.Next(3) == 0);
                if (rng.Next(12) == 0)
                    fx.Engine.WriteBack(null, maxNodes: rng.Next(1, 4));
            }
            // Every commit up to the durable seq is acknowledged (a flush returned for it).
            var durable = fx.Journal.DurableSeq;
            acknowledged = Math.Max(acknowledged, history.FindLastIndex(h => h.Seq <= durable));
            var committed = history.Count - 1;
            fx.Remount();
            var k = (int)ReadCounter(fx.Test);
            outcomes.Add($"{k} of [{acknowledged}, {committed}]");
            Assert.True(k >= acknowledged && k <= committed, $"crash {crash}: recovered transaction {k}; acknowledged {acknowledged}, committed {committed}");
            Assert.True(history[k].Model.Compare(fx.Test) is null, $"crash {crash}: after recovering {k}: {history[k].Model.Compare(fx.Test)}");
            Assert.Null(CountedKeys.CheckSummary(fx.Test));
            model = history[k].Model.Clone();
            history.RemoveRange(k + 1, history.Count - k - 1);
        }
        output.WriteLine("recovered: " + string.Join("; ", outcomes));
        fx.Fs.Close(sync: false);
        AssertFsckClean(fx.Memory);
    }

    [Fact]
    public void A_read_only_mount_of_an_unclean_image_shows_the_replayed_keys_and_changes_no_byte()
    {
        var seed = TestSeed.Get(output, nameof(A_read_only_mount_of_an_unclean_image_shows_the_replayed_keys_and_changes_no_byte));
        using var fx = new BtreeFixture(seed: seed);
        var model = new WorkloadModel();
        foreach (var plan in TransactionWorkload.Generate(new Random(seed), transactions: 60, keySpace: 200))
        {
            fx.Fs.Transact(t => TransactionWorkload.Run(t, plan));
            model.Apply(plan);
        }
        fx.Sync();
        // Later commits that no flush made durable: not replayed.
        fx.Fs.Transact(t => t.Set(BtreeId.Test, new Bpos(3, 3), [3]));
        fx.Fs.Close(sync: false);
        var image = SHA256.HashData(fx.Memory.Contents);

        int replayed;
        using (var fs = BasaltFileSystem.Mount(fx.Memory, new MountOptions { ReadOnly = true }))
        {
            Assert.True(fs.ReadOnly);
            Assert.False(fs.Recovery.WasClean);
            replayed = fs.Recovery.KeysReplayed;
            Assert.True(replayed > 0, fs.Recovery.ToText());
            var tree = fs.Btrees[BtreeId.Test];
            Assert.Null(model.Compare(tree));
            Assert.Null(CountedKeys.CheckSummary(tree));
            Assert.False(tree.TryGet(new Bpos(3, 3), out _));
            var refused = Assert.Throws<BasaltException>(() => fs.Transact(t => t.Set(BtreeId.Test, new Bpos(4, 4), [4])));
            Assert.Equal(ErrorCode.ReadOnlyDevice, refused.Code);
            fs.Sync();
        }
        Assert.Equal(image, SHA256.HashData(fx.Memory.Contents));

        // The image is still unclean: a read-write mount replays the same keys.
        fx.Remount();
        Assert.False(fx.Fs.Recovery.WasClean);
        Assert.Equal(replayed, fx.Fs.Recovery.KeysReplayed);
        Assert.Null(model.Compare(fx.Test));
    }
}
