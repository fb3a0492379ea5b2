// The ring of journal buckets: the bucket ranges the superblock lists, in order, as one circular
// sequence of RingIndex 0..Count-1, each a bucket of BucketSize bytes at Bucket × BucketSize.
using Basalt.Superblocks;

namespace Basalt.Journal;

public sealed class JournalRing
{
    private readonly ulong[] _buckets;

    public JournalRing(IReadOnlyList<BucketRange> ranges, int bucketSize)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        BucketSize = bucketSize;
        var list = new List<ulong>();
        foreach (var r in ranges)
        {
            for (var b = r.Start; b < r.End; b++)
                list.Add(b);
        }
        _buckets = [.. list];
    }

    public static JournalRing Of(Superblock sb)
    {
        ArgumentNullException.ThrowIfNull(sb);
        return new JournalRing(sb.JournalBuckets, sb.BucketSize);
    }

    public int Count => _buckets.Length;

    public int BucketSize { get; }

    /// <summary>Total bytes of the ring.</summary>
    public long Bytes => (long)_buckets.Length * BucketSize;

    public ulong BucketAt(int ringIndex) => _buckets[ringIndex];

    /// <summary>Byte offset on the device of ring bucket <paramref name="ringIndex"/>.</summary>
    public long OffsetOf(int ringIndex) => checked((long)_buckets[ringIndex] * BucketSize);

    public int Next(int ringIndex) => (ringIndex + 1) % _buckets.Length;

    public JournalLocation Location(int ringIndex, int offsetInBucket) =>
        new(ringIndex, _buckets[ringIndex], OffsetOf(ringIndex) + offsetInBucket);
}
