using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Superblocks;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Superblocks;

public sealed class SuperblockFileTests
{
    private const long MiB = 1024 * 1024;
    private static readonly Guid s_uuid = Guid.Parse("5b2f8f0e-0c1d-4e6a-9f3b-7a8c9d0e1f20");

    private static Superblock FormatFile(string path, long size, string label = "file") =>
        FormatFile(path, size, new FormatOptions { Label = label, Uuid = s_uuid });

    private static Superblock FormatFile(string path, long size, FormatOptions options)
    {
        using var device = FileBlockDevice.Create(path, size);
        return SuperblockIo.Format(device, options);
    }

    [Fact]
    public void Format_a_file_then_reopen_and_read_it()
    {
        using var dir = new TempDirectory("sb");
        var path = dir.File("a.img");
        var written = FormatFile(path, 64 * MiB);

        using var device = FileBlockDevice.Open(path, readOnly: true);
        var result = SuperblockIo.Read(device);
        Assert.True(result.AllCopiesGood, result.ToText());
        Assert.Equal(written.ToText(), result.Superblock.ToText());
        Assert.Equal(s_uuid, result.Superblock.Uuid);
        Assert.Equal(128 * 1024, result.Superblock.BucketSize);
        Assert.Equal($"Basalt filesystem (uuid {s_uuid}, label \"file\")", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Truncated_image_mounts_from_copy_0_and_says_the_end_copy_is_unreadable()
    {
        using var dir = new TempDirectory("sb");
        var path = dir.File("cut.img");
        var written = FormatFile(path, 32 * MiB);
        using (var stream = new FileStream(path, FileMode.Open))
            stream.SetLength(20 * MiB);

        using var device = FileBlockDevice.Open(path);
        var result = SuperblockIo.Read(device);
        Assert.Equal(0, result.UsedCopy);
        Assert.Equal(CopyStatus.Good, result.Copies[0].Status);
        Assert.Equal(CopyStatus.Good, result.Copies[1].Status);
        Assert.Equal(CopyStatus.Unreadable, result.Copies[2].Status);
        Assert.Equal(written.CopyOffsets[2], result.Copies[2].Offset);
        Assert.Contains("past the end of the device", result.ToText(), StringComparison.Ordinal);

        // Writing to a device that lost its end copy area is refused, not half done.
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Write(device, result.Superblock));
        Assert.Equal(ErrorCode.ShortDevice, ex.Code);
        Assert.Equal(written.Seq, SuperblockIo.Read(device).Superblock.Seq);
    }

    [Fact]
    public void Damaged_first_copy_in_a_file_falls_back_and_fsck_style_repair_restores_it()
    {
        using var dir = new TempDirectory("sb");
        var path = dir.File("bad.img");
        FormatFile(path, 16 * MiB);
        using (var stream = new FileStream(path, FileMode.Open))
        {
            // Invert the byte: writing a fixed value would change nothing when the byte (part of a
            // random uuid) already holds it.
            stream.Position = SuperblockFormat.FirstCopyOffset + 300;
            var old = stream.ReadByte();
            stream.Position = SuperblockFormat.FirstCopyOffset + 300;
            stream.WriteByte((byte)~old);
        }

        using var device = FileBlockDevice.Open(path);
        var result = SuperblockIo.Read(device);
        Assert.Equal(1, result.UsedCopy);
        Assert.Equal(CopyStatus.BadChecksum, result.Copies[0].Status);

        SuperblockIo.WriteCopy(device, result.Superblock, 0);
        var repaired = SuperblockIo.Read(device);
        Assert.True(repaired.AllCopiesGood, repaired.ToText());
        Assert.Equal(0, repaired.UsedCopy);
    }

    [Fact]
    public void Rewrites_survive_reopening_and_keep_increasing_seq()
    {
        using var dir = new TempDirectory("sb");
        var path = dir.File("seq.img");
        var sb = FormatFile(path, 16 * MiB);
        for (var i = 0; i < 3; i++)
        {
            using var device = FileBlockDevice.Open(path);
            var read = SuperblockIo.Read(device).Superblock;
            Assert.Equal(sb.Seq, read.Seq);
            sb = SuperblockIo.Write(device, read with { Label = $"round {i}" });
        }
        using var last = FileBlockDevice.Open(path, readOnly: true);
        var final = SuperblockIo.Read(last).Superblock;
        Assert.Equal(4UL, final.Seq);
        Assert.Equal("round 2", final.Label);
    }

    [Fact]
    public void Too_small_file_is_refused_with_the_minimum()
    {
        using var dir = new TempDirectory("sb");
        using var device = FileBlockDevice.Create(dir.File("small.img"), 4 * MiB);
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Format(device, new FormatOptions()));
        Assert.Equal(ErrorCode.DeviceTooSmall, ex.Code);
        Assert.Contains($"device is {4 * MiB} bytes; Basalt needs at least 9764864 bytes with bucket size 131072", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Existing_ext4_signature_in_a_file_is_detected()
    {
        using var dir = new TempDirectory("sb");
        var path = dir.File("ext.img");
        using (var stream = new FileStream(path, FileMode.CreateNew))
        {
            stream.SetLength(8 * MiB);
            stream.Position = 1080;
            stream.Write([0x53, 0xEF]);
        }
        using var device = FileBlockDevice.Open(path, readOnly: true);
        Assert.Equal("ext2/ext3/ext4 filesystem", SignatureProbe.Detect(device));
        Assert.Equal(ErrorCode.NotBasalt, Assert.Throws<BasaltException>(() => SuperblockIo.Read(device)).Code);
    }
}
