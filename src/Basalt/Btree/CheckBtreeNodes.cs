// check_btree_nodes (fsck pass FsckPassId.CheckBtreeNodes): every node of every btree, leaves
// included, is read raw from the device and validated by the node reader (DESIGN §2 invariant 1).
// Each finding of the read is reported with its own id; when the reporter accepts, a node the
// read repaired in memory (keys dropped, a bad bset cut off, a missing tail) is rewritten from
// what validated. Bsets beyond the parent's sectors_written are the normal trace of a crash:
// counted through IFsckReporter.Count, not reported.
//
// The walk is depth first with one node buffer per level, so memory is bounded by the tree's
// depth, not its size. It runs after check_topology: a node that cannot be read at all is that
// pass's finding (btree_node_unreadable) and is skipped here rather than reported twice.
using Basalt.Format;

namespace Basalt.Btree;

public static class CheckBtreeNodes
{
    /// <summary>Name under which bsets beyond sectors_written are counted.</summary>
    public const string IgnoredBsetsCounter = "bsets beyond sectors_written ignored";

    /// <summary>
    /// Runs check_btree_nodes over every btree of <paramref name="engine"/>: each node finding goes
    /// to <paramref name="reporter"/>; accepted ones get the node rewritten through the engine.
    /// </summary>
    /// <param name="makeDurable">Makes the engine's edits durable and its nodes on disk current (the mount's checkpoint).</param>
    public static BtreeCheckResult Run(BtreeEngine engine, Action makeDurable, IFsckReporter reporter, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(makeDurable);
        return Run(new EngineCheckTarget(engine, makeDurable), reporter, ct);
    }

    internal static BtreeCheckResult Run(IBtreeCheckTarget target, IFsckReporter reporter, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(reporter);
        var counters = new BtreeCheckCounters();
        var reader = new CheckNodeReader(target.Device, target.Geometry);
        var rewrites = new List<(BtreeId Btree, int Level, Bpos Pos)>();

        foreach (var root in target.Roots())
        {
            ct.ThrowIfCancellationRequested();
            // The root covers [min, max]; a header saying otherwise is check_topology's finding.
            var rootPtr = root.Ptr.With(minKey: Bpos.Min, flags: root.Ptr.Flags | BtreePtrFlags.RangeUpdated);
            CheckNode(root.Btree, root.Level, Bpos.Max, rootPtr);
        }

        foreach (var (btree, level, pos) in rewrites)
        {
            ct.ThrowIfCancellationRequested();
            target.RewriteNode(btree, level, pos);
        }
        if (rewrites.Count > 0)
            target.Sync();
        return counters.ToResult();

        void CheckNode(BtreeId btree, int level, Bpos max, BtreePtrValue ptr)
        {
            ct.ThrowIfCancellationRequested();
            var read = reader.Read(btree, level, max, ptr);
            counters.NodesVisited++;
            if (!read.Ok)
                return;
            if (read.IgnoredBsetsBeyondWritten > 0)
                reporter.Count(IgnoredBsetsCounter, read.IgnoredBsetsBeyondWritten);

            var where = CheckNodeReader.Where(btree, level, ptr, ptr.MinKey, max);
            var rewrite = false;
            foreach (var finding in read.Findings)
            {
                counters.Findings++;
                if (!reporter.Report(finding.Id, where, $"{finding.Detail} (record at sector {finding.SectorOffset})"))
                    continue;
                counters.Repairs++;
                if (finding.Class is NodeErrorClass.Fixable or NodeErrorClass.WantRetry)
                    rewrite = true;
            }
            if (rewrite)
                rewrites.Add((btree, level, max));

            if (level == 0)
                return;
            // Keys of this node stay alive while its children are walked: one run per level.
            var keys = read.Keys;
            for (var i = 0; i < keys.Count; i++)
            {
                ref readonly var e = ref keys[i];
                if (e.Key.Type != KeyType.BtreePtr || !BtreePtrValue.TryRead(keys.ValueOf(i), out var child, out _))
                    continue;
                CheckNode(btree, level - 1, e.Key.Pos, child);
            }
        }
    }
}
