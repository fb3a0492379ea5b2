// The seam between the btree engine and the journal. The engine is a lower layer than the
// journal (DESIGN §1): it declares here what it needs, and the journal implements it and is
// handed to the engine at mount. Everything the engine journals itself is an interior update:
// pointer keys at levels >= 1 and root changes, produced by structure changes (split, compact,
// merge, rewrite, new or collapsed root) and by write-back (a node's new sectors_written).
// Leaf updates are journaled by the transaction layer, which then applies them here.
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>One key update as the journal carries it: btree, level, key and value (empty for a deletion).</summary>
public readonly record struct BtreeUpdate(BtreeId Btree, byte Level, Bkey Key, ReadOnlyMemory<byte> Value)
{
    public bool IsDeletion => Key.Type == KeyType.Deleted;

    public string ToText() =>
        $"{Btree.ToText()} level {Level} {KeyTypeTable.ToText(Key, Value.Span)}";
}

/// <summary>The interior updates of one commit: pointer keys (levels >= 1) and root changes.</summary>
public sealed class InteriorCommit
{
    public List<BtreeUpdate> Keys { get; } = [];

    /// <summary>Btrees whose root changed, with the new root (null: the btree is now empty).</summary>
    public List<(BtreeId Btree, BtreeRoot? Root)> Roots { get; } = [];

    /// <summary>
    /// Root changes that removed levels (a collapse, or a reset from level 0): every key of that
    /// btree at that level or above journaled before this commit is void for replay.
    /// </summary>
    public List<(BtreeId Btree, byte Level)> VoidLevels { get; } = [];

    public bool IsEmpty => Keys.Count == 0 && Roots.Count == 0 && VoidLevels.Count == 0;

    /// <summary>Encoded bytes of the keys (what the journal entry's key records take).</summary>
    public int KeyBytes
    {
        get
        {
            var n = 0;
            foreach (var k in Keys)
                n += BkeyFormat.EncodedSize(k.Value.Length);
            return n;
        }
    }
}

/// <summary>What the btree engine needs from the journal.</summary>
public interface IBtreeJournal
{
    /// <summary>Every entry up to this seq is durable (a flush entry at or after it has been written and flushed).</summary>
    ulong DurableSeq { get; }

    /// <summary>The newest seq handed to a commit.</summary>
    ulong CommittedSeq { get; }

    /// <summary>Waits, with no engine lock held, until every entry up to <paramref name="seq"/> is durable.</summary>
    void WaitDurable(ulong seq);

    /// <summary>Keeps entry <paramref name="seq"/> (and everything after it) from being reclaimed.</summary>
    void Pin(ulong seq);

    void Unpin(ulong seq);

    /// <summary>
    /// Appends <paramref name="commit"/> as one commit and returns its seq. Called with the engine's
    /// write lock held: never waits for I/O. Interior commits may use the journal's reserve; false
    /// when even that has no room (the caller then checkpoints instead).
    /// </summary>
    bool TryCommitInterior(InteriorCommit commit, out ulong seq);

    /// <summary>True when <paramref name="seq"/> was written but never flushed before a crash (its bsets are ignored).</summary>
    bool IsBlacklisted(ulong seq);
}

/// <summary>
/// Makes a checkpoint durable: the superblock write that records every btree root and the journal
/// seq up to which the btrees on disk hold every commit (the mount glue implements it).
/// </summary>
public interface ICheckpointCommitter
{
    void CommitCheckpoint(IReadOnlyList<BtreeRoot> roots, ulong journalSeq);
}
