// The node scan's choice of versions (NodeScan.Resolve) against a plain model of its rule: per
// btree and level, newest first, each node keeps the first part of its range that no newer node
// claimed, found by walking the claims in key order. Bounds are drawn from a few values with
// their neighbours, Bpos.Min and Bpos.Max, so ranges touch, nest, coincide and leave one-key gaps.
using Basalt.Btree;
using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Btree;

public sealed class NodeScanResolveTests(ITestOutputHelper output)
{
    [Fact]
    public void Resolve_matches_the_claim_by_claim_model()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        for (var round = 0; round < LongTests.Scale(300); round++)
        {
            var nodes = RandomNodes(random, random.Next(1, 60));
            var expected = Model(nodes);
            var actual = nodes.ToArray();
            NodeScan.Resolve(actual);
            for (var i = 0; i < nodes.Length; i++)
                Assert.True(expected[i] == actual[i], $"round {round}, node {i}:\nexpected {Text(expected[i])}\nactual   {Text(actual[i])}");
        }
    }

    [Fact]
    public void Resolve_does_not_depend_on_the_order_nodes_are_found_in()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        for (var round = 0; round < LongTests.Scale(100); round++)
        {
            var nodes = RandomNodes(random, random.Next(1, 40));
            var first = nodes.ToArray();
            NodeScan.Resolve(first);
            var shuffled = nodes.ToArray();
            random.Shuffle(shuffled);
            NodeScan.Resolve(shuffled);
            Assert.Equal(first.OrderBy(n => n.Offset), shuffled.OrderBy(n => n.Offset));
        }
    }

    [Fact]
    public void A_node_whose_range_is_one_key_is_chosen_or_superseded_like_any_other()
    {
        ScannedNode Leaf(long offset, ulong journalSeq, Bpos min, Bpos max) => new()
        {
            Offset = offset, Btree = BtreeId.Extents, Level = 0, Min = min, Max = max, Seq = 1, Generation = 1,
            JournalSeq = journalSeq, SectorsWritten = 1, SupersededBy = -1,
        };
        var nodes = new[]
        {
            Leaf(0, 9, new Bpos(10, 0), new Bpos(20, 0)),
            Leaf(16384, 1, new Bpos(15, 0), new Bpos(15, 0)),
            Leaf(32768, 1, new Bpos(25, 0), new Bpos(25, 0)),
        };
        NodeScan.Resolve(nodes);
        Assert.Equal((ScannedNodeStatus.Chosen, -1L), (nodes[0].Status, nodes[0].SupersededBy));
        Assert.Equal((ScannedNodeStatus.Superseded, 0L), (nodes[1].Status, nodes[1].SupersededBy));
        Assert.Equal((ScannedNodeStatus.Chosen, new Bpos(25, 0), new Bpos(25, 0)), (nodes[2].Status, nodes[2].UseMin, nodes[2].UseMax));
    }

    private static ScannedNode[] RandomNodes(Random random, int count)
    {
        var offsets = Enumerable.Range(0, count).Select(i => (long)i * 16384).ToArray();
        random.Shuffle(offsets);
        var nodes = new ScannedNode[count];
        for (var i = 0; i < count; i++)
        {
            var (a, b) = (RandomBound(random), RandomBound(random));
            if (a > b)
                (a, b) = (b, a);
            var rejected = random.Next(8) == 0;
            nodes[i] = new ScannedNode
            {
                Offset = offsets[i],
                Btree = random.Next(3) == 0 ? BtreeId.Inodes : BtreeId.Extents,
                Level = (byte)random.Next(2),
                Min = a,
                Max = b,
                Seq = (ulong)random.Next(1, 5),
                Generation = (uint)random.Next(3),
                JournalSeq = (ulong)random.Next(4),
                SectorsWritten = (ushort)random.Next(1, 3),
                Status = rejected ? ScannedNodeStatus.Rejected : ScannedNodeStatus.Chosen,
                Rejection = rejected ? ScanRejection.Invalid : ScanRejection.None,
                SupersededBy = -1,
            };
        }
        return nodes;
    }

    private static Bpos RandomBound(Random random)
    {
        switch (random.Next(12))
        {
            case 0:
                return Bpos.Min;
            case 1:
                return Bpos.Max;
            default:
                var pos = new Bpos((ulong)random.Next(1, 8) * 10, (ulong)random.Next(3));
                return random.Next(3) switch
                {
                    0 => pos.Predecessor(),
                    1 => pos.Successor(),
                    _ => pos,
                };
        }
    }

    /// <summary>The rule, one node at a time against the list of claims so far in key order.</summary>
    private static ScannedNode[] Model(ScannedNode[] found)
    {
        var nodes = found.ToArray();
        var order = Enumerable.Range(0, nodes.Length)
            .Where(i => nodes[i].Status != ScannedNodeStatus.Rejected)
            .OrderBy(i => nodes[i].Btree).ThenBy(i => nodes[i].Level)
            .ThenByDescending(i => nodes[i].JournalSeq).ThenByDescending(i => nodes[i].Generation)
            .ThenByDescending(i => nodes[i].SectorsWritten).ThenBy(i => nodes[i].Offset)
            .ToList();
        foreach (var group in order.GroupBy(i => (nodes[i].Btree, nodes[i].Level)))
        {
            var claims = new List<(Bpos Min, Bpos Max, long Offset)>();
            foreach (var i in group)
            {
                var n = nodes[i];
                var (free, by) = FirstUnclaimed(claims, n.Min, n.Max);
                if (free is not { } part)
                {
                    nodes[i] = n with { Status = ScannedNodeStatus.Superseded, SupersededBy = by };
                    continue;
                }
                var whole = part.Min == n.Min && part.Max == n.Max;
                nodes[i] = n with
                {
                    Status = whole ? ScannedNodeStatus.Chosen : ScannedNodeStatus.Clipped,
                    SupersededBy = whole ? -1 : by,
                    UseMin = part.Min,
                    UseMax = part.Max,
                };
                claims.Add((part.Min, part.Max, n.Offset));
                claims.Sort((x, y) => x.Min.CompareTo(y.Min));
            }
        }
        return nodes;
    }

    private static ((Bpos Min, Bpos Max)? Free, long By) FirstUnclaimed(List<(Bpos Min, Bpos Max, long Offset)> claims, Bpos min, Bpos max)
    {
        long by = -1;
        var start = min;
        foreach (var c in claims)
        {
            if (c.Max < start)
                continue;
            if (c.Min > max)
                break;
            if (by < 0)
                by = c.Offset;
            if (c.Min > start)
                return ((start, c.Min.Predecessor()), by);
            if (c.Max >= max)
                return (null, by);
            start = c.Max.Successor();
        }
        return ((start, max), by);
    }

    private static string Text(in ScannedNode n) => $"{n.Describe()} {n.Btree} level {n.Level}: {n.StatusText()}";
}
