// check_journal (fsck pass FsckPassId.CheckJournal): what recovery found in the journal, as
// findings. Recovery itself (MountCore, run by every mount) already did the repair: it replayed
// the longest trustworthy prefix, blacklisted what follows, and reported any seq a flush had made
// durable that it could not replay. This pass reports those decisions; a later fsck checkpoint
// makes them permanent (the damaged entries fall below the checkpoint seq and are never read
// again). Torn or damaged entries after the newest flush entry, and unflushed entries dropped,
// are the normal trace of a crash: counted, not findings.
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
            var where = $"{device}: journal{(damage.Location is { } l ? " " + l.ToText() : "")}";
            if (IsFinding(damage, report.CheckpointSeq))
                reporter.Report(damage.Id, where, (damage.Seq is { } s ? $"seq {s}: " : "") + damage.Detail);
            else
                reporter.Count("check_journal: torn or damaged entries (findings only through the seqs they cost)");
        }
    }

    /// <summary>
    /// Whether this pass reports <paramref name="damage"/> as a finding, for a filesystem whose
    /// superblock checkpoint is <paramref name="checkpointSeq"/>. A damaged entry is one only through
    /// what it cost the replay (missing seqs); on its own it is a torn last write, or an entry nothing
    /// needs: counted, not a finding. A last_seq past its entry's seq is one only after the
    /// checkpoint: an entry the checkpoint covers is never read for replay again, and no repair could
    /// reach it (a repairing run's checkpoint is how the finding is made permanent).
    /// </summary>
    public static bool IsFinding(JournalDamage damage, ulong checkpointSeq)
    {
        ArgumentNullException.ThrowIfNull(damage);
        return damage.Id switch
        {
            FsckErrorId.JournalEntriesMissing or FsckErrorId.JournalSeqBlacklistedFlush or FsckErrorId.JournalCleanMismatch => true,
            FsckErrorId.JournalLastSeqNewerThanSeq => damage.Seq is not { } seq || seq > checkpointSeq,
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
