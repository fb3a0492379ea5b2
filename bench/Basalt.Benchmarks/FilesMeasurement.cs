// `Basalt.Benchmarks files`: namespace operations and small durable files through the library
// (`fs.Files`), against the host filesystem the image sits on, measured in one process; then the
// CLI's `put` and `fsck -n` of a reference tree against `cp -a` and `e2fsck -fn` on an ext4 loop image.
//
//   metadata     N empty files in one directory: Create (each its own transaction, committed
//                without flush), Lookup (stat by path: a lookup returns the attributes),
//                Lookup + GetAttr, GetAttr alone, Unlink. The host does the same
//                through libc (open(O_CREAT|O_EXCL) + close, stat, unlink) with NUL-terminated
//                byte paths made beforehand, as Basalt gets its names as bytes: neither side pays
//                for string conversion. The host has no GetAttr without a path walk, so both
//                Basalt stat rows stand beside the same stat(path).
//   small fsync  Create + Write 4 KiB + Fsync of a new file, 1 and --threads threads (each thread
//                its own directory) for --sync-seconds each; beside it the raw floor (4 KiB
//                pwrite + fdatasync overwriting a file written and synced beforehand, a region
//                per thread, as the peers' raw device) and the host's own new file (open O_CREAT,
//                pwrite 4 KiB, fsync, close).
//   tree         the tree of mktree.py (--tree N files, generated once under
//                $TMPDIR/basalt-files-tree/N, a N.ready marker beside it) with `basalt put IMAGE
//                TREE /` (a fresh image, the CLI's own process, timing includes its start and the
//                final sync) against `cp -a TREE MNT/ && sync` on a fresh ext4 loop image; then
//                `basalt fsck -n` against `e2fsck -fn`, each cold (caches dropped) and warm.
//                Needs root (loop mount); skipped with --tree 0.
//
// The image is a sparse file of --image-size (8 GiB), or with --preallocate one formatted with
// FormatOptions.Preallocate (zeroes written over all of it, as the raw file's region is written
// before its loop): a write into a hole of a sparse image makes the host commit its own metadata
// at the next fdatasync, which the raw overwrite never pays (see bench/README.md, "Files").
//
// Each metadata and fsync case runs --rounds times, the side that goes first alternating by
// round; the median is quoted, ratios are medians of the rounds' ratios.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Basalt.Fs;
using Basalt.Superblocks;
using Microsoft.Win32.SafeHandles;

namespace Basalt.Benchmarks;

[BenchCommand("files")]
public static partial class FilesMeasurement
{
    private const int Small = 4096;
    private const int RawRegion = 4 * 1024 * 1024;
    private const string Usage = "files [--files 100000] [--rounds 3 (0: the tree only)] [--threads 8] [--sync-seconds 2] [--tree 100000] " +
                                 "[--mktree PATH] [--cli PATH/Basalt.Cli.dll] [--dir DIR] [--image-size 8G] [--preallocate] [--lookup-cache ENTRIES (0: off)]";

    public static int Run(string[] args)
    {
        var o = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--preallocate")
            {
                o.Preallocate = true;
                continue;
            }
            var value = i + 1 < args.Length ? args[i + 1] : null;
            var ok = value is not null && args[i] switch
            {
                "--files" => int.TryParse(value, out o.Files) && o.Files > 0,
                "--rounds" => int.TryParse(value, out o.Rounds) && o.Rounds >= 0,
                "--threads" => int.TryParse(value, out o.Threads) && o.Threads > 1,
                "--sync-seconds" => double.TryParse(value, CultureInfo.InvariantCulture, out o.SyncSeconds) && o.SyncSeconds > 0,
                "--tree" => int.TryParse(value, out o.Tree) && o.Tree >= 0,
                "--mktree" => (o.MkTree = value) is not null,
                "--cli" => (o.Cli = value) is not null,
                "--dir" => (o.Directory = value) is not null,
                "--image-size" => BenchHost.TryParseSize(value, out o.ImageSize),
                "--lookup-cache" => int.TryParse(value, out var entries) && entries >= 0 && (o.LookupCache = entries) >= 0,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine($"files: bad argument {args[i]} {value} ({Usage})");
                return 2;
            }
            i++;
        }
        var directory = o.Directory ?? Environment.GetEnvironmentVariable("BASALT_BENCH_DIR") ?? Path.GetTempPath();
        var work = Path.Combine(directory, $"basalt-files-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            using var run = new Measurement(o, work);
            return run.Execute();
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private sealed class Options
    {
        public int Files = 100_000;
        public int Rounds = 3;
        public int Threads = 8;
        public double SyncSeconds = 2;
        public int Tree = 100_000;
        public string MkTree = "/work/shared/bench/mktree.py";
        public string? Cli;
        public string? Directory;
        public long ImageSize = 8L << 30;
        public bool Preallocate;
        public int? LookupCache;
    }

    /// <summary>One row: per round, Basalt's rate and the host's (operations per second).</summary>
    private sealed class Row(string operation, string host, string goal)
    {
        public string Operation { get; } = operation;
        public string Host { get; } = host;
        public string Goal { get; } = goal;
        public List<double> Basalt { get; } = [];
        public List<double> HostRates { get; } = [];
        public List<double> AllocatedPerOp { get; } = [];
    }

    private sealed class Measurement : IDisposable
    {
        private readonly Options _o;
        private readonly string _work;
        private readonly string _image;
        private readonly BasaltFileSystem _fs;
        private readonly byte[][] _names;
        private readonly byte[] _block = GC.AllocateArray<byte>(Small, pinned: true);
        private readonly double _formatSeconds;

        private readonly Row _create = new("create empty file (own transaction, no flush)", "open(O_CREAT|O_EXCL) + close", "≥ 200,000/s");
        private readonly Row _lookup = new("Lookup (stat by path)", "stat(path)", "≥ 1,000,000/s");
        private readonly Row _lookupStat = new("Lookup + GetAttr", "stat(path)", "—");
        private readonly Row _stat = new("GetAttr alone", "stat(path)", "≥ 1,000,000/s");
        private readonly Row _unlink = new("Unlink", "unlink", "—");
        private readonly Row _fsync1 = new("Create + Write 4 KiB + Fsync, 1 thread", "4 KiB pwrite + fdatasync (overwrite)", "≥ 0.4×");
        private readonly Row _fsyncN;
        private readonly Row _newFile1 = new("Create + Write 4 KiB + Fsync, 1 thread", "new file: open + pwrite 4 KiB + fsync + close", "—");
        private readonly Row _newFileN;

        public Measurement(Options o, string work)
        {
            _o = o;
            _work = work;
            _image = Path.Combine(work, "image");
            _fsyncN = new($"Create + Write 4 KiB + Fsync, {o.Threads} threads", $"4 KiB pwrite + fdatasync (overwrite), {o.Threads} threads", "≥ 2× 1 thread");
            _newFileN = new($"Create + Write 4 KiB + Fsync, {o.Threads} threads", $"new file: open + pwrite 4 KiB + fsync + close, {o.Threads} threads", "—");
            _names = new byte[o.Files][];
            for (var i = 0; i < o.Files; i++)
                _names[i] = Encoding.ASCII.GetBytes($"f{i:D7}");
            new Random(7).NextBytes(_block);
            var clock = Stopwatch.StartNew();
            var mount = o.LookupCache is { } entries ? new MountOptions { LookupCacheEntries = entries } : null;
            _fs = BasaltFileSystem.Format(_image, o.ImageSize, new FormatOptions { Preallocate = o.Preallocate }, mount);
            _formatSeconds = clock.Elapsed.TotalSeconds;
        }

        public int Execute()
        {
            var (load1, load5, _) = BenchHost.LoadAverage();
            var clock = Stopwatch.StartNew();
            Console.WriteLine($"files: {_o.Files:N0} files, {_o.Rounds} rounds, {_o.Threads} threads, {_o.SyncSeconds} s per fsync case, " +
                              $"tree {_o.Tree:N0}, lookup cache {_o.LookupCache?.ToString("N0", CultureInfo.InvariantCulture) ?? "default"}, in {_work}; load average {load1:F2} {load5:F2}");
            Console.WriteLine($"image: {_o.ImageSize >> 20} MiB, {(_o.Preallocate ? "preallocated (zeroes written at format)" : "sparse")}, " +
                              $"formatted in {_formatSeconds:F1} s");
            if (_o.Rounds > 0)
                WarmUp();
            for (var round = 1; round <= _o.Rounds; round++)
            {
                Console.WriteLine($"-- round {round}");
                Metadata(round);
                SmallFsync(round, 1, _fsync1, _newFile1);
                SmallFsync(round, _o.Threads, _fsyncN, _newFileN);
            }
            var tree = _o.Tree > 0 ? TreeCopy() : null;
            var (after, _, _) = BenchHost.LoadAverage();
            if (_o.Rounds == 0)
            {
                Console.WriteLine($"\nload average {load1:F2} before, {after:F2} after; {clock.Elapsed.TotalSeconds:F0} s\n{tree}");
                return 0;
            }
            Console.WriteLine();
            Console.WriteLine($"files, median of {_o.Rounds} rounds, {(_o.Preallocate ? "preallocated" : "sparse")} {_o.ImageSize >> 20} MiB image; " +
                              $"load average {load1:F2} before, {after:F2} after; {clock.Elapsed.TotalSeconds:F0} s");
            Console.WriteLine();
            Console.WriteLine("| operation | Basalt /s | host | host /s | Basalt / host | per round | Basalt allocated per op | goal |");
            Console.WriteLine("| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |");
            foreach (var row in new[] { _create, _lookup, _lookupStat, _stat, _unlink, _fsync1, _fsyncN, _newFile1, _newFileN })
            {
                var ratios = row.Basalt.Zip(row.HostRates, (b, h) => b / h).ToList();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {row.Operation} | {BenchHost.Median(row.Basalt):N0} | {row.Host} | {BenchHost.Median(row.HostRates):N0} | " +
                    $"{BenchHost.Median(ratios):F2}× | {ratios.Min():F2}–{ratios.Max():F2} | {BenchHost.Median(row.AllocatedPerOp):N0} B | {row.Goal} |"));
            }
            var scaling = _fsyncN.Basalt.Zip(_fsync1.Basalt, (n, one) => n / one).ToList();
            var rawScaling = _fsyncN.HostRates.Zip(_fsync1.HostRates, (n, one) => n / one).ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"\nBasalt {_o.Threads} threads / 1 thread: {BenchHost.Median(scaling):F2}× ({scaling.Min():F2}–{scaling.Max():F2}; goal ≥ 2×); " +
                $"raw {BenchHost.Median(rawScaling):F2}×"));
            if (tree is not null)
            {
                Console.WriteLine();
                Console.WriteLine(tree);
            }
            return 0;
        }

        // ---- Metadata --------------------------------------------------------------------------

        private void Metadata(int round)
        {
            var hostDir = Path.Combine(_work, $"host-{round}");
            Directory.CreateDirectory(hostDir);
            var paths = _names.Select(n => CPath(Path.Combine(hostDir, Encoding.ASCII.GetString(n)))).ToArray();
            var dir = _fs.Files.Mkdir(FsPositions.RootIno, Encoding.ASCII.GetBytes($"meta-{round}"), 0x1ED /* 0755 */).Ino;
            var inos = new ulong[_o.Files];
            var statBuffer = new byte[256];
            double hostCreate = 0, hostStat = 0, hostStat2 = 0, hostStat3 = 0, hostUnlink = 0, create = 0, lookupOnly = 0, lookup = 0, stat = 0, unlink = 0;
            long aCreate = 0, aLookupOnly = 0, aLookup = 0, aStat = 0, aUnlink = 0;
            foreach (var basaltSide in SideOrder(round))
            {
                if (!basaltSide)
                {
                    hostCreate = Time(() =>
                    {
                        foreach (var p in paths)
                        {
                            var fd = Open(ref p[0], 0x80000 | 0x40 | 0x80 | 0x1 /* O_CLOEXEC|O_CREAT|O_EXCL|O_WRONLY */, 0x1A4 /* 0644 */);
                            if (fd < 0)
                                ThrowErrno("open");
                            Close(fd);
                        }
                    });
                    hostStat = Time(() =>
                    {
                        foreach (var p in paths)
                        {
                            if (StatPath(ref p[0], ref statBuffer[0]) != 0)
                                ThrowErrno("stat");
                        }
                    });
                    hostStat2 = Time(() =>
                    {
                        foreach (var p in paths)
                        {
                            if (StatPath(ref p[0], ref statBuffer[0]) != 0)
                                ThrowErrno("stat");
                        }
                    });
                    hostStat3 = Time(() =>
                    {
                        foreach (var p in paths)
                        {
                            if (StatPath(ref p[0], ref statBuffer[0]) != 0)
                                ThrowErrno("stat");
                        }
                    });
                    hostUnlink = Time(() =>
                    {
                        foreach (var p in paths)
                        {
                            if (UnlinkPath(ref p[0]) != 0)
                                ThrowErrno("unlink");
                        }
                    });
                }
                else
                {
                    var files = _fs.Files;
                    (create, aCreate) = TimeAllocated(() =>
                    {
                        for (var i = 0; i < _names.Length; i++)
                            inos[i] = files.Create(dir, _names[i], 0x1A4 /* 0644 */).Ino;
                    });
                    (lookupOnly, aLookupOnly) = TimeAllocated(() =>
                    {
                        foreach (var name in _names)
                            files.Lookup(dir, name);
                    });
                    (lookup, aLookup) = TimeAllocated(() =>
                    {
                        foreach (var name in _names)
                            files.GetAttr(files.Lookup(dir, name).Ino);
                    });
                    (stat, aStat) = TimeAllocated(() =>
                    {
                        foreach (var ino in inos)
                            files.GetAttr(ino);
                    });
                    (unlink, aUnlink) = TimeAllocated(() =>
                    {
                        foreach (var name in _names)
                            files.Unlink(dir, name);
                    });
                }
            }
            Directory.Delete(hostDir);
            var n = (double)_o.Files;
            Record(_create, n / create, n / hostCreate, aCreate / n);
            Record(_lookup, n / lookupOnly, n / hostStat, aLookupOnly / n);
            Record(_lookupStat, n / lookup, n / hostStat2, aLookup / n);
            Record(_stat, n / stat, n / hostStat3, aStat / n);
            Record(_unlink, n / unlink, n / hostUnlink, aUnlink / n);
        }

        /// <summary>
        /// Untimed: every metadata loop of both sides over the first 5,000 names, then a pause, so
        /// round 1 runs optimised (tier-1) code as the later rounds do (the JIT compiles in the
        /// background after a delay, and later still on a loaded machine).
        /// </summary>
        private void WarmUp()
        {
            var count = Math.Min(_names.Length, 5_000);
            var hostDir = Path.Combine(_work, "warm-up");
            Directory.CreateDirectory(hostDir);
            var paths = _names[..count].Select(n => CPath(Path.Combine(hostDir, Encoding.ASCII.GetString(n)))).ToArray();
            var statBuffer = new byte[256];
            foreach (var p in paths)
            {
                var fd = Open(ref p[0], 0x80000 | 0x40 | 0x80 | 0x1 /* O_CLOEXEC|O_CREAT|O_EXCL|O_WRONLY */, 0x1A4 /* 0644 */);
                if (fd < 0)
                    ThrowErrno("open");
                Close(fd);
                if (StatPath(ref p[0], ref statBuffer[0]) != 0)
                    ThrowErrno("stat");
                if (UnlinkPath(ref p[0]) != 0)
                    ThrowErrno("unlink");
            }
            Directory.Delete(hostDir);
            var files = _fs.Files;
            var dir = files.Mkdir(FsPositions.RootIno, "warm-up"u8, 0x1ED /* 0755 */).Ino;
            for (var pass = 0; pass < 2; pass++)
            {
                foreach (var name in _names.AsSpan(0, count))
                    files.GetAttr(files.Create(dir, name, 0x1A4 /* 0644 */).Ino);
                foreach (var name in _names.AsSpan(0, count))
                    files.GetAttr(files.Lookup(dir, name).Ino);
                foreach (var name in _names.AsSpan(0, count))
                    files.Unlink(dir, name);
            }
            Thread.Sleep(500);
        }

        // ---- Small durable files ---------------------------------------------------------------

        private void SmallFsync(int round, int threads, Row overwrite, Row newFile)
        {
            var raw = Path.Combine(_work, "raw");
            using (var file = File.OpenHandle(raw, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
            {
                var region = new byte[RawRegion];
                for (var t = 0; t < threads; t++)
                    RandomAccess.Write(file, region, (long)t * RawRegion);
                Peers.RawDevicePeer.FdataSync(file);
            }
            var hostDir = Path.Combine(_work, $"sync-{round}-{threads}");
            Directory.CreateDirectory(hostDir);
            double rawRate = 0, hostRate = 0, basaltRate = 0, allocated = 0;
            foreach (var basaltSide in SideOrder(round))
            {
                if (!basaltSide)
                {
                    using var file = File.OpenHandle(raw, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
                    rawRate = Parallel(threads, (t, i) =>
                    {
                        RandomAccess.Write(file, _block, ((long)t * RawRegion) + ((long)i * Small % RawRegion));
                        Peers.RawDevicePeer.FdataSync(file);
                    }).Rate;
                    hostRate = Parallel(threads, (t, i) =>
                    {
                        using var created = File.OpenHandle(Path.Combine(hostDir, $"t{t}-{i}"), FileMode.CreateNew, FileAccess.Write, FileShare.None);
                        RandomAccess.Write(created, _block, 0);
                        if (FsyncFile(created) != 0)
                            ThrowErrno("fsync");
                    }).Rate;
                }
                else
                {
                    var files = _fs.Files;
                    var dirs = new ulong[threads];
                    for (var t = 0; t < threads; t++)
                        dirs[t] = files.Mkdir(FsPositions.RootIno, Encoding.ASCII.GetBytes($"sync-{round}-{threads}-{t}"), 0x1ED /* 0755 */).Ino;
                    (basaltRate, allocated) = Parallel(threads, (t, i) =>
                    {
                        var ino = files.Create(dirs[t], Encoding.ASCII.GetBytes($"f{i}"), 0x1A4 /* 0644 */).Ino;
                        files.Write(ino, 0, _block);
                        files.Fsync(ino);
                    });
                }
            }
            File.Delete(raw);
            Directory.Delete(hostDir, recursive: true);
            Record(overwrite, basaltRate, rawRate, allocated);
            Record(newFile, basaltRate, hostRate, allocated);
        }

        /// <summary>
        /// Runs <paramref name="op"/>(thread, i) on <paramref name="threads"/> threads for
        /// --sync-seconds (after 20 untimed operations each): operations per second and bytes
        /// allocated per operation (all threads).
        /// </summary>
        private (double Rate, double AllocatedPerOp) Parallel(int threads, Action<int, int> op)
        {
            var counts = new long[threads];
            var duration = TimeSpan.FromSeconds(_o.SyncSeconds);
            using var start = new Barrier(threads + 1);
            var clock = new Stopwatch();
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                var i = 0;
                for (; i < 20; i++)
                    op(t, i);
                start.SignalAndWait();
                start.SignalAndWait();
                for (; clock.Elapsed < duration; i++)
                    op(t, i);
                counts[t] = i - 20;
            })).ToList();
            foreach (var w in workers)
                w.Start();
            start.SignalAndWait();
            var before = GC.GetTotalAllocatedBytes(precise: true);
            clock.Start();
            start.SignalAndWait();
            foreach (var w in workers)
                w.Join();
            var seconds = clock.Elapsed.TotalSeconds;
            var total = counts.Sum();
            return (total / seconds, (double)(GC.GetTotalAllocatedBytes(precise: true) - before) / total);
        }

        // ---- Tree: basalt put / fsck against cp -a / e2fsck on ext4 ------------------------------

        private string TreeCopy()
        {
            var tree = EnsureTree();
            var cli = _o.Cli ?? FindCli();
            var (bytes, entries) = Measure(tree);
            // The source is read once so that both copies find it in the page cache.
            foreach (var f in Directory.EnumerateFiles(tree, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                if (!new FileInfo(f).Attributes.HasFlag(FileAttributes.ReparsePoint))
                    _ = File.ReadAllBytes(f).Length;
            }
            var imageSize = ((2 * bytes) + (1L << 30)) & ~((1L << 20) - 1);

            var ext4 = Path.Combine(_work, "ext4.img");
            var mnt = Path.Combine(_work, "mnt");
            Directory.CreateDirectory(mnt);
            using (var sparse = new FileStream(ext4, FileMode.CreateNew))
                sparse.SetLength(imageSize);
            Exec("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", ext4);
            Exec("mount", "-o", "loop", ext4, mnt);
            double cp;
            try
            {
                cp = Time(() =>
                {
                    Exec("cp", "-a", tree, mnt + "/");
                    Exec("sync");
                });
            }
            finally
            {
                Exec("umount", mnt);
            }
            var e2fsckCold = TimeCold(() => Exec("e2fsck", "-fn", ext4));
            var e2fsckWarm = Time(() => Exec("e2fsck", "-fn", ext4));
            Console.WriteLine($"   ext4: cp -a + sync {cp:F2} s, e2fsck -fn {e2fsckCold:F2} s cold, {e2fsckWarm:F2} s warm");
            File.Delete(ext4);

            var basaltImage = Path.Combine(_work, "tree.img");
            BasaltFileSystem.Format(basaltImage, imageSize, new FormatOptions()).Dispose();
            var put = Time(() => Exec("dotnet", cli, "put", basaltImage, tree, "/"));
            var fsckCold = TimeCold(() => Exec("dotnet", cli, "fsck", "-n", basaltImage));
            var fsckWarm = Time(() => Exec("dotnet", cli, "fsck", "-n", basaltImage));
            var startup = Time(() => Exec("dotnet", cli, "--help"));
            Console.WriteLine($"   Basalt: put {put:F2} s, fsck -n {fsckCold:F2} s cold, {fsckWarm:F2} s warm");
            File.Delete(basaltImage);

            var text = new StringBuilder();
            text.AppendLine(CultureInfo.InvariantCulture, $"tree: {tree}, {entries:N0} entries, {bytes / (1024.0 * 1024):N0} MiB; images {imageSize >> 20} MiB (sparse); " +
                                                          $"CLI {cli} (process start: `--help` takes {startup:F2} s)");
            text.AppendLine();
            text.AppendLine("| operation | Basalt s | ext4 loop s | Basalt / ext4 (time) |");
            text.AppendLine("| --- | ---: | ---: | ---: |");
            text.AppendLine(CultureInfo.InvariantCulture, $"| `basalt put IMAGE TREE /` vs `cp -a TREE MNT/ && sync` | {put:F2} | {cp:F2} | {put / cp:F2}× |");
            text.AppendLine(CultureInfo.InvariantCulture, $"| `basalt fsck -n` vs `e2fsck -fn`, cold | {fsckCold:F2} | {e2fsckCold:F2} | {fsckCold / e2fsckCold:F2}× |");
            text.AppendLine(CultureInfo.InvariantCulture, $"| `basalt fsck -n` vs `e2fsck -fn`, warm | {fsckWarm:F2} | {e2fsckWarm:F2} | {fsckWarm / e2fsckWarm:F2}× |");
            return text.ToString();
        }

        private string EnsureTree()
        {
            var root = Path.Combine(Path.GetTempPath(), "basalt-files-tree");
            var tree = Path.Combine(root, _o.Tree.ToString(CultureInfo.InvariantCulture));
            var ready = tree + ".ready";
            if (File.Exists(ready))
                return tree;
            if (Directory.Exists(tree))
                Directory.Delete(tree, recursive: true);
            Directory.CreateDirectory(root);
            Console.WriteLine($"generating the tree: {_o.MkTree} {tree} --files {_o.Tree}");
            var seconds = Time(() => Exec("python3", _o.MkTree, tree, "--files", _o.Tree.ToString(CultureInfo.InvariantCulture)));
            Console.WriteLine($"   generated in {seconds:F1} s");
            File.WriteAllText(ready, "");
            return tree;
        }

        private static (long Bytes, long Entries) Measure(string tree)
        {
            long bytes = 0, entries = 0;
            foreach (var info in new DirectoryInfo(tree).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                entries++;
                if (info is FileInfo file && !file.Attributes.HasFlag(FileAttributes.ReparsePoint))
                    bytes += file.Length;
            }
            return (bytes, entries);
        }

        /// <summary>The Release build of Basalt.Cli in the repository this benchmark was built from.</summary>
        private static string FindCli()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "src", "Basalt.Cli", "bin", "Release", "net10.0", "Basalt.Cli.dll");
                if (File.Exists(candidate))
                    return candidate;
            }
            throw new FileNotFoundException("Basalt.Cli.dll (Release) not found: dotnet build -c Release src/Basalt.Cli, or pass --cli");
        }

        private static double TimeCold(Action action)
        {
            BenchHost.DropCaches();
            return Time(action);
        }

        private static void Exec(string program, params string[] arguments)
        {
            var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in arguments)
                start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited {process.ExitCode}:\n" +
                                                    $"{stdout.Result}\n{stderr}");
            }
        }

        // ---- Helpers ---------------------------------------------------------------------------

        private static IEnumerable<bool> SideOrder(int round) => round % 2 == 1 ? [false, true] : [true, false];

        private static void Record(Row row, double basalt, double host, double allocatedPerOp)
        {
            row.Basalt.Add(basalt);
            row.HostRates.Add(host);
            row.AllocatedPerOp.Add(allocatedPerOp);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"   {row.Operation}: Basalt {basalt:N0}/s, {row.Host} {host:N0}/s, {basalt / host:F2}×, {allocatedPerOp:N0} B allocated per Basalt op"));
        }

        private static double Time(Action action)
        {
            var clock = Stopwatch.StartNew();
            action();
            return clock.Elapsed.TotalSeconds;
        }

        private static (double Seconds, long Allocated) TimeAllocated(Action action)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            var seconds = Time(action);
            return (seconds, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        private static byte[] CPath(string path) => Encoding.UTF8.GetBytes(path + "\0");

        public void Dispose() => _fs.Dispose();
    }

    private static void ThrowErrno(string call)
    {
        var errno = Marshal.GetLastPInvokeError();
        throw new IOException($"{call} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
    }

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncFile(SafeFileHandle fd);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static partial int Open(ref byte path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    /// <summary>stat(2) into a buffer larger than struct stat (144 bytes on x86-64); glibc ≥ 2.33 exports stat.</summary>
    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static partial int StatPath(ref byte path, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "unlink", SetLastError = true)]
    private static partial int UnlinkPath(ref byte path);
}
