using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.Tests.Fsck;

public sealed class BasaltFileSystemTests
{
    [Fact]
    public void Format_and_mount_round_trip_keys_and_dispose_syncs()
    {
        using var device = new MemoryBlockDevice(8 * 1024 * 1024, "mem.img");
        using (var fs = BasaltFileSystem.Format(device, FsckTestImages.SmallGeometry))
        {
            Assert.Equal(4096, fs.Geometry.NodeSize);
            Assert.Equal(fs.Superblock.NodeAreaOffset, fs.Geometry.NodeAreaOffset);
            Assert.Equal(fs.Superblock.NodeMagic, fs.Geometry.NodeMagic);
            for (var i = 0; i < 500; i++)
                fs.Btrees[BtreeId.Test].Insert(new Bpos(1, (ulong)i), [(byte)i]);
            // No Sync: Dispose of a writable, healthy filesystem syncs.
        }
        using (var fs = BasaltFileSystem.Mount(device, new MountOptions()))
        {
            Assert.NotNull(fs.Superblock.RootOf(BtreeId.Test));
            for (var i = 0; i < 500; i++)
            {
                Assert.True(fs.Btrees[BtreeId.Test].TryGet(new Bpos(1, (ulong)i), out var v));
                Assert.Equal((byte)i, v[0]);
            }
            Assert.Null(fs.SuperblockNote);
        }
    }

    [Fact]
    public void Test_mounts_route_writes_through_the_write_once_checker()
    {
        using var device = new MemoryBlockDevice(8 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, FsckTestImages.SmallGeometry, new MountOptions { CheckWriteOnce = true });
        var checker = fs.WriteOnceChecker;
        Assert.NotNull(checker);
        for (var i = 0; i < 2000; i++)
            fs.Btrees[BtreeId.Test].Insert(new Bpos(1, (ulong)i), [(byte)i]);
        fs.Checkpoint();
        Assert.True(checker.LiveSlots > 1, $"{checker.LiveSlots} live slots tracked");
        Assert.True(checker.CheckedWrites > 0);

        // A write below a live node's written prefix is refused.
        var slot = fs.Btrees[BtreeId.Test].Root!.Ptr.Ptrs[0].OffsetBytes;
        var ex = Assert.Throws<BasaltException>(() => checker.Write(slot, new byte[512]));
        Assert.Equal(ErrorCode.WriteOnceViolation, ex.Code);
    }

    [Fact]
    public void Read_only_mount_never_writes_the_device()
    {
        using var device = FsckTestImages.WithKeys(300);
        var before = device.Contents.ToArray();
        using (var fs = BasaltFileSystem.Mount(device, new MountOptions { ReadOnly = true }))
        {
            var refused = Assert.Throws<BasaltException>(() => fs.Btrees[BtreeId.Test].Insert(new Bpos(9, 9), [1, 2, 3]));
            Assert.Equal(ErrorCode.ReadOnlyDevice, refused.Code);
            Assert.Contains("read-only", refused.Message);
            Assert.Equal(ErrorCode.ReadOnlyDevice, Assert.Throws<BasaltException>(() => fs.Transact(t => t.Delete(BtreeId.Test, new Bpos(1, 1)))).Code);
            fs.Sync();
            Assert.False(fs.RecordErrors(new Dictionary<FsckErrorId, long> { [FsckErrorId.BsetBadChecksum] = 1 }));
            Assert.True(fs.Btrees[BtreeId.Test].TryGet(new Bpos(1, 0), out _));
        }
        Assert.True(device.Contents.SequenceEqual(before));
    }

    [Fact]
    public void Error_counters_accumulate_in_the_superblock()
    {
        using var device = FsckTestImages.Formatted();
        using (var fs = BasaltFileSystem.Mount(device, new MountOptions()))
        {
            fs.RecordErrors(new Dictionary<FsckErrorId, long> { [FsckErrorId.BsetBadChecksum] = 2, [FsckErrorId.SbCopyStale] = 1 });
            fs.RecordErrors(new Dictionary<FsckErrorId, long> { [FsckErrorId.BsetBadChecksum] = 3 });
        }
        var counters = SuperblockIo.Read(device).Superblock.ErrorCounters.ToDictionary(e => e.Id, e => e.Count);
        Assert.Equal(5UL, counters[FsckErrorId.BsetBadChecksum]);
        Assert.Equal(1UL, counters[FsckErrorId.SbCopyStale]);
    }

    [Fact]
    public void Mount_from_a_backup_copy_says_which_and_why()
    {
        using var device = FsckTestImages.Formatted();
        var offset = FsckTestImages.DamageCopy(device, 0);
        using var fs = BasaltFileSystem.Mount(device, new MountOptions { ReadOnly = true });
        Assert.Equal(1, fs.SuperblockRead.UsedCopy);
        var note = fs.SuperblockNote;
        Assert.NotNull(note);
        Assert.StartsWith("mounted from copy 1 at byte", note, StringComparison.Ordinal);
        Assert.Contains($"copy 0 at byte {offset} is damaged (bad checksum)", note, StringComparison.Ordinal);
    }

    [Fact]
    public void Mount_of_a_truncated_device_is_refused()
    {
        using var device = FsckTestImages.Formatted(8 * 1024 * 1024);
        using var shorter = new MemoryBlockDevice(device.Contents[..(4 * 1024 * 1024)], "short.img");
        var e = Assert.Throws<BasaltException>(() => BasaltFileSystem.Mount(shorter, new MountOptions()));
        Assert.True(e.Code is ErrorCode.ShortDevice, e.Message);
        Assert.Contains("short.img", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mount_read_write_of_a_read_only_device_is_refused()
    {
        using var dir = new Basalt.TestKit.TempDirectory("fs-ro");
        var path = dir.File("x.img");
        using (var created = FileBlockDevice.Create(path, 8 * 1024 * 1024))
            SuperblockIo.Format(created, FsckTestImages.SmallGeometry);
        using var device = FileBlockDevice.Open(path, readOnly: true);
        var e = Assert.Throws<BasaltException>(() => BasaltFileSystem.Mount(device, new MountOptions()));
        Assert.Equal(ErrorCode.ReadOnlyDevice, e.Code);
    }
}
