// A check target over a crafted tree's model: the level edits the btree fsck passes make are
// applied to the model, and Sync writes every reachable node again into fresh slots. It stands in
// for the btree engine where a test wants to see the repair logic alone, and it logs every edit
// so a test can assert that a declining run made none.
using System.Runtime.CompilerServices;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;

// The target implements an engine-internal seam, so the tests that use it see it through this.
[assembly: InternalsVisibleTo("Basalt.Tests")]

namespace Basalt.TestKit;

public sealed partial class CraftedTree
{
    /// <summary>A check target that edits this tree's model (see <see cref="CraftedTreeTarget"/>).</summary>
    internal CraftedTreeTarget Target() => new(this);
}

internal sealed class CraftedTreeTarget : IBtreeCheckTarget
{
    private readonly CraftedTree _tree;

    public CraftedTreeTarget(CraftedTree tree) => _tree = tree;

    /// <summary>Every edit made through this target, in order, as text.</summary>
    public List<string> Edits { get; } = [];

    public IBlockDevice Device => _tree.Device;
    public BtreeGeometry Geometry => _tree.Geometry;

    public IReadOnlyList<BtreeRoot> Roots() => _tree.RootRecord is { } r ? [r] : [];

    public void DeletePointer(BtreeId btree, int level, Bpos pos)
    {
        Edits.Add($"delete L{level} {pos.ToText()}");
        var node = Descend(level, pos);
        node.Children.RemoveAll(c => c.Max == pos);
    }

    public void PutPointer(BtreeId btree, int level, Bpos pos, BtreePtrValue value)
    {
        Edits.Add($"put L{level} {pos.ToText()} min {value.MinKey.ToText()} {value.Flags}");
        var node = Descend(level, pos);
        var child = _tree.NodeBySeq(value.Seq) ?? throw new InvalidOperationException($"no crafted node with seq {value.Seq:x}");
        node.Children.RemoveAll(c => c.Max == pos);
        node.Children.Add(new CraftedPointer { Node = child, Min = value.MinKey, Max = pos, Flags = value.Flags });
        CraftedTree.SortChildren(node);
    }

    public void RewriteNode(BtreeId btree, int level, Bpos pos)
    {
        Edits.Add($"rewrite L{level} {pos.ToText()}");
        var root = _tree.Root ?? throw new InvalidOperationException("no root");
        if (level == root.Level)
        {
            _tree.Root = Replace(root, Bpos.Min, Bpos.Max);
            return;
        }
        var parent = Descend(level + 1, pos);
        var ptr = parent.Children.FirstOrDefault(c => c.Min <= pos && pos <= c.Max)
            ?? throw new InvalidOperationException($"no level {level} node covers {pos.ToText()}");
        ptr.Node = Replace(ptr.Node, ptr.Min, ptr.Max);
        ptr.Flags = BtreePtrFlags.None;
    }

    public void RewriteRootFullRange(BtreeId btree)
    {
        Edits.Add("rewrite root");
        var root = _tree.Root ?? throw new InvalidOperationException("no root");
        _tree.Root = Replace(root, Bpos.Min, Bpos.Max);
    }

    public void ResetToEmpty(BtreeId btree)
    {
        Edits.Add("reset");
        var empty = _tree.Leaf("empty", Bpos.Min, Bpos.Max, []);
        _tree.Root = empty;
    }

    public void Sync()
    {
        Edits.Add("sync");
        if (_tree.Root is { } root)
            _tree.Write(root);
        else
            _tree.ClearRoot();
    }

    public Func<ulong, bool>? IsBlacklisted => null;

    public Func<long, bool>? InNodeSpace => null;

    public void AdoptNode(BtreeId btree, int level, Bpos max, BtreePtrValue ptr) => Edits.Add($"adopt L{level} {max.ToText()}");

    public void RebuildRoot(BtreeId btree, byte level, IReadOnlyList<(Bpos Max, BtreePtrValue Ptr)> children)
    {
        Edits.Add($"rebuild root L{level} over {children.Count}");
        var root = _tree.Interior("root", level, Bpos.Min, Bpos.Max);
        root.Generation = 1;
        foreach (var (max, ptr) in children)
        {
            var child = _tree.NodeBySeq(ptr.Seq) ?? throw new InvalidOperationException($"no crafted node with seq {ptr.Seq:x}");
            root.Children.Add(new CraftedPointer { Node = child, Min = ptr.MinKey, Max = max, Flags = ptr.Flags });
        }
        CraftedTree.SortChildren(root);
        _tree.Root = root;
    }

    /// <summary>The level-<paramref name="level"/> node whose range holds <paramref name="pos"/>, found the way a lookup descends.</summary>
    private CraftedNode Descend(int level, Bpos pos)
    {
        var node = _tree.Root ?? throw new InvalidOperationException("no root");
        while (node.Level > level)
        {
            if (node.Children.Count == 0)
                throw new InvalidOperationException($"{node} has no children on the way to level {level}");
            node = (node.Children.FirstOrDefault(c => c.Max >= pos) ?? node.Children[^1]).Node;
        }
        if (node.Level != level)
            throw new InvalidOperationException($"descent for level {level} {pos.ToText()} ended at {node}");
        return node;
    }

    /// <summary>
    /// A leaf's keys as a rewrite sees them: read back from its slot and validated (what a damaged
    /// bset held is gone), or the model's keys for a node not written since it was built.
    /// </summary>
    private IEnumerable<KeyValuePair<Bpos, byte[]>> ValidatedKeys(CraftedNode node)
    {
        if (node.Level != 0 || node.SlotOffset < 0)
            return node.Keys;
        var reader = new CheckNodeReader(_tree.Device, _tree.Geometry);
        var ptr = _tree.PointerTo(node, node.Min, BtreePtrFlags.None);
        var read = reader.Read(_tree.Btree, 0, node.Max, ptr);
        if (!read.Ok)
            throw new InvalidOperationException($"rewrite of unreadable {node}: {read.Failure}");
        var keys = new List<KeyValuePair<Bpos, byte[]>>();
        for (var i = 0; i < read.Keys.Count; i++)
            keys.Add(new(read.Keys[i].Pos, read.Keys.ValueOf(i).ToArray()));
        return keys;
    }

    /// <summary>A copy-on-write replacement of <paramref name="node"/> over [min, max]: new seq, next generation, contents clipped.</summary>
    private CraftedNode Replace(CraftedNode node, Bpos min, Bpos max)
    {
        var copy = node.Level == 0
            ? _tree.Leaf(node.Name, min, max, [])
            : _tree.Interior(node.Name, node.Level, min, max);
        copy.Generation = node.Generation + 1;
        foreach (var (pos, value) in ValidatedKeys(node))
        {
            if (pos >= min && pos <= max)
                copy.Keys[pos] = value;
        }
        foreach (var c in node.Children)
        {
            if (c.Max >= min && c.Max <= max)
                copy.Children.Add(new CraftedPointer { Node = c.Node, Min = c.Min, Max = c.Max, Flags = c.Flags });
        }
        return copy;
    }
}
