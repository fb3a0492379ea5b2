// Overwriting part of an inode's extent map inside a transaction: every extent (or error or
// reservation key) overlapping [start, end) is deleted, or trimmed to what lies outside, or split
// in two when the range is inside it. Extents are indexed by their end, so the piece after the
// range keeps the original key position (its window moves forward) and the piece before it gets
// a new key at `start` (same window); a reflink pointer's pieces keep the range it took its
// references on. The triggers run on each position's (old, new) pair.
using Basalt.Format;
using Basalt.Transactions;

namespace Basalt.Data;

public static class ExtentEdits
{
    /// <summary>
    /// Clears sectors [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="inode"/>,
    /// editing at most <paramref name="maxKeys"/> keys; returns the sector up to which the range is
    /// now clear (<paramref name="end"/> when all of it is).
    /// </summary>
    public static ulong Clear(Transaction t, ulong inode, ulong start, ulong end, int maxKeys)
    {
        if (start >= end)
            return end;
        var edited = 0;
        var from = ExtentStore.EndPos(inode, start + 1);
        var last = ExtentStore.EndPos(inode, ulong.MaxValue - 1);
        while (true)
        {
            var keys = t.Range(BtreeId.Extents, from, last, 64);
            if (keys.Count == 0)
                return end;
            foreach (var (key, value) in keys)
            {
                var ks = key.Pos.Offset - key.Size;
                var ke = key.Pos.Offset;
                if (ks >= end)
                    return end;
                if (edited == maxKeys)
                    return Math.Max(start, ks);
                edited++;
                if (ks < start)
                    t.Set(BtreeId.Extents, new Bkey(ExtentStore.EndPos(inode, start), key.Type, (uint)(start - ks)), Piece(key, value, ks, start));
                if (ke > end)
                {
                    t.Set(BtreeId.Extents, new Bkey(key.Pos, key.Type, (uint)(ke - end)), Piece(key, value, end, ke));
                    return end;
                }
                t.Delete(BtreeId.Extents, key.Pos);
            }
            if (keys.Count < 64)
                return end;
            from = keys[^1].Key.Pos.Successor();
        }
    }

    /// <summary>
    /// The value of the piece [<paramref name="from"/>, <paramref name="to"/>) of a key: an extent's
    /// window moves to the piece's first sector; a reflink pointer's idx does too, and its pads grow
    /// so it still names the range it took its references on; inline data keeps the piece's bytes;
    /// other values stay as they are.
    /// </summary>
    public static byte[] Piece(in Bkey key, byte[] value, ulong from, ulong to)
    {
        var ks = key.Pos.Offset - key.Size;
        if (from == ks && to == key.Pos.Offset)
            return value;
        switch (key.Type)
        {
            case KeyType.Extent when ExtentValue.TryRead(value, out var extent, out _):
                return from == ks ? value : extent.WithWindow(extent.Window + (uint)(from - ks)).ToBytes();
            case KeyType.ReflinkP when ReflinkPointer.TryRead(value, out var pointer, out _):
                return pointer.Piece(ks, key.Pos.Offset, from, to).ToBytes();
            case KeyType.InlineData when value.Length == (int)key.Size * FormatLimits.SectorSize:
                return value.AsSpan((int)(from - ks) * FormatLimits.SectorSize, (int)(to - from) * FormatLimits.SectorSize).ToArray();
            default:
                return value;
        }
    }
}
