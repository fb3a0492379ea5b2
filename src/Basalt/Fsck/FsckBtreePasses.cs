// The btree passes of the table: check_topology and check_btree_nodes live beside the btree
// (Btree/CheckTopology.cs, Btree/CheckBtreeNodes.cs); here they are bound to the mounted
// filesystem and the run's reporter, and their counters go into the report.
using Basalt.Btree;

namespace Basalt.Fsck;

internal static class FsckBtreePasses
{
    public static void CheckTopology(FsckContext context)
    {
        var result = Basalt.Btree.CheckTopology.Run(context.FileSystem.Btrees, context.Reporter, context.Options.Cancellation);
        Record(context, "check_topology", result);
    }

    public static void CheckBtreeNodes(FsckContext context)
    {
        var result = Basalt.Btree.CheckBtreeNodes.Run(context.FileSystem.Btrees, context.Reporter, context.Options.Cancellation);
        Record(context, "check_btree_nodes", result);
    }

    private static void Record(FsckContext context, string pass, BtreeCheckResult result)
    {
        context.Reporter.Count($"{pass}: nodes visited", result.NodesVisited);
        if (result.NodesDropped > 0)
            context.Reporter.Count($"{pass}: nodes dropped", result.NodesDropped);
        if (result.KeysDropped > 0)
            context.Reporter.Count($"{pass}: keys dropped", result.KeysDropped);
    }
}
