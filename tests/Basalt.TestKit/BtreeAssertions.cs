// Structural checks for btree tests, written against the public API only (iteration at each
// level), so an engine bug cannot confirm itself through shared internals.
using Basalt.Format;
using Xunit;

namespace Basalt.TestKit;

public static class BtreeAssertions
{
    /// <summary>
    /// Every interior level's pointer keys tile [min, max] exactly: the first child starts at min,
    /// each next child starts right after the previous one's max, the last ends at max.
    /// Returns the number of levels.
    /// </summary>
    public static int AssertTopology(Basalt.Btree.Btree tree)
    {
        if (tree.Root is not { } root)
            return 0;
        for (var level = (byte)1; level <= root.Level; level++)
        {
            var expectedMin = Bpos.Min;
            var last = Bpos.Min;
            var count = 0;
            var it = tree.Iterate(Bpos.Min, Bpos.Max, level: level);
            while (it.MoveNext())
            {
                Assert.Equal(KeyType.BtreePtr, it.Key.Type);
                Assert.True(BtreePtrValue.TryRead(it.Value, out var ptr, out var problem), problem);
                Assert.True(ptr.MinKey == expectedMin,
                    $"{tree.Id.ToText()} level {level}: child ending at {it.Key.Pos.ToText()} starts at {ptr.MinKey.ToText()}, expected {expectedMin.ToText()}");
                Assert.True(ptr.MinKey <= it.Key.Pos);
                last = it.Key.Pos;
                count++;
                if (!last.IsMax)
                    expectedMin = last.Successor();
            }
            Assert.True(count > 0, $"level {level} is empty");
            Assert.True(last.IsMax, $"{tree.Id.ToText()} level {level}: last child ends at {last.ToText()}, not max");
        }
        return root.Level + 1;
    }

    /// <summary>The btree's keys and values equal the model exactly (forward scan).</summary>
    public static void AssertContents(Basalt.Btree.Btree tree, SortedDictionary<Bpos, byte[]> model)
    {
        using var expected = model.GetEnumerator();
        var it = tree.Iterate(Bpos.Min, Bpos.Max);
        var n = 0;
        while (it.MoveNext())
        {
            Assert.True(expected.MoveNext(), $"extra key {it.Key.Pos.ToText()} after {n} keys");
            Assert.True(expected.Current.Key == it.Key.Pos, $"key {n}: expected {expected.Current.Key.ToText()}, found {it.Key.Pos.ToText()}");
            Assert.True(expected.Current.Value.AsSpan().SequenceEqual(it.Value), $"value of {it.Key.Pos.ToText()} differs");
            n++;
        }
        Assert.False(expected.MoveNext(), $"missing key {(n < model.Count ? model.Keys.ElementAt(n).ToText() : "?")} after {n} keys");
    }

    /// <summary>Every key and value of the btree, by a forward scan.</summary>
    public static SortedDictionary<Bpos, byte[]> Contents(Basalt.Btree.Btree tree)
    {
        var contents = new SortedDictionary<Bpos, byte[]>();
        var it = tree.Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
            contents[it.Key.Pos] = it.Value.ToArray();
        return contents;
    }

    /// <summary>True when both hold the same keys with the same values.</summary>
    public static bool SameContents(SortedDictionary<Bpos, byte[]> a, SortedDictionary<Bpos, byte[]> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v.AsSpan().SequenceEqual(kv.Value));
}
