// `Basalt.Benchmarks peers …`: runs the peer benchmarks in this one process and prints them side by
// side, or compares two earlier runs (bench/peers.sh --ab).
//   peers run [--out FILE] [--label TEXT] [BenchmarkDotNet args…]   run, print the table, save FILE
//                                                                    (added to FILE when it exists)
//   peers table FILE                                                 print the table of a saved run
//   peers compare FILE_A FILE_B                                      print A, B and A/B per row
// A saved run is tab-separated lines: `note NAME TEXT`, `setting PEER TEXT`,
// `size PEER WHEN ALLOCATED APPARENT`, `result BENCHMARK PEER UNIT MEDIAN BEST WORST ALLOC`, where
// rates are per second from the median, best and worst iteration and ALLOC is bytes per operation.
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Basalt.Benchmarks.Peers;

public static class PeerComparison
{
    private static readonly Type[] s_benchmarks = [typeof(PeerCommitBenchmarks), typeof(PeerLoadBenchmarks), typeof(PeerReadBenchmarks)];

    public static int Run(string[] args)
    {
        if (args.Length == 0)
            return Usage();
        switch (args[0])
        {
            case "run":
                return RunAll(args[1..]);
            case "table" when args.Length == 2:
                Console.Write(Table(PeerRun.Load(args[1])));
                return 0;
            case "compare" when args.Length == 3:
                Console.Write(Compare(PeerRun.Load(args[1]), PeerRun.Load(args[2])));
                return 0;
            default:
                return Usage();
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: peers run [--out FILE] [--label TEXT] [BenchmarkDotNet args...]");
        Console.Error.WriteLine("       peers table FILE");
        Console.Error.WriteLine("       peers compare FILE_A FILE_B");
        return 2;
    }

    private static int RunAll(string[] args)
    {
        string? output = null;
        var label = "this build";
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--out" && i + 1 < args.Length)
                output = args[++i];
            else if (args[i] == "--label" && i + 1 < args.Length)
                label = args[++i];
            else
                rest.Add(args[i]);
        }

        var run = new PeerRun();
        run.Notes["label"] = label;
        run.Notes["started"] = DateTimeOffset.Now.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture);
        run.Notes["loadavg-before"] = LoadAverage();
        run.Notes["machine"] = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}";
        run.Notes["directory"] = PeerSettings.BaseDirectory;
        run.Notes["keys"] = PeerSettings.Keys.ToString(CultureInfo.InvariantCulture);

        var summaries = BenchmarkRunner.Run(s_benchmarks, DefaultConfig.Instance, [.. rest]);

        run.Notes["loadavg-after"] = LoadAverage();
        foreach (var summary in summaries)
            run.AddResults(summary);
        foreach (var (peer, text) in PeerReport.Settings)
            run.Settings[peer] = text;
        foreach (var (peer, size) in PeerReport.Sizes)
            run.Sizes[peer] = size;

        if (output is not null)
        {
            var saved = File.Exists(output) ? PeerRun.Load(output) : new PeerRun();
            saved.Add(run);
            saved.Save(output);
        }
        Console.WriteLine();
        Console.Write(Table(run));
        return run.Results.Count == 0 || summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }

    /// <summary>One row per benchmark and peer with its rate and the ratios to RocksDB and to the raw device.</summary>
    public static string Table(PeerRun run)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Peer comparison: {run.Note("label")}, started {run.Note("started")}");
        text.AppendLine(CultureInfo.InvariantCulture, $"  {run.Note("machine")}; stores under {run.Note("directory")}; load average before {run.Note("loadavg-before")}, after {run.Note("loadavg-after")}");
        text.AppendLine();
        var rows = new List<string[]> { new[] { "benchmark", "peer", "rate (median)", "iterations (worst–best)", $"vs {PeerCatalog.Reference}", "vs raw", "alloc/op" } };
        foreach (var group in run.Combined().GroupBy(r => r.Benchmark).OrderBy(g => PeerRates.Of(g.Key).Order))
        {
            var reference = group.FirstOrDefault(r => r.Peer == PeerCatalog.Reference);
            var raw = group.FirstOrDefault(r => r.Peer == PeerCatalog.Raw);
            var title = PeerRates.Of(group.Key).Title;
            foreach (var r in group.OrderBy(r => PeerOrder(r.Peer)))
            {
                rows.Add([
                    title,
                    r.Peer,
                    $"{Rate(r.Median)} {r.Unit}",
                    $"{Rate(r.Worst)}–{Rate(r.Best)}" + (r.Rounds > 1 ? $" ({r.Rounds} rounds)" : ""),
                    reference is null ? "" : Ratio(r.Median, reference.Median),
                    raw is null ? "" : Ratio(r.Median, raw.Median),
                    r.AllocatedBytes < 0 ? "-" : Bytes(r.AllocatedBytes),
                ]);
                title = "";
            }
        }
        AppendColumns(text, rows, rightAligned: [2, 3, 4, 5, 6]);
        if (run.Sizes.Count > 0)
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"Store size on disk with {run.Note("keys")} keys (du: allocated / apparent):");
            foreach (var (peer, size) in run.Sizes.OrderBy(kv => PeerOrder(kv.Key)))
                text.AppendLine(CultureInfo.InvariantCulture, $"  {peer,-8} {Bytes(size.AllocatedBytes),10} / {Bytes(size.ApparentBytes),10}  ({size.When})");
        }
        if (run.Settings.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("Settings:");
            foreach (var (peer, setting) in run.Settings.OrderBy(kv => PeerOrder(kv.Key)))
                text.AppendLine(CultureInfo.InvariantCulture, $"  {peer,-8} {setting}");
        }
        return text.ToString();
    }

    /// <summary>Rows present in both runs: A's rate, B's rate and A/B; store sizes likewise.</summary>
    public static string Compare(PeerRun a, PeerRun b)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"A: {a.Note("label")}, started {a.Note("started")}, load average {a.Note("loadavg-before")} → {a.Note("loadavg-after")}");
        text.AppendLine(CultureInfo.InvariantCulture, $"B: {b.Note("label")}, started {b.Note("started")}, load average {b.Note("loadavg-before")} → {b.Note("loadavg-after")}");
        text.AppendLine();
        var rows = new List<string[]> { new[] { "benchmark", "peer", "A", "spread", "B", "spread", "A/B", "rounds" } };
        var combinedB = b.Combined();
        foreach (var group in a.Combined().GroupBy(r => r.Benchmark).OrderBy(g => PeerRates.Of(g.Key).Order))
        {
            var title = PeerRates.Of(group.Key).Title;
            foreach (var ra in group.OrderBy(r => PeerOrder(r.Peer)))
            {
                var rb = combinedB.FirstOrDefault(r => r.Benchmark == ra.Benchmark && r.Peer == ra.Peer);
                if (rb is null)
                    continue;
                rows.Add([title, ra.Peer, $"{Rate(ra.Median)} {ra.Unit}", Spread(ra), $"{Rate(rb.Median)} {rb.Unit}", Spread(rb), Ratio(ra.Median, rb.Median),
                    ra.Rounds > 1 || rb.Rounds > 1 ? $"{ra.Rounds}/{rb.Rounds}" : ""]);
                title = "";
            }
        }
        foreach (var (peer, sa) in a.Sizes.OrderBy(kv => PeerOrder(kv.Key)))
        {
            if (b.Sizes.TryGetValue(peer, out var sb))
                rows.Add(["store size (allocated)", peer, Bytes(sa.AllocatedBytes), "", Bytes(sb.AllocatedBytes), "", Ratio(sa.AllocatedBytes, sb.AllocatedBytes), ""]);
        }
        AppendColumns(text, rows, rightAligned: [2, 3, 4, 5, 6]);
        text.AppendLine();
        text.AppendLine("A/B above 1 means A is faster (rates) or larger (sizes). Spread: half the range between the");
        text.AppendLine("worst and best iteration (of any round), relative to the median; a ratio inside the spreads");
        text.AppendLine("is noise, and on a shared machine so is one that does not repeat over rounds (--rounds).");
        return text.ToString();
    }

    private static int PeerOrder(string peer) => peer switch
    {
        PeerCatalog.Raw => 0,
        PeerCatalog.RocksDb => 1,
        PeerCatalog.Lmdb => 2,
        _ => 3,
    };

    private static string Spread(PeerResult r) =>
        r.Median > 0 ? "±" + ((r.Best - r.Worst) / 2 / r.Median * 100).ToString("0", CultureInfo.InvariantCulture) + "%" : "";

    private static string Rate(double perSecond) => perSecond.ToString(perSecond >= 100 ? "N0" : "N1", CultureInfo.InvariantCulture);

    private static string Ratio(double a, double b) => b > 0 ? (a / b).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "";

    private static string Bytes(long bytes) => bytes switch
    {
        < 0 => "?",
        < 10 * 1024 => $"{bytes} B",
        < 10L * 1024 * 1024 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes / (1024.0 * 1024):0.0} MiB",
    };

    private static string LoadAverage()
    {
        try
        {
            var fields = File.ReadAllText("/proc/loadavg").Split(' ');
            return string.Join(' ', fields.Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static void AppendColumns(StringBuilder text, List<string[]> rows, int[] rightAligned)
    {
        var widths = new int[rows[0].Length];
        foreach (var row in rows)
        {
            for (var c = 0; c < row.Length; c++)
                widths[c] = Math.Max(widths[c], row[c].Length);
        }
        foreach (var row in rows)
        {
            var line = new StringBuilder("  ");
            for (var c = 0; c < row.Length; c++)
            {
                line.Append(rightAligned.Contains(c) ? row[c].PadLeft(widths[c]) : row[c].PadRight(widths[c]));
                line.Append("  ");
            }
            text.AppendLine(line.ToString().TrimEnd());
        }
    }
}

/// <summary>One benchmark result of one peer, as rates per second.</summary>
public sealed record PeerResult(string Benchmark, string Peer, string Unit, double Median, double Best, double Worst, long AllocatedBytes)
{
    /// <summary>How many rounds were combined into this result (1 for a single run).</summary>
    public int Rounds { get; init; } = 1;
}

/// <summary>A peer run: its notes, results, sizes and settings; saved and loaded as tab-separated lines.</summary>
public sealed class PeerRun
{
    public Dictionary<string, string> Notes { get; } = [];
    public List<PeerResult> Results { get; } = [];
    public Dictionary<string, StoreSize> Sizes { get; } = [];
    public Dictionary<string, string> Settings { get; } = [];

    public string Note(string name) => Notes.TryGetValue(name, out var value) ? value : "?";

    /// <summary>
    /// Adds a later run (bench/peers.sh runs the benchmark classes in parts, and A/B in alternating
    /// parts and rounds): its results join this run's, rounds of the same benchmark and peer are
    /// combined by <see cref="Combined"/>; the first run's start and the last run's end are kept.
    /// </summary>
    public void Add(PeerRun later)
    {
        foreach (var (name, value) in later.Notes)
        {
            if (name is not ("started" or "loadavg-before") || !Notes.ContainsKey(name))
                Notes[name] = value;
        }
        Results.AddRange(later.Results);
        foreach (var (peer, size) in later.Sizes)
            Sizes[peer] = size;
        foreach (var (peer, setting) in later.Settings)
            Settings[peer] = setting;
    }

    /// <summary>
    /// One result per benchmark and peer: with several rounds, the median of the rounds' medians and
    /// the worst and best iteration of any round; <see cref="PeerResult.Rounds"/> says how many.
    /// </summary>
    public List<PeerResult> Combined() =>
        [.. Results.GroupBy(r => (r.Benchmark, r.Peer)).Select(g =>
        {
            var medians = g.Select(r => r.Median).Order().ToArray();
            var median = medians.Length % 2 == 1 ? medians[medians.Length / 2] : (medians[(medians.Length / 2) - 1] + medians[medians.Length / 2]) / 2;
            return g.First() with { Median = median, Best = g.Max(r => r.Best), Worst = g.Min(r => r.Worst), Rounds = medians.Length };
        })];

    public void AddResults(Summary summary)
    {
        foreach (var report in summary.Reports)
        {
            var stats = report.ResultStatistics;
            if (stats is null || stats.Median <= 0)
                continue;
            var benchmark = report.BenchmarkCase.Descriptor.WorkloadMethod.Name;
            var peer = report.BenchmarkCase.Parameters["Peer"]?.ToString() ?? "?";
            var rate = PeerRates.Of(benchmark);
            var allocated = report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase) ?? -1;
            Results.Add(new PeerResult(benchmark, peer, rate.Unit, rate.PerSecond(stats.Median), rate.PerSecond(stats.Min), rate.PerSecond(stats.Max), allocated));
        }
    }

    public void Save(string path)
    {
        var text = new StringBuilder();
        foreach (var (name, value) in Notes)
            text.AppendLine(Line("note", name, value));
        foreach (var (peer, value) in Settings)
            text.AppendLine(Line("setting", peer, value));
        foreach (var (peer, size) in Sizes)
            text.AppendLine(Line("size", peer, size.When, Number(size.AllocatedBytes), Number(size.ApparentBytes)));
        foreach (var r in Results)
            text.AppendLine(Line("result", r.Benchmark, r.Peer, r.Unit, Number(r.Median), Number(r.Best), Number(r.Worst), Number(r.AllocatedBytes)));
        File.WriteAllText(path, text.ToString());
    }

    public static PeerRun Load(string path)
    {
        var run = new PeerRun();
        foreach (var line in File.ReadLines(path))
        {
            var f = line.Split('\t');
            switch (f[0])
            {
                case "note" when f.Length == 3:
                    run.Notes[f[1]] = f[2];
                    break;
                case "setting" when f.Length == 3:
                    run.Settings[f[1]] = f[2];
                    break;
                case "size" when f.Length == 5:
                    run.Sizes[f[1]] = new StoreSize(f[2], long.Parse(f[3], CultureInfo.InvariantCulture), long.Parse(f[4], CultureInfo.InvariantCulture));
                    break;
                case "result" when f.Length == 8:
                    run.Results.Add(new PeerResult(f[1], f[2], f[3], double.Parse(f[4], CultureInfo.InvariantCulture),
                        double.Parse(f[5], CultureInfo.InvariantCulture), double.Parse(f[6], CultureInfo.InvariantCulture),
                        long.Parse(f[7], CultureInfo.InvariantCulture)));
                    break;
                default:
                    throw new FormatException($"{path}: not a peer run line: {line}");
            }
        }
        return run;
    }

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Line(params string[] fields) => string.Join('\t', fields.Select(f => f.Replace('\t', ' ').Replace('\n', ' ')));
}
