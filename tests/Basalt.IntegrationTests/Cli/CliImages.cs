// Images the CLI tests start from: small geometry so formatting is fast and trees get deep.
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

internal static class CliImages
{
    public static readonly string[] SmallGeometry = ["--size", "16M", "--bucket-size", "64K", "--btree-node-size", "4K", "--block-size", "512"];

    /// <summary>Formats a fresh image through the CLI and returns its path.</summary>
    public static string Formatted(TempDirectory dir, string name = "fs.img")
    {
        var path = dir.File(name);
        CliRunner.Succeeds(["format", .. SmallGeometry, path]);
        return path;
    }

    /// <summary>A formatted image whose Test btree holds <paramref name="keys"/> cookie keys (several levels with 4K nodes).</summary>
    public static string WithKeys(TempDirectory dir, int keys, string name = "fs.img")
    {
        var path = Formatted(dir, name);
        using var fs = BasaltFileSystem.Mount(path, new MountOptions());
        var tree = fs.Btrees[BtreeId.Test];
        for (var i = 0; i < keys; i++)
            tree.Insert(new Bpos(1 + ((ulong)i % 7), (ulong)i * 3), BitConverter.GetBytes(i * 31L));
        fs.Sync();
        return path;
    }

    /// <summary>Bytes of file <paramref name="inode"/> of <see cref="WithData"/>: a pattern only (inode, offset) determine.</summary>
    public static byte[] DataOf(ulong inode, int length)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
            bytes[i] = (byte)((i * 7) + ((int)inode * 13) + (i >> 9));
        return bytes;
    }

    /// <summary>Sizes of the files <see cref="WithData"/> writes, inodes 10, 11, 12.</summary>
    public static readonly int[] DataFileSizes = [200 * 1024, 70 * 1024, 5000];

    /// <summary>
    /// A formatted image holding data extents: inodes 10, 11, 12 of <see cref="DataFileSizes"/> bytes
    /// (<see cref="DataOf"/>). Unmounted cleanly, or with <paramref name="clean"/> false left as a crash
    /// leaves it after a journal flush: the keys then live only in the journal.
    /// </summary>
    public static string WithData(TempDirectory dir, bool clean = true, string name = "fs.img")
    {
        var path = Formatted(dir, name);
        var fs = BasaltFileSystem.Mount(path, new MountOptions());
        for (var i = 0; i < DataFileSizes.Length; i++)
            fs.Data.Write(10 + (ulong)i, 0, DataOf(10 + (ulong)i, DataFileSizes[i]));
        fs.Sync();
        if (clean)
            fs.Dispose();
        else
            fs.Close(sync: false);
        return path;
    }

    public static byte[] Hash(string path) => System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path));

    /// <summary>Flips a bit of the seq field of superblock copy <paramref name="copy"/> directly in the file.</summary>
    public static long DamageSuperblockCopy(string path, int copy)
    {
        long offset;
        using (var device = FileBlockDevice.Open(path, readOnly: true))
            offset = SuperblockIo.Read(device).Superblock.CopyOffsets[copy];
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset + SuperblockFormat.SeqOffset;
        var b = file.ReadByte();
        file.Position = offset + SuperblockFormat.SeqOffset;
        file.WriteByte((byte)(b ^ 0x10));
        return offset;
    }
}
