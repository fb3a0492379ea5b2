using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Superblocks;
using static Basalt.Tests.Superblocks.SuperblockTestKit;

namespace Basalt.Tests.Superblocks;

public sealed class SuperblockDamageTests
{
    public enum Damage
    {
        Zeroed,
        BitFlip,
        BadMagic,
        WrongChecksum,
        InvalidFieldResealed,
    }

    private static CopyStatus Apply(MemoryBlockDevice device, long offset, Damage damage)
    {
        var copy = Copy(device, offset);
        switch (damage)
        {
            case Damage.Zeroed:
                copy.Clear();
                return CopyStatus.BadMagic;
            case Damage.BitFlip:
                copy[SuperblockFormat.LabelOffset + 1] ^= 0x10;
                return CopyStatus.BadChecksum;
            case Damage.BadMagic:
                copy[SuperblockFormat.MagicOffset + 3] = (byte)'x';
                return CopyStatus.BadMagic;
            case Damage.WrongChecksum:
                copy[SuperblockFormat.ChecksumOffset] ^= 1;
                return CopyStatus.BadChecksum;
            case Damage.InvalidFieldResealed:
                BinaryPrimitives.WriteUInt32LittleEndian(copy[SuperblockFormat.BlockSizeOffset..], 3000);
                Reseal(device, offset);
                return CopyStatus.Invalid;
            default:
                throw new ArgumentOutOfRangeException(nameof(damage));
        }
    }

    public static TheoryData<int, Damage> EachCopyEachDamage()
    {
        var data = new TheoryData<int, Damage>();
        for (var copy = 0; copy < 3; copy++)
        {
            foreach (var d in Enum.GetValues<Damage>())
                data.Add(copy, d);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EachCopyEachDamage))]
    public void A_damaged_copy_is_reported_and_another_copy_is_used(int copyIndex, Damage damage)
    {
        var (device, sb) = FormatSmall();
        var expected = Apply(device, sb.CopyOffsets[copyIndex], damage);

        var result = SuperblockIo.Read(device);

        Assert.Equal(FsUuid, result.Superblock.Uuid);
        Assert.NotEqual(copyIndex, result.UsedCopy);
        Assert.Equal(copyIndex == 0 ? 1 : 0, result.UsedCopy);
        for (var i = 0; i < 3; i++)
        {
            var report = result.Copies[i];
            Assert.Equal(sb.CopyOffsets[i], report.Offset);
            Assert.Equal(i == copyIndex ? expected : CopyStatus.Good, report.Status);
        }
        var bad = result.Copies[copyIndex];
        Assert.False(result.AllCopiesGood);
        Assert.NotNull(bad.FsckError);
        if (damage == Damage.InvalidFieldResealed)
            Assert.Contains("block size 3000", bad.Detail, StringComparison.Ordinal);
        Assert.Contains($"copy {copyIndex} at byte {sb.CopyOffsets[copyIndex]}", result.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public void All_copies_damaged_is_SuperblockCorrupt_listing_each_copy()
    {
        var (device, sb) = FormatSmall();
        Apply(device, sb.CopyOffsets[0], Damage.BitFlip);
        Apply(device, sb.CopyOffsets[1], Damage.InvalidFieldResealed);
        Apply(device, sb.CopyOffsets[2], Damage.Zeroed);

        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Equal(ErrorCode.SuperblockCorrupt, ex.Code);
        Assert.StartsWith("test.img: no good superblock copy", ex.Message, StringComparison.Ordinal);
        Assert.Contains("copy 0 at byte 4096: bad checksum", ex.Message, StringComparison.Ordinal);
        Assert.Contains("copy 1 at byte 69632: invalid: block size 3000", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"copy 2 at byte {SmallDeviceSize - 65536}: bad magic", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Zeroed_device_is_NotBasalt_naming_the_offsets()
    {
        using var device = new MemoryBlockDevice(SmallDeviceSize, "blank.img");
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Equal(ErrorCode.NotBasalt, ex.Code);
        Assert.Equal($"blank.img: not a Basalt filesystem (no superblock magic at byte 4096, 69632 or {SmallDeviceSize - 65536})", ex.Message);
    }

    [Fact]
    public void Random_bytes_are_NotBasalt()
    {
        var random = new Random(12345);
        var bytes = new byte[SmallDeviceSize];
        random.NextBytes(bytes);
        using var device = new MemoryBlockDevice(bytes, "noise.img");
        Assert.Equal(ErrorCode.NotBasalt, Assert.Throws<BasaltException>(() => SuperblockIo.Read(device)).Code);
    }

    [Fact]
    public void Tiny_device_is_NotBasalt()
    {
        using var device = new MemoryBlockDevice(4096, "tiny.img");
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Equal(ErrorCode.NotBasalt, ex.Code);
    }

    [Fact]
    public void Truncated_device_mounts_from_the_first_copy_and_reports_the_end_copy_unreadable()
    {
        var (device, sb) = FormatSmall();
        var cut = new MemoryBlockDevice(device.Contents[..(int)(SmallDeviceSize / 2)], "cut.img");

        var result = SuperblockIo.Read(cut);

        Assert.Equal(0, result.UsedCopy);
        Assert.Equal(sb.CopyOffsets, result.Superblock.CopyOffsets);
        Assert.Equal(CopyStatus.Good, result.Copies[0].Status);
        Assert.Equal(CopyStatus.Good, result.Copies[1].Status);
        var end = result.Copies[2];
        Assert.Equal(SmallDeviceSize - 65536, end.Offset);
        Assert.Equal(CopyStatus.Unreadable, end.Status);
        Assert.Contains("past the end of the device", end.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Grown_device_still_finds_the_end_copy_through_the_layout()
    {
        var (device, sb) = FormatSmall();
        var grown = new MemoryBlockDevice(SmallDeviceSize * 2, "grown.img");
        device.Contents.CopyTo(grown.Contents);
        var result = SuperblockIo.Read(grown);
        Assert.All(result.Copies, c => Assert.Equal(CopyStatus.Good, c.Status));
        Assert.Equal(sb.CopyOffsets, result.Copies.Select(c => c.Offset));
    }

    [Fact]
    public void An_old_filesystems_end_copy_left_behind_does_not_win_over_the_start_copies()
    {
        // Filesystem A on 8 MiB, written a few times (seq 4); then the device "shrinks" to 4 MiB and
        // B is formatted there; then it grows back: A's end copy is exactly at the size-derived offset.
        var (big, a) = FormatSmall(2 * SmallDeviceSize);
        for (var i = 0; i < 3; i++)
            a = SuperblockIo.Write(big, a);
        var (small, _) = FormatSmall(SmallDeviceSize, SmallOptions with { Uuid = Guid.Parse("bbbbbbbb-0000-0000-0000-000000000001"), Label = "B" });
        small.Contents.CopyTo(big.Contents);

        var result = SuperblockIo.Read(big);

        Assert.Equal("B", result.Superblock.Label);
        Assert.Equal(1UL, result.Superblock.Seq);
        Assert.DoesNotContain(result.Copies, c => c.Offset == a.CopyOffsets[2]);
        Assert.All(result.Copies, c => Assert.Equal(CopyStatus.Good, c.Status));
    }

    [Fact]
    public void End_copy_alone_is_found_through_the_size_derived_offset()
    {
        var (device, sb) = FormatSmall();
        Copy(device, sb.CopyOffsets[0]).Clear();
        Copy(device, sb.CopyOffsets[1]).Clear();
        var result = SuperblockIo.Read(device);
        Assert.Equal(2, result.UsedCopy);
        Assert.Equal(CopyStatus.BadMagic, result.Copies[0].Status);
        Assert.Equal(CopyStatus.BadMagic, result.Copies[1].Status);
    }

    [Fact]
    public void Unreadable_copy_through_io_errors_is_reported_as_unreadable()
    {
        var (device, sb) = FormatSmall();
        using var failing = new FailingReadDevice(device, sb.CopyOffsets[0]);
        var result = SuperblockIo.Read(failing);
        Assert.Equal(1, result.UsedCopy);
        Assert.Equal(CopyStatus.Unreadable, result.Copies[0].Status);
        Assert.Contains("I/O error", result.Copies[0].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_incompatible_feature_is_refused_by_number()
    {
        var (device, sb) = FormatSmall();
        EditAllCopies(device, sb, c => BinaryPrimitives.WriteUInt64LittleEndian(c[SuperblockFormat.IncompatOffset..], 1UL << 5));
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Equal(ErrorCode.UnsupportedFeature, ex.Code);
        Assert.Contains("incompatible feature bit 5 (unknown)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_compatible_feature_is_kept()
    {
        var (device, sb) = FormatSmall();
        EditAllCopies(device, sb, c => BinaryPrimitives.WriteUInt64LittleEndian(c[SuperblockFormat.CompatOffset..], 1UL << 9));
        var read = SuperblockIo.Read(device).Superblock;
        Assert.Equal(1UL << 9, read.CompatFeatures);
        Assert.Contains("bit 9 (unknown)", read.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Version_too_new_is_refused_naming_both_versions()
    {
        var (device, sb) = FormatSmall();
        EditAllCopies(device, sb, c =>
        {
            BinaryPrimitives.WriteUInt16LittleEndian(c[SuperblockFormat.VersionOffset..], 9);
            BinaryPrimitives.WriteUInt16LittleEndian(c[SuperblockFormat.VersionMinOffset..], 7);
        });
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Equal(ErrorCode.UnsupportedVersion, ex.Code);
        Assert.Contains("version_min 7 (version 9)", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"versions {FormatVersion.Min}..{FormatVersion.Current}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Newer_version_with_a_supported_version_min_is_read()
    {
        var (device, sb) = FormatSmall();
        EditAllCopies(device, sb, c => BinaryPrimitives.WriteUInt16LittleEndian(c[SuperblockFormat.VersionOffset..], FormatVersion.Current + 3));
        Assert.Equal(FormatVersion.Current + 3, SuperblockIo.Read(device).Superblock.Version);
    }

    [Fact]
    public void Version_older_than_version_min_is_invalid()
    {
        var (device, sb) = FormatSmall();
        EditAllCopies(device, sb, c => BinaryPrimitives.WriteUInt16LittleEndian(c[SuperblockFormat.VersionMinOffset..], 2));
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Equal(ErrorCode.SuperblockCorrupt, ex.Code);
        Assert.Contains("version 1 is older than version_min 2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_newer_unsupported_copy_is_not_skipped_for_an_older_good_one()
    {
        var (device, sb) = FormatSmall();
        // Copy 0 claims a newer seq and needs an unknown feature: the reader must refuse, not fall back.
        var c0 = Copy(device, sb.CopyOffsets[0]);
        BinaryPrimitives.WriteUInt64LittleEndian(c0[SuperblockFormat.SeqOffset..], 5);
        BinaryPrimitives.WriteUInt64LittleEndian(c0[SuperblockFormat.IncompatOffset..], 1UL << 63);
        Reseal(device, sb.CopyOffsets[0]);
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Equal(ErrorCode.UnsupportedFeature, ex.Code);
        Assert.Contains("bit 63 (unknown)", ex.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, Action<Span<byte>>, string> InvalidFields() => new()
    {
        { "zero uuid", c => c.Slice(SuperblockFormat.UuidOffset, 16).Clear(), "uuid is zero" },
        { "node > bucket", c => BinaryPrimitives.WriteUInt32LittleEndian(c[SuperblockFormat.NodeSizeOffset..], 32768), "smaller than the btree node size" },
        { "block > node", c => BinaryPrimitives.WriteUInt32LittleEndian(c[SuperblockFormat.BlockSizeOffset..], 8192), "smaller than the block size" },
        { "wrong copy offset", c => BinaryPrimitives.WriteUInt64LittleEndian(c[SuperblockFormat.CopyOffsetOffset..], 8192), "records offset 8192" },
        { "unknown checksum type", c => c[SuperblockFormat.ChecksumTypeOffset] = 9, "unknown superblock checksum type 9" },
        { "device too small for buckets", c => BinaryPrimitives.WriteUInt64LittleEndian(c[SuperblockFormat.DeviceSizeOffset..], 1024 * 1024), "device size" },
        { "total size past copy", c => BinaryPrimitives.WriteUInt32LittleEndian(c[SuperblockFormat.TotalBytesOffset..], 70000), "total size 70000" },
        { "label not utf-8", c => c[SuperblockFormat.LabelOffset] = 0xff, "UTF-8" },
    };

    [Theory]
    [MemberData(nameof(InvalidFields))]
    public void Invalid_fields_with_a_valid_checksum_are_rejected_with_a_reason(string name, Action<Span<byte>> edit, string reason)
    {
        _ = name;
        var (device, sb) = FormatSmall();
        EditAllCopies(device, sb, edit);
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Equal(ErrorCode.SuperblockCorrupt, ex.Code);
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_roots_and_error_counters_are_rejected()
    {
        var (device, sb) = FormatSmall();
        var withRoot = sb.WithRoot(BtreeId.Inodes, SampleRoot(BtreeId.Inodes, 1, (ulong)(sb.NodeAreaOffset / 512)));
        SuperblockIo.Write(device, withRoot);
        var read = SuperblockIo.Read(device).Superblock;

        // Find the roots section and set the level to 8.
        EditSection(device, read, SectionType.BtreeRoots, p => p[SuperblockFormat.RootsHeaderSize + 1] = 8);
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Contains("level 8 (at most 7)", ex.Message, StringComparison.Ordinal);

        (device, sb) = FormatSmall();
        SuperblockIo.Write(device, sb.WithErrorCounted(FsckErrorId.SbCopyStale, FormatTime).WithErrorCounted(FsckErrorId.BsetEmpty, FormatTime));
        read = SuperblockIo.Read(device).Superblock;
        EditSection(device, read, SectionType.ErrorCounters, p =>
            BinaryPrimitives.WriteUInt16LittleEndian(p[(SuperblockFormat.ErrorsHeaderSize + SuperblockFormat.ErrorEntrySize)..], 1));
        ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Contains("is not after", ex.Message, StringComparison.Ordinal);

        // A counter for an id from a newer build is kept, not refused.
        EditSection(device, read, SectionType.ErrorCounters, p =>
            BinaryPrimitives.WriteUInt16LittleEndian(p[(SuperblockFormat.ErrorsHeaderSize + SuperblockFormat.ErrorEntrySize)..], 999));
        var kept = SuperblockIo.Read(device).Superblock;
        Assert.Equal(999, (int)kept.ErrorCounters[1].Id);
        Assert.Contains("error999 (999)", kept.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Section_with_an_insane_length_is_rejected()
    {
        var (device, sb) = FormatSmall();
        EditAllCopies(device, sb, c =>
            BinaryPrimitives.WriteUInt32LittleEndian(c[SuperblockFormat.HeaderSize..], 0xFFFF_FFF8));
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Read(device));
        Assert.Contains("has length 4294967288", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Edits the payload of one section in every copy and reseals.</summary>
    internal static void EditSection(MemoryBlockDevice device, Superblock sb, SectionType type, Action<Span<byte>> edit)
    {
        EditAllCopies(device, sb, c =>
        {
            var total = (int)BinaryPrimitives.ReadUInt32LittleEndian(c[SuperblockFormat.TotalBytesOffset..]);
            var at = SuperblockFormat.HeaderSize;
            while (at < total)
            {
                var bytes = (int)BinaryPrimitives.ReadUInt32LittleEndian(c[at..]);
                if (BinaryPrimitives.ReadUInt32LittleEndian(c[(at + 4)..]) == (uint)type)
                {
                    edit(c.Slice(at + SuperblockFormat.SectionHeaderSize, bytes - SuperblockFormat.SectionHeaderSize));
                    return;
                }
                at += bytes;
            }
            throw new InvalidOperationException($"no {type} section");
        });
    }

    private sealed class FailingReadDevice(IBlockDevice inner, long failAt) : IBlockDevice
    {
        public string Name => inner.Name;
        public long Size => inner.Size;
        public bool IsReadOnly => inner.IsReadOnly;

        public void Read(long offset, Span<byte> buffer)
        {
            if (offset <= failAt && failAt < offset + buffer.Length)
                throw new BasaltException(ErrorCode.IoError, $"{Name}: read error at byte {failAt}");
            inner.Read(offset, buffer);
        }

        public void Write(long offset, ReadOnlySpan<byte> data) => inner.Write(offset, data);
        public void Flush() => inner.Flush();
        public void Discard(long offset, long length) => inner.Discard(offset, length);
        public void Dispose() => inner.Dispose();
    }
}
