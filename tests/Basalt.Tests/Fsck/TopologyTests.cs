using Basalt.Btree;
using Basalt.Format;
using Basalt.TestKit;
using static Basalt.TestKit.CraftedTree;

namespace Basalt.Tests.Fsck;

/// <summary>
/// check_topology on crafted images, one per repair. Each case asserts the findings reported,
/// that after repair the key set is the original minus exactly the dropped nodes' keys, that
/// children tile their parents (invariant 2), and that a second run is clean; a declining run
/// reports the same findings and does not change a byte.
/// </summary>
public sealed class TopologyTests
{
    public static TheoryData<string> Cases => TopologyCases.All();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Repair_reports_the_findings_and_leaves_exactly_the_surviving_keys(string name)
    {
        var c = TopologyCases.Build(name);
        var originalLeafKeys = c.Tree.Nodes().Where(n => n.Level == 0).Sum(n => n.Keys.Count);
        // The same case built again: its model stays as crafted while the repair edits c's.
        var pristine = TopologyCases.Build(name).Tree;
        var target = c.Tree.Target();

        var reporter = new TopologyReporter(repair: true);
        var result = CheckTopology.Run(target, reporter, CancellationToken.None);

        Assert.True(c.ExpectedFindings.SequenceEqual(reporter.Ids), $"expected {Names(c.ExpectedFindings)}, got:\n{reporter.ToText()}");
        Assert.Equal(c.ExpectedFindings.Length, result.Findings);
        Assert.Equal(c.ExpectedFindings.Length, result.Repairs);
        if (c.KeysDroppedKnown)
        {
            Assert.Equal(originalLeafKeys - c.ExpectedKeys.Count, result.KeysDropped);
            // Every lost key is named: as many as were dropped, each a key of an original leaf, and
            // every original position that no longer survives among them.
            Assert.Equal(result.KeysDropped, reporter.Lost.Count);
            var leafKeys = pristine.Nodes().Where(n => n.Level == 0).SelectMany(n => n.Keys.Keys).ToHashSet();
            Assert.All(reporter.Lost, l => Assert.Contains(l.Pos, leafKeys));
            Assert.Subset(reporter.Lost.Select(l => l.Pos).ToHashSet(), leafKeys.Where(k => !c.ExpectedKeys.ContainsKey(k)).ToHashSet());
        }

        var walk = CraftedTreeInspector.Inspect(c.Tree.Device, c.Tree.Geometry, target.Roots().SingleOrDefault());
        Assert.True(walk.Violations.Count == 0, string.Join("\n", walk.Violations));
        Assert.Equal(KeyLines(c.ExpectedKeys), walk.KeyLines());
        AssertIntactLeavesSurvive(pristine, walk);

        var again = new TopologyReporter(repair: true);
        var second = CheckTopology.Run(target, again, CancellationToken.None);
        Assert.True(again.Findings.Count == 0, $"second run:\n{again.ToText()}");
        Assert.Equal(0, second.Repairs);

        var nodes = new TopologyReporter(repair: true);
        CheckBtreeNodes.Run(target, nodes, CancellationToken.None);
        Assert.True(nodes.Findings.Count == 0, $"check_btree_nodes after repair:\n{nodes.ToText()}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Declining_run_reports_the_same_findings_and_changes_nothing(string name)
    {
        var c = TopologyCases.Build(name);
        var target = c.Tree.Target();
        var before = c.Tree.Device.Contents.ToArray();

        var reporter = new TopologyReporter(repair: false);
        var result = CheckTopology.Run(target, reporter, CancellationToken.None);

        Assert.True(c.ExpectedFindings.SequenceEqual(reporter.Ids), $"expected {Names(c.ExpectedFindings)}, got:\n{reporter.ToText()}");
        Assert.Equal(0, result.Repairs);
        Assert.Equal(0, result.NodesDropped);
        Assert.Empty(target.Edits);
        Assert.True(before.AsSpan().SequenceEqual(c.Tree.Device.Contents), "a declining run changed the device");
    }

    [Fact]
    public void A_well_formed_three_level_tree_has_no_findings()
    {
        var t = new CraftedTree(seed: 7);
        var a = t.Leaf("A", Bpos.Min, E(99), [0, 50, 99]);
        var b = t.Leaf("B", P(100), E(199), [100, 150]);
        var c = t.Leaf("C", P(200), E(299), [250]);
        var d = t.Leaf("D", P(300), Bpos.Max, [300, 1000]);
        var i1 = t.Interior("I1", 1, Bpos.Min, E(199), a, b);
        var i2 = t.Interior("I2", 1, P(200), Bpos.Max, c, d);
        t.Write(t.Interior("root", 2, Bpos.Min, Bpos.Max, i1, i2));
        var target = t.Target();
        var before = t.Device.Contents.ToArray();

        var reporter = new TopologyReporter(repair: true);
        var result = CheckTopology.Run(target, reporter, CancellationToken.None);

        Assert.True(reporter.Findings.Count == 0, reporter.ToText());
        Assert.Equal(7, result.NodesVisited);
        Assert.Empty(target.Edits);
        Assert.True(before.AsSpan().SequenceEqual(t.Device.Contents));
        var walk = CraftedTreeInspector.Inspect(t.Device, t.Geometry, t.RootRecord);
        Assert.Empty(walk.Violations);
        Assert.Equal(8, walk.Keys.Count);
    }

    [Fact]
    public void Several_problems_in_one_node_are_all_repaired_in_one_run()
    {
        // A gap before B, C overwritten by newer D, and the last child short of the parent's max.
        var t = new CraftedTree(seed: 11);
        var a = t.Leaf("A", Bpos.Min, E(99), [0, 90]);
        var b = t.Leaf("B", P(110), E(199), [110, 190]);
        var c = t.Leaf("C", P(200), E(249), [210, 240], generation: 1);
        var d = t.Leaf("D", P(200), E(299), [200, 290], generation: 3);
        var e = t.Leaf("E", P(300), E(399), [300, 399]);
        t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c, d, e));
        var target = t.Target();

        var reporter = new TopologyReporter(repair: true);
        CheckTopology.Run(target, reporter, CancellationToken.None);

        Assert.Equal(
            [FsckErrorId.BtreeNodeTopologyGap, FsckErrorId.BtreeNodeTopologyOverwrittenByNextNode, FsckErrorId.BtreeNodeTopologyBadMaxKey],
            reporter.Ids);
        var walk = CraftedTreeInspector.Inspect(t.Device, t.Geometry, target.Roots().Single());
        Assert.True(walk.Violations.Count == 0, string.Join("\n", walk.Violations));
        Assert.Equal(KeyLines(Keys(a, b, d, e)), walk.KeyLines());
        var again = new TopologyReporter(repair: true);
        CheckTopology.Run(target, again, CancellationToken.None);
        Assert.True(again.Findings.Count == 0, again.ToText());
    }

    [Fact]
    public void Cancellation_stops_the_walk()
    {
        var c = TopologyCases.Build("gap");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            CheckTopology.Run(c.Tree.Target(), new TopologyReporter(repair: true), cts.Token));
    }

    /// <summary>
    /// Every key of an undamaged leaf survives with its value, unless a newer node covers its
    /// position: a node at some level, not on the leaf's path, with a higher generation than the
    /// leaf's ancestor at that level (then that node's state of the position is the truth).
    /// </summary>
    internal static void AssertIntactLeavesSurvive(CraftedTree tree, CraftedTreeWalk walk)
    {
        var nodes = tree.Nodes().ToList();
        var parent = new Dictionary<CraftedNode, CraftedNode>();
        foreach (var n in nodes)
        {
            foreach (var c in n.Children)
                parent.TryAdd(c.Node, n);
        }
        foreach (var leaf in nodes.Where(n => n.Level == 0 && n.Damage == CraftedDamage.None))
        {
            var path = new List<CraftedNode>();
            for (CraftedNode? n = leaf; n is not null; n = parent.GetValueOrDefault(n))
                path.Add(n);
            foreach (var (pos, value) in leaf.Keys)
            {
                if (walk.Keys.TryGetValue(pos, out var now) && now.AsSpan().SequenceEqual(value))
                    continue;
                var superseded = path.Any(a => nodes.Any(n => n != a && !path.Contains(n) && n.Level == a.Level &&
                                                              n.Generation > a.Generation && n.Min <= pos && pos <= n.Max));
                Assert.True(superseded, $"key {pos.ToText()} of intact leaf {leaf} was lost");
            }
        }
    }

    private static SortedDictionary<Bpos, byte[]> Keys(params CraftedNode[] nodes)
    {
        var keys = new SortedDictionary<Bpos, byte[]>();
        foreach (var n in nodes)
        {
            foreach (var (pos, value) in n.Keys)
                keys.Add(pos, value);
        }
        return keys;
    }

    private static List<string> KeyLines(SortedDictionary<Bpos, byte[]> keys) =>
        keys.Select(k => $"{k.Key.ToText()}={System.Text.Encoding.ASCII.GetString(k.Value)}").ToList();

    private static string Names(IEnumerable<FsckErrorId> ids) => string.Join(", ", ids.Select(FsckCatalogue.NameOf));
}
