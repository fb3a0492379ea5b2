// Reads before replay finishes: a btree as replay will leave it, once its interior keys are
// replayed and before its leaf keys are. The tree then has the replayed structure and the disk's
// leaves; the journal's leaf keys (deduplicated, newest per position) are merged over them at
// read time: a journal key replaces the tree's key at its position, a journal deletion hides it.
// Journal keys are exact key updates (an extent overwrite is journaled as the trimmed and split
// keys it leaves), so merging by position is exactly what replaying them does. Journal-only
// deltas (accounting) are folded into the tree's total the way replay folds them.
//
// Mount uses it to rebuild node space from the alloc and backpointers btrees before the leaves
// are replayed (replay may allocate nodes); tests compare it with the tree after replay.
using Basalt.Btree;
using Basalt.Format;
using Basalt.Journal;

namespace Basalt.Recovery;

public sealed class ReplayOverlay
{
    private readonly BtreeEngine _engine;
    private readonly Dictionary<BtreeId, List<ReplayKey>> _leafKeys = [];

    /// <param name="plan">The replay plan (null: nothing to replay, the tree alone).</param>
    public ReplayOverlay(BtreeEngine engine, JournalReplayPlan? plan)
    {
        ArgumentNullException.ThrowIfNull(engine);
        _engine = engine;
        foreach (var key in plan?.Keys ?? [])
        {
            if (key.Update.Level != 0)
                continue;
            if (!_leafKeys.TryGetValue(key.Update.Btree, out var list))
                _leafKeys[key.Update.Btree] = list = [];
            list.Add(key);
        }
        // By position, then commit order (the deltas kept at one position are applied oldest first).
        foreach (var list in _leafKeys.Values)
            list.Sort(static (a, b) => a.Update.Key.Pos != b.Update.Key.Pos ? a.Update.Key.Pos.CompareTo(b.Update.Key.Pos) : a.Seq.CompareTo(b.Seq));
    }

    /// <summary>The keys of <paramref name="btree"/> in [<paramref name="start"/>, <paramref name="end"/>] as replay will leave them, in order.</summary>
    public IEnumerable<(Bkey Key, byte[] Value)> Range(BtreeId btree, Bpos start, Bpos end)
    {
        var journal = _leafKeys.TryGetValue(btree, out var list) ? list : [];
        var j = LowerBound(journal, start);
        var it = _engine[btree].Iterate(start, end);
        var hasTree = it.MoveNext();
        while (true)
        {
            var hasJournal = j < journal.Count && journal[j].Update.Key.Pos <= end;
            if (!hasTree && !hasJournal)
                yield break;
            var cmp = !hasTree ? 1 : !hasJournal ? -1 : it.Key.Pos.CompareTo(journal[j].Update.Key.Pos);
            if (cmp < 0)
            {
                yield return (it.Key, it.Value.ToArray());
                hasTree = it.MoveNext();
                continue;
            }
            // The journal's keys at this position, applied in commit order over the tree's key.
            var pos = journal[j].Update.Key.Pos;
            Bkey? key = null;
            byte[] value = [];
            if (cmp == 0)
            {
                (key, value) = (it.Key, it.Value.ToArray());
                hasTree = it.MoveNext();
            }
            for (; j < journal.Count && journal[j].Update.Key.Pos == pos; j++)
                (key, value) = Apply(journal[j], key, value);
            if (key is { } k)
                yield return (k, value);
        }
    }

    private static (Bkey? Key, byte[] Value) Apply(ReplayKey replayed, Bkey? key, byte[] value)
    {
        var update = replayed.Update;
        if (KeyTypeTable.AccumulatorOf(update.Key.Type) is not { } accumulator)
            return update.IsDeletion ? (null, []) : (update.Key, update.Value.ToArray());
        var total = key is { } k && k.Type == accumulator.TotalType ? value : [];
        var folded = new byte[accumulator.ValueBytes];
        return accumulator.TryFoldReplayed(total, update.Value.Span, replayed.Version, folded)
            ? (new Bkey(update.Key.Pos, accumulator.TotalType), folded)
            : (key, value);
    }

    private static int LowerBound(List<ReplayKey> keys, Bpos pos)
    {
        int lo = 0, hi = keys.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (keys[mid].Update.Key.Pos < pos)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
}
