using Basalt.Format;
using Basalt.TestKit;
using static Basalt.TestKit.CraftedTree;

namespace Basalt.Tests.Fsck;

/// <summary>
/// One crafted image per topology repair: the broken shape, the findings check_topology must
/// report for it (in order), and the key set a repair must leave, computed from the crafted
/// contents (the original keys minus exactly those of the dropped nodes or dropped ranges).
/// </summary>
internal sealed record TopologyCase(
    string Name,
    CraftedTree Tree,
    FsckErrorId[] ExpectedFindings,
    SortedDictionary<Bpos, byte[]> ExpectedKeys)
{
    /// <summary>
    /// Whether the pass can count the keys it drops: not when a dropped node could not be read,
    /// or was an interior node (the keys below it are not walked).
    /// </summary>
    public bool KeysDroppedKnown => !Name.StartsWith("unreadable", StringComparison.Ordinal);

    public override string ToString() => Name;
}

internal static class TopologyCases
{
    public static readonly string[] Names =
    [
        "gap",
        "overlap_bad_max_key",
        "overlap_bad_min_key",
        "overwritten_by_next_node",
        "overwritten_by_prev_node",
        "interior_node_empty",
        "interior_node_empty_last",
        "empty_root",
        "unreadable_bad_header_checksum",
        "unreadable_garbage_slot",
        "child_level_mismatch",
        "unreadable_root",
        "root_bad_range",
        "leaf_root_bad_range",
        "interior_overlap_clips_straddling_child",
        "header_wider_than_its_pointer",
    ];

    public static TheoryData<string> All()
    {
        var data = new TheoryData<string>();
        foreach (var n in Names)
            data.Add(n);
        return data;
    }

    public static TopologyCase Build(string name)
    {
        var t = new CraftedTree(seed: Array.IndexOf(Names, name) + 1);
        switch (name)
        {
            case "gap":
            {
                // B starts at 120: nothing covers [100, 119]. B is extended down; no key is lost.
                var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
                var b = t.Leaf("B", P(120), E(199), Offsets(120, 190));
                var c = t.Leaf("C", P(200), Bpos.Max, Offsets(200, 290));
                t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c));
                return new(name, t, [FsckErrorId.BtreeNodeTopologyGap], Union(a, b, c));
            }
            case "overlap_bad_max_key":
            {
                // A (older) runs to 149 but newer B starts at 100: A shrinks to 99 and loses 100..140.
                var a = t.Leaf("A", Bpos.Min, E(149), Offsets(0, 140), generation: 1);
                var b = t.Leaf("B", P(100), E(199), Offsets(100, 190), generation: 2);
                var c = t.Leaf("C", P(200), Bpos.Max, Offsets(200, 290));
                t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c));
                return new(name, t, [FsckErrorId.BtreeNodeTopologyBadMaxKey],
                    Union(Only(a, k => k < P(100)), b.Keys, c.Keys));
            }
            case "overlap_bad_min_key":
            {
                // A (newer) runs to 149, older B starts at 100: B shrinks to start after 149, losing 105..145.
                var a = t.Leaf("A", Bpos.Min, E(149), Offsets(0, 140), generation: 2);
                var b = t.Leaf("B", P(100), E(199), Offsets(105, 195), generation: 1);
                var c = t.Leaf("C", P(200), Bpos.Max, Offsets(200, 290));
                t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c));
                return new(name, t, [FsckErrorId.BtreeNodeTopologyBadMinKey],
                    Union(a.Keys, Only(b, k => k >= P(150)), c.Keys));
            }
            case "overwritten_by_next_node":
            {
                // B [100, 149] lies inside newer C [100, 199]: B is dropped with all its keys.
                var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
                var b = t.Leaf("B", P(100), E(149), Offsets(105, 145), generation: 1);
                var c = t.Leaf("C", P(100), E(199), Offsets(100, 190), generation: 2);
                var d = t.Leaf("D", P(200), Bpos.Max, Offsets(200, 290));
                t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c, d));
                return new(name, t, [FsckErrorId.BtreeNodeTopologyOverwrittenByNextNode], Union(a, c, d));
            }
            case "overwritten_by_prev_node":
            {
                // Older B's range runs past newer A's, but everything B holds lies inside A: B is
                // dropped, and C is extended down over the rest of B's range.
                var a = t.Leaf("A", Bpos.Min, E(149), Offsets(0, 140), generation: 2);
                var b = t.Leaf("B", P(100), E(199), Offsets(105, 145), generation: 1);
                var c = t.Leaf("C", P(200), Bpos.Max, Offsets(200, 290));
                t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c));
                return new(name, t,
                    [FsckErrorId.BtreeNodeTopologyOverwrittenByPrevNode, FsckErrorId.BtreeNodeTopologyGap], Union(a, c));
            }
            case "interior_node_empty":
            {
                // I2 has no children: it is dropped and I3 (and its first leaf) extended down.
                var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
                var b = t.Leaf("B", P(100), E(199), Offsets(100, 190));
                var c = t.Leaf("C", P(300), Bpos.Max, Offsets(300, 390));
                var i1 = t.Interior("I1", 1, Bpos.Min, E(199), a, b);
                var i2 = t.Interior("I2", 1, P(200), E(299));
                var i3 = t.Interior("I3", 1, P(300), Bpos.Max, c);
                t.Write(t.Interior("root", 2, Bpos.Min, Bpos.Max, i1, i2, i3));
                return new(name, t,
                    [FsckErrorId.BtreeNodeTopologyInteriorNodeEmpty, FsckErrorId.BtreeNodeTopologyGap, FsckErrorId.BtreeNodeTopologyGap],
                    Union(a, b, c));
            }
            case "interior_node_empty_last":
            {
                // The last interior node is empty: the one before it (already walked) is extended
                // up to max, and so is its last leaf.
                var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
                var b = t.Leaf("B", P(100), E(199), Offsets(100, 190));
                var i1 = t.Interior("I1", 1, Bpos.Min, E(199), a, b);
                var i2 = t.Interior("I2", 1, P(200), Bpos.Max);
                t.Write(t.Interior("root", 2, Bpos.Min, Bpos.Max, i1, i2));
                return new(name, t,
                    [FsckErrorId.BtreeNodeTopologyInteriorNodeEmpty, FsckErrorId.BtreeNodeTopologyBadMaxKey, FsckErrorId.BtreeNodeTopologyBadMaxKey],
                    Union(a, b));
            }
            case "empty_root":
            {
                t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max));
                return new(name, t, [FsckErrorId.BtreeNodeTopologyInteriorNodeEmpty], []);
            }
            case "unreadable_bad_header_checksum":
            case "unreadable_garbage_slot":
            {
                // B cannot be read: it is dropped (its keys are lost) and C extended down over its range.
                var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
                var b = t.Leaf("B", P(100), E(199), Offsets(100, 190));
                var c = t.Leaf("C", P(200), Bpos.Max, Offsets(200, 290));
                b.Damage = name == "unreadable_garbage_slot" ? CraftedDamage.Garbage : CraftedDamage.BadHeaderChecksum;
                t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c));
                return new(name, t, [FsckErrorId.BtreeNodeUnreadable, FsckErrorId.BtreeNodeTopologyGap], Union(a, c));
            }
            case "child_level_mismatch":
            {
                // The level-1 root points to X, a level-1 node: X is dropped, and the node scan
                // puts the leaf under it, B, in its place.
                var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
                var b = t.Leaf("B", P(100), E(199), Offsets(100, 190));
                var x = t.Interior("X", 1, P(100), E(199), b);
                var c = t.Leaf("C", P(200), Bpos.Max, Offsets(200, 290));
                t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, x, c));
                return new(name, t,
                    [FsckErrorId.BtreeNodeTopologyChildLevelMismatch, FsckErrorId.BtreeRangeRebuiltFromScan], Union(a, b, c));
            }
            case "unreadable_root":
            {
                var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
                var b = t.Leaf("B", P(100), Bpos.Max, Offsets(100, 190));
                var root = t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b);
                // The root is garbage: it is rebuilt over A and B, found by the node scan.
                root.Damage = CraftedDamage.Garbage;
                t.Write(root);
                return new(name, t, [FsckErrorId.BtreeRootUnreadable, FsckErrorId.BtreeRangeRebuiltFromScan], Union(a, b));
            }
            case "root_bad_range":
            {
                // The root's header ends at 299: it is rewritten over [min, max] and B extended up.
                var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
                var b = t.Leaf("B", P(100), E(299), Offsets(100, 290));
                t.Write(t.Interior("root", 1, Bpos.Min, E(299), a, b));
                return new(name, t,
                    [FsckErrorId.BtreeRootBadRange, FsckErrorId.BtreeNodeTopologyBadMaxKey], Union(a, b));
            }
            case "leaf_root_bad_range":
            {
                var root = t.Leaf("root", P(5), E(500), Offsets(5, 495));
                t.Write(root);
                return new(name, t, [FsckErrorId.BtreeRootBadRange], Union(root));
            }
            case "interior_overlap_clips_straddling_child":
            {
                // Newer I2 starts at 200 inside older I1 [min, 249]: I1 shrinks to 199, and B, which
                // straddles 199, is clipped to it (losing 200..240) rather than dropped.
                var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
                var b = t.Leaf("B", P(100), E(249), Offsets(100, 240));
                var c = t.Leaf("C", P(200), E(299), Offsets(200, 290));
                var d = t.Leaf("D", P(300), Bpos.Max, Offsets(300, 390));
                var i1 = t.Interior("I1", 1, Bpos.Min, E(249), 1, a, b);
                var i2 = t.Interior("I2", 1, P(200), Bpos.Max, 2, c, d);
                t.Write(t.Interior("root", 2, Bpos.Min, Bpos.Max, i1, i2));
                return new(name, t,
                    [FsckErrorId.BtreeNodeTopologyBadMaxKey, FsckErrorId.BtreeNodeTopologyBadMaxKey],
                    Union(a.Keys, Only(b, k => k < P(200)), c.Keys, d.Keys));
            }
            case "header_wider_than_its_pointer":
            {
                // D's header min was damaged to min with its checksum intact (its pointer still says
                // 300), and I1 cannot be read. The node scan fills I1's range: D, the newest node,
                // must not supersede A, B and C over the range its header claims, where it holds no
                // key. Only D's own range is taken from it (read through a pointer that trusts the
                // range); no key is lost.
                var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
                var b = t.Leaf("B", P(100), E(199), Offsets(100, 190));
                var c = t.Leaf("C", P(200), E(299), Offsets(200, 290));
                var d = t.Leaf("D", Bpos.Min, E(399), Offsets(300, 390), generation: 2);
                var e = t.Leaf("E", P(400), Bpos.Max, Offsets(400, 490));
                var i1 = t.Interior("I1", 1, Bpos.Min, E(199), a, b);
                var i2 = t.Interior("I2", 1, P(200), Bpos.Max, c, d, e);
                i2.Children.Single(p => p.Node == d).Min = P(300);
                i1.Damage = CraftedDamage.BadHeaderChecksum;
                t.Write(t.Interior("root", 2, Bpos.Min, Bpos.Max, i1, i2));
                return new(name, t,
                    [FsckErrorId.BtreeNodeUnreadable, FsckErrorId.BtreeNodeTopologyGap, FsckErrorId.BtreeRangeRebuiltFromScan,
                     FsckErrorId.BtreeNodeUnreadable, FsckErrorId.BtreeRangeRebuiltFromScan],
                    Union(a, b, c, d, e));
            }
            default:
                throw new ArgumentException($"no topology case {name}", nameof(name));
        }
    }

    private static IEnumerable<ulong> Offsets(ulong from, ulong to, ulong step = 10)
    {
        for (var o = from; o <= to; o += step)
            yield return o;
    }

    private static SortedDictionary<Bpos, byte[]> Only(CraftedNode node, Func<Bpos, bool> keep) =>
        new(node.Keys.Where(k => keep(k.Key)).ToDictionary(k => k.Key, k => k.Value));

    private static SortedDictionary<Bpos, byte[]> Union(params CraftedNode[] nodes) =>
        Union(nodes.Select(n => n.Keys).ToArray());

    private static SortedDictionary<Bpos, byte[]> Union(params IEnumerable<KeyValuePair<Bpos, byte[]>>[] sets)
    {
        var result = new SortedDictionary<Bpos, byte[]>();
        foreach (var set in sets)
        {
            foreach (var (pos, value) in set)
            {
                if (!result.TryAdd(pos, value))
                    throw new InvalidOperationException($"expected key set names {pos.ToText()} twice");
            }
        }
        return result;
    }
}
