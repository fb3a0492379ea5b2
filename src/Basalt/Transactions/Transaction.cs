// A transaction: the body of Transact(t => …) reads and updates the btrees through it. Updates
// go into an update map (one final update per position, so a position set twice commits once);
// reads see the map first (read-your-writes), then the btrees. Nothing outside the map changes
// until commit, so a body can be run again from the start at any time: a read that needs a node
// that is not cached throws a restart, the runner drops every lock, reads the node and runs the
// body again. A body must have no side effects outside its transaction.
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Transactions;

public sealed class Transaction : ITriggerTransaction
{
    private readonly BtreeEngine _engine;
    private readonly Dictionary<(BtreeId, Bpos), int> _index = [];
    private readonly List<Update> _updates = [];
    private readonly List<BtreeUpdate> _btreeUpdates = [];
    private bool _injectionTried;

    internal Transaction(BtreeEngine engine) => _engine = engine;

    /// <summary>One pending update: the final key (Deleted for a deletion) and value at a position.</summary>
    internal struct Update
    {
        public BtreeId Btree;
        public Bkey Key;
        public byte[] Value;
        public bool Triggered;
    }

    /// <summary>Updates so far (coalesced per position).</summary>
    public int UpdateCount => _updates.Count;

    internal List<Update> Updates => _updates;

    internal void Reset()
    {
        _index.Clear();
        _updates.Clear();
        _injectionTried = false;
    }

    /// <summary>Tests' random restarts: at most one chance per attempt, at its first read.</summary>
    private void MaybeInjectRestart()
    {
        if (_injectionTried)
            return;
        _injectionTried = true;
        _engine.MaybeInjectRestart();
    }

    /// <summary>Reads the value at <paramref name="pos"/>: this transaction's own update first, then the btree.</summary>
    public bool TryGet(BtreeId btree, Bpos pos, out byte[] value) => TryGet(btree, pos, out _, out value);

    /// <summary>Reads the key and value at <paramref name="pos"/>: this transaction's own update first, then the btree.</summary>
    public bool TryGet(BtreeId btree, Bpos pos, out Bkey key, out byte[] value)
    {
        if (_index.TryGetValue((btree, pos), out var i))
        {
            var u = _updates[i];
            if (KeyTypeTable.AccumulatorOf(u.Key.Type) is { } accumulator)
            {
                var exists = ReadCommitted(btree, pos, out _, out var committed);
                (key, value) = FoldPending(accumulator, pos, exists ? committed : [], u.Value);
                return true;
            }
            key = u.Key;
            value = u.Value;
            return u.Key.Type != KeyType.Deleted;
        }
        return ReadCommitted(btree, pos, out key, out value);
    }

    /// <summary>A committed total (empty: none) with this transaction's pending delta folded in, as reads see it.</summary>
    private static (Bkey Key, byte[] Value) FoldPending(IKeyAccumulator accumulator, Bpos pos, ReadOnlySpan<byte> total, byte[] delta)
    {
        var value = new byte[accumulator.ValueBytes];
        accumulator.Fold(total, delta, accumulator.FoldedVersion(total), value);
        return (new Bkey(pos, accumulator.TotalType), value);
    }

    /// <summary>Reads the btree as committed, ignoring this transaction's updates.</summary>
    internal bool ReadCommitted(BtreeId btree, Bpos pos, out Bkey key, out byte[] value)
    {
        MaybeInjectRestart();
        var r = _engine.TryReadLeaf(btree, pos, out var found, out key, out var miss);
        if (r == FindResult.Miss)
            throw new RestartException(Restart.ForMiss(miss));
        if (found is null)
            key = new Bkey(pos, KeyType.Deleted);
        value = found ?? [];
        return found is not null;
    }

    /// <summary>Inserts or overwrites the key at <paramref name="pos"/>.</summary>
    public void Set(BtreeId btree, Bpos pos, ReadOnlySpan<byte> value, KeyType type = KeyType.Cookie, uint size = 0) =>
        Set(btree, new Bkey(pos, type, size), value);

    public void Set(BtreeId btree, in Bkey key, ReadOnlySpan<byte> value)
    {
        Validate(btree, key, value);
        Put(btree, key, value.ToArray());
    }

    /// <summary>
    /// <see cref="Set(BtreeId, in Bkey, ReadOnlySpan{byte})"/> for a value array the caller made
    /// for this update and never touches again: it is kept, not copied.
    /// </summary>
    internal void SetOwned(BtreeId btree, in Bkey key, byte[] value)
    {
        Validate(btree, key, value);
        Put(btree, key, value);
    }

    private void Validate(BtreeId btree, in Bkey key, ReadOnlySpan<byte> value)
    {
        if (key.Type == KeyType.Deleted)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {btree.ToText()}: a deleted key at {key.Pos.ToText()} (use Delete)");
        if (KeyTypeTable.Get(key.Type) is { Writable: false })
            BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {btree.ToText()}: key type {key.Type.ToText()} is not written by this build");
        _engine[btree].ValidateLeafKey(key, value);
    }

    /// <summary>
    /// Sets a key whose triggers must not run: a repair that writes the recomputed value of derived
    /// state itself, or a test planting what damage would leave. The key is validated as any other.
    /// </summary>
    internal void SetWithoutTrigger(BtreeId btree, in Bkey key, ReadOnlySpan<byte> value)
    {
        Set(btree, key, value);
        var i = _index[(btree, key.Pos)];
        var u = _updates[i];
        u.Triggered = true;
        _updates[i] = u;
    }

    /// <summary>Deletes the key at <paramref name="pos"/> (a no-op when there is none).</summary>
    public void Delete(BtreeId btree, Bpos pos) => Put(btree, new Bkey(pos, KeyType.Deleted), []);

    /// <summary>Deletes a key whose triggers must not run (a test planting what a lost node leaves).</summary>
    internal void DeleteWithoutTrigger(BtreeId btree, Bpos pos)
    {
        Delete(btree, pos);
        var i = _index[(btree, pos)];
        var u = _updates[i];
        u.Triggered = true;
        _updates[i] = u;
    }

    /// <inheritdoc/>
    public void AddDelta(BtreeId btree, in Bkey key, ReadOnlySpan<byte> delta)
    {
        var accumulator = KeyTypeTable.AccumulatorOf(key.Type);
        if (accumulator is null || !BtreeIds.IsKnown((byte)btree) || !BtreeIds.Describe(btree).AllowsDelta(key.Type))
            BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {btree.ToText()}: {key.Type.ToText()} is not a delta type of this btree");
        if (!KeyValidation.ValidateJournalKey(btree, 0, key, delta, _engine.Geometry.NodeSize, out _, out var detail))
            BasaltException.Throw(ErrorCode.InvalidArgument, $"btree {btree.ToText()}: {detail}");
        var at = (btree, key.Pos);
        if (_index.TryGetValue(at, out var i))
        {
            var u = _updates[i];
            if (u.Key.Type != key.Type)
                throw new InvalidOperationException($"btree {btree.ToText()}: a delta at {key.Pos.ToText()} after another update there");
            var combined = new byte[accumulator.ValueBytes];
            accumulator.Combine(u.Value, delta, combined);
            u.Value = combined;
            _updates[i] = u;
            return;
        }
        Put(btree, key, delta.ToArray());
    }

    /// <summary>
    /// The keys in [<paramref name="start"/>, <paramref name="end"/>] as this transaction sees them
    /// (its own updates merged over the btree), ascending, at most <paramref name="limit"/>.
    /// </summary>
    public List<(Bkey Key, byte[] Value)> Range(BtreeId btree, Bpos start, Bpos end, int limit = int.MaxValue)
    {
        var result = new List<(Bkey, byte[])>();
        if (start > end || limit <= 0)
            return result;
        var own = OwnUpdates(btree, start, end);
        // Committed keys, read a leaf at a time; a miss restarts the whole body. Each own update
        // hides at most one committed key, so limit + own.Count committed keys always give `limit`
        // results. When the read stops at that count, the keys after the last one read are
        // unknown: own updates beyond it must not be merged (they would skip committed keys).
        var fetch = (int)Math.Min(int.MaxValue, (long)limit + own.Count);
        var committed = new List<(Bkey Key, byte[] Value)>();
        var next = start;
        while (committed.Count < fetch)
        {
            MaybeInjectRestart();
            var r = _engine.TryReadLeafRange(btree, next, end, fetch - committed.Count, committed, out var leafMax, out var miss);
            if (r == FindResult.Miss)
                throw new RestartException(Restart.ForMiss(miss));
            if (r != FindResult.Found || leafMax >= end || leafMax.IsMax)
                break;
            next = leafMax.Successor();
        }
        if (committed.Count >= fetch && own.Count > 0)
        {
            var known = committed[^1].Key.Pos;
            own.RemoveAll(u => u.Key.Pos > known);
        }
        int a = 0, b = 0;
        while (result.Count < limit && (a < committed.Count || b < own.Count))
        {
            var c = a == committed.Count ? 1 : b == own.Count ? -1 : committed[a].Key.Pos.CompareTo(own[b].Key.Pos);
            if (c < 0)
            {
                result.Add(committed[a++]);
                continue;
            }
            var update = own[b++];
            if (KeyTypeTable.AccumulatorOf(update.Key.Type) is { } accumulator)
            {
                result.Add(FoldPending(accumulator, update.Key.Pos, c == 0 ? committed[a].Value : [], update.Value));
                if (c == 0)
                    a++;
                continue;
            }
            if (c == 0)
                a++;
            if (update.Key.Type != KeyType.Deleted)
                result.Add((update.Key, update.Value));
        }
        return result;
    }

    /// <summary>This transaction's updates in [start, end] of <paramref name="btree"/>, by position (a shared empty list when none).</summary>
    private List<Update> OwnUpdates(BtreeId btree, Bpos start, Bpos end)
    {
        List<Update>? own = null;
        foreach (var u in _updates)
        {
            if (u.Btree == btree && u.Key.Pos >= start && u.Key.Pos <= end)
                (own ??= []).Add(u);
        }
        if (own is null)
            return s_noUpdates;
        if (own.Count > 1)
            own.Sort(static (x, y) => x.Key.Pos.CompareTo(y.Key.Pos));
        return own;
    }

    private static readonly List<Update> s_noUpdates = [];

    void ITriggerTransaction.Set(BtreeId btree, in Bkey key, ReadOnlySpan<byte> value) => Set(btree, key, value);

    /// <summary>A per-mount service registered with the engine (the allocator, say), or null.</summary>
    public T? GetService<T>() where T : class => _engine.GetService<T>();

    private void Put(BtreeId btree, Bkey key, byte[] value)
    {
        var at = (btree, key.Pos);
        if (_index.TryGetValue(at, out var i))
        {
            var u = _updates[i];
            if (u.Triggered && HasTrigger(u.Key.Type, key.Type))
                throw new InvalidOperationException($"btree {btree.ToText()}: {key.ToText()} updated again after its trigger ran");
            u.Key = key;
            u.Value = value;
            _updates[i] = u;
            return;
        }
        _index[at] = _updates.Count;
        _updates.Add(new Update { Btree = btree, Key = key, Value = value });
    }

    private static bool HasTrigger(KeyType a, KeyType b) =>
        KeyTypeTable.Get(a)?.Trigger is not null || KeyTypeTable.Get(b)?.Trigger is not null;

    /// <summary>
    /// Runs the triggers of every update not yet triggered, on its coalesced (old, new) pair, until
    /// no trigger adds anything new. Old values are read from the btree (a miss restarts). Alloc
    /// keys go last: other keys' triggers (and bodies that move data between owners) charge
    /// buckets through them, so their own trigger runs once every charge of the transaction is in.
    /// </summary>
    internal void RunTriggers()
    {
        var ran = true;
        while (ran)
        {
            ran = RunPending(allocKeys: false);
            ran |= RunPending(allocKeys: true);
        }
    }

    private bool RunPending(bool allocKeys)
    {
        var ran = false;
        for (var i = 0; i < _updates.Count; i++)
        {
            var u = _updates[i];
            if (u.Triggered || (u.Btree == BtreeId.Alloc) != allocKeys)
                continue;
            ran = true;
            if (!KeyTypeTable.AnyTrigger(u.Btree))
            {
                // No key this btree may hold has a trigger: the committed key would only be read to find none.
                u.Triggered = true;
                _updates[i] = u;
                continue;
            }
            ReadCommitted(u.Btree, u.Key.Pos, out var oldKey, out var oldValue);
            var oldTrigger = oldKey.Type == KeyType.Deleted ? null : KeyTypeTable.Get(oldKey.Type)?.Trigger;
            var newTrigger = u.Key.Type == KeyType.Deleted ? null : KeyTypeTable.Get(u.Key.Type)?.Trigger;
            u.Triggered = true;
            _updates[i] = u;
            if (oldTrigger is null && newTrigger is null)
                continue;
            var before = new KeyVersion(oldKey, oldValue);
            var after = new KeyVersion(u.Key, u.Value);
            newTrigger?.Invoke(this, u.Btree, before, after);
            if (oldTrigger is not null && oldTrigger != newTrigger)
                oldTrigger(this, u.Btree, before, after);
        }
        return ran;
    }

    /// <summary>
    /// The updates as the journal and the engine take them, sorted by btree and position. The list
    /// belongs to this transaction and is refilled by the next call: the journal and the engine copy
    /// what they keep, and a transaction is reused only after its Transact returned.
    /// </summary>
    internal List<BtreeUpdate> ToBtreeUpdates()
    {
        var list = _btreeUpdates;
        list.Clear();
        foreach (var u in _updates)
            list.Add(new BtreeUpdate(u.Btree, 0, u.Key, u.Value));
        list.Sort(static (x, y) => x.Btree != y.Btree ? ((int)x.Btree).CompareTo((int)y.Btree) : x.Key.Pos.CompareTo(y.Key.Pos));
        return list;
    }
}
