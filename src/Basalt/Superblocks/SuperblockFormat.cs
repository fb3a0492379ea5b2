// On-disk constants of the superblock: the fixed header's field offsets, the variable
// sections' type tags and payload layouts, where the copies live, persisted flag and feature
// bits. docs/format.md describes every byte; SuperblockLayoutTests pins these
// numbers against it. All integers are little-endian.
//
// The folder and namespace are Superblocks (plural): a type named Superblock inside a namespace
// Basalt.Superblock would be shadowed by the namespace for every caller elsewhere under Basalt.*
// (C# name lookup finds the namespace first).
using Basalt.Format;

namespace Basalt.Superblocks;

public static class SuperblockFormat
{
    // ---- Copies -------------------------------------------------------------------------

    /// <summary>Bytes reserved for each copy on disk; an encoded superblock never exceeds it.</summary>
    public const int CopySize = 64 * 1024;

    /// <summary>Byte offset of copy 0. Bytes [0, 4096) stay zero (partition-table probes).</summary>
    public const long FirstCopyOffset = 4096;

    /// <summary>Byte offset of copy 1, right after copy 0's reserved area.</summary>
    public const long SecondCopyOffset = FirstCopyOffset + CopySize;

    /// <summary>End of the start-of-device superblock area: [0, StartAreaEnd) is never allocated.</summary>
    public const long StartAreaEnd = SecondCopyOffset + CopySize;

    /// <summary>The end copy sits at the last <see cref="EndCopyAlignment"/>-aligned offset that leaves room for it.</summary>
    public const long EndCopyAlignment = 64 * 1024;

    /// <summary>Copies written by format: two at the start, one at the end.</summary>
    public const int CopyCount = 3;

    /// <summary>Most copies a layout section may list.</summary>
    public const int MaxCopies = 8;

    // ---- Fixed header (256 bytes) --------------------------------------------------------

    public const int HeaderSize = 256;

    public const int ChecksumOffset = 0;         // u64: checksum of bytes [8, TotalBytes)
    public const int MagicOffset = 8;            // 16 bytes: Magic, in text order
    public const int ChecksumTypeOffset = 24;    // u8: ChecksumType of this superblock's checksum
    public const int MetadataChecksumOffset = 25; // u8: ChecksumType for btree nodes and journal
    public const int VersionOffset = 26;         // u16
    public const int VersionMinOffset = 28;      // u16
    public const int DeviceIndexOffset = 30;     // u8: this device's index in the member table
    public const int DataChecksumOffset = 31;    // u8: checksum type of new data extents; 0 = crc32c
    public const int TotalBytesOffset = 32;      // u32: header + sections, multiple of 8
    public const int Reserved36Offset = 36;      // u32, zero
    public const int UuidOffset = 40;            // 16 bytes: filesystem uuid, never zero
    public const int UserUuidOffset = 56;        // 16 bytes: user-visible uuid, zero = same as uuid
    public const int LabelOffset = 72;           // 32 bytes: UTF-8, NUL padded
    public const int SeqOffset = 104;            // u64: +1 on every write
    public const int CopyOffsetOffset = 112;     // u64: byte offset this copy was written at
    public const int WriteTimeOffset = 120;      // i64: unix time, nanoseconds
    public const int FlagsOffset = 128;          // u64: SuperblockFlags
    public const int IncompatOffset = 136;       // u64: incompatible feature bits
    public const int CompatOffset = 144;         // u64: compatible feature bits
    public const int BlockSizeOffset = 152;      // u32 bytes
    public const int NodeSizeOffset = 156;       // u32 bytes
    public const int DeviceSizeOffset = 160;     // u64 bytes: the device size the geometry was made for
    public const int ReservedTailOffset = 168;   // 88 bytes, zero
    public const int ChecksummedFrom = 8;

    public const int UuidSize = 16;
    public const int LabelSize = 32;

    /// <summary>The named fields of the fixed header, in offset order (docs/format.md, "Fixed header").</summary>
    public static IReadOnlyList<SuperblockField> HeaderFields { get; } =
    [
        new("csum", ChecksumOffset, 8),
        new("magic", MagicOffset, 16),
        new("csum_type", ChecksumTypeOffset, 1),
        new("metadata_csum_type", MetadataChecksumOffset, 1),
        new("version", VersionOffset, 2),
        new("version_min", VersionMinOffset, 2),
        new("dev_idx", DeviceIndexOffset, 1),
        new("total_bytes", TotalBytesOffset, 4),
        new("uuid", UuidOffset, UuidSize),
        new("user_uuid", UserUuidOffset, UuidSize),
        new("label", LabelOffset, LabelSize),
        new("seq", SeqOffset, 8),
        new("copy_offset", CopyOffsetOffset, 8),
        new("write_time", WriteTimeOffset, 8),
        new("flags", FlagsOffset, 8),
        new("incompat", IncompatOffset, 8),
        new("compat", CompatOffset, 8),
        new("block_size", BlockSizeOffset, 4),
        new("node_size", NodeSizeOffset, 4),
        new("device_size", DeviceSizeOffset, 8),
    ];

    /// <summary>What lies at byte <paramref name="offset"/> of a copy: "header field label", "the sections".</summary>
    public static string DescribeOffset(int offset)
    {
        if (offset >= HeaderSize)
            return "the sections";
        foreach (var field in HeaderFields)
        {
            if (offset >= field.Offset && offset < field.Offset + field.Size)
                return $"header field {field.Name}";
        }
        return "a reserved header field";
    }

    /// <summary>The 16 magic bytes, "BASALT SUPERBLK" and a NUL, stored in text order.</summary>
    public static ReadOnlySpan<byte> Magic => "BASALT SUPERBLK\0"u8;

    // ---- Sections ------------------------------------------------------------------------

    /// <summary>Every section starts with {u32 bytes (incl. this header, multiple of 8), u32 type}.</summary>
    public const int SectionHeaderSize = 8;

    // Members payload: {u32 count, u32 entry_bytes} then count entries of entry_bytes.
    public const int MembersHeaderSize = 8;
    public const int MemberEntrySize = 64;
    public const int MaxMembers = 64;
    public const int MemberUuidOffset = 0;           // 16 bytes, non-zero
    public const int MemberNbucketsOffset = 16;      // u64: buckets [0, nbuckets) of bucket_size
    public const int MemberBucketSizeOffset = 24;    // u32 bytes
    public const int MemberFirstBucketOffset = 28;   // u32: first allocatable bucket
    public const int MemberNodeAreaFirstOffset = 32; // u64: first bucket of the node area
    public const int MemberNodeAreaCountOffset = 40; // u64: buckets in the node area
    public const int MemberStateOffset = 48;         // u8: MemberState
    public const int MemberFlagsOffset = 49;         // u8: MemberFlags
    public const int MemberNodeRegionShiftOffset = 50; // u8: node-region map regions are 2^shift buckets
    public const int MemberReservedOffset = 51;      // 5 bytes, zero
    public const int MemberNodeRegionMapOffset = 56; // u64: bit i set when region i has ever held btree nodes

    // Journal payload: {u32 count, u32 reserved} then count ranges {u64 start bucket, u64 buckets}.
    public const int JournalHeaderSize = 8;
    public const int JournalRangeSize = 16;
    public const int MaxJournalRanges = 1024;

    // Btree roots payload: {u32 count, u32 reserved} then count entries:
    // {u8 btree, u8 level, u16 value_bytes, u32 reserved} + value padded to 8 bytes.
    public const int RootsHeaderSize = 8;
    public const int RootEntryHeaderSize = 8;

    // Clean payload: {i64 last_mount_time, i64 last_unmount_time, u64 journal_seq, u64 reserved}.
    // journal_seq is the checkpoint: the roots hold every journal entry up to it (Clean or not).
    public const int CleanPayloadSize = 32;

    // Journal blacklist payload: {u32 count, u32 reserved} then count ranges {u64 first seq, u64 last seq},
    // ascending, disjoint.
    public const int BlacklistHeaderSize = 8;
    public const int BlacklistRangeSize = 16;
    public const int MaxBlacklistRanges = 1024;

    // Error counters payload: {u32 count, u32 reserved} then {u16 id, u16 0, u32 0, u64 count, i64 last_time}.
    public const int ErrorsHeaderSize = 8;
    public const int ErrorEntrySize = 24;

    // Layout payload: {u32 copy_count, u32 copy_size} then copy_count u64 byte offsets, ascending.
    public const int LayoutHeaderSize = 8;

    // Previous-sectors payload: {u32 count, u32 reserved} then count u32 crc32c, one per 512-byte
    // sector of the encoded copy this superblock replaced (sector 0 with csum and offset read as
    // zero). The encoder writes it first, right after the header, so the first sector of every copy
    // holds its count and first entries.
    public const int PreviousSectorsHeaderSize = 8;
    public const int PreviousSectorEntrySize = 4;
    public const int MaxPreviousSectors = CopySize / FormatLimits.SectorSize;
}

/// <summary>A named field of the superblock's fixed header: its byte offset inside a copy and its size.</summary>
public readonly record struct SuperblockField(string Name, int Offset, int Size);

/// <summary>Type tags of superblock sections. Permanent numbers.</summary>
public enum SectionType : uint
{
    /// <summary>The member (device) table with each device's geometry and node area.</summary>
    Members = 1,
    /// <summary>Bucket ranges reserved for the journal on this device.</summary>
    Journal = 2,
    /// <summary>One BtreeRoot per btree that has a root.</summary>
    BtreeRoots = 3,
    /// <summary>Clean-shutdown data: mount/unmount times, journal seq.</summary>
    Clean = 4,
    /// <summary>Persisted fsck error counters.</summary>
    ErrorCounters = 5,
    /// <summary>Byte offsets of every superblock copy.</summary>
    Layout = 6,
    /// <summary>Journal seq ranges written but never flushed before a crash: never replayed.</summary>
    JournalBlacklist = 7,
    /// <summary>crc32c of each sector of the superblock this one replaced: tells a torn copy from a damaged one.</summary>
    PreviousSectors = 8,
}

/// <summary>Header flag bits. Permanent numbers.</summary>
[Flags]
public enum SuperblockFlags : ulong
{
    None = 0,
    /// <summary>Cleanly unmounted: the clean section and roots are current.</summary>
    Clean = 1UL << 0,
    /// <summary>fsck or a mount found errors that are not yet repaired.</summary>
    HasErrors = 1UL << 1,
    /// <summary>Topology errors were found: run the topology pass before trusting the btrees.</summary>
    HasTopologyErrors = 1UL << 2,
}

/// <summary>State of a member device. Permanent numbers.</summary>
/// <summary>Per-device flags (member entry byte 49).</summary>
[Flags]
public enum MemberFlags : byte
{
    None = 0,
    /// <summary>The device's allocation info (alloc keys, freespace, accounting) has been created.</summary>
    AllocInitialized = 1,
    /// <summary>Freed buckets are discarded (punched or BLKDISCARD) before reuse.</summary>
    Discard = 2,
}

public enum MemberState : byte
{
    ReadWrite = 0,
    ReadOnly = 1,
    Failed = 2,
    Spare = 3,
}

/// <summary>
/// Names of the feature bits. An unknown incompatible bit makes the superblock unusable
/// (the reader refuses it by number); unknown compatible bits are kept and ignored.
/// </summary>
public static class SuperblockFeatures
{
    /// <summary>Known incompatible bits: none are defined by format version 1.</summary>
    public static IReadOnlyDictionary<int, string> IncompatNames { get; } = new Dictionary<int, string>();

    /// <summary>Known compatible bits: none are defined by format version 1.</summary>
    public static IReadOnlyDictionary<int, string> CompatNames { get; } = new Dictionary<int, string>();

    /// <summary>Incompatible bits this build understands.</summary>
    public static ulong SupportedIncompat
    {
        get
        {
            var mask = 0UL;
            foreach (var bit in IncompatNames.Keys)
                mask |= 1UL << bit;
            return mask;
        }
    }

    public static string IncompatName(int bit) => IncompatNames.TryGetValue(bit, out var n) ? n : "unknown";

    public static string CompatName(int bit) => CompatNames.TryGetValue(bit, out var n) ? n : "unknown";

    /// <summary>"bit 3 (name), bit 5 (unknown)" for the set bits of <paramref name="bits"/>.</summary>
    public static string Describe(ulong bits, bool incompat)
    {
        var parts = new List<string>();
        for (var bit = 0; bit < 64; bit++)
        {
            if ((bits & (1UL << bit)) != 0)
                parts.Add($"bit {bit} ({(incompat ? IncompatName(bit) : CompatName(bit))})");
        }
        return parts.Count == 0 ? "none" : string.Join(", ", parts);
    }
}
