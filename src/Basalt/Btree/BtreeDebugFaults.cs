// Debug-only ordering bugs the crash-state suite switches on to prove it can fail (DESIGN §5:
// "the suite must fail when a debug-only ordering bug is switched on"). Each switch is honoured by
// one guarded line in the engine and names the write-ordering rule it breaks (docs/format.md);
// none is reachable from the public API, and a default engine has them all off. The journal's
// own rules (f, g) have their switches in JournalDebugFaults. Nothing here is a supported mode.
namespace Basalt.Btree;

internal sealed record BtreeDebugFaults
{
    public static BtreeDebugFaults None { get; } = new();

    /// <summary>
    /// Rule (a): a write-back round writes its captured bsets without waiting for the journal
    /// entries of their keys to be durable. Rule (a) is an assertion, not a crash-search finding:
    /// the write must be refused before it reaches the device.
    /// </summary>
    public bool WriteBeforeJournalDurable { get; init; }

    /// <summary>
    /// Rule (b): a pointer to a new node is journaled before the node's first write completed (the
    /// readiness check of interior updates ignores new nodes).
    /// </summary>
    public bool CommitPointerBeforeNodeDurable { get; init; }

    /// <summary>
    /// Rule (c): a written node releases its journal pin as soon as its write completes, before its
    /// parent's pointer update (its new sectors_written) is journaled.
    /// </summary>
    public bool ReleasePinBeforeParentUpdate { get; init; }

    /// <summary>
    /// Rule (d): a slot freed by a structure change is reused at once, before the journal entry
    /// that stopped pointing at it is durable: the new node's write may overwrite a node the
    /// recoverable tree still points at.
    /// </summary>
    public bool ReuseFreedSlotEarly { get; init; }

    /// <summary>
    /// Rule (e): a checkpoint (clean unmount) commits the superblock with its roots (and the clean
    /// flag) right after writing its nodes, without the device flush that makes them durable first.
    /// </summary>
    public bool CheckpointBeforeNodesFlushed { get; init; }

    /// <summary>
    /// Rule (h): a raise of a node's sectors_written is journaled before the appended bset's write
    /// completed (the readiness check ignores appends).
    /// </summary>
    public bool CommitRaiseBeforeWrite { get; init; }
}
