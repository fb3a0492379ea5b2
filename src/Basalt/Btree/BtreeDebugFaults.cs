// Debug-only ordering bugs the crash-state suite switches on to prove it can fail (DESIGN §5:
// "the suite must fail when a debug-only ordering bug is switched on"). Each switch is honoured by
// one guarded line in the engine; none is reachable from the public API, and a default engine has
// them all off. Nothing here is a supported mode of operation.
using Basalt.Devices;

namespace Basalt.Btree;

internal sealed record BtreeDebugFaults
{
    public static BtreeDebugFaults None { get; } = new();

    /// <summary>
    /// Sync skips the device flush after each level, including the last one before the root
    /// commit: the superblock write may reach the media before the nodes it names.
    /// </summary>
    public bool SkipLevelFlush { get; init; }

    /// <summary>
    /// Sync writes top-down: it commits the roots (the parent of every node a Sync writes) first,
    /// then the levels from the root down to the leaves, so a parent is durable before its children.
    /// </summary>
    public bool WriteParentBeforeChildren { get; init; }

    /// <summary>
    /// A new node takes the most recently freed slot at once (every pending free becomes reusable),
    /// instead of waiting for a Sync that began after the free to complete (DESIGN §4 (d)): the new
    /// node's write may overwrite a node the committed tree still points at.
    /// </summary>
    public bool ReuseFreedSlotEarly { get; init; }

    /// <summary>The allocation of <see cref="ReuseFreedSlotEarly"/>: last freed slot first, else the normal allocator.</summary>
    internal static long AllocateFreedSlotFirst(NodeAllocator allocator, INodeSpaceObserver? observer, int nodeSize)
    {
        var pending = allocator.PendingFree();
        if (pending.Count == 0)
            return allocator.Allocate();
        allocator.ReleaseFreedBefore(long.MaxValue);
        var offset = pending[^1];
        allocator.MarkUsed(offset);
        observer?.NodeAllocated(offset, nodeSize);
        return offset;
    }
}
