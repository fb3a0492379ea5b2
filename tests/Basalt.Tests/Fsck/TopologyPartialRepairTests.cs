using Basalt.Btree;
using Basalt.Format;
using Basalt.TestKit;
using static Basalt.TestKit.CraftedTree;

namespace Basalt.Tests.Fsck;

/// <summary>
/// check_topology with some findings answered "no": what is applied is a consistent prefix of the
/// full repair, every node the pass rewrites is one the repaired tree points at, and a later
/// repairing run leaves a tiled tree. The cases clip a child onto its parent's shrunk max and then
/// decline the boundary repair that follows.
/// </summary>
public sealed class TopologyPartialRepairTests
{
    /// <summary>
    /// I0 overlaps newer I1 and is shrunk to E(409); its child B sticks out and is clipped onto
    /// E(409); B (empty, as old as A) would then be dropped as lying inside A, and that is declined.
    /// The clip is applied, so B's pointer is at E(409) and B's rewrite finds it (seed 413283403
    /// round 25 of the random test: the rewrite asked for a node the parent did not point at).
    /// </summary>
    [Fact]
    public void A_clipped_child_whose_drop_is_declined_stays_in_its_parent()
    {
        var t = new CraftedTree(seed: 31);
        var a = t.Leaf("A", Bpos.Min, E(334), [31, 333]);
        var b = t.Leaf("B", P(280), E(459), []);
        var c = t.Leaf("C", P(410), Bpos.Max, [500, 900], generation: 2);
        var i0 = t.Interior("I0", 1, Bpos.Min, E(459), 2, a, b);
        var i1 = t.Interior("I1", 1, P(410), Bpos.Max, 3, c);
        t.Write(t.Interior("root", 2, Bpos.Min, Bpos.Max, i0, i1));
        var target = t.Target();

        var partial = new AnsweringReporter(true, true, false);
        CheckTopology.Run(target, partial, CancellationToken.None);

        Assert.Equal(
            [FsckErrorId.BtreeNodeTopologyBadMaxKey, FsckErrorId.BtreeNodeTopologyBadMaxKey, FsckErrorId.BtreeNodeTopologyOverwrittenByPrevNode,
             FsckErrorId.BtreeNodeTopologyBadMaxKey],
            partial.Ids);
        Assert.Contains($"put L1 {E(409).ToText()} min {P(280).ToText()} RangeUpdated", target.Edits);
        Assert.Contains($"rewrite L0 {E(409).ToText()}", target.Edits);
        var i0Now = t.Root!.Children[0].Node;
        Assert.Equal([E(334), E(409)], i0Now.Children.Select(p => p.Max));
        Assert.Equal((P(280), E(409)), (i0Now.Children[1].Node.Min, i0Now.Children[1].Node.Max));

        // B's rewrite gave it generation 2, so the next run settles the overlap in B's favour: A is
        // shrunk to E(279) and its key 333 goes, where the repair answered yes throughout keeps it.
        FullRepairThenClean(t, target, [31, 500, 900]);
    }

    /// <summary>
    /// A already ends at I0's shrunk max E(409) and is newer than B, which is clipped onto it: B
    /// loses the boundary and its drop is declined. Its old pointer goes with I0's rewrite and its
    /// new one cannot be placed, so on disk B is gone: it is not rewritten, and its keys are named lost.
    /// </summary>
    [Fact]
    public void A_clipped_child_that_loses_the_parent_max_is_lost_with_its_keys_counted()
    {
        var t = new CraftedTree(seed: 32);
        var a = t.Leaf("A", Bpos.Min, E(409), [100, 400], generation: 2);
        var b = t.Leaf("B", P(300), E(459), [350, 450]);
        var c = t.Leaf("C", P(410), Bpos.Max, [500], generation: 4);
        var i0 = t.Interior("I0", 1, Bpos.Min, E(459), 2, a, b);
        var i1 = t.Interior("I1", 1, P(410), Bpos.Max, 3, c);
        t.Write(t.Interior("root", 2, Bpos.Min, Bpos.Max, i0, i1));
        var target = t.Target();

        var partial = new AnsweringReporter(true, true, false);
        var result = CheckTopology.Run(target, partial, CancellationToken.None);

        Assert.Equal(
            [FsckErrorId.BtreeNodeTopologyBadMaxKey, FsckErrorId.BtreeNodeTopologyBadMaxKey, FsckErrorId.BtreeNodeTopologyOverwrittenByPrevNode],
            partial.Ids);
        Assert.DoesNotContain(target.Edits, e => e.StartsWith("rewrite L0", StringComparison.Ordinal));
        Assert.Equal(2, result.KeysDropped);
        Assert.Equal([P(350), P(450)], partial.Lost.Order());
        Assert.Equal([E(409)], t.Root!.Children[0].Node.Children.Select(p => p.Max));
        Assert.Same(a, t.Root!.Children[0].Node.Children[0].Node);

        FullRepairThenClean(t, target, [100, 400, 500]);
    }

    /// <summary>
    /// P ends at I0's shrunk max and lies inside the newer B clipped onto it: dropping P is
    /// declined, so P keeps the position and B's clipped pointer is never placed (before, it was
    /// put over P's, dropping P although the answer was no).
    /// </summary>
    [Fact]
    public void Declining_to_drop_the_child_at_the_parent_max_keeps_it()
    {
        var t = new CraftedTree(seed: 33);
        var a = t.Leaf("A", Bpos.Min, E(99), [10]);
        var p = t.Leaf("P", P(100), E(409), [250]);
        var b = t.Leaf("B", P(100), E(459), [160, 420], generation: 3);
        var c = t.Leaf("C", P(410), Bpos.Max, [500], generation: 4);
        var i0 = t.Interior("I0", 1, Bpos.Min, E(459), 2, a, p, b);
        var i1 = t.Interior("I1", 1, P(410), Bpos.Max, 4, c);
        t.Write(t.Interior("root", 2, Bpos.Min, Bpos.Max, i0, i1));
        var target = t.Target();

        var partial = new AnsweringReporter(true, true, false);
        var result = CheckTopology.Run(target, partial, CancellationToken.None);

        Assert.Equal(
            [FsckErrorId.BtreeNodeTopologyBadMaxKey, FsckErrorId.BtreeNodeTopologyBadMaxKey, FsckErrorId.BtreeNodeTopologyOverwrittenByNextNode],
            partial.Ids);
        var i0Now = t.Root!.Children[0].Node;
        Assert.Equal([a, p], i0Now.Children.Select(c => c.Node));
        Assert.Equal(2, result.KeysDropped);
        Assert.Equal([P(160), P(420)], partial.Lost.Order());
        var walk = CraftedTreeInspector.Inspect(t.Device, t.Geometry, target.Roots().Single());
        Assert.True(walk.Violations.Count == 0, string.Join("\n", walk.Violations));

        FullRepairThenClean(t, target, [10, 250, 500]);
    }

    private static void FullRepairThenClean(CraftedTree t, CraftedTreeTarget target, ulong[] survivors)
    {
        var full = new TopologyReporter(repair: true);
        CheckTopology.Run(target, full, CancellationToken.None);
        var walk = CraftedTreeInspector.Inspect(t.Device, t.Geometry, target.Roots().Single());
        Assert.True(walk.Violations.Count == 0, $"{full.ToText()}\nviolations:\n{string.Join("\n", walk.Violations)}");
        Assert.Superset(survivors.Select(P).ToHashSet(), walk.Keys.Keys.ToHashSet());

        var again = new TopologyReporter(repair: true);
        CheckTopology.Run(target, again, CancellationToken.None);
        Assert.True(again.Findings.Count == 0, $"third run:\n{again.ToText()}");
    }

    /// <summary>Answers the findings in order from a script; every later finding is declined.</summary>
    private sealed class AnsweringReporter(params bool[] answers) : IFsckReporter
    {
        public List<FsckErrorId> Ids { get; } = [];
        public List<Bpos> Lost { get; } = [];

        public bool Report(FsckErrorId id, string where, string detail)
        {
            Ids.Add(id);
            return Ids.Count <= answers.Length && answers[Ids.Count - 1];
        }

        public void KeyLost(BtreeId btree, Bpos pos) => Lost.Add(pos);

        public void Count(string what, long amount = 1)
        {
        }
    }
}
