// Who owns the data in a bucket: the backpointers between the bucket's first position and the
// next bucket's, in physical order. Copygc uses it to find what to move, device evacuation and
// scrub will use it to walk a device physically, and fsck to check a suspicious bucket.
using Basalt.Alloc;
using Basalt.Btree;
using Basalt.Format;

namespace Basalt.Backpointers;

/// <summary>One owner of data in a bucket: where its data starts on the device, and the backpointer naming it.</summary>
public readonly record struct BucketOwner(Bpos Position, BackpointerValue Backpointer)
{
    /// <summary>The device sector where the owner's run starts.</summary>
    public ulong Sector => BackpointerValue.Decode(Position).Sector;

    /// <summary>The owner's live window within its run.</summary>
    public uint Window => BackpointerValue.Decode(Position).Window;
}

public static class BucketOwners
{
    /// <summary>The owners of <paramref name="bucket"/>'s data as the backpointers record them, in physical order.</summary>
    public static List<BucketOwner> List(BtreeEngine engine, SpaceLayout layout, BucketRef bucket)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(layout);
        var owners = new List<BucketOwner>();
        if (!layout.TryGet(bucket.Device, out var dev) || bucket.Bucket >= dev.Nbuckets)
            return owners;
        var sectors = (int)dev.BucketSectors;
        var it = engine[BtreeId.Backpointers].Iterate(BackpointerValue.BucketStart(bucket, sectors),
            BackpointerValue.BucketStart(new BucketRef(bucket.Device, bucket.Bucket + 1), sectors).Predecessor());
        while (it.MoveNext())
        {
            if (BackpointerValue.TryRead(it.Value, out var bp, out _))
                owners.Add(new BucketOwner(it.Key.Pos, bp));
        }
        return owners;
    }
}
