using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Superblocks;
using static Basalt.Tests.Superblocks.SuperblockTestKit;

namespace Basalt.Tests.Superblocks;

public sealed class SignatureProbeTests
{
    private const int Size = 1024 * 1024;

    private static MemoryBlockDevice With(long offset, ReadOnlySpan<byte> bytes)
    {
        var device = new MemoryBlockDevice(Size, "probe.img");
        bytes.CopyTo(device.Contents[(int)offset..]);
        return device;
    }

    [Fact]
    public void Blank_device_has_no_signature()
    {
        using var device = new MemoryBlockDevice(Size);
        Assert.Null(SignatureProbe.Detect(device));
    }

    [Fact]
    public void Basalt_filesystem_is_named_with_uuid_and_label()
    {
        var (device, _) = FormatSmall();
        Assert.Equal($"Basalt filesystem (uuid {FsUuid}, label \"test\")", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Damaged_basalt_filesystem_is_still_recognised()
    {
        var (device, sb) = FormatSmall();
        foreach (var o in sb.CopyOffsets)
            Copy(device, o)[200] ^= 1;
        Assert.Equal("Basalt filesystem (superblock unusable: SuperblockCorrupt)", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Ext4_magic_at_1080()
    {
        using var device = With(1080, [0x53, 0xEF]);
        Assert.Equal("ext2/ext3/ext4 filesystem", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Btrfs_magic_at_65600()
    {
        using var device = With(65600, "_BHRfS_M"u8);
        Assert.Equal("btrfs filesystem", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Xfs_magic_at_0()
    {
        using var device = With(0, "XFSB"u8);
        Assert.Equal("XFS filesystem", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Bcachefs_magic_at_4120()
    {
        using var device = With(4096 + 24, [0xc6, 0x85, 0x73, 0xf6, 0x66, 0xce, 0x90, 0xa9, 0xd9, 0x6a, 0x60, 0xcf, 0x80, 0x3d, 0xf7, 0xef]);
        Assert.Equal("bcachefs filesystem", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Swap_signature_at_4086()
    {
        using var device = With(4086, "SWAPSPACE2"u8);
        Assert.Equal("Linux swap space", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Luks_header_at_0()
    {
        using var device = With(0, [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xba, 0xbe]);
        Assert.Equal("LUKS encrypted volume", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Gpt_header_at_512()
    {
        using var device = With(512, "EFI PART"u8);
        Assert.Equal("GPT partition table", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Mbr_needs_a_non_empty_partition_table()
    {
        using var empty = With(510, [0x55, 0xAA]);
        Assert.Null(SignatureProbe.Detect(empty));

        using var device = With(510, [0x55, 0xAA]);
        device.Contents[446 + 16 + 4] = 0x83; // second entry: Linux
        Assert.Equal("MBR partition table", SignatureProbe.Detect(device));
    }

    [Fact]
    public void Near_misses_do_not_match()
    {
        using var ext = With(1080, [0x53, 0xEE]);
        Assert.Null(SignatureProbe.Detect(ext));
        using var btrfs = With(65600, "_BHRfS_m"u8);
        Assert.Null(SignatureProbe.Detect(btrfs));
        using var swap = With(4086, "SWAPSPACE1"u8);
        Assert.Null(SignatureProbe.Detect(swap));
    }

    [Fact]
    public void Small_device_is_probed_without_reading_past_its_end()
    {
        using var device = new MemoryBlockDevice(1024);
        BinaryPrimitives.WriteUInt16LittleEndian(device.Contents[510..], 0xAA55);
        Assert.Null(SignatureProbe.Detect(device));
    }
}
