// What topology repair needs from the btree engine (docs/topology.md, "What the passes need
// from the btree engine"): a pointer's range is the truth for the node it leads to, and a node
// whose pointer was deleted stays gone. The engine calls these at four points: reading a root,
// descending to a cached child, rewriting a node, and capturing a dirty node for a Sync.
using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Format;

namespace Basalt.Btree;

public sealed partial class BtreeEngine
{
    /// <summary>The device the btree passes read nodes from raw.</summary>
    internal IBlockDevice CheckDevice => _device;

    /// <summary>
    /// The pointer a root is read through: a root covers [min, max] whatever its header says, so a
    /// root with a bad range still loads (check_topology reports it and rewrites it over [min, max]).
    /// </summary>
    private static BtreePtrValue RootReadPtr(BtreePtrValue ptr) =>
        ptr.With(minKey: Bpos.Min, flags: ptr.Flags | BtreePtrFlags.RangeUpdated);

    /// <summary>
    /// A clean cached child whose range differs from the RangeUpdated pointer that leads to it
    /// (topology repair moved its range): the descent treats it as a miss, so the node is read
    /// again (the reader applies the pointer's range) and the install replaces the stale copy under
    /// the write lock. A descent never changes the cache itself: it may hold only the read lock.
    /// </summary>
    private static bool RangeMoved(BtreeNode child, ReadOnlySpan<byte> ptrValue, Bpos max)
    {
        // Only repair writes RangeUpdated pointers: the common descent pays one flag test.
        var flags = (BtreePtrFlags)BinaryPrimitives.ReadUInt16LittleEndian(ptrValue[BtreePtrValue.FlagsOffset..]);
        if ((flags & BtreePtrFlags.RangeUpdated) == 0 || child.IsDirty || child.InFlight is not null)
            return false;
        return child.MaxKey != max || child.MinKey != Bpos.Read(ptrValue[BtreePtrValue.MinKeyOffset..]);
    }

    /// <summary>A cached copy the install of <paramref name="fresh"/> replaces: same node, clean, another range.</summary>
    private static bool IsStaleCopy(BtreeNode cached, BtreeNode fresh) =>
        cached.Seq == fresh.Seq && !cached.IsDirty && cached.InFlight is null &&
        (cached.MinKey != fresh.MinKey || cached.MaxKey != fresh.MaxKey);

    /// <summary>
    /// RewriteNode's copy of <paramref name="node"/>: over the range its parent's pointer gives
    /// ([min, max] for a root), keys outside it dropped, its pointer keyed at the range's max.
    /// </summary>
    private void RewriteOverPointerRange(Btree tree, byte level, Bpos pos, BtreeNode node)
    {
        var (min, max) = (Bpos.Min, Bpos.Max);
        if (tree.RootNode != node)
        {
            var parent = FindCached(tree, (byte)(level + 1), pos);
            var cursor = new NodeCursor(parent, pos, reverse: false);
            if (!cursor.Next(out var run, out var i))
                throw new InvalidOperationException($"{parent.ToText()}: no pointer covers {pos.ToText()}");
            max = run.Entries[i].Key.Pos;
            min = Bpos.Read(run.ValueOf(i)[BtreePtrValue.MinKeyOffset..]);
        }
        var live = node.CollectLive();
        var keys = new KeyRunBuilder(live.Count + 1, Math.Max(16, live.ArenaLength));
        for (var k = 0; k < live.Count; k++)
        {
            if (live[k].Pos >= min && live[k].Pos <= max)
                keys.Add(live[k].Key, live.ValueOf(k));
        }
        var fresh = NewNode(tree, node.Level, min, max, node.Generation + 1, keys.Build(), node);
        var wasRoot = tree.RootNode == node;
        FreeNode(node);
        if (wasRoot)
            SetRoot(tree, fresh);
        else
            InsertKeyCached(tree, (byte)(level + 1), new Bkey(max, KeyType.BtreePtr), fresh.MakePtr(_geometry.Device).ToBytes());
    }

    /// <summary>
    /// A dirty node whose parent no longer points at it (topology repair deleted its pointer after
    /// editing inside it): writing it would put its pointer back, so write-back frees it instead.
    /// </summary>
    private bool IsOrphaned(BtreeNode node)
    {
        var tree = _trees[(int)node.Btree]!;
        if (tree.RootNode == node)
            return false;
        if (FindNode(tree, (byte)(node.Level + 1), node.MaxKey, out var parent, out _) != FindResult.Found)
            return false;
        return !parent.TryFind(node.MaxKey, out var run, out var i) || PtrFields.Seq(run.ValueOf(i)) != node.Seq;
    }
}
