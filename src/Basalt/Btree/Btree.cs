// One btree of a mounted filesystem: point updates, lookups and iterators over its keys, plus
// the low-level per-level edits that fsck's topology repair uses. Every operation is
// restartable (Restart.cs): it runs under the engine lock until it needs a node that is not
// cached, drops the lock to read it, installs it and starts over.
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

public sealed class Btree
{
    private readonly BtreeEngine _engine;

    internal Btree(BtreeEngine engine, BtreeId id)
    {
        _engine = engine;
        Id = id;
    }

    public BtreeId Id { get; }

    /// <summary>The cached root node (null until loaded or when the btree is empty).</summary>
    internal BtreeNode? RootNode
    {
        get => _rootNode;
        set
        {
            _rootNode = value;
            _engine.ShapeChanged();
        }
    }

    private BtreeNode? _rootNode;

    /// <summary>The root record from the superblock while its node has not been read yet.</summary>
    internal BtreeRoot? PendingRoot
    {
        get => _pendingRoot;
        set
        {
            _pendingRoot = value;
            _engine.ShapeChanged();
        }
    }

    private BtreeRoot? _pendingRoot;

    /// <summary>
    /// The leaf the last descent to level 0 found, valid while the cache's shape version is
    /// <see cref="LeafHintShape"/>: a lookup inside its range takes it without descending. Written
    /// by readers under the read lock (the leaf first, then the version), so a reader that sees
    /// the current version sees a leaf some descent found at that version.
    /// </summary>
    internal BtreeNode? LeafHint;

    internal int LeafHintShape = -1;

    internal BtreeEngine Engine => _engine;

    /// <summary>The current root (in memory; the committed one is in <see cref="BtreeEngine.Roots"/>), or null when empty.</summary>
    public BtreeRoot? Root => _engine.RootOf(this);

    /// <summary>
    /// Inserts or overwrites the key at <paramref name="pos"/> as one transaction (journaled, not
    /// flushed: durable at the next flush, within the journal's flush delay).
    /// </summary>
    public void Insert(Bpos pos, ReadOnlySpan<byte> value, KeyType type = KeyType.Cookie, uint size = 0)
    {
        if (type == KeyType.Deleted)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {Id.ToText()}: insert of a deleted key at {pos.ToText()} (use Delete)");
        var key = new Bkey(pos, type, size);
        ValidateKey(0, key, value);
        _engine.WritePath.Insert(Id, key, value);
    }

    /// <summary>Deletes the key at <paramref name="pos"/> as one transaction; false if there was none.</summary>
    public bool Delete(Bpos pos) => _engine.WritePath.Delete(Id, pos);

    /// <summary>Deletes every key in [start, end] (inclusive), in transactions of bounded size; returns how many.</summary>
    public long DeleteRange(Bpos start, Bpos end) => _engine.WritePath.DeleteRange(Id, start, end);

    /// <summary>Checks a leaf key as an insert would (value size, type allowed in this btree, value validator).</summary>
    internal void ValidateLeafKey(in Bkey key, ReadOnlySpan<byte> value) => ValidateKey(0, key, value);

    /// <summary>Looks up the value at <paramref name="pos"/>.</summary>
    public bool TryGet(Bpos pos, out byte[] value)
    {
        var found = _engine.Lookup(this, pos, out var result);
        value = result ?? [];
        return found;
    }

    /// <summary>
    /// Allocation-free lookup: copies the value into <paramref name="buffer"/> and sets
    /// <paramref name="length"/> to its length. When the value is longer than the buffer, returns true
    /// with the full length and copies nothing (retry with a larger buffer).
    /// </summary>
    public bool TryGet(Bpos pos, Span<byte> buffer, out int length) => _engine.LookupInto(this, pos, buffer, out length);

    /// <summary>
    /// Allocation-free point lookup that also gives the key (its type, for btrees where a position
    /// may hold keys of several types): as <see cref="TryGet(Bpos, Span{byte}, out int)"/>.
    /// </summary>
    public bool TryGet(Bpos pos, Span<byte> buffer, out Bkey key, out int length) => _engine.LookupKeyInto(this, pos, buffer, out key, out length);

    /// <summary>
    /// Allocation-free search: the first key in [<paramref name="pos"/>, <paramref name="end"/>]
    /// (the next leaf's keys when none in the leaf covering pos is at or after it), its value
    /// copied into <paramref name="buffer"/>. False when the range holds no key. As with
    /// <see cref="TryGet(Bpos, Span{byte}, out int)"/>, a value longer than the buffer is not
    /// copied: true with its full <paramref name="length"/> (retry with a larger buffer). One
    /// engine operation: the key and value are one consistent version.
    /// </summary>
    public bool TryGetAtOrAfter(Bpos pos, Bpos end, Span<byte> buffer, out Bkey key, out int length) =>
        _engine.LookupAtOrAfter(this, pos, end, buffer, out key, out length);

    /// <summary>
    /// Iterates keys in [start, end] in order (descending when <paramref name="reverse"/>) at
    /// <paramref name="level"/>: 0 for the btree's keys, higher for the pointer keys of interior nodes.
    /// </summary>
    public BtreeIterator Iterate(Bpos start, Bpos end, bool reverse = false, byte level = 0) =>
        new(_engine, this, start, end, reverse, level);

    /// <summary>fsck: inserts a pointer key into the node at <paramref name="level"/> (1 or more) covering key.Pos.</summary>
    public void InsertAtLevel(byte level, in Bkey key, ReadOnlySpan<byte> value)
    {
        if (level == 0)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {Id.ToText()}: leaf keys go through transactions (use Insert)");
        if (key.Type == KeyType.Deleted)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {Id.ToText()}: insert of a deleted key (use DeleteAtLevel)");
        ValidateKey(level, key, value);
        _engine.InsertAt(this, level, key, value);
    }

    /// <summary>fsck: deletes the pointer key at <paramref name="pos"/> from the node at <paramref name="level"/> (1 or more) covering it (no merging).</summary>
    public bool DeleteAtLevel(byte level, Bpos pos)
    {
        if (level == 0)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {Id.ToText()}: leaf keys go through transactions (use Delete)");
        return _engine.DeleteAt(this, level, pos, merge: false);
    }

    /// <summary>Copy-on-write rewrite of the node at <paramref name="level"/> covering <paramref name="pos"/> (generation + 1).</summary>
    public void RewriteNode(byte level, Bpos pos) => _engine.RewriteNode(this, level, pos);

    /// <summary>Replaces the btree by a new empty leaf root. Slots of nodes that were not cached are recovered at the next mount.</summary>
    public void ResetToEmpty() => _engine.ResetToEmpty(this);

    /// <summary>
    /// Replaces the btree's root by a new root at <paramref name="level"/> over existing nodes
    /// found on disk (topology repair after an unreadable root); see <see cref="BtreeEngine"/>.
    /// </summary>
    internal void RebuildRoot(byte level, IReadOnlyList<(Bpos Max, BtreePtrValue Ptr)> children) =>
        _engine.RebuildRoot(this, level, children);

    private void ValidateKey(byte level, in Bkey key, ReadOnlySpan<byte> value)
    {
        if (level == 0 && value.Length > _engine.MaxValueBytes)
        {
            BasaltException.Throw(ErrorCode.InvalidArgument,
                $"btree {Id.ToText()}: value of {value.Length} bytes at {key.Pos.ToText()} exceeds the limit of {_engine.MaxValueBytes}");
        }
        if (level >= FormatLimits.MaxBtreeDepth)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {Id.ToText()}: level {level} is beyond the maximum depth");
        if (!KeyValidation.Validate(Id, level, key, value, Bpos.Min, Bpos.Max, _engine.Geometry.NodeSize, out var id, out var detail))
        {
            BasaltException.Throw(ErrorCode.InvalidArgument,
                $"btree {Id.ToText()} level {level}: invalid key {key.ToText()}: {FsckCatalogue.NameOf(id)}: {detail}");
        }
    }

    public override string ToString() => $"btree {Id.ToText()}";
}
