// Where the keys of the allocation btrees live. Every position names a device and a bucket; the
// layouts are in docs/format.md ("Allocation btrees").
using Basalt.Format;

namespace Basalt.Alloc;

/// <summary>A bucket of one device.</summary>
public readonly record struct BucketRef(byte Device, ulong Bucket) : IComparable<BucketRef>
{
    public int CompareTo(BucketRef other) =>
        Device != other.Device ? Device.CompareTo(other.Device) : Bucket.CompareTo(other.Bucket);

    public string ToText() => $"dev {Device} bucket {Bucket}";
}

/// <summary>The kinds of LRU index in the lru btree (the high 16 bits of a position's inode).</summary>
public enum LruKind : ushort
{
    /// <summary>Cached buckets by last read time (the invalidation order). Reserved until cached data exists.</summary>
    Read = 1,
    /// <summary>Partly empty user buckets by live share, emptiest first (the copygc order).</summary>
    Fragmentation = 2,
}

public static class SpacePositions
{
    /// <summary>Gens per bucket_gens key.</summary>
    public const int GensPerKey = 256;

    private const int DeviceShift = 48;
    private const ulong LowMask = (1UL << DeviceShift) - 1;

    /// <summary>Alloc, freespace and need_discard keys: (device, bucket).</summary>
    public static Bpos Bucket(BucketRef b) => new(b.Device, b.Bucket);

    public static Bpos Bucket(byte device, ulong bucket) => new(device, bucket);

    /// <summary>The bucket an alloc, freespace or need_discard key names (false when the inode is not a device index).</summary>
    public static bool TryBucketOf(Bpos pos, out BucketRef bucket)
    {
        bucket = new BucketRef((byte)pos.Inode, pos.Offset);
        return pos.Inode <= byte.MaxValue && pos.Snapshot == 0;
    }

    /// <summary>bucket_gens key holding the gen of <paramref name="b"/>: (device, bucket / 256).</summary>
    public static Bpos BucketGens(BucketRef b) => new(b.Device, b.Bucket / GensPerKey);

    /// <summary>The lru key of a bucket: inode = kind &lt;&lt; 48 | index, offset = device &lt;&lt; 48 | bucket.</summary>
    public static Bpos Lru(LruKind kind, ulong index, BucketRef b) =>
        new(((ulong)kind << DeviceShift) | (index & LowMask), ((ulong)b.Device << DeviceShift) | (b.Bucket & LowMask));

    public static bool TryReadLru(Bpos pos, out LruKind kind, out ulong index, out BucketRef bucket)
    {
        kind = (LruKind)(pos.Inode >> DeviceShift);
        index = pos.Inode & LowMask;
        bucket = new BucketRef((byte)(pos.Offset >> DeviceShift), pos.Offset & LowMask);
        return (kind is LruKind.Read or LruKind.Fragmentation) && (pos.Offset >> DeviceShift) <= byte.MaxValue && pos.Snapshot == 0;
    }

    /// <summary>The fragmentation index as an lru index (48 bits).</summary>
    public static ulong LruIndex(ulong fragmentation) => fragmentation & LowMask;
}
