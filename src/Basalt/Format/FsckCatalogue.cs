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

/// <summary>Permanent ids of fsck passes, in the order they run.</summary>
public enum FsckPassId : byte
{
    CheckSuperblock = 1,
    CheckJournal = 2,
    CheckTopology = 3,
    CheckBtreeNodes = 4,
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
