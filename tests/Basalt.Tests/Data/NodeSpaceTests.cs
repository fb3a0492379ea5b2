// Btree nodes on buckets: the node area format reserves is only where node space starts. Btrees
// that outgrow it claim free buckets (alloc key btree, the region in the superblock's node-region
// map), shrinking btrees give emptied buckets back to data, and fsck recounts both.
using Basalt.Alloc;
using Basalt.Btree;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Devices;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Data;

public sealed class NodeSpaceTests(ITestOutputHelper output)
{
    /// <summary>16 KiB buckets of four 4 KiB node slots; a node area of 24 buckets (96 slots).</summary>
    private static FormatOptions SmallNodeArea(ulong nodeAreaBuckets = 24) => new()
    {
        BlockSize = 512,
        BucketSize = 16 * 1024,
        NodeSize = 4096,
        NodeAreaBuckets = nodeAreaBuckets,
        Uuid = new Guid("7f1c2e3d-4b5a-4c69-8d7e-1a2b3c4d5e6f"),
    };

    private static MountOptions Manual => new() { Space = new SpaceOptions { BackgroundWorker = false } };

    private static byte[] Value(int seed, int i) => [.. BitConverter.GetBytes(seed), .. BitConverter.GetBytes(i), .. new byte[40]];

    private static void Insert(BasaltFileSystem fs, int seed, int from, int count)
    {
        for (var i = from; i < from + count; i += 50)
        {
            var first = i;
            fs.Transactor.Transact(t =>
            {
                for (var k = first; k < Math.Min(first + 50, from + count); k++)
                    t.Set(BtreeId.Test, new Bkey(new Bpos(1, (ulong)k * 7919), KeyType.Cookie), Value(seed, k));
            });
        }
    }

    private static List<NodeBucket> Claimed(BasaltFileSystem fs) => [.. fs.Btrees.NodeBuckets().Where(b => !b.NodeArea)];

    private static void AssertKeys(BasaltFileSystem fs, int seed, int from, int count)
    {
        var it = fs.Btrees[BtreeId.Test].Iterate(Bpos.Min, Bpos.Max);
        var expected = from;
        while (it.MoveNext())
        {
            Assert.Equal(new Bpos(1, (ulong)expected * 7919), it.Key.Pos);
            Assert.Equal(Value(seed, expected), it.Value.ToArray());
            expected++;
        }
        Assert.Equal(from + count, expected);
    }

    [Fact]
    public void Btrees_outgrow_the_node_area_into_claimed_buckets_and_give_them_back_when_they_shrink()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "nodes.img");
        var seed = TestSeed.Get(output);
        const int keys = 30_000;
        using (var fs = BasaltFileSystem.Format(device, SmallNodeArea(), Manual))
        {
            Insert(fs, seed, 0, keys);
            var claimed = Claimed(fs);
            output.WriteLine($"{claimed.Count} buckets claimed, {fs.Space.NodeBucketsClaimed} claims");
            Assert.True(claimed.Count > 24, $"the btrees grew past the node area: {claimed.Count} buckets claimed");
            var dev = fs.Space.Layout[0];
            foreach (var b in claimed)
            {
                // A claimed bucket is btree, full, in the alloc btree, and no longer free space.
                Assert.True(fs.Btrees[BtreeId.Alloc].TryGet(SpacePositions.Bucket(new BucketRef(0, b.Bucket)), out var bytes));
                var a = AllocValue.Read(bytes);
                Assert.Equal(BucketDataType.Btree, a.DataType);
                Assert.Equal(dev.BucketSectors, a.DirtySectors);
                Assert.False(dev.IsJournal(b.Bucket));
            }
            var usage = fs.Space.Usage(0);
            Assert.Equal(24 + claimed.Count, usage[BucketDataType.Btree].Buckets);
            // The superblock's node-region map names every claimed bucket's region.
            var member = fs.Superblock.Member;
            foreach (var b in claimed)
                Assert.NotEqual(0UL, member.NodeRegionMap & member.NodeRegionBits(b.Bucket, b.Bucket + 1));
        }
        Assert.Empty(Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly }).Findings);

        using (var fs = BasaltFileSystem.Mount(device, Manual))
        {
            AssertKeys(fs, seed, 0, keys);
            Assert.True(Claimed(fs).Count > 24, "the remount found the claimed buckets again");
            fs.Transactor.DeleteRange(BtreeId.Test, Bpos.Min, Bpos.Max);
            var before = Claimed(fs).Count;
            // Emptied buckets go back once the frees that emptied them are durable.
            fs.Checkpoint();
            var released = fs.Space.ReleaseEmptyNodeBuckets(keepFree: 0);
            output.WriteLine($"{before} claimed before the delete's frees were durable; {released} given back");
            Assert.True(released > 0, "emptied btree buckets were given back");
            Assert.True(fs.Space.MakeRoom(aggressive: false), "the buckets given back become free after the flush");
            Assert.Equal(0, fs.Space.Usage(0)[BucketDataType.NeedDiscard].Buckets);
        }
        Assert.Empty(Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly }).Findings);
        using (var fs = BasaltFileSystem.Mount(device, Manual))
            AssertKeys(fs, seed, 0, 0);
    }

    [Fact]
    public void The_node_scan_finds_the_nodes_of_claimed_buckets_when_the_root_is_lost()
    {
        // Topology repair rebuilds a btree whose root is gone from the nodes the scan finds: the
        // leaves that live in claimed buckets outside the node area must be among them.
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "scan.img");
        var seed = TestSeed.Get(output);
        const int keys = 20_000;
        long rootOffset;
        using (var fs = BasaltFileSystem.Format(device, SmallNodeArea(), Manual))
        {
            Insert(fs, seed, 0, keys);
            Assert.True(Claimed(fs).Count > 24);
            fs.Checkpoint();
            rootOffset = fs.Btrees.Roots.Single(r => r.Btree == BtreeId.Test).Ptr.Ptrs[0].OffsetBytes;
        }
        device.Write(rootOffset, new byte[4096]);
        Assert.NotEmpty(RepairKeepsEveryKey(device, seed, keys).Findings);
    }

    /// <summary>fsck -y loses no key, a second fsck is clean, and a mount reads every key back.</summary>
    private FsckReport RepairKeepsEveryKey(MemoryBlockDevice device, int seed, int keys)
    {
        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        output.WriteLine(string.Join("\n", repair.Findings.Select(f => f.ToText())));
        Assert.Empty(repair.LostKeys);
        Assert.Empty(Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly }).Findings);
        using var again = BasaltFileSystem.Mount(device, Manual);
        AssertKeys(again, seed, 0, keys);
        return repair;
    }

    [Fact]
    public void A_node_in_a_bucket_whose_alloc_key_says_free_is_never_overwritten_and_fsck_repairs_the_key()
    {
        // Damage that makes a btree bucket's alloc key say free (checksum recomputed, so the node
        // holding it reads fine): the mount still finds the nodes in it, the data allocator skips
        // it, and fsck restores the key.
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "alloc.img");
        var seed = TestSeed.Get(output);
        const int keys = 20_000;
        ulong victim;
        using (var fs = BasaltFileSystem.Format(device, SmallNodeArea(), Manual))
        {
            Insert(fs, seed, 0, keys);
            victim = Claimed(fs).First(b => b.SlotsUsed > 0).Bucket;
            // What damage would leave: the alloc key free, the bucket back in a freespace run.
            fs.Transactor.Transact(t =>
            {
                var pos = SpacePositions.Bucket(new BucketRef(0, victim));
                var a = AllocValue.Read(t.TryGet(BtreeId.Alloc, pos, out var v) ? v : throw new InvalidOperationException("no alloc key"));
                a.DataType = BucketDataType.Free;
                a.DirtySectors = 0;
                t.Set(BtreeId.Alloc, new Bkey(pos, KeyType.Alloc), a.ToArray());
            });
        }
        using (var fs = BasaltFileSystem.Mount(device, Manual))
        {
            Assert.True(fs.Btrees.IsNodeBucket(victim), "the mount found the nodes in the bucket");
            // Fill the device with data: the bucket must not be handed out.
            var random = new Random(seed);
            var data = new byte[16 * 1024];
            for (var i = 0; i < 2000; i++)
            {
                random.NextBytes(data);
                try
                {
                    fs.Data.Write(500, (long)i * data.Length, data);
                }
                catch (Basalt.Diagnostics.BasaltException ex) when (ex.Code == Basalt.Diagnostics.ErrorCode.DeviceFull)
                {
                    break;
                }
            }
            AssertKeys(fs, seed, 0, keys);
        }
        var report = RepairKeepsEveryKey(device, seed, keys);
        Assert.Contains(report.Findings, f => f.Id == FsckErrorId.AllocKeyDirtySectorsWrong && f.Corrected);
    }
}
