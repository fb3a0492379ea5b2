// What a truncation costs a btree, worked out from the intact image: every node of one btree with
// its level, slot, written bytes (sectors_written), range and parent, and the keys of every leaf. A
// node is lost when its written bytes do not lie wholly before the cut (fsck reads the extended,
// zeroed tail, so what a node never wrote does not matter); a key survives when its leaf survives
// (topology repair rebuilds lost interior levels from the leaves the node scan finds). Where a
// lost leaf's range has an older version of it before the cut, fsck may restore keys from that
// version too (reported as restored from an older version): those are the only keys it may keep
// besides the survivors. The
// truncation tests compare what fsck reports and keeps with this model. The image must be clean
// (checkpointed): the model reads the nodes the superblock's roots lead to, not the journal.
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.TestKit;

/// <summary>One node of the model: its level, slot offset, written bytes, range, parent (-1 for the root) and, for a leaf, its keys.</summary>
public sealed record ModelNode(int Level, long Offset, int WrittenBytes, Bpos Min, Bpos Max, int Parent, SortedDictionary<Bpos, byte[]> Keys);

public sealed class TruncationModel
{
    private TruncationModel(int nodeSize, List<ModelNode> nodes)
    {
        NodeSize = nodeSize;
        Nodes = nodes;
    }

    public int NodeSize { get; }

    /// <summary>Every node, parents before their children.</summary>
    public IReadOnlyList<ModelNode> Nodes { get; }

    public IEnumerable<ModelNode> Leaves => Nodes.Where(n => n.Level == 0);

    /// <summary>Every key of the btree.</summary>
    public SortedDictionary<Bpos, byte[]> AllKeys => Survivors(long.MaxValue);

    /// <summary>Reads the btree <paramref name="btree"/> of the clean image on <paramref name="device"/>.</summary>
    public static TruncationModel Of(IBlockDevice device, BtreeId btree = BtreeId.Test)
    {
        var sb = SuperblockIo.Read(device).Superblock;
        if (!sb.IsClean)
            throw new InvalidOperationException($"{device.Name}: the model needs a clean image");
        var geometry = BasaltFileSystem.GeometryOf(sb);
        var nodes = new List<ModelNode>();
        var root = sb.Roots.FirstOrDefault(r => r.Btree == btree);
        if (root is not null)
            Visit(new CheckNodeReader(device, geometry), nodes, btree, root.Level, Bpos.Max, root.Ptr, -1);
        return new TruncationModel(geometry.NodeSize, nodes);
    }

    /// <summary>True when the node's written bytes lie wholly before <paramref name="cut"/>.</summary>
    public bool Readable(ModelNode node, long cut) => node.Offset + node.WrittenBytes <= cut;

    /// <summary>The keys whose leaf lies wholly before <paramref name="cut"/>.</summary>
    public SortedDictionary<Bpos, byte[]> Survivors(long cut)
    {
        var keys = new SortedDictionary<Bpos, byte[]>();
        foreach (var leaf in Leaves.Where(l => Readable(l, cut)))
        {
            foreach (var (pos, value) in leaf.Keys)
                keys[pos] = value;
        }
        return keys;
    }

    /// <summary>True when <paramref name="pos"/> lies in the range of a leaf lost to <paramref name="cut"/>.</summary>
    public bool InLostLeaf(Bpos pos, long cut) => Leaves.Any(l => !Readable(l, cut) && l.Min <= pos && pos <= l.Max);

    /// <summary>The lost nodes whose ancestors all survive: those fsck finds unreadable (the root: the btree's root is).</summary>
    public IReadOnlyList<ModelNode> TopmostLost(long cut) =>
        [.. Nodes.Where(n => !Readable(n, cut) && (n.Parent < 0 || ChainReadable(Nodes[n.Parent], cut)))];

    private bool ChainReadable(ModelNode node, long cut)
    {
        for (var n = node; ; n = Nodes[n.Parent])
        {
            if (!Readable(n, cut))
                return false;
            if (n.Parent < 0)
                return true;
        }
    }

    private static void Visit(CheckNodeReader reader, List<ModelNode> nodes, BtreeId btree, int level, Bpos max, BtreePtrValue ptr, int parent)
    {
        var read = reader.Read(btree, level, max, ptr);
        if (!read.Ok)
            throw new InvalidOperationException($"model: {btree.ToText()} level {level} node at {ptr.Ptrs[0].OffsetBytes} is unreadable: {read.Failure}");
        var keys = new SortedDictionary<Bpos, byte[]>();
        var node = new ModelNode(level, ptr.Ptrs[0].OffsetBytes, ptr.SectorsWritten * FormatLimits.SectorSize, ptr.MinKey, max, parent, keys);
        nodes.Add(node);
        var index = nodes.Count - 1;
        var children = new List<(Bpos Max, BtreePtrValue Ptr)>();
        for (var i = 0; i < read.Keys.Count; i++)
        {
            var entry = read.Keys[i];
            if (entry.Key.IsDeletion)
                continue;
            if (level == 0)
                keys[entry.Pos] = read.Keys.ValueOf(i).ToArray();
            else if (BtreePtrValue.TryRead(read.Keys.ValueOf(i), out var child, out _))
                children.Add((entry.Pos, child));
        }
        foreach (var (childMax, child) in children)
            Visit(reader, nodes, btree, level - 1, childMax, child, index);
    }
}
