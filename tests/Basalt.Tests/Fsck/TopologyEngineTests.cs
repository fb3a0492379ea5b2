using Basalt.Btree;
using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Fsck;

/// <summary>
/// The topology cases again, repaired through the btree engine (the fsck driver's path): the
/// engine is opened on the crafted image, the passes run against it, and the image is inspected
/// from the roots the engine committed.
/// </summary>
public sealed class TopologyEngineTests(ITestOutputHelper output)
{
    public static TheoryData<string> Cases => TopologyCases.All();

    private static (BtreeEngine Engine, MemoryJournal Log) Open(CraftedTree tree, IReadOnlyList<BtreeRoot>? roots = null)
    {
        var log = new MemoryJournal();
        roots ??= tree.RootRecord is { } r ? [r] : [];
        var engine = log.Open(tree.Device, tree.Geometry, roots, new BtreeEngineOptions { Random = new Random(5) });
        return (engine, log);
    }

    private static BtreeCheckResult Topology(BtreeEngine engine, MemoryJournal log, TopologyReporter reporter) =>
        CheckTopology.Run(engine, () => engine.Checkpoint(log), reporter, CancellationToken.None);

    private static BtreeCheckResult Nodes(BtreeEngine engine, MemoryJournal log, TopologyReporter reporter) =>
        CheckBtreeNodes.Run(engine, () => engine.Checkpoint(log), reporter, CancellationToken.None);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Engine_repair_reports_the_findings_and_leaves_exactly_the_surviving_keys(string name)
    {
        var c = TopologyCases.Build(name);
        var (engine, log) = Open(c.Tree);
        using (engine)
        {
            var reporter = new TopologyReporter(repair: true);
            Topology(engine, log, reporter);
            Assert.True(c.ExpectedFindings.SequenceEqual(reporter.Ids), reporter.ToText());

            var root = engine[c.Tree.Btree].Root;
            var walk = CraftedTreeInspector.Inspect(c.Tree.Device, c.Tree.Geometry, root);
            Assert.True(walk.Violations.Count == 0, string.Join("\n", walk.Violations));
            Assert.Equal(c.ExpectedKeys.Select(k => k.Key), walk.Keys.Keys);
            Assert.Equal(c.ExpectedKeys.Select(k => Convert.ToHexString(k.Value)), walk.Keys.Values.Select(Convert.ToHexString));

            var nodes = new TopologyReporter(repair: true);
            Nodes(engine, log, nodes);
            Assert.True(nodes.Findings.Count == 0, nodes.ToText());
        }

        // A second fsck on a fresh mount of the repaired image finds nothing.
        Assert.NotEmpty(log.Roots);
        var (again, log2) = Open(c.Tree, log.Roots);
        using (again)
        {
            var second = new TopologyReporter(repair: true);
            Topology(again, log2, second);
            Nodes(again, log2, second);
            Assert.True(second.Findings.Count == 0, $"second run:\n{second.ToText()}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Engine_declining_run_reports_the_same_findings_and_changes_nothing(string name)
    {
        var c = TopologyCases.Build(name);
        var before = c.Tree.Device.Contents.ToArray();
        var (engine, log) = Open(c.Tree);
        using (engine)
        {
            var reporter = new TopologyReporter(repair: false);
            Topology(engine, log, reporter);
            Nodes(engine, log, reporter);
            Assert.True(c.ExpectedFindings.SequenceEqual(reporter.Ids), reporter.ToText());
        }
        Assert.True(before.AsSpan().SequenceEqual(c.Tree.Device.Contents), "a declining run changed the device");
    }

    [Fact]
    public void Engine_repairs_random_damage_to_a_tiled_tree_that_a_fresh_mount_finds_clean()
    {
        var seed = TestSeed.Get(output);
        var rounds = LongTests.Scale(60);
        for (var round = 0; round < rounds; round++)
        {
            var (tree, original) = TopologyRandomTests.Build(TopologyRandomTests.RoundSeed(seed, round));
            var context = $"seed {seed} round {round}";
            var (engine, log) = Open(tree);
            var reporter = new TopologyReporter(repair: true);
            using (engine)
            {
                Topology(engine, log, reporter);
                Nodes(engine, log, reporter);
                var walk = CraftedTreeInspector.Inspect(tree.Device, tree.Geometry, engine[tree.Btree].Root);
                Assert.True(walk.Violations.Count == 0, $"{context}\n{reporter.ToText()}\n{string.Join("\n", walk.Violations)}");
                foreach (var (pos, value) in walk.Keys)
                    Assert.True(original.TryGetValue(pos, out var values) && values.Any(v => v.AsSpan().SequenceEqual(value)), $"{context}: key {pos.ToText()} invented");
            }
            var roots = log.Roots.Count > 0 ? log.Roots : (tree.RootRecord is { } r ? [r] : []);
            var (again, log2) = Open(tree, roots);
            using (again)
            {
                var second = new TopologyReporter(repair: true);
                Topology(again, log2, second);
                Nodes(again, log2, second);
                Assert.True(second.Findings.Count == 0, $"{context}\nfirst:\n{reporter.ToText()}\nsecond:\n{second.ToText()}");
            }
        }
    }

    [Fact]
    public void Engine_rewrites_a_node_with_a_bad_bset_from_what_validated()
    {
        var t = new CraftedTree(seed: 31);
        var a = t.Leaf("A", Bpos.Min, CraftedTree.E(99), [0, 50, 90]);
        var b = t.Leaf("B", CraftedTree.P(100), Bpos.Max, [100, 120, 140, 160]);
        b.SecondBsetFrom = CraftedTree.P(140);
        b.Damage = CraftedDamage.BadSecondBsetChecksum;
        t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b));
        var (engine, log) = Open(t);
        using (engine)
        {
            var reporter = new TopologyReporter(repair: true);
            Topology(engine, log, reporter);
            var result = Nodes(engine, log, reporter);
            Assert.Equal([FsckErrorId.BsetBadChecksum], reporter.Ids);
            Assert.Equal(1, result.Repairs);
        }
        var (again, log2) = Open(t, log.Roots);
        using (again)
        {
            var second = new TopologyReporter(repair: true);
            Topology(again, log2, second);
            Nodes(again, log2, second);
            Assert.True(second.Findings.Count == 0, second.ToText());
            var walk = CraftedTreeInspector.Inspect(t.Device, t.Geometry, again[t.Btree].Root);
            Assert.Empty(walk.Violations);
            Assert.Equal(new ulong[] { 0, 50, 90, 100, 120 }, walk.Keys.Keys.Select(k => k.Offset));
        }
    }
}
