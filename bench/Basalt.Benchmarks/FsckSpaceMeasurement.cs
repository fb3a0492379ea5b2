// `Basalt.Benchmarks fsck-space`: the seven allocation/backpointer passes of fsck
// (SpaceChecks.Run, check-only) on a clean image holding N data extents, warm and cold, with the
// default memory budget and with bounded ones (--max-mem), which split passes 6 and 7 into rounds.
//
// The image is built once per extent count and kept under the temp directory
// (basalt-fsck-space-N/image, with a "ready" marker written after a clean unmount) so later runs
// reuse it; --clean deletes it first (and rebuilds). Building writes N 4 KiB blocks through
// fs.Data.Write, one transaction each (there is no path around the transaction), round-robin over
// N / 1000 inodes at every other 4 KiB offset, so no two extents are adjacent and every bucket
// holds extents of many inodes.
//
// Measured per budget: warm = one untimed run, then --runs timed runs on the same mount (page
// cache warm; the node cache holds every node only if its budget is large enough: --node-cache,
// default the engine's 64 MiB, which a million extents' trees, ~240 MiB of nodes, outgrow, so
// "warm" then still reads nodes from the page cache; the node reads column shows it); cold =
// unmount, `sync; echo 3 > /proc/sys/vm/drop_caches` (root; without it the run says so and cold
// rows are skipped), a fresh mount (cold node cache, timed separately), then one timed run. Every
// run must find nothing; any finding fails the command (exit 1).
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Basalt.Alloc;
using Basalt.Btree;
using Basalt.Fsck;
using Basalt.Fsck.Space;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.Benchmarks;

[BenchCommand("fsck-space")]
public static partial class FsckSpaceMeasurement
{
    private const int Block = 4096;
    private const int ExtentsPerInode = 1000;
    private const ulong FirstInode = 1000;
    private const string Usage = "fsck-space [--extents 1000000] [--max-mem 64M[,8M…]] [--runs 3] [--dir DIR] [--node-cache 64M] [--clean] [--warm-only]";

    public static int Run(string[] args)
    {
        long extents = 1_000_000;
        var budgets = new List<long> { 64L << 20 };
        var runs = 3;
        string? directory = null;
        var clean = false;
        var warmOnly = false;
        long? nodeCache = null;
        var nodeCacheList = new List<long>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--clean")
            {
                clean = true;
                continue;
            }
            if (args[i] == "--warm-only")
            {
                warmOnly = true;
                continue;
            }
            var value = i + 1 < args.Length ? args[i + 1] : null;
            var ok = value is not null && args[i] switch
            {
                "--extents" => long.TryParse(value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out extents) && extents > 0,
                "--max-mem" => TryParseSizes(value, budgets),
                "--node-cache" => TryParseSizes(value, nodeCacheList) && (nodeCache = nodeCacheList[0]) > 0,
                "--runs" => int.TryParse(value, out runs) && runs > 0,
                "--dir" => (directory = value) is not null,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine($"fsck-space: bad argument {args[i]} {value} ({Usage})");
                return 2;
            }
            i++;
        }
        directory ??= Environment.GetEnvironmentVariable("BASALT_BENCH_DIR") ?? Path.GetTempPath();
        var work = Path.Combine(directory, $"basalt-fsck-space-{extents}");
        if (clean && Directory.Exists(work))
        {
            Directory.Delete(work, recursive: true);
            Console.WriteLine($"deleted {work}");
        }
        Directory.CreateDirectory(work);
        var image = Path.Combine(work, "image");
        var ready = Path.Combine(work, "ready");
        var (load1, _, _) = BenchHost.LoadAverage();
        Console.WriteLine($"fsck-space: {extents:N0} extents, image {image}; load average {load1:F2}; {Environment.ProcessorCount} cores");
        if (!File.Exists(ready))
            Build(image, ready, extents);
        else
            Console.WriteLine($"reusing the image built {File.ReadAllText(ready).Trim()} (--clean rebuilds)");

        var canDrop = BenchHost.CanDropCaches();
        if (!canDrop)
            Console.WriteLine("cannot write /proc/sys/vm/drop_caches (not root): cold rows skipped");
        var rows = new List<Row>();
        var configs = new List<(string Name, long? MaxMem)> { ($"default ({Size(SpaceChecks.DefaultMaxMem)})", null) };
        configs.AddRange(budgets.Select(b => (Size(b), (long?)b)));
        var engine = new BtreeEngineOptions();
        if (nodeCache is { } budget)
            engine = engine with { CacheBudgetBytes = budget };
        Console.WriteLine($"node cache budget {Size(engine.CacheBudgetBytes)}{(nodeCache is null ? " (the default)" : "")}");
        var mountOptions = new MountOptions { Space = new SpaceOptions { BackgroundWorker = false }, Engine = engine };

        // Warm: one mount; each budget runs once untimed, then `runs` timed runs.
        using (var fs = BasaltFileSystem.Mount(image, mountOptions))
        {
            foreach (var (name, maxMem) in configs)
            {
                if (!Check(fs, maxMem, $"warm-up {name}", out _, out _, out _))
                    return 1;
                var row = new Row(name, "warm", maxMem);
                for (var r = 0; r < runs; r++)
                {
                    if (!Check(fs, maxMem, $"warm {name} run {r + 1}", out var seconds, out var allocated, out var nodeReads))
                        return 1;
                    row.Seconds.Add(seconds);
                    row.Allocated = allocated;
                    row.NodeReads = nodeReads;
                }
                rows.Add(row);
                Console.WriteLine($"   warm {name}: {string.Join(", ", row.Seconds.Select(s => $"{s:F3} s"))}");
            }
        }
        // Cold: for each budget, drop the page cache and mount again (cold node cache), one timed run.
        if (canDrop && !warmOnly)
        {
            foreach (var (name, maxMem) in configs)
            {
                BenchHost.DropCaches();
                var mountClock = Stopwatch.StartNew();
                using var fs = BasaltFileSystem.Mount(image, mountOptions);
                var mountSeconds = mountClock.Elapsed.TotalSeconds;
                if (!Check(fs, maxMem, $"cold {name}", out var seconds, out var allocated, out var nodeReads))
                    return 1;
                var row = new Row(name, "cold", maxMem) { Allocated = allocated, MountSeconds = mountSeconds, NodeReads = nodeReads };
                row.Seconds.Add(seconds);
                rows.Add(row);
                Console.WriteLine($"   cold {name}: mount {mountSeconds:F3} s, passes {seconds:F3} s");
            }
        }

        var (after, _, _) = BenchHost.LoadAverage();
        Console.WriteLine();
        Console.WriteLine($"fsck space passes (SpaceChecks.Run, check-only), {extents:N0} extents, nothing found in any run; " +
                          $"node cache {Size(engine.CacheBudgetBytes)}; load average {load1:F2} before, {after:F2} after");
        Console.WriteLine($"warm = median of {runs} runs after an untimed one on the same mount; cold = page cache dropped and a fresh mount (mount not included)");
        Console.WriteLine($"backpointer rounds of pass 7 = ceil(extents / (max-mem / 48)); goal: 1,000,000 extents in under 1 s warm, bounded ≤ 3× the default budget");
        Console.WriteLine();
        Console.WriteLine("| max-mem | cache | pass-7 rounds | seconds | extents/s | vs default budget | node reads | allocated |");
        Console.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in rows)
        {
            var seconds = BenchHost.Median(row.Seconds);
            var baseline = rows.First(r => r.Cache == row.Cache && r.MaxMem is null);
            var ratio = seconds / BenchHost.Median(baseline.Seconds);
            var perRound = Math.Max((row.MaxMem ?? SpaceChecks.DefaultMaxMem) / 48, 1);
            var rounds = (extents + perRound - 1) / perRound;
            var spread = row.Seconds.Count > 1 ? $" ({row.Seconds.Min():F3}–{row.Seconds.Max():F3})" : "";
            Console.WriteLine($"| {row.Name} | {row.Cache} | {rounds} | {seconds:F3}{spread} | {extents / seconds:N0} | {ratio:F2}× | {row.NodeReads:N0} | {Size(row.Allocated)} |");
        }
        var warmDefault = BenchHost.Median(rows.First(r => r.Cache == "warm" && r.MaxMem is null).Seconds);
        var scaled = warmDefault * 1_000_000 / extents;
        Console.WriteLine();
        Console.WriteLine($"goal 1,000,000 extents in < 1 s warm: {(scaled < 1 ? "met" : "not met")} " +
                          $"({warmDefault:F3} s for {extents:N0}{(extents == 1_000_000 ? "" : $", {scaled:F2} s per million at this rate")})");
        return 0;
    }

    private sealed class Row(string name, string cache, long? maxMem)
    {
        public string Name { get; } = name;
        public string Cache { get; } = cache;
        public long? MaxMem { get; } = maxMem;
        public List<double> Seconds { get; } = [];
        public long Allocated { get; set; }
        public double MountSeconds { get; set; }
        public long NodeReads { get; set; }
    }

    /// <summary>One check-only run of the seven passes; false (and the first findings printed) when anything was found.</summary>
    private static bool Check(BasaltFileSystem fs, long? maxMem, string what, out double seconds, out long allocated, out long nodeReads)
    {
        var readsBefore = fs.Btrees.Stats.NodeReads;
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        var clean = SpaceChecks.Run(fs, repair: false, out var findings, maxMem);
        seconds = clock.Elapsed.TotalSeconds;
        allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        nodeReads = fs.Btrees.Stats.NodeReads - readsBefore;
        if (clean)
            return true;
        Console.Error.WriteLine($"fsck-space: {what}: {findings.Count} findings on an image that must be clean:");
        foreach (var f in findings.Take(20))
            Console.Error.WriteLine($"  {f.Pass} {f.Name} {f.Where}: {f.Detail}");
        return false;
    }

    /// <summary>Formats the image and writes <paramref name="extents"/> separate 4 KiB extents, round-robin over inodes.</summary>
    private static void Build(string image, string ready, long extents)
    {
        if (File.Exists(image))
            File.Delete(image);
        var inodes = (extents + ExtentsPerInode - 1) / ExtentsPerInode;
        // Data: one 4 KiB block per extent; the rest (node area, journal) by format's defaults.
        var size = (extents * Block * 3 / 2) + (1L << 30);
        Console.WriteLine($"building: {extents:N0} extents of 4 KiB in {inodes:N0} inodes, image {size >> 20} MiB (sparse), 1 MiB buckets");
        var data = new byte[Block];
        new Random(8).NextBytes(data);
        var clock = Stopwatch.StartNew();
        using (var fs = BasaltFileSystem.Format(image, size, new FormatOptions { BlockSize = Block, BucketSize = 1 << 20 },
                   new MountOptions { Space = new SpaceOptions { BackgroundWorker = false } }))
        {
            long written = 0;
            for (long j = 0; written < extents; j++)
            {
                for (long n = 0; n < inodes && written < extents; n++)
                {
                    data[0] = (byte)written;
                    fs.Data.Write(FirstInode + (ulong)n, j * 2 * Block, data);
                    written++;
                    if (written % 100_000 == 0)
                        Console.WriteLine($"   {written:N0} extents, {clock.Elapsed.TotalSeconds:F0} s ({written / clock.Elapsed.TotalSeconds:N0}/s)");
                }
            }
            fs.Sync();
        }
        var seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"built in {seconds:F1} s ({extents / seconds:N0} extents/s, one transaction each)");
        File.WriteAllText(ready, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC in {seconds:F0} s\n");
    }

    private static bool TryParseSizes(string text, List<long> into)
    {
        into.Clear();
        foreach (var part in text.Split(','))
        {
            var shift = char.ToUpperInvariant(part[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, _ => 0 };
            if (!long.TryParse(shift == 0 ? part : part[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) || bytes <= 0)
                return false;
            into.Add(bytes << shift);
        }
        return into.Count > 0;
    }

    private static string Size(long bytes) => bytes >= 1L << 30 && bytes % (1L << 30) == 0 ? $"{bytes >> 30}G"
        : bytes >= 1L << 20 ? $"{bytes / (double)(1L << 20):0.#}M"
        : $"{bytes >> 10}K";
}
