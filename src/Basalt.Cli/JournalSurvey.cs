// What the journal of an image holds and what the next mount would do with it, read without
// mounting: the superblock, every bucket of the ring scanned as mount scans it (JournalScan), and
// the replay decision mount makes from that (MountCore.PlanReplay). Shared by list-journal and
// show-super; nothing is written and nothing is trusted beyond what the scan validated.
using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Recovery;
using Basalt.Superblocks;

namespace Basalt.Cli;

/// <summary>What the next mount does with an entry.</summary>
internal enum EntryFate
{
    /// <summary>At or below the superblock's checkpoint seq: already in the btrees, never read.</summary>
    Checkpointed,
    /// <summary>In the replay window: replayed.</summary>
    Replay,
    /// <summary>After the checkpoint but before the window (older than the newest flush entry's last_seq): not needed.</summary>
    NotNeeded,
    /// <summary>Its seq is blacklisted: never replayed.</summary>
    Blacklisted,
    /// <summary>After the window (unflushed, or after a missing seq): dropped, and its seq blacklisted.</summary>
    Dropped,
}

/// <summary>Seqs missing between two entries found in the ring.</summary>
internal sealed record SeqGap(SeqRange Range, string Note);

/// <summary>An entry whose magic was changed: good once the filesystem's magic is put back.</summary>
internal sealed record DamagedMagicEntry(ulong Seq, JournalLocation Location, ulong Magic);

/// <summary>What a second read of the ring found beyond the scan: earlier laps' entries, entries with a damaged magic.</summary>
internal sealed record RingInspection(IReadOnlyList<(int RingIndex, EarlierLapRun Run)> EarlierLaps, IReadOnlyList<DamagedMagicEntry> DamagedMagic);

internal sealed class JournalSurvey
{
    private HashSet<ulong>? _window;

    public required Superblock Superblock { get; init; }
    public required JournalRing Ring { get; init; }
    public required JournalReadContext Context { get; init; }
    public required JournalScanResult Scan { get; init; }

    /// <summary>What the next mount replays; null when the superblock is clean and nothing newer is in the journal.</summary>
    public required JournalReplayPlan? Plan { get; init; }

    /// <summary>The plan even when mount would not use it (a clean filesystem): its blacklist and newest seqs.</summary>
    public required JournalReplayPlan FullPlan { get; init; }

    /// <summary>The scan's damage, the plan's findings, and a clean superblock contradicted by the journal.</summary>
    public required IReadOnlyList<JournalDamage> Damage { get; init; }

    public ulong CheckpointSeq => Superblock.CleanInfo.JournalSeq;

    /// <summary>Whether fsck's check_journal reports <paramref name="damage"/> (rather than counting it), judged by the replay plan.</summary>
    public bool IsFinding(JournalDamage damage) => CheckJournal.IsFinding(damage, Plan?.Range, Plan?.LostRange);

    /// <summary>Every blacklisted seq range: the superblock's and the entries' records, merged.</summary>
    public IReadOnlyList<SeqRange> Blacklist => FullPlan.Blacklist;

    /// <summary>Good entries, oldest first.</summary>
    public IEnumerable<JournalEntry> Entries => Scan.Entries.Values.OrderBy(e => e.Seq);

    /// <summary>The newest good entry's seq, or null when the ring holds none.</summary>
    public ulong? NewestSeq => Scan.Entries.Count == 0 ? null : Scan.Entries.Keys.Max();

    /// <summary>The oldest entry the next mount replays, or null when it replays nothing.</summary>
    public ulong? OldestInWindow => Plan?.Range?.First;

    public static JournalSurvey Read(IBlockDevice device, Superblock sb)
    {
        var ring = JournalRing.Of(sb);
        var context = new JournalReadContext(JournalFormat.MagicFor(sb.Uuid), sb.BlockSize, sb.NodeSize);
        var scan = JournalScan.Scan(device, ring, context);
        var damage = new List<JournalDamage>();
        var plan = MountCore.PlanReplay(sb, scan, damage);
        return new JournalSurvey
        {
            Superblock = sb,
            Ring = ring,
            Context = context,
            Scan = scan,
            Plan = plan,
            FullPlan = plan ?? JournalReplayPlan.Build(scan, sb.CleanInfo.JournalSeq, sb.JournalBlacklist),
            Damage = damage,
        };
    }

    public EntryFate FateOf(ulong seq)
    {
        if (seq <= CheckpointSeq)
            return EntryFate.Checkpointed;
        if (Blacklist.Any(r => r.Contains(seq)))
            return EntryFate.Blacklisted;
        if (Plan is not { } plan)
            return EntryFate.Checkpointed;
        _window ??= [.. plan.Window.Select(e => e.Seq)];
        if (_window.Contains(seq))
            return EntryFate.Replay;
        var start = plan.Range?.First ?? plan.LostRange?.First;
        return start is { } s && seq < s ? EntryFate.NotNeeded : EntryFate.Dropped;
    }

    /// <summary>Seqs missing between the oldest and the newest good entry, each with what it means.</summary>
    public List<SeqGap> Gaps()
    {
        var gaps = new List<SeqGap>();
        ulong? previous = null;
        foreach (var seq in Scan.Entries.Keys.Order())
        {
            if (previous is { } p && seq > p + 1)
            {
                var range = new SeqRange(p + 1, seq - 1);
                gaps.Add(new SeqGap(range, GapNote(range)));
            }
            previous = seq;
        }
        return gaps;
    }

    private string GapNote(SeqRange gap)
    {
        if (gap.Last <= CheckpointSeq)
            return "before the checkpoint: not needed";
        if (Blacklist.Any(r => r.First <= gap.First && r.Last >= gap.Last))
            return "blacklisted: never flushed, not needed";
        if (Plan is { } plan)
        {
            if (plan.LostRange is { } lost && gap.First <= lost.Last && lost.First <= gap.Last)
                return "needed by the replay window: lost";
            if (plan.Range is { } window && gap.Last < window.First)
                return "older than the replay window: not needed";
        }
        return "after the replay window";
    }

    /// <summary>
    /// Reads the ring again for what the scan does not report: the entries earlier laps left after
    /// each bucket's current ones, and entries with a damaged magic whose seq lies in one of
    /// <paramref name="gaps"/> (the scan cannot tell those from the end of a bucket).
    /// </summary>
    public RingInspection Inspect(IBlockDevice device, IReadOnlyList<SeqGap> gaps, CancellationToken cancellation)
    {
        var laps = new List<(int, EarlierLapRun)>();
        var damagedMagic = new List<DamagedMagicEntry>();
        var buffer = new byte[Ring.BucketSize];
        for (var b = 0; b < Ring.Count; b++)
        {
            cancellation.ThrowIfCancellationRequested();
            var offset = Ring.OffsetOf(b);
            if (offset < 0 || offset + Ring.BucketSize > device.Size)
                continue;
            try
            {
                device.Read(offset, buffer);
            }
            catch (BasaltException e) when (e.Class == ErrorClass.Io)
            {
                continue; // the scan already reported the bucket as unreadable
            }
            if (Scan.BucketNewestSeq[b] > 0 && JournalInspector.EarlierLap(buffer, Scan.BucketEnd[b], Scan.BucketNewestSeq[b], Context) is { } run)
                laps.Add((b, run));
            if (gaps.Count == 0)
                continue;
            for (var at = 0; at + JournalFormat.HeaderSize <= buffer.Length; at += Context.BlockSize)
            {
                var seq = BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(at + JournalFormat.SeqOffset));
                if (gaps.Any(g => g.Range.Contains(seq)) && JournalInspector.HasDamagedMagic(buffer.AsSpan(at), Context, out var found, out var magic))
                    damagedMagic.Add(new DamagedMagicEntry(found, Ring.Location(b, at), magic));
            }
        }
        return new RingInspection(laps, damagedMagic);
    }

    public static string FateText(EntryFate fate) => fate switch
    {
        EntryFate.Checkpointed => "checkpointed",
        EntryFate.Replay => "replay",
        EntryFate.NotNeeded => "not_needed",
        EntryFate.Blacklisted => "blacklisted",
        _ => "dropped",
    };

    /// <summary>"the next mount replays seqs 4..6 (3 entries, 12 keys); drops …; blacklists …" in one line.</summary>
    public string ReplayText()
    {
        if (Plan is not { } plan)
            return $"clean at checkpoint seq {CheckpointSeq}: the next mount replays nothing";
        var parts = new List<string>
        {
            plan.Range is { } r
                ? $"the next mount replays {r.ToText()} ({plan.Window.Count} entr{(plan.Window.Count == 1 ? "y" : "ies")}, {plan.KeyCount} key{(plan.KeyCount == 1 ? "" : "s")})"
                : "the next mount replays nothing",
        };
        if (Superblock.IsClean)
            parts.Add("the superblock says clean but the journal holds newer entries");
        if (plan.DroppedUnflushed > 0)
            parts.Add($"drops {plan.DroppedUnflushed} entr{(plan.DroppedUnflushed == 1 ? "y" : "ies")} after the window");
        if (plan.NewBlacklist is { } b)
            parts.Add($"blacklists {b.ToText()}");
        if (plan.LostRange is { } lost)
            parts.Add($"LOST {lost.ToText()} (a flush made them durable but they cannot be replayed)");
        return string.Join("; ", parts);
    }

    public static string RangesText(IReadOnlyList<SeqRange> ranges) =>
        ranges.Count == 0 ? "none" : string.Join(", ", ranges.Select(r => r.ToText()));
}
