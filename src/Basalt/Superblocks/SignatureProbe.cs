// Recognises what a device already holds, so `format` can refuse to overwrite a filesystem,
// a partition table, swap or an encrypted volume without --force and say what it found.
// Only fixed, well-known signatures are checked; a device that matches none is "empty enough".
using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Superblocks;

public static class SignatureProbe
{
    /// <summary>bcachefs superblock magic (and bcache's older one), at byte 4096 + 24.</summary>
    private static ReadOnlySpan<byte> BcachefsMagic =>
        [0xc6, 0x85, 0x73, 0xf6, 0x66, 0xce, 0x90, 0xa9, 0xd9, 0x6a, 0x60, 0xcf, 0x80, 0x3d, 0xf7, 0xef];

    private static ReadOnlySpan<byte> BcacheMagic =>
        [0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81];

    private static ReadOnlySpan<byte> LuksMagic => [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xba, 0xbe];

    /// <summary>Returns a short description of the signature found, or null when there is none.</summary>
    public static string? Detect(IBlockDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return DetectBasalt(device)
            ?? Match(device, 0, LuksMagic, "LUKS encrypted volume")
            ?? Match(device, 0, "XFSB"u8, "XFS filesystem")
            ?? Match(device, 65600, "_BHRfS_M"u8, "btrfs filesystem")
            ?? DetectExt(device)
            ?? Match(device, 4096 + 24, BcachefsMagic, "bcachefs filesystem")
            ?? Match(device, 4096 + 24, BcacheMagic, "bcachefs/bcache device")
            ?? Match(device, 4086, "SWAPSPACE2"u8, "Linux swap space")
            ?? Match(device, 512, "EFI PART"u8, "GPT partition table")
            ?? DetectMbr(device);
    }

    private static string? DetectBasalt(IBlockDevice device)
    {
        var hasMagic = false;
        foreach (var offset in SuperblockIo.CopyOffsets(device.Size))
            hasMagic |= Match(device, offset + SuperblockFormat.MagicOffset, SuperblockFormat.Magic, "x") is not null;
        if (!hasMagic)
            return null;
        try
        {
            var sb = SuperblockIo.Read(device).Superblock;
            return $"Basalt filesystem (uuid {SuperblockText.Uuid(sb.Uuid)}{(sb.Label.Length > 0 ? $", label \"{sb.Label}\"" : "")})";
        }
        catch (BasaltException e)
        {
            return $"Basalt filesystem (superblock unusable: {e.Code})";
        }
    }

    private static string? DetectExt(IBlockDevice device)
    {
        // The ext2/3/4 superblock starts at byte 1024; s_magic (0xEF53, little-endian) is at byte 56 of it.
        Span<byte> b = stackalloc byte[2];
        if (!TryReadAt(device, 1080, b) || BinaryPrimitives.ReadUInt16LittleEndian(b) != 0xEF53)
            return null;
        return "ext2/ext3/ext4 filesystem";
    }

    private static string? DetectMbr(IBlockDevice device)
    {
        Span<byte> sector = stackalloc byte[512];
        if (!TryReadAt(device, 0, sector) || sector[510] != 0x55 || sector[511] != 0xAA)
            return null;
        // Four 16-byte partition entries at 446; a partition type byte at +4 of each.
        for (var i = 0; i < 4; i++)
        {
            if (sector[446 + (16 * i) + 4] != 0)
                return "MBR partition table";
        }
        return null;
    }

    private static string? Match(IBlockDevice device, long offset, ReadOnlySpan<byte> magic, string description)
    {
        Span<byte> b = stackalloc byte[magic.Length];
        return TryReadAt(device, offset, b) && b.SequenceEqual(magic) ? description : null;
    }

    /// <summary>Reads bytes at any offset through sector-aligned reads; false when past the end or unreadable.</summary>
    private static bool TryReadAt(IBlockDevice device, long offset, Span<byte> destination)
    {
        var start = offset / FormatLimits.SectorSize * FormatLimits.SectorSize;
        var end = (offset + destination.Length + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize * FormatLimits.SectorSize;
        if (offset < 0 || end > device.Size)
            return false;
        var buffer = new byte[end - start];
        try
        {
            device.Read(start, buffer);
        }
        catch (BasaltException e) when (e.Class == ErrorClass.Io)
        {
            return false;
        }
        buffer.AsSpan((int)(offset - start), destination.Length).CopyTo(destination);
        return true;
    }
}
