// Good copies with the same seq must hold the same superblock: every byte but the per-copy offset
// field and the checksum. A copy that differs is reported (sb_copies_differ), the winner among the
// highest seq is the content most copies hold (then the first in layout order), and fsck rewrites
// the loser from it.
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fsck;
using Basalt.Superblocks;
using static Basalt.Tests.Superblocks.SuperblockTestKit;

namespace Basalt.Tests.Superblocks;

public sealed class SuperblockCopiesDifferTests
{
    [Fact]
    public void Copies_that_differ_only_in_offset_and_checksum_are_all_good()
    {
        var (device, sb) = FormatSmall();
        Assert.False(Copy(device, sb.CopyOffsets[0])[..8].SequenceEqual(Copy(device, sb.CopyOffsets[1])[..8]));

        var result = SuperblockIo.Read(device);

        Assert.True(result.AllCopiesGood, result.ToText());
        Assert.Equal(0, result.UsedCopy);
    }

    [Fact]
    public void A_copy_with_the_same_seq_and_another_label_is_reported_and_the_first_copy_wins()
    {
        var (device, sb) = FormatSmall();
        SuperblockIo.WriteCopy(device, sb with { Label = "other" }, 1);

        var result = SuperblockIo.Read(device);

        Assert.Equal(0, result.UsedCopy);
        Assert.Equal("test", result.Superblock.Label);
        Assert.Equal([CopyStatus.Good, CopyStatus.Differs, CopyStatus.Good], result.Copies.Select(c => c.Status));
        var differs = result.Copies[1];
        Assert.Equal(FsckErrorId.SbCopiesDiffer, differs.FsckError);
        Assert.Equal(sb.Seq, differs.Seq);
        Assert.Equal(
            $"same seq {sb.Seq} as copy 0 at byte {sb.CopyOffsets[0]} but different content " +
            $"(first difference at byte {SuperblockFormat.LabelOffset} of the copy, header field label)",
            differs.Detail);
        Assert.False(result.AllCopiesGood);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void The_winner_among_equal_seqs_is_the_content_most_copies_hold(int changed)
    {
        // Whichever copy holds the odd content, the two that agree win and the odd one is reported.
        var (device, sb) = FormatSmall();
        SuperblockIo.WriteCopy(device, sb with { Label = "other" }, changed);

        var result = SuperblockIo.Read(device);

        Assert.Equal(changed == 0 ? 1 : 0, result.UsedCopy);
        Assert.Equal("test", result.Superblock.Label);
        for (var i = 0; i < 3; i++)
            Assert.Equal(i == changed ? CopyStatus.Differs : CopyStatus.Good, result.Copies[i].Status);
    }

    [Fact]
    public void Three_different_copies_with_equal_seqs_leave_the_first_in_layout_order()
    {
        var (device, sb) = FormatSmall();
        SuperblockIo.WriteCopy(device, sb with { Label = "one" }, 1);
        SuperblockIo.WriteCopy(device, sb with { Label = "two" }, 2);

        var result = SuperblockIo.Read(device);

        Assert.Equal(0, result.UsedCopy);
        Assert.Equal("test", result.Superblock.Label);
        Assert.Equal([CopyStatus.Good, CopyStatus.Differs, CopyStatus.Differs], result.Copies.Select(c => c.Status));
    }

    [Fact]
    public void One_copy_sealed_over_another_uuid_is_outvoted_by_the_two_that_agree()
    {
        // A bit flipped in copy 0's uuid before its checksum was computed: a valid copy of "another
        // filesystem" at the first offset. Trusting it would make every node's magic wrong.
        var (device, sb) = FormatSmall();
        var uuid = sb.Uuid.ToByteArray();
        uuid[5] ^= 0x80;
        SuperblockIo.WriteCopy(device, sb with { Uuid = new Guid(uuid) }, 0);

        var result = SuperblockIo.Read(device);

        Assert.Equal(1, result.UsedCopy);
        Assert.Equal(sb.Uuid, result.Superblock.Uuid);
        Assert.Equal(CopyStatus.Invalid, result.Copies[0].Status);
        Assert.Contains("belongs to another filesystem", result.Copies[0].Detail, StringComparison.Ordinal);
        Assert.Equal([CopyStatus.Good, CopyStatus.Good], result.Copies.Skip(1).Select(c => c.Status));
    }

    [Fact]
    public void A_tie_between_two_uuids_goes_to_the_one_the_btree_roots_carry()
    {
        // Copy 0 resealed over another uuid and copy 2 damaged: one good copy per uuid. The
        // anchor (copy 0) would win the tie, and every node would then fail its magic check and be
        // dropped; the roots on the device carry the real uuid's magic, so copy 1 wins.
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using (var fs = Basalt.Fs.BasaltFileSystem.Format(device, Basalt.Tests.Fs.FilesTests.Geometry))
            fs.Files.Mkdir(Basalt.Fs.FsPositions.RootIno, "kept"u8, 0x1ED);
        var sb = SuperblockIo.Read(device).Superblock;
        Assert.NotEmpty(sb.Roots);
        var uuid = sb.Uuid.ToByteArray();
        uuid[0] ^= 0x40;
        SuperblockIo.WriteCopy(device, sb with { Uuid = new Guid(uuid) }, 0);
        device.Contents.Slice(checked((int)sb.CopyOffsets[2]) + 200, 8).Fill(0xFF);

        var result = SuperblockIo.Read(device);

        Assert.Equal(1, result.UsedCopy);
        Assert.Equal(sb.Uuid, result.Superblock.Uuid);
        Assert.Equal([CopyStatus.Invalid, CopyStatus.Good, CopyStatus.BadChecksum], result.Copies.Select(c => c.Status));
        using var mounted = Basalt.Fs.BasaltFileSystem.Mount(device, new Basalt.Fs.MountOptions { ReadOnly = true });
        Assert.Equal(Basalt.Fs.FileType.Directory, mounted.Files.Lookup(Basalt.Fs.FsPositions.RootIno, "kept"u8).Type);
    }

    [Fact]
    public void A_copy_whose_device_size_no_longer_matches_its_layout_is_invalid()
    {
        // A flipped high bit of device_size: the copy still decodes with a good checksum, but the
        // size would put the end copy elsewhere, so the copies that agree with the layout win.
        var (device, sb) = FormatSmall();
        var sizeField = device.Contents[(int)(sb.CopyOffsets[0] + SuperblockFormat.DeviceSizeOffset)..];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(sizeField, sb.DeviceSize | (1L << 53));
        SuperblockTestKit.Reseal(device, sb.CopyOffsets[0]);

        var result = SuperblockIo.Read(device);

        Assert.Equal(1, result.UsedCopy);
        Assert.Equal(sb.DeviceSize, result.Superblock.DeviceSize);
        Assert.NotEqual(CopyStatus.Good, result.Copies[0].Status);
        Assert.Contains("puts the last superblock copy", result.Copies[0].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_difference_in_a_section_is_found_too()
    {
        var (device, sb) = FormatSmall();
        SuperblockIo.WriteCopy(device, sb with { CleanInfo = sb.CleanInfo with { JournalSeq = 7 } }, 2);

        var result = SuperblockIo.Read(device);

        var differs = result.Copies[2];
        Assert.Equal(CopyStatus.Differs, differs.Status);
        Assert.EndsWith(", the sections)", differs.Detail, StringComparison.Ordinal);
        Assert.Equal(0UL, result.Superblock.CleanInfo.JournalSeq);
    }

    [Fact]
    public void Check_only_reports_the_differing_copy_and_yes_rewrites_it_from_the_winner()
    {
        var (device, sb) = FormatSmall();
        SuperblockIo.WriteCopy(device, sb with { Label = "other" }, 2);
        var before = device.Contents.ToArray();

        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });

        Assert.True(device.Contents.SequenceEqual(before), "check-only run wrote to the device");
        var finding = Assert.Single(check.Findings);
        Assert.Equal(FsckErrorId.SbCopiesDiffer, finding.Id);
        Assert.Equal($"test.img: superblock copy 2 at byte {sb.CopyOffsets[2]}", finding.Where);
        Assert.Equal(FsckOutcome.WouldFix, finding.Outcome);
        Assert.Equal(FsckExitCodes.Uncorrected, check.ExitCode);

        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });

        Assert.Equal(FsckErrorId.SbCopiesDiffer, Assert.Single(repair.Findings).Id);
        Assert.True(Assert.Single(repair.Findings).Corrected);
        Assert.Equal(FsckExitCodes.Corrected, repair.ExitCode);
        var read = SuperblockIo.Read(device);
        Assert.True(read.AllCopiesGood, read.ToText());
        Assert.Equal("test", read.Superblock.Label);
        Assert.Equal(-1, SuperblockCodec.FirstContentDifference(Copy(device, sb.CopyOffsets[0]), Copy(device, sb.CopyOffsets[2])));
        Assert.Equal(1UL, read.Superblock.ErrorCounters.Single(e => e.Id == FsckErrorId.SbCopiesDiffer).Count);

        var again = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(again.Clean, string.Join("\n", again.Findings.Select(f => f.ToText())));
    }

    [Fact]
    public void First_content_difference_ignores_exactly_the_checksum_and_the_offset_field()
    {
        var a = new byte[SuperblockFormat.HeaderSize];
        var b = new byte[SuperblockFormat.HeaderSize];
        a[0] = 1;
        a[SuperblockFormat.CopyOffsetOffset + 7] = 1;
        Assert.Equal(-1, SuperblockCodec.FirstContentDifference(a, b));

        a[SuperblockFormat.CopyOffsetOffset - 1] = 1;
        Assert.Equal(SuperblockFormat.CopyOffsetOffset - 1, SuperblockCodec.FirstContentDifference(a, b));
        a[SuperblockFormat.CopyOffsetOffset - 1] = 0;
        a[SuperblockFormat.CopyOffsetOffset + 8] = 1;
        Assert.Equal(SuperblockFormat.CopyOffsetOffset + 8, SuperblockCodec.FirstContentDifference(a, b));
        a[SuperblockFormat.CopyOffsetOffset + 8] = 0;
        Assert.Equal(SuperblockFormat.HeaderSize, SuperblockCodec.FirstContentDifference(a, [.. b, 0, 0, 0, 0, 0, 0, 0, 0]));
    }
}
