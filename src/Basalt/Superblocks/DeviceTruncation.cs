// A device shorter than the size its superblock records (a truncated image file, a block device
// smaller than the one the filesystem was made on): how it is recognised, and what the missing
// tail held. The superblock is read from the device as it is (the start copies are the anchor;
// SuperblockIo.Read), so a truncation that leaves no good copy is not recognised here: the device is
// then not a usable Basalt filesystem, and the caller's own read reports why.
//
// Recognised, the device is wrapped in a TruncatedDevice that presents the recorded size and
// fails reads of the missing tail as I/O errors: read-only users (list, show-super, fsck -n) see
// the damage where it is, and fsck repairs it (docs/cli.md, "Truncated images").
using System.Globalization;
using Basalt.Devices;
using Basalt.Diagnostics;

namespace Basalt.Superblocks;

public static class DeviceTruncation
{
    /// <summary>
    /// <paramref name="device"/> wrapped in a <see cref="TruncatedDevice"/> when it is shorter than
    /// the size its newest good superblock records; null when it is not, or when no superblock can
    /// be read (the caller's own read then reports what is wrong).
    /// </summary>
    public static TruncatedDevice? Detect(IBlockDevice device, bool ownsDevice = false) => Detect(device, out _, ownsDevice);

    /// <inheritdoc cref="Detect(IBlockDevice, bool)"/>
    /// <param name="read">The superblock read from <paramref name="device"/> (null when that failed).</param>
    public static TruncatedDevice? Detect(IBlockDevice device, out SuperblockReadResult? read, bool ownsDevice = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        try
        {
            read = SuperblockIo.Read(device);
        }
        catch (BasaltException)
        {
            read = null;
            return null;
        }
        var recorded = read.Superblock.DeviceSize;
        return device.Size < recorded && recorded % Format.FormatLimits.SectorSize == 0
            ? new TruncatedDevice(device, recorded, ownsDevice)
            : null;
    }

    /// <summary>
    /// The one line read-only commands print about a device shorter than the superblock
    /// <paramref name="read"/> found records ("truncated: the image is N bytes, the superblock
    /// records M bytes: the missing bytes … held …; run basalt fsck"); null when it is not short.
    /// </summary>
    public static string? Note(IBlockDevice device, SuperblockReadResult read)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(read);
        var recorded = read.Superblock.DeviceSize;
        if (device.Size >= recorded)
            return null;
        var image = device is IExtensibleDevice { CanExtend: true };
        return string.Create(CultureInfo.InvariantCulture,
            $"truncated: the {(image ? "image" : "device")} is {TruncatedDevice.LengthOf(device)} bytes, the superblock records {recorded} bytes: ") +
            MissingText(read, device.Size) + "; run basalt fsck";
    }

    /// <summary>
    /// What lay in the bytes from <paramref name="available"/> to the size the superblock
    /// <paramref name="read"/> found records: "the missing bytes N..M-1 held journal buckets a..b
    /// (n of t), node slots at bytes x..y (k of a node region's s), superblock copy 2 at byte c"
    /// (only the parts that were there; a copy counts as lost when its encoding does not fit).
    /// </summary>
    public static string MissingText(SuperblockReadResult read, long available)
    {
        ArgumentNullException.ThrowIfNull(read);
        var sb = read.Superblock;
        var copyBytes = Math.Max(SuperblockFormat.HeaderSize, read.Encoded.Length);
        var end = sb.DeviceSize;
        var parts = new List<string>();
        foreach (var range in sb.JournalBuckets)
        {
            // The bucket the cut passes through counts: it cannot be read whole.
            var first = Math.Max(range.Start, (ulong)(available / sb.BucketSize));
            if (first < range.End)
            {
                var count = range.End - first;
                parts.Add(count == 1 ? $"journal bucket {first}" : $"journal buckets {first}..{range.End - 1} ({count} of {range.Count})");
            }
        }
        foreach (var (offset, length) in sb.NodeRegionBytes())
        {
            var regionEnd = offset + length;
            if (available >= regionEnd)
                continue;
            // A slot the cut passes through is lost too: it cannot be read whole.
            var firstByte = Math.Max(offset, available / sb.NodeSize * sb.NodeSize);
            parts.Add(string.Create(CultureInfo.InvariantCulture,
                $"node slots at bytes {firstByte}..{regionEnd - 1} ({(regionEnd - firstByte) / sb.NodeSize} of a node region's {length / sb.NodeSize})"));
        }
        for (var i = 0; i < sb.CopyOffsets.Count; i++)
        {
            if (sb.CopyOffsets[i] + copyBytes > available)
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"superblock copy {i} at byte {sb.CopyOffsets[i]}"));
        }
        var held = parts.Count == 0 ? "held no metadata" : "held " + string.Join(", ", parts);
        return string.Create(CultureInfo.InvariantCulture, $"the missing bytes {available}..{end - 1} {held}");
    }
}
