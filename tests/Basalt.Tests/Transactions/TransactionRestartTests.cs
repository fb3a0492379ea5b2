// Restarts: a body may run any number of times before its transaction commits, so its effects
// must come only through the transaction, exactly once per commit.
using Basalt.Btree;
using Basalt.Journal;
using Basalt.TestKit;
using Basalt.Transactions;
using Xunit.Abstractions;
using static Basalt.Tests.Transactions.TransactionTestData;

namespace Basalt.Tests.Transactions;

public sealed class TransactionRestartTests(ITestOutputHelper output)
{
    [Fact]
    public void Restarted_bodies_return_and_commit_exactly_what_unrestarted_runs_do()
    {
        var seed = TestSeed.Get(output, nameof(Restarted_bodies_return_and_commit_exactly_what_unrestarted_runs_do));
        var plans = TransactionWorkload.Generate(new Random(seed), transactions: 300, keySpace: 400);
        var model = new WorkloadModel();
        var expected = plans.Select(model.Apply).ToList();

        using var plain = new BtreeFixture(seed: seed);
        var (plainDigests, plainRuns) = RunAll(plain, plans);

        // Injected restarts (at a body's first read and at commit) and, with a cache of 24 nodes,
        // restarts for node misses too.
        var injection = new RestartInjection(seed, 0.35);
        using var restarted = new BtreeFixture(seed: seed, cacheBudget: 24L * 4096) { RestartInjection = injection };
        restarted.Remount();
        var restartsBefore = restarted.Fs.Transactor.Restarts;
        var (digests, runs) = RunAll(restarted, plans);

        Assert.Equal(expected, plainDigests);
        Assert.Equal(expected, digests);
        Assert.Null(model.Compare(plain.Test));
        Assert.Null(model.Compare(restarted.Test));
        Assert.Null(CountedKeys.CheckSummary(restarted.Test));
        // Every transaction bumped the counter once, however often its body ran.
        Assert.Equal((ulong)plans.Count, ReadCounter(restarted.Test));
        Assert.True(injection.Injected > plans.Count / 4, $"only {injection.Injected} restarts injected");
        Assert.True(runs > plainRuns, $"bodies ran {runs} times under restarts, {plainRuns} without");
        Assert.Equal(runs - plans.Count, restarted.Fs.Transactor.Restarts - restartsBefore);

        // The restarted run's journal holds the same commits: a crash remount recovers the model.
        restarted.Sync();
        restarted.Remount();
        Assert.Null(model.Compare(restarted.Test));
    }

    /// <summary>
    /// Each kind of restart the engine raises in a commit: a node the body or the commit needs is
    /// not cached, the journal has no room, node space is short until freed slots become reusable.
    /// No restart is injected; the fixture's geometry makes the obstacle happen, the test counts the
    /// restarts of that kind, and the bodies that ran more than once still returned and committed
    /// what a single run against the model does.
    /// </summary>
    [Theory]
    [InlineData("node miss")]
    [InlineData("journal full")]
    [InlineData("node space")]
    public void Every_restart_reason_reruns_the_body_and_commits_as_if_it_ran_once(string reason)
    {
        var seed = TestSeed.Get(output, $"{nameof(Every_restart_reason_reruns_the_body_and_commits_as_if_it_ran_once)} {reason}");
        var rng = new Random(seed);
        using var fx = reason switch
        {
            // 12 cached nodes of a btree of many leaves.
            "node miss" => new BtreeFixture(seed: seed, cacheBudget: 12L * 4096),
            // 8 journal buckets of 16 KiB that the test never flushes.
            "journal full" => new BtreeFixture(seed: seed, journalBuckets: 8, bucketSize: 16 * 1024),
            // 64 node slots, and a journal (128 buckets of 16 KiB, no flush timer) that holds the
            // whole workload, so nothing but write-back and a node-space restart's wait flushes it.
            _ => new BtreeFixture(seed: seed, slots: 64, bucketSize: 16 * 1024, journalBuckets: 128,
                journal: new JournalOptions { FlushDelay = TimeSpan.FromHours(1), WriteBackAge = TimeSpan.FromHours(1) }),
        };
        // Node space must run short: no bucket is claimed for nodes beyond the node area.
        if (reason == "node space")
        {
            fx.SpaceOptions = fx.SpaceOptions with { ClaimNodeBuckets = false };
            fx.Remount();
        }
        var model = new WorkloadModel();
        List<WorkloadPlan> plans;
        switch (reason)
        {
            case "node miss":
                Prepare(fx, model, TransactionWorkload.Generate(rng, transactions: 100, keySpace: 3000, durable: 0, maxOps: 20, maxPad: 120));
                // Every node written and clean, so the remount starts with none of them cached.
                fx.Checkpoint();
                fx.Remount();
                plans = TransactionWorkload.Generate(rng, transactions: 150, keySpace: 3000, durable: 0, maxOps: 10, maxPad: 120);
                break;
            case "journal full":
                plans = TransactionWorkload.Generate(rng, transactions: 300, keySpace: 400, durable: 0, maxOps: 10, maxPad: 500);
                break;
            default:
                // A btree of about 30 nodes, all on disk, that the churn's merges and splits replace.
                Prepare(fx, model, TransactionWorkload.GenerateFill(rng, keySpace: 56, block: 4));
                fx.Checkpoint();
                plans = TransactionWorkload.GenerateChurn(rng, transactions: 200, keySpace: 56, maxBlock: 3);
                break;
        }
        // For node space: a write-back every 40 transactions frees the nodes replaced since the last
        // one, reusable only once the journal entry that freed them is durable, and flushes nothing
        // after that entry. The next restructure finds the slots short; its restart's wait flushes.
        var writeBackEvery = reason == "node space" ? 40 : 0;
        var handler = new CountingRestartHandler(fx.Fs.Reclaim!);
        fx.Engine.SetRestartHandler(handler);
        var restartsBefore = fx.Fs.Transactor.Restarts;
        var readsBefore = fx.Engine.Stats.NodeReads;
        var counterBefore = ReadCounter(fx.Test);
        var expected = plans.Select(model.Apply).ToList();

        var (digests, runs) = RunAll(fx, plans, writeBackEvery);
        // Some churns restructure too little to run node space short: more churn until one does.
        for (var more = 0; reason == "node space" && handler.NodeSpaceWaits == 0 && more < 4; more++)
        {
            var extra = TransactionWorkload.GenerateChurn(rng, transactions: 200, keySpace: 56, maxBlock: 3);
            expected.AddRange(extra.Select(model.Apply));
            var (extraDigests, extraRuns) = RunAll(fx, extra, writeBackEvery);
            digests.AddRange(extraDigests);
            runs += extraRuns;
            plans.AddRange(extra);
        }

        var restarts = fx.Fs.Transactor.Restarts - restartsBefore;
        output.WriteLine($"{reason}: {runs} runs of {plans.Count} bodies, {restarts} restarts, {handler.JournalWaits} journal-space waits, " +
                         $"{handler.NodeSpaceWaits} node-space waits, {fx.Engine.Stats.NodeReads - readsBefore} node reads");
        switch (reason)
        {
            case "node miss":
                // Nothing ran short and nothing was injected: every restart was a node to read.
                Assert.True(restarts > 0, "no node miss restarted a transaction");
                Assert.Equal(0, handler.JournalWaits + handler.NodeSpaceWaits);
                Assert.True(fx.Engine.Stats.NodeReads - readsBefore >= restarts);
                break;
            case "journal full":
                Assert.True(handler.JournalWaits > 0, "the journal never filled");
                Assert.True(fx.Journal.Stats.JournalFullWaits > 0);
                break;
            default:
                Assert.True(handler.NodeSpaceWaits > 0, "node space never ran short");
                break;
        }
        Assert.Equal(expected, digests);
        Assert.Equal(runs - plans.Count, restarts);
        Assert.Equal(counterBefore + (ulong)plans.Count, ReadCounter(fx.Test));
        Assert.Null(model.Compare(fx.Test));
        Assert.Null(CountedKeys.CheckSummary(fx.Test));

        // Each commit is in the journal once: a crash remount after a flush recovers the model.
        fx.Sync();
        fx.Remount();
        Assert.Null(model.Compare(fx.Test));
        Assert.Null(CountedKeys.CheckSummary(fx.Test));
    }

    private static void Prepare(BtreeFixture fx, WorkloadModel model, List<WorkloadPlan> plans)
    {
        foreach (var plan in plans)
        {
            fx.Fs.Transact(t => TransactionWorkload.Run(t, plan));
            model.Apply(plan);
        }
    }

    /// <summary>
    /// Runs every plan as a transaction (with a write-back after every <paramref name="writeBackEvery"/>
    /// of them, none when 0); returns the digests and how often bodies ran.
    /// </summary>
    private static (List<ulong> Digests, long Runs) RunAll(BtreeFixture fx, List<WorkloadPlan> plans, int writeBackEvery = 0)
    {
        long runs = 0;
        var digests = new List<ulong>();
        for (var i = 0; i < plans.Count; i++)
        {
            var plan = plans[i];
            digests.Add(fx.Fs.Transact(t =>
            {
                runs++; // test instrumentation: how often bodies ran
                return TransactionWorkload.Run(t, plan);
            }, plan.Durable ? CommitOptions.Durable : CommitOptions.Default));
            if (writeBackEvery > 0 && i % writeBackEvery == writeBackEvery - 1)
                fx.Engine.WriteBack(null);
        }
        return (digests, runs);
    }
}

/// <summary>Counts the journal-space and node-space restarts it resolves (passing each on to the mount's handler).</summary>
internal sealed class CountingRestartHandler(IRestartHandler inner) : IRestartHandler
{
    private int _journalWaits;
    private int _nodeSpaceWaits;

    public int JournalWaits => Volatile.Read(ref _journalWaits);

    public int NodeSpaceWaits => Volatile.Read(ref _nodeSpaceWaits);

    public bool WaitForJournalSpace(int attempt)
    {
        Interlocked.Increment(ref _journalWaits);
        return inner.WaitForJournalSpace(attempt);
    }

    public bool WaitForNodeSpace(int attempt, int slotsNeeded)
    {
        Interlocked.Increment(ref _nodeSpaceWaits);
        return inner.WaitForNodeSpace(attempt, slotsNeeded);
    }
}
