// Pins the node layout (docs/format.md, section "Btree nodes on disk") byte by byte, and the inspector's view of it.
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Format;
using static Basalt.Tests.Btree.Node.TestNode;

namespace Basalt.Tests.Btree.Node;

public sealed class NodeFormatTests
{
    [Fact]
    public void Layout_constants_match_the_documented_offsets()
    {
        Assert.Equal(80, BtreeNodeFormat.NodeHeaderSize);
        Assert.Equal(32, BtreeNodeFormat.BsetHeaderSize);
        Assert.Equal(80, BtreeNodeFormat.FirstBsetOffset);
        Assert.Equal(112, BtreeNodeFormat.FirstKeysOffset);
        Assert.Equal(8, BtreeNodeFormat.EntryBsetOffset);
        Assert.Equal(40, BtreeNodeFormat.EntryKeysOffset);
        Assert.Equal(8, BtreeNodeFormat.ChecksumStart);

        Assert.Equal(
            [("csum", 0, 8), ("magic", 8, 8), ("seq", 16, 8), ("btree_id", 24, 1), ("level", 25, 1), ("flags", 26, 2),
             ("generation", 28, 4), ("min_key", 32, 20), ("max_key", 52, 20), ("reserved", 72, 8)],
            BtreeNodeInspector.NodeHeaderFields.Select(f => (f.Name, f.Offset, f.Size)));
        Assert.Equal(
            [("seq", 0, 8), ("journal_seq", 8, 8), ("version", 16, 2), ("csum_type", 18, 1), ("flags", 19, 1),
             ("offset", 20, 2), ("reserved1", 22, 2), ("u64s", 24, 4), ("reserved2", 28, 4)],
            BtreeNodeInspector.BsetHeaderFields.Select(f => (f.Name, f.Offset, f.Size)));
        Assert.Equal(
            [("u64s", 0, 2), ("type", 2, 1), ("value_pad", 3, 1), ("size", 4, 4), ("pos", 8, 20), ("pos.inode", 8, 8),
             ("pos.offset", 16, 8), ("pos.snapshot", 24, 4), ("reserved", 28, 4)],
            BtreeNodeInspector.KeyHeaderFields.Select(f => (f.Name, f.Offset, f.Size)));
    }

    [Fact]
    public void Written_bytes_sit_at_the_documented_offsets()
    {
        var header = new NodeHeader(0x1122334455667788UL, 3, BtreeId.Test, 0, P(1, 2), P(9, 10));
        var options = new BsetWriteOptions(512, ChecksumType.Crc32C, FormatVersion.Current, JournalSeq: 99);
        var slot = new byte[4096];
        var written = BtreeNodeWriter.WriteFirst(slot, Magic, header, Cookies("x", 5), options);
        var record2 = BtreeNodeWriter.WriteAppend(slot.AsSpan(written), header.Seq, written / 512, Cookies("y", 6), options);

        Assert.Equal(Magic, BinaryPrimitives.ReadUInt64LittleEndian(slot.AsSpan(8)));
        Assert.Equal(header.Seq, BinaryPrimitives.ReadUInt64LittleEndian(slot.AsSpan(16)));
        Assert.Equal((byte)BtreeId.Test, slot[24]);
        Assert.Equal(0, slot[25]);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(slot.AsSpan(28)));
        Assert.Equal(P(1, 2), Bpos.Read(slot.AsSpan(32)));
        Assert.Equal(P(9, 10), Bpos.Read(slot.AsSpan(52)));
        // First bset header at 80.
        Assert.Equal(header.Seq, BinaryPrimitives.ReadUInt64LittleEndian(slot.AsSpan(80)));
        Assert.Equal(99UL, BinaryPrimitives.ReadUInt64LittleEndian(slot.AsSpan(88)));
        Assert.Equal(FormatVersion.Current, BinaryPrimitives.ReadUInt16LittleEndian(slot.AsSpan(96)));
        Assert.Equal((byte)ChecksumType.Crc32C, slot[98]);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(slot.AsSpan(100)));
        var u64s = BinaryPrimitives.ReadUInt32LittleEndian(slot.AsSpan(104));
        Assert.Equal((uint)(BkeyFormat.EncodedSize(3) / 8), u64s);
        // First key at 112.
        Assert.Equal(P(5), Bpos.Read(slot.AsSpan(112 + BkeyFormat.PosOffset)));
        // Checksum: crc32c of [8, 112 + 8 * u64s), zero-extended.
        Assert.Equal((ulong)Crc32C.Compute(slot.AsSpan(8, 104 + (8 * (int)u64s))), BinaryPrimitives.ReadUInt64LittleEndian(slot));

        // The node entry at 512: checksum, bset header at +8, keys at +40.
        var entry = slot.AsSpan(written, record2);
        Assert.Equal(header.Seq, BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(entry[28..]));
        var entryU64s = BinaryPrimitives.ReadUInt32LittleEndian(entry[32..]);
        Assert.Equal(P(6), Bpos.Read(entry[(40 + BkeyFormat.PosOffset)..]));
        Assert.Equal((ulong)Crc32C.Compute(entry.Slice(8, 32 + (8 * (int)entryU64s))), BinaryPrimitives.ReadUInt64LittleEndian(entry));
    }

    [Theory]
    [InlineData(ChecksumType.Crc32C)]
    [InlineData(ChecksumType.Crc64)]
    [InlineData(ChecksumType.XxHash64)]
    public void Every_metadata_checksum_type_round_trips(ChecksumType type)
    {
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max);
        var options = node.Options with { ChecksumType = type };
        BtreeNodeWriter.WriteFirst(node.Slot, Magic, node.Header, Cookies("a", 1, 2), options);
        BtreeNodeWriter.WriteAppend(node.Slot.AsSpan(512), node.Header.Seq, 1, Cookies("b", 3), options);

        var result = BtreeNodeReader.Read(node.Slot, node.Context(sectorsWritten: 2));

        Assert.Empty(result.Findings);
        Assert.Equal([1UL, 2, 3], Inodes(result.Keys));
    }

    [Fact]
    public void Writer_refuses_what_it_must_never_write()
    {
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max);
        Assert.ThrowsAny<ArgumentException>(() => BtreeNodeWriter.WriteFirst(node.Slot, Magic, node.Header with { Seq = 0 }, KeyRun.Empty, node.Options));
        Assert.ThrowsAny<ArgumentException>(() => BtreeNodeWriter.WriteFirst(node.Slot, Magic, node.Header, KeyRun.Empty, node.Options with { ChecksumType = ChecksumType.None }));
        Assert.ThrowsAny<ArgumentException>(() => BtreeNodeWriter.WriteFirst(new byte[256], Magic, node.Header, KeyRun.Empty, node.Options));
        Assert.ThrowsAny<ArgumentException>(() => BtreeNodeWriter.WriteAppend(node.Slot, node.Header.Seq, 0, KeyRun.Empty, node.Options));
        Assert.ThrowsAny<ArgumentException>(() => BtreeNodeWriter.WriteFirst(node.Slot, Magic, node.Header, KeyRun.Empty, node.Options with { BlockSize = 1000 }));
    }

    [Theory]
    [InlineData(2UL, 2UL)]
    [InlineData(3UL, 2UL)]
    public void Writer_refuses_keys_that_are_not_strictly_increasing(ulong first, ulong second)
    {
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max);
        // KeyRunBuilder refuses such a run itself; the writer must not trust that every run came from it.
        var keys = new KeyRun(
            [new KeyEntry(new Bkey(P(1), KeyType.Cookie), 0, 1), new KeyEntry(new Bkey(P(first), KeyType.Cookie), 1, 1),
             new KeyEntry(new Bkey(P(second), KeyType.Cookie), 2, 1)],
            3, [1, 2, 3], 3);

        var error = Assert.Throws<ArgumentException>(() => BtreeNodeWriter.WriteFirst(node.Slot, Magic, node.Header, keys, node.Options));
        Assert.Contains($"key 2 at {P(second).ToText()} follows {P(first).ToText()}", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => BtreeNodeWriter.WriteAppend(node.Slot.AsSpan(512), node.Header.Seq, 1, keys, node.Options));
        Assert.DoesNotContain(node.Slot, b => b != 0);
    }

    [Fact]
    public void Inspector_walks_records_beyond_sectors_written_and_reports_checksums()
    {
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max)
            .Write(Cookies("a", 1, 2, 3))
            .Write(Cookies("b", 4))
            .Write(Deletions(1));
        node.Slot[node.KeyField(1, 0, "size")] ^= 1;

        var records = BtreeNodeInspector.Walk(node.Slot);

        Assert.Equal(node.RecordOffsets, records.Select(r => r.Offset));
        Assert.Equal([3, 1, 1], records.Select(r => r.Keys.Count));
        Assert.Equal([true, false, true], records.Select(r => r.ChecksumMatches));
        Assert.Equal(node.Header, records[0].Header);
        Assert.Equal(Magic, records[0].Magic);
        Assert.Equal(P(4), records[1].Keys[0].Key.Pos);
        Assert.Equal(records[1].KeysOffset, records[1].Keys[0].Offset);
        Assert.Contains("BAD", records[1].ToText(), StringComparison.Ordinal);

        Assert.Equal(3, BtreeNodeInspector.RecomputeAllChecksums(node.Slot));
        Assert.All(BtreeNodeInspector.Walk(node.Slot), r => Assert.True(r.ChecksumMatches));
        // The corruption now carries a valid checksum: the reader sees the bad size, not a bad checksum.
        Assert.Equal(FsckErrorId.BkeyBadSize, Assert.Single(node.Read().Findings).Id);
    }

    [Fact]
    public void Inspector_survives_a_slot_too_small_or_a_damaged_length()
    {
        Assert.Empty(BtreeNodeInspector.Walk(new byte[64]));
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max).Write(Cookies("a", 1)).Write(Cookies("b", 2));
        WriteU32(node.Slot, node.BsetField(0, "u64s"), uint.MaxValue);

        var records = BtreeNodeInspector.Walk(node.Slot);

        Assert.Equal(2, records.Count);
        Assert.Null(records[0].ComputedChecksum);
        Assert.False(BtreeNodeInspector.RecomputeChecksum(node.Slot, 0));
        Assert.True(records[1].ChecksumMatches);
    }

    [Fact]
    public void Field_paths_resolve_to_slot_offsets()
    {
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max).Write(Cookies("a", 1, 2)).Write(Cookies("b", 3));

        NodeField Locate(string path)
        {
            Assert.True(BtreeNodeInspector.TryLocate(node.Slot, path, out var field, out var problem), problem);
            return field;
        }

        Assert.Equal(new NodeField("node.max_key", 52, 20), Locate("node.max_key"));
        Assert.Equal(0, Locate("record.0.csum").Offset);
        Assert.Equal((512, 8), (Locate("record.1.csum").Offset, Locate("record.1.csum").Size));
        Assert.Equal(512 + 8 + 24, Locate("bset.1.u64s").Offset);
        Assert.Equal(80 + 18, Locate("bset.0.csum_type").Offset);
        Assert.Equal(node.KeyField(0, 1, "pos.offset"), Locate("key.0.1.pos.offset").Offset);
        Assert.Equal(node.KeyField(1, 0, "type"), Locate("key.1.0.type").Offset);

        foreach (var bad in new[] { "magic", "node.nope", "bset.2.u64s", "key.0.2.type", "key.0.0.nope", "record.1.u64s", "leaf.0.x" })
        {
            Assert.False(BtreeNodeInspector.TryLocate(node.Slot, bad, out _, out var problem));
            Assert.Contains(bad, problem, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Field_lookup_names_the_known_fields()
    {
        Assert.Equal(new NodeField("max_key", 52, 20), BtreeNodeInspector.Field(BtreeNodeInspector.NodeHeaderFields, "MAX_KEY"));
        Assert.Throws<ArgumentException>(() => BtreeNodeInspector.Field(BtreeNodeInspector.BsetHeaderFields, "nope"));
    }
}
