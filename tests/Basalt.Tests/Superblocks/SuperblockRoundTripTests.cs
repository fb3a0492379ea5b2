using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Superblocks;
using static Basalt.Tests.Superblocks.SuperblockTestKit;

namespace Basalt.Tests.Superblocks;

public sealed class SuperblockRoundTripTests
{
    [Fact]
    public void Format_then_read_returns_every_field()
    {
        var (device, written) = FormatSmall();
        var result = SuperblockIo.Read(device);
        var sb = result.Superblock;

        Assert.Equal(0, result.UsedCopy);
        Assert.Equal(3, result.Copies.Count);
        Assert.All(result.Copies, c => Assert.Equal(CopyStatus.Good, c.Status));
        Assert.Equal(FsUuid, sb.Uuid);
        Assert.Null(sb.UserUuid);
        Assert.Equal("test", sb.Label);
        Assert.Equal(FormatVersion.Current, sb.Version);
        Assert.Equal(FormatVersion.Min, sb.VersionMin);
        Assert.Equal(1UL, sb.Seq);
        Assert.Equal(FormatTime, sb.WriteTime);
        Assert.Equal(SuperblockFlags.Clean, sb.Flags);
        Assert.Equal(0UL, sb.IncompatFeatures);
        Assert.Equal(0UL, sb.CompatFeatures);
        Assert.Equal(ChecksumType.Crc32C, sb.SuperblockChecksumType);
        Assert.Equal(ChecksumType.Crc32C, sb.MetadataChecksumType);
        Assert.Equal(512, sb.BlockSize);
        Assert.Equal(4096, sb.NodeSize);
        Assert.Equal(16 * 1024, sb.BucketSize);
        Assert.Equal(SmallDeviceSize, sb.DeviceSize);
        Assert.Equal(0, sb.DeviceIndex);

        var m = Assert.Single(sb.Members);
        Assert.Equal(DevUuid, m.DeviceUuid);
        Assert.Equal(9u, m.FirstBucket); // ceil(135168 / 16384)
        Assert.Equal((ulong)((SmallDeviceSize - 65536) / 16384), m.Nbuckets);
        Assert.Equal(MemberState.ReadWrite, m.State);
        var journal = Assert.Single(sb.JournalBuckets);
        Assert.Equal(new BucketRange(9, 8), journal);
        Assert.Equal(journal.End, m.NodeArea.Start);
        var slotsPerBucket = (ulong)(m.BucketSize / sb.NodeSize);
        Assert.Equal(Math.Max(Math.Max(16UL, (64 + slotsPerBucket - 1) / slotsPerBucket), (m.Nbuckets - journal.End) / 4), m.NodeArea.Count);
        Assert.Equal(Member.RegionShiftFor(m.Nbuckets), m.NodeRegionShift);
        Assert.True((m.Nbuckets - 1) >> m.NodeRegionShift < 64 && (m.NodeRegionShift == 0 || (m.Nbuckets - 1) >> (m.NodeRegionShift - 1) >= 64));
        Assert.Equal(m.NodeRegionBits(m.NodeArea.Start, m.NodeArea.End), m.NodeRegionMap);
        Assert.Equal(new long[] { 4096, 69632, SmallDeviceSize - 65536 }, sb.CopyOffsets);
        Assert.Empty(sb.Roots);
        Assert.Empty(sb.ErrorCounters);
        Assert.Equal(new CleanInfo(DateTimeOffset.UnixEpoch, FormatTime, 0), sb.CleanInfo);
        Assert.Equal(Superblock.NodeMagicFor(FsUuid), sb.NodeMagic);
        Assert.Equal(written.ToText(), sb.ToText());
    }

    [Fact]
    public void Node_magic_is_uuid_prefix_xor_constant()
    {
        // uuid bytes 0..7 in stored (RFC) order: 0f 1e 2d 3c 4b 5a 69 78 → LE u64 0x78695a4b3c2d1e0f.
        Assert.Equal(0x78695a4b3c2d1e0fUL ^ 0x45444F4E544C5342UL, Superblock.NodeMagicFor(FsUuid));
    }

    [Fact]
    public void Roots_error_counters_flags_features_and_unknown_sections_round_trip()
    {
        var (device, sb) = FormatSmall();
        var nodeArea = sb.NodeAreaOffset / 512;
        var t1 = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234567);
        var changed = sb
            .WithRoot(BtreeId.Inodes, SampleRoot(BtreeId.Inodes, 2, (ulong)nodeArea + 8))
            .WithRoot(BtreeId.Extents, SampleRoot(BtreeId.Extents, 0, (ulong)nodeArea))
            .WithRoot(BtreeId.Test, SampleRoot(BtreeId.Test, 7, (ulong)nodeArea + 16))
            .WithErrorCounted(FsckErrorId.BsetBadChecksum, t1, 3)
            .WithErrorCounted(FsckErrorId.SbCopyStale, t1)
            .WithErrorCounted(FsckErrorId.SbCopyStale, t1.AddDays(1))
            .WithFlags(SuperblockFlags.HasErrors | SuperblockFlags.HasTopologyErrors, SuperblockFlags.Clean)
            with
            {
                CompatFeatures = 1UL << 40,
                UserUuid = Guid.Parse("99999999-8888-7777-6666-555555555555"),
                Label = "données",
                CleanInfo = new CleanInfo(t1, t1.AddHours(1), 42),
                UnknownSections = [new UnknownSection(77, [1, 2, 3, 4, 5, 6, 7, 8, 9])],
                MetadataChecksumType = ChecksumType.XxHash64,
                SuperblockChecksumType = ChecksumType.Crc64,
            };
        var written = SuperblockIo.Write(device, changed, t1);
        var read = SuperblockIo.Read(device).Superblock;

        Assert.Equal(2UL, read.Seq);
        Assert.Equal(t1, read.WriteTime);
        Assert.Equal([BtreeId.Extents, BtreeId.Inodes, BtreeId.Test], read.Roots.Select(r => r.Btree));
        Assert.Equal([(byte)0, (byte)2, (byte)7], read.Roots.Select(r => r.Level));
        for (var i = 0; i < 3; i++)
            Assert.Equal(written.Roots[i].Ptr.ToText(), read.Roots[i].Ptr.ToText());
        Assert.Equal(
            [new ErrorCounter(FsckErrorId.SbCopyStale, 2, t1.AddDays(1)), new ErrorCounter(FsckErrorId.BsetBadChecksum, 3, t1)],
            read.ErrorCounters);
        Assert.Equal(SuperblockFlags.HasErrors | SuperblockFlags.HasTopologyErrors, read.Flags);
        Assert.Equal(1UL << 40, read.CompatFeatures);
        Assert.Equal(changed.UserUuid, read.UserUuid);
        Assert.Equal("données", read.Label);
        Assert.Equal(changed.CleanInfo, read.CleanInfo);
        Assert.Equal(ChecksumType.XxHash64, read.MetadataChecksumType);
        Assert.Equal(ChecksumType.Crc64, read.SuperblockChecksumType);
        var unknown = Assert.Single(read.UnknownSections);
        Assert.Equal(77u, unknown.Type);
        // The payload comes back padded to 8 bytes: the section length is what is stored.
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0, 0, 0, 0 }, unknown.Payload);

        // Rewriting what was read keeps the unknown section byte for byte.
        SuperblockIo.Write(device, read);
        var again = SuperblockIo.Read(device).Superblock;
        Assert.Equal(unknown.Payload, Assert.Single(again.UnknownSections).Payload);
        Assert.Equal(3UL, again.Seq);
    }

    [Fact]
    public void Encoded_bytes_are_identical_for_every_copy_except_offset_and_checksum()
    {
        var (device, sb) = FormatSmall();
        var a = Copy(device, sb.CopyOffsets[0]).ToArray();
        var b = Copy(device, sb.CopyOffsets[2]).ToArray();
        for (var i = 0; i < a.Length; i++)
        {
            var inOffset = i >= SuperblockFormat.CopyOffsetOffset && i < SuperblockFormat.CopyOffsetOffset + 8;
            var inChecksum = i < 8;
            if (!inOffset && !inChecksum)
                Assert.True(a[i] == b[i], $"byte {i} differs between copies");
        }
    }

    [Fact]
    public void Seq_increments_on_every_write_and_highest_seq_copy_wins()
    {
        var (device, sb) = FormatSmall();
        var s2 = SuperblockIo.Write(device, sb with { Label = "two" });
        Assert.Equal(2UL, s2.Seq);
        var s3 = sb with { Label = "three", Seq = 2 };
        // Only copy 2 gets seq 3: it must win and copies 0 and 1 are reported stale.
        SuperblockIo.WriteCopy(device, s3 with { Seq = 3 }, 2);
        var result = SuperblockIo.Read(device);
        Assert.Equal("three", result.Superblock.Label);
        Assert.Equal(3UL, result.Superblock.Seq);
        Assert.Equal(2, result.UsedCopy);
        Assert.Equal(CopyStatus.Stale, result.Copies[0].Status);
        Assert.Equal(2UL, result.Copies[0].Seq);
        Assert.Equal(CopyStatus.Stale, result.Copies[1].Status);
        Assert.Equal(CopyStatus.Good, result.Copies[2].Status);
        Assert.Equal(FsckErrorId.SbCopyStale, result.Copies[0].FsckError);
    }

    [Fact]
    public void Write_refuses_an_invalid_superblock_and_writes_nothing()
    {
        var (device, sb) = FormatSmall();
        var before = device.Contents.ToArray();
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Write(device, sb with { NodeSize = 3000 }));
        Assert.Equal(ErrorCode.InvariantViolated, ex.Code);
        Assert.Contains("btree node size 3000", ex.Message, StringComparison.Ordinal);
        Assert.True(before.AsSpan().SequenceEqual(device.Contents));
    }

    [Fact]
    public void Write_flushes_after_each_copy_in_layout_order()
    {
        var (inner, sb) = FormatSmall();
        var log = new LoggingDevice(inner);
        SuperblockIo.Write(log, sb);
        Assert.Equal(["W4096", "F", "W69632", "F", $"W{SmallDeviceSize - 65536}", "F"], log.Log);
    }

    private sealed class LoggingDevice(IBlockDevice inner) : IBlockDevice
    {
        public List<string> Log { get; } = [];
        public string Name => inner.Name;
        public long Size => inner.Size;
        public bool IsReadOnly => false;
        public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            Log.Add($"W{offset}");
            inner.Write(offset, data);
        }

        public void Flush()
        {
            Log.Add("F");
            inner.Flush();
        }

        public void Discard(long offset, long length) => inner.Discard(offset, length);
        public void Dispose() => inner.Dispose();
    }
}
