// The production check target: the btree engine. Nodes are read raw from the engine's device
// (the passes never go through the node cache), and repairs are the engine's level edits, made
// durable by the mount's checkpoint (which also leaves every node on disk current, so the raw
// reads of a later pass see the repaired tree).
using Basalt.Devices;
using Basalt.Format;

namespace Basalt.Btree;

internal sealed class EngineCheckTarget : IBtreeCheckTarget
{
    private readonly BtreeEngine _engine;
    private readonly Action _makeDurable;

    public EngineCheckTarget(BtreeEngine engine, Action makeDurable)
    {
        _engine = engine;
        _makeDurable = makeDurable;
    }

    public IBlockDevice Device => _engine.CheckDevice;

    public BtreeGeometry Geometry => _engine.Geometry;

    public IReadOnlyList<BtreeRoot> Roots()
    {
        var roots = new List<BtreeRoot>();
        foreach (var d in BtreeIds.All)
        {
            if (_engine[d.Id].Root is { } root)
                roots.Add(root);
        }
        return roots;
    }

    public void DeletePointer(BtreeId btree, int level, Bpos pos)
    {
        _engine.KeepSlotsHoldingNodesForRepair();
        _engine[btree].DeleteAtLevel(checked((byte)level), pos);
    }

    public void PutPointer(BtreeId btree, int level, Bpos pos, BtreePtrValue value)
    {
        _engine.KeepSlotsHoldingNodesForRepair();
        _engine[btree].InsertAtLevel(checked((byte)level), new Bkey(pos, KeyType.BtreePtr), value.ToBytes());
    }

    public bool SlotTakenByAnother(long offset, ulong seq) => _engine.IsSlotTakenByAnother(offset, seq);

    public void RewriteNode(BtreeId btree, int level, Bpos pos)
    {
        _engine.KeepSlotsHoldingNodesForRepair();
        _engine[btree].RewriteNode(checked((byte)level), pos);
    }

    public void RewriteRootFullRange(BtreeId btree)
    {
        var tree = _engine[btree];
        if (tree.Root is { } root)
            tree.RewriteNode(root.Level, Bpos.Max);
    }

    public void ResetToEmpty(BtreeId btree) => _engine[btree].ResetToEmpty();

    public void Sync() => _makeDurable();

    public Func<ulong, bool>? IsBlacklisted => _engine.JournalIsBlacklisted;

    public Func<long, bool>? InNodeSpace => _engine.InNodeSpace;

    public void AdoptNode(BtreeId btree, int level, Bpos max, BtreePtrValue ptr) =>
        _engine.AdoptScannedNode(btree, checked((byte)level), ptr, max);

    public void RebuildRoot(BtreeId btree, byte level, IReadOnlyList<(Bpos Max, BtreePtrValue Ptr)> children) =>
        _engine[btree].RebuildRoot(level, children);
}
