// Pins the superblock layout: the constants in SuperblockFormat against the tables of
// docs/format.md (section "Superblock"), and the bytes the encoder writes against those offsets.
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Basalt.Format;
using Basalt.Superblocks;
using static Basalt.Tests.Superblocks.SuperblockTestKit;

namespace Basalt.Tests.Superblocks;

public sealed class SuperblockLayoutTests
{
    private static string DocPath()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Basalt.slnx")))
            dir = Path.GetDirectoryName(dir);
        Assert.NotNull(dir);
        return Path.Combine(dir, "docs", "format.md");
    }

    /// <summary>The (offset, size, field) rows of the first table after the line starting with <paramref name="heading"/>.</summary>
    private static List<(int Offset, int Size, string Field)> Table(string heading)
    {
        var lines = File.ReadAllLines(DocPath());
        var i = Array.FindIndex(lines, l => l.StartsWith(heading, StringComparison.Ordinal));
        Assert.True(i >= 0, $"heading {heading} not found in the doc");
        while (i < lines.Length && !lines[i].StartsWith('|'))
            i++;
        var rows = new List<(int, int, string)>();
        for (; i < lines.Length && lines[i].StartsWith('|'); i++)
        {
            var cells = lines[i].Split('|', StringSplitOptions.TrimEntries);
            if (!int.TryParse(cells[1], NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
                continue;
            var size = int.TryParse(cells[2], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1;
            rows.Add((offset, size, cells[3]));
        }
        return rows;
    }

    [Fact]
    public void Header_table_matches_the_constants()
    {
        var expected = new (int, int, string)[]
        {
            (SuperblockFormat.ChecksumOffset, 8, "csum"),
            (SuperblockFormat.MagicOffset, 16, "magic"),
            (SuperblockFormat.ChecksumTypeOffset, 1, "csum_type"),
            (SuperblockFormat.MetadataChecksumOffset, 1, "meta_csum_type"),
            (SuperblockFormat.VersionOffset, 2, "version"),
            (SuperblockFormat.VersionMinOffset, 2, "version_min"),
            (SuperblockFormat.DeviceIndexOffset, 1, "dev_idx"),
            (SuperblockFormat.DataChecksumOffset, 1, "data_csum_type"),
            (SuperblockFormat.TotalBytesOffset, 4, "total_bytes"),
            (SuperblockFormat.Reserved36Offset, 4, "reserved"),
            (SuperblockFormat.UuidOffset, 16, "uuid"),
            (SuperblockFormat.UserUuidOffset, 16, "user_uuid"),
            (SuperblockFormat.LabelOffset, SuperblockFormat.LabelSize, "label"),
            (SuperblockFormat.SeqOffset, 8, "seq"),
            (SuperblockFormat.CopyOffsetOffset, 8, "offset"),
            (SuperblockFormat.WriteTimeOffset, 8, "write_time"),
            (SuperblockFormat.FlagsOffset, 8, "flags"),
            (SuperblockFormat.IncompatOffset, 8, "incompat"),
            (SuperblockFormat.CompatOffset, 8, "compat"),
            (SuperblockFormat.BlockSizeOffset, 4, "block_size"),
            (SuperblockFormat.NodeSizeOffset, 4, "node_size"),
            (SuperblockFormat.DeviceSizeOffset, 8, "device_size"),
            (SuperblockFormat.ReservedTailOffset, SuperblockFormat.HeaderSize - SuperblockFormat.ReservedTailOffset, "reserved"),
        };
        Assert.Equal(expected, Table("### Fixed header"));
        AssertContiguous(expected, SuperblockFormat.HeaderSize);
    }

    [Fact]
    public void Member_entry_table_matches_the_constants()
    {
        var expected = new (int, int, string)[]
        {
            (SuperblockFormat.MemberUuidOffset, 16, "uuid"),
            (SuperblockFormat.MemberNbucketsOffset, 8, "nbuckets"),
            (SuperblockFormat.MemberBucketSizeOffset, 4, "bucket_size"),
            (SuperblockFormat.MemberFirstBucketOffset, 4, "first_bucket"),
            (SuperblockFormat.MemberNodeAreaFirstOffset, 8, "node_area_start"),
            (SuperblockFormat.MemberNodeAreaCountOffset, 8, "node_area_count"),
            (SuperblockFormat.MemberStateOffset, 1, "state"),
            (SuperblockFormat.MemberFlagsOffset, 1, "flags"),
            (SuperblockFormat.MemberNodeRegionShiftOffset, 1, "node_region_shift"),
            (SuperblockFormat.MemberReservedOffset, 5, "reserved"),
            (SuperblockFormat.MemberNodeRegionMapOffset, 8, "node_region_map"),
        };
        Assert.Equal(expected, Table("Member entry"));
        AssertContiguous(expected, SuperblockFormat.MemberEntrySize);
    }

    [Fact]
    public void Section_tables_match_the_constants()
    {
        Assert.Equal([(0, 4, "bytes"), (4, 4, "type")], Table("### Sections"));
        Assert.Equal(8, SuperblockFormat.SectionHeaderSize);
        Assert.Equal([(0, 1, "btree"), (1, 1, "level"), (2, 2, "value_bytes"), (4, 4, "reserved"), (8, -1, "value")], Table("Root entry"));
        Assert.Equal(8, SuperblockFormat.RootEntryHeaderSize);
        Assert.Equal([(0, 2, "id"), (2, 6, "reserved"), (8, 8, "count"), (16, 8, "last_time")], Table("Counter entry"));
        Assert.Equal(24, SuperblockFormat.ErrorEntrySize);
        Assert.Equal([(0, 8, "last_mount"), (8, 8, "last_unmount"), (16, 8, "journal_seq"), (24, 8, "reserved")], Table("#### clean"));
        Assert.Equal(32, SuperblockFormat.CleanPayloadSize);
        Assert.Equal([(0, 4, "copy_count"), (4, 4, "copy_size"), (8, -1, "offsets")], Table("#### layout"));
        Assert.Equal([(0, 4, "count"), (4, 4, "reserved"), (8, -1, "ranges")], Table("#### journal ("));
        Assert.Equal([(0, 4, "count"), (4, 4, "reserved"), (8, -1, "ranges")], Table("#### journal_blacklist"));
        Assert.Equal(8, SuperblockFormat.BlacklistHeaderSize);
        Assert.Equal(16, SuperblockFormat.BlacklistRangeSize);
        Assert.Equal([(0, 4, "count"), (4, 4, "reserved"), (8, -1, "checksums")], Table("#### previous_sectors"));
        Assert.Equal(8, SuperblockFormat.PreviousSectorsHeaderSize);
        Assert.Equal(4, SuperblockFormat.PreviousSectorEntrySize);
        Assert.Equal(128, SuperblockFormat.MaxPreviousSectors);

        Assert.Equal(1u, (uint)SectionType.Members);
        Assert.Equal(2u, (uint)SectionType.Journal);
        Assert.Equal(3u, (uint)SectionType.BtreeRoots);
        Assert.Equal(4u, (uint)SectionType.Clean);
        Assert.Equal(5u, (uint)SectionType.ErrorCounters);
        Assert.Equal(6u, (uint)SectionType.Layout);
        Assert.Equal(7u, (uint)SectionType.JournalBlacklist);
        Assert.Equal(8u, (uint)SectionType.PreviousSectors);
        Assert.Equal(1UL, (ulong)SuperblockFlags.Clean);
        Assert.Equal(2UL, (ulong)SuperblockFlags.HasErrors);
        Assert.Equal(4UL, (ulong)SuperblockFlags.HasTopologyErrors);
    }

    [Fact]
    public void The_section_type_table_lists_every_section_type()
    {
        var lines = File.ReadAllLines(DocPath());
        var i = Array.FindIndex(lines, l => l.StartsWith("| type | name | required | content |", StringComparison.Ordinal));
        Assert.True(i >= 0, "section type table not found");
        var rows = new List<(uint, string)>();
        for (i += 2; i < lines.Length && lines[i].StartsWith('|'); i++)
        {
            var cells = lines[i].Split('|', StringSplitOptions.TrimEntries);
            rows.Add((uint.Parse(cells[1], CultureInfo.InvariantCulture), cells[2]));
        }
        var expected = new (SectionType Type, string Name)[]
        {
            (SectionType.Members, "members"), (SectionType.Journal, "journal"), (SectionType.BtreeRoots, "btree_roots"),
            (SectionType.Clean, "clean"), (SectionType.ErrorCounters, "error_counters"), (SectionType.Layout, "layout"),
            (SectionType.JournalBlacklist, "journal_blacklist"), (SectionType.PreviousSectors, "previous_sectors"),
        };
        Assert.Equal(Enum.GetValues<SectionType>().Length, expected.Length);
        Assert.Equal(expected.Select(e => ((uint)e.Type, e.Name)), rows);
        foreach (var (type, name) in expected)
            Assert.Contains($"#### {name} (type {(uint)type})", lines);
    }

    [Fact]
    public void Copy_locations_and_magic_are_as_documented()
    {
        Assert.Equal(65536, SuperblockFormat.CopySize);
        Assert.Equal(4096, SuperblockFormat.FirstCopyOffset);
        Assert.Equal(69632, SuperblockFormat.SecondCopyOffset);
        Assert.Equal(135168, SuperblockFormat.StartAreaEnd);
        Assert.Equal("BASALT SUPERBLK\0", Encoding.ASCII.GetString(SuperblockFormat.Magic));
        var doc = File.ReadAllText(DocPath());
        Assert.Contains("`BASALT SUPERBLK` followed by one NUL byte", doc, StringComparison.Ordinal);
        Assert.Contains("0x45444F4E544C5342", doc, StringComparison.Ordinal);
    }

    [Fact]
    public void Encoder_writes_fields_at_the_documented_offsets()
    {
        var (device, sb) = FormatSmall();
        var c = Copy(device, 4096);
        Assert.True(c.Slice(8, 16).SequenceEqual(SuperblockFormat.Magic));
        Assert.Equal(1, c[24]);
        Assert.Equal(1, c[25]);
        Assert.Equal(FormatVersion.Current, BinaryPrimitives.ReadUInt16LittleEndian(c[26..]));
        Assert.Equal(FormatVersion.Min, BinaryPrimitives.ReadUInt16LittleEndian(c[28..]));
        Assert.Equal(0, c[30]);
        Assert.Equal((uint)SuperblockCodec.EncodedSize(sb), BinaryPrimitives.ReadUInt32LittleEndian(c[32..]));
        Assert.Equal(new byte[] { 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78 }, c.Slice(40, 8).ToArray());
        Assert.False(c.Slice(56, 16).ContainsAnyExcept((byte)0));
        Assert.Equal("test", Encoding.UTF8.GetString(c.Slice(72, 4)));
        Assert.False(c.Slice(76, 28).ContainsAnyExcept((byte)0));
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(c[104..]));
        Assert.Equal(4096UL, BinaryPrimitives.ReadUInt64LittleEndian(c[112..]));
        Assert.Equal((FormatTime - DateTimeOffset.UnixEpoch).Ticks * 100, BinaryPrimitives.ReadInt64LittleEndian(c[120..]));
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(c[128..]));
        Assert.Equal(512u, BinaryPrimitives.ReadUInt32LittleEndian(c[152..]));
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32LittleEndian(c[156..]));
        Assert.Equal((ulong)SmallDeviceSize, BinaryPrimitives.ReadUInt64LittleEndian(c[160..]));
        Assert.False(c.Slice(168, 88).ContainsAnyExcept((byte)0));
        Assert.Equal(Crc32C.Compute(c[8..(int)BinaryPrimitives.ReadUInt32LittleEndian(c[32..])]), BinaryPrimitives.ReadUInt64LittleEndian(c));

        // First section: previous_sectors, empty after format (it replaced nothing).
        Assert.Equal(8u + 8, BinaryPrimitives.ReadUInt32LittleEndian(c[256..]));
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(c[260..]));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(c[264..]));

        // Then members, one 64-byte entry.
        Assert.Equal(8u + 8 + 64, BinaryPrimitives.ReadUInt32LittleEndian(c[272..]));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(c[276..]));
        var m = c[(272 + 16)..];
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(c[280..]));
        Assert.Equal(64u, BinaryPrimitives.ReadUInt32LittleEndian(c[284..]));
        Assert.Equal(new byte[] { 0x11, 0x11, 0x11, 0x11, 0x22, 0x22 }, m[..6].ToArray());
        Assert.Equal(sb.Member.Nbuckets, BinaryPrimitives.ReadUInt64LittleEndian(m[16..]));
        Assert.Equal(16384u, BinaryPrimitives.ReadUInt32LittleEndian(m[24..]));
        Assert.Equal(9u, BinaryPrimitives.ReadUInt32LittleEndian(m[28..]));
        Assert.Equal(sb.NodeArea.Start, BinaryPrimitives.ReadUInt64LittleEndian(m[32..]));
        Assert.Equal(sb.NodeArea.Count, BinaryPrimitives.ReadUInt64LittleEndian(m[40..]));
    }

    [Fact]
    public void A_write_records_the_sector_checksums_of_the_copy_it_replaced_as_documented()
    {
        var (device, sb) = FormatSmall();
        var before = Copy(device, 69632).ToArray();
        var total = (int)BinaryPrimitives.ReadUInt32LittleEndian(before.AsSpan(32));
        SuperblockIo.Write(device, sb with { Label = "next" }, FormatTime.AddSeconds(1));
        var c = Copy(device, 4096);

        // crc32c of each 512-byte sector of the old copy, sector 0 with csum (0..8) and offset (112..120) zeroed.
        var sectors = (total + 511) / 512;
        var old = before.AsSpan(0, sectors * 512).ToArray();
        old.AsSpan(0, 8).Clear();
        old.AsSpan(112, 8).Clear();
        Assert.Equal(8u + 8 + Pad8(4 * sectors), BinaryPrimitives.ReadUInt32LittleEndian(c[256..]));
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(c[260..]));
        Assert.Equal((uint)sectors, BinaryPrimitives.ReadUInt32LittleEndian(c[264..]));
        for (var k = 0; k < sectors; k++)
            Assert.Equal(Crc32C.Compute(old.AsSpan(k * 512, 512)), BinaryPrimitives.ReadUInt32LittleEndian(c[(272 + (4 * k))..]));
        Assert.False(c.Slice(272 + (4 * sectors), (int)Pad8(4 * sectors) - (4 * sectors)).ContainsAnyExcept((byte)0));   // padding
        Assert.Equal(SuperblockIo.Read(device).Superblock.PreviousSectors, SuperblockCodec.SectorChecksums(before.AsSpan(0, total)));
    }

    private static uint Pad8(int n) => (uint)((n + 7) & ~7);

    private static void AssertContiguous((int Offset, int Size, string Field)[] rows, int total)
    {
        var at = 0;
        foreach (var (offset, size, field) in rows)
        {
            Assert.True(offset == at, $"{field} at {offset}, expected {at}");
            at += size;
        }
        Assert.Equal(total, at);
    }
}
