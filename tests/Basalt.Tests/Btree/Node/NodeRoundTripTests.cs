using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Btree.Node.TestNode;

namespace Basalt.Tests.Btree.Node;

public sealed class NodeRoundTripTests(ITestOutputHelper output)
{
    [Fact]
    public void First_record_reads_back_with_header_keys_and_no_findings()
    {
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max).Write(Cookies("a", 1, 2, 3, 50));

        var result = node.Read();

        Assert.True(result.Ok, result.ToText());
        Assert.Empty(result.Findings);
        Assert.False(result.NeedsRewrite);
        Assert.Equal(node.Header, result.Header);
        Assert.Equal([1UL, 2, 3, 50], Inodes(result.Keys));
        Assert.Equal("a:50", Contents(result.Keys)[50]);
        Assert.Equal(node.Written / 512, result.SectorsFound);
        Assert.Equal(1, result.BsetCount);
        Assert.Equal(0, result.IgnoredBsetsBeyondWritten);
        Assert.Equal(1UL, result.MaxJournalSeq);
    }

    [Fact]
    public void Appended_bsets_with_a_blacklisted_journal_seq_are_skipped_and_counted()
    {
        // Journal seqs 1, 2, 3: seq 2 was written but never flushed before a crash.
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max)
            .Write(Cookies("a", 1, 2, 3))
            .Write(Cookies("b", 2, 4))
            .Write(Cookies("c", 5));

        var all = node.Read();
        Assert.Equal(0, all.BlacklistedBsets);
        Assert.Equal(new Dictionary<ulong, string> { [1] = "a:1", [2] = "b:2", [3] = "a:3", [4] = "b:4", [5] = "c:5" }, Contents(all.Keys));

        var result = BtreeNodeReader.Read(node.Slot, node.Context() with { IsBlacklisted = seq => seq == 2 });
        Assert.True(result.Ok, result.ToText());
        Assert.Empty(result.Findings);
        Assert.Equal(1, result.BlacklistedBsets);
        Assert.Equal(new Dictionary<ulong, string> { [1] = "a:1", [2] = "a:2", [3] = "a:3", [5] = "c:5" }, Contents(result.Keys));

        // The first bset is the node itself: its seq being blacklisted does not hide it here.
        var first = BtreeNodeReader.Read(node.Slot, node.Context() with { IsBlacklisted = seq => seq == 1 });
        Assert.Equal(0, first.BlacklistedBsets);
        Assert.Equal(all.Keys.Count, first.Keys.Count);
    }

    [Fact]
    public void Appended_bsets_merge_newest_wins_and_deletions_shadow_older_keys()
    {
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max)
            .Write(Cookies("a", 1, 2, 3, 4, 5))
            .Write(Cookies("b", 2, 6))          // overwrite 2, add 6
            .Write(Deletions(3, 6, 9))          // delete 3 and the newer 6; 9 never existed
            .Write(Cookies("d", 3, 7));         // re-create 3 after its deletion

        var result = node.Read();

        Assert.True(result.Ok, result.ToText());
        Assert.Empty(result.Findings);
        Assert.Equal(4, result.BsetCount);
        Assert.Equal(4UL, result.MaxJournalSeq);
        Assert.Equal(
            new Dictionary<ulong, string> { [1] = "a:1", [2] = "b:2", [3] = "d:3", [4] = "a:4", [5] = "a:5", [7] = "d:7" },
            Contents(result.Keys));
        Assert.DoesNotContain(result.Keys.Entries.ToArray(), e => e.Key.Type == KeyType.Deleted);
    }

    [Theory]
    [InlineData(0, 512, 512)]
    [InlineData(400, 512, 512)]
    [InlineData(401, 512, 1024)]
    [InlineData(0, 4096, 4096)]
    [InlineData(4096 - 112, 4096, 4096)]
    public void First_record_size_is_header_plus_keys_rounded_to_the_block(long keyBytes, int blockSize, int expected) =>
        Assert.Equal(expected, BtreeNodeWriter.FirstRecordSize(keyBytes, blockSize));

    [Theory]
    [InlineData(0, 512, 512)]
    [InlineData(472, 512, 512)]
    [InlineData(473, 512, 1024)]
    public void Append_record_size_is_entry_header_plus_keys_rounded_to_the_block(long keyBytes, int blockSize, int expected) =>
        Assert.Equal(expected, BtreeNodeWriter.AppendRecordSize(keyBytes, blockSize));

    [Fact]
    public void Writer_pads_records_with_zeroes_and_stamps_seq_offset_and_checksum()
    {
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max, blockSize: 1024);
        node.Slot.AsSpan().Fill(0xEE);
        node.Write(Cookies("a", 1)).Write(Cookies("b", 2));

        var records = BtreeNodeInspector.Walk(node.Slot);
        Assert.Equal(2, records.Count);
        Assert.Equal(0, records[0].Offset);
        Assert.Equal(1024, records[1].Offset);
        Assert.Equal(2, records[1].SectorOffsetField);
        Assert.All(records, r => Assert.True(r.ChecksumMatches));
        Assert.All(records, r => Assert.Equal(node.Header.Seq, r.Seq));
        // Padding between the end of the keys and the next block is zero.
        var firstEnd = (int)records[0].Length;
        Assert.All(node.Slot[firstEnd..1024], b => Assert.Equal(0, b));
        var secondEnd = 1024 + (int)records[1].Length;
        Assert.All(node.Slot[secondEnd..2048], b => Assert.Equal(0, b));
        // Past the written records the slot is untouched.
        Assert.All(node.Slot[2048..], b => Assert.Equal(0xEE, b));
    }

    [Fact]
    public void Checksum_covers_from_byte_8_to_the_end_of_the_keys_and_not_the_padding()
    {
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max).Write(Cookies("a", 1));
        var record = BtreeNodeInspector.Describe(node.Slot, 0);
        Assert.Equal(112 + (8 * record.U64s), record.Length);

        node.Slot[(int)record.Length] = 0x55;   // padding: not covered
        Assert.Empty(node.Read().Findings);

        node.Slot[(int)record.Length - 1] ^= 1;  // last key byte: covered
        Assert.Equal(FsckErrorId.BsetBadChecksum, Assert.Single(node.Read().Findings).Id);
        node.Slot[(int)record.Length - 1] ^= 1;

        node.Slot[8] ^= 1;                       // magic: covered (and checked first)
        Assert.Equal(FsckErrorId.BtreeNodeBadMagic, Assert.Single(node.Read().Findings).Id);
    }

    [Fact]
    public void Interior_node_with_pointers_round_trips()
    {
        var builder = new KeyRunBuilder();
        var child = new BtreePtrValue { Seq = 77, SectorsWritten = 2, MinKey = Bpos.Min, Ptrs = [new DevicePtr(0, 4096, 3)] };
        builder.Add(new Bkey(P(100), KeyType.BtreePtr), child.ToBytes());
        builder.Add(new Bkey(Bpos.Max, KeyType.BtreePtr), child.With(minKey: P(100).Successor()).ToBytes());
        var node = new TestNode(BtreeId.Extents, 1, Bpos.Min, Bpos.Max).Write(builder.Build());

        var result = node.Read();

        Assert.True(result.Ok, result.ToText());
        Assert.Empty(result.Findings);
        Assert.Equal(2, result.Keys.Count);
        Assert.True(BtreePtrValue.TryRead(result.Keys.ValueOf(1), out var read, out _));
        Assert.Equal(P(100).Successor(), read.MinKey);
        Assert.Equal(4096UL, read.Ptrs[0].OffsetSectors);
    }

    [Fact]
    public void Extent_leaf_with_snapshot_positions_round_trips()
    {
        var builder = new KeyRunBuilder();
        builder.Add(new Bkey(new Bpos(4096, 8, uint.MaxValue), KeyType.Reservation, 8), []);
        builder.Add(new Bkey(new Bpos(4096, 24, uint.MaxValue), KeyType.Extent, 16),
            new Basalt.Data.ExtentValue { ChecksumType = ChecksumType.Crc32C, CoveredSectors = 16, Ptrs = [new DevicePtr(0, 4096, 0)] }.ToBytes());
        var node = new TestNode(BtreeId.Extents, 0, Bpos.Min, Bpos.Max).Write(builder.Build());

        var result = node.Read();

        Assert.True(result.Ok, result.ToText());
        Assert.Empty(result.Findings);
        Assert.Equal(16u, result.Keys[1].Key.Size);
    }

    [Fact]
    public void Clean_read_allocates_the_result_and_nothing_per_key()
    {
        var builder = new KeyRunBuilder();
        for (ulong i = 1; i <= 400; i++)
            builder.Add(new Bkey(P(i), KeyType.Cookie), new byte[16]);
        var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max, nodeSize: 32768).Write(builder.Build());
        var context = node.Context();
        _ = BtreeNodeReader.Read(node.Slot, context);   // warm up pools and statics

        var before = GC.GetAllocatedBytesForCurrentThread();
        var result = BtreeNodeReader.Read(node.Slot, context);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(400, result.Keys.Count);
        var payload = (400L * System.Runtime.CompilerServices.Unsafe.SizeOf<KeyEntry>()) + (400 * 16);
        Assert.InRange(allocated, payload, payload + 1024);
    }

    [Fact]
    public void Random_key_sets_in_several_bsets_read_back_as_the_model()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        for (var round = 0; round < LongTests.Scale(40); round++)
        {
            var blockSize = random.Next(2) == 0 ? 512 : 1024;
            var node = new TestNode(BtreeId.Test, 0, Bpos.Min, Bpos.Max, nodeSize: 16384, blockSize: blockSize,
                seq: (ulong)random.NextInt64(1, long.MaxValue));
            var model = new SortedDictionary<Bpos, byte[]>();
            var bsets = random.Next(1, 6);
            for (var b = 0; b < bsets; b++)
            {
                var batch = new SortedDictionary<Bpos, byte[]?>();
                var n = random.Next(b == 0 ? 0 : 1, 25);
                for (var i = 0; i < n; i++)
                {
                    var pos = new Bpos((ulong)random.Next(0, 60), (ulong)random.Next(0, 3));
                    var delete = b > 0 && random.Next(4) == 0;
                    byte[]? value = null;
                    if (!delete)
                    {
                        value = new byte[random.Next(0, 120)];
                        random.NextBytes(value);
                    }
                    batch[pos] = value;
                }
                var builder = new KeyRunBuilder();
                foreach (var (pos, value) in batch)
                {
                    builder.Add(new Bkey(pos, value is null ? KeyType.Deleted : KeyType.Cookie), value ?? []);
                    if (value is null)
                        model.Remove(pos);
                    else
                        model[pos] = value;
                }
                var keys = builder.Build();
                var needed = node.Written == 0
                    ? BtreeNodeWriter.FirstRecordSize(keys.EncodedBytes, blockSize)
                    : BtreeNodeWriter.AppendRecordSize(keys.EncodedBytes, blockSize);
                Assert.True(node.Written + needed <= node.NodeSize, $"seed {seed}: test node too small");
                node.Write(keys);
            }

            var records = BtreeNodeInspector.Walk(node.Slot);
            Assert.Equal(node.RecordOffsets, records.Select(r => r.Offset));
            Assert.All(records, r => Assert.True(r.ChecksumMatches, $"seed {seed}: record at {r.Offset}"));

            var copied = node.Read();
            var inPlace = BtreeNodeReader.ReadInPlace((byte[])node.Slot.Clone(), node.Context());

            foreach (var result in new[] { copied, inPlace })
            {
                Assert.True(result.Ok, $"seed {seed} round {round}: {result.ToText()}");
                Assert.Empty(result.Findings);
                Assert.Equal(model.Count, result.Keys.Count);
                var i2 = 0;
                foreach (var (pos, value) in model)
                {
                    Assert.Equal(pos, result.Keys[i2].Key.Pos);
                    Assert.Equal(value, result.Keys.ValueOf(i2).ToArray());
                    i2++;
                }
            }
        }
    }
}
