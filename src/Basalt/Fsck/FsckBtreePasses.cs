// The btree and journal passes of the table: check_topology and check_btree_nodes live beside
// the btree (Btree/CheckTopology.cs, Btree/CheckBtreeNodes.cs), check_journal beside recovery
// (Recovery/CheckJournal.cs); here they are bound to the mounted filesystem and the run's
// reporter, and their counters go into the report.
using Basalt.Btree;
using Basalt.Recovery;

namespace Basalt.Fsck;

internal static class FsckBtreePasses
{
    /// <summary>
    /// Mounts (which recovers: journal read, validated and replayed), reports what recovery found,
    /// then checkpoints so the nodes on disk are the replayed btrees the raw-reading passes check.
    /// </summary>
    public static void CheckJournal(FsckContext context)
    {
        var fs = context.FileSystem;
        Basalt.Recovery.CheckJournal.Run(fs.Recovery, context.Device.Name, context.Reporter);
        fs.Checkpoint();
    }

    public static void RetryUnreplayed(FsckContext context)
    {
        if (context.MountedFileSystem is { } fs)
            Basalt.Recovery.CheckJournal.RetryUnreplayed(fs.Btrees, context.Device.Name, context.Reporter);
    }

    public static void CheckTopology(FsckContext context)
    {
        var fs = context.FileSystem;
        var invalid = context.InvalidRoots.ToDictionary(r => r.Key, r => (r.Value.Root, $"superblock root invalid: {r.Value.Problem}"));
        var result = Basalt.Btree.CheckTopology.Run(fs.Btrees, fs.Checkpoint, context.Reporter, context.Options.Cancellation, invalid);
        Record(context, "check_topology", result);
    }

    public static void CheckBtreeNodes(FsckContext context)
    {
        var fs = context.FileSystem;
        var state = context.FileState ??= new Basalt.Fsck.Files.FileCheckState();
        // What dirents and inodes leaves lose to a bad bset checksum waits for check_inodes and
        // check_dirents (inode_salvaged, dirent_salvaged), within an eighth of --max-mem.
        var result = Basalt.Btree.CheckBtreeNodes.Run(fs.Btrees, fs.Checkpoint, context.Reporter, context.Options.Cancellation,
            dropped => state.AddDropped(dropped, context.Options.MaxMem / 8));
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
