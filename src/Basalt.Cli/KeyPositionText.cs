// What a key's position means in the allocation and data btrees, for `list`: their positions pack a
// device, a bucket, an lru index or a data sector into the inode and offset fields (docs/allocation.md,
// "Allocation info"), which the raw INODE:OFFSET:SNAPSHOT form hides. Null for btrees whose
// positions speak for themselves.
using System.Globalization;
using Basalt.Alloc;
using Basalt.Backpointers;
using Basalt.Format;

namespace Basalt.Cli;

internal static class KeyPositionText
{
    /// <summary>Non-zero gens a bucket_gens line names before it only counts the rest.</summary>
    private const int ShownGens = 16;

    public static string? Describe(BtreeId btree, in Bkey key, ReadOnlySpan<byte> value)
    {
        if (btree == BtreeId.BucketGens && key.Pos.Inode <= byte.MaxValue)
            return BucketGens(key.Pos, value);
        var pos = key.Pos;
        return btree switch
        {
            BtreeId.Alloc or BtreeId.NeedDiscard when SpacePositions.TryBucketOf(pos, out var b) => b.ToText(),
            BtreeId.Freespace when SpacePositions.TryBucketOf(pos, out var b) && key.Size > 0 && key.Size <= b.Bucket =>
                Invariant($"dev {b.Device} free buckets {b.Bucket - key.Size}..{b.Bucket - 1}"),
            BtreeId.Lru when SpacePositions.TryReadLru(pos, out var kind, out var index, out var b) =>
                Invariant($"{(kind == LruKind.Fragmentation ? "fragmentation" : "read")} lru index {index}: {b.ToText()}"),
            BtreeId.Accounting when DeviceUsage.TryReadPosition(pos, out var device, out var type) => Invariant($"dev {device} {type.ToText()}"),
            BtreeId.Backpointers when pos.Inode <= byte.MaxValue => Backpointer(pos),
            BtreeId.Extents when key.Size > 0 && key.Size <= pos.Offset =>
                Invariant($"inode {pos.Inode} bytes {(pos.Offset - key.Size) * FormatLimits.SectorSize}..{(pos.Offset * FormatLimits.SectorSize) - 1}"),
            _ => null,
        };
    }

    /// <summary>The buckets a bucket_gens key covers and its non-zero gens (absent gens are 0).</summary>
    private static string BucketGens(Bpos pos, ReadOnlySpan<byte> gens)
    {
        var first = pos.Offset * SpacePositions.GensPerKey;
        var text = new System.Text.StringBuilder(Invariant($"dev {pos.Inode} gens of buckets {first}..{first + SpacePositions.GensPerKey - 1}"));
        var shown = 0;
        var nonZero = 0;
        for (var i = 0; i < gens.Length; i++)
        {
            if (gens[i] == 0)
                continue;
            nonZero++;
            if (shown++ < ShownGens)
                text.Append(shown == 1 ? ": " : " ").Append(CultureInfo.InvariantCulture, $"{first + (ulong)i}={gens[i]}");
        }
        if (nonZero > ShownGens)
            text.Append(CultureInfo.InvariantCulture, $" and {nonZero - ShownGens} more");
        return text.ToString();
    }

    private static string Backpointer(Bpos pos)
    {
        var (device, sector, window) = BackpointerValue.Decode(pos);
        return Invariant($"dev {device} data at byte {(UInt128)sector * FormatLimits.SectorSize} window {window}");
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
