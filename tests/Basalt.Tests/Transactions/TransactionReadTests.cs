// What a transaction body reads: its own updates over the btree (point reads and ranges), while
// nothing it has not committed is visible to anyone else; a body that throws commits nothing.
using Basalt.Format;
using Basalt.TestKit;
using Basalt.Transactions;
using Xunit.Abstractions;
using static Basalt.Tests.Transactions.TransactionTestData;

namespace Basalt.Tests.Transactions;

public sealed class TransactionReadTests(ITestOutputHelper output)
{
    private static readonly Bpos s_a = new(5, 1);
    private static readonly Bpos s_b = new(5, 2);
    private static readonly Bpos s_c = new(5, 3);
    private static readonly Bpos s_d = new(5, 4);

    [Fact]
    public void Point_reads_see_own_inserts_overwrites_and_deletes_and_other_readers_see_none_before_commit()
    {
        using var fx = new BtreeFixture();
        fx.Fs.Transact(t =>
        {
            t.Set(BtreeId.Test, s_a, [1]);
            t.Set(BtreeId.Test, s_b, [2]);
            t.Set(BtreeId.Test, new Bkey(s_d, KeyType.Counted), CountedKeys.Value(40));
        });
        var seqBefore = fx.Journal.CommittedSeq;

        fx.Fs.Transact(t =>
        {
            Assert.True(t.TryGet(BtreeId.Test, s_a, out var a) && a.SequenceEqual(new byte[] { 1 }));
            t.Set(BtreeId.Test, s_a, [10]);
            Assert.True(t.TryGet(BtreeId.Test, s_a, out a) && a.SequenceEqual(new byte[] { 10 }));

            t.Delete(BtreeId.Test, s_b);
            Assert.False(t.TryGet(BtreeId.Test, s_b, out _));
            Assert.False(t.TryGet(BtreeId.Test, s_b, out var deletedKey, out _));
            Assert.Equal(KeyType.Deleted, deletedKey.Type);

            Assert.False(t.TryGet(BtreeId.Test, s_c, out _));
            t.Set(BtreeId.Test, s_c, [30]);
            Assert.True(t.TryGet(BtreeId.Test, s_c, out var c) && c.SequenceEqual(new byte[] { 30 }));
            t.Delete(BtreeId.Test, s_c);
            Assert.False(t.TryGet(BtreeId.Test, s_c, out _));
            t.Set(BtreeId.Test, s_c, [31]);

            // The key type is read back too: a counted key overwritten by a cookie is a cookie.
            Assert.True(t.TryGet(BtreeId.Test, s_d, out var dKey, out _));
            Assert.Equal(KeyType.Counted, dKey.Type);
            t.Set(BtreeId.Test, s_d, [4, 4]);
            Assert.True(t.TryGet(BtreeId.Test, s_d, out dKey, out var d));
            Assert.Equal(KeyType.Cookie, dKey.Type);
            Assert.Equal([4, 4], d);

            // Another reader, on another thread, sees the btree as last committed.
            var seen = Task.Run(() => Snapshot(fx.Test)).GetAwaiter().GetResult();
            Assert.Equal([1], seen[s_a].Value);
            Assert.Equal([2], seen[s_b].Value);
            Assert.False(seen.ContainsKey(s_c));
            Assert.Equal(KeyType.Counted, seen[s_d].Type);
            Assert.Equal((1UL, 40UL), CountedKeys.ReadSummary(fx.Test));
            Assert.Equal(seqBefore, fx.Journal.CommittedSeq);
        });

        var after = Snapshot(fx.Test);
        Assert.Equal([10], after[s_a].Value);
        Assert.False(after.ContainsKey(s_b));
        Assert.Equal([31], after[s_c].Value);
        Assert.Equal(KeyType.Cookie, after[s_d].Type);
        Assert.Equal([4, 4], after[s_d].Value);
        // The counted key's removal ran its trigger: the summary counts nothing.
        Assert.Equal((0UL, 0UL), CountedKeys.ReadSummary(fx.Test));
        Assert.Null(CountedKeys.CheckSummary(fx.Test));

        // And it is one journal commit that a crash remount replays whole.
        fx.Sync();
        fx.Remount();
        Assert.Null(Difference(after, Snapshot(fx.Test)));
    }

    /// <summary>
    /// Range inside a transaction equals a model of "own updates over the btree", for random own
    /// inserts, overwrites and deletes over a btree of several leaves, random bounds and limits.
    /// </summary>
    [Fact]
    public void Range_merges_own_updates_with_the_btree_in_order_for_any_bounds_and_limit()
    {
        var seed = TestSeed.Get(output, nameof(Range_merges_own_updates_with_the_btree_in_order_for_any_bounds_and_limit));
        var rng = new Random(seed);
        using var fx = new BtreeFixture(seed: seed);
        var committed = new SortedDictionary<Bpos, byte[]>();
        // Enough keys for many leaves of 4 KiB, every other position so own inserts fall between them.
        fx.Fs.Transact(t =>
        {
            for (var i = 10; i < 610; i += 2)
                t.Set(BtreeId.Test, BtreeFixture.Pos(i), Bytes(i, 0));
        });
        for (var i = 10; i < 610; i += 2)
            committed[BtreeFixture.Pos(i)] = Bytes(i, 0);
        Assert.True(fx.Test.Root!.Level > 0, "the btree should span several leaves");

        for (var round = 0; round < 40; round++)
        {
            var view = new SortedDictionary<Bpos, byte[]>(committed);
            var ops = new List<(int Key, bool Delete)>();
            for (var n = rng.Next(1, 40); n > 0; n--)
                ops.Add((rng.Next(0, 620), rng.Next(3) == 0));
            var queries = new List<(int Start, int End, int Limit)>();
            for (var n = 0; n < 6; n++)
            {
                var start = rng.Next(0, 620);
                queries.Add((start, Math.Max(0, start + rng.Next(-3, 120)), rng.Next(4) == 0 ? int.MaxValue : rng.Next(0, 30)));
            }
            foreach (var (key, delete) in ops)
            {
                var pos = PosOf(key);
                if (delete)
                    view.Remove(pos);
                else
                    view[pos] = Bytes(key, round + 1);
            }
            var commit = rng.Next(2) == 0;
            var ex = Record.Exception(() => fx.Fs.Transact(t =>
            {
                foreach (var (key, delete) in ops)
                {
                    if (delete)
                        t.Delete(BtreeId.Test, PosOf(key));
                    else
                        t.Set(BtreeId.Test, PosOf(key), Bytes(key, round + 1));
                }
                foreach (var (start, end, limit) in queries)
                {
                    var (from, to) = (PosOf(start), PosOf(end));
                    var expected = view.Where(kv => kv.Key >= from && kv.Key <= to).Take(limit).ToList();
                    var got = t.Range(BtreeId.Test, from, to, limit);
                    var where = $"round {round}, range {from.ToText()}..{to.ToText()} limit {limit}";
                    Assert.True(expected.Select(kv => kv.Key).SequenceEqual(got.Select(g => g.Key.Pos)),
                        $"{where}: expected [{string.Join(", ", expected.Select(kv => kv.Key.ToText()))}], got [{string.Join(", ", got.Select(g => g.Key.Pos.ToText()))}]");
                    for (var i = 0; i < got.Count; i++)
                        Assert.True(expected[i].Value.AsSpan().SequenceEqual(got[i].Value), $"{where}: value of {got[i].Key.Pos.ToText()}");
                }
                if (!commit)
                    throw new AbortException();
            }));
            if (commit)
            {
                Assert.Null(ex);
                committed = view;
            }
            else
            {
                Assert.IsType<AbortException>(ex);
            }
            BtreeAssertions.AssertContents(fx.Test, committed);
        }
    }

    /// <summary>
    /// Regression (found by the test above): with a limit, own deletes of committed keys made
    /// Range stop reading the btree too early and merge an own insert from further on in place
    /// of the committed keys in between.
    /// </summary>
    [Fact]
    public void Range_with_a_limit_does_not_skip_committed_keys_hidden_behind_own_deletes()
    {
        using var fx = new BtreeFixture();
        fx.Fs.Transact(t =>
        {
            for (var i = 1; i <= 5; i++)
                t.Set(BtreeId.Test, BtreeFixture.Pos(i), [(byte)i]);
        });
        fx.Fs.Transact(t =>
        {
            t.Delete(BtreeId.Test, BtreeFixture.Pos(1));
            t.Delete(BtreeId.Test, BtreeFixture.Pos(2));
            t.Set(BtreeId.Test, BtreeFixture.Pos(9), [9]);
            var got = t.Range(BtreeId.Test, Bpos.Min, Bpos.Max, limit: 2);
            Assert.Equal([BtreeFixture.Pos(3), BtreeFixture.Pos(4)], got.Select(g => g.Key.Pos));
            got = t.Range(BtreeId.Test, Bpos.Min, Bpos.Max, limit: 4);
            Assert.Equal([BtreeFixture.Pos(3), BtreeFixture.Pos(4), BtreeFixture.Pos(5), BtreeFixture.Pos(9)], got.Select(g => g.Key.Pos));
        });
    }

    [Fact]
    public void A_body_that_throws_commits_nothing_and_its_exception_reaches_the_caller()
    {
        using var fx = new BtreeFixture();
        fx.Fs.Transact(t =>
        {
            t.Set(BtreeId.Test, s_a, [1]);
            t.Set(BtreeId.Test, new Bkey(s_b, KeyType.Counted), CountedKeys.Value(7));
        }, CommitOptions.Durable);
        var before = Snapshot(fx.Test);
        var seq = fx.Journal.CommittedSeq;
        var commits = fx.Fs.Transactor.Commits;

        var thrown = new AbortException();
        var caught = Assert.Throws<AbortException>(() => fx.Fs.Transact(t =>
        {
            t.Set(BtreeId.Test, s_a, [2]);
            t.Delete(BtreeId.Test, s_b);
            t.Set(BtreeId.Test, new Bkey(s_c, KeyType.Counted), CountedKeys.Value(100));
            foreach (var (key, _) in t.Range(BtreeId.Test, Bpos.Min, Bpos.Max))
                t.Delete(BtreeId.Test, key.Pos);
            throw thrown;
        }, CommitOptions.Durable));
        Assert.Same(thrown, caught);
        Assert.Null(Difference(before, Snapshot(fx.Test)));
        Assert.Equal(seq, fx.Journal.CommittedSeq);
        Assert.Equal(commits, fx.Fs.Transactor.Commits);
        Assert.Null(CountedKeys.CheckSummary(fx.Test));

        // Nothing reached the journal either, and the filesystem carries on.
        fx.Remount();
        Assert.Null(Difference(before, Snapshot(fx.Test)));
        fx.Fs.Transact(t => t.Set(BtreeId.Test, s_c, [3]));
        Assert.True(fx.Test.TryGet(s_c, out var c) && c.SequenceEqual(new byte[] { 3 }));
    }

    private static Bpos PosOf(int key) => BtreeFixture.Pos(key);

    private static byte[] Bytes(int key, int version) => [(byte)key, (byte)(key >> 8), (byte)version, .. new byte[key % 50]];

    private sealed class AbortException : Exception;
}
