// The backpointer passes (DESIGN §2 invariant 5): every non-cached pointer has exactly one
// matching backpointer, and every backpointer names an existing pointer in a bucket that holds
// data of its type.
//
// check_btree_backpointers: each backpointer's position names a data bucket of an existing device
// whose alloc key holds dirty data of the backpointer's type (one byte per bucket).
//
// check_extents_to_backpointers: the backpointers of a bucket are contiguous, so their sectors are
// summed per bucket over bucket ranges that fit --max-mem (eight bytes per bucket: the sum and
// the alloc key's dirty sectors) and compared with the alloc keys check_allocations just
// recomputed. Only buckets whose sums disagree are checked pointer by pointer, in one walk of the
// extents that looks up the backpointer slot of each pointer into them.
//
// Sums can agree while backpointers are wrong: a backpointer naming the wrong owner, or a missing
// one offset by an extra one in the same bucket. check_backpointers_to_extents therefore looks at
// every backpointer and every pointer: it collects the backpointers whose owners lie in a range of
// the extents keyspace (as many as --max-mem holds; when the buffer fills, the range is cut to its
// lower half), sorts them by owner and merges them with one ordered walk of that range of the
// extents btree, so no random lookups are needed; the next round takes the next range. A
// backpointer that matches no pointer is deleted, a pointer without its backpointer gets it.
//
// Indirect extents (the reflink btree's shared runs) hold data pointers too: their backpointers
// name the reflink btree as owner. Every walk of the extents is also a walk of the reflink btree,
// and the merge runs its rounds over each owner btree in turn.
using Basalt.Alloc;
using Basalt.Data;
using Basalt.Backpointers;
using Basalt.Format;

namespace Basalt.Fsck.Space;

internal static class CheckBackpointers
{
    // ---- check_btree_backpointers -------------------------------------------------------------

    public static void CheckBtreeBackpointers(SpaceCheckRun run)
    {
        var types = run.Layout.Devices.Select(d => new byte[d.Nbuckets]).ToArray();
        foreach (var dev in run.Layout.Devices)
        {
            var walk = new AllocWalk(run.FileSystem, dev, 0, dev.Nbuckets);
            while (walk.MoveNext())
                types[dev.Index][walk.Bucket] = (byte)walk.Value.DataType;
        }
        var it = run.FileSystem.Btrees[BtreeId.Backpointers].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            var pos = it.Key.Pos;
            if (!BackpointerValue.TryRead(it.Value, out var bp, out _))
                continue;
            var (device, sector, _) = BackpointerValue.Decode(pos);
            string? invalid = null;
            if (pos.Inode >= (ulong)types.Length)
                invalid = $"device {pos.Inode} does not exist";
            else if (run.Layout[device].CheckDataPointer(sector, 1) is { } bad)
                invalid = bad;
            if (invalid is not null)
            {
                if (run.Reporter.Report(FsckErrorId.BackpointerToInvalidBucket, run.Where(BtreeId.Backpointers, pos), $"backpointer ({bp.ToText()}): {invalid}"))
                    DeleteIfUnchanged(run, pos, it.Value.ToArray());
                continue;
            }
            var bucket = run.Layout[device].BucketOf(sector);
            var type = (BucketDataType)types[device][bucket];
            if (type != bp.DataType)
            {
                if (ReportDataLost(run, pos, bp, it.Value.ToArray()))
                    continue;
                if (run.Reporter.Report(FsckErrorId.BackpointerToEmptyBucket, run.Where(BtreeId.Backpointers, pos),
                        $"backpointer ({bp.ToText()}) into bucket {bucket}, which holds {type.ToText()}"))
                {
                    DeleteIfUnchanged(run, pos, it.Value.ToArray());
                }
            }
        }
        run.Flush();
    }

    /// <summary>
    /// A backpointer whose owner extent is gone while its file still covers the range: the key
    /// was lost (a dropped node or bset), and the data's checksum with it. The uncovered part of
    /// the range, up to the file's size, becomes an error extent so that reads fail with EIO
    /// instead of returning zeros; the backpointer is deleted. False when that is not the case
    /// (the caller reports the backpointer as it would otherwise).
    /// </summary>
    private static bool ReportDataLost(SpaceCheckRun run, Bpos pos, BackpointerValue bp, byte[] value)
    {
        if (bp.Btree != BtreeId.Extents || bp.Level != 0 || bp.DataType != BucketDataType.User || bp.Sectors > bp.Pos.Offset)
            return false;
        var ino = bp.Pos.Inode;
        if (!run.FileSystem.Btrees[BtreeId.Inodes].TryGet(Fs.FsPositions.Inode(ino), out var bytes) ||
            !Fs.InodeValue.TryRead(bytes, out var inode, out _) || inode.Type is not (Fs.FileType.Regular or Fs.FileType.Symlink))
        {
            return false;
        }
        var start = bp.Pos.Offset - bp.Sectors;
        var end = Math.Min(bp.Pos.Offset, (inode.Size + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize);
        if (start >= end)
            return false;
        var gaps = Uncovered(run, ino, start, end);
        if (gaps.Count == 0)
            return false;
        if (run.Reporter.Report(FsckErrorId.ExtentDataLost, run.Where(BtreeId.Backpointers, pos),
                $"inode {ino} sectors {start}..{end}: backpointer ({bp.ToText()}) names an extent that is gone; its data is lost"))
        {
            foreach (var (from, to) in gaps)
            {
                var key = new Bkey(ExtentStore.EndPos(ino, to), KeyType.Error, (uint)(to - from));
                run.Repair(t => t.Set(BtreeId.Extents, key, []));
            }
            DeleteIfUnchanged(run, pos, value);
        }
        return true;
    }

    /// <summary>The parts of sectors [start, end) of a file that no key of the extents btree covers.</summary>
    private static List<(ulong From, ulong To)> Uncovered(SpaceCheckRun run, ulong ino, ulong start, ulong end)
    {
        var gaps = new List<(ulong, ulong)>();
        var cursor = start;
        var it = run.FileSystem.Btrees[BtreeId.Extents].Iterate(new Bpos(ino, start + 1, 0), new Bpos(ino, ulong.MaxValue, uint.MaxValue));
        while (it.MoveNext() && cursor < end)
        {
            var key = it.Key;
            if (key.IsDeletion || key.Size > key.Pos.Offset)
                continue;
            var keyStart = key.Pos.Offset - key.Size;
            if (keyStart >= end)
                break;
            if (keyStart > cursor)
                gaps.Add((cursor, keyStart));
            cursor = Math.Max(cursor, key.Pos.Offset);
        }
        if (cursor < end)
            gaps.Add((cursor, end));
        return gaps;
    }

    private static void DeleteIfUnchanged(SpaceCheckRun run, Bpos pos, byte[] value) =>
        run.Repair(t =>
        {
            // A repair queued earlier in the batch may have put the right backpointer in this slot.
            if (t.TryGet(BtreeId.Backpointers, pos, out var current) && current.AsSpan().SequenceEqual(value))
                t.Delete(BtreeId.Backpointers, pos);
        });

    private static void WriteBackpointer(SpaceCheckRun run, Bpos pos, BackpointerValue value)
    {
        var bytes = value.ToArray();
        run.Repair(t => t.Set(BtreeId.Backpointers, new Bkey(pos, KeyType.Backpointer), bytes));
    }

    // ---- check_extents_to_backpointers --------------------------------------------------------

    public static void CheckExtentsToBackpointers(SpaceCheckRun run)
    {
        // Eight bytes per bucket of a range: its backpointer sum and its alloc key's dirty sectors.
        var rangeBuckets = (ulong)Math.Clamp(run.MaxMem / 8, 64, int.MaxValue);
        var flagged = run.Layout.Devices.Select(d => new ulong[(d.Nbuckets + 63) / 64]).ToArray();
        var anyFlagged = false;
        foreach (var dev in run.Layout.Devices)
        {
            for (ulong lo = dev.FirstBucket; lo < dev.Nbuckets; lo += rangeBuckets)
            {
                var hi = Math.Min(dev.Nbuckets, lo + rangeBuckets);
                anyFlagged |= CompareSums(run, dev, lo, hi, flagged[dev.Index]);
            }
        }
        run.Reporter.Count("check_extents_to_backpointers: buckets checked pointer by pointer", flagged.Sum(f => f.Sum(w => (long)ulong.PopCount(w))));
        if (anyFlagged)
            CheckFlaggedPointers(run, flagged);
        run.Flush();
    }

    /// <summary>Sums the backpointer sectors of buckets [lo, hi) and flags those whose sum is not the alloc key's dirty sectors.</summary>
    private static bool CompareSums(SpaceCheckRun run, DeviceLayout dev, ulong lo, ulong hi, ulong[] flagged)
    {
        var count = (int)(hi - lo);
        var sums = new ulong[count];
        var dirty = new uint[count];
        var walk = new AllocWalk(run.FileSystem, dev, lo, hi);
        while (walk.MoveNext())
            // Btree buckets (the node area, and the buckets claimed for nodes) have no backpointers.
            dirty[walk.Bucket - lo] = dev.FixedType(walk.Bucket) == BucketDataType.Free && walk.Value.DataType != BucketDataType.Btree
                ? walk.Value.DirtySectors
                : 0;
        var bs = dev.BucketSectors;
        var it = run.FileSystem.Btrees[BtreeId.Backpointers].Iterate(BackpointerValue.PositionOf(dev.Index, lo * bs, 0),
            new Bpos(dev.Index, ((hi * bs) << BackpointerValue.WindowBits) - 1, uint.MaxValue));
        while (it.MoveNext())
        {
            if (!BackpointerValue.TryRead(it.Value, out var bp, out _))
                continue;
            var b = dev.BucketOf(BackpointerValue.Decode(it.Key.Pos).Sector);
            if (b >= lo && b < hi)
                sums[b - lo] += bp.Sectors;
        }
        var any = false;
        for (var i = 0; i < count; i++)
        {
            if (sums[i] == dirty[i])
                continue;
            var b = lo + (ulong)i;
            flagged[b >> 6] |= 1UL << (int)(b & 63);
            any = true;
        }
        return any;
    }

    private static void CheckFlaggedPointers(SpaceCheckRun run, ulong[][] flagged)
    {
        foreach (var btree in DataOwners.Btrees)
            CheckFlaggedPointers(run, btree, flagged);
    }

    private static void CheckFlaggedPointers(SpaceCheckRun run, BtreeId btree, ulong[][] flagged)
    {
        var backpointers = run.FileSystem.Btrees[BtreeId.Backpointers];
        var expected = new byte[BackpointerValue.Size];
        var it = run.FileSystem.Btrees[btree].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            var key = it.Key;
            if (!DataOwners.HoldsPointers(btree, key.Type))
                continue;
            var ptrs = DataOwners.Pointers(btree, key.Type, it.Value);
            for (var i = 0; i < ptrs.Count; i++)
            {
                var p = ptrs[i];
                if (p.Cached || !run.Layout.TryGet(p.Device, out var dev))
                    continue;
                var b = dev.BucketOf(p.OffsetSectors);
                if (b >= dev.Nbuckets || (flagged[p.Device][b >> 6] & (1UL << (int)(b & 63))) == 0)
                    continue;
                var pos = BackpointerValue.PositionOf(p.Device, p.OffsetSectors, ptrs.Window);
                var want = new BackpointerValue(btree, 0, BucketDataType.User, p.Gen, ExtentValue.DiskSectors(key.Size), key.Pos);
                want.Write(expected);
                if (backpointers.TryGet(pos, out var current) && current.AsSpan().SequenceEqual(expected))
                    continue;
                ReportMissing(run, btree, key, p, pos, want, current.Length > 0 && BackpointerValue.TryRead(current, out var other, out _) ? other : null);
            }
        }
    }

    private static void ReportMissing(SpaceCheckRun run, BtreeId btree, Bkey key, DevicePtr p, Bpos pos, BackpointerValue want, BackpointerValue? found)
    {
        if (found is null && run.FileSystem.Btrees[BtreeId.Backpointers].TryGet(pos, out var slot) && BackpointerValue.TryRead(slot, out var inSlot, out _))
            found = inSlot;
        if (found is { } owner && (owner.Btree != btree || owner.Pos != key.Pos) && OwnerHolds(run, owner, pos, p.Gen))
        {
            // Two keys claim the same data: the backpointer names the last legitimate owner, so
            // this key (an older version come back) gives its range up as lost.
            if (run.Reporter.Report(FsckErrorId.PtrDuplicate, run.Where(btree, key.Pos),
                    $"pointer {p.ToText()} names the data of ({owner.ToText()}), which holds the same pointer and its backpointer"))
            {
                var error = new Bkey(key.Pos, KeyType.Error, key.Size);
                run.Repair(t => t.Set(btree, error, []));
            }
            else
            {
                run.State.ReportedMissing.Add(pos);
            }
            return;
        }
        var detail = found is { } f
            ? $"pointer {p.ToText()}: its backpointer slot {pos.ToText()} holds ({f.ToText()})"
            : $"pointer {p.ToText()} has no backpointer at {pos.ToText()}";
        if (run.Reporter.Report(FsckErrorId.PtrToMissingBackpointer, run.Where(btree, key.Pos), detail))
            WriteBackpointer(run, pos, want);
        else
            run.State.ReportedMissing.Add(pos);
    }

    /// <summary>True when the owner a backpointer names exists and holds a pointer to the backpointer's slot with its gen and sectors.</summary>
    private static bool OwnerHolds(SpaceCheckRun run, BackpointerValue bp, Bpos slot, byte gen)
    {
        if (bp.Level != 0 || !DataOwners.IsOwner(bp.Btree) || bp.BucketGen != gen)
            return false;
        var it = run.FileSystem.Btrees[bp.Btree].Iterate(bp.Pos, bp.Pos);
        if (!it.MoveNext())
            return false;
        var key = it.Key;
        if (key.Pos != bp.Pos || !DataOwners.HoldsPointers(bp.Btree, key.Type) || ExtentValue.DiskSectors(key.Size) != bp.Sectors)
            return false;
        var ptrs = DataOwners.Pointers(bp.Btree, key.Type, it.Value);
        for (var i = 0; i < ptrs.Count; i++)
        {
            var q = ptrs[i];
            if (!q.Cached && q.Gen == gen && BackpointerValue.PositionOf(q.Device, q.OffsetSectors, ptrs.Window) == slot)
                return true;
        }
        return false;
    }

    // ---- check_backpointers_to_extents --------------------------------------------------------

    /// <summary>One backpointer as the merge needs it: its owner, its slot and what it claims.</summary>
    private struct BpRef : IComparable<BpRef>
    {
        public Bpos Owner;
        public ulong Slot;
        public uint Sectors;
        public byte Device;
        public byte Gen;

        public readonly int CompareTo(BpRef other)
        {
            var c = Owner.CompareTo(other.Owner);
            if (c != 0)
                return c;
            c = Device.CompareTo(other.Device);
            return c != 0 ? c : Slot.CompareTo(other.Slot);
        }
    }

    private const int BpRefBytes = 48;

    public static void CheckBackpointersToExtents(SpaceCheckRun run)
    {
        var capacity = (int)Math.Clamp(run.MaxMem / BpRefBytes, 64, 1 << 28);
        var buffer = new BpRef[Math.Min(capacity, 1 << 16)];
        var rounds = 0;
        foreach (var owner in DataOwners.Btrees)
            rounds += MergeRounds(run, owner, capacity, ref buffer, reportForeign: owner == DataOwners.Btrees[0]);
        run.Reporter.Count("check_backpointers_to_extents: rounds", rounds);
    }

    /// <summary>
    /// The rounds of the merge for the backpointers owned by <paramref name="owner"/>; with
    /// <paramref name="reportForeign"/>, the first round also reports the backpointers no data
    /// key can own (another btree, a level above the leaves, a type other than user data).
    /// </summary>
    private static int MergeRounds(SpaceCheckRun run, BtreeId owner, int capacity, ref BpRef[] buffer, bool reportForeign)
    {
        var lo = Bpos.Min;
        var rounds = 0;
        while (true)
        {
            rounds++;
            Bpos? hi = null;
            var n = 0;
            var it = run.FileSystem.Btrees[BtreeId.Backpointers].Iterate(Bpos.Min, Bpos.Max);
            while (it.MoveNext())
            {
                if (!BackpointerValue.TryRead(it.Value, out var bp, out _))
                    continue;
                if (!DataOwners.IsOwner(bp.Btree) || bp.Level != 0 || bp.DataType != BucketDataType.User)
                {
                    if (rounds == 1 && reportForeign)
                        ReportExtra(run, it.Key.Pos, bp, it.Value.ToArray(), "no key of that btree and level holds data pointers");
                    continue;
                }
                if (bp.Btree != owner)
                    continue;
                if (bp.Pos < lo || (hi is { } h && bp.Pos >= h))
                    continue;
                if (n == buffer.Length)
                {
                    if (n < capacity)
                    {
                        Array.Resize(ref buffer, (int)Math.Min(capacity, (long)n * 2));
                    }
                    else
                    {
                        // Full: keep the lower half of the owners; the rest waits for a later round.
                        Array.Sort(buffer, 0, n);
                        var cut = buffer[n / 2].Owner;
                        hi = cut;
                        n = n / 2;
                        while (n > 0 && buffer[n - 1].Owner >= cut)
                            n--;
                        if (bp.Pos >= cut)
                            continue;
                    }
                }
                buffer[n++] = new BpRef
                {
                    Owner = bp.Pos,
                    Slot = it.Key.Pos.Offset,
                    Sectors = bp.Sectors,
                    Device = (byte)it.Key.Pos.Inode,
                    Gen = bp.BucketGen,
                };
            }
            Array.Sort(buffer, 0, n);
            Merge(run, owner, buffer.AsSpan(0, n), lo, hi);
            run.Flush();
            if (hi is not { } next)
                return rounds;
            lo = next;
        }
    }

    private static void Merge(SpaceCheckRun run, BtreeId owner, ReadOnlySpan<BpRef> bps, Bpos lo, Bpos? hi)
    {
        var j = 0;
        var it = run.FileSystem.Btrees[owner].Iterate(lo, Bpos.Max);
        while (it.MoveNext())
        {
            var key = it.Key;
            if (hi is { } h && key.Pos >= h)
                break;
            while (j < bps.Length && bps[j].Owner < key.Pos)
                ReportExtra(run, bps[j++], OwnerMissing);
            var holds = DataOwners.HoldsPointers(owner, key.Type);
            var ptrs = DataOwners.Pointers(owner, key.Type, it.Value);
            var matched = 0;
            while (j < bps.Length && bps[j].Owner == key.Pos)
            {
                var r = bps[j++];
                var found = -1;
                for (var i = 0; i < ptrs.Count; i++)
                {
                    var p = ptrs[i];
                    if (!p.Cached && p.Device == r.Device && BackpointerValue.PositionOf(p.Device, p.OffsetSectors, ptrs.Window).Offset == r.Slot &&
                        p.Gen == r.Gen && r.Sectors == ExtentValue.DiskSectors(key.Size) && (matched & (1 << i)) == 0)
                    {
                        found = i;
                        break;
                    }
                }
                if (found >= 0)
                    matched |= 1 << found;
                else
                    ReportExtra(run, r, holds ? "its owner holds no matching pointer" : $"its owner is a {key.Type.ToText()} key");
            }
            for (var i = 0; i < ptrs.Count; i++)
            {
                var p = ptrs[i];
                if ((matched & (1 << i)) != 0 || p.Cached || !run.Layout.TryGet(p.Device, out var dev) ||
                    dev.CheckDataPointer(p.OffsetSectors, ptrs.Covered) is not null)
                {
                    continue;
                }
                var pos = BackpointerValue.PositionOf(p.Device, p.OffsetSectors, ptrs.Window);
                if (run.State.ReportedMissing.Contains(pos))
                    continue;
                var want = new BackpointerValue(owner, 0, BucketDataType.User, p.Gen, ExtentValue.DiskSectors(key.Size), key.Pos);
                ReportMissing(run, owner, key, p, pos, want, null);
            }
        }
        while (j < bps.Length)
            ReportExtra(run, bps[j++], OwnerMissing);
    }

    private const string OwnerMissing = "its owner does not exist";

    private static void ReportExtra(SpaceCheckRun run, in BpRef r, string why)
    {
        var pos = new Bpos(r.Device, r.Slot);
        var value = run.FileSystem.Btrees[BtreeId.Backpointers].TryGet(pos, out var bytes) ? bytes : [];
        if (value.Length == 0 || !BackpointerValue.TryRead(value, out var bp, out _))
            return;
        if (why == OwnerMissing && ReportDataLost(run, pos, bp, value))
            return;
        ReportExtra(run, pos, bp, value, why);
    }

    private static void ReportExtra(SpaceCheckRun run, Bpos pos, BackpointerValue bp, byte[] value, string why)
    {
        if (run.Reporter.Report(FsckErrorId.BackpointerToMissingPtr, run.Where(BtreeId.Backpointers, pos), $"backpointer ({bp.ToText()}): {why}"))
            DeleteIfUnchanged(run, pos, value);
    }
}
