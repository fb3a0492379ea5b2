// The freespace btree holds runs of free buckets: a set key at (device, end bucket) whose size is
// the number of buckets in the run, like an extent. Taking a bucket out of a run trims or splits
// it; putting one back merges it with the runs on either side, so a freshly formatted device has
// one key for all of its data buckets and the index stays as small as the free space is
// fragmented. Edits go through the transaction, so several in one commit compose.
using Basalt.Btree;
using Basalt.Format;

namespace Basalt.Alloc;

public static class FreespaceEdits
{
    /// <summary>The run key of [start, end) on <paramref name="device"/>.</summary>
    public static Bkey RunKey(byte device, ulong start, ulong end) => new(new Bpos(device, end), KeyType.Set, checked((uint)(end - start)));

    /// <summary>The run containing <paramref name="bucket"/> as the transaction sees it, or null.</summary>
    public static (ulong Start, ulong End)? RunOf(ITriggerTransaction t, BucketRef bucket)
    {
        var first = FirstRunEndingAfter(t, bucket.Device, bucket.Bucket);
        return first is { } r && r.Start <= bucket.Bucket ? r : null;
    }

    private static (ulong Start, ulong End)? FirstRunEndingAfter(ITriggerTransaction t, byte device, ulong bucket)
    {
        // Runs are disjoint and ordered by end: the first key after `bucket` is the only candidate.
        var keys = t.Range(BtreeId.Freespace, new Bpos(device, bucket + 1), new Bpos(device, ulong.MaxValue), 1);
        if (keys.Count == 0)
            return null;
        var k = keys[0].Key;
        return (k.Pos.Offset - k.Size, k.Pos.Offset);
    }

    /// <summary>Takes <paramref name="bucket"/> out of its run (no-op when it is in none).</summary>
    public static void Remove(ITriggerTransaction t, BucketRef bucket)
    {
        if (RunOf(t, bucket) is not { } run)
            return;
        var b = bucket.Bucket;
        if (run.End > b + 1)
            t.Set(BtreeId.Freespace, RunKey(bucket.Device, b + 1, run.End), []);
        else
            t.Delete(BtreeId.Freespace, new Bpos(bucket.Device, run.End));
        if (run.Start < b)
            t.Set(BtreeId.Freespace, RunKey(bucket.Device, run.Start, b), []);
    }

    /// <summary>Puts <paramref name="bucket"/> into the free runs, merged with its neighbours (no-op when already free).</summary>
    public static void Add(ITriggerTransaction t, BucketRef bucket)
    {
        var b = bucket.Bucket;
        var next = FirstRunEndingAfter(t, bucket.Device, b);
        if (next is { } n && n.Start <= b)
            return;
        var start = b;
        var end = b + 1;
        // A run ending exactly at b is keyed at b.
        if (b > 0 && t.TryGet(BtreeId.Freespace, new Bpos(bucket.Device, b), out var left, out _))
        {
            start = b - left.Size;
            t.Delete(BtreeId.Freespace, left.Pos);
        }
        if (next is { } right && right.Start == b + 1)
            end = right.End; // its key at right.End is overwritten below
        t.Set(BtreeId.Freespace, RunKey(bucket.Device, start, end), []);
    }
}
