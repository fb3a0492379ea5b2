// Inline data: a small file's sectors held in its extent key instead of a bucket. The key sits
// where an extent of the same range would, (inode, end sector, U32_MAX) with size = sectors, and
// its value is exactly those sectors' bytes. It has no pointer, no checksum of its own (the node
// and the journal entry that hold it are checksummed) and no backpointer; it charges no bucket,
// only the inode's sector count. Because the bytes travel in the journal entry of the commit
// that writes them, a small file made durable by fsync costs one journal write and one device
// flush: no data write has to be flushed before the entry (rule g has nothing to order).
using Basalt.Btree;
using Basalt.Format;

namespace Basalt.Data;

public static class InlineData
{
    /// <summary>The most sectors one inline key holds (4 KiB): a file stays inline only while it is that small.</summary>
    public const int MaxSectors = 8;

    /// <summary>The most bytes a file may hold inline.</summary>
    public const int MaxBytes = MaxSectors * FormatLimits.SectorSize;

    internal static bool Validate(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        var size = context.Key.Size;
        problem = size is 0 or > MaxSectors
            ? $"inline data of {size} sectors (1 to {MaxSectors})"
            : value.Length != (int)size * FormatLimits.SectorSize
                ? $"inline data of {size} sectors holds {value.Length} bytes, not {size * FormatLimits.SectorSize}"
                : null;
        return problem is null;
    }

    internal static string ToText(ReadOnlySpan<byte> value) => $"inline data, {value.Length} bytes";

    /// <summary>Inline data charges no bucket: only the inode's sector count follows it.</summary>
    internal static void Trigger(ITriggerTransaction t, BtreeId btree, in KeyVersion oldKey, in KeyVersion newKey) =>
        ExtentTriggers.CountInodeSectors(t, btree, oldKey, newKey, static type => type == KeyType.InlineData);
}
