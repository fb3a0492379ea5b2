// dirent_salvaged: a dirents leaf whose appended bset fails its checksum loses that bset and every
// later one. The names in those bytes come back only when each can be proven: its name hashes to
// its slot and its target inode records that very slot as its parent. A name whose bytes were
// changed fails the proof and its file goes to lost+found, as without salvage.
using System.Text;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Fsck.Space;
using Basalt.Superblocks;
using Basalt.Tests.Fsck.Space;
using static Basalt.Tests.Fsck.FindingsText;

namespace Basalt.Tests.Fsck.Files;

public sealed class DirentSalvageTests
{
    // Small blocks and nodes larger than a block, so a leaf takes several records (appended bsets).
    private static readonly FormatOptions s_geometry = new()
    {
        BlockSize = 512,
        BucketSize = 64 * 1024,
        NodeSize = 16 * 1024,
        Uuid = new Guid("6a2e4c1d-7b3f-4e8a-9c5d-2f1e0b7a6c34"),
    };

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string Later(int i) => $"written-later-{i}";

    [Fact]
    public void Names_lost_with_a_bad_bset_come_back_when_proven_and_a_damaged_name_goes_to_lost_found()
    {
        var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        var inos = new Dictionary<string, ulong>();
        long damagedAt;
        using (var fs = BasaltFileSystem.Format(device, s_geometry, SpaceFsckTests.Quiet))
        {
            for (var i = 0; i < 4; i++)
                inos[$"first-{i}"] = fs.Files.Create(FsPositions.RootIno, B($"first-{i}"), 0x1A4).Ino;
            fs.Checkpoint(); // the dirents leaf's first record
            for (var i = 0; i < 5; i++)
            {
                var ino = fs.Files.Create(FsPositions.RootIno, B(Later(i)), 0x1A4).Ino;
                fs.Files.Write(ino, 0, SpaceFsckTests.Bytes(700, (byte)i));
                inos[Later(i)] = ino;
            }
            fs.Checkpoint(); // an appended record holding the later names
            var leaf = fs.Btrees[BtreeId.Dirents].RootNode!;
            Assert.Equal(0, leaf.Level);
            // One bit of the name written-later-3, in the appended record: its checksum fails.
            var slot = device.Contents.Slice(checked((int)leaf.Offset), leaf.WrittenSectors * FormatLimits.SectorSize);
            var name = slot[512..].IndexOf(B(Later(3)));
            Assert.True(name >= 0, "the appended record holds the later names");
            damagedAt = leaf.Offset + 512 + name + 2;
        }
        device.Contents[checked((int)damagedAt)] ^= 0x04;

        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        Assert.Equal(check.Findings.Select(f => f.Id).Order(), repair.Findings.Select(f => f.Id).Order());
        Assert.Contains(repair.Findings, f => f.Id == FsckErrorId.BsetBadChecksum);
        Assert.Equal(4, repair.Findings.Count(f => f.Id == FsckErrorId.DirentSalvaged));
        Assert.Single(repair.Findings, f => f.Id == FsckErrorId.InodeUnreachable);
        var again = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(again.Findings.Count == 0, Text(again.Findings));

        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        foreach (var (name, ino) in inos)
        {
            if (name == Later(3))
            {
                Assert.False(m.Files.TryLookup(FsPositions.RootIno, B(name), out _));
                Assert.Equal(ino, m.Files.Lookup(FsPositions.LostAndFoundIno, B($"#{ino}")).Ino);
                continue;
            }
            Assert.Equal(ino, m.Files.Lookup(FsPositions.RootIno, B(name)).Ino);
        }
        for (var i = 0; i < 5; i++)
        {
            var data = new byte[700];
            m.Files.Read(inos[Later(i)], 0, data);
            Assert.Equal(SpaceFsckTests.Bytes(700, (byte)i), data);
        }
    }

    [Fact]
    public void Inodes_lost_with_a_bad_bset_come_back_with_their_attributes()
    {
        var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        var later = new Dictionary<string, ulong>();
        ulong sub;
        using (var fs = BasaltFileSystem.Format(device, s_geometry, SpaceFsckTests.Quiet))
        {
            for (var i = 0; i < 4; i++)
                fs.Files.Create(FsPositions.RootIno, B($"first-{i}"), 0x1A4);
            fs.Checkpoint(); // the inodes leaf's first record
            later["empty"] = fs.Files.Create(FsPositions.RootIno, B("empty"), 0x1A4).Ino;
            later["data"] = fs.Files.Create(FsPositions.RootIno, B("data"), 0x1A4).Ino;
            fs.Files.Write(later["data"], 0, SpaceFsckTests.Bytes(1234, 9));
            later["fifo"] = fs.Files.Mknod(FsPositions.RootIno, B("fifo"), FileModes.ModeOf(FileType.Fifo, 0x1A4), 0).Ino;
            later["private"] = fs.Files.Create(FsPositions.RootIno, B("private"), 0x1A4).Ino;
            fs.Files.SetAttr(later["private"], new SetAttrRequest(Mode: 0x1C0, Uid: 7, Gid: 8, MtimeNs: 1_234_567_890_123));
            sub = fs.Files.Mkdir(FsPositions.RootIno, B("sub"), 0x1ED).Ino;
            later["inside"] = fs.Files.Create(sub, B("inside"), 0x1A4).Ino;
            fs.Checkpoint(); // an appended record holding the later inodes
            var leaf = fs.Btrees[BtreeId.Inodes].RootNode!;
            Assert.Equal(0, leaf.Level);
            // One bit of the appended record's journal seq: its checksum fails, its keys are whole.
            var slot = device.Contents.Slice(checked((int)leaf.Offset), leaf.WrittenSectors * FormatLimits.SectorSize);
            var u64s = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(
                slot[(Basalt.Btree.Node.BtreeNodeFormat.FirstBsetOffset + Basalt.Btree.Node.BtreeNodeFormat.BsetU64sOffset)..]);
            var second = (int)((Basalt.Btree.Node.BtreeNodeFormat.FirstKeysOffset + (u64s * 8L) + 511) / 512 * 512);
            Assert.True(second < slot.Length, "the inodes leaf has an appended record");
            slot[second + Basalt.Btree.Node.BtreeNodeFormat.EntryBsetOffset + Basalt.Btree.Node.BtreeNodeFormat.BsetJournalSeqOffset] ^= 0x01;
        }
        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        Assert.Equal(check.Findings.Select(f => f.Id).Order(), repair.Findings.Select(f => f.Id).Order());
        Assert.Contains(repair.Findings, f => f.Id == FsckErrorId.BsetBadChecksum);
        Assert.True(repair.Findings.Count(f => f.Id == FsckErrorId.InodeSalvaged) >= later.Count + 1, Text(repair.Findings));
        Assert.DoesNotContain(repair.Findings, f => f.Id is FsckErrorId.InodeMissing or FsckErrorId.InodeUnreachable
            or FsckErrorId.DirentToMissingInode or FsckErrorId.DirentBadHash or FsckErrorId.DirectoryUnreachable);
        var again = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(again.Findings.Count == 0, Text(again.Findings));

        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(later["empty"], m.Files.Lookup(FsPositions.RootIno, B("empty")).Ino);
        Assert.Equal(FileType.Fifo, m.Files.Lookup(FsPositions.RootIno, B("fifo")).Type);
        var data = m.Files.Lookup(FsPositions.RootIno, B("data"));
        Assert.Equal(1234ul, data.Size);
        var bytes = new byte[1234];
        m.Files.Read(data.Ino, 0, bytes);
        Assert.Equal(SpaceFsckTests.Bytes(1234, 9), bytes);
        var kept = m.Files.Lookup(FsPositions.RootIno, B("private"));
        Assert.Equal((0x1C0u, 7u, 8u, 1_234_567_890_123L), (kept.Mode & FileModes.PermissionMask, kept.Inode.Uid, kept.Inode.Gid, kept.Inode.MtimeNs));
        Assert.Equal(sub, m.Files.Lookup(FsPositions.RootIno, B("sub")).Ino);
        Assert.Equal(later["inside"], m.Files.Lookup(sub, B("inside")).Ino);
    }

    [Fact]
    public void An_inode_whose_size_was_damaged_is_rebuilt_rather_than_salvaged()
    {
        var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        ulong kept, damaged;
        using (var fs = BasaltFileSystem.Format(device, s_geometry, SpaceFsckTests.Quiet))
        {
            fs.Files.Create(FsPositions.RootIno, B("first"), 0x1A4);
            fs.Checkpoint();
            kept = fs.Files.Create(FsPositions.RootIno, B("kept"), 0x1A4).Ino;
            fs.Files.Write(kept, 0, SpaceFsckTests.Bytes(3000, 1));
            damaged = fs.Files.Create(FsPositions.RootIno, B("damaged"), 0x1A4).Ino;
            fs.Files.Write(damaged, 0, SpaceFsckTests.Bytes(3000, 2));
            fs.Checkpoint();
            var leaf = fs.Btrees[BtreeId.Inodes].RootNode!;
            var slot = device.Contents.Slice(checked((int)leaf.Offset), leaf.WrittenSectors * FormatLimits.SectorSize);
            // The damaged file's inode key in the appended record (its last version): bit 20 of its size.
            Span<byte> pos = stackalloc byte[20];
            FsPositions.Inode(damaged).Write(pos);
            var key = slot[512..].LastIndexOf(pos) + 512 - BkeyFormat.PosOffset;
            Assert.True(key > 512, "the appended record holds the inode");
            slot[key + BkeyFormat.HeaderSize + 24 + 2] ^= 0x10;
        }

        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        Assert.Contains(repair.Findings, f => f.Id == FsckErrorId.InodeSalvaged && f.Where.Contains($"inode {kept}", StringComparison.Ordinal));
        Assert.Contains(repair.Findings, f => f.Id == FsckErrorId.InodeMissing && f.Where.Contains($"inode {damaged}", StringComparison.Ordinal));
        Assert.DoesNotContain(repair.Findings, f => f.Id == FsckErrorId.InodeSalvaged && f.Where.Contains($"inode {damaged}", StringComparison.Ordinal));
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(3000ul, m.Files.GetAttr(kept).Size);
        Assert.Equal(3072ul, m.Files.GetAttr(damaged).Size); // rebuilt: its size ends with its data's last sector
        var data = new byte[3000];
        m.Files.Read(damaged, 0, data);
        Assert.Equal(SpaceFsckTests.Bytes(3000, 2), data);
    }
}
