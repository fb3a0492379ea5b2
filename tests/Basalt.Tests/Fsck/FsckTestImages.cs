// Small formatted memory devices for the fsck and mount tests.
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.Tests.Fsck;

internal static class FsckTestImages
{
    public static readonly FormatOptions SmallGeometry = new()
    {
        BlockSize = 512,
        BucketSize = 64 * 1024,
        NodeSize = 4096,
        Uuid = new Guid("6b1d3c0e-8f1a-4c55-9d0b-2a7e5f3c9a11"),
    };

    public static MemoryBlockDevice Formatted(long size = 8 * 1024 * 1024)
    {
        var device = new MemoryBlockDevice(size, "mem.img");
        SuperblockIo.Format(device, SmallGeometry);
        return device;
    }

    /// <summary>A formatted device whose Test btree holds <paramref name="keys"/> keys, synced (several levels with 4K nodes).</summary>
    public static MemoryBlockDevice WithKeys(int keys)
    {
        var device = Formatted();
        using var fs = BasaltFileSystem.Mount(device, new MountOptions());
        var tree = fs.Btrees[BtreeId.Test];
        for (var i = 0; i < keys; i++)
            tree.Insert(new Bpos(1 + ((ulong)i % 5), (ulong)i * 7), BitConverter.GetBytes((long)i * 1_000_003));
        fs.Sync();
        return device;
    }

    /// <summary>Flips one bit of the seq field of superblock copy <paramref name="copy"/>; returns the copy's offset.</summary>
    public static long DamageCopy(MemoryBlockDevice device, int copy)
    {
        var offset = SuperblockIo.Read(device).Superblock.CopyOffsets[copy];
        device.Contents[(int)offset + SuperblockFormat.SeqOffset] ^= 0x10;
        return offset;
    }

    public static IReadOnlyList<(FsckErrorId Id, string Where, string Detail)> Keyed(Basalt.Fsck.FsckReport report) =>
        [.. report.Findings.Select(f => (f.Id, f.Where, f.Detail))];
}
