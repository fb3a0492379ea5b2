// Commit order is journal seq order: with several threads committing at once (journal writer and
// reclaim running as threads), each transaction's place in the order, as a shared counter shows
// it, agrees with the seq of the entry it went into, and replay after a crash applies the commits
// in that order, also among the several commits one entry holds. And what a commit reports: its
// entry's seq and the positions it updated, those its triggers added included.
using Basalt.Format;
using Basalt.Journal;
using Basalt.TestKit;
using Basalt.Transactions;
using static Basalt.Tests.Transactions.TransactionTestData;

namespace Basalt.Tests.Transactions;

public sealed class TransactionCommitOrderTests
{
    private const int Threads = 4;
    private const int PerThread = 50;

    [Fact]
    public async Task Concurrent_commits_are_ordered_by_seq_and_replay_in_that_order()
    {
        // No flush delay timer: entries close only when a commit waits for a flush or one is full,
        // so commits without a flush share entries.
        var journal = new JournalOptions { FlushDelay = TimeSpan.FromHours(1) };
        using var fx = new BtreeFixture(journal: journal);

        // Two commits without a flush go into one entry; a flushed commit joins it and closes it.
        var s1 = Bump(fx, CommitOptions.Default, out _);
        var s2 = Bump(fx, CommitOptions.Default, out _);
        var s3 = Bump(fx, CommitOptions.Durable, out _);
        var s4 = Bump(fx, CommitOptions.Default, out _);
        Assert.Equal(s1, s2);
        Assert.Equal(s1, s3);
        Assert.True(s4 > s3, $"seq {s4} after the flushed entry {s3}");
        Assert.True(fx.Journal.DurableSeq >= s3);

        var commits = new (ulong Value, ulong Seq)[Threads * PerThread];
        var threads = Enumerable.Range(0, Threads).Select(thread => Task.Factory.StartNew(() =>
        {
            for (var i = 0; i < PerThread; i++)
            {
                var options = i % 5 == 4 ? CommitOptions.Durable : CommitOptions.Default;
                var seq = Bump(fx, options, out var value, new Bpos(1, (ulong)((thread * 1000) + i)));
                commits[(thread * PerThread) + i] = (value, seq);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        await Task.WhenAll(threads);

        // Every increment took effect once: no lost update, no value twice (4 came before).
        Assert.Equal((ulong)(4 + commits.Length), ReadCounter(fx.Test));
        Assert.Equal(Enumerable.Range(5, commits.Length).Select(v => (ulong)v), commits.Select(x => x.Value).Order());
        // Counter order and seq order agree: sorted by counter value, seqs never go back.
        var bySeq = commits.OrderBy(x => x.Value).ToList();
        for (var i = 1; i < bySeq.Count; i++)
        {
            Assert.True(bySeq[i].Seq >= bySeq[i - 1].Seq,
                $"commit {bySeq[i].Value} has seq {bySeq[i].Seq}, before commit {bySeq[i - 1].Value} with seq {bySeq[i - 1].Seq}");
        }
        Assert.True(commits.Select(x => x.Seq).Distinct().Count() < commits.Length, "no two commits shared an entry");

        // Replay applies commits in order, also within an entry: the counter and every thread's
        // keys come back as the last commit left them.
        fx.Sync();
        var expected = Snapshot(fx.Test);
        fx.Remount();
        Assert.True(fx.Fs.Recovery.KeysReplayed > 0);
        Assert.Null(Difference(expected, Snapshot(fx.Test)));
        for (var thread = 0; thread < Threads; thread++)
        {
            for (var i = 0; i < PerThread; i++)
            {
                Assert.True(fx.Test.TryGet(new Bpos(1, (ulong)((thread * 1000) + i)), out var v));
                Assert.Equal(commits[(thread * PerThread) + i].Value, ReadU64(v));
            }
        }
    }

    /// <summary>
    /// What Transact reports: the seq of the entry that holds the commit, and the number of
    /// positions it updated (coalesced, with what triggers added); a body that changes nothing
    /// commits nothing.
    /// </summary>
    [Fact]
    public void A_commit_result_names_its_entry_and_counts_the_updates_triggers_added()
    {
        using var fx = new BtreeFixture();
        var (a, b, c) = (new Bpos(8, 1), new Bpos(8, 2), new Bpos(8, 3));
        var seq = fx.Journal.CommittedSeq;
        var commits = fx.Fs.Transactor.Commits;

        // Only reads: no commit, no seq, not even with a flush asked for.
        var found = fx.Fs.Transactor.Transact(t => t.TryGet(BtreeId.Test, a, out _), CommitOptions.Durable, out var none);
        Assert.False(found);
        Assert.Equal(default, none);
        Assert.Equal(seq, fx.Journal.CommittedSeq);
        Assert.Equal(commits, fx.Fs.Transactor.Commits);

        // Two counted keys and a cookie set twice: three positions, and the summary key the
        // counted keys' trigger wrote.
        var r1 = Commit(fx, t =>
        {
            t.Set(BtreeId.Test, new Bkey(a, KeyType.Counted), CountedKeys.Value(5));
            t.Set(BtreeId.Test, new Bkey(b, KeyType.Counted), CountedKeys.Value(7));
            t.Set(BtreeId.Test, c, [1]);
            t.Set(BtreeId.Test, c, [2]);
        });
        Assert.Equal(4, r1.Updates);
        Assert.True(r1.Seq > seq);
        Assert.Equal(fx.Journal.CommittedSeq, r1.Seq);
        Assert.True(fx.Journal.DurableSeq >= r1.Seq, $"durable {fx.Journal.DurableSeq}, commit {r1.Seq}");
        Assert.Equal((2UL, 12UL), CountedKeys.ReadSummary(fx.Test));
        Assert.Equal(commits + 1, fx.Fs.Transactor.Commits);

        // A cookie: no trigger. A counted key rewritten with its value: the trigger's pair nets to
        // nothing, so it writes no summary.
        Assert.Equal(1, Commit(fx, t => t.Set(BtreeId.Test, c, [3])).Updates);
        Assert.Equal(1, Commit(fx, t => t.Set(BtreeId.Test, new Bkey(a, KeyType.Counted), CountedKeys.Value(5))).Updates);
        Assert.Equal((2UL, 12UL), CountedKeys.ReadSummary(fx.Test));

        // A counted key deleted, another changed: two positions and the summary.
        var r2 = Commit(fx, t =>
        {
            t.Delete(BtreeId.Test, a);
            t.Set(BtreeId.Test, new Bkey(b, KeyType.Counted), CountedKeys.Value(9));
        });
        Assert.Equal(3, r2.Updates);
        Assert.True(r2.Seq >= r1.Seq);
        Assert.Equal((1UL, 9UL), CountedKeys.ReadSummary(fx.Test));

        // The entries replay to the same state.
        fx.Sync();
        var expected = Snapshot(fx.Test);
        fx.Remount();
        Assert.Null(Difference(expected, Snapshot(fx.Test)));
        Assert.Null(CountedKeys.CheckSummary(fx.Test));
    }

    private static CommitResult Commit(BtreeFixture fx, Action<Transaction> body)
    {
        fx.Fs.Transactor.Transact(t =>
        {
            body(t);
            return true;
        }, CommitOptions.Durable, out var result);
        return result;
    }

    /// <summary>Increments the counter (and sets <paramref name="mark"/> to the new value); returns the commit's seq.</summary>
    private static ulong Bump(BtreeFixture fx, CommitOptions options, out ulong value, Bpos? mark = null)
    {
        value = fx.Fs.Transactor.Transact(t =>
        {
            var next = ReadCounter(t) + 1;
            t.Set(BtreeId.Test, CounterPos, U64(next));
            if (mark is { } m)
                t.Set(BtreeId.Test, m, U64(next));
            return next;
        }, options, out var result);
        Assert.Equal(mark is null ? 1 : 2, result.Updates);
        return result.Seq;
    }
}
