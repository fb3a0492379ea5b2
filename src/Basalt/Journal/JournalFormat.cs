// On-disk constants of the journal (docs/format.md "Journal"): the entry header's field offsets,
// the record header, the persisted record types and flags, and the entry magic. All integers are
// little-endian. JournalLayoutTests pin these numbers against the document.
//
// The journal is a ring of buckets listed in the superblock. Entries are written one after
// another inside a bucket, each starting at a block boundary and padded with zeroes to a whole
// number of blocks; an entry never spans two buckets. An entry is a 64-byte header followed by
// typed records; its checksum covers everything after the checksum field up to the end of the
// records, so a torn or partly written entry fails it.
using System.Buffers.Binary;
using Basalt.Format;

namespace Basalt.Journal;

public static class JournalFormat
{
    // ---- Entry header (64 bytes) ------------------------------------------------------------

    public const int HeaderSize = 64;

    public const int ChecksumOffset = 0;      // u64: checksum of [8, 64 + payload_bytes), zero-extended
    public const int MagicOffset = 8;         // u64: entry magic, derived from the filesystem uuid
    public const int SeqOffset = 16;          // u64: this entry's seq; unique, increasing, never reused
    public const int LastSeqOffset = 24;      // u64: oldest seq still needed when written (trusted in flush entries)
    public const int VersionOffset = 32;      // u16: format version of the writer
    public const int ChecksumTypeOffset = 34; // u8: ChecksumType of this entry (not none)
    public const int FlagsOffset = 35;        // u8: JournalEntryFlags
    public const int PayloadBytesOffset = 36; // u32: bytes of records after the header, a multiple of 8
    public const int ReservedOffset = 40;     // 24 bytes, zero
    public const int ReservedSize = 24;
    public const int ChecksummedFrom = 8;

    // ---- Record header (8 bytes) ------------------------------------------------------------

    public const int RecordHeaderSize = 8;
    public const int RecordBytesOffset = 0;   // u32: record size including this header, a multiple of 8
    public const int RecordTypeOffset = 4;    // u8: JournalRecordType
    public const int RecordBtreeOffset = 5;   // u8: BtreeId (btree_keys, btree_root)
    public const int RecordLevelOffset = 6;   // u8: level (btree_keys: of the keys; btree_root: of the root)
    public const int RecordReservedOffset = 7; // u8: zero

    // Record payloads.
    public const int BlacklistPayloadSize = 16; // {u64 first seq, u64 last seq}, inclusive
    public const int DatetimePayloadSize = 8;   // {i64 ns since the Unix epoch}

    /// <summary>Largest entry (header + records) in bytes; an entry is also at most one bucket.</summary>
    public const int MaxEntryBytes = 1024 * 1024;

    /// <summary>XOR'd into the uuid-derived magic: "BSLTJRNL" as a little-endian u64.</summary>
    public const ulong MagicXor = 0x4C4E524A544C5342UL;

    /// <summary>
    /// The entry magic of the filesystem with uuid <paramref name="uuid"/>: uuid bytes 0..7 (RFC 4122
    /// order) as a little-endian u64, XOR "BSLTJRNL". Entries left on the device by an earlier
    /// filesystem never validate.
    /// </summary>
    public static ulong MagicFor(Guid uuid)
    {
        Span<byte> bytes = stackalloc byte[16];
        uuid.TryWriteBytes(bytes, bigEndian: true, out _);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes) ^ MagicXor;
    }

    /// <summary>Bytes an entry with <paramref name="payloadBytes"/> of records takes on disk.</summary>
    public static int DiskBytes(int payloadBytes, int blockSize) => checked((int)RoundUp(HeaderSize + (long)payloadBytes, blockSize));

    /// <summary>Bytes a btree_keys record holding keys of <paramref name="keyBytes"/> encoded bytes takes.</summary>
    public static int KeysRecordBytes(int keyBytes) => RecordHeaderSize + keyBytes;

    /// <summary>Bytes a btree_root record takes (a pointer value, already a multiple of 8, or nothing for "no root").</summary>
    public static int RootRecordBytes(int ptrBytes) => RecordHeaderSize + ((ptrBytes + 7) & ~7);

    public static long RoundUp(long value, int multiple) => (value + multiple - 1) / multiple * multiple;
}

/// <summary>Entry header flag bits. Permanent numbers.</summary>
[Flags]
public enum JournalEntryFlags : byte
{
    None = 0,
    /// <summary>Written without a preceding device flush: trusted only when a later flush entry covers it.</summary>
    NoFlush = 1 << 0,
}

/// <summary>Types of the records inside a journal entry. Permanent numbers.</summary>
public enum JournalRecordType : byte
{
    /// <summary>Keys of one btree at one level, back to back in the key encoding (level 0: transactions; above: interior updates).</summary>
    BtreeKeys = 1,
    /// <summary>The root of one btree: its level and pointer value; an empty payload means the btree has no root.</summary>
    BtreeRoot = 2,
    /// <summary>A range of seqs written but never flushed before a crash: never replayed, their bsets ignored.</summary>
    Blacklist = 3,
    /// <summary>Wall-clock time the entry was written.</summary>
    Datetime = 4,
    /// <summary>
    /// A root change removed levels (a collapse; a reset: level 0): every key of the btree at the
    /// record's level or above that an earlier record journaled is void. No payload.
    /// </summary>
    LevelsVoided = 5,
}

public static class JournalRecordTypes
{
    public static bool IsKnown(byte type) => type is >= (byte)JournalRecordType.BtreeKeys and <= (byte)JournalRecordType.LevelsVoided;

    public static string ToText(this JournalRecordType type) => type switch
    {
        JournalRecordType.BtreeKeys => "btree_keys",
        JournalRecordType.BtreeRoot => "btree_root",
        JournalRecordType.Blacklist => "blacklist",
        JournalRecordType.Datetime => "datetime",
        JournalRecordType.LevelsVoided => "levels_voided",
        _ => $"unknown({(byte)type})",
    };
}

/// <summary>Checks for the values of an entry header that bound everything else.</summary>
internal static class JournalHeaderChecks
{
    public static bool IsEntryChecksumType(byte type) => type != (byte)ChecksumType.None && Checksums.IsKnown(type);
}
