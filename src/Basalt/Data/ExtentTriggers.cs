// The extent trigger (DESIGN §2 invariants 4 and 5): runs in the transaction that changes an
// extent, on the coalesced (old, new) pair of its position. It takes the old version's live
// sectors off each pointer's bucket and adds the new version's (alloc keys, read-modify-write
// through the transaction so any number of extents in one bucket add up; the alloc trigger then
// updates the indexes and accounting), and keeps exactly one backpointer per non-cached pointer.
// Inserting a pointer whose gen is not its bucket's, or into a bucket holding another kind of
// data, is refused; an old pointer that is stale held nothing and is skipped.
using Basalt.Alloc;
using Basalt.Backpointers;
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Data;

/// <summary>Deliberate trigger bugs for tests of fsck (never set outside tests).</summary>
internal enum ExtentTriggerFault
{
    None,
    /// <summary>New pointers get no backpointer.</summary>
    SkipBackpointer,
    /// <summary>New pointers charge one sector too many to their bucket.</summary>
    MiscountSectors,
    /// <summary>The trigger does nothing: extents are written unchecked and uncharged.</summary>
    Disabled,
}

/// <summary>The owner of the inodes (the filesystem layer): keeps each inode's count of sectors as its extents change.</summary>
public interface IInodeSectors
{
    void Add(ITriggerTransaction t, ulong inode, long sectors);
}

public static class ExtentTriggers
{
    /// <summary>Test-only fault of the triggers run on this thread.</summary>
    [ThreadStatic]
    internal static ExtentTriggerFault Fault;

    /// <summary>Extents: charge pointers to buckets, keep backpointers (indirect extents are charged through <see cref="ChargeIndirect"/>).</summary>
    public static void ExtentTrigger(ITriggerTransaction t, BtreeId btree, in KeyVersion oldKey, in KeyVersion newKey)
    {
        if (Fault == ExtentTriggerFault.Disabled)
            return;
        var layout = SpaceTriggers.LayoutOf(t);
        if (oldKey.Exists && oldKey.Key.Type == KeyType.Extent)
            Charge(t, layout, btree, oldKey, -1);
        if (newKey.Exists && newKey.Key.Type == KeyType.Extent)
            Charge(t, layout, btree, newKey, +1);
        CountInodeSectors(t, btree, oldKey, newKey, static type => type is KeyType.Extent or KeyType.Reservation);
    }

    /// <summary>
    /// Moves the inode's sector count by the sizes of the pair's keys whose type <paramref name="counts"/>
    /// (each trigger counts its own types, so a position changing type is counted once each way).
    /// </summary>
    internal static void CountInodeSectors(ITriggerTransaction t, BtreeId btree, in KeyVersion oldKey, in KeyVersion newKey, Func<KeyType, bool> counts)
    {
        if (btree != BtreeId.Extents)
            return;
        var delta = (newKey.Exists && counts(newKey.Key.Type) ? (long)newKey.Key.Size : 0)
            - (oldKey.Exists && counts(oldKey.Key.Type) ? (long)oldKey.Key.Size : 0);
        if (delta != 0)
            t.GetService<IInodeSectors>()?.Add(t, (newKey.Exists ? newKey : oldKey).Key.Pos.Inode, delta);
    }

    private static void Charge(ITriggerTransaction t, SpaceLayout layout, BtreeId btree, in KeyVersion version, int sign)
    {
        if (!ExtentValue.TryRead(version.Value.Span, out var extent, out var problem))
        {
            if (sign > 0)
                BasaltException.Throw(ErrorCode.InvalidArgument, $"{version.Key.ToText()}: {problem}");
            return; // an old value a node read let through cannot be charged back; check_allocations repairs the bucket
        }
        Charge(t, layout, btree, version.Key, extent, sign);
    }

    /// <summary>
    /// Charges (+1) or releases (-1) the data of an indirect extent: its pointers' sectors and
    /// backpointers, owned by the reflink btree. Indirect extents have no trigger of their own (a
    /// refcount change must not recharge them), so whoever creates, splits or deletes one calls this.
    /// </summary>
    public static void ChargeIndirect(ITriggerTransaction t, in Bkey key, ExtentValue extent, int sign)
    {
        if (Fault == ExtentTriggerFault.Disabled)
            return;
        Charge(t, SpaceTriggers.LayoutOf(t), BtreeId.Reflink, key, extent, sign);
    }

    private static void Charge(ITriggerTransaction t, SpaceLayout layout, BtreeId btree, Bkey key, ExtentValue extent, int sign)
    {
        var sectors = ExtentValue.DiskSectors(key.Size);
        foreach (var ptr in extent.Ptrs)
        {
            if (!layout.TryGet(ptr.Device, out var dev))
            {
                if (sign > 0)
                    BasaltException.Throw(ErrorCode.InvalidArgument, $"{key.ToText()}: pointer to device {ptr.Device}, which does not exist");
                continue;
            }
            if (dev.CheckDataPointer(ptr.OffsetSectors, extent.CoveredSectors) is { } bad)
            {
                if (sign > 0)
                    BasaltException.Throw(ErrorCode.InvalidArgument, $"{key.ToText()}: {bad}");
                continue; // an old pointer outside the data buckets was never charged: check_allocations reports it
            }
            var bucket = new BucketRef(ptr.Device, dev.BucketOf(ptr.OffsetSectors));
            var alloc = SpaceTriggers.ReadAlloc(t, dev, bucket);
            if (ptr.Gen != alloc.Gen)
            {
                if (sign > 0)
                {
                    BasaltException.Throw(ErrorCode.InvalidArgument,
                        $"{key.ToText()}: pointer {ptr.ToText()} into {bucket.ToText()} whose gen is {alloc.Gen}");
                }
                // A stale pointer holds nothing in its bucket; its backpointer, if one was left, goes.
                if (!ptr.Cached)
                    DeleteOwnBackpointer(t, btree, key.Pos, ptr, extent.Window);
                continue;
            }
            if (sign > 0 && !alloc.IsEmptyState && alloc.DataType != BucketDataType.User && alloc.DataType != BucketDataType.Cached)
            {
                BasaltException.Throw(ErrorCode.InvalidArgument,
                    $"{key.ToText()}: user data pointer into {bucket.ToText()}, which holds {alloc.DataType.ToText()}");
            }
            var wasEmpty = alloc.IsEmptyState;
            if (ptr.Cached)
                alloc.CachedSectors = AddClamped(alloc.CachedSectors, sign, sectors);
            else
                alloc.DirtySectors = AddClamped(alloc.DirtySectors, sign, sectors + (sign > 0 && Fault == ExtentTriggerFault.MiscountSectors ? 1u : 0u));
            if (sign > 0)
            {
                if (wasEmpty)
                    alloc.Flags |= AllocFlags.NeedDiscard | AllocFlags.NeedIncGen;
                alloc.WriteTime = SpaceTriggers.NowNanos();
            }
            alloc.DataType = alloc.DeriveType(BucketDataType.User);
            alloc.FragmentationLru = AllocValue.FragmentationIndex(alloc.DataType, alloc.DirtySectors, dev.BucketSectors);
            SpaceTriggers.WriteAlloc(t, bucket, alloc);
            if (ptr.Cached)
                continue;
            var bpPos = BackpointerValue.PositionOf(ptr.Device, ptr.OffsetSectors, extent.Window);
            if (sign > 0 && Fault == ExtentTriggerFault.SkipBackpointer)
                continue;
            if (sign > 0)
            {
                var bp = new BackpointerValue(btree, 0, BucketDataType.User, ptr.Gen, sectors, key.Pos);
                t.Set(BtreeId.Backpointers, new Bkey(bpPos, KeyType.Backpointer), bp.ToArray());
            }
            else
            {
                DeleteOwnBackpointer(t, btree, key.Pos, ptr, extent.Window);
            }
        }
    }

    /// <summary>
    /// Deletes the backpointer of <paramref name="ptr"/> only when it names this owner and gen:
    /// another key (of this transaction, or data written into the bucket since) may own the slot.
    /// </summary>
    private static void DeleteOwnBackpointer(ITriggerTransaction t, BtreeId btree, Bpos owner, DevicePtr ptr, uint window)
    {
        var bpPos = BackpointerValue.PositionOf(ptr.Device, ptr.OffsetSectors, window);
        if (t.TryGet(BtreeId.Backpointers, bpPos, out _, out var existing) &&
            BackpointerValue.TryRead(existing, out var current, out _) && current.Btree == btree && current.Level == 0 &&
            current.Pos == owner && current.BucketGen == ptr.Gen)
        {
            t.Delete(BtreeId.Backpointers, bpPos);
        }
    }

    private static uint AddClamped(uint value, int sign, uint sectors) =>
        sign > 0 ? checked(value + sectors) : value >= sectors ? value - sectors : 0;

}
