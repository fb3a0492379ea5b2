// Reads a btree image back and checks its shape: every node readable at its level with the
// header its pointer promises, children tiling their parent exactly (DESIGN §2 invariant 2), the
// root covering [min, max], no RangeUpdated pointer left behind. Returns the leaf keys too, so a
// test can compare the key set a repair left with the one it expected.
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;

namespace Basalt.TestKit;

public sealed class CraftedTreeWalk
{
    public SortedDictionary<Bpos, byte[]> Keys { get; } = [];
    public List<string> Violations { get; } = [];
    public int Nodes { get; internal set; }

    /// <summary>Keys as "pos=value" lines, for readable assertion failures.</summary>
    public IReadOnlyList<string> KeyLines() => Keys.Select(k => $"{k.Key.ToText()}={System.Text.Encoding.ASCII.GetString(k.Value)}").ToList();
}

public static class CraftedTreeInspector
{
    public static CraftedTreeWalk Inspect(IBlockDevice device, BtreeGeometry geometry, BtreeRoot? root)
    {
        var walk = new CraftedTreeWalk();
        if (root is null)
            return walk;
        var reader = new CheckNodeReader(device, geometry);
        if (root.Ptr.MinKey != Bpos.Min)
            walk.Violations.Add($"root pointer min is {root.Ptr.MinKey.ToText()}");
        Visit(reader, walk, root.Btree, root.Level, Bpos.Max, root.Ptr, "root");
        return walk;
    }

    private static void Visit(CheckNodeReader reader, CraftedTreeWalk walk, BtreeId btree, int level, Bpos max, BtreePtrValue ptr, string where)
    {
        walk.Nodes++;
        if ((ptr.Flags & BtreePtrFlags.RangeUpdated) != 0)
            walk.Violations.Add($"{where}: pointer still has RangeUpdated");
        var read = reader.Read(btree, level, max, ptr);
        if (!read.Ok)
        {
            walk.Violations.Add($"{where}: unreadable: {read.Failure}");
            return;
        }
        if (read.HeaderMin != ptr.MinKey || read.HeaderMax != max)
            walk.Violations.Add($"{where}: header [{read.HeaderMin.ToText()}..{read.HeaderMax.ToText()}] differs from pointer [{ptr.MinKey.ToText()}..{max.ToText()}]");
        if (level == 0)
        {
            var keys = read.Keys;
            for (var i = 0; i < keys.Count; i++)
            {
                if (!keys[i].Key.IsDeletion)
                    walk.Keys[keys[i].Pos] = keys.ValueOf(i).ToArray();
            }
            return;
        }

        var children = new List<(Bpos Max, BtreePtrValue Ptr)>();
        for (var i = 0; i < read.Keys.Count; i++)
        {
            var e = read.Keys[i];
            if (e.Key.Type != KeyType.BtreePtr || !BtreePtrValue.TryRead(read.Keys.ValueOf(i), out var child, out var problem))
            {
                walk.Violations.Add($"{where}: key {e.Key.ToText()} is not a valid child pointer");
                continue;
            }
            _ = problem;
            children.Add((e.Pos, child));
        }
        if (children.Count == 0)
        {
            walk.Violations.Add($"{where}: interior node with no children");
            return;
        }
        var expected = ptr.MinKey;
        for (var i = 0; i < children.Count; i++)
        {
            var (childMax, childPtr) = children[i];
            if (childPtr.MinKey != expected)
                walk.Violations.Add($"{where}: child {i} starts at {childPtr.MinKey.ToText()}, expected {expected.ToText()}");
            if (i < children.Count - 1)
                expected = childMax.Successor();
            else if (childMax != max)
                walk.Violations.Add($"{where}: last child ends at {childMax.ToText()}, parent at {max.ToText()}");
        }
        foreach (var (childMax, childPtr) in children)
            Visit(reader, walk, btree, level - 1, childMax, childPtr, $"{btree.ToText()} L{level - 1} [{childPtr.MinKey.ToText()}..{childMax.ToText()}]");
    }
}
