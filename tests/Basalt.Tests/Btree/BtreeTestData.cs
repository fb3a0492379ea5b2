using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.Tests.Btree;

internal static class BtreeTestData
{
    /// <summary>A deterministic value for key i (length 0..99) so any reader can check it.</summary>
    public static byte[] ValueOf(long i, int salt = 0)
    {
        var value = new byte[(int)((i * 7) + salt) % 100];
        for (var j = 0; j < value.Length; j++)
            value[j] = (byte)(i + j + salt);
        return value;
    }

    public static SortedDictionary<Bpos, byte[]> Fill(Basalt.Btree.Btree tree, IEnumerable<long> keys, int salt = 0, SortedDictionary<Bpos, byte[]>? model = null)
    {
        model ??= [];
        foreach (var i in keys)
        {
            var v = ValueOf(i, salt);
            tree.Insert(BtreeFixture.Pos(i), v);
            model[BtreeFixture.Pos(i)] = v;
        }
        return model;
    }

    /// <summary>The level-1 pointers (child max key, parsed value) of a btree at least two levels deep.</summary>
    public static List<(Bpos Max, BtreePtrValue Ptr)> Pointers(Basalt.Btree.Btree tree, byte level = 1)
    {
        var list = new List<(Bpos, BtreePtrValue)>();
        var it = tree.Iterate(Bpos.Min, Bpos.Max, level: level);
        while (it.MoveNext())
        {
            Assert.True(BtreePtrValue.TryRead(it.Value, out var ptr, out _));
            list.Add((it.Key.Pos, ptr));
        }
        return list;
    }
}
