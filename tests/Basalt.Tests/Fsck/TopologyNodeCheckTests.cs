using Basalt.Btree;
using Basalt.Format;
using Basalt.TestKit;
using static Basalt.TestKit.CraftedTree;

namespace Basalt.Tests.Fsck;

/// <summary>check_btree_nodes on crafted images: every node read, findings reported with their ids, repaired nodes rewritten.</summary>
public sealed class TopologyNodeCheckTests
{
    private static (CraftedTree Tree, CraftedNode A, CraftedNode B, CraftedNode C) ThreeLeaves(int seed)
    {
        var t = new CraftedTree(seed: seed);
        var a = t.Leaf("A", Bpos.Min, E(99), [0, 50, 90]);
        var b = t.Leaf("B", P(100), E(199), [100, 120, 140, 160, 180]);
        var c = t.Leaf("C", P(200), Bpos.Max, [200, 300]);
        return (t, a, b, c);
    }

    [Fact]
    public void A_bset_with_a_bad_checksum_is_reported_and_the_node_rewritten_from_what_validated()
    {
        var (t, a, b, c) = ThreeLeaves(21);
        b.SecondBsetFrom = P(140);
        b.Damage = CraftedDamage.BadSecondBsetChecksum;
        t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c));
        var target = t.Target();

        var reporter = new TopologyReporter(repair: true);
        var result = CheckBtreeNodes.Run(target, reporter, CancellationToken.None);

        Assert.Equal([FsckErrorId.BsetBadChecksum], reporter.Ids);
        Assert.Contains("level 0", reporter.Findings[0].Where, StringComparison.Ordinal);
        Assert.Equal(4, result.NodesVisited);
        Assert.Equal(1, result.Repairs);
        Assert.Contains(target.Edits, e => e.StartsWith("rewrite L0", StringComparison.Ordinal));

        // B keeps the keys of its first bset; the damaged bset's keys are gone.
        var walk = CraftedTreeInspector.Inspect(t.Device, t.Geometry, target.Roots().Single());
        Assert.Empty(walk.Violations);
        Assert.Equal(
            new ulong[] { 0, 50, 90, 100, 120, 200, 300 },
            walk.Keys.Keys.Select(k => k.Offset));

        var again = new TopologyReporter(repair: true);
        CheckBtreeNodes.Run(target, again, CancellationToken.None);
        Assert.True(again.Findings.Count == 0, again.ToText());
        CheckTopology.Run(target, again, CancellationToken.None);
        Assert.True(again.Findings.Count == 0, again.ToText());
    }

    [Fact]
    public void A_declined_finding_is_reported_and_nothing_changes()
    {
        var (t, a, b, c) = ThreeLeaves(22);
        b.SecondBsetFrom = P(140);
        b.Damage = CraftedDamage.BadSecondBsetChecksum;
        t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c));
        var target = t.Target();
        var before = t.Device.Contents.ToArray();

        var reporter = new TopologyReporter(repair: false);
        var result = CheckBtreeNodes.Run(target, reporter, CancellationToken.None);

        Assert.Equal([FsckErrorId.BsetBadChecksum], reporter.Ids);
        Assert.Equal(0, result.Repairs);
        Assert.Empty(target.Edits);
        Assert.True(before.AsSpan().SequenceEqual(t.Device.Contents));
    }

    [Fact]
    public void A_bset_beyond_sectors_written_is_counted_not_reported()
    {
        var (t, a, b, c) = ThreeLeaves(23);
        b.BsetBeyondWritten = P(150);
        t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c));
        var target = t.Target();

        var reporter = new TopologyReporter(repair: true);
        CheckBtreeNodes.Run(target, reporter, CancellationToken.None);
        CheckTopology.Run(target, reporter, CancellationToken.None);

        Assert.True(reporter.Findings.Count == 0, reporter.ToText());
        Assert.Equal(1, reporter.Counts[CheckBtreeNodes.IgnoredBsetsCounter]);
        Assert.Empty(target.Edits);
        var walk = CraftedTreeInspector.Inspect(t.Device, t.Geometry, target.Roots().Single());
        Assert.DoesNotContain(P(150), walk.Keys.Keys);
    }

    [Fact]
    public void Every_node_of_a_deep_tree_is_visited_and_a_clean_tree_has_no_findings()
    {
        var t = new CraftedTree(seed: 24);
        var leaves = new List<CraftedNode>();
        for (ulong i = 0; i < 8; i++)
        {
            var min = i == 0 ? Bpos.Min : P(i * 100);
            var max = i == 7 ? Bpos.Max : E((i * 100) + 99);
            var leaf = t.Leaf($"L{i}", min, max, [(i * 100) + 1, (i * 100) + 2]);
            leaf.SecondBsetFrom = P((i * 100) + 2);
            leaves.Add(leaf);
        }
        var i1 = t.Interior("I1", 1, Bpos.Min, E(399), [.. leaves.Take(4)]);
        var i2 = t.Interior("I2", 1, P(400), Bpos.Max, [.. leaves.Skip(4)]);
        t.Write(t.Interior("root", 2, Bpos.Min, Bpos.Max, i1, i2));

        var reporter = new TopologyReporter(repair: true);
        var result = CheckBtreeNodes.Run(t.Target(), reporter, CancellationToken.None);

        Assert.True(reporter.Findings.Count == 0, reporter.ToText());
        Assert.Equal(11, result.NodesVisited);
    }
}
