// Key validation: the generic rules every key must satisfy in its btree and node (type allowed,
// size, snapshot, position inside the node), then its type's value rules from KeyTypeTable.
// Node reads drop a key that fails (a fixable finding); writers may run it before a write. The
// generic checks allocate nothing; a detail string is built only for a failing key.
using Basalt.Btree.Node;
using Basalt.Format;

namespace Basalt.Btree;

public static class KeyValidation
{
    /// <inheritdoc cref="Validate(BtreeId, byte, in Bkey, ReadOnlySpan{byte}, Bpos, Bpos, int, long, out FsckErrorId, out string)"/>
    public static bool Validate(BtreeId btree, byte level, in Bkey key, ReadOnlySpan<byte> value, Bpos nodeMin, Bpos nodeMax,
        int nodeSize, out FsckErrorId id, out string detail) =>
        Validate(btree, level, key, value, nodeMin, nodeMax, nodeSize, deviceSize: 0, out id, out detail);

    /// <summary>
    /// Validates a key of a node of <paramref name="btree"/> at <paramref name="level"/> covering
    /// [<paramref name="nodeMin"/>, <paramref name="nodeMax"/>]. Returns false with the finding's id
    /// and a detail line on the first rule the key breaks.
    /// </summary>
    /// <param name="deviceSize">Device size in bytes for pointer checks; 0 when unknown.</param>
    public static bool Validate(BtreeId btree, byte level, in Bkey key, ReadOnlySpan<byte> value, Bpos nodeMin, Bpos nodeMax,
        int nodeSize, long deviceSize, out FsckErrorId id, out string detail) =>
        Validate(btree, level, key, value, nodeMin, nodeMax, nodeSize, deviceSize, journal: false, out id, out detail);

    /// <summary>
    /// Validates a key a journal entry carries: the rules of a node's key, except that a leaf key
    /// may also be one of its btree's journal-only delta types (<see cref="BtreeDescriptor.DeltaTypes"/>).
    /// </summary>
    public static bool ValidateJournalKey(BtreeId btree, byte level, in Bkey key, ReadOnlySpan<byte> value, int nodeSize,
        out FsckErrorId id, out string detail) =>
        Validate(btree, level, key, value, Bpos.Min, Bpos.Max, nodeSize, deviceSize: 0, journal: true, out id, out detail);

    private static bool Validate(BtreeId btree, byte level, in Bkey key, ReadOnlySpan<byte> value, Bpos nodeMin, Bpos nodeMax,
        int nodeSize, long deviceSize, bool journal, out FsckErrorId id, out string detail)
    {
        if (!CheckGeneric(btree, level, key, value.Length, nodeMin, nodeMax, nodeSize, journal, out id))
        {
            detail = DescribeGeneric(id, btree, level, key, value.Length, nodeMin, nodeMax, nodeSize);
            return false;
        }
        var context = new KeyValueContext(btree, level, key, nodeSize, deviceSize);
        if (!KeyTypeTable.ValidateValue(in context, value, out var problem))
        {
            id = FsckErrorId.BkeyValueInvalid;
            detail = $"{key.ToText()}: {problem}";
            return false;
        }
        detail = string.Empty;
        return true;
    }

    /// <summary>
    /// Validates every key of a run about to be written into a node of <paramref name="btree"/> at
    /// <paramref name="level"/> covering [<paramref name="nodeMin"/>, <paramref name="nodeMax"/>]: the
    /// write-side twin of the read checks, so a node never goes to disk with a key a read would drop.
    /// Returns false with the index of the first bad key.
    /// </summary>
    public static bool ValidateRun(BtreeId btree, byte level, KeyRun keys, Bpos nodeMin, Bpos nodeMax, int nodeSize,
        out int index, out FsckErrorId id, out string detail)
    {
        ArgumentNullException.ThrowIfNull(keys);
        for (index = 0; index < keys.Count; index++)
        {
            ref readonly var entry = ref keys[index];
            if (index > 0 && keys[index - 1].Key.Pos >= entry.Key.Pos)
            {
                id = FsckErrorId.BtreeNodeBkeyOutOfOrder;
                detail = $"{entry.Key.ToText()} not after {keys[index - 1].Key.Pos.ToText()}";
                return false;
            }
            if (!Validate(btree, level, entry.Key, keys.ValueOf(index), nodeMin, nodeMax, nodeSize, out id, out detail))
                return false;
        }
        index = -1;
        id = default;
        detail = string.Empty;
        return true;
    }

    // Per btree id: which key types a leaf may hold (bit per type), and its extent/snapshot flags.
    // Built once from BtreeIds so the per-key check is a few array reads.
    private static readonly BtreeRules[] s_rules = BuildRules();

    private readonly struct BtreeRules
    {
        public readonly ulong Allowed0, Allowed1, Allowed2, Allowed3;
        public readonly bool Known, IsExtents, HasSnapshots;
        public readonly KeyType[]? DeltaTypes;

        public BtreeRules(BtreeDescriptor d)
        {
            Known = true;
            DeltaTypes = d.DeltaTypes;
            IsExtents = d.IsExtents;
            HasSnapshots = d.HasSnapshots;
            Span<ulong> bits = stackalloc ulong[4];
            bits[0] = 1UL << (int)KeyType.Deleted;
            foreach (var t in d.AllowedTypes)
                bits[(int)t >> 6] |= 1UL << ((int)t & 63);
            (Allowed0, Allowed1, Allowed2, Allowed3) = (bits[0], bits[1], bits[2], bits[3]);
        }

        public bool Allows(KeyType type)
        {
            var word = ((int)type >> 6) switch { 0 => Allowed0, 1 => Allowed1, 2 => Allowed2, _ => Allowed3 };
            return (word & (1UL << ((int)type & 63))) != 0;
        }

        public bool AllowsDelta(KeyType type) => DeltaTypes is not null && Array.IndexOf(DeltaTypes, type) >= 0;
    }

    private static BtreeRules[] BuildRules()
    {
        var rules = new BtreeRules[256];
        foreach (var d in BtreeIds.All)
            rules[(int)d.Id] = new BtreeRules(d);
        return rules;
    }

    private static bool CheckGeneric(BtreeId btree, byte level, in Bkey key, int valueLength, Bpos nodeMin, Bpos nodeMax,
        int nodeSize, bool journal, out FsckErrorId id)
    {
        var interior = level > 0;
        ref readonly var rules = ref s_rules[(byte)btree];
        // Deleted is the whiteout everywhere, interior nodes included (a merge deletes a sibling's pointer).
        var typeOk = key.Type == KeyType.Deleted ||
                     (interior ? key.Type == KeyType.BtreePtr : rules.Known && (rules.Allows(key.Type) || (journal && rules.AllowsDelta(key.Type))));
        if (!typeOk)
        {
            id = FsckErrorId.BkeyInvalidTypeForBtree;
            return false;
        }
        if (valueLength > BtreeNodeFormat.MaxValueBytes(nodeSize))
        {
            id = FsckErrorId.BkeyValueInvalid;
            return false;
        }
        var extents = !interior && rules.IsExtents;
        var sizeOk = extents
            ? key.Type == KeyType.Deleted || (key.Size != 0 && key.Size <= key.Pos.Offset)
            : key.Size == 0;
        if (!sizeOk)
        {
            id = FsckErrorId.BkeyBadSize;
            return false;
        }
        if (!interior)
        {
            var snapshotOk = rules.HasSnapshots ? key.Pos.Snapshot == uint.MaxValue : key.Pos.Snapshot == 0;
            if (!snapshotOk)
            {
                id = FsckErrorId.BkeyBadSnapshot;
                return false;
            }
            if (key.Pos.IsMax)
            {
                id = FsckErrorId.BkeyAtPosMax;
                return false;
            }
        }
        if (key.Pos < nodeMin)
        {
            id = FsckErrorId.BkeyBeforeStartOfBtreeNode;
            return false;
        }
        if (key.Pos > nodeMax)
        {
            id = FsckErrorId.BkeyAfterEndOfBtreeNode;
            return false;
        }
        id = default;
        return true;
    }

    private static string DescribeGeneric(FsckErrorId id, BtreeId btree, byte level, in Bkey key, int valueLength,
        Bpos nodeMin, Bpos nodeMax, int nodeSize) => id switch
        {
            FsckErrorId.BkeyInvalidTypeForBtree => level > 0
                ? $"{key.ToText()}: type {key.Type.ToText()} in an interior node of {btree.ToText()} (only btree_ptr)"
                : $"{key.ToText()}: type {key.Type.ToText()} not allowed in btree {btree.ToText()}",
            FsckErrorId.BkeyValueInvalid =>
                $"{key.ToText()}: value of {valueLength} bytes exceeds the limit of {BtreeNodeFormat.MaxValueBytes(nodeSize)}",
            FsckErrorId.BkeyBadSize => level == 0 && IsExtents(btree)
                ? $"{key.ToText()}: extent size {key.Size} must be non-zero and at most the offset {key.Pos.Offset}"
                : $"{key.ToText()}: size {key.Size} in a non-extent key (must be 0)",
            FsckErrorId.BkeyBadSnapshot => HasSnapshots(btree)
                ? $"{key.ToText()}: snapshot {key.Pos.Snapshot} in snapshot-aware btree {btree.ToText()} (must be {uint.MaxValue})"
                : $"{key.ToText()}: snapshot {key.Pos.Snapshot} in btree {btree.ToText()} without snapshots (must be 0)",
            FsckErrorId.BkeyAtPosMax => $"{key.ToText()}: key at the reserved position max",
            FsckErrorId.BkeyBeforeStartOfBtreeNode => $"{key.ToText()}: before the node's min key {nodeMin.ToText()}",
            FsckErrorId.BkeyAfterEndOfBtreeNode => $"{key.ToText()}: after the node's max key {nodeMax.ToText()}",
            _ => $"{key.ToText()}: {FsckCatalogue.NameOf(id)}",
        };

    private static bool IsExtents(BtreeId btree) => BtreeIds.IsKnown((byte)btree) && BtreeIds.Describe(btree).IsExtents;

    private static bool HasSnapshots(BtreeId btree) => BtreeIds.IsKnown((byte)btree) && BtreeIds.Describe(btree).HasSnapshots;
}
