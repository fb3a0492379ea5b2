// Key types: one global, persisted numbering for the type of a key's value. Numbers never
// change once assigned; new types are appended. Behaviour per type lives in KeyTypeTable.
namespace Basalt.Format;

public enum KeyType : byte
{
    /// <summary>No value. A deletion marker (whiteout) in btrees without snapshots; dropped on node rewrite.</summary>
    Deleted = 0,
    /// <summary>No value. Persistent deletion in a snapshot-aware btree.</summary>
    Whiteout = 1,
    /// <summary>No value. An extent whose data is known to be lost; reads return an error.</summary>
    Error = 2,
    /// <summary>Opaque bytes. Used by the self-test btree, the demo and tests.</summary>
    Cookie = 3,
    /// <summary>No value. A deleted slot in a hashed btree that keeps probe chains intact.</summary>
    HashWhiteout = 4,
    /// <summary>Child pointer in an interior node or a btree root (BtreePtr value).</summary>
    BtreePtr = 5,
    /// <summary>Data extent: pointers to data with checksums.</summary>
    Extent = 6,
    /// <summary>Reserved (fallocate'd) space without data.</summary>
    Reservation = 7,
    /// <summary>Inode.</summary>
    Inode = 8,
    /// <summary>Directory entry.</summary>
    Dirent = 10,
    /// <summary>Extended attribute.</summary>
    Xattr = 11,
    /// <summary>Per-bucket allocation state.</summary>
    Alloc = 12,
    /// <summary>Pointer from a file extent into the reflink btree.</summary>
    ReflinkP = 15,
    /// <summary>Indirect, refcounted extent in the reflink btree.</summary>
    ReflinkV = 16,
    /// <summary>File data held in the key itself (a small file's sectors): no pointer, no bucket.</summary>
    InlineData = 17,
    /// <summary>No value; presence marker (freespace, need_discard, lru, orphans).</summary>
    Set = 25,
    /// <summary>Backpointer: the owner of a range of a bucket.</summary>
    Backpointer = 28,
    /// <summary>256 bucket generation numbers.</summary>
    BucketGens = 30,
    /// <summary>Resumable truncate.</summary>
    LoggedOpTruncate = 32,
    /// <summary>Resumable insert/collapse range.</summary>
    LoggedOpFinsert = 33,
    /// <summary>Accounting counters.</summary>
    Accounting = 34,
    /// <summary>Resumable reflink (a range shared in several transactions).</summary>
    LoggedOpReflink = 35,
    /// <summary>
    /// Journal only: a change to the accounting counters at its position. The commit or replay that
    /// applies it folds it into the accounting key there; no node ever holds one.
    /// </summary>
    AccountingDelta = 36,
    /// <summary>Test btree: an 8-byte counted value; its trigger keeps the test btree's summary key (count and sum) exact.</summary>
    Counted = 40,
}

public static class KeyTypes
{
    /// <summary>True for the types that mark a deletion rather than carry data.</summary>
    public static bool IsDeletion(this KeyType type) => type is KeyType.Deleted or KeyType.Whiteout;

    /// <summary>True for the extents-btree keys whose range holds file data (or data known lost): not holes, not reservations.</summary>
    public static bool HoldsData(this KeyType type) => type is KeyType.Extent or KeyType.InlineData or KeyType.ReflinkP or KeyType.Error;

    /// <summary>True for the extents-btree keys an inode's sector count (st_blocks) includes: data, inline data, shared data, reservations.</summary>
    public static bool CountsSectors(this KeyType type) => type is KeyType.Extent or KeyType.InlineData or KeyType.Reservation or KeyType.ReflinkP;

    /// <summary>True when a number is one of the assigned key types.</summary>
    public static bool IsKnown(byte type) => Enum.IsDefined((KeyType)type);

    public static string ToText(this KeyType type) => type switch
    {
        KeyType.Deleted => "deleted",
        KeyType.Whiteout => "whiteout",
        KeyType.Error => "error",
        KeyType.Cookie => "cookie",
        KeyType.HashWhiteout => "hash_whiteout",
        KeyType.BtreePtr => "btree_ptr",
        KeyType.Extent => "extent",
        KeyType.Reservation => "reservation",
        KeyType.Inode => "inode",
        KeyType.Dirent => "dirent",
        KeyType.Xattr => "xattr",
        KeyType.Alloc => "alloc",
        KeyType.ReflinkP => "reflink_p",
        KeyType.ReflinkV => "reflink_v",
        KeyType.InlineData => "inline_data",
        KeyType.Set => "set",
        KeyType.Backpointer => "backpointer",
        KeyType.BucketGens => "bucket_gens",
        KeyType.LoggedOpReflink => "logged_op_reflink",
        KeyType.LoggedOpTruncate => "logged_op_truncate",
        KeyType.LoggedOpFinsert => "logged_op_finsert",
        KeyType.Accounting => "accounting",
        KeyType.AccountingDelta => "accounting_delta",
        KeyType.Counted => "counted",
        _ => $"unknown({(byte)type})",
    };
}
