using Basalt.Btree;
using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Btree.BtreeTestData;

namespace Basalt.Tests.Btree;

/// <summary>
/// <see cref="Basalt.Btree.Btree.TryGetAtOrAfter"/>: the first key in [pos, end] with its value,
/// checked against a model from every position, across leaf boundaries, over runs that are
/// unwritten or hold deletions, after a crash that leaves the keys in the journal only, and with
/// node misses and injected restarts.
/// </summary>
public sealed class BtreeAtOrAfterTests(ITestOutputHelper output)
{
    private const int ValueBuffer = 128;

    [Fact]
    public void An_empty_btree_has_no_key_at_or_after_any_position()
    {
        using var fx = new BtreeFixture();
        Span<byte> buffer = stackalloc byte[ValueBuffer];
        Assert.False(fx.Test.TryGetAtOrAfter(Bpos.Min, Bpos.Max, buffer, out var key, out var length));
        Assert.Equal(0, length);
        Assert.Equal(default, key);
        Assert.False(fx.Test.TryGetAtOrAfter(new Bpos(5, 5), Bpos.Max, buffer, out _, out _));
        Assert.False(fx.Test.TryGetAtOrAfter(Bpos.Max, Bpos.Max, buffer, out _, out _));
    }

    [Theory]
    [InlineData(256L * 1024 * 1024, 0.0)]
    [InlineData(24L * 4096, 0.0)]
    [InlineData(256L * 1024 * 1024, 0.2)]
    public void Every_position_finds_the_first_key_at_or_after_it_across_leaves(long cacheBudget, double restarts)
    {
        var seed = TestSeed.Get(output);
        using var fx = new BtreeFixture(cacheBudget: cacheBudget, seed: seed);
        var model = Fill(fx.Test, Enumerable.Range(0, 2500).Select(i => (long)i * 2));
        fx.Checkpoint();
        fx.RestartInjection = restarts > 0 ? new RestartInjection(seed, restarts) : null;
        fx.Remount();
        Assert.True(fx.Test.Root!.Level > 0, "the keys span several leaves");
        AssertMatchesModel(fx.Test, model, 5001);
        if (fx.RestartInjection is { } injection)
            Assert.True(injection.Injected > 0);
    }

    [Fact]
    public void Unwritten_keys_and_deletions_shadow_what_the_nodes_hold_on_disk()
    {
        var seed = TestSeed.Get(output);
        using var fx = new BtreeFixture(seed: seed);
        var model = Fill(fx.Test, Enumerable.Range(0, 2500).Select(i => (long)i * 3));
        fx.Checkpoint();
        var rng = new Random(seed);
        for (var n = 0; n < 600; n++)
        {
            var i = rng.Next(7500);
            if (rng.Next(2) == 0)
            {
                fx.Test.Delete(BtreeFixture.Pos(i));
                model.Remove(BtreeFixture.Pos(i));
            }
            else
            {
                Fill(fx.Test, [i], salt: 1, model);
            }
        }
        // A run of leaves emptied: a search from inside it goes on to the first leaf with a key.
        fx.Test.DeleteRange(BtreeFixture.Pos(2000), BtreeFixture.Pos(5000));
        foreach (var pos in model.Keys.Where(p => p >= BtreeFixture.Pos(2000) && p <= BtreeFixture.Pos(5000)).ToList())
            model.Remove(pos);
        AssertMatchesModel(fx.Test, model, 7501);
        Span<byte> buffer = stackalloc byte[ValueBuffer];
        Assert.False(fx.Test.TryGetAtOrAfter(BtreeFixture.Pos(2000), BtreeFixture.Pos(5000), buffer, out _, out _));
    }

    [Fact]
    public void Keys_only_in_the_journal_are_found_after_a_crash()
    {
        using var fx = new BtreeFixture();
        var model = Fill(fx.Test, Enumerable.Range(0, 1000).Select(i => (long)i * 4));
        fx.Checkpoint();
        Fill(fx.Test, Enumerable.Range(0, 1000).Select(i => ((long)i * 4) + 2), model: model);
        fx.Sync();
        fx.Remount();
        AssertMatchesModel(fx.Test, model, 4001);
    }

    [Fact]
    public void The_last_leaf_key_is_found_and_nothing_lies_after_it()
    {
        using var fx = new BtreeFixture();
        var last = new Bpos(ulong.MaxValue, ulong.MaxValue, 0);
        fx.Test.Insert(new Bpos(1, 1), [1]);
        fx.Test.Insert(last, [2, 3]);
        Span<byte> buffer = stackalloc byte[ValueBuffer];
        Assert.True(fx.Test.TryGetAtOrAfter(new Bpos(1, 2), Bpos.Max, buffer, out var key, out var length));
        Assert.Equal(last, key.Pos);
        Assert.Equal([2, 3], buffer[..length].ToArray());
        Assert.True(fx.Test.TryGetAtOrAfter(last, last, buffer, out key, out _));
        Assert.Equal(last, key.Pos);
        Assert.False(fx.Test.TryGetAtOrAfter(Bpos.Max, Bpos.Max, buffer, out _, out _));
        Assert.False(fx.Test.TryGetAtOrAfter(new Bpos(1, 2), last.Predecessor(), buffer, out _, out _));
        Assert.False(fx.Test.TryGetAtOrAfter(new Bpos(1, 2), new Bpos(1, 1), buffer, out _, out _));
    }

    [Fact]
    public void A_value_longer_than_the_buffer_reports_its_length_and_is_not_copied()
    {
        using var fx = new BtreeFixture();
        fx.Test.Insert(new Bpos(1, 5), [1, 2, 3, 4, 5]);
        Span<byte> small = stackalloc byte[3];
        small.Fill(9);
        Assert.True(fx.Test.TryGetAtOrAfter(new Bpos(1, 1), Bpos.Max, small, out var key, out var length));
        Assert.Equal(new Bpos(1, 5), key.Pos);
        Assert.Equal(5, length);
        Assert.Equal([9, 9, 9], small.ToArray());
    }

    /// <summary>From every position below <paramref name="limit"/> (and from between keys), the answer is the model's.</summary>
    private static void AssertMatchesModel(Basalt.Btree.Btree tree, SortedDictionary<Bpos, byte[]> model, int limit)
    {
        var keys = model.Keys.ToList();
        Span<byte> buffer = stackalloc byte[ValueBuffer];
        var next = 0;
        for (var i = 0; i < limit; i++)
        {
            var pos = BtreeFixture.Pos(i);
            while (next < keys.Count && keys[next] < pos)
                next++;
            var found = tree.TryGetAtOrAfter(pos, Bpos.Max, buffer, out var key, out var length);
            if (next == keys.Count)
            {
                Assert.False(found, $"after {pos.ToText()}: {key.ToText()} where the model has nothing");
                continue;
            }
            Assert.True(found, $"after {pos.ToText()}: nothing where the model has {keys[next].ToText()}");
            Assert.Equal(keys[next], key.Pos);
            Assert.Equal(model[keys[next]], buffer[..length].ToArray());
            // The end bound is inclusive: just before the key there is nothing.
            if (keys[next] > pos)
                Assert.False(tree.TryGetAtOrAfter(pos, keys[next].Predecessor(), buffer, out _, out _));
        }
    }
}
