// basalt debug load IMAGE [--seed N] [--threads N] [--value-bytes N] [--keys N]
//                         [--ops N | --seconds S] [--flush-every F]
// basalt debug load --verify IMAGE [--json] [--seed N] [--threads N] [--value-bytes N] [--keys N]
// A deterministic multi-threaded transaction load (LoadModel, LoadRunner) that prints `durable t i`
// whenever a flush covering transaction i of thread t has returned, and its checker (LoadVerifier):
// after any crash, every thread's recovered counter must be at least the last durable line printed
// for it, and the image must hold exactly the keys of transactions 1..k_t of every thread.
// --verify recovers read-only on an overlay (not one byte of the image changes) and exits like
// fsck: 0 verified, 1 differences, 8 the image cannot be opened or holds no load, 16 usage,
// 32 cancelled.
// A load that runs out of space (node space, journal, host ENOSPC) stops every thread, prints its
// summary and one "device full"/"journal full" error line, and exits 1; Ctrl-C or SIGTERM stops it
// after each thread's current transaction and unmounts cleanly (exit 0).
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;

namespace Basalt.Cli;

internal static class LoadCommand
{
    /// <summary>Differences listed in text; the rest are counted.</summary>
    private const int MaxShown = 20;

    /// <summary>Differences listed in the JSON document; the rest are counted.</summary>
    private const int MaxJson = 100;

    private const double MaxSeconds = 365 * 24 * 3600;

    public static Command Create(CliContext cli)
    {
        var seed = CliOptions.OptionalInt("--seed", null, $"workload seed (default {LoadParameters.DefaultSeed}; stored in the image)");
        var threads = CliOptions.OptionalInt("--threads", "-t", $"threads, 1..{LoadParameters.MaxThreads} (default {LoadParameters.DefaultThreads}; stored)",
            min: 1, max: LoadParameters.MaxThreads);
        var valueBytes = CliOptions.OptionalInt("--value-bytes", null,
            $"bytes per value, {LoadParameters.MinValueBytes}..{BkeyFormat.MaxValueBytes} and at most a quarter of the image's node size (default {LoadParameters.DefaultValueBytes}; stored)",
            min: LoadParameters.MinValueBytes, max: BkeyFormat.MaxValueBytes);
        var keys = CliOptions.OptionalInt("--keys", "-k", $"key slots per thread, 1..{LoadParameters.MaxKeys} (default {LoadParameters.DefaultKeys}; stored)",
            min: 1, max: LoadParameters.MaxKeys);
        var ops = CliOptions.OptionalInt("--ops", "-n", "transactions per thread in this run (default 1000)", min: 1);
        var seconds = Seconds();
        var flushEvery = CliOptions.OptionalInt("--flush-every", "-f", "every F-th transaction of a thread commits with a flush (default 1)", min: 1);
        var verify = new Option<bool>("--verify") { Description = "recover read-only and compare every key with what the counters call for (exit 0 verified, 1 differences)" };
        var json = new Option<bool>("--json") { Description = "with --verify: print one JSON document" };
        var image = new Argument<string>("IMAGE") { Description = "image file (formatted)" };
        var command = new Command("load", "run a multi-threaded transaction load that prints `durable t i` (Ctrl-C or SIGTERM stops it cleanly), or verify one after a crash")
        {
            seed, threads, valueBytes, keys, ops, seconds, flushEvery, verify, json, image,
        };
        command.SetAction(parse =>
        {
            var checking = parse.GetValue(verify);
            return Program.Execute(cli, () =>
            {
                var flags = new LoadFlags(parse.GetValue(seed), parse.GetValue(threads), parse.GetValue(valueBytes), parse.GetValue(keys));
                var path = CliParsing.ResolveImage(parse.GetValue(image)!);
                if (checking)
                {
                    foreach (var option in new Option[] { ops, seconds, flushEvery })
                    {
                        if (parse.GetResult(option) is { Implicit: false })
                            CliContext.Usage($"{option.Name} does not apply to --verify");
                    }
                    return Verify(cli, path, flags, parse.GetValue(json));
                }
                if (parse.GetValue(json))
                    CliContext.Usage("--json goes with --verify (a load prints durable lines)");
                var n = parse.GetValue(ops);
                var s = parse.GetValue(seconds);
                if (n is not null && s is not null)
                    CliContext.Usage("--ops and --seconds exclude each other");
                var options = new LoadRunOptions
                {
                    Transactions = s is null ? n ?? 1000 : null,
                    Duration = s is { } d ? TimeSpan.FromSeconds(d) : null,
                    FlushEvery = parse.GetValue(flushEvery) ?? 1,
                    Cancellation = cli.Cancellation,
                };
                return Load(cli, path, flags, options);
            }, fsckCodes: checking);
        });
        return command;
    }

    private static Option<double?> Seconds()
    {
        var option = new Option<double?>("--seconds", "-s") { Description = "run each thread for this many seconds (decimals allowed) instead of --ops" };
        option.CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) && value > 0 && value <= MaxSeconds)
                return value;
            result.AddError($"--seconds: '{text}' is not a number of seconds in (0, {MaxSeconds:0}]");
            return null;
        };
        return option;
    }

    // ---- load -----------------------------------------------------------------------------

    private static int Load(CliContext cli, string path, LoadFlags flags, LoadRunOptions options)
    {
        CliParsing.RequireExistingImage(path);
        // Every refusal is found on a read-only mount first: a refused load leaves the image as it was.
        using (var check = BasaltFileSystem.Mount(path, new MountOptions { ReadOnly = true }))
        {
            // A truncated image is read-only damage: only fsck repairs it.
            if (check.Truncation is { } truncation)
                throw new BasaltException(ErrorCode.ShortDevice, TruncatedDevice.RefusalText(truncation.Inner, truncation.Size));
            LoadRunner.Resolve(check, flags, out _);
        }
        LoadRunResult result;
        string name;
        string? unclean = null;
        using (var fs = BasaltFileSystem.Mount(path, cli.WritableMount))
        {
            name = fs.Device.Name;
            var p = LoadRunner.Prepare(fs, flags, out var created);
            var length = options.Transactions is { } n
                ? string.Create(CultureInfo.InvariantCulture, $"{n} transaction{(n == 1 ? "" : "s")} per thread")
                : string.Create(CultureInfo.InvariantCulture, $"{options.Duration!.Value.TotalSeconds:0.###} s");
            cli.Out.WriteLine($"load {name}: {p.ToText()} ({(created ? "stored in the image" : "read from the image")}); " +
                              $"{length}, a flush every {options.FlushEvery} transaction{(options.FlushEvery == 1 ? "" : "s")}");
            cli.Out.Flush();
            var gate = new object();
            result = LoadRunner.Run(fs, p, options, (thread, transaction) =>
            {
                // One write per line, flushed at once: a reader that is killed or killing sees whole lines.
                var line = string.Create(CultureInfo.InvariantCulture, $"durable {thread} {transaction}\n");
                lock (gate)
                {
                    cli.Out.Write(line);
                    cli.Out.Flush();
                }
            });
            if (result.Full is not null)
            {
                // Out of space, the unmount may not manage to write either; then the image is left as a
                // crash leaves it (consistent: the next mount replays its journal), and the line says so.
                try
                {
                    fs.Close(sync: true);
                    if (fs.Emergency.IsSet)
                        unclean = "a write failed and the filesystem went emergency read-only";
                }
                catch (BasaltException e)
                {
                    unclean = CliContext.OneLine(e.Message);
                }
            }
        }
        foreach (var t in result.Threads)
        {
            cli.Out.WriteLine(t.Count == 0
                ? string.Create(CultureInfo.InvariantCulture, $"thread {t.Thread}: no transactions (counter {t.Last})")
                : string.Create(CultureInfo.InvariantCulture,
                    $"thread {t.Thread}: transactions {t.First}..{t.Last}: {t.Inserts} inserts, {t.Overwrites} overwrites, {t.Deletes} deletes, {t.Flushes} flushes"));
        }
        var seconds = result.Elapsed.TotalSeconds;
        var rate = seconds > 0 ? result.Transactions / seconds : 0;
        var stopped = result.Full is { } f ? $", stopped: {FullText(f)}"
            : result.Interrupted ? $", stopped by {cli.StopSignal}"
            : "";
        var unmounted = unclean is null ? "unmounted cleanly" : "not unmounted cleanly (the next mount replays the journal)";
        cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"loaded {result.Transactions} transactions in {seconds:0.00} s ({rate:0} per second){stopped}; {unmounted}"));
        if (result.Full is not { } full)
            return CliExitCodes.Ok;
        // The one error line: what filled up, where the threads stopped, and the state of the image.
        var counters = result.Threads.Count <= 4
            ? string.Join(", ", result.Threads.Select(t => string.Create(CultureInfo.InvariantCulture, $"thread {t.Thread} at transaction {t.Last}")))
            : string.Create(CultureInfo.InvariantCulture, $"{result.Threads.Count} threads at transactions {result.Threads.Min(t => t.Last)}..{result.Threads.Max(t => t.Last)}");
        var image = unclean is null
            ? "the image was unmounted cleanly and holds every transaction up to those"
            : $"the image could not be unmounted cleanly ({unclean}); the next mount replays its journal, which holds every transaction printed durable";
        var detail = CliContext.OneLine(full.Message);
        if (detail.StartsWith($"{name}: ", StringComparison.Ordinal))
            detail = detail[(name.Length + 2)..];
        cli.Err.WriteLine($"{cli.CommandName}: {name}: {FullText(full)}: {detail}; the load stopped with {counters}; {image}");
        return CliExitCodes.Failure;
    }

    /// <summary>What ran out, in the words of the error line: the journal, or the device (node space, the host file system).</summary>
    private static string FullText(BasaltException full) => full.Code switch
    {
        ErrorCode.JournalFull => "journal full",
        _ => "device full",
    };

    // ---- verify ---------------------------------------------------------------------------

    private static int Verify(CliContext cli, string path, LoadFlags flags, bool json)
    {
        CliParsing.RequireExistingImage(path);
        using var fs = BasaltFileSystem.Mount(path, new MountOptions { ReadOnly = true });
        var p = ReadParameters(fs);
        flags.CheckAgainst(p, fs.Device.Name);
        var shown = new List<LoadDifference>();
        var limit = json ? MaxJson : MaxShown;
        var verification = LoadVerifier.Verify(fs, p, counters: null, d =>
        {
            if (shown.Count < limit)
                shown.Add(d);
        }, cli.Cancellation);
        var code = verification.Differences == 0 ? CliExitCodes.Ok : CliExitCodes.Failure;
        if (json)
        {
            var document = new LoadVerifyJson(fs.Device.Name, p.Seed, p.Threads, p.ValueBytes, p.Keys, fs.Recovery.ToText(),
                [.. verification.Threads.Select(t => new LoadThreadJson(t.Thread, t.Recovered, t.Keys, t.Differences))],
                verification.Keys, verification.Differences,
                [.. shown.Select(d => new LoadDifferenceJson(d.Thread, d.Pos.ToText(), d.KindText, d.Detail))], code);
            cli.Out.WriteLine(JsonSerializer.Serialize(document, LoadJsonContext.Default.LoadVerifyJson));
        }
        else
        {
            foreach (var t in verification.Threads)
                cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"recovered {t.Thread} {(t.Recovered is { } k ? k.ToString(CultureInfo.InvariantCulture) : "?")}"));
            foreach (var d in shown)
                cli.Line($"difference: {d.ToText()}", "red");
            if (verification.Differences > shown.Count)
                cli.Line(string.Create(CultureInfo.InvariantCulture, $"... and {verification.Differences - shown.Count} more differences"));
            cli.Line(string.Create(CultureInfo.InvariantCulture,
                    $"{(code == 0 ? "verified" : "verify FAILED:")} {fs.Device.Name}: {verification.Keys} keys in {p.Threads} thread range{(p.Threads == 1 ? "" : "s")}, " +
                    $"{verification.Differences} difference{(verification.Differences == 1 ? "" : "s")} ({p.ToText()}; recovery: {fs.Recovery.ToText()})"),
                code == 0 ? "green" : "red");
        }
        if (code != 0)
        {
            cli.Err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{cli.CommandName}: {fs.Device.Name}: {verification.Differences} difference{(verification.Differences == 1 ? "" : "s")} from the keys " +
                $"the counters call for; the first: {shown[0].ToText()}"));
        }
        return code;
    }

    /// <summary>The parameters stored by the image's first load; an error when there are none.</summary>
    internal static LoadParameters ReadParameters(BasaltFileSystem fs)
    {
        if (!fs.Btrees[BtreeId.Test].TryGet(LoadModel.ParametersPos, out var stored))
        {
            throw new BasaltException(ErrorCode.NotBasalt,
                $"{fs.Device.Name}: no load parameters in btree test at {LoadModel.ParametersPos.ToText()} (run basalt debug load on it first)");
        }
        return LoadParameters.Decode(stored);
    }
}

internal sealed record LoadThreadJson(int Thread, long? Recovered, long Keys, long Differences);

internal sealed record LoadDifferenceJson(int Thread, string Pos, string Kind, string Detail);

internal sealed record LoadVerifyJson(
    string Device,
    int Seed,
    int ThreadCount,
    int ValueBytes,
    int KeysPerThread,
    string Recovery,
    IReadOnlyList<LoadThreadJson> Threads,
    long Keys,
    long DifferenceCount,
    IReadOnlyList<LoadDifferenceJson> Differences,
    int ExitCode);

[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(LoadVerifyJson))]
internal sealed partial class LoadJsonContext : JsonSerializerContext;
