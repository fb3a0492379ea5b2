// `Basalt.Benchmarks scan`: the node scan against a plain sequential read of the same region,
// with the page cache cold and warm, in one process. The target (docs/topology.md, "The node
// scan") is stated against a cold read: the scan takes at most 1.4× a cold sequential read of the
// region it scans. NodeScanBenchmarks measures both warm only; this command adds the cold pair.
//
// The region is NodeScanRegion (every 16 KiB slot a full valid leaf, --mib MiB of them). Each
// round runs the read and the scan cold, then both warm (the region was just read in full), the
// side that goes first alternating by round (read first in odd rounds) so neither always follows
// the other. The read is NodeScanRegion.SequentialRead (the scan's chunks, one read at a time);
// the scan is NodeScan.Run, the call the benchmark and check_topology make. Both read through the
// same descriptor, buffered, so the kernel's readahead serves both alike. Medians are quoted; the
// ratio is the median of the rounds' ratios, each measured side by side. Each side's CPU time
// (every thread of the process, user and kernel) is recorded too: on a machine shared with other
// work the wall times wander with the load, the CPU each side costs much less.
//
// Cold means: the region file's own pages dropped (posix_fadvise(POSIX_FADV_DONTNEED) after an
// fdatasync, root or not) and then counted with mincore, so a side that would start with any page
// of the region cached is reported, not timed as cold. The whole page cache is not dropped
// (drop_caches): that evicts every other file of the machine too, and the other work's re-reads
// then compete with the timed read. Before round 1 each side runs once untimed from a cold cache:
// the first read of a freshly written file often also misses the cache below the guest (a
// virtual disk's host page cache), which no guest can drop, and then takes 2-4× a later one.
// What stays: on a virtual disk served from the host's cache a cold read is CPU work (the host's
// copy and the guest kernel's), so its wall time follows the load of the cores.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Basalt.Btree;

namespace Basalt.Benchmarks;

[BenchCommand("scan")]
public static partial class ScanMeasurement
{
    private const double Target = 1.4;
    private const string Usage = "scan [--mib 256] [--rounds 5] [--dir DIR]";

    public static int Run(string[] args)
    {
        var mib = 256;
        var rounds = 5;
        string? directory = null;
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            var ok = value is not null && args[i] switch
            {
                "--mib" => int.TryParse(value, out mib) && mib > 0,
                "--rounds" => int.TryParse(value, out rounds) && rounds > 0,
                "--dir" => (directory = value) is not null,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine($"scan: bad argument {args[i]} {value} ({Usage})");
                return 2;
            }
            i++;
        }
        directory ??= Environment.GetEnvironmentVariable("BASALT_BENCH_DIR") ?? Path.GetTempPath();
        var work = Path.Combine(directory, $"basalt-scan-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            Measure(Path.Combine(work, "nodes.img"), mib, rounds);
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private sealed class Row(string cache)
    {
        public string Cache { get; } = cache;
        public List<double> ReadMs { get; } = [];
        public List<double> ScanMs { get; } = [];
        public List<double> ReadCpuMs { get; } = [];
        public List<double> ScanCpuMs { get; } = [];
        public List<double> Ratios { get; } = [];
    }

    private static void Measure(string path, int mib, int rounds)
    {
        var (loadBefore, _, _) = BenchHost.LoadAverage();
        const string method = "posix_fadvise(POSIX_FADV_DONTNEED) on the region file, checked with mincore";
        var slots = (int)((long)mib * 1024 * 1024 / NodeScanRegion.NodeSize);
        Console.WriteLine($"scan: {mib} MiB region of {slots:N0} full {NodeScanRegion.NodeSize >> 10} KiB leaves, {rounds} rounds, in {Path.GetDirectoryName(path)}; " +
                          $"load average {loadBefore:F2}; {Environment.ProcessorCount} cores");
        Console.WriteLine($"cold page cache: {method}");
        var clock = Stopwatch.StartNew();
        using var region = NodeScanRegion.Create(path, slots);
        Console.WriteLine($"region written and checked in {clock.Elapsed.TotalSeconds:F1} s");
        // Once each, untimed and cold: the JIT's first pass, and the first read from below the guest (see the header).
        MakeCold(region);
        var first = Stopwatch.StartNew();
        region.SequentialRead();
        var firstRead = first.Elapsed.TotalMilliseconds;
        MakeCold(region);
        first.Restart();
        Scan(region);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"untimed first pass, cold: read {firstRead:F1} ms, scan {first.Elapsed.TotalMilliseconds:F1} ms"));

        var cold = new Row("cold");
        var warm = new Row("warm");
        for (var round = 1; round <= rounds; round++)
        {
            var readFirst = round % 2 == 1;
            MeasurePair(region, cold, readFirst, () => MakeCold(region));
            // Warm: the region is read in full once more, so every page of it is cached whichever side ran last.
            region.SequentialRead();
            MeasurePair(region, warm, readFirst, static () => { });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"   round {round} ({(readFirst ? "read" : "scan")} first): cold read {cold.ReadMs[^1]:F1} ms, scan {cold.ScanMs[^1]:F1} ms, {cold.Ratios[^1]:F2}×; " +
                $"warm read {warm.ReadMs[^1]:F1} ms, scan {warm.ScanMs[^1]:F1} ms, {warm.Ratios[^1]:F2}×"));
        }

        var (loadAfter, _, _) = BenchHost.LoadAverage();
        Console.WriteLine();
        Console.WriteLine($"node scan vs sequential read of {mib} MiB ({NodeScan.ChunkBytes >> 20} MiB chunks), median of {rounds} rounds; " +
                          $"load average {loadBefore:F2} before, {loadAfter:F2} after; {clock.Elapsed.TotalSeconds:F0} s");
        Console.WriteLine($"cold = {method} before each side; warm = region read in full just before");
        Console.WriteLine();
        Console.WriteLine("| cache | read ms | read MB/s | scan ms | scan MB/s | scan / read | rounds' ratios | read CPU ms | scan CPU ms |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in new[] { cold, warm })
        {
            var read = BenchHost.Median(row.ReadMs);
            var scan = BenchHost.Median(row.ScanMs);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {row.Cache} | {read:F1} | {region.Length / read / 1e3:N0} | {scan:F1} | {region.Length / scan / 1e3:N0} | " +
                $"{BenchHost.Median(row.Ratios):F2}× | {row.Ratios.Min():F2}–{row.Ratios.Max():F2} | " +
                $"{BenchHost.Median(row.ReadCpuMs):F1} | {BenchHost.Median(row.ScanCpuMs):F1} |"));
        }
        Console.WriteLine();
        var ratio = BenchHost.Median(cold.Ratios);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"target: cold scan ≤ {Target:F1}× cold read: {(ratio <= Target ? "met" : "not met")} ({ratio:F2}×, rounds {cold.Ratios.Min():F2}–{cold.Ratios.Max():F2})"));
    }

    private static void MeasurePair(NodeScanRegion region, Row row, bool readFirst, Action prepare)
    {
        double read = 0, scan = 0, readCpu = 0, scanCpu = 0;
        using var process = Process.GetCurrentProcess();
        foreach (var isRead in readFirst ? new[] { true, false } : [false, true])
        {
            prepare();
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            if (isRead)
                region.SequentialRead();
            else
                Scan(region);
            var ms = clock.Elapsed.TotalMilliseconds;
            process.Refresh();
            var cpuMs = (process.TotalProcessorTime - cpu).TotalMilliseconds;
            if (isRead)
                (read, readCpu) = (ms, cpuMs);
            else
                (scan, scanCpu) = (ms, cpuMs);
        }
        row.ReadMs.Add(read);
        row.ScanMs.Add(scan);
        row.ReadCpuMs.Add(readCpu);
        row.ScanCpuMs.Add(scanCpu);
        row.Ratios.Add(scan / read);
    }

    /// <summary>Drops the region's pages from the page cache and checks that none is left.</summary>
    private static void MakeCold(NodeScanRegion region)
    {
        BenchHost.EvictFromPageCache(region.Path);
        var cached = CachedPages(region.Path, region.Length);
        if (cached != 0)
            throw new InvalidOperationException($"{cached} pages of {region.Path} still cached after POSIX_FADV_DONTNEED: not a cold read");
    }

    /// <summary>Pages of the first <paramref name="length"/> bytes of <paramref name="path"/> in the page cache (mincore over a mapping never touched).</summary>
    private static unsafe long CachedPages(string path, long length)
    {
        var fd = Open(path, 0x80000 /* O_RDONLY | O_CLOEXEC */);
        if (fd < 0)
            throw new IOException($"{path}: open failed (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            var map = MapShared(0, (nuint)length, 1 /* PROT_READ */, 1 /* MAP_SHARED */, fd, 0);
            if (map == -1)
                throw new IOException($"{path}: mmap failed (errno {Marshal.GetLastPInvokeError()})");
            try
            {
                var pages = (length + Environment.SystemPageSize - 1) / Environment.SystemPageSize;
                var resident = new byte[pages];
                fixed (byte* vector = resident)
                {
                    if (MinCore(map, (nuint)length, vector) != 0)
                        throw new IOException($"{path}: mincore failed (errno {Marshal.GetLastPInvokeError()})");
                }
                return resident.Count(static b => (b & 1) != 0);
            }
            finally
            {
                _ = Unmap(map, (nuint)length);
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint MapShared(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Unmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "mincore", SetLastError = true)]
    private static unsafe partial int MinCore(nint address, nuint length, byte* vector);

    /// <summary>The benchmark's scan; a region that does not come back whole is a broken measurement, not a slow one.</summary>
    private static void Scan(NodeScanRegion region)
    {
        var found = region.ScanNodes().Nodes.Count;
        if (found != region.Slots)
            throw new InvalidOperationException($"scan found {found} nodes in a region of {region.Slots}");
    }
}
