// The alloc trigger (DESIGN §2 invariant 4): it runs inside the transaction that changes an alloc
// key (the data layer's extent trigger, the allocator, the discard worker), on the coalesced
// (old, new) pair, and brings the indexes in line: freespace, need_discard, the fragmentation
// LRU, bucket_gens and the per-device accounting. The helpers here (read an alloc key through a
// transaction, add to a counter) are what the data layer's extent trigger uses to charge
// pointers to buckets. fsck's check_allocations recomputes all of it from the pointers alone.
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Alloc;

public static class SpaceTriggers
{
    public static SpaceLayout LayoutOf(ITriggerTransaction t) =>
        t.GetService<SpaceLayout>() ?? throw new InvalidOperationException("an extent or alloc key changed on a mount without allocation info");

    public static ulong NowNanos() => (ulong)(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000);

    /// <summary>The alloc key of <paramref name="bucket"/> as the transaction sees it (the layout's default when there is none).</summary>
    public static AllocValue ReadAlloc(ITriggerTransaction t, DeviceLayout device, BucketRef bucket)
    {
        if (!t.TryGet(BtreeId.Alloc, SpacePositions.Bucket(bucket), out _, out var bytes))
            return device.DefaultAlloc(bucket.Bucket);
        if (!AllocValue.TryRead(bytes, out var value, out var problem))
            throw new BasaltException(ErrorCode.BtreeNodeCorrupt, $"alloc key of {bucket.ToText()}: {problem}");
        return value;
    }

    public static void WriteAlloc(ITriggerTransaction t, BucketRef bucket, in AllocValue value) =>
        t.Set(BtreeId.Alloc, new Bkey(SpacePositions.Bucket(bucket), KeyType.Alloc), value.ToArray());

    /// <summary>Alloc keys: keep freespace, need_discard, the fragmentation LRU, bucket_gens and accounting in line.</summary>
    public static void AllocTrigger(ITriggerTransaction t, BtreeId btree, in KeyVersion oldKey, in KeyVersion newKey)
    {
        var layout = LayoutOf(t);
        var pos = newKey.Exists ? newKey.Key.Pos : oldKey.Key.Pos;
        if (!SpacePositions.TryBucketOf(pos, out var bucket) || !layout.TryGet(bucket.Device, out var dev))
        {
            // Such a key (left by damage: a device that does not exist) was never counted anywhere,
            // so removing it (fsck's alloc_key_to_invalid_bucket repair) changes nothing else.
            if (!newKey.Exists)
                return;
            throw new BasaltException(ErrorCode.InvalidArgument, $"alloc key at {pos.ToText()} names no bucket of this filesystem");
        }
        var before = oldKey.Exists && AllocValue.TryRead(oldKey.Value.Span, out var o, out _) ? o : dev.DefaultAlloc(bucket.Bucket);
        var after = newKey.Exists ? AllocValue.Read(newKey.Value.Span) : dev.DefaultAlloc(bucket.Bucket);
        var bucketPos = SpacePositions.Bucket(bucket);

        if (before.DataType == BucketDataType.Free && after.DataType != BucketDataType.Free)
            FreespaceEdits.Remove(t, bucket);
        else if (before.DataType != BucketDataType.Free && after.DataType == BucketDataType.Free)
            FreespaceEdits.Add(t, bucket);
        SetPresence(t, BtreeId.NeedDiscard, bucketPos, before.DataType == BucketDataType.NeedDiscard,
            after.DataType == BucketDataType.NeedDiscard);
        if (before.FragmentationLru != after.FragmentationLru)
        {
            if (before.FragmentationLru != 0)
                t.Delete(BtreeId.Lru, SpacePositions.Lru(LruKind.Fragmentation, SpacePositions.LruIndex(before.FragmentationLru), bucket));
            if (after.FragmentationLru != 0)
            {
                t.Set(BtreeId.Lru, new Bkey(SpacePositions.Lru(LruKind.Fragmentation, SpacePositions.LruIndex(after.FragmentationLru), bucket),
                    KeyType.Set), []);
            }
        }
        if (before.Gen != after.Gen)
        {
            var gensPos = SpacePositions.BucketGens(bucket);
            var gens = t.TryGet(BtreeId.BucketGens, gensPos, out _, out var existing) && existing.Length == BucketGensValue.Size
                ? existing
                : new byte[BucketGensValue.Size];
            gens = (byte[])gens.Clone();
            gens[(int)(bucket.Bucket % SpacePositions.GensPerKey)] = after.Gen;
            t.Set(BtreeId.BucketGens, new Bkey(gensPos, KeyType.BucketGens), gens);
        }
        var oldUsage = UsageOf(before, dev.BucketSectors);
        var newUsage = UsageOf(after, dev.BucketSectors);
        if (before.DataType != after.DataType || oldUsage != newUsage)
        {
            AddUsage(t, bucket.Device, before.DataType, new DeviceUsage(-1, -oldUsage.Sectors, -oldUsage.Fragmented));
            AddUsage(t, bucket.Device, after.DataType, newUsage);
        }
    }

    /// <summary>One bucket's contribution to its data type's counters.</summary>
    public static DeviceUsage UsageOf(in AllocValue a, uint bucketSectors)
    {
        var sectors = (long)a.DirtySectors + a.CachedSectors;
        var fragmented = a.DataType == BucketDataType.User && a.DirtySectors < bucketSectors ? bucketSectors - (long)a.DirtySectors : 0;
        return new DeviceUsage(1, sectors, fragmented);
    }

    private static void SetPresence(ITriggerTransaction t, BtreeId btree, Bpos pos, bool was, bool now)
    {
        if (was == now)
            return;
        if (now)
            t.Set(btree, new Bkey(pos, KeyType.Set), []);
        else
            t.Delete(btree, pos);
    }

    /// <summary>
    /// Adds <paramref name="delta"/> to the counters of one device and data type: journaled as a
    /// delta, folded into the accounting key by the commit (AccountingDeltas).
    /// </summary>
    public static void AddUsage(ITriggerTransaction t, byte device, BucketDataType type, DeviceUsage delta)
    {
        if (delta.IsZero)
            return;
        t.AddDelta(BtreeId.Accounting, new Bkey(DeviceUsage.Position(device, type), KeyType.AccountingDelta), delta.ToArray());
    }

    /// <summary>Sets the counters of one device and data type to <paramref name="counters"/>, by the delta from what they hold.</summary>
    public static void SetUsage(ITriggerTransaction t, byte device, BucketDataType type, DeviceUsage counters)
    {
        var pos = DeviceUsage.Position(device, type);
        var current = t.TryGet(BtreeId.Accounting, pos, out _, out var bytes) && DeviceUsage.TryRead(bytes, out var u, out _) ? u : default;
        AddUsage(t, device, type, counters.Subtract(current));
    }
}
