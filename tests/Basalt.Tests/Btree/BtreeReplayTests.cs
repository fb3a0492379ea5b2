// Journal replay on crafted images: the engine opened as recovery opens it (the allocator marked
// conservatively from the roots and the journal's interior keys), the keys replayed, the allocator
// rebuilt exactly afterwards.
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.Tests.Btree;

public sealed class BtreeReplayTests
{
    [Fact]
    public void Conservative_marking_follows_a_reused_slot_at_each_node_seq_a_pointer_names()
    {
        // Regression (the long crash-suite workload of seed 2094203621 with capped write-back
        // rounds taking never-written nodes first): slot X held level-1 node B0, was freed, and was
        // reused for level-1 node B1 while the root only appended bsets. The root's first bset
        // still names X as B0, its second as B1. The marking visited X once per (level, slot): the
        // stale version came first, its read of X found another node's seq and nothing to follow,
        // and the current version was skipped, so B1's leaf C was never marked. Replay then handed
        // C's slot to the nodes its own splits made while C was cached: "an item with the same key
        // has already been added".
        var tree = new CraftedTree(nodeSize: 1024, slots: 64);
        var c = tree.Leaf("C", Bpos.Min, Bpos.Max, [10, 20, 30]);
        var b1 = tree.Interior("B1", 1, Bpos.Min, Bpos.Max, c);
        tree.Write(b1);

        // The root, written by hand: one key at max, in two versions naming the same slot.
        var options = new BsetWriteOptions(tree.Geometry.BlockSize, tree.Geometry.ChecksumType, tree.Geometry.Version, JournalSeq: 0);
        var current = Pointer(tree, b1.Seq, b1.SectorsWritten, b1.SlotOffset);
        var stale = Pointer(tree, b1.Seq ^ 0x5a5a5a5a5a5a5a5aUL, 1, b1.SlotOffset);
        var rootSeq = 0x7000_0000_0000_0001UL;
        var rootSlot = tree.Geometry.NodeAreaOffset + (8L * tree.Geometry.NodeSize);
        var buffer = new byte[tree.Geometry.NodeSize];
        var header = new NodeHeader(rootSeq, 1, BtreeId.Test, 2, Bpos.Min, Bpos.Max);
        var written = BtreeNodeWriter.WriteFirst(buffer, tree.Geometry.NodeMagic, header, PointerRun(stale), options);
        written += BtreeNodeWriter.WriteAppend(buffer.AsSpan(written), rootSeq, written / FormatLimits.SectorSize, PointerRun(current), options);
        tree.Device.Write(rootSlot, buffer);
        var root = new BtreeRoot(BtreeId.Test, 2, Pointer(tree, rootSeq, written / FormatLimits.SectorSize, rootSlot));

        var space = new BtreeNodeSpaceLog();
        var journal = new MemoryJournal();
        using var engine = BtreeEngine.Open(tree.Device, tree.Geometry, [root], new BtreeEngineOptions { NodeSpaceObserver = space, Random = new Random(3) },
            journal, new EmergencyState(), replayInterior: []);
        Assert.Contains(c.SlotOffset, space.Allocations);

        // Enough leaf keys that C splits during the replay: its new nodes need free slots.
        var value = new byte[40];
        var keys = Enumerable.Range(100, 60)
            .Select(i => new ReplayKey(new BtreeUpdate(BtreeId.Test, 0, new Bkey(CraftedTree.P((ulong)i), KeyType.Cookie), value), 5))
            .ToList();
        engine.Replay(keys, tolerant: false);
        engine.FinishReplay();
        var test = engine[BtreeId.Test];
        foreach (var offset in new ulong[] { 10, 20, 30, 100, 159 })
            Assert.True(test.TryGet(CraftedTree.P(offset), out _), $"key {offset} after the replay");
        Assert.True(test.Root!.Level >= 2);
    }

    private static BtreePtrValue Pointer(CraftedTree tree, ulong seq, int sectorsWritten, long slot) => new()
    {
        Seq = seq,
        SectorsWritten = (ushort)sectorsWritten,
        MinKey = Bpos.Min,
        Ptrs = [new DevicePtr(tree.Geometry.Device, (ulong)(slot / FormatLimits.SectorSize), 0)],
    };

    private static KeyRun PointerRun(BtreePtrValue ptr)
    {
        var b = new KeyRunBuilder();
        b.Add(new Bkey(Bpos.Max, KeyType.BtreePtr), ptr.ToBytes());
        return b.Build();
    }
}
