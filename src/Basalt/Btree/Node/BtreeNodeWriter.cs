// Serialises a node's records. A node is append-only on disk: its first write is the node header
// plus the first bset at offset 0 of the slot, every later write is one node entry appended at the
// next block-aligned offset. Nothing below the parent's sectors_written is ever rewritten, which is
// why a node can be appended while readers hold it. Each record is padded with zeroes to the block
// size and checksummed over [8, end of its keys).
using System.Buffers.Binary;
using System.Diagnostics;
using Basalt.Btree.Node;
using Basalt.Format;
using static Basalt.Btree.Node.BtreeNodeFormat;

namespace Basalt.Btree.Node;

public static class BtreeNodeWriter
{
    /// <summary>Bytes the first record (node header + bset + keys) takes, rounded up to the block size.</summary>
    public static int FirstRecordSize(long encodedKeyBytes, int blockSize) =>
        checked((int)RoundUp(FirstKeysOffset + encodedKeyBytes, blockSize));

    /// <summary>Bytes a node entry (checksum + bset + keys) takes, rounded up to the block size.</summary>
    public static int AppendRecordSize(long encodedKeyBytes, int blockSize) =>
        checked((int)RoundUp(EntryKeysOffset + encodedKeyBytes, blockSize));

    /// <summary>
    /// Writes the node header and the first bset into <paramref name="destination"/>, which is the
    /// start of the slot. Keys must be strictly increasing (refused otherwise); they may hold
    /// <see cref="KeyType.Deleted"/> markers.
    /// Returns the bytes written: <see cref="FirstRecordSize"/>, a block multiple, zero padded.
    /// </summary>
    public static int WriteFirst(Span<byte> destination, ulong magic, in NodeHeader header, KeyRun keys, in BsetWriteOptions options)
    {
        CheckOptions(options);
        CheckKeys(keys);
        if (header.Seq == 0)
            throw new ArgumentException("a node seq must be non-zero", nameof(header));
        if (header.Level > FormatLimits.MaxBtreeLevel)
            throw new ArgumentException($"level {header.Level} above the maximum {FormatLimits.MaxBtreeLevel}", nameof(header));
        var size = FirstRecordSize(keys.EncodedBytes, options.BlockSize);
        if (destination.Length < size)
            throw new ArgumentException($"destination of {destination.Length} bytes, first record needs {size}", nameof(destination));

        var record = destination[..size];
        BinaryPrimitives.WriteUInt64LittleEndian(record[NodeMagicOffset..], magic);
        BinaryPrimitives.WriteUInt64LittleEndian(record[NodeSeqOffset..], header.Seq);
        record[NodeBtreeIdOffset] = (byte)header.Btree;
        record[NodeLevelOffset] = header.Level;
        BinaryPrimitives.WriteUInt16LittleEndian(record[NodeFlagsOffset..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(record[NodeGenerationOffset..], header.Generation);
        header.MinKey.Write(record[NodeMinKeyOffset..]);
        header.MaxKey.Write(record[NodeMaxKeyOffset..]);
        BinaryPrimitives.WriteUInt64LittleEndian(record[NodeReservedOffset..], 0);
        WriteBsetAndKeys(record, firstRecord: true, header.Seq, sectorOffset: 0, keys, options);
        return size;
    }

    /// <summary>
    /// Writes one node entry into <paramref name="destination"/>, which is where the record goes
    /// (slot offset <paramref name="sectorOffset"/> × 512, i.e. the bytes already written). The
    /// sector offset is recorded in the bset so a reader can tell a misplaced record.
    /// Returns the bytes written: <see cref="AppendRecordSize"/>, a block multiple, zero padded.
    /// </summary>
    public static int WriteAppend(Span<byte> destination, ulong nodeSeq, int sectorOffset, KeyRun keys, in BsetWriteOptions options)
    {
        CheckOptions(options);
        CheckKeys(keys);
        if (nodeSeq == 0)
            throw new ArgumentException("a node seq must be non-zero", nameof(nodeSeq));
        if (sectorOffset <= 0 || sectorOffset > ushort.MaxValue || sectorOffset * FormatLimits.SectorSize % options.BlockSize != 0)
            throw new ArgumentOutOfRangeException(nameof(sectorOffset), $"sector offset {sectorOffset} is not a later block boundary");
        var size = AppendRecordSize(keys.EncodedBytes, options.BlockSize);
        if (destination.Length < size)
            throw new ArgumentException($"destination of {destination.Length} bytes, node entry needs {size}", nameof(destination));
        WriteBsetAndKeys(destination[..size], firstRecord: false, nodeSeq, sectorOffset, keys, options);
        return size;
    }

    private static void CheckOptions(in BsetWriteOptions options)
    {
        if (options.BlockSize < FormatLimits.SectorSize || options.BlockSize > 64 * 1024 || (options.BlockSize & (options.BlockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(options), $"block size {options.BlockSize} is not a power of two in 512..65536");
        if (!IsNodeChecksumType((byte)options.ChecksumType))
            throw new ArgumentOutOfRangeException(nameof(options), $"checksum type {options.ChecksumType.ToText()} cannot protect a node");
    }

    // A reader drops a key that is not after the one before it (btree_node_bkey_out_of_order), so
    // writing one would lose a key on the next read: refuse it, before any byte is written, as the
    // bug it is. The value padding needs no check: BkeyFormat.Write zero-fills it itself.
    private static void CheckKeys(KeyRun keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var entries = keys.Entries;
        for (var i = 1; i < entries.Length; i++)
        {
            if (entries[i].Key.Pos <= entries[i - 1].Key.Pos)
            {
                throw new ArgumentException(
                    $"bset keys must be strictly increasing: key {i} at {entries[i].Key.Pos.ToText()} follows {entries[i - 1].Key.Pos.ToText()}",
                    nameof(keys));
            }
        }
    }

    // Fills the bset header, the keys and the padding of a record already sized to a block multiple,
    // then checksums it.
    private static void WriteBsetAndKeys(Span<byte> record, bool firstRecord, ulong seq, int sectorOffset, KeyRun keys, in BsetWriteOptions options)
    {
        var keyBytes = keys.EncodedBytes;
        var bset = record.Slice(BsetOffsetIn(firstRecord), BsetHeaderSize);
        BinaryPrimitives.WriteUInt64LittleEndian(bset[BsetSeqOffset..], seq);
        BinaryPrimitives.WriteUInt64LittleEndian(bset[BsetJournalSeqOffset..], options.JournalSeq);
        BinaryPrimitives.WriteUInt16LittleEndian(bset[BsetVersionOffset..], options.Version);
        bset[BsetChecksumTypeOffset] = (byte)options.ChecksumType;
        bset[BsetFlagsOffset] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(bset[BsetSectorOffsetOffset..], (ushort)sectorOffset);
        BinaryPrimitives.WriteUInt16LittleEndian(bset[BsetReserved1Offset..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(bset[BsetU64sOffset..], checked((uint)(keyBytes / 8)));
        BinaryPrimitives.WriteUInt32LittleEndian(bset[BsetReserved2Offset..], 0);

        var keysStart = KeysOffsetIn(firstRecord);
        var at = keysStart;
        var entries = keys.Entries;
        for (var i = 0; i < entries.Length; i++)
            at += BkeyFormat.Write(record[at..], entries[i].Key, keys.ValueOf(in entries[i]));
        Debug.Assert(at - keysStart == keyBytes);
        record[at..].Clear();

        var checksum = Checksums.Compute(options.ChecksumType, record[ChecksumStart..at]);
        BinaryPrimitives.WriteUInt64LittleEndian(record, checksum);
    }
}
