// check_journal (fsck pass FsckPassId.CheckJournal): what recovery found in the journal, as
// findings. Recovery itself (MountCore, run by every mount) already did the repair: it replayed
// the longest trustworthy prefix, blacklisted what follows, and reported any seq a flush had made
// durable that it could not replay. This pass reports those decisions; a later fsck checkpoint
// makes them permanent (the damaged entries fall below the checkpoint seq and are never read
// again). A damaged entry is a finding when replay needed it (its seq lies in the range a flush
// had made durable that could not be replayed; the missing-entries finding reports that range),
// a last_seq past its entry's seq when replay used the entry. Torn or damaged entries after the
// newest flush entry, entries older than the replay window or below the checkpoint, and
// unflushed entries dropped are the normal trace of a crash or of an earlier repair: counted,
// not findings.
//
// Keys replay could not apply because a node on their path was unreadable are retried after
// topology repair (RetryUnreplayed); those that still fail are findings, dropped when repaired.
using Basalt.Btree;
using Basalt.Format;
using Basalt.Journal;

namespace Basalt.Recovery;

public static class CheckJournal
{
    /// <summary>Reports what recovery found (<paramref name="report"/>) on <paramref name="device"/>.</summary>
    public static void Run(RecoveryReport report, string device, IFsckReporter reporter)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(reporter);
        if (report.JournalRead)
            reporter.Count("check_journal: journal bytes read", report.JournalBytesRead);
        if (report.Replayed is { } replayed)
        {
            reporter.Count("check_journal: entries replayed", (long)replayed.Count);
            reporter.Count("check_journal: keys replayed", report.KeysReplayed);
        }
        if (report.DroppedUnflushed > 0)
            reporter.Count("check_journal: unflushed entries dropped (crash trace)", report.DroppedUnflushed);
        foreach (var damage in report.Damage)
        {
            if (!IsFinding(report, damage))
            {
                reporter.Count("check_journal: torn or damaged entries outside the replay window");
                continue;
            }
            var where = $"{device}: journal{(damage.Location is { } l ? " " + l.ToText() : "")}";
            reporter.Report(damage.Id, where, (damage.Seq is { } s ? $"seq {s}: " : "") + damage.Detail);
        }
    }

    private static bool IsFinding(RecoveryReport report, JournalDamage damage) => IsFinding(damage, report.Replayed, report.Lost);

    /// <summary>
    /// Whether this pass reports <paramref name="damage"/> as a finding (see the file comment) for
    /// a recovery that replayed <paramref name="replayed"/> and lost <paramref name="lost"/>: a
    /// damaged entry is one only when its seq is in the lost range (it cost the replay); a
    /// last_seq past its own seq only in an entry replay used. Otherwise it is counted.
    /// </summary>
    public static bool IsFinding(JournalDamage damage, SeqRange? replayed, SeqRange? lost)
    {
        ArgumentNullException.ThrowIfNull(damage);
        return damage.Id switch
        {
            FsckErrorId.JournalEntriesMissing or FsckErrorId.JournalSeqBlacklistedFlush or FsckErrorId.JournalCleanMismatch => true,
            FsckErrorId.JournalEntryBadChecksum or FsckErrorId.JournalEntryBadHeader or FsckErrorId.JournalEntryBadRecord =>
                damage.Seq is { } seq && lost is { } l && l.Contains(seq),
            FsckErrorId.JournalLastSeqNewerThanSeq => damage.Seq is { } seq && replayed is { } r && r.Contains(seq),
            _ => false,
        };
    }

    /// <summary>
    /// After topology repair: replays the keys recovery set aside once more; each that still fails is
    /// a finding, dropped when the reporter says so (kept pinned otherwise).
    /// </summary>
    public static void RetryUnreplayed(BtreeEngine engine, string device, IFsckReporter reporter)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(reporter);
        if (engine.Unreplayed.Count == 0)
            return;
        var failed = engine.RetryReplay();
        var drop = false;
        foreach (var f in failed)
        {
            drop |= reporter.Report(FsckErrorId.JournalReplayFailed, $"{device}: journal seq {f.Key.Seq}",
                $"{f.Key.Update.ToText()}: {f.Reason}");
        }
        if (drop)
            engine.AbandonUnreplayed();
    }
}
