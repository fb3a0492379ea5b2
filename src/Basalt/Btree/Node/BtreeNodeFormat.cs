// Btree node on-disk format: offsets and sizes of the node header, the bset header and the
// node entry, plus the header record and write options. A node slot holds a first record
// (node header + bset header + keys) at offset 0 and later records ("node entries": checksum +
// bset header + keys) at block-aligned offsets; every record carries the node's seq, so a reader
// recognises where the node's records end. The layout is described byte by byte in
// docs/format.md; BtreeNodeFormatTests pins every offset below.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Basalt.Format;

namespace Basalt.Btree.Node;

/// <summary>The node header fields: the identity and range of a node.</summary>
/// <param name="Seq">Random non-zero cookie, the same in every bset of the node and in the parent pointer.</param>
/// <param name="Generation">1 for a fresh node; max(replaced nodes) + 1 for a replacement.</param>
public readonly record struct NodeHeader(ulong Seq, uint Generation, BtreeId Btree, byte Level, Bpos MinKey, Bpos MaxKey)
{
    public string ToText() =>
        $"{Btree.ToText()} level {Level} seq {Seq:x16} gen {Generation} {MinKey.ToText()}..{MaxKey.ToText()}";
}

/// <summary>What a writer stamps on a bset besides its keys.</summary>
/// <param name="BlockSize">Records are padded with zeroes to a multiple of this (512 B .. 64 KiB).</param>
/// <param name="JournalSeq">Highest journal sequence number whose updates the bset holds (0 before the journal).</param>
public readonly record struct BsetWriteOptions(int BlockSize, ChecksumType ChecksumType, ushort Version, ulong JournalSeq);

/// <summary>Byte offsets and sizes of the node's on-disk records.</summary>
public static class BtreeNodeFormat
{
    // Node header, at offset 0 of the slot.
    public const int NodeChecksumOffset = 0;     // u64: checksum of the first record
    public const int NodeMagicOffset = 8;        // u64: filesystem node magic
    public const int NodeSeqOffset = 16;         // u64: node seq
    public const int NodeBtreeIdOffset = 24;     // u8
    public const int NodeLevelOffset = 25;       // u8
    public const int NodeFlagsOffset = 26;       // u16: reserved, 0
    public const int NodeGenerationOffset = 28;  // u32
    public const int NodeMinKeyOffset = 32;      // Bpos
    public const int NodeMaxKeyOffset = 52;      // Bpos
    public const int NodeReservedOffset = 72;    // u64: reserved, 0
    public const int NodeHeaderSize = 80;

    /// <summary>Bset header offset inside the first record; keys follow it at <see cref="FirstKeysOffset"/>.</summary>
    public const int FirstBsetOffset = NodeHeaderSize;
    public const int FirstKeysOffset = FirstBsetOffset + BsetHeaderSize;   // 112

    // Node entry (every later record).
    public const int EntryChecksumOffset = 0;    // u64
    public const int EntryBsetOffset = 8;
    public const int EntryKeysOffset = EntryBsetOffset + BsetHeaderSize;   // 40

    /// <summary>Every record's checksum covers [ChecksumStart, end of its keys).</summary>
    public const int ChecksumStart = 8;

    // Bset header, relative to its own start.
    public const int BsetSeqOffset = 0;          // u64: node seq
    public const int BsetJournalSeqOffset = 8;   // u64
    public const int BsetVersionOffset = 16;     // u16
    public const int BsetChecksumTypeOffset = 18; // u8
    public const int BsetFlagsOffset = 19;       // u8: reserved, 0
    public const int BsetSectorOffsetOffset = 20; // u16: the record's sector offset in the node
    public const int BsetReserved1Offset = 22;   // u16: reserved, 0
    public const int BsetU64sOffset = 24;        // u32: key area size in 8-byte words
    public const int BsetReserved2Offset = 28;   // u32: reserved, 0
    public const int BsetHeaderSize = 32;

    /// <summary>Offset of the bset header inside a record.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int BsetOffsetIn(bool firstRecord) => firstRecord ? FirstBsetOffset : EntryBsetOffset;

    /// <summary>Offset of the keys inside a record.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int KeysOffsetIn(bool firstRecord) => firstRecord ? FirstKeysOffset : EntryKeysOffset;

    /// <summary>Largest value a key may carry in a node of this size (DESIGN §3).</summary>
    public static int MaxValueBytes(int nodeSize) => Math.Min(BkeyFormat.MaxValueBytes, nodeSize / 4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static long RoundUp(long bytes, int blockSize) => (bytes + blockSize - 1) / blockSize * blockSize;

    /// <summary>True for the checksum types a node record may carry (None is never used for metadata).</summary>
    public static bool IsNodeChecksumType(byte type) => type != (byte)ChecksumType.None && Checksums.IsKnown(type);

    internal static NodeHeader ReadNodeHeader(ReadOnlySpan<byte> record) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(record[NodeSeqOffset..]),
        BinaryPrimitives.ReadUInt32LittleEndian(record[NodeGenerationOffset..]),
        (BtreeId)record[NodeBtreeIdOffset],
        record[NodeLevelOffset],
        Bpos.Read(record[NodeMinKeyOffset..]),
        Bpos.Read(record[NodeMaxKeyOffset..]));
}
