// basalt show-super [--json] IMAGE
// Prints the superblock mount would use, which copy that is, the status of every copy, and the
// journal: its ring, the seqs found on it, clean or dirty with the checkpoint seq, the blacklist
// and what the next mount replays (the ring is scanned as mount scans it).
// The image is opened read-only (a shared lock: a writer holding it is reported as in use). An
// image shorter than the superblock records gets one damage line naming the truncation.
using System.CommandLine;
using System.Globalization;
using Basalt.Alloc;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Journal;
using Basalt.Superblocks;

namespace Basalt.Cli;

internal static class ShowSuperCommand
{
    public static Command Create(CliContext cli)
    {
        var json = new Option<bool>("--json") { Description = "print one JSON document" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var command = new Command("show-super", "print the superblock and the status of every copy") { json, image };
        command.SetAction(parse => Program.Execute(cli, () =>
            Run(cli, CliParsing.ResolveImage(parse.GetValue(image)!), parse.GetValue(json))));
        return command;
    }

    private static int Run(CliContext cli, string path, bool json)
    {
        CliParsing.RequireExistingImage(path);
        using var device = FileBlockDevice.Open(path, readOnly: true);
        var read = SuperblockIo.Read(device);
        var sb = read.Superblock;
        var journal = JournalSurvey.Read(device, sb);
        var truncated = DeviceTruncation.Note(device, read);
        if (json)
        {
            JsonOutput.Write(cli.Out, ToJson(device.Name, TruncatedDevice.LengthOf(device), truncated, read, journal));
            return CliExitCodes.Ok;
        }

        cli.Line($"{device.Name}: Basalt filesystem", "bold");
        if (truncated is not null)
            cli.Line($"damage: {truncated}", "red");
        cli.Out.Write(sb.ToText());
        foreach (var (name, value) in BucketLines(sb))
            cli.Line($"{name,-24}{value}");
        foreach (var (name, value) in JournalLines(journal))
            cli.Line($"{name,-24}{value}");
        cli.Line($"superblock used:        copy {read.UsedCopy} (seq {sb.Seq})");
        foreach (var copy in read.Copies)
            cli.Line($"  {copy.ToText()}", copy.Status == CopyStatus.Good ? "green" : "yellow");
        if (MountNote.For(read) is { } note)
            cli.Line($"note: {note}", "yellow");
        return CliExitCodes.Ok;
    }

    /// <summary>
    /// The bucket geometry of this device: what the allocator works with (docs/allocation.md). The
    /// member line of the superblock text names the same numbers in one line; these spell them out.
    /// </summary>
    internal static IEnumerable<(string Name, string Value)> BucketLines(Superblock sb)
    {
        var dev = SpaceLayout.From(sb)[(byte)sb.DeviceIndex];
        var journal = dev.Journal.Aggregate(0UL, (n, r) => n + r.Count);
        yield return ("buckets:", string.Create(CultureInfo.InvariantCulture,
            $"{dev.Nbuckets} of {dev.BucketSize} bytes, first bucket {dev.FirstBucket} (buckets 0..{dev.FirstBucket - 1} hold the superblock area)"));
        yield return ("journal buckets:", string.Create(CultureInfo.InvariantCulture,
            $"{journal} ({string.Join(", ", dev.Journal.Select(r => $"buckets {r.Start}..{r.End - 1}"))})"));
        yield return ("node area:", string.Create(CultureInfo.InvariantCulture,
            $"{dev.NodeArea.Count} buckets (buckets {dev.NodeArea.Start}..{dev.NodeArea.End - 1} at bytes {dev.BucketOffset(dev.NodeArea.Start)}..{dev.BucketOffset(dev.NodeArea.End) - 1})"));
        var regions = sb.Member.NodeRegionRanges();
        yield return ("node regions:", string.Create(CultureInfo.InvariantCulture,
            $"{string.Join(", ", regions.Select(r => $"buckets {r.Start}..{r.End - 1}"))} (regions of {1UL << sb.Member.NodeRegionShift} buckets that have held btree nodes: what the node scan reads)"));
        yield return ("data buckets:", string.Create(CultureInfo.InvariantCulture,
            $"{dev.DataBuckets} (btree buckets claimed beyond the node area come out of these)"));
        yield return ("discard:", (sb.Member.Flags & MemberFlags.Discard) != 0 ? "on" : "off");
        yield return ("alloc initialized:", (sb.Member.Flags & MemberFlags.AllocInitialized) != 0
            ? "yes"
            : "no (the first writable mount creates the allocation info)");
    }

    /// <summary>The journal's lines of the text report: ring, what is on disk, state, replay, blacklist.</summary>
    internal static IEnumerable<(string Name, string Value)> JournalLines(JournalSurvey journal)
    {
        var sb = journal.Superblock;
        yield return ("journal ring:", ListJournalCommand.RingText(journal));
        var entries = journal.Scan.Entries;
        var flush = entries.Values.Where(e => e.IsFlush).Select(e => e.Seq).DefaultIfEmpty().Max();
        yield return ("journal on disk:", entries.Count == 0
            ? $"no entries{(journal.Scan.Damage.Count > 0 ? $"; {journal.Scan.Damage.Count} damaged" : "")}"
            : $"{entries.Count} entr{(entries.Count == 1 ? "y" : "ies")}, {new SeqRange(entries.Keys.Min(), entries.Keys.Max()).ToText()} (newest {entries.Keys.Max()}" +
              $"{(flush > 0 ? $", newest flush {flush}" : ", no flush entry")}){(journal.Scan.Damage.Count > 0 ? $"; {journal.Scan.Damage.Count} damaged" : "")}");
        yield return ("journal state:", $"{(sb.IsClean ? "clean" : "dirty")}, checkpoint seq {journal.CheckpointSeq}" +
            (journal.OldestInWindow is { } oldest ? $", oldest seq in the replay window {oldest}" : ""));
        yield return ("journal replay:", journal.ReplayText());
        yield return ("journal blacklisted:", JournalSurvey.RangesText(journal.Blacklist) +
            (journal.Blacklist.SequenceEqual(sb.JournalBlacklist) ? "" : " (superblock and entries' blacklist records)"));
    }

    private static SuperJournalJson JournalJson(JournalSurvey journal)
    {
        var sb = journal.Superblock;
        var ring = journal.Ring;
        var entries = journal.Scan.Entries;
        static SeqRangeJson? Range(SeqRange? r) => r is { } x ? new SeqRangeJson(x.First, x.Last) : null;
        static string? Time(DateTimeOffset t) => t == DateTimeOffset.UnixEpoch ? null : SuperblockText.Time(t);
        return new SuperJournalJson(
            Buckets: ring.Count,
            BucketSize: ring.BucketSize,
            Bytes: ring.Bytes,
            Ranges: [.. sb.JournalBuckets.Select(r => new JournalRangeJson(r.Start, r.End - 1, r.Count,
                (long)r.Start * ring.BucketSize, (long)r.Count * ring.BucketSize))],
            Clean: sb.IsClean,
            LastMount: Time(sb.CleanInfo.LastMount),
            LastUnmount: Time(sb.CleanInfo.LastUnmount),
            CheckpointSeq: journal.CheckpointSeq,
            Entries: entries.Count,
            OldestSeq: entries.Count == 0 ? null : entries.Keys.Min(),
            NewestSeq: journal.NewestSeq,
            NewestFlushSeq: entries.Values.Where(e => e.IsFlush).Select(e => (ulong?)e.Seq).Max(),
            OldestInWindow: journal.OldestInWindow,
            Replay: Range(journal.Plan?.Range),
            Lost: Range(journal.Plan?.LostRange),
            Damaged: journal.Scan.Damage.Count,
            SuperblockBlacklist: [.. sb.JournalBlacklist.Select(r => new SeqRangeJson(r.First, r.Last))],
            Blacklist: [.. journal.Blacklist.Select(r => new SeqRangeJson(r.First, r.Last))],
            NextSeq: journal.FullPlan.NextSeq,
            Summary: journal.ReplayText());
    }

    internal static SuperblockJson ToJson(string device, long imageSize, string? truncated, SuperblockReadResult read, JournalSurvey journal)
    {
        var sb = read.Superblock;
        return new SuperblockJson(
            Device: device,
            ImageSize: imageSize,
            Truncated: truncated,
            UsedCopy: read.UsedCopy,
            Note: MountNote.For(read),
            Copies: [.. read.Copies.Select(c => new SuperblockCopyJson(c.Index, c.Offset,
                c.Status.ToText().Replace(' ', '_'), c.Seq, c.Detail, c.Index == read.UsedCopy))],
            Uuid: SuperblockText.Uuid(sb.Uuid),
            Label: sb.Label,
            Version: sb.Version,
            VersionMin: sb.VersionMin,
            Seq: sb.Seq,
            WriteTime: SuperblockText.Time(sb.WriteTime),
            Flags: sb.Flags.ToString(),
            Clean: sb.IsClean,
            MetadataChecksum: sb.MetadataChecksumType.ToText(),
            DataChecksum: sb.DataChecksumType.ToText(),
            DeviceSize: sb.DeviceSize,
            BlockSize: sb.BlockSize,
            NodeSize: sb.NodeSize,
            BucketSize: sb.BucketSize,
            NodeMagic: sb.NodeMagic.ToString("x16", CultureInfo.InvariantCulture),
            Members: [.. sb.Members.Select((m, i) => new MemberJson(SuperblockText.Uuid(m.DeviceUuid), m.Nbuckets, m.BucketSize,
                m.FirstBucket, m.NodeArea.Start, m.NodeArea.Count, m.NodeAreaOffset, m.NodeAreaLength, m.State.ToString(),
                JournalBuckets: SpaceLayout.From(sb).Devices[i].Journal.Aggregate(0UL, (n, r) => n + r.Count),
                DataBuckets: SpaceLayout.From(sb).Devices[i].DataBuckets,
                NodeRegionShift: m.NodeRegionShift,
                NodeRegionMap: m.NodeRegionMap.ToString("x16", CultureInfo.InvariantCulture),
                NodeRegions: [.. m.NodeRegionRanges().Select(r => new BucketRangeJson(r.Start, r.Count))],
                Discard: (m.Flags & MemberFlags.Discard) != 0,
                AllocInitialized: (m.Flags & MemberFlags.AllocInitialized) != 0))],
            Journal: JournalJson(journal),
            Roots: [.. sb.Roots.Select(r => new RootJson(r.Btree.ToText(), r.Level, r.Ptr.ToText()))],
            ErrorCounters: [.. sb.ErrorCounters.Select(e => new ErrorCounterJson((int)e.Id,
                FsckCatalogue.TryGet((ushort)e.Id, out var info) ? info!.Name : $"unknown({(ushort)e.Id})",
                e.Count, SuperblockText.Time(e.LastTime)))]);
    }
}
