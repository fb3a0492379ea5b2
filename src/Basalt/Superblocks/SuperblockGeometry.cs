// The geometry decisions of `format`: from a device size and the user's options, choose the
// block, node and bucket sizes, where the superblock copies go, which buckets exist, the journal
// ranges and the node area. Every rule is in docs/format.md "Geometry"; the numbers
// here are the ones it quotes.
using Basalt.Diagnostics;
using Basalt.Format;
using static Basalt.Superblocks.SuperblockFormat;

namespace Basalt.Superblocks;

/// <summary>The layout format computes for one device.</summary>
public sealed record DeviceGeometry(
    int BlockSize,
    int NodeSize,
    int BucketSize,
    uint FirstBucket,
    ulong Nbuckets,
    BucketRange Journal,
    BucketRange NodeArea,
    IReadOnlyList<long> CopyOffsets);

public static class SuperblockGeometry
{
    public const int MinBlockSize = 512;
    public const int MaxBlockSize = 64 * 1024;
    public const int DefaultBlockSize = 4096;
    public const int MinNodeSize = 1024;
    public const int MaxNodeSize = 1024 * 1024;
    public const int DefaultMaxNodeSize = 256 * 1024;
    public const int MinBucketSize = 4096;
    public const int MaxBucketSize = 16 * 1024 * 1024;
    public const int MinDefaultBucketSize = 128 * 1024;
    public const int MaxDefaultBucketSize = 2 * 1024 * 1024;

    /// <summary>The default bucket size aims for at least this many buckets.</summary>
    public const long TargetBuckets = 16384;

    /// <summary>Buckets that must remain after the superblock areas and the journal.</summary>
    public const int MinUsableBuckets = 64;

    public const int MinJournalBuckets = 8;
    public const long MaxJournalBytes = 512L * 1024 * 1024;

    /// <summary>The journal is about 1/JournalShare of the device.</summary>
    public const int JournalShare = 128;

    public const int MinNodeAreaBuckets = 16;

    /// <summary>
    /// Node slots the default node area holds at least: what the first commits into empty btrees
    /// reserve, with room for the commit that claims the first btree bucket beyond it.
    /// </summary>
    public const int MinNodeAreaSlots = 64;

    /// <summary>The node area (the btree buckets format claims; more are claimed as btrees grow) is 1/NodeAreaShare of the buckets after the journal: replay after a crash allocates from it before it knows the claims.</summary>
    public const int NodeAreaShare = 4;

    /// <summary>Byte offsets of the copies format places on a device of <paramref name="deviceSize"/> bytes.</summary>
    public static IReadOnlyList<long> CopyOffsets(long deviceSize)
    {
        var list = new List<long>(CopyCount);
        if (deviceSize >= FirstCopyOffset + CopySize)
            list.Add(FirstCopyOffset);
        if (deviceSize >= SecondCopyOffset + CopySize)
            list.Add(SecondCopyOffset);
        var end = EndCopyOffset(deviceSize);
        if (end >= StartAreaEnd)
            list.Add(end);
        return list;
    }

    /// <summary>The last 64 KiB-aligned offset with room for a copy before the end of the device.</summary>
    public static long EndCopyOffset(long deviceSize) => (deviceSize - CopySize) / EndCopyAlignment * EndCopyAlignment;

    /// <summary>Bucket size format picks for a device: size/16384 rounded down to a power of two, within 128 KiB..2 MiB.</summary>
    public static int DefaultBucketSize(long deviceSize)
    {
        var target = Math.Max(deviceSize / TargetBuckets, 1);
        var pow2 = 1L << (63 - (int)long.LeadingZeroCount(target));
        return (int)Math.Clamp(pow2, MinDefaultBucketSize, MaxDefaultBucketSize);
    }

    /// <summary>Journal buckets for <paramref name="totalBuckets"/> buckets: total/128, at least 8, at most 512 MiB.</summary>
    public static ulong DefaultJournalBuckets(ulong totalBuckets, int bucketSize)
    {
        var max = (ulong)Math.Max(MinJournalBuckets, MaxJournalBytes / bucketSize);
        return Math.Clamp(totalBuckets / JournalShare, MinJournalBuckets, max);
    }

    /// <summary>First bucket that lies wholly after the start superblock area.</summary>
    public static uint FirstBucketFor(int bucketSize) => (uint)((StartAreaEnd + bucketSize - 1) / bucketSize);

    /// <summary>Smallest device format accepts with this bucket size (and default journal).</summary>
    public static long MinimumDeviceSize(int bucketSize, ulong? journalBuckets = null)
    {
        var buckets = FirstBucketFor(bucketSize) + (journalBuckets ?? MinJournalBuckets) + MinUsableBuckets;
        var bucketsEnd = checked((long)buckets * bucketSize);
        // The end copy sits at a 64 KiB boundary at or after the last bucket, then needs its own 64 KiB.
        var endCopy = (bucketsEnd + EndCopyAlignment - 1) / EndCopyAlignment * EndCopyAlignment;
        return endCopy + CopySize;
    }

    /// <summary>Computes the geometry for a device, or throws BasaltException(InvalidArgument / DeviceTooSmall).</summary>
    public static DeviceGeometry Compute(string deviceName, long deviceSize, FormatOptions options)
    {
        var blockSize = options.BlockSize ?? DefaultBlockSize;
        RequirePow2(deviceName, "block size", blockSize, MinBlockSize, MaxBlockSize);
        var bucketSize = options.BucketSize ?? DefaultBucketSize(deviceSize);
        RequirePow2(deviceName, "bucket size", bucketSize, MinBucketSize, MaxBucketSize);
        var nodeSize = options.NodeSize ?? Math.Min(DefaultMaxNodeSize, bucketSize);
        RequirePow2(deviceName, "btree node size", nodeSize, MinNodeSize, MaxNodeSize);
        if (nodeSize < blockSize)
            Invalid(deviceName, $"btree node size {nodeSize} is smaller than the block size {blockSize}");
        if (nodeSize > bucketSize)
            Invalid(deviceName, $"btree node size {nodeSize} is larger than the bucket size {bucketSize}");
        if (blockSize > bucketSize)
            Invalid(deviceName, $"block size {blockSize} is larger than the bucket size {bucketSize}");
        if (options.MetadataChecksumType == ChecksumType.None || !Checksums.IsKnown((byte)options.MetadataChecksumType))
            Invalid(deviceName, $"metadata checksum type {options.MetadataChecksumType.ToText()} is not allowed (crc32c, crc64, xxhash64)");
        if (options.DataChecksumType == ChecksumType.None || !Checksums.IsKnown((byte)options.DataChecksumType))
            Invalid(deviceName, $"data checksum type {options.DataChecksumType.ToText()} is not allowed (crc32c, crc64, xxhash64)");
        if (System.Text.Encoding.UTF8.GetByteCount(options.Label) > LabelSize)
            Invalid(deviceName, $"label \"{options.Label}\" is longer than {LabelSize} bytes of UTF-8");
        if (options.Label.Contains('\0', StringComparison.Ordinal))
            Invalid(deviceName, "label contains a NUL character");
        if (options.JournalBuckets is 0)
            Invalid(deviceName, "journal of 0 buckets");
        if (options.NodeAreaBuckets is 0)
            Invalid(deviceName, "node area of 0 buckets");

        var minimum = MinimumDeviceSize(bucketSize, options.JournalBuckets);
        if (deviceSize < minimum)
        {
            throw new BasaltException(ErrorCode.DeviceTooSmall,
                $"{deviceName}: device is {deviceSize} bytes; Basalt needs at least {minimum} bytes with bucket size {bucketSize}");
        }

        var copies = CopyOffsets(deviceSize);
        var firstBucket = FirstBucketFor(bucketSize);
        var nbuckets = (ulong)(EndCopyOffset(deviceSize) / bucketSize);
        var journalCount = options.JournalBuckets ?? DefaultJournalBuckets((ulong)(deviceSize / bucketSize), bucketSize);
        var journal = new BucketRange(firstBucket, journalCount);
        if (nbuckets < journal.End + MinUsableBuckets)
        {
            throw new BasaltException(ErrorCode.DeviceTooSmall,
                $"{deviceName}: device is {deviceSize} bytes; Basalt needs at least {MinimumDeviceSize(bucketSize, journalCount)} bytes " +
                $"with bucket size {bucketSize} and a journal of {journalCount} buckets");
        }
        var afterJournal = nbuckets - journal.End;
        var nodeCount = options.NodeAreaBuckets ??
            Math.Max(Math.Max(MinNodeAreaBuckets, (ulong)((MinNodeAreaSlots + (bucketSize / nodeSize) - 1) / (bucketSize / nodeSize))), afterJournal / NodeAreaShare);
        if (nodeCount > afterJournal)
        {
            Invalid(deviceName, $"node area of {nodeCount} buckets does not fit in the {afterJournal} buckets after the journal");
        }
        return new DeviceGeometry(blockSize, nodeSize, bucketSize, firstBucket, nbuckets, journal,
            new BucketRange(journal.End, nodeCount), copies);
    }

    private static void RequirePow2(string deviceName, string what, int value, int min, int max)
    {
        if (value < min || value > max || (value & (value - 1)) != 0)
            Invalid(deviceName, $"{what} {value} is not a power of two between {min} and {max}");
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Invalid(string deviceName, string message) =>
        throw new BasaltException(ErrorCode.InvalidArgument, $"{deviceName}: {message}");
}
