// check_allocations (DESIGN §2 invariants 4 and 6): mark and sweep, independent of the triggers.
//
// Mark: every bucket of every device starts from its stored gen (the alloc key; the bucket_gens
// entry where a bucket has no key) and from its layout (journal and node-area buckets are full).
// Then every data pointer is walked once: those of extents, and those of indirect extents (the
// reflink btree's shared runs, whose value holds an extent after its refcount). A pointer to a
// missing device, outside the data buckets, or stale while dirty is dropped (an extent left
// without pointers becomes an error key of the same range, so its reads fail instead of returning
// zeros; an indirect extent has no trigger, so its dropped pointers are released explicitly); a
// pointer whose gen is ahead of its bucket's raises the bucket's gen; every other pointer adds the
// extent's live sectors to its bucket's dirty (cached) count.
//
// Sweep: each bucket's recomputed value is compared field by field with the stored alloc key (a
// bucket without one is in its layout state) and rewritten where they differ; keys naming no
// bucket are deleted. The per-device accounting is summed from the recomputed values and compared
// last, after the alloc repairs (whose trigger moves the counters) have committed.
//
// Memory: a few bytes per bucket (gen, stored type, dirty and cached sectors, staleness, flags);
// the extents and reflink btrees are streamed and nothing is allocated per key.
using Basalt.Alloc;
using Basalt.Data;
using Basalt.Format;

namespace Basalt.Fsck.Space;

internal static class CheckAllocations
{
    [Flags]
    private enum Mark : byte
    {
        None = 0,
        GenReported = 1,
        GenRepaired = 2,
        TypeReported = 4,
        TypeRepaired = 8,
        /// <summary>A dropped pointer named this bucket: the extent trigger may have charged it back; rewritten without a second finding.</summary>
        Touched = 16,
    }

    private sealed class Shadow(DeviceLayout layout)
    {
        public readonly DeviceLayout Layout = layout;
        public readonly byte[] Gen = new byte[layout.Nbuckets];
        public readonly byte[] StoredType = new byte[layout.Nbuckets];
        public readonly uint[] Dirty = new uint[layout.Nbuckets];
        public readonly uint[] Cached = new uint[layout.Nbuckets];
        public readonly byte[] Behind = new byte[layout.Nbuckets];
        public readonly Mark[] Marks = new Mark[layout.Nbuckets];

        /// <summary>
        /// Node space outside the node area, asked live (a repair's commit may claim a bucket for
        /// nodes while the pass runs): a btree bucket each, full (docs/allocation.md).
        /// </summary>
        public Func<ulong, bool> IsNodeBucket = _ => false;
    }

    public static void Run(SpaceCheckRun run)
    {
        var shadows = run.Layout.Devices.Select(d => new Shadow(d)).ToArray();
        var touchedBeyond = new HashSet<BucketRef>();
        // Node space: the buckets of every node reachable from the roots (as the mount rebuilt it
        // and the repairs changed it since), and the ones claimed for nodes that hold none yet.
        var engine = run.FileSystem.Btrees;
        shadows[engine.Geometry.Device].IsNodeBucket = engine.IsNodeBucket;
        LoadGens(run, shadows);
        MarkExtents(run, shadows, touchedBeyond);
        run.Flush();
        var usage = Sweep(run, shadows, touchedBeyond);
        run.Flush();
        CheckAccounting(run, usage);
        run.Flush();
        run.State.Behind = [.. shadows.Select(s => s.Behind)];
    }

    private static void LoadGens(SpaceCheckRun run, Shadow[] shadows)
    {
        foreach (var s in shadows)
        {
            for (var b = 0UL; b < s.Layout.Nbuckets; b++)
                s.StoredType[b] = (byte)s.Layout.FixedType(b);
        }
        var gens = run.FileSystem.Btrees[BtreeId.BucketGens].Iterate(Bpos.Min, Bpos.Max);
        while (gens.MoveNext())
        {
            var pos = gens.Key.Pos;
            if (pos.Inode >= (ulong)shadows.Length || gens.Value.Length != BucketGensValue.Size || pos.Offset > ulong.MaxValue / SpacePositions.GensPerKey)
                continue;
            var s = shadows[pos.Inode];
            var first = pos.Offset * SpacePositions.GensPerKey;
            for (var i = 0; i < SpacePositions.GensPerKey && first + (ulong)i < s.Layout.Nbuckets; i++)
                s.Gen[first + (ulong)i] = gens.Value[i];
        }
        foreach (var s in shadows)
        {
            var walk = new AllocWalk(run.FileSystem, s.Layout, 0, s.Layout.Nbuckets);
            while (walk.MoveNext())
            {
                if (!walk.HasKey)
                    continue;
                s.Gen[walk.Bucket] = walk.Value.Gen;
                s.StoredType[walk.Bucket] = (byte)walk.Value.DataType;
            }
        }
    }

    private static void MarkExtents(SpaceCheckRun run, Shadow[] shadows, HashSet<BucketRef> touchedBeyond)
    {
        foreach (var btree in DataOwners.Btrees)
            MarkExtents(run, btree, shadows, touchedBeyond);
    }

    private static void MarkExtents(SpaceCheckRun run, BtreeId btree, Shadow[] shadows, HashSet<BucketRef> touchedBeyond)
    {
        var it = run.FileSystem.Btrees[btree].Iterate(Bpos.Min, Bpos.Max);
        Span<DevicePtr> kept = stackalloc DevicePtr[ExtentValue.MaxPtrs];
        while (it.MoveNext())
        {
            var key = it.Key;
            if (!DataOwners.HoldsPointers(btree, key.Type))
                continue;
            var ptrs = DataOwners.Pointers(btree, key.Type, it.Value);
            var covered = ptrs.Count > 0 ? ptrs.Covered : 0;
            var dropped = 0;
            var keptCount = 0;
            for (var i = 0; i < ptrs.Count; i++)
            {
                var p = ptrs[i];
                if (!MarkPointer(run, btree, shadows, touchedBeyond, key, p, covered))
                {
                    dropped++;
                    continue;
                }
                kept[keptCount++] = p;
            }
            if (dropped > 0)
                QueueDrop(run, btree, key, it.Value.ToArray(), kept[..keptCount].ToArray());
        }
    }

    /// <summary>Checks one pointer and charges it; false when it is to be dropped.</summary>
    private static bool MarkPointer(SpaceCheckRun run, BtreeId btree, Shadow[] shadows, HashSet<BucketRef> touchedBeyond, Bkey key, DevicePtr p, uint covered)
    {
        if (p.Device >= shadows.Length)
        {
            return !run.Reporter.Report(FsckErrorId.PtrToInvalidDevice, run.Where(btree, key.Pos),
                $"pointer {p.ToText()} names device {p.Device}; the filesystem has {shadows.Length}");
        }
        var s = shadows[p.Device];
        var dev = s.Layout;
        var bad = dev.CheckDataPointer(p.OffsetSectors, covered);
        if (bad is null && dev.FixedType(dev.BucketOf(p.OffsetSectors)) == BucketDataType.Free && s.IsNodeBucket(dev.BucketOf(p.OffsetSectors)))
            bad = $"sector {p.OffsetSectors} lies in btree bucket {dev.BucketOf(p.OffsetSectors)}, which holds btree nodes";
        if (bad is not null)
        {
            if (!run.Reporter.Report(FsckErrorId.PtrToInvalidBucket, run.Where(btree, key.Pos), $"pointer {p.ToText()}: {bad}"))
                return true;
            var touched = dev.BucketOf(p.OffsetSectors);
            if (touched < dev.Nbuckets)
                s.Marks[touched] |= Mark.Touched;
            else
                touchedBeyond.Add(new BucketRef(p.Device, touched));
            return false;
        }
        var b = dev.BucketOf(p.OffsetSectors);
        var order = Gens.Compare(p.Gen, s.Gen[b]);
        if (order > 0)
        {
            var fix = run.Reporter.Report(FsckErrorId.PtrGenNewerThanBucketGen, run.Where(btree, key.Pos),
                $"pointer {p.ToText()} has gen {p.Gen}, its bucket {b} gen {s.Gen[b]}");
            s.Marks[b] |= Mark.GenReported | (fix ? Mark.GenRepaired : Mark.None);
            if (fix)
                s.Gen[b] = p.Gen;
        }
        else if (order < 0)
        {
            if (p.Cached)
            {
                // A stale cached pointer is normal: it holds nothing and is never read.
                s.Behind[b] = (byte)Math.Max(s.Behind[b], -order);
                return true;
            }
            return !run.Reporter.Report(FsckErrorId.StaleDirtyPtr, run.Where(btree, key.Pos),
                $"pointer {p.ToText()} has gen {p.Gen}, its bucket {b} was reused (gen {s.Gen[b]})");
        }
        var stored = (BucketDataType)s.StoredType[b];
        if (!stored.IsEmpty() && stored is not (BucketDataType.User or BucketDataType.Cached) && (s.Marks[b] & Mark.TypeReported) == 0)
        {
            var fix = run.Reporter.Report(FsckErrorId.PtrBucketDataTypeMismatch, run.WhereBucket(p.Device, b),
                $"user data pointer {p.ToText()} of {key.Pos.ToText()} into a bucket whose alloc key says {stored.ToText()}");
            s.Marks[b] |= Mark.TypeReported | (fix ? Mark.TypeRepaired : Mark.None);
        }
        var sectors = ExtentValue.DiskSectors(key.Size);
        if (p.Cached)
            s.Cached[b] = (uint)Math.Min(uint.MaxValue, (ulong)s.Cached[b] + sectors);
        else
            s.Dirty[b] = (uint)Math.Min(uint.MaxValue, (ulong)s.Dirty[b] + sectors);
        return true;
    }

    private static void QueueDrop(SpaceCheckRun run, BtreeId btree, Bkey key, byte[] oldValue, DevicePtr[] kept)
    {
        if (btree == BtreeId.Reflink)
        {
            QueueIndirectDrop(run, key, oldValue, kept);
            return;
        }
        if (kept.Length == 0)
        {
            run.Reporter.KeyLost(BtreeId.Extents, key.Pos);
            run.Repair(t => t.Set(BtreeId.Extents, new Bkey(key.Pos, KeyType.Error, key.Size), []));
            return;
        }
        if (!ExtentValue.TryRead(oldValue, out var extent, out _))
            return;
        var value = extent.WithPtrs(kept).ToBytes();
        run.Repair(t => t.Set(BtreeId.Extents, key, value));
    }

    /// <summary>
    /// The drop of an indirect extent's pointers. It has no trigger (a refcount change must not
    /// recharge it), so what the extent trigger would do is done here: the dropped pointers alone
    /// are released (their sectors and backpointers; the kept ones stay charged as they are), and
    /// an indirect extent left without pointers becomes an error key of its range, so reads through
    /// the reflink pointers to it fail instead of returning zeros.
    /// </summary>
    private static void QueueIndirectDrop(SpaceCheckRun run, Bkey key, byte[] oldValue, DevicePtr[] kept)
    {
        if (!ReflinkIndirect.TryRead(oldValue, out var refcount, out var extent, out _))
            return;
        var dropped = extent.WithPtrs([.. extent.Ptrs.Where(p => !kept.Contains(p))]);
        if (kept.Length == 0)
        {
            run.Reporter.KeyLost(BtreeId.Reflink, key.Pos);
            run.Repair(t =>
            {
                ExtentTriggers.ChargeIndirect(t, key, dropped, -1);
                t.Set(BtreeId.Reflink, new Bkey(key.Pos, KeyType.Error, key.Size), []);
            });
            return;
        }
        var value = ReflinkIndirect.ToBytes(refcount, extent.WithPtrs(kept));
        run.Repair(t =>
        {
            ExtentTriggers.ChargeIndirect(t, key, dropped, -1);
            t.Set(BtreeId.Reflink, key, value);
        });
    }

    private static Dictionary<(byte, BucketDataType), DeviceUsage> Sweep(SpaceCheckRun run, Shadow[] shadows, HashSet<BucketRef> touchedBeyond)
    {
        var usage = new Dictionary<(byte, BucketDataType), DeviceUsage>();
        // Keys of devices that do not exist.
        var all = run.FileSystem.Btrees[BtreeId.Alloc].Iterate(new Bpos((ulong)shadows.Length, 0), Bpos.Max);
        while (all.MoveNext())
            ReportInvalidKey(run, all.Key.Pos, $"device {all.Key.Pos.Inode} does not exist", silent: false);

        foreach (var s in shadows)
        {
            var dev = s.Layout;
            var sums = new DeviceUsage[BucketDataTypes.All.Count];
            var walk = new AllocWalk(run.FileSystem, dev, 0, dev.Nbuckets, (key, bucket) =>
                ReportInvalidKey(run, key.Pos, $"bucket {bucket} is outside the data buckets [{dev.FirstBucket}, {dev.Nbuckets})",
                    silent: bucket < dev.Nbuckets ? (s.Marks[bucket] & Mark.Touched) != 0 : touchedBeyond.Contains(new BucketRef(dev.Index, bucket))));
            while (walk.MoveNext())
            {
                var b = walk.Bucket;
                if (b < dev.FirstBucket)
                    continue;
                var stored = walk.Value;
                var expected = Expected(s, b, stored);
                if (expected != stored)
                    Compare(run, s, b, stored, expected, walk.HasKey);
                var sectors = (long)expected.DirtySectors + expected.CachedSectors;
                var fragmented = expected.DataType == BucketDataType.User && expected.DirtySectors < dev.BucketSectors
                    ? dev.BucketSectors - (long)expected.DirtySectors
                    : 0;
                ref var sum = ref sums[(int)expected.DataType];
                sum = sum.Add(new DeviceUsage(1, sectors, fragmented));
            }
            for (var i = 0; i < sums.Length; i++)
            {
                if (!sums[i].IsZero)
                    usage[(dev.Index, (BucketDataType)i)] = sums[i];
            }
        }
        return usage;
    }

    private static void ReportInvalidKey(SpaceCheckRun run, Bpos pos, string why, bool silent)
    {
        if (silent || run.Reporter.Report(FsckErrorId.AllocKeyToInvalidBucket, run.Where(BtreeId.Alloc, pos), $"alloc key: {why}"))
            run.Repair(t => t.Delete(BtreeId.Alloc, pos));
    }

    /// <summary>The value the pointers imply for bucket <paramref name="b"/>; gen history, flags and times are kept from the stored key.</summary>
    private static AllocValue Expected(Shadow s, ulong b, in AllocValue stored)
    {
        var dev = s.Layout;
        var fixedType = dev.FixedType(b);
        if (fixedType != BucketDataType.Free)
        {
            var layoutState = dev.DefaultAlloc(b);
            layoutState.Gen = s.Gen[b];
            layoutState.OldestGen = stored.OldestGen;
            return layoutState;
        }
        var e = stored;
        e.Gen = s.Gen[b];
        if (s.IsNodeBucket(b))
        {
            // Claimed for btree nodes: the whole bucket, whatever number of its slots hold nodes.
            e.Flags = 0;
            e.DataType = BucketDataType.Btree;
            e.DirtySectors = dev.BucketSectors;
            e.CachedSectors = 0;
            e.FragmentationLru = 0;
            return e;
        }
        e.DirtySectors = s.Dirty[b];
        e.CachedSectors = s.Cached[b];
        if (!e.IsEmptyState)
            e.Flags |= AllocFlags.NeedDiscard | AllocFlags.NeedIncGen;
        e.DataType = e.DeriveType(BucketDataType.User);
        e.FragmentationLru = AllocValue.FragmentationIndex(e.DataType, e.DirtySectors, dev.BucketSectors);
        return e;
    }

    private static void Compare(SpaceCheckRun run, Shadow s, ulong b, in AllocValue stored, in AllocValue expected, bool hasKey)
    {
        var marks = s.Marks[b];
        var where = run.WhereBucket(s.Layout.Index, b);
        var detail = $"stored {stored.ToText()}{(hasKey ? "" : " (no alloc key)")}, recomputed {expected.ToText()}";
        var repair = (marks & (Mark.Touched | Mark.GenRepaired | Mark.TypeRepaired)) != 0;
        if ((marks & Mark.Touched) == 0)
        {
            var sectorsWrong = false;
            if (stored.DirtySectors != expected.DirtySectors)
            {
                sectorsWrong = true;
                repair |= run.Reporter.Report(FsckErrorId.AllocKeyDirtySectorsWrong, where, detail);
            }
            if (stored.CachedSectors != expected.CachedSectors)
            {
                sectorsWrong = true;
                repair |= run.Reporter.Report(FsckErrorId.AllocKeyCachedSectorsWrong, where, detail);
            }
            if (!sectorsWrong && stored.DataType != expected.DataType && (marks & Mark.TypeReported) == 0)
                repair |= run.Reporter.Report(FsckErrorId.AllocKeyDataTypeWrong, where, detail);
            if (stored.Gen != expected.Gen && (marks & Mark.GenReported) == 0)
                repair |= run.Reporter.Report(FsckErrorId.AllocKeyGenWrong, where, detail);
            if (!sectorsWrong && stored.DataType == expected.DataType && stored.FragmentationLru != expected.FragmentationLru)
                repair |= run.Reporter.Report(FsckErrorId.AllocKeyFragmentationLruWrong, where, detail);
        }
        if (repair)
            run.WriteAlloc(s.Layout, b, expected, hasKey);
    }

    private static void CheckAccounting(SpaceCheckRun run, Dictionary<(byte, BucketDataType), DeviceUsage> expected)
    {
        var seen = new HashSet<(byte, BucketDataType)>();
        var it = run.FileSystem.Btrees[BtreeId.Accounting].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            var pos = it.Key.Pos;
            var stored = DeviceUsage.TryRead(it.Value, out var u, out _) ? u : default;
            if (!DeviceUsage.TryReadPosition(pos, out var device, out var type) || device >= run.Layout.Devices.Count)
            {
                if (!stored.IsZero && run.Reporter.Report(FsckErrorId.AccountingMismatch, run.Where(BtreeId.Accounting, pos),
                        $"counters {stored.ToText()} for a device or data type that does not exist"))
                {
                    run.Repair(t => t.Delete(BtreeId.Accounting, pos));
                }
                continue;
            }
            seen.Add((device, type));
            var want = expected.GetValueOrDefault((device, type));
            if (stored != want)
                ReportUsage(run, device, type, stored, want);
        }
        foreach (var ((device, type), want) in expected)
        {
            if (!seen.Contains((device, type)))
                ReportUsage(run, device, type, default, want);
        }
    }

    private static void ReportUsage(SpaceCheckRun run, byte device, BucketDataType type, DeviceUsage stored, DeviceUsage want)
    {
        if (!run.Reporter.Report(FsckErrorId.AccountingMismatch, $"{run.DeviceName}: dev {device} {type.ToText()}",
                $"stored {stored.ToText()}, recomputed {want.ToText()}"))
        {
            return;
        }
        // The counters are changed by a delta, like every other change to them, so that the
        // repair, too, counts once whatever the journal replays over it later.
        run.Repair(t => SpaceTriggers.SetUsage(t, device, type, want));
    }
}
