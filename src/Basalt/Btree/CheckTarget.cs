// What the btree fsck passes (CheckTopology, CheckBtreeNodes) need from the btrees they check:
// the device and geometry to read nodes from raw (never through the node cache, so a check sees
// exactly what is on disk), the current roots, and the level edits a repair is made of. The
// passes are written against this seam; BtreeEngine is the production implementation
// (EngineCheckTarget) and the test kit has a model-backed one for crafted images.
//
// Edits name nodes the way the engine's level edits do: by level and position. A pointer key at
// level L lives in the level-L node whose range contains its position, and is keyed at its
// child's max key.
using Basalt.Devices;
using Basalt.Format;

namespace Basalt.Btree;

internal interface IBtreeCheckTarget
{
    IBlockDevice Device { get; }

    BtreeGeometry Geometry { get; }

    /// <summary>The current root of every btree that has one, in btree id order.</summary>
    IReadOnlyList<BtreeRoot> Roots();

    /// <summary>Deletes the child pointer keyed at <paramref name="pos"/> from the level-<paramref name="level"/> node holding it.</summary>
    void DeletePointer(BtreeId btree, int level, Bpos pos);

    /// <summary>Inserts (or overwrites) the child pointer keyed at <paramref name="pos"/> at <paramref name="level"/>.</summary>
    void PutPointer(BtreeId btree, int level, Bpos pos, BtreePtrValue value);

    /// <summary>
    /// Rewrites the level-<paramref name="level"/> node whose range contains <paramref name="pos"/>
    /// so its header matches its pointer's range (keys outside it are dropped).
    /// </summary>
    void RewriteNode(BtreeId btree, int level, Bpos pos);

    /// <summary>Rewrites the root so its header covers [Bpos.Min, Bpos.Max].</summary>
    void RewriteRootFullRange(BtreeId btree);

    /// <summary>Replaces the btree with an empty leaf root (every key is lost).</summary>
    void ResetToEmpty(BtreeId btree);

    /// <summary>Makes every edit so far durable (nodes written, roots committed).</summary>
    void Sync();

    /// <summary>The journal's blacklist, for the node scan (null: no journal, nothing blacklisted).</summary>
    Func<ulong, bool>? IsBlacklisted { get; }

    /// <summary>
    /// Whether a node found at a byte offset lies in node space (null: anywhere a node can live):
    /// the node scan rejects the others, nodes no durable pointer ever named.
    /// </summary>
    Func<long, bool>? InNodeSpace { get; }

    /// <summary>
    /// Takes a node the node scan found (<paramref name="ptr"/> describes it as its header does)
    /// into the tree's node space before a pointer to it is spliced in: neither its slot nor any
    /// slot below it may be handed out again.
    /// </summary>
    void AdoptNode(BtreeId btree, int level, Bpos max, BtreePtrValue ptr);

    /// <summary>
    /// True when the slot at <paramref name="offset"/> holds, in the tree as it is now, another node
    /// than the one with <paramref name="seq"/> the scan read there from the device: that node is
    /// gone (its slot was reused after the scan's read), and must not be spliced in.
    /// </summary>
    bool SlotTakenByAnother(long offset, ulong seq) => false;

    /// <summary>
    /// Replaces the btree's (unreadable) root by a new root at <paramref name="level"/> holding
    /// <paramref name="children"/> (pointers keyed at each child's max, tiling [min, max]). The
    /// children's slots are adopted; the old root's slot is freed.
    /// </summary>
    void RebuildRoot(BtreeId btree, byte level, IReadOnlyList<(Bpos Max, BtreePtrValue Ptr)> children);
}

/// <summary>What a btree fsck pass did: its counters, for the fsck driver's report.</summary>
public readonly record struct BtreeCheckResult(
    long NodesVisited,
    long Findings,
    long Repairs,
    long NodesDropped,
    long KeysDropped)
{
    public string ToText() =>
        $"{NodesVisited} nodes visited, {Findings} findings, {Repairs} repairs, {NodesDropped} nodes dropped, {KeysDropped} keys dropped";
}

/// <summary>Mutable counters behind a <see cref="BtreeCheckResult"/>.</summary>
internal sealed class BtreeCheckCounters
{
    public long NodesVisited;
    public long Findings;
    public long Repairs;
    public long NodesDropped;
    public long KeysDropped;

    public BtreeCheckResult ToResult() => new(NodesVisited, Findings, Repairs, NodesDropped, KeysDropped);
}
