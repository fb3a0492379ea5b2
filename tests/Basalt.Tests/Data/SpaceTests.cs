// The allocation layer under pressure: buckets reused until their gens wrap, stale pointers,
// damaged data, full devices and failing writes. Each test ends with the data read back against a
// model and a remount (and fsck once the space passes run in it).
using Basalt.Alloc;
using Basalt.Btree;
using Basalt.Data;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Data;

public sealed class SpaceTests(ITestOutputHelper output)
{
    /// <summary>4 KiB buckets, most of a 1 MiB device given to the node area: about 20 data buckets.</summary>
    private static FormatOptions SmallBuckets(ulong nodeAreaBuckets = 180) => new()
    {
        BlockSize = 512,
        BucketSize = 4096,
        NodeSize = 4096,
        NodeAreaBuckets = nodeAreaBuckets,
        Uuid = new Guid("5c0e7a2b-1d4f-4e88-9a3c-7b2d6e1f0a55"),
    };

    private static MountOptions Manual => new() { Space = new SpaceOptions { BackgroundWorker = false } };

    [Fact]
    public void Every_data_bucket_is_reused_many_times_and_the_gens_wrap()
    {
        using var device = new MemoryBlockDevice(1024 * 1024, "small.img");
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        var model = new byte[4 * 4096];
        using var fs = BasaltFileSystem.Format(device, SmallBuckets(), Manual);
        var dev = fs.Space.Layout[0];
        var dataBuckets = Enumerable.Range((int)dev.FirstBucket, (int)(dev.Nbuckets - dev.FirstBucket))
            .Select(b => (ulong)b).Where(b => dev.FixedType(b) == BucketDataType.Free).ToList();
        output.WriteLine($"{dataBuckets.Count} data buckets of {dev.BucketSize} bytes");
        var lastGen = dataBuckets.ToDictionary(b => b, b => fs.Space.GenOf(new BucketRef(0, b)));
        var increments = dataBuckets.ToDictionary(b => b, _ => 0);
        var wraps = 0;
        var writes = dataBuckets.Count * 270;
        for (var i = 0; i < writes; i++)
        {
            // Overwrite one of four blocks: every write empties the bucket the block lived in.
            var block = random.Next(4);
            var data = new byte[4096];
            random.NextBytes(data);
            fs.Data.Write(1, block * 4096L, data);
            data.CopyTo(model, block * 4096);
            foreach (var b in dataBuckets)
            {
                var gen = fs.Space.GenOf(new BucketRef(0, b));
                if (gen == lastGen[b])
                    continue;
                var step = (byte)(gen - lastGen[b]);
                increments[b] += step;
                if (gen < lastGen[b])
                    wraps++;
                lastGen[b] = gen;
            }
        }
        output.WriteLine($"{writes} writes: gens raised {increments.Values.Min()}..{increments.Values.Max()} times per bucket, {wraps} wraps, " +
                         $"{fs.Space.Invalidated} buckets freed, {fs.Space.Discards} discards");
        Assert.All(increments.Values, n => Assert.True(n >= 3, $"a data bucket was reused only {n} times"));
        Assert.True(wraps > 0, "no bucket's gen wrapped past 255");
        AssertAll(fs, new Dictionary<ulong, byte[]> { [1] = model });
        // A crash after a sync keeps every write.
        fs.Sync();
        fs.Close(sync: false);
        using var again = BasaltFileSystem.Mount(device, Manual);
        AssertReads(again, 1, model);
    }

    [Fact]
    public void A_stale_pointer_is_never_read()
    {
        using var device = new MemoryBlockDevice(1024 * 1024, "small.img");
        using var fs = BasaltFileSystem.Format(device, SmallBuckets(), Manual);
        var first = Enumerable.Repeat((byte)0xA1, 4096).ToArray();
        fs.Data.Write(1, 0, first);
        var (key, value) = fs.Data.Map(1, 0, 8).Single();
        var ptr = ExtentValue.TryRead(value, out var extent, out _) ? extent.Ptrs[0] : throw new InvalidOperationException();
        // Free the bucket (gen + 1) and fill every data bucket again so the old one is reused.
        fs.Data.Punch(1, 0, 4096);
        fs.Space.Close(fs.Space.UserWrites);
        fs.Space.MakeRoom(aggressive: false);
        var bucket = new BucketRef(0, fs.Space.Layout[0].BucketOf(ptr.OffsetSectors));
        Assert.True(Gens.IsStale(fs.Space.GenOf(bucket), ptr.Gen), "the punched bucket was invalidated");
        var reused = false;
        for (var i = 0; i < 40 && !reused; i++)
        {
            try
            {
                fs.Data.Write(2, i * 4096L, Enumerable.Repeat((byte)0xB2, 4096).ToArray());
            }
            catch (BasaltException full) when (full.Code == ErrorCode.DeviceFull)
            {
                fs.Data.Punch(2, 0, i * 4096L);
                fs.Space.MakeRoom(aggressive: false);
            }
            reused = fs.Space.IsOpen(bucket) || fs.Space.GenOf(bucket) != (byte)(ptr.Gen + 1);
        }
        Assert.True(reused, "the old bucket holds new data");
        // Plant the old extent (as a crash that lost the punch, or a bug, would leave it) without
        // its trigger: the leaf key is written through the repair path.
        var planted = new Bkey(ExtentStore.EndPos(3, 8), KeyType.Extent, 8);
        fs.Transact(t => t.SetWithoutTrigger(Basalt.Format.BtreeId.Extents, planted, value));
        var read = new byte[4096];
        var e = Assert.Throws<BasaltException>(() => fs.Data.Read(3, 0, read));
        Assert.Equal(ErrorCode.IoError, e.Code);
        Assert.Contains("inode 3 offset 0", e.Message, StringComparison.Ordinal);
        Assert.Contains("stale", e.Message, StringComparison.Ordinal);
        Assert.True(fs.Data.StaleSkipped > 0);
    }

    [Fact]
    public void The_lock_free_staleness_check_sees_a_gen_increment_committed_on_another_thread()
    {
        // IsStale reads the gens without the allocator's lock: a thread that found the pointer
        // fresh must find it stale once the commit that raised its bucket's gen has returned.
        using var device = new MemoryBlockDevice(1024 * 1024, "small.img");
        using var fs = BasaltFileSystem.Format(device, SmallBuckets(), Manual);
        fs.Data.Write(1, 0, Enumerable.Repeat((byte)0xC3, 4096).ToArray());
        var (_, value) = fs.Data.Map(1, 0, 8).Single();
        var ptr = ExtentValue.TryRead(value, out var extent, out _) ? extent.Ptrs[0] : throw new InvalidOperationException();
        using var checkedOnce = new ManualResetEventSlim();
        using var invalidated = new ManualResetEventSlim();
        var seen = new List<bool>();
        var reader = new Thread(() =>
        {
            seen.Add(fs.Space.IsStale(ptr));
            checkedOnce.Set();
            invalidated.Wait();
            seen.Add(fs.Space.IsStale(ptr));
        });
        reader.Start();
        checkedOnce.Wait();
        fs.Data.Punch(1, 0, 4096);
        fs.Space.Close(fs.Space.UserWrites);
        fs.Space.MakeRoom(aggressive: false);
        var bucket = new BucketRef(0, fs.Space.Layout[0].BucketOf(ptr.OffsetSectors));
        Assert.True(Gens.IsStale(fs.Space.GenOf(bucket), ptr.Gen), "the punched bucket was invalidated");
        invalidated.Set();
        reader.Join();
        Assert.Equal([false, true], seen);
        // Beyond the device or its buckets a pointer is stale, never an index out of range.
        Assert.True(fs.Space.IsStale(ptr with { Device = 7 }));
        Assert.True(fs.Space.IsStale(ptr with { OffsetSectors = fs.Space.Layout[0].Nbuckets * fs.Space.Layout[0].BucketSectors }));
    }


    [Fact]
    public void Damaged_data_reads_as_an_io_error_naming_the_inode_and_offset_never_as_wrong_bytes()
    {
        using var device = new MemoryBlockDevice(8 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, ExtentStoreTests.Geometry, Manual);
        var data = new byte[200_000];
        new Random(7).NextBytes(data);
        fs.Data.Write(7, 0, data);
        fs.Sync();
        // Flip one byte inside the run holding bytes 70,000..: its checksum no longer matches.
        var (key, value) = fs.Data.Map(7, 70_000 / 512, (70_000 / 512) + 1).Single();
        Assert.True(ExtentValue.TryRead(value, out var extent, out _));
        var sector = new byte[512];
        device.Read(extent.Ptrs[0].OffsetBytes, sector);
        sector[100] ^= 0x40;
        device.Write(extent.Ptrs[0].OffsetBytes, sector);
        var runStart = (long)(key.Pos.Offset - key.Size) * 512;
        var read = new byte[4096];
        var e = Assert.Throws<BasaltException>(() => fs.Data.Read(7, 70_000, read));
        Assert.Equal(ErrorCode.IoError, e.Code);
        Assert.Contains($"inode 7 offset {Math.Max(70_000, runStart)}", e.Message, StringComparison.Ordinal);
        Assert.Contains("checksum mismatch", e.Message, StringComparison.Ordinal);
        // Other runs still read.
        var before = new byte[runStart];
        fs.Data.Read(7, 0, before);
        Assert.True(data.AsSpan(0, (int)runStart).SequenceEqual(before));
    }

    [Fact]
    public void The_owners_of_a_bucket_are_its_extents_and_their_sectors_are_its_dirty_sectors()
    {
        using var device = new MemoryBlockDevice(8 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, ExtentStoreTests.Geometry, Manual);
        var random = new Random(11);
        for (var i = 0; i < 30; i++)
            fs.Data.Write((ulong)(1 + (i % 4)), random.Next(200_000), RandomBytes(random, 1 + random.Next(40_000)));
        fs.Data.Punch(2, 10_000, 50_000);
        var layout = fs.Space.Layout[0];
        var checkedBuckets = 0;
        var alloc = fs.Btrees[Basalt.Format.BtreeId.Alloc].Iterate(Bpos.Min, Bpos.Max);
        while (alloc.MoveNext())
        {
            var a = AllocValue.Read(alloc.Value);
            var bucket = new BucketRef(0, alloc.Key.Pos.Offset);
            var owners = Basalt.Backpointers.BucketOwners.List(fs.Btrees, fs.Space.Layout, bucket);
            Assert.Equal(a.DirtySectors, (uint)owners.Sum(o => o.Backpointer.Sectors));
            foreach (var owner in owners)
            {
                Assert.Equal(layout.BucketOf(owner.Sector), bucket.Bucket);
                var (key, value) = fs.Data.Map(owner.Backpointer.Pos.Inode, owner.Backpointer.Pos.Offset - 1, owner.Backpointer.Pos.Offset).Single();
                Assert.Equal(owner.Backpointer.Pos, key.Pos);
                Assert.True(ExtentValue.TryRead(value, out var extent, out _));
                Assert.Contains(extent.Ptrs, p => p.OffsetSectors == owner.Sector && extent.Window == owner.Window);
            }
            checkedBuckets += owners.Count > 0 ? 1 : 0;
        }
        Assert.True(checkedBuckets > 3, $"only {checkedBuckets} buckets hold data");
    }

    public static TheoryData<string> FillShapes => ["sequential", "fragmented", "refill after delete"];

    [Theory]
    [MemberData(nameof(FillShapes))]
    public void A_full_device_fails_writes_cleanly_and_deletes_and_fsck_still_succeed(string shape)
    {
        using var device = new MemoryBlockDevice(8 * 1024 * 1024, "full.img");
        var seed = TestSeed.Get(output, shape);
        var random = new Random(seed);
        var model = new Dictionary<ulong, byte[]>();
        using (var fs = BasaltFileSystem.Format(device, ExtentStoreTests.Geometry with { NodeAreaBuckets = 16 }, Manual))
        {
            var chunk = 48 * 1024;
            ulong inode = 1001;
            if (shape == "fragmented")
            {
                // Half-used buckets everywhere: the space is there only once copygc compacts it.
                for (var i = 0; i < 24; i++)
                    Write(fs, model, (ulong)(100 + i), 0, RandomBytes(random, 64 * 1024));
                for (var i = 0; i < 24; i++)
                    Punch(fs, model, (ulong)(100 + i), 0, 32 * 1024);
            }
            BasaltException? full = null;
            for (var i = 0; i < 400 && full is null; i++)
            {
                try
                {
                    Write(fs, model, inode, (long)i * chunk, RandomBytes(random, chunk));
                }
                catch (BasaltException e)
                {
                    full = e;
                }
            }
            Assert.NotNull(full);
            Assert.Equal(ErrorCode.DeviceFull, full!.Code);
            Assert.Contains("no space left", full.Message, StringComparison.Ordinal);
            output.WriteLine($"{shape}: full after {model.Values.Sum(f => (long)f.Length)} bytes; copygc moved {fs.Space.CopygcMovedSectors} sectors; {full.Message}");
            if (shape == "fragmented")
                Assert.True(fs.Space.CopygcMovedSectors > 0, "copygc ran before ENOSPC");
            // The failed write changed nothing; everything written reads back.
            AssertAll(fs, model);
            // Deletes need no space; after them writes succeed again.
            foreach (var i in model.Keys.ToList())
                Punch(fs, model, i, 0, model[i].Length);
            if (shape == "refill after delete")
            {
                for (var i = 0; i < 40; i++)
                    Write(fs, model, 1002, (long)i * chunk, RandomBytes(random, chunk));
            }
            Write(fs, model, 1003, 0, RandomBytes(random, chunk));
            AssertAll(fs, model);
        }
        var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.Empty(report.Findings);
        using var again = BasaltFileSystem.Mount(device, Manual);
        AssertAll(again, model);
    }

    [Fact]
    public void A_data_write_that_fails_with_an_io_error_commits_nothing()
    {
        using var memory = new MemoryBlockDevice(8 * 1024 * 1024, "mem.img");
        SuperblockIo.Format(memory, ExtentStoreTests.Geometry);
        var faulty = new FaultyBlockDevice(memory, ownsInner: false);
        var model = new Dictionary<ulong, byte[]>();
        var random = new Random(3);
        using (var fs = BasaltFileSystem.Mount(faulty, Manual))
        {
            Write(fs, model, 1001, 0, RandomBytes(random, 100_000));
            var layout = fs.Space.Layout[0];
            var dataStart = layout.BucketOffset(layout.NodeArea.End);
            var rule = faulty.FailWrites(dataStart, memory.Size - dataStart);
            var e = Assert.Throws<BasaltException>(() => fs.Data.Write(1001, 50_000, RandomBytes(random, 80_000)));
            Assert.Equal(ErrorCode.IoError, e.Code);
            rule.Disarm();
            AssertAll(fs, model);
            Write(fs, model, 1002, 0, RandomBytes(random, 10_000));
            AssertAll(fs, model);
        }
        Assert.Empty(Basalt.Fsck.Fsck.Run(memory, new FsckOptions { Mode = FsckMode.CheckOnly }).Findings);
        using var again = BasaltFileSystem.Mount(memory, Manual);
        AssertAll(again, model);
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var data = new byte[length];
        random.NextBytes(data);
        return data;
    }

    private static void Write(BasaltFileSystem fs, Dictionary<ulong, byte[]> model, ulong inode, long offset, byte[] data)
    {
        fs.Data.Write(inode, offset, data);
        var file = model.GetValueOrDefault(inode) ?? [];
        if (offset + data.Length > file.Length)
            Array.Resize(ref file, (int)(offset + data.Length));
        data.CopyTo(file, offset);
        model[inode] = file;
    }

    private static void Punch(BasaltFileSystem fs, Dictionary<ulong, byte[]> model, ulong inode, long offset, long length)
    {
        fs.Data.Punch(inode, offset, length);
        if (model.TryGetValue(inode, out var file) && offset < file.Length)
            Array.Clear(file, (int)offset, (int)Math.Min(length, file.Length - offset));
    }

    private static void AssertAll(BasaltFileSystem fs, Dictionary<ulong, byte[]> model)
    {
        foreach (var (inode, file) in model)
            AssertReads(fs, inode, file);
        Basalt.Fsck.Space.SpaceChecks.Run(fs, repair: false, out var findings);
        Assert.True(findings.Count == 0, string.Join("; ", findings.Select(f => f.ToText())));
    }

    private static void AssertReads(BasaltFileSystem fs, ulong inode, byte[] expected)
    {
        var read = new byte[expected.Length + 4096];
        fs.Data.Read(inode, 0, read);
        var same = read.AsSpan(0, expected.Length).CommonPrefixLength(expected);
        Assert.True(same == expected.Length,
            $"inode {inode} differs at byte {same}: read {(same < expected.Length ? read[same] : 0)}, expected {(same < expected.Length ? expected[same] : 0)}; " +
            string.Join(", ", fs.Data.Map(inode, (ulong)same / 512, (ulong)same / 512 + 1).Select(m => KeyTypeTable.ToText(m.Key, m.Value))));
        Assert.True(read.AsSpan(expected.Length).IndexOfAnyExcept((byte)0) < 0, $"inode {inode} has bytes past its end");
    }
}
