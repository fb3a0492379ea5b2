// The bucket geometry of every device of a mounted filesystem, from the superblock's members:
// what the triggers and the fsck passes need to turn a pointer into a bucket.
using Basalt.Format;
using Basalt.Superblocks;

namespace Basalt.Alloc;

/// <summary>One device's buckets.</summary>
public sealed record DeviceLayout(byte Index, int BucketSize, uint FirstBucket, ulong Nbuckets, IReadOnlyList<BucketRange> Journal, BucketRange NodeArea)
{
    public uint BucketSectors => (uint)(BucketSize / FormatLimits.SectorSize);

    /// <summary>The bucket holding device sector <paramref name="sector"/>.</summary>
    public ulong BucketOf(ulong sector) => sector / BucketSectors;

    public ulong BucketStartSector(ulong bucket) => bucket * BucketSectors;

    public long BucketOffset(ulong bucket) => checked((long)bucket * BucketSize);

    public bool IsJournal(ulong bucket)
    {
        foreach (var r in Journal)
        {
            if (bucket >= r.Start && bucket < r.End)
                return true;
        }
        return false;
    }

    public bool IsNodeArea(ulong bucket) => bucket >= NodeArea.Start && bucket < NodeArea.End;

    /// <summary>What a bucket holds by the layout alone: journal, btree (the node area), or user data/free.</summary>
    public BucketDataType FixedType(ulong bucket) =>
        IsJournal(bucket) ? BucketDataType.Journal : IsNodeArea(bucket) ? BucketDataType.Btree : BucketDataType.Free;

    /// <summary>
    /// The state of a bucket that has no alloc key: journal and node-area buckets are full of
    /// their kind of data, every other bucket is free with gen 0.
    /// </summary>
    public AllocValue DefaultAlloc(ulong bucket)
    {
        var type = FixedType(bucket);
        return type == BucketDataType.Free ? AllocValue.Empty : new AllocValue { DataType = type, DirtySectors = BucketSectors };
    }

    /// <summary>Buckets that can hold data: in [first_bucket, nbuckets) and neither journal nor node area.</summary>
    public ulong DataBuckets
    {
        get
        {
            var n = Nbuckets - FirstBucket - NodeArea.Count;
            foreach (var r in Journal)
                n -= r.Count;
            return n;
        }
    }

    /// <summary>Why a pointer of <paramref name="sectors"/> sectors at <paramref name="sector"/> cannot be user data here, or null.</summary>
    public string? CheckDataPointer(ulong sector, uint sectors)
    {
        var bucket = BucketOf(sector);
        if (bucket < FirstBucket)
            return $"sector {sector} lies before the first bucket {FirstBucket}";
        if (bucket >= Nbuckets)
            return $"sector {sector} lies after the last bucket {Nbuckets - 1}";
        if (BucketOf(sector + sectors - 1) != bucket)
            return $"sectors {sector}..{sector + sectors - 1} span two buckets";
        if (FixedType(bucket) != BucketDataType.Free)
            return $"sector {sector} lies in {FixedType(bucket).ToText()} bucket {bucket}";
        return null;
    }
}

public sealed class SpaceLayout
{
    public SpaceLayout(IReadOnlyList<DeviceLayout> devices) => Devices = devices;

    public IReadOnlyList<DeviceLayout> Devices { get; }

    public static SpaceLayout From(Superblock sb)
    {
        ArgumentNullException.ThrowIfNull(sb);
        var list = new List<DeviceLayout>();
        for (var i = 0; i < sb.Members.Count; i++)
        {
            var m = sb.Members[i];
            // One device for now: its journal is the superblock's list.
            list.Add(new DeviceLayout((byte)i, m.BucketSize, m.FirstBucket, m.Nbuckets, i == sb.DeviceIndex ? sb.JournalBuckets : [], m.NodeArea));
        }
        return new SpaceLayout(list);
    }

    public bool TryGet(byte device, out DeviceLayout layout)
    {
        if (device < Devices.Count)
        {
            layout = Devices[device];
            return true;
        }
        layout = null!;
        return false;
    }

    public DeviceLayout this[byte device] => Devices[device];
}
