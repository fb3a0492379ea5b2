using Basalt.Btree;
using Basalt.Data;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck.Files;
using Basalt.Fsck.Space;
using Basalt.Superblocks;
using Basalt.Tests.Fsck.Space;

namespace Basalt.Tests.Fs;

/// <summary>
/// Small files keep their data in their extent key: no bucket, no backpointer, one journal write
/// and one flush per fsync; every edit of such a file (overwrite, append, truncate, punch, growth
/// past the limit, reflink) reads back byte for byte and leaves every fsck pass clean.
/// </summary>
public sealed class InlineDataTests
{
    private const ulong Root = FsPositions.RootIno;

    // 16 KiB nodes take 4 KiB values: inline data up to its full limit (4 KiB nodes take 1 KiB).
    private static readonly FormatOptions s_geometry = new()
    {
        BlockSize = 4096,
        BucketSize = 64 * 1024,
        NodeSize = 16 * 1024,
        Uuid = new Guid("0c6f3a8e-51d2-4b7e-8f19-2a4c6e8b0d13"),
    };

    private static byte[] B(string s) => FilesTests.B(s);

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static List<Bkey> ExtentKeys(BasaltFileSystem fs, ulong ino)
    {
        var keys = new List<Bkey>();
        var it = fs.Btrees[BtreeId.Extents].Iterate(new Bpos(ino, 0, 0), new Bpos(ino, ulong.MaxValue, uint.MaxValue));
        while (it.MoveNext())
            keys.Add(it.Key);
        return keys;
    }

    private static int Count(BasaltFileSystem fs, BtreeId btree)
    {
        var n = 0;
        var it = fs.Btrees[btree].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
            n++;
        return n;
    }

    private static byte[] ReadAll(Basalt.Fs.Files f, ulong ino)
    {
        var buffer = new byte[(int)f.GetAttr(ino).Size];
        Assert.Equal(buffer.Length, f.Read(ino, 0, buffer));
        return buffer;
    }

    private static void AssertClean(BasaltFileSystem fs, string step)
    {
        Assert.True(FileChecks.Run(fs, repair: false, out var files), $"{step}: {string.Join("; ", files)}");
        Assert.True(SpaceChecks.Run(fs, repair: false, out var space), $"{step}: {string.Join("; ", space)}");
    }

    [Fact]
    public void A_small_file_lives_in_one_inline_key_and_charges_no_bucket()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        var expect = new byte[3000];
        ulong ino;
        using (var fs = BasaltFileSystem.Format(device, s_geometry, SpaceFsckTests.Quiet))
        {
            var f = fs.Files;
            ino = f.Create(Root, B("small"), 0x1A4).Ino;
            var first = Pattern(1000, 1);
            f.Write(ino, 0, first);
            first.CopyTo(expect, 0);
            var keys = ExtentKeys(fs, ino);
            Assert.Equal(KeyType.InlineData, Assert.Single(keys).Type);
            Assert.Equal(2u, keys[0].Size);

            // An append and an unaligned overwrite inside the file: still one key, over sectors [0, 6).
            var second = Pattern(2000, 2);
            f.Write(ino, 1000, second);
            second.CopyTo(expect, 1000);
            var third = Pattern(10, 3);
            f.Write(ino, 505, third);
            third.CopyTo(expect, 505);
            keys = ExtentKeys(fs, ino);
            var key = Assert.Single(keys);
            Assert.Equal((KeyType.InlineData, 6u, 6ul), (key.Type, key.Size, key.Pos.Offset));
            Assert.Equal(6ul, f.GetAttr(ino).Inode.Sectors);
            Assert.Equal(expect, ReadAll(f, ino));
            Assert.Equal(0, Count(fs, BtreeId.Backpointers));
            AssertClean(fs, "after small writes");
        }
        using (var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet))
        {
            Assert.Equal(expect, ReadAll(fs.Files, ino));
            AssertClean(fs, "after remount");
        }
    }

    [Fact]
    public void Growth_truncate_punch_and_overwrite_of_inline_data_read_back_exactly()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, s_geometry, SpaceFsckTests.Quiet);
        var f = fs.Files;
        var ino = f.Create(Root, B("grows"), 0x1A4).Ino;
        var expect = Pattern(3000, 4);
        f.Write(ino, 0, expect);

        // Shrink to the middle of a sector, then grow again: the cut bytes read as zeros.
        f.Truncate(ino, 1000);
        f.Truncate(ino, 3000);
        Array.Clear(expect, 1000, 2000);
        Assert.Equal(expect, ReadAll(f, ino));
        Assert.All(ExtentKeys(fs, ino), k => Assert.Equal(KeyType.InlineData, k.Type));
        AssertClean(fs, "after truncate");

        // Punch a hole across a sector boundary: the inline key is cut into pieces around it.
        f.Fallocate(ino, FallocateFlags.PunchHole | FallocateFlags.KeepSize, 300, 900);
        Array.Clear(expect, 300, 900);
        Assert.Equal(expect, ReadAll(f, ino));
        AssertClean(fs, "after punch");

        // Past the limit the file goes on in buckets; its inline head stays and reads back.
        var tail = Pattern(20000, 5);
        f.Write(ino, 3000, tail);
        expect = [.. expect, .. tail];
        Assert.Equal(expect, ReadAll(f, ino));
        var types = ExtentKeys(fs, ino).Select(k => k.Type).ToHashSet();
        Assert.Contains(KeyType.InlineData, types);
        Assert.Contains(KeyType.Extent, types);

        // An overwrite of the large file's head replaces inline bytes with a run in a bucket.
        var head = Pattern(700, 6);
        f.Write(ino, 100, head);
        head.CopyTo(expect, 100);
        Assert.Equal(expect, ReadAll(f, ino));
        AssertClean(fs, "after growth");
        f.Unlink(Root, B("grows"));
        Assert.Empty(ExtentKeys(fs, ino));
        AssertClean(fs, "after unlink");
    }

    [Fact]
    public void A_reflink_copy_of_inline_data_gets_its_own_bytes()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, s_geometry, SpaceFsckTests.Quiet);
        var f = fs.Files;
        var src = f.Create(Root, B("src"), 0x1A4).Ino;
        var data = Pattern(2500, 7);
        f.Write(src, 0, data);
        var dst = f.Create(Root, B("dst"), 0x1A4).Ino;
        f.CloneFile(src, dst);
        Assert.Equal(KeyType.InlineData, Assert.Single(ExtentKeys(fs, dst)).Type);
        f.Write(src, 0, Pattern(2500, 8));
        Assert.Equal(data, ReadAll(f, dst));
        Assert.Equal(0, Count(fs, BtreeId.Reflink));
        AssertClean(fs, "after clone");
    }

    [Fact]
    public void Symlink_targets_are_inline()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, s_geometry, SpaceFsckTests.Quiet);
        var target = new byte[4095];
        Array.Fill(target, (byte)'a');
        var link = fs.Files.Symlink(Root, B("long"), target).Ino;
        Assert.Equal(KeyType.InlineData, Assert.Single(ExtentKeys(fs, link)).Type);
        Assert.Equal(target, fs.Files.ReadLink(link));
        AssertClean(fs, "after symlink");
    }

    [Fact]
    public void Small_nodes_keep_inline_data_to_a_quarter_of_a_node()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, FilesTests.Geometry, SpaceFsckTests.Quiet);
        Assert.Equal(1024, fs.Data.InlineLimit);
        var small = fs.Files.Create(Root, B("small"), 0x1A4).Ino;
        fs.Files.Write(small, 0, Pattern(1024, 10));
        Assert.Equal(KeyType.InlineData, Assert.Single(ExtentKeys(fs, small)).Type);
        var larger = fs.Files.Create(Root, B("larger"), 0x1A4).Ino;
        fs.Files.Write(larger, 0, Pattern(1025, 11));
        Assert.Equal(KeyType.Extent, Assert.Single(ExtentKeys(fs, larger)).Type);
        AssertClean(fs, "small nodes");
    }

    [Fact]
    public void With_inline_data_off_small_files_go_to_buckets()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        var options = new MountOptions { Space = SpaceFsckTests.Quiet.Space, InlineDataBytes = 0 };
        using var fs = BasaltFileSystem.Format(device, s_geometry, options);
        var ino = fs.Files.Create(Root, B("f"), 0x1A4).Ino;
        fs.Files.Write(ino, 0, Pattern(100, 9));
        Assert.Equal(KeyType.Extent, Assert.Single(ExtentKeys(fs, ino)).Type);
        Assert.Equal(1, Count(fs, BtreeId.Backpointers));
    }

    [Theory]
    [InlineData(InlineData.MaxBytes, 1)]
    [InlineData(0, 2)]
    public void Fsync_of_a_small_new_file_takes_one_flush_when_inline(int inlineBytes, int flushesPerFsync)
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        var options = new MountOptions { Space = SpaceFsckTests.Quiet.Space, InlineDataBytes = inlineBytes };
        using var fs = BasaltFileSystem.Format(device, s_geometry, options);
        var f = fs.Files;
        const int files = 20;
        var before = fs.Journal.Stats.DeviceFlushes;
        for (var i = 0; i < files; i++)
        {
            var ino = f.Create(Root, B($"f{i}"), 0x1A4).Ino;
            f.Write(ino, 0, Pattern(4096, i));
            f.Fsync(ino);
        }
        var flushes = fs.Journal.Stats.DeviceFlushes - before;
        // Write-back of btree nodes between two fsyncs adds a pre-flush now and then (more often
        // on a loaded machine, where the timer's write-back runs between more of them): at most
        // half an fsync's worth more, so one flush per fsync and two stay apart.
        Assert.InRange(flushes, files * flushesPerFsync, (files * flushesPerFsync) + (files / 2));
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(4096, true)]
    [InlineData(4097, false)]
    [InlineData(8, false)]
    public void Validation_requires_the_value_to_be_exactly_the_sectors(int length, bool sizeEight)
    {
        var size = sizeEight ? 8u : 1u;
        var key = new Bkey(ExtentStore.EndPos(100, size), KeyType.InlineData, size);
        var valid = KeyTypeTable.Get(KeyType.InlineData)!.Validate(new KeyValueContext(BtreeId.Extents, 0, key, 4096, 0), new byte[length], out var problem);
        Assert.Equal(length == (int)size * 512, valid);
        Assert.Equal(valid, problem is null);
        var tooLarge = new Bkey(ExtentStore.EndPos(100, 9), KeyType.InlineData, 9);
        Assert.False(KeyTypeTable.Get(KeyType.InlineData)!.Validate(new KeyValueContext(BtreeId.Extents, 0, tooLarge, 4096, 0), new byte[9 * 512], out _));
    }
}
