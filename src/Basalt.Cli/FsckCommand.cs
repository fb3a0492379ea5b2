// basalt fsck [-n|-y|-p] [-t] [--json] [--max-keys N] [--max-mem SIZE] IMAGE
// Modes follow fsck(8): -n checks only (the image is opened read-only and the repairing code
// runs on an overlay), -y repairs everything repairable, -p only what is safe; with no flag a
// terminal is asked per finding (y/n/Y/N), anything else is checked only and told so.
// Exit status: fsck(8) bit flags (0 clean, 1 corrected, 4 left, 8 operational, 16 usage, 32 cancelled).
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Basalt.Format;
using Basalt.Fsck;

namespace Basalt.Cli;

internal static class FsckCommand
{
    public static Command Create(CliContext cli)
    {
        var no = new Option<bool>("-n", "--no") { Description = "check only: open read-only, change nothing" };
        var yes = new Option<bool>("-y", "--yes") { Description = "repair everything that can be repaired" };
        var preen = new Option<bool>("-p", "--preen") { Description = "repair only what is safe (automatic repairs)" };
        var json = new Option<bool>("--json") { Description = "print one JSON document with every finding" };
        var timings = new Option<bool>("-t", "--timings") { Description = "print how long each pass took, and the whole run (as e2fsck -t); with --json, seconds per pass" };
        var maxKeys = CliOptions.OptionalInt("--max-keys", null, "lost keys --json lists by position (default 100; all are counted)", min: 0);
        var maxMem = new Option<string?>("--max-mem")
        {
            Description = "memory for the backpointer checks' tables, e.g. 512M (default a quarter of RAM, at most 1G); less memory means more passes",
        };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var command = new Command("fsck", "check and repair a Basalt filesystem") { no, yes, preen, json, timings, maxKeys, maxMem, image };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var flags = new[] { parse.GetValue(no), parse.GetValue(yes), parse.GetValue(preen) }.Count(f => f);
            if (flags > 1)
                CliContext.Usage("-n, -y and -p exclude each other; give at most one");
            var asJson = parse.GetValue(json);
            var implicitCheck = flags == 0 && (!cli.CanAsk || asJson);
            var mode = parse.GetValue(no) || implicitCheck ? FsckMode.CheckOnly
                : parse.GetValue(yes) ? FsckMode.Yes
                : parse.GetValue(preen) ? FsckMode.Preen
                : FsckMode.Ask;
            long? memory = null;
            if (parse.GetValue(maxMem) is { } memText)
            {
                if (!CliParsing.TryParseSize(memText, out var bytes, out var problem) || bytes <= 0)
                    CliContext.Usage($"--max-mem {memText}: {(problem.Length > 0 ? problem : "must be positive")}");
                memory = bytes;
            }
            return Run(cli, CliParsing.ResolveImage(parse.GetValue(image)!), mode, implicitCheck, asJson, parse.GetValue(timings),
                parse.GetValue(maxKeys) ?? 100, memory);
        }, fsckCodes: true));
        return command;
    }

    private static int Run(CliContext cli, string path, FsckMode mode, bool implicitCheck, bool json, bool timings, int maxKeys, long? maxMem)
    {
        var total = Stopwatch.StartNew();
        var passClock = new Stopwatch();
        var passSeconds = new List<(FsckPassInfo Pass, double Seconds)>();
        CliParsing.RequireExistingImage(path);
        if (!json)
        {
            cli.Line($"fsck {path}: {ModeText(mode, implicitCheck)}", "bold");
            if (implicitCheck)
                cli.Line("no -n/-y/-p given and no terminal to ask: checking only, nothing will be changed", "yellow");
        }
        var options = new FsckOptions
        {
            Mode = mode,
            ImplicitCheckOnly = implicitCheck,
            CheckWriteOnce = cli.CheckWriteOnce,
            MaxLostKeys = maxKeys,
            MaxMem = maxMem ?? Basalt.Fsck.Space.SpaceChecks.DefaultMaxMem,
            Cancellation = cli.Cancellation,
            Ask = mode == FsckMode.Ask ? f => Ask(cli, f) : null,
            OnPassStarted = p =>
            {
                passClock.Restart();
                if (!json)
                    cli.Line($"pass {(byte)p.Id} {p.Name}: {p.Description}", "blue");
            },
            OnPassFinished = (p, n) =>
            {
                passSeconds.Add((p, passClock.Elapsed.TotalSeconds));
                if (!json)
                    cli.Line($"pass {(byte)p.Id} {p.Name}: {(n == 0 ? "ok" : $"{n} finding{(n == 1 ? "" : "s")}")}{(timings ? $" ({Seconds(passClock.Elapsed.TotalSeconds)})" : "")}");
            },
            OnFinding = json ? null : f => cli.Line($"  {f.ToText()}", f.Corrected ? "green" : "red"),
        };

        var report = Basalt.Fsck.Fsck.Run(path, options);
        if (json)
        {
            var document = ToJson(report);
            if (timings)
            {
                document = document with
                {
                    PassSeconds = passSeconds.ToDictionary(t => t.Pass.Name, t => Math.Round(t.Seconds, 3)),
                    Seconds = Math.Round(total.Elapsed.TotalSeconds, 3),
                };
            }
            JsonOutput.Write(cli.Out, document);
            return report.ExitCode;
        }
        if (report.SuperblockNote is { } note)
            cli.Line($"superblock: {note}", "yellow");
        foreach (var (what, count) in report.Counters.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            cli.Line($"counted (not an error): {what}: {count}");
        if (report.LostKeyCount > 0)
        {
            cli.Line($"keys lost by the repairs: {report.LostKeyCount} (--json lists up to --max-keys of them; keys under unreadable nodes are not counted)",
                "yellow");
        }
        cli.Line(Summary(report), report.Clean ? "green" : report.Uncorrected > 0 ? "red" : "yellow");
        if (report.CountersPersisted)
            cli.Line("error counters recorded in the superblock");
        if (timings)
            cli.Line($"time: {Seconds(total.Elapsed.TotalSeconds)} in all, {Seconds(passSeconds.Sum(t => t.Seconds))} in the passes");
        return report.ExitCode;
    }

    private static string Seconds(double seconds) => seconds.ToString("0.000 's'", CultureInfo.InvariantCulture);

    internal static string ModeText(FsckMode mode, bool implicitCheck) => mode switch
    {
        FsckMode.CheckOnly => implicitCheck ? "check only (no flag, not a terminal)" : "check only (-n)",
        FsckMode.Yes => "repair everything (-y)",
        FsckMode.Preen => "repair what is safe (-p)",
        _ => "ask before each repair",
    };

    internal static string Summary(FsckReport report)
    {
        if (report.Clean)
            return $"{report.Device}: clean";
        var kinds = report.CountsById.Count;
        var text = $"{report.Device}: {report.Findings.Count} finding{(report.Findings.Count == 1 ? "" : "s")} " +
                   $"({kinds} kind{(kinds == 1 ? "" : "s")}): {report.Corrected} corrected, {report.Uncorrected} left uncorrected";
        if (report.Findings.Any(f => f.Outcome == FsckOutcome.Held))
            text += "; repairs were held and nothing was written: the device is shorter than the filesystem (see the first finding)";
        else if (report.Mode == FsckMode.CheckOnly && report.Findings.Any(f => f.Outcome == FsckOutcome.WouldFix))
            text += "; nothing was changed (run fsck -y to repair)";
        return text;
    }

    private static FsckAnswer Ask(CliContext cli, FsckFinding finding)
    {
        var input = cli.Terminal.Input!;
        while (true)
        {
            cli.Out.Write($"  {finding.Name} at {finding.Where}: {finding.Detail}; fix? [y]es, [n]o, [Y]es to all, [N]o to all: ");
            cli.Out.Flush();
            var line = input.ReadLine();
            switch (line?.Trim())
            {
                case null: return FsckAnswer.NoToAll;
                case "y" or "yes": return FsckAnswer.Yes;
                case "n" or "no": return FsckAnswer.No;
                case "Y": return FsckAnswer.YesToAll;
                case "N": return FsckAnswer.NoToAll;
            }
        }
    }

    internal static FsckJson ToJson(FsckReport report) => new(
        Device: report.Device,
        Mode: report.Mode.ToString(),
        ImplicitCheckOnly: report.ImplicitCheckOnly,
        Passes: [.. report.Passes.Select(p => p.Name)],
        SuperblockNote: report.SuperblockNote,
        Findings: [.. report.Findings.Select(f => new FindingJson((ushort)f.Id, f.Name,
            f.Pass is { } p ? FsckCatalogue.Passes.First(x => x.Id == p).Name : null,
            FsckDocs.PolicyText(f.Info.Policy), f.Where, f.Detail, f.OutcomeText, f.Corrected))],
        Counts: [.. report.CountsById.OrderBy(kv => kv.Key).Select(kv => new FsckCountJson((ushort)kv.Key, FsckCatalogue.NameOf(kv.Key), kv.Value))],
        Counters: report.Counters,
        Corrected: report.Corrected,
        Uncorrected: report.Uncorrected,
        CountersPersisted: report.CountersPersisted,
        LostKeys: [.. report.LostKeys.Select(k => new LostKeyJson(k.Btree.ToText(), k.Pos.ToText()))],
        LostKeysTotal: report.LostKeyCount,
        ExitCode: report.ExitCode);
}
