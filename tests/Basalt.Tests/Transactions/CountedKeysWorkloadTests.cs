// The counted keys' trigger keeps the summary key exact through any workload: random inserts,
// overwrites, type changes, deletes and range deletes of counted keys, under injected restarts,
// with crash remounts, clean remounts, checkpoints, write-back and journal steps in between. After
// every batch and every recovery the summary matches a scan of the btree and the model; a crash
// recovers the state after some transaction between the last durable one and the last committed.
using Basalt.Btree;
using Basalt.TestKit;
using Basalt.Transactions;
using Xunit.Abstractions;
using static Basalt.Tests.Transactions.TransactionTestData;

namespace Basalt.Tests.Transactions;

public sealed class CountedKeysWorkloadTests(ITestOutputHelper output)
{
    [Fact]
    public void The_summary_invariant_holds_after_every_workload_and_every_recovery()
    {
        var seed = TestSeed.Get(output, nameof(The_summary_invariant_holds_after_every_workload_and_every_recovery));
        var rng = new Random(seed);
        var injection = new RestartInjection(seed, 0.2);
        // A small journal (8 buckets of 16 KiB) that wraps, and a node cache small enough for misses.
        using var fx = new BtreeFixture(seed: seed, cacheBudget: 32L * 4096, journalBuckets: 8, bucketSize: 16 * 1024)
        {
            RestartInjection = injection,
        };
        fx.Remount();
        var model = new WorkloadModel();
        // history[k]: the model after transaction k (the counter's value), with k's commit seq.
        var history = new List<(WorkloadModel Model, ulong Seq)> { (model.Clone(), 0) };
        var crashes = 0;
        var rounds = LongTests.Scale(14);
        for (var round = 0; round < rounds; round++)
        {
            foreach (var plan in TransactionWorkload.Generate(rng, transactions: 25, keySpace: 300))
            {
                var digest = fx.Fs.Transactor.Transact(t => TransactionWorkload.Run(t, plan),
                    plan.Durable ? CommitOptions.Durable : CommitOptions.Default, out var result);
                Assert.Equal(model.Apply(plan), digest);
                history.Add((model.Clone(), result.Seq));
                Assert.Equal(model.Summary, CountedKeys.ReadSummary(fx.Test));
            }
            Assert.Null(CountedKeys.CheckSummary(fx.Test));
            Assert.Null(model.Compare(fx.Test));

            var action = rng.Next(7);
            var what = $"round {round}, action {action}";
            switch (action)
            {
                case 0:
                case 1:
                    if (action == 1)
                    {
                        // Some entries reach the device without a flush: still not durable.
                        for (var n = rng.Next(1, 4); n > 0; n--)
                            fx.Journal.Step(flush: false);
                    }
                    var durable = fx.Journal.DurableSeq;
                    var lower = history.FindLastIndex(h => h.Seq <= durable);
                    fx.Remount();
                    crashes++;
                    var k = (int)ReadCounter(fx.Test);
                    Assert.True(k >= lower && k < history.Count, $"{what}: recovered transaction {k}, durable {lower}, committed {history.Count - 1}");
                    Assert.Null(CountedKeys.CheckSummary(fx.Test));
                    Assert.True(history[k].Model.Compare(fx.Test) is null, $"{what}: after recovering {k}: {history[k].Model.Compare(fx.Test)}");
                    model = history[k].Model.Clone();
                    history.RemoveRange(k + 1, history.Count - k - 1);
                    break;
                case 2:
                    fx.CleanRemount();
                    break;
                case 3:
                    fx.Checkpoint();
                    break;
                case 4:
                    fx.WriteBackAll();
                    break;
                default:
                    break;
            }
            Assert.Null(CountedKeys.CheckSummary(fx.Test));
            Assert.Null(model.Compare(fx.Test));
        }
        output.WriteLine($"{history.Count - 1} transactions kept, {crashes} crashes, {injection.Injected} restarts injected, journal {fx.Journal.Stats}");
        Assert.True(injection.Injected > 0);

        // The image that is left is one fsck finds nothing wrong with.
        fx.Fs.Close(sync: true);
        AssertFsckClean(fx.Memory);
    }
}
