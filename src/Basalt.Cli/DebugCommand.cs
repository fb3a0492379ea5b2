// basalt debug corrupt IMAGE --target node|bset|key|superblock|journal-entry|journal-record|journal-field|
//                                alloc|backpointer|extent|data
//                      [--btree B] [--level L] [--seq SEQS] [--bucket N | --pos P] [--field F]
//                      [--mode zero|ones|random|bitflip] [--fix-csum | --keep-csum] [--seed N]
// Fault injection for tests and the corrupt-image corpus: the target is picked deterministically
// from the seed, and the command prints exactly what it changed. `debug load` (LoadCommand) is the
// crash-testing load that goes with it.
using System.CommandLine;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Cli;

internal static class DebugCommand
{
    public static Command Create(CliContext cli)
    {
        var debug = new Command("debug", "crash-testing tools: corrupt damages an image on purpose, load runs transactions to kill and verify, scan-nodes lists the btree nodes found on the device");
        debug.Add(CreateCorrupt(cli));
        debug.Add(LoadCommand.Create(cli));
        debug.Add(ScanNodesCommand.Create(cli));
        return debug;
    }

    private static Command CreateCorrupt(CliContext cli)
    {
        var target = CliOptions.Choice("--target", "-t", "what to damage", CorruptTargets.Names);
        target.Required = true;
        var btree = new Option<string>("--btree", "-b") { Description = "only nodes of this btree" };
        var level = CliOptions.OptionalInt("--level", "-l", "only nodes at this level (0..7)", min: 0, max: FormatLimits.MaxBtreeLevel);
        var seq = ListJournalCommand.SeqOption("--seq", "journal targets: only entries with seqs in this range (N, A..B, A.., ..B)");
        var field = new Option<string>("--field", "-f") { Description = "the field to change (default: picked from the seed)" };
        var mode = CliOptions.Choice("--mode", "-m", "how to change it (default bitflip)", ["zero", "ones", "random", "bitflip"], "bitflip");
        var bucket = new Option<string>("--bucket") { Description = "alloc, backpointer, extent, data: a key of this bucket (of device 0)" };
        var pos = new Option<string>("--pos") { Description = "alloc, backpointer, extent, data: the first key at or after this position" };
        var fixCsum = new Option<bool>("--fix-csum") { Description = "recompute the checksum of the node record, journal entry or superblock copy afterwards (always done for alloc, backpointer and extent)" };
        var keepCsum = new Option<bool>("--keep-csum") { Description = "alloc, backpointer, extent: leave the checksum of the changed record or journal entry as is" };
        var seed = CliOptions.Int("--seed", null, "seed that picks node, record, key, field and bytes (default 0)");
        var image = new Argument<string>("IMAGE") { Description = "image file" };
        var command = new Command("corrupt", "change one on-disk field of IMAGE and print what changed")
        {
            target, btree, level, seq, bucket, pos, field, mode, fixCsum, keepCsum, seed, image,
        };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var lvl = parse.GetValue(level);
            var request = new CorruptRequest
            {
                Target = CorruptTargets.Parse(parse.GetValue(target)!),
                Btree = parse.GetValue(btree) is { } b ? CliParsing.ParseBtree(b) : null,
                Level = lvl,
                Field = parse.GetValue(field),
                Mode = Enum.Parse<CorruptMode>(parse.GetValue(mode)!, ignoreCase: true),
                FixChecksum = parse.GetValue(fixCsum),
                Seed = parse.GetValue(seed),
                Seq = parse.GetValue(seq) is { } s ? ListJournalCommand.ParseSeqRange(s, "--seq") : null,
                Bucket = parse.GetValue(bucket) is { } n ? ParseBucket(n) : null,
                Pos = parse.GetValue(pos) is { } p ? CliParsing.ParsePosition(p, "--pos") : null,
                KeepChecksum = parse.GetValue(keepCsum),
            };
            var nodes = request.Target is CorruptTarget.Node or CorruptTarget.Bset or CorruptTarget.Key;
            if (!nodes && (request.Btree is not null || request.Level is not null))
                CliContext.Usage($"--btree and --level select nodes; they do not apply to --target {request.Target.ToText()}");
            if (!request.Target.IsJournal() && request.Seq is not null)
                CliContext.Usage($"--seq selects journal entries; it does not apply to --target {request.Target.ToText()}");
            if (!request.Target.IsValue() && (request.Bucket is not null || request.Pos is not null))
                CliContext.Usage($"--bucket and --pos select keys of alloc, backpointer, extent and data; they do not apply to --target {request.Target.ToText()}");
            if (request.Bucket is not null && request.Pos is not null)
                CliContext.Usage("--bucket and --pos exclude each other");
            if (request.KeepChecksum && (!request.Target.IsValue() || request.Target == CorruptTarget.Data))
                CliContext.Usage($"--keep-csum applies to --target alloc, backpointer and extent; not to --target {request.Target.ToText()}");
            if (request.KeepChecksum && request.FixChecksum)
                CliContext.Usage("--fix-csum and --keep-csum exclude each other");
            return Run(cli, CliParsing.ResolveImage(parse.GetValue(image)!), request);
        }));
        return command;
    }

    private static ulong ParseBucket(string text) =>
        ulong.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new BasaltException(ErrorCode.InvalidArgument, $"--bucket: '{text}' is not a bucket number");

    private static int Run(CliContext cli, string path, CorruptRequest request)
    {
        CliParsing.RequireExistingImage(path);
        using var device = FileBlockDevice.Open(path, readOnly: false);
        var result = ImageCorruptor.Corrupt(device, request);
        cli.Line($"corrupted {device.Name} (seed {request.Seed}, mode {request.Mode.ToString().ToLowerInvariant()})");
        foreach (var line in result.ToText().Split('\n'))
            cli.Line($"  {line}");
        return CliExitCodes.Ok;
    }
}
