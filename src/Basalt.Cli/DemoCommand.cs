// basalt demo [DIR] [--keys N] [--seed N] [--force]
// A self-check anyone can run: format an image, run `basalt debug load` on it in a child process
// and kill that with SIGKILL at a random moment, recover read-only and verify that every commit
// the child reported durable survived and that the image holds exactly the keys of the
// transactions its counters name (LoadVerifier), check that fsck finds nothing, recover for real,
// write a few files through the data layer, read them back verified, punch a hole and show the
// usage df reports, then damage a leaf with the same machinery as `debug corrupt`, show what fsck -n finds (image
// untouched), repair with -y, check that a second fsck is clean, and verify again: every key
// outside the damaged leaf must have survived intact. Every number printed comes from the run;
// any failed check makes the exit status 1.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Superblocks;

namespace Basalt.Cli;

internal static class DemoCommand
{
    public static Command Create(CliContext cli)
    {
        var dir = new Argument<string?>("DIR") { Description = "directory for the image (default: a new temporary directory)", Arity = ArgumentArity.ZeroOrOne };
        var keys = CliOptions.Int("--keys", null, "key slots per load thread, 100..10000000 (default 5000)", min: 100, max: 10_000_000, defaultValue: 5000);
        var seed = CliOptions.Int("--seed", null, "seed of the load, the moment of the kill and the corruption (default 42)", defaultValue: 42);
        var force = new Option<bool>("--force", "-f") { Description = "overwrite DIR/demo.img when it exists" };
        var command = new Command("demo", "format, load in a child, kill it, recover and verify, damage, fsck, repair and verify again: a self-check in a few seconds")
        {
            dir, keys, seed, force,
        };
        command.SetAction(parse => Program.Execute(cli, () =>
            new Demo(cli, parse.GetValue(dir), parse.GetValue(keys), parse.GetValue(seed), parse.GetValue(force)).Run()));
        return command;
    }

    /// <summary>The demo's image file: DIR/demo.img, created here; an existing one is overwritten only with --force.</summary>
    private static FileBlockDevice CreateImage(string? dir, long size, bool force, out string image)
    {
        string directory;
        if (dir is null)
        {
            directory = Directory.CreateTempSubdirectory("basalt-demo-").FullName;
        }
        else
        {
            if (File.Exists(dir))
                throw new BasaltException(ErrorCode.FileNotFound, $"{dir}: is a file, not a directory");
            directory = dir;
            try
            {
                Directory.CreateDirectory(directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new BasaltException(ErrorCode.IoError, $"{dir}: cannot create the directory: {IoErrorText.Describe(e)}", e);
            }
        }
        image = Path.Combine(directory, "demo.img");
        try
        {
            // Without --force the file is created exclusively (O_EXCL): nothing is overwritten, even
            // by a file that appears between a check and the create.
            return FileBlockDevice.Create(image, size, overwrite: force);
        }
        catch (BasaltException e) when (e.Code == ErrorCode.ExistingFilesystem)
        {
            throw new BasaltException(ErrorCode.ExistingFilesystem,
                $"{image}: already exists; the demo would overwrite it (use --force, or give another DIR)", e);
        }
    }

    private sealed class Demo(CliContext cli, string? dir, int keys, int seed, bool force)
    {
        private const int Threads = 2;
        private const int FlushEvery = 4;
        private const int ValueBytes = 100;

        /// <summary>How long the child may take to start and report a durable commit of every thread (a busy machine is slow to start a process).</summary>
        private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(60);

        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private int _failures;

        public int Run()
        {
            const long size = 128L * 1024 * 1024;
            var created = CreateImage(dir, size, force, out var image);
            Step($"image {image} (seed {seed})");
            var random = new Random(seed);

            // 1. Format with small nodes so the load builds a tree of more than one level.
            using (created)
            using (var fs = BasaltFileSystem.Format(created, new FormatOptions
                   {
                       BlockSize = 4096, NodeSize = 16 * 1024, BucketSize = 128 * 1024, Label = "basalt-demo",
                   }))
            {
                Step($"formatted {SuperblockText.Size(size)}: node size {fs.Superblock.NodeSize}, block size {fs.Superblock.BlockSize}, " +
                     $"node area {SuperblockText.Size(fs.Superblock.NodeAreaLength)}");
            }

            // 2. The load in a child process, killed with SIGKILL at a random moment.
            var p = new LoadParameters(seed, Threads, ValueBytes, keys);
            var durable = RunAndKill(image, p, random);

            // 3. Recover read-only (an overlay: the image stays as the crash left it) and verify.
            var hashBefore = Hash(image);
            long[] recovered;
            long verifiedKeys;
            using (var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true }))
            {
                Step($"recovered read-only: {fs.Recovery.ToText()}");
                var stored = LoadCommand.ReadParameters(fs);
                Check(stored == p, $"the image holds the load's parameters ({stored.ToText()})");
                var differences = new List<LoadDifference>();
                var v = LoadVerifier.Verify(fs, p, counters: null, differences.Add, cli.Cancellation);
                recovered = [.. v.Threads.Select(t => t.Recovered ?? -1)];
                verifiedKeys = v.Keys;
                Step("recovered: " + string.Join(", ", Enumerable.Range(0, Threads).Select(t =>
                         $"thread {t} at transaction {recovered[t]} (durable {durable.GetValueOrDefault(t)})")) +
                     $"; {v.Keys} keys verified, {v.Differences} differences, depth {Depth(fs)}");
                foreach (var d in differences.Take(10))
                    cli.Line($"    {d.ToText()}", "red");
                Check(Enumerable.Range(0, Threads).All(t => recovered[t] >= durable.GetValueOrDefault(t)),
                    "every commit reported durable survived the kill (recovered transaction >= durable, per thread)");
                Check(v.Differences == 0, "the image holds exactly the keys of transactions 1..k of each thread, k its counter");
            }
            Check(Hash(image).SequenceEqual(hashBefore), "the read-only recovery left every byte of the image unchanged");

            // 4. fsck after the crash, then the real recovery (replay, clean unmount).
            var afterCrash = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.CheckOnly });
            Findings("fsck -n after the kill", afterCrash);
            Check(afterCrash.Clean, "fsck finds nothing wrong after the kill");
            using (var fs = BasaltFileSystem.Mount(image, cli.WritableMount))
            {
                var v = LoadVerifier.Verify(fs, p, recovered, _ => { }, cli.Cancellation);
                Step($"mounted read-write: {fs.Recovery.ToText()}; {v.Keys} keys verified, {v.Differences} differences; unmounting cleanly");
                Check(v.Differences == 0 && v.Keys == verifiedKeys, "the real recovery finds the same keys as the read-only one");
            }

            // 4b. The data layer: files written as checksummed extents, read back, a hole punched.
            DataStep(image, random);

            // 5. Damage one leaf: a bit flip in a key header, checksum left bad.
            CorruptResult damage;
            using (var device = FileBlockDevice.Open(image, readOnly: false))
            {
                damage = ImageCorruptor.Corrupt(device, new CorruptRequest
                {
                    Target = CorruptTarget.Key, Btree = BtreeId.Test, Level = 0, Field = "pos.offset",
                    Mode = CorruptMode.Bitflip, FixChecksum = false, Seed = seed,
                });
            }
            Step("damaged: " + damage.ToText().Replace("\n", "; ", StringComparison.Ordinal));
            var node = damage.Node!;
            var inNode = ExpectedKeysIn(p, recovered, node.Min, node.Max);
            Step($"the damaged leaf covers {node.Min.ToText()}..{node.Max.ToText()}: {inNode} keys of the load live there");

            // 6. fsck -n: findings, image unchanged.
            hashBefore = Hash(image);
            var check = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.CheckOnly });
            Findings("fsck -n", check);
            Check(!check.Clean, "fsck -n finds the damage");
            Check(check.ExitCode == FsckExitCodes.Uncorrected, $"fsck -n exits 4 (it exited {check.ExitCode})");
            Check(Hash(image).SequenceEqual(hashBefore), "fsck -n leaves every byte of the image unchanged");

            // 7. fsck -y: the same findings, repaired; a second run is clean.
            var repair = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.Yes });
            Findings("fsck -y", repair);
            Check(Same(check, repair), "fsck -y reports exactly the findings fsck -n reported");
            Check((repair.ExitCode & FsckExitCodes.Corrected) != 0, $"fsck -y corrects them (exit {repair.ExitCode})");
            var again = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.CheckOnly });
            Step($"second fsck -n: {(again.Clean ? "clean" : $"{again.Findings.Count} findings")}");
            Check(again.Clean, "a second fsck after the repair is clean");

            // 8. Verify again against the recovered counters: what was lost must lie in the damaged leaf.
            using (var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true }))
            {
                long missing = 0, wrong = 0, extra = 0, lostOutside = 0, changedOutside = 0;
                var v = LoadVerifier.Verify(fs, p, recovered, d =>
                {
                    switch (d.Kind)
                    {
                        case LoadDifferenceKind.Missing: missing++; break;
                        case LoadDifferenceKind.Extra: extra++; break;
                        default: wrong++; break;
                    }
                    if (d.Kind == LoadDifferenceKind.Missing && (d.Pos < node.Min || d.Pos > node.Max))
                        lostOutside++;
                    else if (d.Pos < node.Min || d.Pos > node.Max)
                        changedOutside++;
                }, cli.Cancellation);
                Step($"after repair: {v.Keys - missing - wrong} of {v.Keys} keys intact, {missing} lost (all of them in the damaged leaf: " +
                     $"{(lostOutside == 0 ? "yes" : $"no, {lostOutside} outside")}), {wrong} wrong, {extra} unexpected");
                Check(lostOutside == 0, "keys outside the damaged leaf are all kept");
                Check(missing <= inNode, "no more keys are lost than the damaged leaf held");
                // The node scan may restore the damaged leaf from an older version on disk; fsck then
                // says so, and keys changed or deleted since that version may be back in its range.
                var restoredOlder = repair.Findings.Any(f => f.Id == FsckErrorId.BtreeRangeRestoredFromOlderVersion);
                if (restoredOlder)
                    Step("fsck restored the damaged leaf's range from an older version of it: its keys are as that version holds them");
                Check(changedOutside == 0 && (restoredOlder || (wrong == 0 && extra == 0)),
                    "no key has a wrong value and no unknown key appears, except in a range fsck restored from an older version");
                var errorCounters = fs.Superblock.ErrorCounters;
                Step($"superblock error counters: {(errorCounters.Count == 0 ? "none" : string.Join(", ", errorCounters.Select(e => e.ToText())))}");
                Check(errorCounters.Count > 0, "the repair's findings are counted in the superblock");
            }

            var verdict = _failures == 0 ? "demo passed" : $"demo FAILED: {_failures} check{(_failures == 1 ? "" : "s")} failed";
            cli.Line($"{verdict} in {_clock.Elapsed.TotalSeconds:0.0} s; image kept at {image}", _failures == 0 ? "green" : "red");
            return _failures == 0 ? CliExitCodes.Ok : CliExitCodes.Failure;
        }

        /// <summary>
        /// Writes a few files through the data layer (extents in buckets, with backpointers and
        /// accounting), reads them back verified, punches a hole in one, and shows the usage `df`
        /// reports before and after; then checks that a read-only remount reads the same bytes.
        /// </summary>
        private void DataStep(string image, Random random)
        {
            int[] sizes = [1024 * 1024, 300 * 1024, 10_000];
            var files = sizes.Select((size, i) =>
            {
                var bytes = new byte[size];
                random.NextBytes(bytes);
                return (Inode: 1000 + (ulong)i, Bytes: bytes);
            }).ToList();
            const long holeOffset = 256 * 1024;
            const int holeLength = 384 * 1024;
            using (var fs = BasaltFileSystem.Mount(image, cli.WritableMount))
            {
                var before = DfCommand.Measure(fs, fs.Space.Layout.Devices[0]);
                foreach (var (inode, bytes) in files)
                    fs.Data.Write(inode, 0, bytes);
                fs.Sync();
                var written = DfCommand.Measure(fs, fs.Space.Layout.Devices[0]);
                var sectors = sizes.Sum(s => (s + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize * (long)FormatLimits.SectorSize);
                Step($"wrote {files.Count} files through the data layer ({string.Join(", ", sizes.Select(s => $"{s} bytes"))}): {Usage(written)}");
                Check(written.Bytes.User - before.Bytes.User == sectors,
                    $"the accounting charges exactly the sectors written ({written.Bytes.User - before.Bytes.User} of {sectors} bytes)");
                Check(files.All(f => ReadsBack(fs, f.Inode, f.Bytes)), "every file reads back as written (each run's checksum verified)");

                fs.Data.Punch(files[0].Inode, holeOffset, holeLength);
                fs.Sync();
                var punched = DfCommand.Measure(fs, fs.Space.Layout.Devices[0]);
                Array.Clear(files[0].Bytes, (int)holeOffset, holeLength);
                Step($"punched bytes {holeOffset}..{holeOffset + holeLength - 1} of inode {files[0].Inode}: {Usage(punched)}");
                Check(written.Bytes.User - punched.Bytes.User == holeLength,
                    $"the punch gives back exactly the hole ({written.Bytes.User - punched.Bytes.User} of {holeLength} bytes)");
                Check(ReadsBack(fs, files[0].Inode, files[0].Bytes), "the hole reads as zeros and the rest of the file is unchanged");
            }
            using (var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true }))
                Check(files.All(f => ReadsBack(fs, f.Inode, f.Bytes)), "after a remount every file reads back the same");
        }

        private static bool ReadsBack(BasaltFileSystem fs, ulong inode, byte[] expected)
        {
            var actual = new byte[expected.Length];
            fs.Data.Read(inode, 0, actual);
            return actual.AsSpan().SequenceEqual(expected);
        }

        private static string Usage(DfDeviceJson d) => string.Create(CultureInfo.InvariantCulture,
            $"user {d.Bytes.User} bytes in {d.Buckets.User} buckets ({d.Bytes.Fragmented} bytes fragmented), " +
            $"{d.Buckets.Free} free, {d.Buckets.NeedDiscard} need_discard; used {d.Used}, available {d.Available} of {d.Size} bytes");

        /// <summary>
        /// Starts `basalt debug load` on the image, waits until every thread has reported a durable
        /// commit, lets it run a random while longer and kills it with SIGKILL. Returns the last
        /// durable transaction each thread reported.
        /// </summary>
        private IReadOnlyDictionary<int, long> RunAndKill(string image, LoadParameters p, Random random)
        {
            var delay = TimeSpan.FromMilliseconds(300 + random.Next(1200));
            // --seconds bounds the child's life should this process die without killing it.
            using var child = LoadProcess.Start(image,
            [
                "--seed", Invariant(p.Seed), "--threads", Invariant(p.Threads), "--keys", Invariant(p.Keys),
                "--value-bytes", Invariant(p.ValueBytes), "--flush-every", Invariant(FlushEvery), "--seconds", "120",
            ]);
            Step($"started `basalt debug load` as pid {child.Pid}: {p.ToText()}, a flush every {FlushEvery} transactions");
            var started = child.WaitUntil((durable, _) => durable.Count == p.Threads, s_startTimeout);
            if (!started)
            {
                child.Kill();
                var why = child.Stderr is { Length: > 0 } err ? err.Split('\n')[^1] : $"no durable commit within {s_startTimeout.TotalSeconds:0} s";
                throw new BasaltException(ErrorCode.IoError, $"the load (pid {child.Pid}) did not get going: {why}");
            }
            var running = Stopwatch.StartNew();
            // The random moment: a while after the first durable commit of every thread.
            child.WaitUntil((_, _) => cli.Cancellation.IsCancellationRequested, delay);
            cli.Cancellation.ThrowIfCancellationRequested();
            child.Kill();
            var last = child.LastDurable;
            Step(string.Create(CultureInfo.InvariantCulture,
                $"killed pid {child.Pid} with SIGKILL {running.Elapsed.TotalSeconds:0.00} s after every thread's first durable commit: " +
                $"{child.DurableLines} durable lines read; durable: ") +
                string.Join(", ", last.OrderBy(kv => kv.Key).Select(kv => $"thread {kv.Key} up to transaction {kv.Value}")));
            Check(child.Killed, "the load was still running when it was killed");
            return last;
        }

        /// <summary>Keys of the load (slots and counters) that transactions 1..k leave in [min, max].</summary>
        private long ExpectedKeysIn(LoadParameters p, long[] counters, Bpos min, Bpos max)
        {
            long count = 0;
            for (var t = 0; t < p.Threads; t++)
            {
                if (counters[t] > 0 && LoadModel.CounterPos(t) >= min && LoadModel.CounterPos(t) <= max)
                    count++;
                foreach (var slot in LoadModel.ExpectedSlots(p, t, counters[t], cli.Cancellation).Keys)
                {
                    var pos = LoadModel.SlotPos(t, slot);
                    if (pos >= min && pos <= max)
                        count++;
                }
            }
            return count;
        }

        private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

        private static int Depth(BasaltFileSystem fs) =>
            fs.Btrees[BtreeId.Test].Root is { } root ? root.Level + 1 : 0;

        private void Findings(string what, FsckReport report)
        {
            Step($"{what}: {FsckCommand.Summary(report)} (exit {report.ExitCode})");
            foreach (var f in report.Findings.Take(10))
                cli.Line($"    {f.ToText()}", f.Corrected ? "green" : "yellow");
            if (report.Findings.Count > 10)
                cli.Line($"    ... and {report.Findings.Count - 10} more");
        }

        private static bool Same(FsckReport a, FsckReport b) =>
            a.Findings.Select(f => (f.Id, f.Where, f.Detail)).SequenceEqual(b.Findings.Select(f => (f.Id, f.Where, f.Detail)));

        private static byte[] Hash(string path)
        {
            using var stream = File.OpenRead(path);
            return SHA256.HashData(stream);
        }

        private void Step(string text) =>
            cli.Line(string.Create(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,5:0.00}s] {text}"));

        private void Check(bool ok, string what)
        {
            if (!ok)
                _failures++;
            cli.Line($"         {(ok ? "ok  " : "FAIL")} {what}", ok ? "green" : "red");
        }
    }
}
