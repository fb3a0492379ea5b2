using Basalt.Btree;
using Basalt.Format;
using Basalt.TestKit;
using static Basalt.TestKit.CraftedTree;

namespace Basalt.Tests.Fsck;

/// <summary>
/// check_topology with the node scan: damage above intact leaves loses no key, an older version
/// that comes back is reported as such, and bad input on the device (nodes of another
/// filesystem, contradicting ranges, many copies of one node) is chosen from deterministically
/// and never builds a tree that fails its own check. Each case asserts the exact findings and
/// the exact surviving key set, then that a second run and check_btree_nodes are clean.
/// </summary>
public sealed class TopologyScanTests
{
    private const FsckErrorId RootUnreadable = FsckErrorId.BtreeRootUnreadable;
    private const FsckErrorId Unreadable = FsckErrorId.BtreeNodeUnreadable;
    private const FsckErrorId Rebuilt = FsckErrorId.BtreeRangeRebuiltFromScan;
    private const FsckErrorId Older = FsckErrorId.BtreeRangeRestoredFromOlderVersion;
    private const FsckErrorId Stale = FsckErrorId.BtreeNodeStaleReachable;
    private const FsckErrorId Gap = FsckErrorId.BtreeNodeTopologyGap;
    private const FsckErrorId BadMax = FsckErrorId.BtreeNodeTopologyBadMaxKey;

    /// <summary>Root (level 2) over I1 [A, B], I2 [C, D], I3 [E, F]; leaves hold keys 0..590 step 10.</summary>
    private static (CraftedTree T, CraftedNode Root, CraftedNode[] Interior, CraftedNode[] Leaves) ThreeLevels(int seed)
    {
        var t = new CraftedTree(seed: seed);
        var leaves = new[]
        {
            t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90)),
            t.Leaf("B", P(100), E(199), Offsets(100, 190)),
            t.Leaf("C", P(200), E(299), Offsets(200, 290)),
            t.Leaf("D", P(300), E(399), Offsets(300, 390)),
            t.Leaf("E", P(400), E(499), Offsets(400, 490)),
            t.Leaf("F", P(500), Bpos.Max, Offsets(500, 590)),
        };
        var interior = new[]
        {
            t.Interior("I1", 1, Bpos.Min, E(199), leaves[0], leaves[1]),
            t.Interior("I2", 1, P(200), E(399), leaves[2], leaves[3]),
            t.Interior("I3", 1, P(400), Bpos.Max, leaves[4], leaves[5]),
        };
        var root = t.Interior("root", 2, Bpos.Min, Bpos.Max, interior);
        return (t, root, interior, leaves);
    }

    [Fact]
    public void Damaged_root_is_rebuilt_over_its_intact_children_and_no_key_is_lost()
    {
        var (t, root, _, leaves) = ThreeLevels(seed: 21);
        root.Damage = CraftedDamage.Garbage;
        t.Write(root);

        var reporter = RepairAndVerify(t, [RootUnreadable, Rebuilt], Union(leaves));
        Assert.Contains("root rebuilt at level 2 over the level 1 nodes", reporter.Findings[0].Detail);
        Assert.Contains("rebuilt from 3 level 1 node(s)", reporter.Findings[1].Detail);
        Assert.Contains("nothing lost", reporter.Findings[1].Detail);
    }

    [Fact]
    public void Damaged_level_1_node_loses_none_of_the_leaves_below_it()
    {
        var (t, root, interior, leaves) = ThreeLevels(seed: 22);
        interior[1].Damage = CraftedDamage.BadHeaderChecksum;
        t.Write(root);

        // I2 is dropped; no other level-1 node covers [200, 399], so I3 is extended down over it,
        // and inside I3 the gap is filled with C and D, found by the scan.
        var reporter = RepairAndVerify(t, [Unreadable, Gap, Rebuilt], Union(leaves));
        Assert.Contains("(20 keys kept); nothing lost", reporter.Findings[2].Detail);
    }

    [Fact]
    public void Misdirected_block_over_the_root_costs_no_key()
    {
        // A 4 KiB write meant for leaf C landed on the root's slot: the root reads as C (wrong
        // seq), and the scan sees two copies of C, keeping the one at the lower offset.
        var (t, root, _, leaves) = ThreeLevels(seed: 23);
        t.Write(root);
        t.CopyBlock(leaves[2].SlotOffset, root.SlotOffset, 4096);

        var reporter = RepairAndVerify(t, [RootUnreadable, Rebuilt], Union(leaves));
        Assert.Contains(FsckCatalogue.NameOf(FsckErrorId.BtreeNodeBadSeq), reporter.Findings[0].Detail);
    }

    [Fact]
    public void Two_damaged_interior_nodes_at_once_lose_no_key()
    {
        var (t, root, interior, leaves) = ThreeLevels(seed: 24);
        interior[0].Damage = CraftedDamage.Garbage;
        interior[2].Damage = CraftedDamage.BadHeaderChecksum;
        t.Write(root);

        // I1 and I3 are dropped, I2 is stretched over [min, max], and inside it the scan fills
        // the front with A, B and the tail with E, F.
        RepairAndVerify(t, [Unreadable, Gap, Unreadable, BadMax, Rebuilt, Rebuilt], Union(leaves));
    }

    [Fact]
    public void Every_interior_child_of_the_root_damaged_loses_no_key()
    {
        var (t, root, interior, leaves) = ThreeLevels(seed: 28);
        foreach (var i in interior)
            i.Damage = CraftedDamage.Garbage;
        t.Write(root);

        // The root is left with no children, but every leaf is whole: the root is rebuilt at
        // level 1 over the six leaves the scan finds.
        var reporter = RepairAndVerify(t, [Unreadable, Unreadable, Unreadable, FsckErrorId.BtreeNodeTopologyInteriorNodeEmpty, Rebuilt], Union(leaves));
        Assert.Equal("root has no children left; root rebuilt at level 1 over the level 0 nodes the node scan found", reporter.Findings[3].Detail);
        Assert.Contains("rebuilt from 6 level 0 node(s)", reporter.Findings[4].Detail);
        Assert.Contains("nothing lost", reporter.Findings[4].Detail);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_child_of_a_level_2_node_damaged_loses_no_key(bool onlyChildOfTheRoot)
    {
        // Root (level 3) over P1 [min, 299] and (unless P1 is the root's only child) P2 [300, max];
        // P1 over I1 [min, 99], I2 [100, 299], both damaged: P1 is left with no children while the
        // leaves below I1 and I2 are whole. Through P2 (extended down over P1's range, its first
        // child extended too, the leaves found by the scan spliced in), or through a rebuilt root
        // when P1 was the only child, every key survives.
        var t = new CraftedTree(seed: 30);
        var leaves = new[]
        {
            t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90)),
            t.Leaf("B", P(100), E(199), Offsets(100, 190)),
            t.Leaf("C", P(200), E(299), Offsets(200, 290)),
            t.Leaf("D", P(300), E(399), Offsets(300, 390)),
            t.Leaf("E", P(400), Bpos.Max, Offsets(400, 490)),
        };
        var i1 = t.Interior("I1", 1, Bpos.Min, E(99), leaves[0]);
        var i2 = t.Interior("I2", 1, P(100), onlyChildOfTheRoot ? Bpos.Max : E(299), onlyChildOfTheRoot ? leaves[1..] : leaves[1..3]);
        var p1 = t.Interior("P1", 2, Bpos.Min, onlyChildOfTheRoot ? Bpos.Max : E(299), i1, i2);
        var root = onlyChildOfTheRoot
            ? t.Interior("root", 3, Bpos.Min, Bpos.Max, p1)
            : t.Interior("root", 3, Bpos.Min, Bpos.Max, p1,
                t.Interior("P2", 2, P(300), Bpos.Max, t.Interior("I3", 1, P(300), Bpos.Max, leaves[3], leaves[4])));
        i1.Damage = CraftedDamage.Garbage;
        i2.Damage = CraftedDamage.BadHeaderChecksum;
        t.Write(root);

        var target = t.Target();
        var reporter = new TopologyReporter(repair: true);
        CheckTopology.Run(target, reporter, CancellationToken.None);
        var walk = CraftedTreeInspector.Inspect(t.Device, t.Geometry, target.Roots().SingleOrDefault());
        Assert.True(walk.Violations.Count == 0, string.Join("\n", walk.Violations) + "\n" + reporter.ToText());
        Assert.True(KeyLines(Union(leaves)).SequenceEqual(walk.KeyLines()), reporter.ToText());
        var again = new TopologyReporter(repair: true);
        CheckTopology.Run(target, again, CancellationToken.None);
        Assert.True(again.Findings.Count == 0, $"second run:\n{again.ToText()}");
    }

    [Fact]
    public void Damaged_root_and_damaged_level_1_node_lose_no_key()
    {
        var (t, root, interior, leaves) = ThreeLevels(seed: 25);
        root.Damage = CraftedDamage.Garbage;
        interior[0].Damage = CraftedDamage.Garbage;
        t.Write(root);

        // The new root gets I2 and I3 (I2 stretched down over I1's range), then I2's front is
        // filled with A and B.
        RepairAndVerify(t, [RootUnreadable, Rebuilt, Rebuilt], Union(leaves));
    }

    [Theory]
    [InlineData(150)]
    [InlineData(250)]
    public void A_whole_node_behind_a_pointer_with_the_wrong_max_comes_back_over_its_own_range(int forgedMax)
    {
        // B's pointer (a forged but checksummed key) says it ends at forgedMax: the read fails on
        // the range, the pointer is dropped, and the scan's copy of B, whole, fills the gap.
        var t = new CraftedTree(seed: 29);
        var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
        var b = t.Leaf("B", P(100), E(199), Offsets(100, 190));
        var c = t.Leaf("C", P(200), Bpos.Max, Offsets(200, 290));
        var root = t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c);
        root.Children[1].Max = E((ulong)forgedMax);
        t.Write(root);

        var reporter = RepairAndVerify(t, [Unreadable, Rebuilt], Union(a, b, c));
        Assert.Contains(FsckCatalogue.NameOf(FsckErrorId.BtreeNodeBadMaxKey), reporter.Findings[0].Detail);
        Assert.Contains("(10 keys kept); nothing lost", reporter.Findings[1].Detail);
    }

    [Fact]
    public void Damaged_newest_version_is_restored_from_the_older_one_on_disk_and_reported()
    {
        var t = new CraftedTree(seed: 26);
        var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
        var bOld = t.Leaf("B0", P(100), E(199), Offsets(100, 150), generation: 1);
        var b = t.Leaf("B", P(100), E(199), Offsets(100, 190), generation: 2);
        var c = t.Leaf("C", P(200), Bpos.Max, Offsets(200, 290));
        t.WriteLoose(bOld);
        b.Damage = CraftedDamage.BadHeaderChecksum;
        t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, c));

        var (oldOffset, newOffset) = (bOld.SlotOffset, b.SlotOffset);

        var reporter = RepairAndVerify(t, [Unreadable, Rebuilt, Older], Union(a, bOld, c));
        var older = reporter.Findings[2];
        Assert.Contains($"gen 1 journal seq 0 at offset {oldOffset}", older.Detail);
        Assert.Contains($"the newer version at offset {newOffset}", older.Detail);
        Assert.Contains("damaged header reads gen 2", older.Detail);
        Assert.Contains("[1:100:0..1:199:4294967295]", older.Detail);
    }

    [Fact]
    public void Reachable_node_older_than_a_found_one_is_replaced_by_the_newer()
    {
        // A is unreadable, which runs the scan; C0 is reachable but C (newer) sits on disk unreachable.
        var t = new CraftedTree(seed: 27);
        var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
        var b = t.Leaf("B", P(100), E(199), Offsets(100, 190));
        var cOld = t.Leaf("C0", P(200), Bpos.Max, Offsets(200, 250), generation: 1);
        var c = t.Leaf("C", P(200), Bpos.Max, Offsets(200, 290), generation: 2);
        t.WriteLoose(c);
        a.Damage = CraftedDamage.Garbage;
        t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, cOld));

        var newer = c.SlotOffset;

        var reporter = RepairAndVerify(t, [Unreadable, Gap, Stale, Rebuilt], Union(b, c));
        Assert.Contains($"newer node at offset {newer}", reporter.Findings[2].Detail);
    }

    [Fact]
    public void A_found_node_with_no_later_journal_seq_does_not_replace_the_reachable_one()
    {
        // C0 is reachable; C, a restructure of the same range with a higher generation but the same
        // journal seq, sits on disk unreachable: the trace of a crash between a node's write and the
        // interior update naming it, whose keys replay put into C0. It is not newer: C0 stays.
        var (t, b, cOld, _) = ReachableAndUnreachableVersions(reachableSeq: 40, unreachableSeq: 40);
        var reporter = RepairAndVerify(t, [Unreadable, Gap], Union(b, cOld));
        Assert.DoesNotContain(reporter.Findings, f => f.Id == Stale);

        // With a later journal seq the found node does hold updates the reachable one lacks.
        var (t2, b2, _, c2) = ReachableAndUnreachableVersions(reachableSeq: 40, unreachableSeq: 41);
        RepairAndVerify(t2, [Unreadable, Gap, Stale, Rebuilt], Union(b2, c2));
    }

    /// <summary>A (garbage, so the scan runs), B, and C0 reachable; C, C0's range at generation 2, written loose.</summary>
    private static (CraftedTree Tree, CraftedNode B, CraftedNode Reachable, CraftedNode Unreachable) ReachableAndUnreachableVersions(
        ulong reachableSeq, ulong unreachableSeq)
    {
        var t = new CraftedTree(seed: 27);
        var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
        var b = t.Leaf("B", P(100), E(199), Offsets(100, 190));
        var cOld = t.Leaf("C0", P(200), Bpos.Max, Offsets(200, 250), generation: 1);
        var c = t.Leaf("C", P(200), Bpos.Max, Offsets(200, 290), generation: 2);
        (cOld.JournalSeq, c.JournalSeq) = (reachableSeq, unreachableSeq);
        t.WriteLoose(c);
        a.Damage = CraftedDamage.Garbage;
        t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b, cOld));
        return (t, b, cOld, c);
    }

    [Fact]
    public void Nodes_outside_node_space_are_rejected_and_never_chosen()
    {
        // B is reachable; B2, a newer version of its range, lies in a bucket that is not node space
        // (a claim a crash lost): the scan rejects it, so B stays chosen for its range.
        var t = new CraftedTree(seed: 31);
        var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
        var b = t.Leaf("B", P(100), Bpos.Max, Offsets(100, 190));
        var b2 = t.Leaf("B2", P(100), Bpos.Max, Offsets(100, 290), generation: 2);
        t.WriteLoose(b2);
        t.Write(t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b));

        var scan = NodeScan.Run(t.Device, t.Geometry, null, CancellationToken.None, inNodeSpace: offset => offset != b2.SlotOffset);
        Assert.True(scan.TryGet(b2.SlotOffset, out var outside));
        Assert.Equal((ScannedNodeStatus.Rejected, ScanRejection.OutsideNodeSpace), (outside.Status, outside.Rejection));
        Assert.Contains("not node space", outside.StatusText(), StringComparison.Ordinal);
        Assert.True(scan.TryGet(b.SlotOffset, out var kept));
        Assert.Equal(ScannedNodeStatus.Chosen, kept.Status);
        // Without the predicate (node space unknown) B2 is a candidate and supersedes B.
        var all = NodeScan.Run(t.Device, t.Geometry, null, CancellationToken.None);
        Assert.True(all.TryGet(b.SlotOffset, out var superseded));
        Assert.Equal(ScannedNodeStatus.Superseded, superseded.Status);
    }

    [Fact]
    public void A_device_full_of_copies_of_one_node_keeps_the_lowest_and_reports_the_rest()
    {
        var t = new CraftedTree(seed: 30);
        var a = t.Leaf("A", Bpos.Min, E(99), Offsets(0, 90));
        var b = t.Leaf("B", P(100), Bpos.Max, Offsets(100, 190));
        var root = t.Interior("root", 1, Bpos.Min, Bpos.Max, a, b);
        root.Damage = CraftedDamage.Garbage;
        t.Write(root);
        var copies = Enumerable.Range(0, 40).Select(_ => t.CopySlotToFreshSlot(b.SlotOffset)).ToList();

        var first = NodeScan.Run(t.Device, t.Geometry, null, CancellationToken.None);
        var second = NodeScan.Run(t.Device, t.Geometry, null, CancellationToken.None);
        Assert.Equal(first.Nodes, second.Nodes);
        Assert.True(first.TryGet(b.SlotOffset, out var kept));
        Assert.Equal(ScannedNodeStatus.Chosen, kept.Status);
        foreach (var offset in copies)
        {
            Assert.True(first.TryGet(offset, out var copy));
            Assert.Equal(ScannedNodeStatus.Superseded, copy.Status);
            Assert.Equal(b.SlotOffset, copy.SupersededBy);
        }

        RepairAndVerify(t, [RootUnreadable, Rebuilt], Union(a, b));
    }

    [Fact]
    public void Versions_are_ordered_by_journal_seq_first_and_a_blacklisted_first_bset_is_rejected()
    {
        var t = new CraftedTree(seed: 34);
        // Same range: X has the higher generation, Y the higher journal seq; Z's journal seq is blacklisted.
        var x = t.Leaf("X", P(100), E(199), [100], generation: 5);
        var y = t.Leaf("Y", P(100), E(199), [110], generation: 1);
        var z = t.Leaf("Z", P(100), E(199), [120], generation: 9);
        t.WriteLoose(x);
        t.WriteLoose(y);
        t.WriteLoose(z);
        SetJournalSeq(t, x, 5);
        SetJournalSeq(t, y, 7);
        SetJournalSeq(t, z, 9);

        var scan = NodeScan.Run(t.Device, t.Geometry, seq => seq == 9, CancellationToken.None);
        Assert.True(scan.TryGet(y.SlotOffset, out var ys) && ys.Status == ScannedNodeStatus.Chosen, ys.StatusText());
        Assert.Equal(7UL, ys.JournalSeq);
        Assert.True(scan.TryGet(x.SlotOffset, out var xs));
        Assert.Equal((ScannedNodeStatus.Superseded, y.SlotOffset), (xs.Status, xs.SupersededBy));
        Assert.True(scan.TryGet(z.SlotOffset, out var zs));
        Assert.Equal((ScannedNodeStatus.Rejected, ScanRejection.BlacklistedJournalSeq), (zs.Status, zs.Rejection));

        // Without the blacklist Z is the newest.
        var open = NodeScan.Run(t.Device, t.Geometry, null, CancellationToken.None);
        Assert.True(open.TryGet(z.SlotOffset, out var zo) && zo.Status == ScannedNodeStatus.Chosen);
    }

    private static void SetJournalSeq(CraftedTree t, CraftedNode node, ulong seq)
    {
        var slot = t.Device.Contents.Slice(checked((int)node.SlotOffset), t.Geometry.NodeSize);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(
            slot[(Basalt.Btree.Node.BtreeNodeFormat.FirstBsetOffset + Basalt.Btree.Node.BtreeNodeFormat.BsetJournalSeqOffset)..], seq);
        Assert.True(Basalt.Btree.Node.BtreeNodeInspector.RecomputeChecksum(slot, 0));
    }

    [Fact]
    public void Damaged_root_with_nothing_found_still_resets_the_btree()
    {
        var t = new CraftedTree(seed: 31);
        var root = t.Leaf("root", Bpos.Min, Bpos.Max, Offsets(0, 90));
        root.Damage = CraftedDamage.Garbage;
        t.Write(root);

        var reporter = RepairAndVerify(t, [RootUnreadable], []);
        Assert.Contains("found no node of the btree", reporter.Findings[0].Detail);
    }

    [Fact]
    public void Declining_run_reports_the_same_scan_findings_and_changes_nothing()
    {
        var (t, root, interior, _) = ThreeLevels(seed: 32);
        root.Damage = CraftedDamage.Garbage;
        interior[0].Damage = CraftedDamage.Garbage;
        t.Write(root);
        var before = t.Device.Contents.ToArray();
        var target = t.Target();

        var reporter = new TopologyReporter(repair: false);
        CheckTopology.Run(target, reporter, CancellationToken.None);

        Assert.Equal([RootUnreadable, Rebuilt, Rebuilt], reporter.Ids);
        Assert.Empty(target.Edits);
        Assert.True(before.AsSpan().SequenceEqual(t.Device.Contents), "a declining run changed the device");
    }

    [Fact]
    public void Scan_reads_the_whole_node_area_and_counts_it()
    {
        var (t, root, _, _) = ThreeLevels(seed: 33);
        root.Damage = CraftedDamage.Garbage;
        t.Write(root);
        var reporter = new TopologyReporter(repair: true);
        CheckTopology.Run(t.Target(), reporter, CancellationToken.None);
        Assert.Equal(t.Geometry.NodeAreaLength, reporter.Counts["check_topology: node scan: bytes scanned"]);
        // Ten nodes written, the root among them (garbage: not a node).
        Assert.Equal(9, reporter.Counts["check_topology: node scan: nodes found"]);
    }

    /// <summary>Repairs, then checks the findings, the exact key set, the tree's shape, a clean second run and clean nodes.</summary>
    private static TopologyReporter RepairAndVerify(CraftedTree t, FsckErrorId[] expected, SortedDictionary<Bpos, byte[]> keys)
    {
        var target = t.Target();
        var reporter = new TopologyReporter(repair: true);
        CheckTopology.Run(target, reporter, CancellationToken.None);
        Assert.True(expected.SequenceEqual(reporter.Ids), $"expected {string.Join(", ", expected.Select(FsckCatalogue.NameOf))}, got:\n{reporter.ToText()}");

        var walk = CraftedTreeInspector.Inspect(t.Device, t.Geometry, target.Roots().SingleOrDefault());
        Assert.True(walk.Violations.Count == 0, string.Join("\n", walk.Violations));
        Assert.Equal(KeyLines(keys), walk.KeyLines());

        var again = new TopologyReporter(repair: true);
        CheckTopology.Run(target, again, CancellationToken.None);
        Assert.True(again.Findings.Count == 0, $"second run:\n{again.ToText()}");
        var nodes = new TopologyReporter(repair: true);
        CheckBtreeNodes.Run(target, nodes, CancellationToken.None);
        Assert.True(nodes.Findings.Count == 0, $"check_btree_nodes after repair:\n{nodes.ToText()}");
        return reporter;
    }

    private static IEnumerable<ulong> Offsets(ulong from, ulong to, ulong step = 10)
    {
        for (var o = from; o <= to; o += step)
            yield return o;
    }

    private static IEnumerable<KeyValuePair<Bpos, byte[]>> Only(CraftedNode node, Func<Bpos, bool> keep) =>
        node.Keys.Where(k => keep(k.Key));

    private static SortedDictionary<Bpos, byte[]> Union(params CraftedNode[] nodes) => Union(nodes.Select(n => (IEnumerable<KeyValuePair<Bpos, byte[]>>)n.Keys).ToArray());

    private static SortedDictionary<Bpos, byte[]> Union(params IEnumerable<KeyValuePair<Bpos, byte[]>>[] sets)
    {
        var result = new SortedDictionary<Bpos, byte[]>();
        foreach (var set in sets)
        {
            foreach (var (pos, value) in set)
                Assert.True(result.TryAdd(pos, value), $"expected key set names {pos.ToText()} twice");
        }
        return result;
    }

    private static List<string> KeyLines(SortedDictionary<Bpos, byte[]> keys) =>
        keys.Select(k => $"{k.Key.ToText()}={System.Text.Encoding.ASCII.GetString(k.Value)}").ToList();
}
