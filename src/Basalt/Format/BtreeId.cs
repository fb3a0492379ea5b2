// Btree ids: one btree per kind of key. The numbers are permanent on-disk values; ids are
// reserved here for every btree of the architecture, including those that arrive later.
namespace Basalt.Format;

public enum BtreeId : byte
{
    Extents = 0,
    Inodes = 1,
    Dirents = 2,
    Xattrs = 3,
    Alloc = 4,
    Backpointers = 5,
    Freespace = 6,
    NeedDiscard = 7,
    Lru = 8,
    BucketGens = 9,
    Reflink = 10,
    Orphans = 11,
    Accounting = 12,
    LoggedOps = 13,
    /// <summary>Reserved for snapshots.</summary>
    Snapshots = 14,
    /// <summary>Reserved for subvolumes.</summary>
    Subvolumes = 15,
    /// <summary>Reserved for erasure-coding stripes.</summary>
    Stripes = 16,
    /// <summary>Reserved for snapshot trees.</summary>
    SnapshotTrees = 17,
    /// <summary>Opaque cookie keys for self-tests, the demo and benchmarks.</summary>
    Test = 31,
}

/// <summary>What a btree id stores and how its keys are validated.</summary>
public sealed record BtreeDescriptor(
    BtreeId Id,
    string Name,
    string Description,
    bool IsExtents,
    bool HasSnapshots,
    KeyType[] AllowedTypes,
    KeyType[]? DeltaTypes = null)
{
    public bool Allows(KeyType type) =>
        type == KeyType.Deleted || Array.IndexOf(AllowedTypes, type) >= 0;

    /// <summary>
    /// True for a journal-only delta type of this btree: transactions and journal entries carry it,
    /// applying it folds it into the key at its position, and a node never holds it.
    /// </summary>
    public bool AllowsDelta(KeyType type) => DeltaTypes is not null && Array.IndexOf(DeltaTypes, type) >= 0;
}

public static class BtreeIds
{
    /// <summary>The largest btree id the format can hold (roots table size - 1).</summary>
    public const int MaxId = 63;

    private static readonly BtreeDescriptor[] s_table =
    [
        new(BtreeId.Extents, "extents", "file data extents, indexed by end position", true, true,
            [KeyType.Whiteout, KeyType.Error, KeyType.Extent, KeyType.Reservation, KeyType.ReflinkP, KeyType.InlineData]),
        new(BtreeId.Inodes, "inodes", "inodes by number", false, true, [KeyType.Whiteout, KeyType.Inode]),
        new(BtreeId.Dirents, "dirents", "directory entries by (dir, name hash)", false, true,
            [KeyType.Whiteout, KeyType.HashWhiteout, KeyType.Dirent]),
        new(BtreeId.Xattrs, "xattrs", "extended attributes by (inode, name hash)", false, true,
            [KeyType.Whiteout, KeyType.HashWhiteout, KeyType.Xattr]),
        new(BtreeId.Alloc, "alloc", "per-bucket allocation state", false, false, [KeyType.Alloc]),
        new(BtreeId.Backpointers, "backpointers", "owner of each allocated range", false, false, [KeyType.Backpointer]),
        new(BtreeId.Freespace, "freespace", "runs of free buckets: a set key at (device, end bucket) whose size is the run length", true, false, [KeyType.Set]),
        new(BtreeId.NeedDiscard, "need_discard", "buckets awaiting discard", false, false, [KeyType.Set]),
        new(BtreeId.Lru, "lru", "least-recently-used index of buckets", false, false, [KeyType.Set]),
        new(BtreeId.BucketGens, "bucket_gens", "bucket generations, 256 per key", false, false, [KeyType.BucketGens]),
        new(BtreeId.Reflink, "reflink", "refcounted indirect extents", true, false,
            [KeyType.ReflinkV, KeyType.Error, KeyType.InlineData]),
        new(BtreeId.Orphans, "orphans", "open-but-unlinked inodes", false, true, [KeyType.Set]),
        new(BtreeId.Accounting, "accounting", "space accounting counters", false, false, [KeyType.Accounting],
            [KeyType.AccountingDelta]),
        new(BtreeId.LoggedOps, "logged_ops", "resumable multi-transaction operations", false, false,
            [KeyType.LoggedOpTruncate, KeyType.LoggedOpFinsert, KeyType.LoggedOpReflink]),
        new(BtreeId.Snapshots, "snapshots", "reserved: snapshots", false, false, []),
        new(BtreeId.Subvolumes, "subvolumes", "reserved: subvolumes", false, false, []),
        new(BtreeId.Stripes, "stripes", "reserved: erasure-coding stripes", false, false, []),
        new(BtreeId.SnapshotTrees, "snapshot_trees", "reserved: snapshot trees", false, false, []),
        new(BtreeId.Test, "test", "opaque cookie keys for self-tests, the demo and the crash workload; counted keys with their summary",
            false, false, [KeyType.Cookie, KeyType.Counted]),
    ];

    private static readonly BtreeDescriptor?[] s_byId = BuildIndex();

    private static BtreeDescriptor?[] BuildIndex()
    {
        var index = new BtreeDescriptor?[MaxId + 1];
        foreach (var d in s_table)
            index[(int)d.Id] = d;
        return index;
    }

    public static IReadOnlyList<BtreeDescriptor> All => s_table;

    public static bool IsKnown(byte id) => id <= MaxId && s_byId[id] is not null;

    public static BtreeDescriptor Describe(BtreeId id) =>
        (byte)id <= MaxId && s_byId[(byte)id] is { } d ? d : throw new ArgumentOutOfRangeException(nameof(id), $"unknown btree id {(byte)id}");

    public static string ToText(this BtreeId id) =>
        (byte)id <= MaxId && s_byId[(byte)id] is { } d ? d.Name : $"btree{(byte)id}";

    public static bool TryParse(string? name, out BtreeId id)
    {
        foreach (var d in s_table)
        {
            if (string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                id = d.Id;
                return true;
            }
        }
        id = default;
        return false;
    }
}
