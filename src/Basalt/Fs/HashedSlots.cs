// Hashed keys (dirents and xattrs) with linear probing. A name lives at the slot it hashes to or,
// when that is taken by another name, at the first free slot after it: a probe walks consecutive
// slots from the hash until it finds the name or a slot holding nothing. A removed entry whose
// next slot is occupied leaves a hash whiteout, so the probe of a name stored after it still
// reaches it; a whiteout with nothing after it is dropped, with the whiteouts just before it.
using Basalt.Btree;
using Basalt.Format;
using Basalt.Transactions;

namespace Basalt.Fs;

/// <summary>Reads up to <c>limit</c> keys in [start, end], ascending (a transaction's view or the btree's).</summary>
internal delegate List<(Bkey Key, byte[] Value)> RangeReader(Bpos start, Bpos end, int limit);

/// <summary>Where a probe for a name ended.</summary>
/// <param name="Found">The name is at <paramref name="Slot"/>.</param>
/// <param name="Slot">The name's slot when found, else the first free slot of its chain (where it would go).</param>
internal readonly record struct ProbeResult(bool Found, ulong Slot, byte[] Value);

internal static class HashedSlots
{
    private const int Batch = 32;

    /// <summary>Probes from <paramref name="start"/> for the entry <paramref name="matches"/> accepts.</summary>
    public static ProbeResult Find(RangeReader read, ulong owner, ulong start, KeyType liveType, Func<byte[], bool> matches)
    {
        var free = ulong.MaxValue;
        var at = start;
        while (true)
        {
            var keys = read(FsPositions.Slot(owner, at), FsPositions.Slot(owner, at + Batch - 1), Batch);
            var expect = at;
            foreach (var (key, value) in keys)
            {
                if (key.Pos.Inode != owner || key.Pos.Offset != expect || (key.Type != liveType && key.Type != KeyType.HashWhiteout))
                    return new ProbeResult(false, free == ulong.MaxValue ? expect : free, []);
                if (key.Type == KeyType.HashWhiteout)
                {
                    if (free == ulong.MaxValue)
                        free = expect;
                }
                else if (matches(value))
                {
                    return new ProbeResult(true, expect, value);
                }
                expect++;
            }
            if (expect < at + Batch)
                return new ProbeResult(false, free == ulong.MaxValue ? expect : free, []);
            at = expect;
        }
    }

    public static RangeReader Of(Transaction t, BtreeId btree) => (start, end, limit) => t.Range(btree, start, end, limit);

    public static RangeReader Of(Btree.Btree tree) => (start, end, limit) =>
    {
        var list = new List<(Bkey, byte[])>(Math.Min(limit, Batch));
        var it = tree.Iterate(start, end);
        while (list.Count < limit && it.MoveNext())
            list.Add((it.Key, it.Value.ToArray()));
        return list;
    };

    /// <summary>Removes the entry at <paramref name="slot"/>, keeping every probe chain through it intact.</summary>
    public static void Remove(Transaction t, BtreeId btree, ulong owner, ulong slot)
    {
        if (t.TryGet(btree, FsPositions.Slot(owner, slot + 1), out _, out _))
        {
            t.Set(btree, new Bkey(FsPositions.Slot(owner, slot), KeyType.HashWhiteout), []);
            return;
        }
        t.Delete(btree, FsPositions.Slot(owner, slot));
        // Whiteouts that now end their chain guard nothing.
        for (var s = slot - 1; s >= FsPositions.FirstNameSlot && slot - s <= Batch; s--)
        {
            if (!t.TryGet(btree, FsPositions.Slot(owner, s), out var key, out _) || key.Type != KeyType.HashWhiteout)
                break;
            t.Delete(btree, FsPositions.Slot(owner, s));
        }
    }
}
