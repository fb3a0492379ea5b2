// The node scan's verdict on every kind of slot it can meet (NodeScan.Examine, the reading of the
// regions and the records' order), over a region of several chunks: each kind is placed on both
// sides of every chunk boundary and at the region's last slot, so how the chunks are read and
// examined (in which order, on how many threads) cannot change what is found, where, or why.
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Btree;

public sealed class NodeScanTests(ITestOutputHelper output)
{
    private const int NodeSize = 4096;
    private const int BlockSize = 1024;
    private const ulong Magic = 0x5E5E_1234_ABCD_0001UL;
    private const ulong ForeignMagic = 0x5E5E_1234_ABCD_0002UL;
    private const ulong BlacklistedSeq = 666;
    private static readonly int s_slotsPerChunk = NodeScan.ChunkBytes / NodeSize;

    /// <summary>What a slot holds, and so what the scan must say about it.</summary>
    private enum Kind
    {
        Empty,
        Garbage,
        Whole,
        Appended,
        TornAppend,
        BlacklistedAppend,
        BadChecksum,
        BadLevel,
        ReservedFlags,
        Foreign,
        ForeignBadChecksum,
        BlacklistedFirst,
        UnsupportedVersion,
        BadKeyFraming,
        WrongSectorOffset,
        CopyOfEarlier,
    }

    [Fact]
    public void Every_kind_of_slot_gets_its_verdict_on_both_sides_of_every_chunk_boundary()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        var kinds = Enum.GetValues<Kind>();
        // Three whole chunks and part of a fourth; around each boundary every kind once before it and once after it.
        var slots = (3 * s_slotsPerChunk) + (s_slotsPerChunk / 3);
        var layout = new Kind[slots];
        for (var i = 0; i < slots; i++)
            layout[i] = kinds[random.Next(kinds.Length)];
        foreach (var boundary in new[] { s_slotsPerChunk, 2 * s_slotsPerChunk, 3 * s_slotsPerChunk, slots })
        {
            for (var k = 0; k < kinds.Length; k++)
            {
                layout[boundary - 1 - k] = kinds[k];
                if (boundary + k < slots)
                    layout[boundary + k] = kinds[k];
            }
        }
        // The first slot of all holds a whole node, so a copy always has an original before it.
        layout[0] = Kind.Whole;

        var image = new byte[(long)slots * NodeSize];
        var expected = new List<ScannedNode>();
        var lastWhole = -1;
        for (var i = 0; i < slots; i++)
        {
            var slot = image.AsSpan(i * NodeSize, NodeSize);
            if (Write(layout[i], slot, i, lastWhole, image, random) is { } node)
                expected.Add(node);
            if (layout[i] == Kind.Whole)
                lastWhole = i;
        }

        using var device = MemoryBlockDevice.Wrap(image);
        var scan = NodeScan.Run(device, Geometry(slots), seq => seq == BlacklistedSeq, CancellationToken.None);

        Assert.Equal((long)slots * NodeSize, scan.BytesScanned);
        AssertSameRecords(expected, scan.Nodes, layout);
    }

    [Fact]
    public void An_unreadable_slot_costs_that_slot_alone_and_a_cancelled_scan_throws()
    {
        var slots = s_slotsPerChunk + 8;
        var image = new byte[(long)slots * NodeSize];
        var random = new Random(1);
        var expected = new List<ScannedNode>();
        var unreadable = s_slotsPerChunk - 3;
        for (var i = 0; i < slots; i++)
        {
            var node = Write(Kind.Whole, image.AsSpan(i * NodeSize, NodeSize), i, -1, image, random)!.Value;
            if (i != unreadable)
                expected.Add(node);
        }
        using var faulty = new FaultyBlockDevice(MemoryBlockDevice.Wrap(image));
        faulty.FailReads((long)unreadable * NodeSize, 512);

        var scan = NodeScan.Run(faulty, Geometry(slots), null, CancellationToken.None);

        AssertSameRecords(expected, scan.Nodes, null);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => NodeScan.Run(faulty, Geometry(slots), null, cancelled.Token));
    }

    private static BtreeGeometry Geometry(int slots) => new()
    {
        NodeSize = NodeSize,
        BlockSize = BlockSize,
        NodeAreaOffset = 0,
        NodeAreaLength = (long)slots * NodeSize,
        NodeMagic = Magic,
    };

    private static void AssertSameRecords(List<ScannedNode> expected, IReadOnlyList<ScannedNode> actual, Kind[]? layout)
    {
        for (var i = 0; i < Math.Min(expected.Count, actual.Count); i++)
        {
            var what = layout is null ? "" : $" ({layout[expected[i].Offset / NodeSize]})";
            Assert.True(expected[i] == actual[i],
                $"record {i}{what}:\nexpected {expected[i]}\nactual   {actual[i]}");
        }
        Assert.Equal(expected.Count, actual.Count);
    }

    /// <summary>Writes one slot of <paramref name="kind"/>; the record the scan must make of it, or null when it must find nothing.</summary>
    private static ScannedNode? Write(Kind kind, Span<byte> slot, int index, int lastWhole, byte[] image, Random random)
    {
        var offset = (long)index * NodeSize;
        var seq = (ulong)index + 1;
        var min = new Bpos((ulong)index + 1, 0);
        var max = new Bpos((ulong)index + 1, ulong.MaxValue, uint.MaxValue);
        var generation = (uint)(index % 5) + 1;
        var header = new NodeHeader(seq, generation, BtreeId.Test, (byte)(index % 3), min, max);
        var firstJournalSeq = (ulong)(index % 7) + 10;
        var keys = 3 + (index % 11);
        var found = new ScannedNode
        {
            Offset = offset,
            Btree = BtreeId.Test,
            Level = header.Level,
            Min = min,
            Max = max,
            Seq = seq,
            Generation = generation,
            JournalSeq = firstJournalSeq,
            Status = ScannedNodeStatus.Chosen,
            SupersededBy = -1,
            UseMin = min,
            UseMax = max,
        };
        var rejected = found with { Status = ScannedNodeStatus.Rejected, UseMin = default, UseMax = default };
        switch (kind)
        {
            case Kind.Empty:
                return null;
            case Kind.Garbage:
                random.NextBytes(slot);
                return null;
            case Kind.CopyOfEarlier:
            {
                image.AsSpan(lastWhole * NodeSize, NodeSize).CopyTo(slot);
                var original = (long)lastWhole * NodeSize;
                var copied = WholeNode(lastWhole);
                return copied with
                {
                    Offset = offset,
                    Status = ScannedNodeStatus.Superseded,
                    SupersededBy = original,
                };
            }
        }

        var magic = kind is Kind.Foreign or Kind.ForeignBadChecksum ? ForeignMagic : Magic;
        var journalSeq = kind == Kind.BlacklistedFirst ? BlacklistedSeq : firstJournalSeq;
        var version = kind == Kind.UnsupportedVersion ? (ushort)(FormatVersion.Current + 1) : FormatVersion.Current;
        var end = BtreeNodeWriter.WriteFirst(slot, magic, header, Keys(index, 0, keys), new BsetWriteOptions(BlockSize, ChecksumType.Crc32C, version, journalSeq));
        var sectors = (ushort)(end / FormatLimits.SectorSize);
        switch (kind)
        {
            case Kind.Whole:
                return found with { Keys = keys, SectorsWritten = sectors };
            case Kind.Appended or Kind.TornAppend or Kind.BlacklistedAppend:
            {
                var later = kind == Kind.BlacklistedAppend ? BlacklistedSeq : firstJournalSeq + 5;
                var appended = BtreeNodeWriter.WriteAppend(slot[end..], seq, end / FormatLimits.SectorSize, Keys(index, 100, 4),
                    new BsetWriteOptions(BlockSize, ChecksumType.Crc32C, FormatVersion.Current, later));
                if (kind == Kind.TornAppend)
                {
                    // The second record's last key bytes never reached the disk: the node ends with its first record.
                    slot[end + BtreeNodeFormat.EntryKeysOffset + 3] ^= 0x01;
                    return found with { Keys = keys, SectorsWritten = sectors };
                }
                var total = (ushort)((end + appended) / FormatLimits.SectorSize);
                return kind == Kind.BlacklistedAppend
                    ? found with { Keys = keys, SectorsWritten = total }
                    : found with { Keys = keys + 4, SectorsWritten = total, JournalSeq = later };
            }
            case Kind.BadChecksum:
                slot[BtreeNodeFormat.FirstKeysOffset + 5] ^= 0x10;
                return rejected with { Rejection = ScanRejection.Invalid, FailureId = FsckErrorId.BsetBadChecksum };
            case Kind.BadLevel:
                slot[BtreeNodeFormat.NodeLevelOffset] = FormatLimits.MaxBtreeLevel + 1;
                Reseal(slot);
                return rejected with
                {
                    Level = FormatLimits.MaxBtreeLevel + 1, Rejection = ScanRejection.Invalid, FailureId = FsckErrorId.BtreeNodeBadHeader,
                };
            case Kind.ReservedFlags:
                BinaryPrimitives.WriteUInt16LittleEndian(slot[BtreeNodeFormat.NodeFlagsOffset..], 1);
                Reseal(slot);
                return rejected with { Rejection = ScanRejection.Invalid, FailureId = FsckErrorId.BtreeNodeBadHeader };
            case Kind.Foreign:
                return rejected with { Rejection = ScanRejection.ForeignFilesystem };
            case Kind.ForeignBadChecksum:
                slot[BtreeNodeFormat.FirstKeysOffset + 9] ^= 0x04;
                return null;
            case Kind.BlacklistedFirst:
                return rejected with { JournalSeq = BlacklistedSeq, Rejection = ScanRejection.BlacklistedJournalSeq };
            case Kind.UnsupportedVersion:
                return rejected with { Rejection = ScanRejection.Invalid, FailureId = FsckErrorId.BtreeNodeUnsupportedVersion };
            case Kind.BadKeyFraming:
                // The second key claims more words than the key area has left.
                var second = BtreeNodeFormat.FirstKeysOffset + (BinaryPrimitives.ReadUInt16LittleEndian(slot[BtreeNodeFormat.FirstKeysOffset..]) * 8);
                BinaryPrimitives.WriteUInt16LittleEndian(slot[second..], 0x7FFF);
                Reseal(slot);
                return rejected with { Rejection = ScanRejection.Invalid, FailureId = FsckErrorId.BtreeNodeBkeyBadU64s };
            case Kind.WrongSectorOffset:
                BinaryPrimitives.WriteUInt16LittleEndian(slot[(BtreeNodeFormat.FirstBsetOffset + BtreeNodeFormat.BsetSectorOffsetOffset)..], 2);
                Reseal(slot);
                return rejected with { Rejection = ScanRejection.Invalid, FailureId = FsckErrorId.BsetWrongSectorOffset };
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }

        // What the scan makes of the whole node at slot i (for its copies).
        ScannedNode WholeNode(int i)
        {
            var n = BtreeNodeWriter.FirstRecordSize(Keys(i, 0, 3 + (i % 11)).EncodedBytes, BlockSize);
            var m = new Bpos((ulong)i + 1, 0);
            var x = new Bpos((ulong)i + 1, ulong.MaxValue, uint.MaxValue);
            return new ScannedNode
            {
                Offset = (long)i * NodeSize,
                Btree = BtreeId.Test,
                Level = (byte)(i % 3),
                Min = m,
                Max = x,
                Seq = (ulong)i + 1,
                Generation = (uint)(i % 5) + 1,
                JournalSeq = (ulong)(i % 7) + 10,
                Keys = 3 + (i % 11),
                SectorsWritten = (ushort)(n / FormatLimits.SectorSize),
                SupersededBy = -1,
                UseMin = m,
                UseMax = x,
            };
        }
    }

    private static KeyRun Keys(int index, int first, int count)
    {
        var builder = new KeyRunBuilder(count, count * 16);
        var value = new byte[16];
        for (var k = 0; k < count; k++)
        {
            value[0] = (byte)k;
            builder.Add(new Bkey(new Bpos((ulong)index + 1, (ulong)(first + k)), KeyType.Cookie), value);
        }
        return builder.Build();
    }

    /// <summary>Recomputes the first record's checksum after a test changed a byte it covers.</summary>
    private static void Reseal(Span<byte> slot)
    {
        var u64s = BinaryPrimitives.ReadUInt32LittleEndian(slot[(BtreeNodeFormat.FirstBsetOffset + BtreeNodeFormat.BsetU64sOffset)..]);
        var end = BtreeNodeFormat.FirstKeysOffset + ((int)u64s * 8);
        BinaryPrimitives.WriteUInt64LittleEndian(slot[BtreeNodeFormat.NodeChecksumOffset..],
            Checksums.Compute(ChecksumType.Crc32C, slot[BtreeNodeFormat.ChecksumStart..end]));
    }
}
