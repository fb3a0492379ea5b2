// check_alloc_info, check_lrus and gc_gens: the indexes derived from the alloc keys, checked
// against the alloc keys as check_allocations left them. Each loads one or two bytes (the LRU
// check: eight) per bucket from one walk of the alloc btree, then streams the index it checks.
//
// - freespace: the runs of free buckets, maximal (the trigger merges neighbours), one key per run
//   at (device, end) with size = run length. Any difference rewrites the device's runs.
// - need_discard: exactly the buckets of type need_discard.
// - bucket_gens: the gen of every bucket with a key, 256 per key (a missing key means all 0).
// - lru: one fragmentation entry per bucket with a non-zero fragmentation index, at that index.
// - gc_gens: oldest_gen must not be newer than the oldest gen a pointer into the bucket carries,
//   or a wrapped gen could make a stale pointer look live. An oldest_gen that lags is normal (the
//   allocator's gc_gens raises it when buckets wait in need_gc_gens) and is left alone.
using Basalt.Alloc;
using Basalt.Data;
using Basalt.Format;

namespace Basalt.Fsck.Space;

internal static class CheckAllocInfo
{
    private sealed class Stored(DeviceLayout layout)
    {
        public readonly DeviceLayout Layout = layout;
        public readonly byte[] Type = new byte[layout.Nbuckets];
        public readonly byte[] Gen = new byte[layout.Nbuckets];
    }

    private static Stored[] Load(SpaceCheckRun run, Action<Stored, AllocWalk>? each = null)
    {
        var result = new Stored[run.Layout.Devices.Count];
        foreach (var dev in run.Layout.Devices)
        {
            var s = result[dev.Index] = new Stored(dev);
            var walk = new AllocWalk(run.FileSystem, dev, 0, dev.Nbuckets);
            while (walk.MoveNext())
            {
                s.Type[walk.Bucket] = (byte)walk.Value.DataType;
                s.Gen[walk.Bucket] = walk.Value.Gen;
                each?.Invoke(s, walk);
            }
        }
        return result;
    }

    public static void Run(SpaceCheckRun run)
    {
        var stored = Load(run);
        foreach (var s in stored)
            CheckFreespace(run, s);
        CheckNeedDiscard(run, stored);
        CheckBucketGens(run, stored);
        run.Flush();
    }

    private static void CheckFreespace(SpaceCheckRun run, Stored s)
    {
        var dev = s.Layout;
        var expected = new List<(ulong Start, ulong End)>();
        for (var b = (ulong)dev.FirstBucket; b < dev.Nbuckets; b++)
        {
            if (s.Type[b] != (byte)BucketDataType.Free)
                continue;
            if (expected.Count > 0 && expected[^1].End == b)
                expected[^1] = (expected[^1].Start, b + 1);
            else
                expected.Add((b, b + 1));
        }
        var storedRuns = new List<(ulong Start, ulong End)>();
        var storedKeys = new List<Bpos>();
        var it = run.FileSystem.Btrees[BtreeId.Freespace].Iterate(new Bpos(dev.Index, 0), new Bpos(dev.Index, ulong.MaxValue, uint.MaxValue));
        while (it.MoveNext())
        {
            storedKeys.Add(it.Key.Pos);
            var end = it.Key.Pos.Offset;
            storedRuns.Add((end >= it.Key.Size ? end - it.Key.Size : 0, end));
        }
        if (storedRuns.SequenceEqual(expected))
            return;
        var problems = Differences(s, storedRuns);
        var repair = false;
        foreach (var (where, detail) in problems)
            repair |= run.Reporter.Report(FsckErrorId.FreespaceKeyWrong, $"{run.DeviceName}: {where}", detail);
        if (!repair)
            return;
        foreach (var pos in storedKeys)
            run.Repair(t => t.Delete(BtreeId.Freespace, pos));
        run.Flush();
        foreach (var (start, end) in expected)
            run.Repair(t => t.Set(BtreeId.Freespace, FreespaceEdits.RunKey(dev.Index, start, end), []));
        run.Flush();
    }

    /// <summary>Bucket ranges whose membership differs, or the keys at fault when only the split into runs does.</summary>
    private static List<(string Where, string Detail)> Differences(Stored s, List<(ulong Start, ulong End)> stored)
    {
        var dev = s.Layout;
        var result = new List<(string, string)>();
        var where = $"{dev.Index}";
        var count = new byte[dev.Nbuckets];
        foreach (var (start, end) in stored)
        {
            if (end <= start || start < dev.FirstBucket || end > dev.Nbuckets)
                result.Add(($"dev {where} freespace run [{start}, {end})", "a run that is empty or reaches outside the data buckets"));
            for (var b = Math.Max(start, dev.FirstBucket); b < Math.Min(end, dev.Nbuckets); b++)
                count[b] = (byte)Math.Min(count[b] + 1, 2);
        }
        var from = 0UL;
        var state = 0;
        for (var b = (ulong)dev.FirstBucket; b <= dev.Nbuckets; b++)
        {
            // 0: agrees; 1: in a run but not free; 2: free but in no run; 3: in two runs.
            var now = b == dev.Nbuckets ? 0
                : count[b] > 1 ? 3
                : (count[b] == 1) == (s.Type[b] == (byte)BucketDataType.Free) ? 0
                : count[b] == 1 ? 1 : 2;
            if (now == state)
                continue;
            if (state != 0)
            {
                result.Add(($"dev {where} buckets [{from}, {b})", state switch
                {
                    1 => "in a freespace run but their alloc keys are not free",
                    2 => "free by their alloc keys but in no freespace run",
                    _ => "in more than one freespace run",
                }));
            }
            from = b;
            state = now;
        }
        if (result.Count == 0)
            result.Add(($"dev {where} freespace", "the free buckets are split into runs other than the maximal ones"));
        return result;
    }

    private static void CheckNeedDiscard(SpaceCheckRun run, Stored[] stored)
    {
        var seen = stored.Select(s => new bool[s.Layout.Nbuckets]).ToArray();
        var it = run.FileSystem.Btrees[BtreeId.NeedDiscard].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            var pos = it.Key.Pos;
            if (SpacePositions.TryBucketOf(pos, out var b) && b.Device < stored.Length && b.Bucket < stored[b.Device].Layout.Nbuckets &&
                stored[b.Device].Type[b.Bucket] == (byte)BucketDataType.NeedDiscard)
            {
                seen[b.Device][b.Bucket] = true;
                continue;
            }
            var type = b.Device < stored.Length && b.Bucket < stored[b.Device].Layout.Nbuckets
                ? ((BucketDataType)stored[b.Device].Type[b.Bucket]).ToText()
                : "no bucket";
            if (run.Reporter.Report(FsckErrorId.NeedDiscardKeyWrong, run.Where(BtreeId.NeedDiscard, pos), $"need_discard key for a bucket that is {type}"))
                run.Repair(t => t.Delete(BtreeId.NeedDiscard, pos));
        }
        foreach (var s in stored)
        {
            for (var b = 0UL; b < s.Layout.Nbuckets; b++)
            {
                if (s.Type[b] != (byte)BucketDataType.NeedDiscard || seen[s.Layout.Index][b])
                    continue;
                var pos = SpacePositions.Bucket(s.Layout.Index, b);
                if (run.Reporter.Report(FsckErrorId.NeedDiscardKeyWrong, run.WhereBucket(s.Layout.Index, b), "need_discard bucket without its need_discard key"))
                    run.Repair(t => t.Set(BtreeId.NeedDiscard, new Bkey(pos, KeyType.Set), []));
            }
        }
    }

    private static void CheckBucketGens(SpaceCheckRun run, Stored[] stored)
    {
        var seen = stored.Select(s => new bool[(s.Layout.Nbuckets + SpacePositions.GensPerKey - 1) / SpacePositions.GensPerKey]).ToArray();
        var it = run.FileSystem.Btrees[BtreeId.BucketGens].Iterate(Bpos.Min, Bpos.Max);
        var expected = new byte[SpacePositions.GensPerKey];
        while (it.MoveNext())
        {
            var pos = it.Key.Pos;
            if (pos.Inode >= (ulong)stored.Length || pos.Snapshot != 0 || pos.Offset >= (ulong)seen[pos.Inode].Length)
            {
                if (run.Reporter.Report(FsckErrorId.BucketGensKeyWrong, run.Where(BtreeId.BucketGens, pos), "bucket_gens key for buckets that do not exist"))
                    run.Repair(t => t.Delete(BtreeId.BucketGens, pos));
                continue;
            }
            seen[pos.Inode][pos.Offset] = true;
            var s = stored[pos.Inode];
            Fill(s, pos.Offset, expected);
            var value = it.Value;
            if (value.SequenceEqual(expected))
                continue;
            var first = FirstDifference(value, expected);
            ReportGens(run, s, pos, first < value.Length
                ? $"bucket {(pos.Offset * SpacePositions.GensPerKey) + (ulong)first}: gen {value[first]} in bucket_gens, {expected[first]} in its alloc key"
                : $"bucket_gens value of {value.Length} bytes", expected);
        }
        foreach (var s in stored)
        {
            var groups = seen[s.Layout.Index];
            for (var g = 0UL; g < (ulong)groups.Length; g++)
            {
                if (groups[g])
                    continue;
                Fill(s, g, expected);
                var first = expected.AsSpan().IndexOfAnyExcept((byte)0);
                if (first < 0)
                    continue;
                ReportGens(run, s, new Bpos(s.Layout.Index, g),
                    $"no bucket_gens key; bucket {(g * SpacePositions.GensPerKey) + (ulong)first} has gen {expected[first]} in its alloc key", expected);
            }
        }
    }

    private static int FirstDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var n = Math.Min(a.Length, b.Length);
        for (var i = 0; i < n; i++)
        {
            if (a[i] != b[i])
                return i;
        }
        return n;
    }

    private static void Fill(Stored s, ulong group, byte[] gens)
    {
        Array.Clear(gens);
        var first = group * SpacePositions.GensPerKey;
        for (var i = 0; i < SpacePositions.GensPerKey && first + (ulong)i < s.Layout.Nbuckets; i++)
            gens[i] = s.Gen[first + (ulong)i];
    }

    private static void ReportGens(SpaceCheckRun run, Stored s, Bpos pos, string detail, byte[] expected)
    {
        if (!run.Reporter.Report(FsckErrorId.BucketGensKeyWrong, run.Where(BtreeId.BucketGens, pos), detail))
            return;
        var value = (byte[])expected.Clone();
        run.Repair(t => t.Set(BtreeId.BucketGens, new Bkey(pos, KeyType.BucketGens), value));
    }

    // ---- check_lrus ---------------------------------------------------------------------------

    public static void CheckLrus(SpaceCheckRun run)
    {
        var frag = run.Layout.Devices.Select(d => new ulong[d.Nbuckets]).ToArray();
        Load(run, (s, walk) => frag[s.Layout.Index][walk.Bucket] = walk.Value.FragmentationLru);
        var seen = run.Layout.Devices.Select(d => new bool[d.Nbuckets]).ToArray();
        var it = run.FileSystem.Btrees[BtreeId.Lru].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            var pos = it.Key.Pos;
            if (!SpacePositions.TryReadLru(pos, out var kind, out var index, out var b) || kind != LruKind.Fragmentation)
                continue;
            if (b.Device < frag.Length && b.Bucket < (ulong)frag[b.Device].Length && frag[b.Device][b.Bucket] != 0 &&
                SpacePositions.LruIndex(frag[b.Device][b.Bucket]) == index && !seen[b.Device][b.Bucket])
            {
                seen[b.Device][b.Bucket] = true;
                continue;
            }
            var why = b.Device >= frag.Length || b.Bucket >= (ulong)frag[b.Device].Length
                ? $"{b.ToText()} does not exist"
                : $"{b.ToText()} has fragmentation index {frag[b.Device][b.Bucket]}, the entry {index}";
            if (run.Reporter.Report(FsckErrorId.LruEntryBad, run.Where(BtreeId.Lru, pos), why))
                run.Repair(t => t.Delete(BtreeId.Lru, pos));
        }
        for (var d = 0; d < frag.Length; d++)
        {
            for (var b = 0UL; b < (ulong)frag[d].Length; b++)
            {
                if (frag[d][b] == 0 || seen[d][b])
                    continue;
                var pos = SpacePositions.Lru(LruKind.Fragmentation, SpacePositions.LruIndex(frag[d][b]), new BucketRef((byte)d, b));
                if (run.Reporter.Report(FsckErrorId.AllocKeyToMissingLruEntry, run.WhereBucket((byte)d, b),
                        $"fragmentation index {frag[d][b]} without its LRU entry"))
                {
                    run.Repair(t => t.Set(BtreeId.Lru, new Bkey(pos, KeyType.Set), []));
                }
            }
        }
        run.Flush();
    }

    // ---- gc_gens ------------------------------------------------------------------------------

    public static void GcGens(SpaceCheckRun run)
    {
        var behind = run.State.Behind ?? CountBehind(run);
        foreach (var dev in run.Layout.Devices)
        {
            var walk = new AllocWalk(run.FileSystem, dev, dev.FirstBucket, dev.Nbuckets);
            while (walk.MoveNext())
            {
                var a = walk.Value;
                var oldest = (byte)(a.Gen - behind[dev.Index][walk.Bucket]);
                // Unsafe only when oldest_gen is newer than the oldest pointer (or than the gen itself).
                if (Gens.Compare(a.OldestGen, oldest) <= 0)
                    continue;
                if (!run.Reporter.Report(FsckErrorId.AllocKeyOldestGenWrong, run.WhereBucket(dev.Index, walk.Bucket),
                        $"oldest_gen {a.OldestGen}, but a pointer into the bucket (gen {a.Gen}) carries gen {oldest}"))
                {
                    continue;
                }
                a.OldestGen = oldest;
                if (a.DataType.IsEmpty())
                    a.DataType = a.DeriveType(BucketDataType.User);
                run.WriteAlloc(dev, walk.Bucket, a, walk.HasKey);
            }
        }
        run.Flush();
    }

    /// <summary>gc_gens run on its own: how far the oldest pointer into each bucket is behind the bucket's gen.</summary>
    private static byte[][] CountBehind(SpaceCheckRun run)
    {
        var gens = Load(run);
        var behind = run.Layout.Devices.Select(d => new byte[d.Nbuckets]).ToArray();
        foreach (var btree in DataOwners.Btrees)
            CountBehind(run, btree, gens, behind);
        return behind;
    }

    private static void CountBehind(SpaceCheckRun run, BtreeId btree, Stored[] gens, byte[][] behind)
    {
        var it = run.FileSystem.Btrees[btree].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            if (!DataOwners.HoldsPointers(btree, it.Key.Type))
                continue;
            var ptrs = DataOwners.Pointers(btree, it.Key.Type, it.Value);
            for (var i = 0; i < ptrs.Count; i++)
            {
                var p = ptrs[i];
                if (p.Device >= gens.Length)
                    continue;
                var b = gens[p.Device].Layout.BucketOf(p.OffsetSectors);
                if (b >= gens[p.Device].Layout.Nbuckets)
                    continue;
                behind[p.Device][b] = (byte)Math.Max(behind[p.Device][b], Gens.After(gens[p.Device].Gen[b], p.Gen));
            }
        }
    }
}
