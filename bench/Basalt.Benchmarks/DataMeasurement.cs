// `Basalt.Benchmarks data`: the data path against the raw file it sits on, as ratios measured in
// one process on one host filesystem. Basalt writes and reads one inode through ExtentStore
// (checksummed runs of at most 64 KiB, every read verified); "raw" is a plain file of the same
// size in the same directory, written and read with RandomAccess (pread/pwrite) in the same chunk
// sizes and made durable with fdatasync, the primitive FileBlockDevice.Flush uses.
//
// Operations, each raw then Basalt (sequential ones alternate), repeated --rounds times (median quoted):
//   sequential write  SIZE in 1 MiB writes, then Sync / fdatasync (the timing includes the flush)
//   sequential read   SIZE in 1 MiB reads, page cache cold (dropped before each read), each side
//                     twice in the order A B B A
//   random 4 KiB      a file of RANDOM-SIZE written by 4 KiB writes in random order (each its own
//                     extent), then Sync; 4 KiB random reads of it, page cache warm and cold
//   random 64 KiB     64 KiB-aligned random reads of the sequential file (one run per read), warm and cold
//
// Cold: `sync; echo 3 > /proc/sys/vm/drop_caches` when the process may write it (root), else
// posix_fadvise(POSIX_FADV_DONTNEED) over the image and the raw file; the table says which. Before
// a cold Basalt phase the filesystem is remounted too, so its node cache is cold as well. Warm is
// measured twice: "files read" after each file was read in full through its own interface, and
// "devices read" after the page cache was dropped and the raw file and the whole image were read
// in full in order. The two differ in the page cache, not in Basalt: read through Basalt, the
// runs of a randomly written file lie scattered over the image, so the kernel caches the image in
// 4 KiB pages, while the raw file read in order gets large folios and each pread of it is cheaper
// (about 15% for 4 KiB). "Devices read" gives both the same page cache, so the ratio is
// Basalt's own cost. In both, Basalt's node cache holds the extents, and 20,000
// untimed reads of each side ran first (so both loops run optimised code when timed); the timed
// reads alternate between the sides in slices of 1,000, so a busy moment of the machine falls on
// both sides alike instead of on whichever side ran then.
using System.Diagnostics;
using System.Globalization;
using Basalt.Benchmarks.Peers;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;
using Microsoft.Win32.SafeHandles;

namespace Basalt.Benchmarks;

[BenchCommand("data")]
public static class DataMeasurement
{
    private const int Chunk = 1024 * 1024;
    private const int Small = 4096;
    private const int Run64K = 64 * 1024;
    /// <summary>Warm random reads timed per side before the other side's turn.</summary>
    private const int WarmSlice = 1000;
    private const ulong SequentialInode = 1;
    private const ulong RandomInode = 2;
    private const string Usage = "data [--size 1G] [--random-size 256M] [--rounds 3] [--warm-reads 100000] [--cold-reads 10000] " +
                                 "[--checksum crc32c|xxhash64] [--dir DIR]";

    public static int Run(string[] args)
    {
        var o = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            var ok = value is not null && args[i] switch
            {
                "--size" => BenchHost.TryParseSize(value, out o.Size),
                "--random-size" => BenchHost.TryParseSize(value, out o.RandomSize),
                "--rounds" => int.TryParse(value, out o.Rounds) && o.Rounds > 0,
                "--warm-reads" => int.TryParse(value, out o.WarmReads) && o.WarmReads > 0,
                "--cold-reads" => int.TryParse(value, out o.ColdReads) && o.ColdReads > 0,
                "--checksum" => Checksums.TryParse(value, out o.Checksum) && o.Checksum != ChecksumType.None,
                "--dir" => (o.Directory = value) is not null,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine($"data: bad argument {args[i]} {value} ({Usage})");
                return 2;
            }
            i++;
        }
        if (o.Size % Chunk != 0 || o.RandomSize % Run64K != 0 || o.Size < Chunk || o.RandomSize < Run64K)
        {
            Console.Error.WriteLine("data: --size must be a multiple of 1 MiB, --random-size of 64 KiB");
            return 2;
        }
        var directory = o.Directory ?? Environment.GetEnvironmentVariable("BASALT_BENCH_DIR") ?? Path.GetTempPath();
        var work = Path.Combine(directory, $"basalt-data-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            using var run = new Measurement(o, work);
            run.Execute();
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private sealed class Options
    {
        public long Size = 1L << 30;
        public long RandomSize = 256L << 20;
        public int Rounds = 3;
        public int WarmReads = 100_000;
        public int ColdReads = 10_000;
        public ChecksumType Checksum = ChecksumType.Crc32C;
        public string? Directory;
    }

    /// <summary>One row of the table: per round, the rate of each side (MB/s or IOPS) and bytes allocated per Basalt operation.</summary>
    private sealed class Row(string operation, string cache, string unit)
    {
        public string Operation { get; } = operation;
        public string Cache { get; } = cache;
        public string Unit { get; } = unit;
        public List<double> Basalt { get; } = [];
        public List<double> Raw { get; } = [];
        public List<double> AllocatedPerOp { get; } = [];
    }

    private sealed class Measurement : IDisposable
    {
        private readonly Options _o;
        private readonly string _image;
        private readonly string _rawSequential;
        private readonly string _rawRandom;
        private readonly byte[] _chunk = GC.AllocateArray<byte>(Chunk, pinned: true);
        private readonly byte[] _small = GC.AllocateArray<byte>(Run64K, pinned: true);
        private readonly bool _canDropCaches;
        private BasaltFileSystem? _fs;

        private readonly Row _seqWrite = new("sequential write 1 MiB + sync", "cold (fresh file)", "MB/s");
        private readonly Row _seqRead = new("sequential read 1 MiB", "cold", "MB/s");
        private readonly Row _randWrite = new("random write 4 KiB + sync", "cold (fresh file)", "IOPS");
        private readonly Row _rand4Warm = new("random read 4 KiB (4 KiB extents)", "warm (files read)", "IOPS");
        private readonly Row _rand4WarmDevice = new("random read 4 KiB (4 KiB extents)", "warm (devices read)", "IOPS");
        private readonly Row _rand4Cold = new("random read 4 KiB (4 KiB extents)", "cold", "IOPS");
        private readonly Row _rand64Warm = new("random read 64 KiB (64 KiB extents)", "warm (files read)", "IOPS");
        private readonly Row _rand64WarmDevice = new("random read 64 KiB (64 KiB extents)", "warm (devices read)", "IOPS");
        private readonly Row _rand64Cold = new("random read 64 KiB (64 KiB extents)", "cold", "IOPS");

        public Measurement(Options o, string work)
        {
            _o = o;
            _image = Path.Combine(work, "image");
            _rawSequential = Path.Combine(work, "raw-sequential");
            _rawRandom = Path.Combine(work, "raw-random");
            new Random(5).NextBytes(_chunk);
            new Random(6).NextBytes(_small);
            _canDropCaches = BenchHost.CanDropCaches();
        }

        private BasaltFileSystem Fs => _fs!;

        private string CacheMethod => BenchHost.DropCachesMethod(_canDropCaches, "the image and the raw files");

        public void Execute()
        {
            var (load1, _, _) = BenchHost.LoadAverage();
            var clock = Stopwatch.StartNew();
            Console.WriteLine($"data: {_o.Size >> 20} MiB sequential, {_o.RandomSize >> 20} MiB random-write file, {_o.Rounds} rounds, " +
                              $"{_o.Checksum.ToText()} data checksums, in {Path.GetDirectoryName(_image)}; load average {load1:F2}");
            Console.WriteLine($"cold page cache: {CacheMethod}");
            // Room for every round's copy-on-write rewrite of the sequential file without waiting for reuse (sparse: only written bytes are allocated).
            var imageSize = ((long)_o.Rounds + 1) * _o.Size + (2 * _o.RandomSize) + (512L << 20);
            _fs = BasaltFileSystem.Format(_image, imageSize, new FormatOptions
            {
                BlockSize = 4096,
                BucketSize = 1024 * 1024,
                NodeSize = 256 * 1024,
                NodeAreaBuckets = 256,
                DataChecksumType = _o.Checksum,
            });
            for (var round = 1; round <= _o.Rounds; round++)
            {
                Console.WriteLine($"-- round {round}");
                SequentialWrite(round);
                SequentialRead(round);
                if (round == 1)
                {
                    var extents = Fs.Data.Map(SequentialInode, 0, (ulong)(_o.Size / FormatLimits.SectorSize)).Count();
                    Console.WriteLine($"   sequential file: {extents} extents ({_o.Size / extents >> 10} KiB each on average)");
                }
                RandomWrite();
                RandomReads(_rand4Warm, _rand4WarmDevice, _rand4Cold, RandomInode, _rawRandom, _o.RandomSize, Small, round);
                RandomReads(_rand64Warm, _rand64WarmDevice, _rand64Cold, SequentialInode, _rawSequential, _o.Size, Run64K, round);
            }
            var (after, _, _) = BenchHost.LoadAverage();
            Console.WriteLine();
            Console.WriteLine($"data path, {_o.Checksum.ToText()}, median of {_o.Rounds} rounds; load average {load1:F2} before, {after:F2} after; " +
                              $"{clock.Elapsed.TotalSeconds:F0} s");
            Console.WriteLine($"cold = page cache dropped ({CacheMethod}) and Basalt remounted; " +
                              "warm (files read) = each file read in full just before; warm (devices read) = page cache dropped, then the raw file and the whole image read in full in order");
            Console.WriteLine();
            Console.WriteLine("| operation | cache | Basalt | raw | unit | Basalt / raw | per round | Basalt allocated per op |");
            Console.WriteLine("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |");
            foreach (var row in new[] { _seqWrite, _seqRead, _randWrite, _rand4Warm, _rand4WarmDevice, _rand4Cold, _rand64Warm, _rand64WarmDevice, _rand64Cold })
            {
                // The ratio is the median of the rounds' ratios (each measured side by side), not a ratio of medians.
                var ratios = row.Basalt.Zip(row.Raw, (b, r) => b / r).ToList();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {row.Operation} | {row.Cache} | {BenchHost.Median(row.Basalt):N0} | {BenchHost.Median(row.Raw):N0} | {row.Unit} | " +
                    $"{BenchHost.Median(ratios):F2}× | {ratios.Min():F2}–{ratios.Max():F2} | {FormatBytes(BenchHost.Median(row.AllocatedPerOp))} |"));
            }
            Console.WriteLine();
            Console.WriteLine($"checksum errors {Fs.Data.ChecksumErrors}, stale pointers skipped {Fs.Data.StaleSkipped}");
        }

        // ---- Sequential ----------------------------------------------------------------------

        // Sequential: the side that goes first alternates by round (raw first in odd rounds), so
        // neither side always follows the other's writes or reads (the disk and the host's own
        // cache, which the guest's drop_caches does not reach, remember what was written last).

        private void SequentialWrite(int round)
        {
            File.Delete(_rawSequential);
            double raw = 0, basalt = 0;
            long allocated = 0;
            foreach (var basaltSide in SideOrder(round))
            {
                DropCaches();
                if (!basaltSide)
                {
                    raw = Time(() =>
                    {
                        using var file = File.OpenHandle(_rawSequential, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
                        for (long at = 0; at < _o.Size; at += Chunk)
                            RandomAccess.Write(file, _chunk, at);
                        RawDevicePeer.FdataSync(file);
                    });
                    continue;
                }
                allocated = GC.GetAllocatedBytesForCurrentThread();
                basalt = Time(() =>
                {
                    for (long at = 0; at < _o.Size; at += Chunk)
                        Fs.Data.Write(SequentialInode, at, _chunk);
                    Fs.Sync();
                });
                allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
            }
            Record(_seqWrite, _o.Size / basalt / 1e6, _o.Size / raw / 1e6, allocated, _o.Size / Chunk);
        }

        /// <summary>Each side read twice, in the order A B B A, so neither side always reads first; the rate is over both reads.</summary>
        private void SequentialRead(int round)
        {
            double raw = 0, basalt = 0;
            long allocated = 0;
            var order = SideOrder(round);
            foreach (var basaltSide in order.Concat(order.Reverse()))
            {
                if (!basaltSide)
                {
                    DropCaches();
                    raw += Time(() =>
                    {
                        using var file = File.OpenHandle(_rawSequential, FileMode.Open, FileAccess.Read, FileShare.Read);
                        for (long at = 0; at < _o.Size; at += Chunk)
                            ReadFully(file, _chunk, at);
                    });
                    continue;
                }
                Remount();
                DropCaches();
                var before = GC.GetAllocatedBytesForCurrentThread();
                basalt += Time(() =>
                {
                    for (long at = 0; at < _o.Size; at += Chunk)
                        Fs.Data.Read(SequentialInode, at, _chunk);
                });
                allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            }
            Record(_seqRead, 2 * _o.Size / basalt / 1e6, 2 * _o.Size / raw / 1e6, allocated, 2 * _o.Size / Chunk);
        }

        /// <summary>False = raw, true = Basalt: raw first in odd rounds, Basalt first in even ones.</summary>
        private static bool[] SideOrder(int round) => round % 2 == 1 ? [false, true] : [true, false];

        // ---- Random ----------------------------------------------------------------------------

        private void RandomWrite()
        {
            var blocks = (int)(_o.RandomSize / Small);
            var order = Permutation(blocks, 11);
            var block = _small.AsMemory(0, Small);
            File.Delete(_rawRandom);
            Fs.Data.DeleteAll(RandomInode);
            Fs.Sync();
            DropCaches();
            var raw = Time(() =>
            {
                using var file = File.OpenHandle(_rawRandom, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
                foreach (var b in order)
                    RandomAccess.Write(file, block.Span, (long)b * Small);
                RawDevicePeer.FdataSync(file);
            });
            DropCaches();
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            var basalt = Time(() =>
            {
                foreach (var b in order)
                    Fs.Data.Write(RandomInode, (long)b * Small, block.Span);
                Fs.Sync();
            });
            Record(_randWrite, blocks / basalt, blocks / raw, GC.GetAllocatedBytesForCurrentThread() - allocated, blocks);
        }

        /// <summary>
        /// Random aligned reads of <paramref name="size"/>: warm twice (after a full read of each file,
        /// then after a full read of each device), then cold (caches dropped, Basalt remounted).
        /// </summary>
        private void RandomReads(Row warmFile, Row warmDevice, Row cold, ulong inode, string rawPath, long size, int readSize, int round)
        {
            var slots = (int)(size / readSize);
            using (var file = File.OpenHandle(rawPath, FileMode.Open, FileAccess.Read, FileShare.Read))
            {
                var warmOrder = Slots(slots, _o.WarmReads, 100 + round);
                // Warm through the files: each file read in full just before, the way a reader would.
                for (long at = 0; at < size; at += Chunk)
                    ReadFully(file, _chunk.AsSpan(0, (int)Math.Min(Chunk, size - at)), at);
                for (long at = 0; at < size; at += Chunk)
                    Fs.Data.Read(inode, at, _chunk.AsSpan(0, (int)Math.Min(Chunk, size - at)));
                TimeWarmReads(warmFile, file, inode, warmOrder, readSize);
                // Warm through the devices: the page cache dropped, then the raw file and the whole
                // image read in full, sequentially, so both hold their bytes in the page cache in the
                // same way. (Read through Basalt, the image is read at the runs' scattered device
                // offsets, and the page cache keeps it in 4 KiB pages where the raw file, read in
                // order, gets large folios that make each pread cheaper.)
                DropCaches();
                for (long at = 0; at < size; at += Chunk)
                    ReadFully(file, _chunk.AsSpan(0, (int)Math.Min(Chunk, size - at)), at);
                var device = Fs.Device;
                for (long at = 0; at < device.Size; at += Chunk)
                    device.Read(at, _chunk.AsSpan(0, (int)Math.Min(Chunk, device.Size - at)));
                TimeWarmReads(warmDevice, file, inode, warmOrder, readSize);
            }
            // Cold: distinct slots only, so no read finds what an earlier one brought in.
            var coldOrder = Permutation(slots, 200 + round).AsSpan(0, Math.Min(slots, _o.ColdReads)).ToArray();
            DropCaches();
            var rawCold = Time(() =>
            {
                using var file = File.OpenHandle(rawPath, FileMode.Open, FileAccess.Read, FileShare.Read);
                foreach (var s in coldOrder)
                    ReadFully(file, _small.AsSpan(0, readSize), (long)s * readSize);
            });
            Remount();
            DropCaches();
            var before = GC.GetAllocatedBytesForCurrentThread();
            var basaltCold = Time(() =>
            {
                foreach (var s in coldOrder)
                    Fs.Data.Read(inode, (long)s * readSize, _small.AsSpan(0, readSize));
            });
            Record(cold, coldOrder.Length / basaltCold, coldOrder.Length / rawCold, GC.GetAllocatedBytesForCurrentThread() - before, coldOrder.Length);
        }

        /// <summary>
        /// Times warm reads of <paramref name="order"/> on both sides, after 20,000 untimed ones that
        /// bring both loops to their optimised (tier-1) code, in alternating slices (raw first in every
        /// other one), so both sides see the same moments of whatever else the machine does.
        /// </summary>
        private void TimeWarmReads(Row row, SafeFileHandle file, ulong inode, int[] order, int readSize)
        {
            var buffer = _small.AsSpan(0, readSize);
            foreach (var s in order.AsSpan(0, Math.Min(order.Length, 20_000)))
            {
                ReadFully(file, buffer, (long)s * readSize);
                Fs.Data.Read(inode, (long)s * readSize, buffer);
            }
            double raw = 0, basalt = 0;
            long allocated = 0;
            for (var at = 0; at < order.Length; at += WarmSlice)
            {
                var slice = order.AsSpan(at, Math.Min(WarmSlice, order.Length - at));
                foreach (var basaltSide in SideOrder(at / WarmSlice))
                {
                    var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
                    var start = Stopwatch.GetTimestamp();
                    foreach (var s in slice)
                    {
                        if (basaltSide)
                            Fs.Data.Read(inode, (long)s * readSize, buffer);
                        else
                            ReadFully(file, buffer, (long)s * readSize);
                    }
                    var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                    if (basaltSide)
                    {
                        basalt += seconds;
                        allocated += GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
                    }
                    else
                    {
                        raw += seconds;
                    }
                }
            }
            Record(row, order.Length / basalt, order.Length / raw, allocated, order.Length);
        }

        // ---- Helpers ---------------------------------------------------------------------------

        private static void Record(Row row, double basalt, double raw, long allocated, long operations)
        {
            row.Basalt.Add(basalt);
            row.Raw.Add(raw);
            row.AllocatedPerOp.Add((double)allocated / operations);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"   {row.Operation} ({row.Cache}): Basalt {basalt:N0} {row.Unit}, raw {raw:N0} {row.Unit}, {basalt / raw:F2}×, " +
                $"{FormatBytes((double)allocated / operations)} allocated per Basalt op"));
        }

        private void Remount()
        {
            _fs?.Dispose();
            _fs = null;
            _fs = BasaltFileSystem.Mount(_image, new MountOptions());
        }

        private static double Time(Action action)
        {
            var clock = Stopwatch.StartNew();
            action();
            return clock.Elapsed.TotalSeconds;
        }

        private static int[] Permutation(int n, int seed)
        {
            var order = Enumerable.Range(0, n).ToArray();
            new Random(seed).Shuffle(order);
            return order;
        }

        /// <summary><paramref name="count"/> slots drawn uniformly (repeats allowed: the file is warm anyway).</summary>
        private static int[] Slots(int slots, int count, int seed)
        {
            var result = new int[count];
            var rng = new Random(seed);
            for (var i = 0; i < count; i++)
                result[i] = rng.Next(slots);
            return result;
        }

        private static void ReadFully(SafeFileHandle file, Span<byte> buffer, long offset)
        {
            var done = 0;
            while (done < buffer.Length)
            {
                var n = RandomAccess.Read(file, buffer[done..], offset + done);
                if (n == 0)
                    throw new EndOfStreamException($"short read at {offset + done}");
                done += n;
            }
        }

        private static string FormatBytes(double bytes) => bytes switch
        {
            < 10_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes:F0} B"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024:F1} KiB"),
        };

        private void DropCaches() => BenchHost.DropCaches(_canDropCaches, [_image, _rawSequential, _rawRandom]);

        public void Dispose() => _fs?.Dispose();
    }
}
