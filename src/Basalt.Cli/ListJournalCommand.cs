// basalt list-journal IMAGE [--seq A..B] [--keys] [--json]
// Lists the journal ring without mounting: every good entry in seq order (flush or not,
// last_seq, version, where it lies, its size, its records by type, the roots and blacklist ranges
// it carries, its time, and what the next mount does with it), then the damage the scan found
// (torn, bad checksum, bad header, unreadable blocks), the seqs missing between entries, the
// entries earlier laps left behind, and the replay decision (window, blacklist, lost seqs). The
// image is opened read-only; output is streamed (JSON too) so only the scan itself holds memory.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Recovery;
using Basalt.Superblocks;

namespace Basalt.Cli;

internal static class ListJournalCommand
{
    private const string SeqSyntax = "N, A..B, A.. or ..B";

    public static Command Create(CliContext cli)
    {
        var seq = SeqOption("--seq", "only entries with seqs in this range: N, A..B, A.. or ..B");
        var keys = new Option<bool>("--keys", "-k") { Description = "also list every key each entry carries" };
        var json = new Option<bool>("--json") { Description = "print one JSON document" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var command = new Command("list-journal", "list the journal's entries, its damage and what the next mount replays")
        {
            seq, keys, json, image,
        };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var range = parse.GetValue(seq) is { } text ? ParseSeqRange(text, "--seq") : (SeqRange?)null;
            return Run(cli, CliParsing.ResolveImage(parse.GetValue(image)!), range, parse.GetValue(keys), parse.GetValue(json));
        }));
        return command;
    }

    /// <summary>An option taking a seq or seq range; a bad one is a usage error naming the text.</summary>
    internal static Option<string> SeqOption(string name, string description)
    {
        var option = new Option<string>(name) { Description = description, HelpName = "SEQS" };
        option.CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (!TryParseSeqRange(text, out _, out var problem))
                result.AddError($"{name}: {problem}");
            return text;
        };
        return option;
    }

    internal static SeqRange ParseSeqRange(string text, string optionName) =>
        TryParseSeqRange(text, out var range, out var problem)
            ? range
            : throw new BasaltException(ErrorCode.InvalidArgument, $"{optionName}: {problem}");

    /// <summary>Parses "7", "4..9", "4.." (to the end) and "..9" (from the start); seqs are whole numbers.</summary>
    internal static bool TryParseSeqRange(string text, out SeqRange range, out string problem)
    {
        range = default;
        problem = "";
        var at = text.IndexOf("..", StringComparison.Ordinal);
        string first = at < 0 ? text : text[..at];
        string last = at < 0 ? text : text[(at + 2)..];
        if (at >= 0 && first.Length == 0 && last.Length == 0)
        {
            problem = $"'{text}' names no seq ({SeqSyntax})";
            return false;
        }
        ulong lo = 0, hi = ulong.MaxValue;
        if ((first.Length > 0 || at < 0) && !ulong.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out lo) ||
            (last.Length > 0 || at < 0) && !ulong.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out hi))
        {
            problem = $"'{text}' is not a seq or seq range ({SeqSyntax})";
            return false;
        }
        if (lo > hi)
        {
            problem = $"'{text}' is an empty range: {lo} is after {hi}";
            return false;
        }
        range = new SeqRange(lo, hi);
        return true;
    }

    private static int Run(CliContext cli, string path, SeqRange? filter, bool withKeys, bool json)
    {
        CliParsing.RequireExistingImage(path);
        using var device = FileBlockDevice.Open(path, readOnly: true);
        var read = SuperblockIo.Read(device);
        var survey = JournalSurvey.Read(device, read.Superblock);
        var gaps = survey.Gaps();
        var inspection = survey.Inspect(device, gaps, cli.Cancellation);
        var truncated = DeviceTruncation.Note(device, read);
        if (json)
            WriteJson(cli, device.Name, truncated, survey, gaps, inspection, filter, withKeys);
        else
            WriteText(cli, device.Name, truncated, survey, gaps, inspection, filter, withKeys);
        return CliExitCodes.Ok;
    }

    /// <summary>"seq 7", "seqs 4..9", "seqs 4.." (to the end): the range as --seq took it.</summary>
    internal static string FilterText(SeqRange f) =>
        f.Last == ulong.MaxValue ? $"seqs {f.First}.." : f.ToText();

    private static bool InFilter(SeqRange? filter, ulong? seq) => filter is not { } f || seq is not { } s || f.Contains(s);

    private static bool Overlaps(SeqRange? filter, SeqRange range) => filter is not { } f || (range.First <= f.Last && f.First <= range.Last);

    // ---- Text ---------------------------------------------------------------------------------

    private static void WriteText(CliContext cli, string device, string? truncated, JournalSurvey survey, List<SeqGap> allGaps,
        RingInspection inspection, SeqRange? filter, bool withKeys)
    {
        var sb = survey.Superblock;
        cli.Line($"journal of {device}: {RingText(survey)}", "bold");
        if (truncated is not null)
            cli.Line($"damage: {truncated}", "red");
        cli.Line($"superblock: {(sb.IsClean ? "clean" : "dirty")}, checkpoint seq {survey.CheckpointSeq}, " +
                 $"blacklist {JournalSurvey.RangesText(sb.JournalBlacklist)}");
        if (filter is { } f)
            cli.Line($"entries with {FilterText(f)}:");
        var listed = 0;
        foreach (var entry in survey.Entries.Where(e => InFilter(filter, e.Seq)))
        {
            cli.Cancellation.ThrowIfCancellationRequested();
            var fate = survey.FateOf(entry.Seq);
            cli.Line(EntryText(entry, fate), fate == EntryFate.Replay ? "green" : fate == EntryFate.Dropped ? "yellow" : "default");
            foreach (var record in entry.Records)
            {
                switch (record.Type)
                {
                    case JournalRecordType.BtreeRoot when record.Root() is { } root:
                        cli.Line($"  root {root.Btree.ToText()} level {root.Level} {root.Ptr.ToText()}");
                        break;
                    case JournalRecordType.Blacklist:
                        cli.Line($"  blacklist {record.Blacklist().ToText()}");
                        break;
                    case JournalRecordType.LevelsVoided:
                        cli.Line($"  levels_voided {record.Btree.ToText()} from level {record.Level}");
                        break;
                    case JournalRecordType.BtreeKeys when withKeys:
                        foreach (var key in record.Keys())
                            cli.Line($"  key {KeyText(key)}");
                        break;
                }
            }
            listed++;
        }
        if (listed == 0)
            cli.Line(survey.Scan.Entries.Count == 0 ? "no journal entries" : "no journal entries in that range");

        var damage = survey.Damage.Where(d => InFilter(filter, d.Seq)).ToList();
        cli.Line(damage.Count == 0 ? "damage: none" : $"damage: {damage.Count}");
        foreach (var d in damage)
            cli.Line($"  {DamageText(d, survey)}", survey.IsFinding(d) ? "red" : "yellow");
        var gaps = allGaps.Where(g => Overlaps(filter, g.Range)).ToList();
        cli.Line(gaps.Count == 0 ? "gaps: none" : $"gaps: {gaps.Count}");
        foreach (var gap in gaps)
        {
            cli.Line($"  {gap.Range.ToText()} not found ({gap.Note})");
            foreach (var m in inspection.DamagedMagic.Where(m => gap.Range.Contains(m.Seq)))
            {
                cli.Line($"    seq {m.Seq} is at ring index {m.Location.RingIndex} (bucket {m.Location.Bucket}) byte {m.Location.Offset} " +
                         $"with a damaged magic: {m.Magic:x16}, not {survey.Context.Magic:x16} (its checksum matches with the right one)");
            }
        }
        var stale = inspection.EarlierLaps.Where(l => Overlaps(filter, new SeqRange(l.Run.FirstSeq, l.Run.LastSeq))).ToList();
        cli.Line(stale.Count == 0 ? "earlier laps: none" : $"earlier laps: {stale.Count} buckets");
        foreach (var (index, run) in stale)
        {
            cli.Line($"  ring index {index} (bucket {survey.Ring.BucketAt(index)}) from byte {survey.Ring.OffsetOf(index) + run.Offset}: " +
                     $"{run.Entries} entr{(run.Entries == 1 ? "y" : "ies")}, {new SeqRange(run.FirstSeq, run.LastSeq).ToText()}, {run.Bytes} bytes (stale: not read)");
        }
        cli.Line($"replay: {survey.ReplayText()}", "bold");
        cli.Line($"blacklisted: {JournalSurvey.RangesText(survey.Blacklist)}");
        cli.Line($"next seq: {survey.FullPlan.NextSeq}");
    }

    internal static string RingText(JournalSurvey survey)
    {
        var ring = survey.Ring;
        var ranges = survey.Superblock.JournalBuckets.Select(r =>
            $"buckets {r.Start}..{r.End - 1} at bytes {(long)r.Start * ring.BucketSize}..{((long)r.End * ring.BucketSize) - 1}");
        return $"{ring.Count} buckets of {ring.BucketSize} bytes ({ring.Bytes} bytes: {string.Join(", ", ranges)})";
    }

    private static string EntryText(JournalEntry e, EntryFate fate)
    {
        var counts = RecordCounts(e).Where(c => c.Count > 0)
            .Select(c => c.Type == JournalRecordType.BtreeKeys ? $"{c.Count} btree_keys ({e.KeyCount} keys)" : $"{c.Count} {c.Type.ToText()}");
        var time = TimeOf(e) is { } t ? $"; written {t}" : "";
        return $"seq {e.Seq} {(e.IsFlush ? "flush" : "no-flush")} last_seq {e.LastSeq} version {e.Version} {e.ChecksumType.ToText()}, " +
               $"ring index {e.Location.RingIndex} (bucket {e.Location.Bucket}) at byte {e.Location.Offset}, {e.DiskBytes} bytes: " +
               $"{string.Join(", ", counts)}{time}; {JournalSurvey.FateText(fate)}";
    }

    internal static IEnumerable<(JournalRecordType Type, int Count)> RecordCounts(JournalEntry e) =>
        Enum.GetValues<JournalRecordType>().Select(t => (t, e.Records.Count(r => r.Type == t)));

    private static string? TimeOf(JournalEntry e) =>
        e.Records.LastOrDefault(r => r.Type == JournalRecordType.Datetime) is { Payload.Length: JournalFormat.DatetimePayloadSize } r
            ? r.Time().UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)
            : null;

    private static string KeyText(BtreeUpdate key)
    {
        var head = $"{key.Btree.ToText()} level {key.Level} {key.Key.Pos.ToText()} {key.Key.Type.ToText()}";
        return key.Key.Type == KeyType.BtreePtr
            ? $"{head} {KeyTypeTable.ToText(key.Key.Type, key.Value.Span)}"
            : $"{head}, {key.Value.Length} value bytes";
    }

    private static string DamageText(JournalDamage d, JournalSurvey survey)
    {
        var where = d.Location is { } l ? $" at ring index {l.RingIndex} (bucket {l.Bucket}) byte {l.Offset}" : "";
        var seq = d.Seq is { } s ? $" seq {s}" : "";
        var kind = survey.IsFinding(d) ? "fsck finding" : "counted by fsck, not a finding";
        return $"{FsckCatalogue.NameOf(d.Id)} ({(ushort)d.Id}){seq}{where}: {d.Detail} [{kind}]";
    }

    // ---- JSON ---------------------------------------------------------------------------------

    private static void WriteJson(CliContext cli, string device, string? truncated, JournalSurvey survey, List<SeqGap> allGaps,
        RingInspection inspection, SeqRange? filter, bool withKeys)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            var sb = survey.Superblock;
            var ring = survey.Ring;
            w.WriteStartObject();
            w.WriteString("device", device);
            w.WriteString("truncated", truncated);
            w.WriteStartObject("ring");
            w.WriteNumber("buckets", ring.Count);
            w.WriteNumber("bucket_size", ring.BucketSize);
            w.WriteNumber("bytes", ring.Bytes);
            w.WriteStartArray("ranges");
            foreach (var r in sb.JournalBuckets)
            {
                w.WriteStartObject();
                w.WriteNumber("first_bucket", r.Start);
                w.WriteNumber("last_bucket", r.End - 1);
                w.WriteNumber("offset", (long)r.Start * ring.BucketSize);
                w.WriteNumber("length", (long)r.Count * ring.BucketSize);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteBoolean("clean", sb.IsClean);
            w.WriteNumber("checkpoint_seq", survey.CheckpointSeq);
            if (filter is { } f)
            {
                w.WriteStartObject("seq_filter");
                w.WriteNumber("first", f.First);
                w.WriteNumber("last", f.Last);
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("seq_filter");
            }

            w.WriteStartArray("entries");
            foreach (var e in survey.Entries.Where(e => InFilter(filter, e.Seq)))
            {
                cli.Cancellation.ThrowIfCancellationRequested();
                WriteEntry(w, e, survey.FateOf(e.Seq), withKeys);
                if (stream.Length > 1 << 16)
                    Drain(w, stream, cli.Out);
            }
            w.WriteEndArray();

            w.WriteStartArray("damage");
            foreach (var d in survey.Damage.Where(d => InFilter(filter, d.Seq)))
            {
                w.WriteStartObject();
                w.WriteNumber("id", (ushort)d.Id);
                w.WriteString("name", FsckCatalogue.NameOf(d.Id));
                WriteOptional(w, "seq", d.Seq);
                WriteOptional(w, "ring_index", d.Location?.RingIndex);
                WriteOptional(w, "bucket", d.Location?.Bucket);
                WriteOptional(w, "offset", d.Location?.Offset);
                w.WriteBoolean("finding", survey.IsFinding(d));
                w.WriteString("detail", d.Detail);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartArray("gaps");
            foreach (var g in allGaps.Where(g => Overlaps(filter, g.Range)))
            {
                w.WriteStartObject();
                w.WriteNumber("first", g.Range.First);
                w.WriteNumber("last", g.Range.Last);
                w.WriteString("note", g.Note);
                w.WriteStartArray("damaged_magic");
                foreach (var m in inspection.DamagedMagic.Where(m => g.Range.Contains(m.Seq)))
                {
                    w.WriteStartObject();
                    w.WriteNumber("seq", m.Seq);
                    w.WriteNumber("ring_index", m.Location.RingIndex);
                    w.WriteNumber("bucket", m.Location.Bucket);
                    w.WriteNumber("offset", m.Location.Offset);
                    w.WriteString("magic", m.Magic.ToString("x16", CultureInfo.InvariantCulture));
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartArray("earlier_laps");
            foreach (var (index, run) in inspection.EarlierLaps.Where(l => Overlaps(filter, new SeqRange(l.Run.FirstSeq, l.Run.LastSeq))))
            {
                w.WriteStartObject();
                w.WriteNumber("ring_index", index);
                w.WriteNumber("bucket", ring.BucketAt(index));
                w.WriteNumber("offset", ring.OffsetOf(index) + run.Offset);
                w.WriteNumber("bytes", run.Bytes);
                w.WriteNumber("entries", run.Entries);
                w.WriteNumber("first_seq", run.FirstSeq);
                w.WriteNumber("last_seq", run.LastSeq);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            var plan = survey.Plan;
            WriteRange(w, "replay", plan?.Range);
            w.WriteNumber("replay_entries", plan?.Window.Count ?? 0);
            w.WriteNumber("replay_keys", plan?.KeyCount ?? 0);
            w.WriteNumber("dropped", plan?.DroppedUnflushed ?? 0);
            WriteRange(w, "lost", plan?.LostRange);
            WriteRange(w, "new_blacklist", plan?.NewBlacklist);
            w.WriteStartArray("blacklist");
            foreach (var r in survey.Blacklist)
                WriteRange(w, null, r);
            w.WriteEndArray();
            w.WriteNumber("next_seq", survey.FullPlan.NextSeq);
            w.WriteString("summary", survey.ReplayText());
            w.WriteEndObject();
        }
        Drain(null, stream, cli.Out);
        cli.Out.WriteLine();
    }

    private static void WriteEntry(Utf8JsonWriter w, JournalEntry e, EntryFate fate, bool withKeys)
    {
        w.WriteStartObject();
        w.WriteNumber("seq", e.Seq);
        w.WriteBoolean("flush", e.IsFlush);
        w.WriteNumber("last_seq", e.LastSeq);
        w.WriteNumber("version", e.Version);
        w.WriteString("checksum_type", e.ChecksumType.ToText());
        w.WriteNumber("ring_index", e.Location.RingIndex);
        w.WriteNumber("bucket", e.Location.Bucket);
        w.WriteNumber("offset", e.Location.Offset);
        w.WriteNumber("bytes", e.DiskBytes);
        w.WriteStartObject("records");
        foreach (var (type, count) in RecordCounts(e))
            w.WriteNumber(type.ToText(), count);
        w.WriteEndObject();
        w.WriteNumber("key_count", e.KeyCount);
        w.WriteStartArray("roots");
        foreach (var r in e.Records.Where(r => r.Type == JournalRecordType.BtreeRoot).Select(r => r.Root()).OfType<BtreeRoot>())
        {
            w.WriteStartObject();
            w.WriteString("btree", r.Btree.ToText());
            w.WriteNumber("level", r.Level);
            w.WriteString("pointer", r.Ptr.ToText());
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("blacklist");
        foreach (var r in e.Records.Where(r => r.Type == JournalRecordType.Blacklist))
            WriteRange(w, null, r.Blacklist());
        w.WriteEndArray();
        w.WriteStartArray("levels_voided");
        foreach (var r in e.Records.Where(r => r.Type == JournalRecordType.LevelsVoided))
        {
            w.WriteStartObject();
            w.WriteString("btree", r.Btree.ToText());
            w.WriteNumber("level", r.Level);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (TimeOf(e) is { } time)
            w.WriteString("time", time);
        else
            w.WriteNull("time");
        w.WriteString("fate", JournalSurvey.FateText(fate));
        if (withKeys)
        {
            w.WriteStartArray("keys");
            foreach (var record in e.Records.Where(r => r.Type == JournalRecordType.BtreeKeys))
            {
                foreach (var key in record.Keys())
                {
                    w.WriteStartObject();
                    w.WriteString("btree", key.Btree.ToText());
                    w.WriteNumber("level", key.Level);
                    w.WriteString("pos", key.Key.Pos.ToText());
                    w.WriteString("type", key.Key.Type.ToText());
                    w.WriteNumber("value_bytes", key.Value.Length);
                    if (key.Key.Type == KeyType.BtreePtr)
                        w.WriteString("pointer", KeyTypeTable.ToText(key.Key.Type, key.Value.Span));
                    else
                        w.WriteNull("pointer");
                    w.WriteEndObject();
                }
            }
            w.WriteEndArray();
        }
        else
        {
            w.WriteNull("keys");
        }
        w.WriteEndObject();
    }

    private static void WriteRange(Utf8JsonWriter w, string? name, SeqRange? range)
    {
        if (range is not { } r)
        {
            w.WriteNull(name!);
            return;
        }
        if (name is null)
            w.WriteStartObject();
        else
            w.WriteStartObject(name);
        w.WriteNumber("first", r.First);
        w.WriteNumber("last", r.Last);
        w.WriteEndObject();
    }

    private static void WriteOptional(Utf8JsonWriter w, string name, long? value)
    {
        if (value is { } v)
            w.WriteNumber(name, v);
        else
            w.WriteNull(name);
    }

    private static void WriteOptional(Utf8JsonWriter w, string name, ulong? value)
    {
        if (value is { } v)
            w.WriteNumber(name, v);
        else
            w.WriteNull(name);
    }

    private static void Drain(Utf8JsonWriter? writer, MemoryStream stream, TextWriter output)
    {
        writer?.Flush();
        output.Write(System.Text.Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length));
        stream.SetLength(0);
    }
}
