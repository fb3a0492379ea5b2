// One test per read check: build a valid node, corrupt exactly one field (located through the
// inspector's field tables), recompute the checksum when the check runs after it, read, and
// assert the finding's id and class and what survived.
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Format;
using static Basalt.Tests.Btree.Node.TestNode;

namespace Basalt.Tests.Btree.Node;

public sealed class NodeValidationTests
{
    private static readonly Bpos s_min = P(10);
    private static readonly Bpos s_max = P(500);

    // Three records: [20 30 40 50] [60 70] [80 90].
    private static TestNode Standard(int blockSize = 512) =>
        new TestNode(BtreeId.Test, 0, s_min, s_max, blockSize: blockSize)
            .Write(Cookies("a", 20, 30, 40, 50))
            .Write(Cookies("b", 60, 70))
            .Write(Cookies("c", 80, 90));

    private static NodeFinding AssertOnly(NodeReadResult result, FsckErrorId id, NodeErrorClass readClass)
    {
        var finding = Assert.Single(result.Findings);
        Assert.Equal(id, finding.Id);
        Assert.Equal(readClass, finding.Class);
        Assert.Equal(FsckCatalogue.Get(id).ReadClass, finding.Class);
        Assert.True(result.NeedsRewrite);
        return finding;
    }

    private static void AssertFixedTo(NodeReadResult result, params ulong[] inodes)
    {
        Assert.True(result.Ok, result.ToText());
        Assert.Null(result.FailureClass);
        Assert.Equal(inodes, Inodes(result.Keys));
    }

    private static void AssertFailed(NodeReadResult result, NodeErrorClass failure)
    {
        Assert.False(result.Ok);
        Assert.Equal(failure, result.FailureClass);
        Assert.Equal(0, result.Keys.Count);
    }

    // ---- node identity and header ----

    [Fact]
    public void Bad_magic_must_retry_and_is_a_bad_node_without_a_replica()
    {
        var node = Standard();
        node.Slot[NodeField("magic")] ^= 0x01;

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BtreeNodeBadMagic, NodeErrorClass.MustRetry);
        AssertFailed(result, NodeErrorClass.BadNode);
        AssertFailed(node.Read(haveRetry: true), NodeErrorClass.MustRetry);
    }

    [Fact]
    public void Zeroed_slot_is_bad_magic_not_an_empty_node()
    {
        var node = new TestNode(BtreeId.Test, 0, s_min, s_max);
        node.Write(Cookies("a", 20));
        Array.Clear(node.Slot);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BtreeNodeBadMagic, NodeErrorClass.MustRetry);
        AssertFailed(result, NodeErrorClass.BadNode);
    }

    [Fact]
    public void Node_seq_other_than_the_pointers_is_the_wrong_node()
    {
        var node = Standard();
        WriteU64(node.Slot, NodeField("seq"), 0x1234);
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BtreeNodeBadSeq, NodeErrorClass.MustRetry);
        AssertFailed(result, NodeErrorClass.BadNode);
    }

    [Fact]
    public void First_bset_seq_other_than_the_node_seq_is_bad_seq()
    {
        var node = Standard();
        WriteU64(node.Slot, node.BsetField(0, "seq"), 0x1234);
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BtreeNodeBadSeq, NodeErrorClass.MustRetry);
        AssertFailed(result, NodeErrorClass.BadNode);
    }

    [Theory]
    [InlineData("btree_id", (byte)BtreeId.Inodes, FsckErrorId.BtreeNodeBadBtree)]
    [InlineData("level", 1, FsckErrorId.BtreeNodeBadLevel)]
    public void Header_naming_another_btree_or_level_must_retry(string field, byte value, FsckErrorId expected)
    {
        var node = Standard();
        node.Slot[NodeField(field)] = value;
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, expected, NodeErrorClass.MustRetry);
        AssertFailed(result, NodeErrorClass.BadNode);
        AssertFailed(node.Read(haveRetry: true), NodeErrorClass.MustRetry);
    }

    [Theory]
    [InlineData("min_key", 11UL, FsckErrorId.BtreeNodeBadMinKey)]
    [InlineData("max_key", 499UL, FsckErrorId.BtreeNodeBadMaxKey)]
    public void Header_range_other_than_the_pointers_must_retry(string field, ulong inode, FsckErrorId expected)
    {
        var node = Standard();
        P(inode).Write(node.Slot.AsSpan(NodeField(field)));
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, expected, NodeErrorClass.MustRetry);
        AssertFailed(result, NodeErrorClass.BadNode);
    }

    [Fact]
    public void Range_updated_pointer_is_trusted_and_keys_outside_it_are_dropped()
    {
        var node = Standard();
        var context = node.Context(flags: BtreePtrFlags.RangeUpdated, min: P(35), max: P(75));

        var result = BtreeNodeReader.Read(node.Slot, context);

        Assert.Empty(result.Findings);
        AssertFixedTo(result, 40, 50, 60, 70);
        Assert.Equal(P(35), result.Header.MinKey);
        Assert.Equal(P(75), result.Header.MaxKey);
        Assert.True(result.NeedsRewrite);
    }

    [Theory]
    [InlineData("flags", 1)]
    [InlineData("reserved", 1)]
    [InlineData("level", 9)]
    public void Malformed_header_is_a_bad_node(string field, byte value)
    {
        var node = Standard();
        node.Slot[NodeField(field)] = value;
        node.FixChecksum(0);

        var result = node.Read(haveRetry: true);

        AssertOnly(result, FsckErrorId.BtreeNodeBadHeader, NodeErrorClass.BadNode);
        AssertFailed(result, NodeErrorClass.BadNode);
    }

    [Fact]
    public void Min_key_after_max_key_is_a_bad_header()
    {
        var node = Standard();
        P(600).Write(node.Slot.AsSpan(NodeField("min_key")));
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BtreeNodeBadHeader, NodeErrorClass.BadNode);
        AssertFailed(result, NodeErrorClass.BadNode);
    }

    // ---- records ----

    [Fact]
    public void Unknown_checksum_type_drops_the_bset_and_the_rest_without_a_replica()
    {
        var node = Standard();
        node.Slot[node.BsetField(1, "csum_type")] = 9;

        var result = node.Read();

        var finding = AssertOnly(result, FsckErrorId.BsetUnknownChecksum, NodeErrorClass.WantRetry);
        Assert.Equal(node.RecordOffsets[1] / 512, finding.SectorOffset);
        AssertFixedTo(result, 20, 30, 40, 50);
        AssertFailed(node.Read(haveRetry: true), NodeErrorClass.WantRetry);
    }

    [Fact]
    public void Bad_checksum_wants_a_retry_and_without_one_keeps_what_validated()
    {
        var node = Standard();
        var value70 = BtreeNodeInspector.Describe(node.Slot, node.RecordOffsets[1]).Keys[1].Offset + 32;
        node.Slot[value70] ^= 0x40;

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BsetBadChecksum, NodeErrorClass.WantRetry);
        AssertFixedTo(result, 20, 30, 40, 50);
        AssertFailed(node.Read(haveRetry: true), NodeErrorClass.WantRetry);
    }

    [Fact]
    public void Bad_checksum_of_the_first_record_leaves_an_empty_node_described_by_its_pointer()
    {
        var node = Standard();
        node.Slot[node.KeyField(0, 0, "size")] ^= 1;

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BsetBadChecksum, NodeErrorClass.WantRetry);
        AssertFixedTo(result);
        Assert.Equal(s_min, result.Header.MinKey);
        Assert.Equal(s_max, result.Header.MaxKey);
    }

    [Fact]
    public void Bset_version_above_this_build_is_incompatible()
    {
        var node = Standard();
        WriteU16(node.Slot, node.BsetField(1, "version"), FormatVersion.Current + 1);
        node.FixChecksum(1);

        var result = node.Read(haveRetry: true);

        AssertOnly(result, FsckErrorId.BtreeNodeUnsupportedVersion, NodeErrorClass.Incompatible);
        AssertFailed(result, NodeErrorClass.Incompatible);
    }

    [Theory]
    [InlineData("flags")]
    [InlineData("reserved1")]
    [InlineData("reserved2")]
    public void Bset_flags_or_reserved_fields_unknown_to_this_version_are_incompatible(string field)
    {
        var node = Standard();
        node.Slot[node.BsetField(2, field)] = 1;
        node.FixChecksum(2);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BtreeNodeUnsupportedVersion, NodeErrorClass.Incompatible);
        AssertFailed(result, NodeErrorClass.Incompatible);
    }

    [Fact]
    public void Bset_older_than_the_superblock_version_min_is_fixable_and_keeps_its_keys()
    {
        var node = Standard();
        var context = node.Context() with { Version = 2, VersionMin = 2 };

        var result = BtreeNodeReader.Read(node.Slot, context);

        Assert.Equal(3, result.Findings.Count);
        Assert.All(result.Findings, f => Assert.Equal(FsckErrorId.BtreeNodeBsetOlderThanSbMin, f.Id));
        Assert.All(result.Findings, f => Assert.Equal(NodeErrorClass.Fixable, f.Class));
        AssertFixedTo(result, 20, 30, 40, 50, 60, 70, 80, 90);
        Assert.True(result.NeedsRewrite);
    }

    [Fact]
    public void Record_running_past_sectors_written_is_treated_as_empty()
    {
        var node = Standard(blockSize: 1024);
        var context = node.Context(sectorsWritten: (ushort)((node.Written / 512) - 1));

        var result = BtreeNodeReader.Read(node.Slot, context);

        var finding = AssertOnly(result, FsckErrorId.BsetPastEndOfBtreeNode, NodeErrorClass.Fixable);
        Assert.Equal(node.RecordOffsets[2] / 512, finding.SectorOffset);
        AssertFixedTo(result, 20, 30, 40, 50, 60, 70);
    }

    [Fact]
    public void A_first_record_claiming_past_sectors_written_makes_the_node_unreadable()
    {
        // A grown u64s with its checksum recomputed over the longer span: an append at the written
        // end would land inside that span and break the checksum, so the node cannot be kept.
        var node = new TestNode(BtreeId.Test, 0, s_min, s_max).Write(Cookies("a", 20, 30, 40, 50));
        var written = (ushort)(node.Written / 512);
        WriteU32(node.Slot, node.BsetField(0, "u64s"), 200);
        node.FixChecksum(0);

        var result = BtreeNodeReader.Read(node.Slot, node.Context(sectorsWritten: written));

        var finding = AssertOnly(result, FsckErrorId.BtreeNodeBadHeader, NodeErrorClass.BadNode);
        Assert.Contains("runs past the written end", finding.Detail, StringComparison.Ordinal);
        AssertFailed(result, NodeErrorClass.BadNode);
    }

    [Fact]
    public void A_first_record_longer_than_the_node_makes_the_node_unreadable()
    {
        var node = Standard();
        WriteU32(node.Slot, node.BsetField(0, "u64s"), 0x00FF_FFFF);

        var result = node.Read();

        var finding = AssertOnly(result, FsckErrorId.BtreeNodeBadHeader, NodeErrorClass.BadNode);
        Assert.Contains("runs past the end of the node", finding.Detail, StringComparison.Ordinal);
        AssertFailed(result, NodeErrorClass.BadNode);
    }

    [Fact]
    public void Record_length_past_the_node_end_drops_the_bset_and_the_rest()
    {
        var node = Standard();
        WriteU32(node.Slot, node.BsetField(1, "u64s"), 0x00FF_FFFF);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BsetPastEndOfBtreeNode, NodeErrorClass.Fixable);
        AssertFixedTo(result, 20, 30, 40, 50);
    }

    [Fact]
    public void Record_at_the_wrong_sector_offset_is_dropped_without_a_replica()
    {
        var node = Standard();
        WriteU16(node.Slot, node.BsetField(1, "offset"), (ushort)((node.RecordOffsets[1] / 512) + 1));
        node.FixChecksum(1);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BsetWrongSectorOffset, NodeErrorClass.WantRetry);
        AssertFixedTo(result, 20, 30, 40, 50, 80, 90);
        AssertFailed(node.Read(haveRetry: true), NodeErrorClass.WantRetry);
    }

    [Fact]
    public void Empty_bset_after_the_first_is_fixable()
    {
        var node = new TestNode(BtreeId.Test, 0, s_min, s_max)
            .Write(Cookies("a", 20, 30))
            .Write(KeyRun.Empty)
            .Write(Cookies("c", 40));

        var result = node.Read();

        var finding = AssertOnly(result, FsckErrorId.BsetEmpty, NodeErrorClass.Fixable);
        Assert.Equal(node.RecordOffsets[1] / 512, finding.SectorOffset);
        AssertFixedTo(result, 20, 30, 40);
        Assert.Equal(3, result.BsetCount);
    }

    [Fact]
    public void Empty_first_bset_is_a_valid_empty_node()
    {
        var node = new TestNode(BtreeId.Test, 0, s_min, s_max).Write(KeyRun.Empty);

        var result = node.Read();

        Assert.Empty(result.Findings);
        AssertFixedTo(result);
    }

    // ---- keys ----

    [Fact]
    public void Key_running_past_the_bset_end_truncates_the_bset()
    {
        var node = Standard();
        var at = node.KeyField(0, 3, "u64s");
        WriteU16(node.Slot, at, (ushort)(node.Slot[at] + 1));
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BtreeNodeBkeyPastBsetEnd, NodeErrorClass.Fixable);
        AssertFixedTo(result, 20, 30, 40, 60, 70, 80, 90);
    }

    [Fact]
    public void Bset_ending_in_a_partial_key_header_is_truncated_there()
    {
        var node = Standard();
        var at = node.BsetField(1, "u64s");
        WriteU32(node.Slot, at, System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(node.Slot.AsSpan(at)) + 1);
        node.FixChecksum(1);

        var result = node.Read();

        var finding = AssertOnly(result, FsckErrorId.BtreeNodeBkeyPastBsetEnd, NodeErrorClass.Fixable);
        Assert.Equal(node.RecordOffsets[1] / 512, finding.SectorOffset);
        AssertFixedTo(result, 20, 30, 40, 50, 60, 70, 80, 90);
    }

    [Theory]
    [InlineData("value_pad", 8)]
    [InlineData("reserved", 1)]
    public void Key_with_a_bad_format_is_dropped_alone(string field, byte value)
    {
        var node = Standard();
        node.Slot[node.KeyField(0, 1, field)] = value;
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BtreeNodeBkeyBadFormat, NodeErrorClass.Fixable);
        AssertFixedTo(result, 20, 40, 50, 60, 70, 80, 90);
    }

    [Fact]
    public void Key_shorter_than_its_header_drops_the_rest_of_the_bset()
    {
        var node = Standard();
        WriteU16(node.Slot, node.KeyField(0, 1, "u64s"), 2);
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BtreeNodeBkeyBadU64s, NodeErrorClass.Fixable);
        AssertFixedTo(result, 20, 60, 70, 80, 90);
    }

    [Fact]
    public void Key_out_of_order_is_dropped()
    {
        var node = Standard();
        WriteU64(node.Slot, node.KeyField(0, 2, "pos.inode"), 25);
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BtreeNodeBkeyOutOfOrder, NodeErrorClass.Fixable);
        AssertFixedTo(result, 20, 30, 50, 60, 70, 80, 90);
    }

    [Fact]
    public void Second_key_at_the_same_position_is_dropped_and_the_first_kept()
    {
        var node = Standard();
        WriteU64(node.Slot, node.KeyField(0, 2, "pos.inode"), 30);
        node.FixChecksum(0);

        var result = node.Read();

        var finding = AssertOnly(result, FsckErrorId.BtreeNodeBkeyOutOfOrder, NodeErrorClass.Fixable);
        Assert.Contains("same position as the key before it", finding.Detail, StringComparison.Ordinal);
        AssertFixedTo(result, 20, 30, 50, 60, 70, 80, 90);
        Assert.Equal("a:30", Contents(result.Keys)[30]);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void Key_with_a_nonzero_value_padding_byte_is_dropped(int paddingByte)
    {
        // Cookie values "a:30" are 4 bytes: value_pad 4, padding at value bytes 4..7.
        var node = Standard();
        var key = BtreeNodeInspector.Describe(node.Slot, node.RecordOffsets[0]).Keys[1];
        Assert.Equal(4, node.Slot[key.Offset + BkeyFormat.ValuePadOffset]);
        node.Slot[key.Offset + BkeyFormat.HeaderSize + 4 + paddingByte] = 0x5a;
        node.FixChecksum(0);

        var result = node.Read();

        var finding = AssertOnly(result, FsckErrorId.BtreeNodeBkeyBadFormat, NodeErrorClass.Fixable);
        Assert.Contains($"value padding byte {paddingByte} of 4 is 5a", finding.Detail, StringComparison.Ordinal);
        AssertFixedTo(result, 20, 40, 50, 60, 70, 80, 90);
    }

    [Theory]
    [InlineData((byte)KeyType.Extent)]
    [InlineData((byte)200)]
    public void Key_of_a_type_the_btree_does_not_allow_is_dropped(byte type)
    {
        var node = Standard();
        node.Slot[node.KeyField(1, 0, "type")] = type;
        node.FixChecksum(1);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BkeyInvalidTypeForBtree, NodeErrorClass.Fixable);
        AssertFixedTo(result, 20, 30, 40, 50, 70, 80, 90);
    }

    [Fact]
    public void Key_before_the_node_min_is_dropped()
    {
        var node = Standard();
        WriteU64(node.Slot, node.KeyField(0, 0, "pos.inode"), 5);
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BkeyBeforeStartOfBtreeNode, NodeErrorClass.Fixable);
        AssertFixedTo(result, 30, 40, 50, 60, 70, 80, 90);
    }

    [Fact]
    public void Key_after_the_node_max_is_dropped()
    {
        var node = Standard();
        WriteU64(node.Slot, node.KeyField(2, 1, "pos.inode"), 600);
        node.FixChecksum(2);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BkeyAfterEndOfBtreeNode, NodeErrorClass.Fixable);
        AssertFixedTo(result, 20, 30, 40, 50, 60, 70, 80);
    }

    [Fact]
    public void Key_with_a_snapshot_in_a_btree_without_snapshots_is_dropped()
    {
        var node = Standard();
        WriteU32(node.Slot, node.KeyField(0, 1, "pos.snapshot"), 1);
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BkeyBadSnapshot, NodeErrorClass.Fixable);
        AssertFixedTo(result, 20, 40, 50, 60, 70, 80, 90);
    }

    [Fact]
    public void Non_extent_key_with_a_size_is_dropped()
    {
        var node = Standard();
        WriteU32(node.Slot, node.KeyField(0, 1, "size"), 8);
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BkeyBadSize, NodeErrorClass.Fixable);
        AssertFixedTo(result, 20, 40, 50, 60, 70, 80, 90);
    }

    [Fact]
    public void Key_at_pos_max_is_dropped()
    {
        Basalt.Fs.FsKeyTypes.Register();
        var inode = new Basalt.Fs.InodeValue { Mode = 0x81A4 }.ToBytes();
        var builder = new KeyRunBuilder();
        builder.Add(new Bkey(new Bpos(0, 5, uint.MaxValue), KeyType.Inode), inode);
        builder.Add(new Bkey(new Bpos(0, 6, uint.MaxValue), KeyType.Inode), inode);
        var node = new TestNode(BtreeId.Inodes, 0, Bpos.Min, Bpos.Max).Write(builder.Build());
        Bpos.Max.Write(node.Slot.AsSpan(node.KeyField(0, 1, "pos")));
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BkeyAtPosMax, NodeErrorClass.Fixable);
        Assert.True(result.Ok);
        Assert.Equal(new Bpos(0, 5, uint.MaxValue), Assert.Single(result.Keys.Entries.ToArray()).Key.Pos);
    }

    [Fact]
    public void Child_pointer_with_an_invalid_value_is_dropped()
    {
        var child = new BtreePtrValue { Seq = 7, SectorsWritten = 1, MinKey = s_min, Ptrs = [new DevicePtr(0, 64, 0)] };
        var builder = new KeyRunBuilder();
        builder.Add(new Bkey(P(100), KeyType.BtreePtr), child.ToBytes());
        builder.Add(new Bkey(P(200), KeyType.BtreePtr), child.With(minKey: P(100).Successor()).ToBytes());
        builder.Add(new Bkey(s_max, KeyType.BtreePtr), child.With(minKey: P(200).Successor()).ToBytes());
        var node = new TestNode(BtreeId.Test, 1, s_min, s_max).Write(builder.Build());
        var value = BtreeNodeInspector.Describe(node.Slot, 0).Keys[1].Offset + BkeyFormat.HeaderSize;
        WriteU16(node.Slot, value + BtreePtrValue.SectorsWrittenOffset, 0);
        node.FixChecksum(0);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BkeyValueInvalid, NodeErrorClass.Fixable);
        AssertFixedTo(result, 100, 500);
    }

    [Fact]
    public void Deletion_marker_with_a_value_is_dropped()
    {
        var node = Standard();
        node.Slot[node.KeyField(1, 1, "type")] = (byte)KeyType.Deleted;
        node.FixChecksum(1);

        var result = node.Read();

        AssertOnly(result, FsckErrorId.BkeyValueInvalid, NodeErrorClass.Fixable);
        AssertFixedTo(result, 20, 30, 40, 50, 60, 80, 90);
    }

    // ---- after the walk ----

    [Fact]
    public void Fewer_sectors_than_sectors_written_is_data_missing()
    {
        var node = Standard();
        var context = node.Context(sectorsWritten: (ushort)((node.Written / 512) + 2));

        var result = BtreeNodeReader.Read(node.Slot, context);

        var finding = AssertOnly(result, FsckErrorId.BtreeNodeDataMissing, NodeErrorClass.WantRetry);
        Assert.Equal(node.Written / 512, finding.SectorOffset);
        AssertFixedTo(result, 20, 30, 40, 50, 60, 70, 80, 90);
        AssertFailed(BtreeNodeReader.Read(node.Slot, context with { HaveRetry = true }), NodeErrorClass.WantRetry);
    }

    [Fact]
    public void Record_found_after_a_gap_inside_sectors_written_is_bset_after_end()
    {
        var node = Standard();
        WriteU64(node.Slot, node.BsetField(1, "seq"), 0xdead);   // the middle append went missing
        node.FixChecksum(1);

        var result = node.Read();

        Assert.Equal([FsckErrorId.BtreeNodeDataMissing, FsckErrorId.BtreeNodeBsetAfterEnd], result.Findings.Select(f => f.Id));
        Assert.All(result.Findings, f => Assert.Equal(NodeErrorClass.WantRetry, f.Class));
        Assert.Equal(node.RecordOffsets[2] / 512, result.Findings[1].SectorOffset);
        AssertFixedTo(result, 20, 30, 40, 50);
        Assert.Equal(node.RecordOffsets[1] / 512, result.SectorsFound);
    }

    [Fact]
    public void Without_sectors_written_the_walk_ends_at_the_first_foreign_record_and_a_later_one_is_a_gap()
    {
        var node = Standard();
        var unknown = node.Context(sectorsWritten: 0);

        var clean = BtreeNodeReader.Read(node.Slot, unknown);

        Assert.Empty(clean.Findings);
        AssertFixedTo(clean, 20, 30, 40, 50, 60, 70, 80, 90);
        Assert.Equal(node.Written / 512, clean.SectorsFound);

        WriteU64(node.Slot, node.BsetField(1, "seq"), 0xdead);
        node.FixChecksum(1);
        var gap = BtreeNodeReader.Read(node.Slot, unknown);

        var finding = AssertOnly(gap, FsckErrorId.BtreeNodeBsetAfterEnd, NodeErrorClass.WantRetry);
        Assert.Equal(node.RecordOffsets[2] / 512, finding.SectorOffset);
        AssertFixedTo(gap, 20, 30, 40, 50);
    }

    [Fact]
    public void Short_slot_is_data_missing_and_a_slot_without_room_for_a_header_is_a_bad_node()
    {
        var node = Standard();

        var result = BtreeNodeReader.Read(node.Slot.AsSpan(0, node.RecordOffsets[2]), node.Context());

        AssertOnly(result, FsckErrorId.BtreeNodeDataMissing, NodeErrorClass.WantRetry);
        AssertFixedTo(result, 20, 30, 40, 50, 60, 70);

        var tiny = BtreeNodeReader.Read(node.Slot.AsSpan(0, 100), node.Context());
        AssertOnly(tiny, FsckErrorId.BtreeNodeBadHeader, NodeErrorClass.BadNode);
        AssertFailed(tiny, NodeErrorClass.BadNode);
    }

    [Fact]
    public void Records_beyond_sectors_written_are_ignored_and_counted_not_reported()
    {
        var node = Standard().Write(Deletions(20));
        var context = node.Context(sectorsWritten: (ushort)(node.RecordOffsets[2] / 512));

        var result = BtreeNodeReader.Read(node.Slot, context);

        Assert.Empty(result.Findings);
        Assert.False(result.NeedsRewrite);
        AssertFixedTo(result, 20, 30, 40, 50, 60, 70);
        Assert.Equal(2, result.IgnoredBsetsBeyondWritten);
        Assert.Equal(2, result.BsetCount);
        Assert.Equal(node.RecordOffsets[2] / 512, result.SectorsFound);
    }
}
