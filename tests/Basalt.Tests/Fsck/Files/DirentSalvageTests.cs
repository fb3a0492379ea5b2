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
}
