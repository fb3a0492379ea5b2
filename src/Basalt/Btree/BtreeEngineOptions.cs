// Options and collaborators of a BtreeEngine: the cache budget, the root committer (the mount
// glue's superblock write) and the hooks tests and fsck attach.
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>Makes a set of btree roots durable (the superblock write, including its flush).</summary>
public interface IRootCommitter
{
    void CommitRoots(IReadOnlyList<BtreeRoot> roots);
}

/// <summary>Called for every node read from disk (fsck collects findings through it).</summary>
public delegate void NodeReadObserver(BtreeId btree, byte level, BtreePtrValue ptr, NodeReadResult result);

public sealed record BtreeEngineOptions
{
    /// <summary>Bytes of cached nodes (counted as node size per node) kept before clean nodes are evicted.</summary>
    public long CacheBudgetBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>
    /// Hand out free slots holding nodes of this filesystem only after every other free slot, as
    /// after a mount that met an unreadable node: fsck sets it when check_superblock dropped a
    /// btree root, whose nodes the node scan rebuilds the btree from.
    /// </summary>
    public bool KeepSlotsHoldingNodes { get; init; }

    /// <summary>Told about node slot allocation, writes and frees (the write-once checker in tests).</summary>
    public INodeSpaceObserver? NodeSpaceObserver { get; init; }

    /// <summary>Called after every node read with the reader's result, before the engine acts on it.</summary>
    public NodeReadObserver? NodeReadObserver { get; init; }

    /// <summary>Source of node seqs; a seeded one makes tests reproducible. Default: a fresh random source.</summary>
    public Random? Random { get; init; }

    /// <summary>Largest value in bytes; default and upper bound min(64 KiB, node size / 4).</summary>
    public int? MaxValueBytes { get; init; }

    /// <summary>Tests: restart attempts at random to prove every operation restartable. Off by default.</summary>
    public RestartInjection? RestartInjection { get; init; }

    /// <summary>Debug-only ordering bugs for the crash suite's must-fail checks; all off by default.</summary>
    internal BtreeDebugFaults DebugFaults { get; init; } = BtreeDebugFaults.None;
}

/// <summary>A snapshot of the engine's counters.</summary>
public sealed record BtreeStats
{
    public long Splits { get; init; }
    public long RootSplits { get; init; }
    public long Compactions { get; init; }
    public long Merges { get; init; }
    public long RootCollapses { get; init; }
    public long NodeReads { get; init; }
    public long NodeWrites { get; init; }
    public long NodeBytesWritten { get; init; }
    public long Evictions { get; init; }
    public long CacheBytes { get; init; }
    public long DirtyBytes { get; init; }
    public long PinnedNodes { get; init; }
    public long PendingInteriorUpdates { get; init; }
    public long IgnoredBsetsBeyondWritten { get; init; }
    public long BlacklistedBsets { get; init; }
    public long NodesNeedingRewrite { get; init; }
    public long InteriorCommits { get; init; }
    public long WriteBackRounds { get; init; }
    public long Checkpoints { get; init; }

    public string ToText() =>
        $"splits {Splits} (root {RootSplits}), compactions {Compactions}, merges {Merges}, root collapses {RootCollapses}, " +
        $"node reads {NodeReads}, writes {NodeWrites} ({NodeBytesWritten} bytes), evictions {Evictions}, " +
        $"cache {CacheBytes} bytes ({DirtyBytes} dirty, {PinnedNodes} nodes pinned, {PendingInteriorUpdates} interior updates pending), " +
        $"ignored bsets {IgnoredBsetsBeyondWritten} beyond sectors_written and {BlacklistedBsets} blacklisted, needing rewrite {NodesNeedingRewrite}, " +
        $"interior commits {InteriorCommits}, write-back rounds {WriteBackRounds}, checkpoints {Checkpoints}";

    public override string ToString() => ToText();
}
