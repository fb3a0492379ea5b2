// `Basalt.Benchmarks replay`: mount time and replay rate after a crash with a nearly full journal,
// phase by phase, with the page cache warm and (when the process may drop caches) cold.
// The image is built as JournalReplayBenchmarks builds it (16 GiB, 128 MiB journal, 100-key
// transactions of random keys, no write-back, closed as a crash leaves it); each mount is
// read-only, so every mount recovers the same crash.
using System.Diagnostics;
using Basalt.Btree;
using Basalt.Fs;

namespace Basalt.Benchmarks;

[BenchCommand("replay")]
public static class ReplayMeasurement
{
    private const string DropCaches = "/proc/sys/vm/drop_caches";

    public static int Run(string[] args)
    {
        var mounts = 5;
        string? directory = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--mounts" when i + 1 < args.Length && int.TryParse(args[i + 1], out var n) && n > 0:
                    mounts = n;
                    i++;
                    break;
                case "--dir" when i + 1 < args.Length:
                    directory = args[++i];
                    break;
                default:
                    Console.Error.WriteLine($"replay: unknown argument {args[i]} (replay [--mounts N] [--dir DIR])");
                    return 2;
            }
        }
        directory ??= Environment.GetEnvironmentVariable("BASALT_BENCH_DIR") ?? Path.GetTempPath();
        var work = Path.Combine(directory, $"basalt-replay-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            var image = Path.Combine(work, "image");
            var clock = Stopwatch.StartNew();
            var (transactions, stats) = JournalReplayBenchmarks.CrashWithFullJournal(image);
            Console.WriteLine($"crashed image: 16 GiB, {transactions} transactions of 100 keys in {clock.Elapsed.TotalSeconds:F1} s; journal {stats.ToText()}");
            var canDrop = CanDropCaches();
            foreach (var cold in canDrop ? new[] { false, true } : [false])
            {
                var rates = new List<double>();
                var times = new List<double>();
                for (var m = 0; m < mounts; m++)
                {
                    if (cold)
                        DropPageCache();
                    using var fs = BasaltFileSystem.Mount(image, new MountOptions
                    {
                        ReadOnly = true,
                        Engine = new BtreeEngineOptions { CacheBudgetBytes = 4L * 1024 * 1024 * 1024 },
                    });
                    var r = fs.Recovery;
                    var rate = r.KeysReplayed / r.Elapsed.TotalSeconds;
                    rates.Add(rate);
                    times.Add(r.Elapsed.TotalMilliseconds);
                    Console.WriteLine($"{(cold ? "cold" : "warm")} mount {m + 1}: {r.Elapsed.TotalMilliseconds:F0} ms for {r.KeysReplayed} keys " +
                                      $"({rate:N0} keys/s); scan {r.ScanElapsed.TotalMilliseconds:F0} ms ({r.JournalBytesRead >> 20} MiB), " +
                                      $"plan {r.PlanElapsed.TotalMilliseconds:F0} ms, replay {r.ReplayElapsed.TotalMilliseconds:F0} ms");
                }
                times.Sort();
                rates.Sort();
                Console.WriteLine($"{(cold ? "cold" : "warm")} page cache, median of {mounts}: mount {times[mounts / 2]:F0} ms, {rates[mounts / 2]:N0} keys/s");
            }
            if (!canDrop)
                Console.WriteLine($"cold page cache: not measured ({DropCaches} is not writable; run as root)");
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static bool CanDropCaches()
    {
        try
        {
            DropPageCache();
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void DropPageCache()
    {
        using (Process.Start("sync")!)
        {
        }
        File.WriteAllText(DropCaches, "3\n");
    }
}
