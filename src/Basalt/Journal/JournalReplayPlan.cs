// What recovery replays, decided from the entries the scan found (docs/recovery.md):
//
//  - Only entries after the superblock's checkpoint seq matter; blacklisted seqs never count.
//  - The newest flush entry F is the end of what is known durable: a flush entry is written after
//    a device flush that made every earlier write durable, so every entry before it is trusted,
//    flushed or not. Entries after F were never covered by a flush: they are dropped (a crash may
//    have kept any subset of them) and their seqs blacklisted, so they are never replayed later.
//  - The window starts at F's last_seq (the oldest entry some unwritten node still needed), or
//    just after the checkpoint. Every seq in [start, F] must be present: at the first missing or
//    damaged one the window ends (the recovered state stays a prefix of the commit history), and
//    the lost seqs are reported.
//  - The roots are those of the newest entry in the window (every entry carries every btree's
//    root), else the superblock's.
//  - The keys of the window's entries are sorted by (btree, level, position) and deduplicated,
//    the newest commit winning, into the keys to replay; journal-only deltas (accounting) add up
//    instead: every delta after the newest other key at their position is kept.
using Basalt.Btree;
using Basalt.Format;

namespace Basalt.Journal;

public sealed class JournalReplayPlan
{
    /// <summary>Entries replayed, oldest first.</summary>
    public required IReadOnlyList<JournalEntry> Window { get; init; }

    /// <summary>Seq range replayed, or null when nothing is.</summary>
    public SeqRange? Range { get; init; }

    /// <summary>Roots from the newest entry in the window; null: use the superblock's.</summary>
    public IReadOnlyList<BtreeRoot>? Roots { get; init; }

    /// <summary>The keys to replay, one per (btree, level, position), with the seq of the commit that wrote them.</summary>
    public required IReadOnlyList<ReplayKey> Keys { get; init; }

    /// <summary>Seqs to add to the blacklist: written after the window, never to be replayed.</summary>
    public SeqRange? NewBlacklist { get; init; }

    /// <summary>Seqs that a flush had made durable but that cannot be replayed (missing or damaged entries).</summary>
    public SeqRange? LostRange { get; init; }

    /// <summary>Unflushed entries after the newest flush entry: dropped, the normal trace of a crash.</summary>
    public int DroppedUnflushed { get; init; }

    /// <summary>Problems the plan found (on top of the scan's damage).</summary>
    public required IReadOnlyList<JournalDamage> Findings { get; init; }

    /// <summary>The seq the journal continues at: after everything ever seen.</summary>
    public required ulong NextSeq { get; init; }

    /// <summary>Every blacklisted seq range, the superblock's and the entries' records merged.</summary>
    public required IReadOnlyList<SeqRange> Blacklist { get; init; }

    public int KeyCount => Keys.Count;

    /// <summary>
    /// Plans recovery from <paramref name="scan"/> for a filesystem whose superblock records
    /// <paramref name="checkpointSeq"/> and <paramref name="blacklist"/>.
    /// </summary>
    public static JournalReplayPlan Build(JournalScanResult scan, ulong checkpointSeq, IReadOnlyList<SeqRange> blacklist)
    {
        ArgumentNullException.ThrowIfNull(scan);
        ArgumentNullException.ThrowIfNull(blacklist);
        var findings = new List<JournalDamage>();
        var ranges = new List<SeqRange>(blacklist);
        foreach (var e in scan.Entries.Values)
        {
            foreach (var r in e.Records)
            {
                if (r.Type == JournalRecordType.Blacklist)
                    ranges.Add(r.Blacklist());
            }
        }
        var merged = Merge(ranges);
        bool Blacklisted(ulong seq) => merged.Any(r => r.Contains(seq));

        var candidates = scan.Entries.Values.Where(e => e.Seq > checkpointSeq && !Blacklisted(e.Seq)).ToDictionary(e => e.Seq);
        foreach (var e in scan.Entries.Values.Where(e => e.Seq > checkpointSeq && e.IsFlush && Blacklisted(e.Seq)))
            findings.Add(new JournalDamage(FsckErrorId.JournalSeqBlacklistedFlush, e.Seq, e.Location, "a flush entry with a blacklisted seq is ignored"));

        var newestSeen = Math.Max(scan.NewestSeqSeen, checkpointSeq);
        var flush = candidates.Values.Where(e => e.IsFlush).OrderByDescending(e => e.Seq).FirstOrDefault();
        if (flush is null)
        {
            return new JournalReplayPlan
            {
                Window = [],
                Keys = [],
                Findings = findings,
                DroppedUnflushed = candidates.Count,
                NewBlacklist = newestSeen > checkpointSeq && candidates.Count > 0 ? new SeqRange(checkpointSeq + 1, newestSeen) : null,
                NextSeq = newestSeen + 1,
                Blacklist = merged,
            };
        }

        var start = Math.Max(flush.LastSeq, checkpointSeq + 1);
        var window = new List<JournalEntry>();
        var end = flush.Seq;
        SeqRange? lost = null;
        for (var s = start; s <= flush.Seq; s++)
        {
            if (candidates.TryGetValue(s, out var e))
            {
                window.Add(e);
                continue;
            }
            if (Blacklisted(s))
                continue;
            end = s - 1;
            lost = new SeqRange(s, flush.Seq);
            var damaged = scan.Damage.FirstOrDefault(d => d.Seq == s);
            findings.Add(new JournalDamage(FsckErrorId.JournalEntriesMissing, s, damaged?.Location,
                $"journal {lost.Value.ToText()} cannot be replayed ({(damaged is null ? "entry missing" : "entry damaged: " + damaged.Detail)}); " +
                $"replaying {(end >= start ? new SeqRange(start, end).ToText() : "nothing")}"));
            break;
        }

        IReadOnlyList<BtreeRoot>? roots = null;
        for (var i = window.Count - 1; i >= 0 && roots is null; i--)
        {
            if (window[i].Records.Any(r => r.Type == JournalRecordType.BtreeRoot))
            {
                roots = window[i].Records.Where(r => r.Type == JournalRecordType.BtreeRoot)
                    .Select(r => r.Root()).OfType<BtreeRoot>().OrderBy(r => r.Btree).ToList();
            }
        }
        return new JournalReplayPlan
        {
            Window = window,
            Range = window.Count > 0 ? new SeqRange(window[0].Seq, window[^1].Seq) : null,
            Roots = roots,
            Keys = SortAndDedup(window),
            NewBlacklist = newestSeen > end ? new SeqRange(end + 1, newestSeen) : null,
            LostRange = lost,
            DroppedUnflushed = candidates.Keys.Count(s => s > end),
            Findings = findings,
            NextSeq = newestSeen + 1,
            Blacklist = merged,
        };
    }

    /// <summary>
    /// Every key of the window, newest commit per (btree, level, position), sorted by (btree,
    /// level, position); a levels_voided record drops every key of its btree at its level or above
    /// journaled before it. The keys are numbered in commit order and sorted once; of each run of
    /// equal positions the highest number (the newest commit) is kept.
    /// </summary>
    private static List<ReplayKey> SortAndDedup(List<JournalEntry> window)
    {
        var voids = new List<(BtreeId Btree, byte Level, int Before)>();
        var keys = new NumberedKey[window.Sum(e => e.KeyCount)];
        var n = 0;
        foreach (var entry in window)
        {
            foreach (var record in entry.Records)
            {
                if (record.Type == JournalRecordType.LevelsVoided)
                {
                    voids.Add((record.Btree, record.Level, n));
                    continue;
                }
                if (record.Type != JournalRecordType.BtreeKeys)
                    continue;
                foreach (var key in record.Keys())
                {
                    keys[n] = new NumberedKey(new ReplayKey(key, entry.Seq), n);
                    n++;
                }
            }
        }
        Array.Sort(keys, 0, n, NumberedKeyOrder.Instance);
        var result = new List<ReplayKey>(n);
        for (var runStart = 0; runStart < n;)
        {
            var runEnd = runStart + 1;
            while (runEnd < n && SamePosition(keys[runStart].Key.Update, keys[runEnd].Key.Update))
                runEnd++;
            // The last of a run of equal positions is the newest commit's. Journal-only deltas are
            // not replaced by newer ones but add up: the newest key that is not a delta is kept
            // with every delta after it, in commit order (replay folds each delta the total does
            // not hold yet).
            var keep = runEnd - 1;
            while (keep > runStart && IsDelta(keys[keep].Key.Update))
                keep--;
            // A delta's ordinal: its place among the kept deltas of its entry at this position, as
            // the commit that folded it counted (after the kept key that is not a delta, which
            // leaves a total that no delta of its entry was folded into).
            uint ordinal = 0;
            for (var i = keep; i < runEnd; i++)
            {
                var key = keys[i].Key;
                if (IsDelta(key.Update))
                {
                    ordinal = i > keep && IsDelta(keys[i - 1].Key.Update) && keys[i - 1].Key.Seq == key.Seq ? ordinal + 1 : 1;
                    key = key with { Ordinal = ordinal };
                }
                if (!Voided(keys[i], voids))
                    result.Add(key);
            }
            runStart = runEnd;
        }
        return result;
    }

    private static bool IsDelta(in BtreeUpdate u) => u.Level == 0 && KeyTypeTable.AccumulatorOf(u.Key.Type) is not null;

    private static bool SamePosition(in BtreeUpdate a, in BtreeUpdate b) =>
        a.Btree == b.Btree && a.Level == b.Level && a.Key.Pos == b.Key.Pos;

    private static bool Voided(in NumberedKey key, List<(BtreeId Btree, byte Level, int Before)> voids)
    {
        foreach (var (btree, level, before) in voids)
        {
            if (key.Key.Update.Btree == btree && key.Key.Update.Level >= level && key.Number < before)
                return true;
        }
        return false;
    }

    private readonly record struct NumberedKey(ReplayKey Key, int Number);

    /// <summary>(btree, level, position), then commit order.</summary>
    private sealed class NumberedKeyOrder : IComparer<NumberedKey>
    {
        public static readonly NumberedKeyOrder Instance = new();

        public int Compare(NumberedKey x, NumberedKey y)
        {
            var a = x.Key.Update;
            var b = y.Key.Update;
            var c = ((int)a.Btree).CompareTo((int)b.Btree);
            if (c != 0)
                return c;
            c = a.Level.CompareTo(b.Level);
            if (c != 0)
                return c;
            c = a.Key.Pos.CompareTo(b.Key.Pos);
            return c != 0 ? c : x.Number.CompareTo(y.Number);
        }
    }

    /// <summary>Sorts and coalesces seq ranges (overlapping or adjacent ranges become one).</summary>
    public static List<SeqRange> Merge(IEnumerable<SeqRange> ranges)
    {
        var list = ranges.OrderBy(r => r.First).ToList();
        var merged = new List<SeqRange>();
        foreach (var r in list)
        {
            if (merged.Count > 0 && r.First <= merged[^1].Last + 1)
                merged[^1] = new SeqRange(merged[^1].First, Math.Max(merged[^1].Last, r.Last));
            else
                merged.Add(r);
        }
        return merged;
    }
}
