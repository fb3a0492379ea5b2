// The reflink pointer trigger (DESIGN §2 invariant 7): runs on the coalesced (old, new) pair of a
// reflink_p position in the extents btree. The new pointer takes a reference on every indirect
// extent its padded range overlaps (its live range must be covered: a pointer to a missing
// indirect extent, which only damage makes, is an I/O error); the old pointer then lets go of its references, and an indirect
// extent whose refcount reaches zero is deleted and its data released. References are taken
// before they are let go, so a pointer trimmed or split in place never frees what it still uses.
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Data;

public static class ReflinkTriggers
{
    /// <summary>Indirect extents one trigger reads per range call.</summary>
    private const int Batch = 64;

    public static void PointerTrigger(ITriggerTransaction t, BtreeId btree, in KeyVersion oldKey, in KeyVersion newKey)
    {
        if (ExtentTriggers.Fault == ExtentTriggerFault.Disabled)
            return;
        var oldIsPointer = oldKey.Exists && oldKey.Key.Type == KeyType.ReflinkP;
        var newIsPointer = newKey.Exists && newKey.Key.Type == KeyType.ReflinkP;
        if (newIsPointer)
        {
            if (!ReflinkPointer.TryRead(newKey.Value.Span, out var p, out var problem) || (problem = p.CheckAgainstKey(newKey.Key.Size)) is not null)
                BasaltException.Throw(ErrorCode.InvalidArgument, $"{newKey.Key.ToText()}: {problem}");
            var (start, end) = p.Padded(newKey.Key.Size);
            Adjust(t, newKey.Key, start, end, +1, p.Idx, p.Idx + newKey.Key.Size);
        }
        if (oldIsPointer && ReflinkPointer.TryRead(oldKey.Value.Span, out var old, out _) && old.CheckAgainstKey(oldKey.Key.Size) is null)
        {
            var (start, end) = old.Padded(oldKey.Key.Size);
            Adjust(t, oldKey.Key, start, end, -1, 0, 0);
        }
        ExtentTriggers.CountInodeSectors(t, btree, oldKey, newKey, static type => type == KeyType.ReflinkP);
    }

    /// <summary>
    /// Adds <paramref name="delta"/> to the refcount of every indirect extent overlapping
    /// [<paramref name="start"/>, <paramref name="end"/>); with a live range, fails when part of it
    /// has no indirect extent. A refcount reaching zero deletes the indirect extent.
    /// </summary>
    private static void Adjust(ITriggerTransaction t, in Bkey owner, ulong start, ulong end, int delta, ulong liveStart, ulong liveEnd)
    {
        var covered = liveStart; // live sectors before this are known to be covered
        var from = ReflinkSpace.FirstOverlapping(start);
        while (true)
        {
            var keys = t.Range(BtreeId.Reflink, from, ReflinkSpace.Last, Batch);
            var done = keys.Count < Batch;
            foreach (var (key, value) in keys)
            {
                var ks = key.Pos.Offset - key.Size;
                if (ks >= end)
                {
                    done = true;
                    break;
                }
                if (ks > covered && covered < liveEnd && delta > 0)
                    MissingIndirect(owner, covered, liveStart, liveEnd);
                if (ks <= covered)
                    covered = Math.Max(covered, key.Pos.Offset);
                if (key.Type != KeyType.ReflinkV)
                    continue;
                var refcount = ReflinkIndirect.Refcount(value);
                if (delta > 0)
                {
                    t.Set(BtreeId.Reflink, key, ReflinkIndirect.WithRefcount(value, refcount + 1));
                }
                else if (refcount > 1)
                {
                    t.Set(BtreeId.Reflink, key, ReflinkIndirect.WithRefcount(value, refcount - 1));
                }
                else if (refcount == 1)
                {
                    if (ReflinkIndirect.TryRead(value, out _, out var extent, out _))
                        ExtentTriggers.ChargeIndirect(t, key, extent, -1);
                    t.Delete(BtreeId.Reflink, key.Pos);
                }
                // refcount 0 with a pointer letting go: an underflow fsck's reflink check reports and repairs
            }
            if (done || keys.Count == 0)
                break;
            from = keys[^1].Key.Pos.Successor();
        }
        if (delta > 0 && covered < liveEnd)
            MissingIndirect(owner, covered, liveStart, liveEnd);
    }

    /// <summary>Only damage makes a pointer whose data is gone: an I/O error (EIO), as a read of it is; fsck repairs it.</summary>
    private static void MissingIndirect(in Bkey owner, ulong at, ulong liveStart, ulong liveEnd) =>
        BasaltException.Throw(ErrorCode.IoError,
            $"{owner.ToText()}: reflink pointer to a missing indirect extent at reflink sector {at} (its range is {liveStart}..{liveEnd}; fsck repairs it)");
}
