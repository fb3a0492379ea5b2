// The fsck error catalogue and the pass table (persisted enum tables, so they live with the format): permanent numbers for every kind of finding and
// every pass, with what each means and how it is repaired. docs/fsck-errors.md is generated
// from this table (FsckDocs) and a test fails when the committed file is stale.
namespace Basalt.Format;

/// <summary>Permanent ids of fsck findings. Numbers never change; new ids are appended in their range.</summary>
public enum FsckErrorId : ushort
{
    // 1-29: superblock
    SbCopyUnreadable = 1,
    SbCopyBadMagic = 2,
    SbCopyBadChecksum = 3,
    SbCopyInvalid = 4,
    SbCopyStale = 5,
    SbRootInvalid = 6,
    SbMemberInvalid = 7,
    SbErrorCountersInvalid = 8,
    SbCopiesDiffer = 9,
    DeviceTruncated = 10,
    BlockDeviceTooSmall = 11,

    // 30-79: btree node read validation
    BtreeNodeUnreadable = 30,
    BtreeNodeBadMagic = 31,
    BtreeNodeBadSeq = 32,
    BtreeNodeBadBtree = 33,
    BtreeNodeBadLevel = 34,
    BtreeNodeBadMinKey = 35,
    BtreeNodeBadMaxKey = 36,
    BtreeNodeUnsupportedVersion = 37,
    BtreeNodeBsetOlderThanSbMin = 38,
    BtreeNodeBsetNewerThanSb = 39,
    BsetUnknownChecksum = 40,
    BsetBadChecksum = 41,
    BsetPastEndOfBtreeNode = 42,
    BsetWrongSectorOffset = 43,
    BsetEmpty = 44,
    BtreeNodeBkeyPastBsetEnd = 45,
    BtreeNodeBkeyBadFormat = 46,
    BtreeNodeBkeyBadU64s = 47,
    BtreeNodeBkeyOutOfOrder = 48,
    BkeyInvalidTypeForBtree = 49,
    BkeyBeforeStartOfBtreeNode = 50,
    BkeyAfterEndOfBtreeNode = 51,
    BkeyBadSnapshot = 52,
    BkeyBadSize = 53,
    BkeyAtPosMax = 54,
    BkeyValueInvalid = 55,
    BtreeNodeDataMissing = 56,
    BtreeNodeBsetAfterEnd = 57,
    BtreeNodeBadHeader = 58,

    // 80-99: btree topology
    BtreeRootUnreadable = 80,
    BtreeRootBadRange = 81,
    BtreeNodeTopologyBadMinKey = 82,
    BtreeNodeTopologyBadMaxKey = 83,
    BtreeNodeTopologyOverwrittenByNextNode = 84,
    BtreeNodeTopologyOverwrittenByPrevNode = 85,
    BtreeNodeTopologyInteriorNodeEmpty = 86,
    BtreeNodeTopologyGap = 87,
    BtreeNodeTopologyChildLevelMismatch = 88,
    BtreeNodeStaleReachable = 89,
    BtreeRangeRebuiltFromScan = 90,
    BtreeRangeRestoredFromOlderVersion = 91,

    // 100-129: journal
    JournalEntryBadChecksum = 100,
    JournalEntryBadHeader = 101,
    JournalEntryBadRecord = 102,
    JournalEntriesMissing = 103,
    JournalLastSeqNewerThanSeq = 104,
    JournalSeqBlacklistedFlush = 105,
    JournalCleanMismatch = 106,
    JournalReplayFailed = 107,

    // 130-159: allocation info (check_allocations, check_alloc_info, check_lrus, gc_gens)
    PtrToInvalidDevice = 130,
    PtrToInvalidBucket = 131,
    PtrGenNewerThanBucketGen = 132,
    StaleDirtyPtr = 133,
    PtrBucketDataTypeMismatch = 134,
    AllocKeyDataTypeWrong = 135,
    AllocKeyGenWrong = 136,
    AllocKeyDirtySectorsWrong = 137,
    AllocKeyCachedSectorsWrong = 138,
    AllocKeyFragmentationLruWrong = 139,
    AllocKeyToInvalidBucket = 140,
    AccountingMismatch = 141,
    FreespaceKeyWrong = 142,
    NeedDiscardKeyWrong = 143,
    BucketGensKeyWrong = 144,
    LruEntryBad = 145,
    AllocKeyToMissingLruEntry = 146,
    AllocKeyOldestGenWrong = 147,
    RepairNoSpace = 148,

    // 160-179: backpointers
    BackpointerToInvalidBucket = 160,
    BackpointerToEmptyBucket = 161,
    PtrToMissingBackpointer = 162,
    BackpointerToMissingPtr = 163,
    ExtentDataLost = 164,
    PtrDuplicate = 165,

    // 180-219: files (check_inodes … check_nlinks)
    InodeMissing = 180,
    InodeUnlinkedNotOrphan = 181,
    OrphanKeyBad = 182,
    TruncateInterrupted = 183,
    TruncateIntentBad = 184,
    InodeSalvaged = 185,
    ExtentToMissingInode = 188,
    ExtentInNonFile = 189,
    ExtentPastEndOfFile = 190,
    InodeSectorsWrong = 191,
    SymlinkTargetBad = 192,
    DirentToMissingInode = 195,
    DirentWrongType = 196,
    DirentBadHash = 197,
    DirentDuplicateName = 198,
    DirentInNonDirectory = 199,
    DirentSalvaged = 200,
    XattrToMissingInode = 203,
    XattrBadHash = 204,
    RootMissing = 206,
    LostFoundMissing = 207,
    DirectoryUnreachable = 210,
    DirectoryMultipleLinks = 211,
    DirectoryBackrefWrong = 212,
    DirectoryLoop = 213,
    InodeNlinkWrong = 215,
    InodeUnreachable = 216,
    ReflinkVRefcountWrong = 217,
    ReflinkVUnreferenced = 218,
    ReflinkPToMissingReflinkV = 219,
}

/// <summary>How a node read reacts to a finding (DESIGN §6, digest §4.1).</summary>
public enum NodeErrorClass : byte
{
    /// <summary>Repaired in memory (key dropped, bset truncated); the node is rewritten later.</summary>
    Fixable,
    /// <summary>Probably media damage: another replica may be good. Without one, treated as fixable.</summary>
    WantRetry,
    /// <summary>We read the wrong thing. Without another replica the node is bad.</summary>
    MustRetry,
    /// <summary>The node cannot be used: a topology error, repaired by dropping it from its parent.</summary>
    BadNode,
    /// <summary>Written by an unsupported format version: refused, never repaired.</summary>
    Incompatible,
}

/// <summary>When fsck applies a finding's repair.</summary>
public enum RepairPolicy : byte
{
    /// <summary>Safe: applied by -p and -y (and at mount when found at runtime).</summary>
    Automatic,
    /// <summary>Applied only with -y (or a yes at the prompt).</summary>
    WithYes,
    /// <summary>No repair exists; the finding is reported and left.</summary>
    Never,
}

/// <summary>
/// Permanent ids of fsck passes. They run in the order of <see cref="FsckCatalogue.Passes"/>: a
/// pass added later takes the next id but may run before older ones (check_reflink does).
/// </summary>
public enum FsckPassId : byte
{
    CheckSuperblock = 1,
    CheckJournal = 2,
    CheckTopology = 3,
    CheckBtreeNodes = 4,
    CheckAllocations = 5,
    CheckAllocInfo = 6,
    CheckLrus = 7,
    GcGens = 8,
    CheckBtreeBackpointers = 9,
    CheckExtentsToBackpointers = 10,
    CheckBackpointersToExtents = 11,
    CheckInodes = 12,
    CheckExtents = 13,
    CheckDirents = 14,
    CheckXattrs = 15,
    CheckRoot = 16,
    CheckDirectoryStructure = 17,
    CheckNlinks = 18,
    CheckReflink = 19,
}

public sealed record FsckErrorInfo(
    FsckErrorId Id,
    string Name,
    NodeErrorClass? ReadClass,
    RepairPolicy Policy,
    string Meaning,
    string Repair);

public sealed record FsckPassInfo(FsckPassId Id, string Name, string Description);

public static partial class FsckCatalogue
{
    public static IReadOnlyList<FsckPassInfo> Passes { get; } =
    [
        new(FsckPassId.CheckSuperblock, "check_superblock",
            "read every superblock copy, validate it, and rewrite damaged or stale copies from the newest good one; the trace of a superblock write cut short by a crash is counted, not reported, and a writing run finishes that write; a device shorter than the size the superblock records is reported (an image file is extended back to that size)"),
        new(FsckPassId.CheckJournal, "check_journal",
            "read and validate every journal entry; recover the btrees from the superblock and the journal (replay); damaged or missing entries are reported with the seqs they cost"),
        new(FsckPassId.CheckTopology, "check_topology",
            "walk the interior nodes of every btree: children tile their parent's range exactly; unreadable nodes are dropped"),
        new(FsckPassId.CheckBtreeNodes, "check_btree_nodes",
            "read and validate every node; nodes repaired in memory are rewritten"),
        new(FsckPassId.CheckReflink, "check_reflink",
            "every indirect extent's refcount equals the number of reflink pointers whose padded range overlaps it (counted in bounded rounds over reflink space, --max-mem), none is unreferenced, and every reflink pointer's live range is covered by the reflink btree; runs before the space passes, so the data of the indirect extents it deletes is released before check_allocations recounts"),
        new(FsckPassId.CheckAllocations, "check_allocations",
            "mark and sweep: walk every pointer (extents and indirect extents; journal and node-area buckets by the layout), recompute each bucket's gen, data type, dirty and cached sectors and fragmentation index and the per-device accounting from first principles, and compare them field by field with the alloc and accounting keys"),
        new(FsckPassId.CheckAllocInfo, "check_alloc_info",
            "every bucket's freespace run membership, need_discard key and bucket_gens entry agree with its alloc key"),
        new(FsckPassId.CheckLrus, "check_lrus",
            "every fragmentation LRU entry names a bucket whose alloc key carries that index, and every such bucket has its entry"),
        new(FsckPassId.GcGens, "gc_gens",
            "no bucket's oldest_gen is newer than the oldest gen a pointer into it carries (or than its own gen)"),
        new(FsckPassId.CheckBtreeBackpointers, "check_btree_backpointers",
            "every backpointer names a data bucket of an existing device whose alloc info says it holds data of the backpointer's type"),
        new(FsckPassId.CheckExtentsToBackpointers, "check_extents_to_backpointers",
            "every non-cached pointer has its backpointer; backpointer sectors are summed per bucket first and only buckets whose sums disagree with their alloc key are checked pointer by pointer, in bounded passes over bucket ranges (--max-mem)"),
        new(FsckPassId.CheckBackpointersToExtents, "check_backpointers_to_extents",
            "every backpointer names an existing key that holds the matching pointer and every non-cached pointer has its backpointer: backpointers sorted by owner are merged with an ordered walk of the extents (then of the reflink btree's indirect extents, for backpointers owned by it), in bounded rounds over each keyspace (--max-mem)"),
        new(FsckPassId.CheckInodes, "check_inodes",
            "every inode number that dirents live under, or that a dirent names while extents live under it, has an inode (one a node read dropped as undecodable is rebuilt); an inode linked nowhere is on the orphan list and every orphan key names an unlinked inode; interrupted truncates are finished"),
        new(FsckPassId.CheckExtents, "check_extents",
            "every extent (reflink pointers included) belongs to an existing regular file or symlink and lies within its size (rounded up to a sector); each inode's sector count equals the sum of its extents, reservations and reflink pointers"),
        new(FsckPassId.CheckDirents, "check_dirents",
            "every dirent lives in an existing directory, names an existing inode of its type, is reachable by probing from its name's hash, and no directory holds a name twice"),
        new(FsckPassId.CheckXattrs, "check_xattrs",
            "every xattr belongs to an existing inode and is reachable by probing from its name's hash"),
        new(FsckPassId.CheckRoot, "check_root",
            "once the filesystem has any inode: the root directory exists and lost+found is a directory named lost+found in it"),
        new(FsckPassId.CheckDirectoryStructure, "check_directory_structure",
            "every directory but the root is named by exactly one dirent, its parent backref names that dirent, and following parents from it reaches the root without a loop; unreachable directories are reattached in lost+found"),
        new(FsckPassId.CheckNlinks, "check_nlinks",
            "every inode's link count equals the dirents naming it (a directory's: 2 + its subdirectories), counted in bounded rounds over inode ranges (--max-mem); inodes no dirent names and no orphan key holds are reattached in lost+found"),
    ];

    // Built on first use: the entries live in another part of this partial class, and the
    // order of static initialisers across partial files is not defined.
    private static Dictionary<FsckErrorId, FsckErrorInfo>? s_byId;

    private static Dictionary<FsckErrorId, FsckErrorInfo> ById => s_byId ??= All.ToDictionary(e => e.Id);

    public static FsckErrorInfo Get(FsckErrorId id) =>
        ById.TryGetValue(id, out var info) ? info : throw new ArgumentOutOfRangeException(nameof(id), $"no fsck error id {(ushort)id}");

    public static bool TryGet(ushort id, out FsckErrorInfo? info) => ById.TryGetValue((FsckErrorId)id, out info);

    public static string NameOf(FsckErrorId id) => Get(id).Name;
}
