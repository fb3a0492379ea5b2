// basalt list IMAGE --btree NAME [--level N] [--start POS] [--end POS] [--json]
// Prints the keys of one btree level in [start, end] with their values as the key type table
// prints them. The filesystem is mounted read-only (nothing reaches the image), and keys are
// streamed: output of any size is printed in bounded memory, JSON included.
using System.CommandLine;
using System.Text.Json;
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.Cli;

internal static class ListCommand
{
    /// <summary>Node read findings printed as warnings before the rest are only counted.</summary>
    private const int MaxWarnings = 10;

    public static Command Create(CliContext cli)
    {
        var btree = new Option<string>("--btree", "-b") { Description = "btree name (e.g. test, extents, inodes)", Required = true };
        var level = CliOptions.Int("--level", "-l", "level to list: 0 = leaf keys (default), higher = interior pointers",
            min: 0, max: FormatLimits.MaxBtreeLevel);
        var start = new Option<string>("--start") { Description = "first position: INODE:OFFSET[:SNAPSHOT], min or max (default min)" };
        var end = new Option<string>("--end") { Description = "last position, inclusive (default max)" };
        var json = new Option<bool>("--json") { Description = "print one JSON document" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var command = new Command("list", "list the keys of a btree") { btree, level, start, end, json, image };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var id = CliParsing.ParseBtree(parse.GetValue(btree));
            var lvl = parse.GetValue(level);
            var from = parse.GetValue(start) is { } s ? CliParsing.ParsePosition(s, "--start") : Bpos.Min;
            var to = parse.GetValue(end) is { } e ? CliParsing.ParsePosition(e, "--end") : Bpos.Max;
            if (from > to)
                CliContext.Usage($"--start {from.ToText()} is after --end {to.ToText()}");
            return Run(cli, CliParsing.ResolveImage(parse.GetValue(image)!), id, (byte)lvl, from, to, parse.GetValue(json));
        }));
        return command;
    }

    private static int Run(CliContext cli, string path, BtreeId id, byte level, Bpos start, Bpos end, bool json)
    {
        CliParsing.RequireExistingImage(path);
        // A node the reader had to repair in memory (keys dropped, a bset cut off) is listed as
        // read, and said so on stderr: the image needs fsck. Notes and warnings are held back
        // (at most MaxWarnings lines) and printed after the listing, so a listing that fails
        // part way still ends with exactly one error line on stderr.
        var notes = new List<string>();
        var warnings = 0;
        var engine = new BtreeEngineOptions
        {
            NodeReadObserver = (btree, nodeLevel, ptr, result) =>
            {
                foreach (var finding in result.Findings)
                {
                    if (warnings++ < MaxWarnings)
                    {
                        notes.Add($"{cli.CommandName}: warning: btree {btree.ToText()} level {nodeLevel} node at byte " +
                                  $"{(ptr.Ptrs.Count > 0 ? (UInt128)ptr.Ptrs[0].OffsetSectors * FormatLimits.SectorSize : 0)}: {finding.ToText()} (run basalt fsck)");
                    }
                }
            },
        };
        using var fs = BasaltFileSystem.Mount(path, new MountOptions { ReadOnly = true, Engine = engine });
        if (fs.SuperblockNote is { } note)
            notes.Insert(0, $"{cli.CommandName}: note: {note}");
        // A truncated image is listed as far as it can be read; the error line of a read that
        // reaches the missing tail names the truncation too.
        if (fs.Truncation is { } truncation && DeviceTruncation.Note(truncation.Inner, fs.SuperblockRead) is { } cut)
            notes.Insert(0, $"{cli.CommandName}: warning: {fs.Device.Name}: {cut}");
        var tree = fs.Btrees[id];
        var it = tree.Iterate(start, end, reverse: false, level: level);
        var code = json ? WriteJson(cli, fs, id, level, start, end, it) : WriteText(cli, it, id, level, notes);
        foreach (var line in notes)
            cli.Err.WriteLine(line);
        if (warnings > MaxWarnings)
            cli.Err.WriteLine($"{cli.CommandName}: warning: {warnings - MaxWarnings} more node read findings not shown");
        return code;
    }


    private static int WriteText(CliContext cli, BtreeIterator it, BtreeId id, byte level, List<string> notes)
    {
        long count = 0;
        while (it.MoveNext())
        {
            var text = KeyTypeTable.ToText(it.Key, it.Value);
            cli.Out.WriteLine(KeyPositionText.Describe(id, it.Key, it.Value) is { } where ? $"{text} ({where})" : text);
            count++;
            cli.Cancellation.ThrowIfCancellationRequested();
        }
        notes.Add($"{cli.CommandName}: {count} keys in btree {id.ToText()} level {level}");
        return CliExitCodes.Ok;
    }

    private static int WriteJson(CliContext cli, BasaltFileSystem fs, BtreeId id, byte level, Bpos start, Bpos end, BtreeIterator it)
    {
        using var stream = new MemoryStream();
        long count = 0;
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("device", fs.Device.Name);
            writer.WriteString("btree", id.ToText());
            writer.WriteNumber("level", level);
            writer.WriteString("start", start.ToText());
            writer.WriteString("end", end.ToText());
            writer.WriteStartArray("keys");
            while (it.MoveNext())
            {
                var key = it.Key;
                var value = it.Value;
                writer.WriteStartObject();
                writer.WriteString("pos", key.Pos.ToText());
                writer.WriteString("type", key.Type.ToText());
                writer.WriteNumber("size", key.Size);
                writer.WriteNumber("value_length", value.Length);
                writer.WriteString("value", KeyTypeTable.ToText(key.Type, value));
                writer.WriteString("where", KeyPositionText.Describe(id, key, value));
                writer.WriteEndObject();
                count++;
                // Stream out in chunks so memory stays bounded whatever the btree holds.
                if (stream.Length > 1 << 16)
                    Drain(writer, stream, cli.Out);
            }
            writer.WriteEndArray();
            writer.WriteNumber("count", count);
            writer.WriteEndObject();
        }
        Drain(null, stream, cli.Out);
        cli.Out.WriteLine();
        return CliExitCodes.Ok;
    }

    private static void Drain(Utf8JsonWriter? writer, MemoryStream stream, TextWriter output)
    {
        writer?.Flush();
        output.Write(System.Text.Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length));
        stream.SetLength(0);
    }
}
