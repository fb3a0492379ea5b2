// basalt demo [DIR] [--files N] [--seed N] [--force]
// The product's story in a few seconds, every number from the run: format an image; make a sample
// tree locally (DemoTree) and copy it in with `basalt put` children, part A to the end (unmounted
// cleanly: synced), part B (with --fsync) killed with SIGKILL once the image has grown by part of
// B's bytes; recover and verify that A is there byte for byte with its names, modes, symlink, hard link and
// xattr, and that B is prefix-consistent (each file complete, a prefix of itself, or absent);
// check that fsck finds nothing; damage a dirents leaf with the machinery of `debug corrupt`,
// show fsck -n finding it (image untouched), repair with -y, check a second fsck is clean, and
// say where each synced file went: at its path, reattached in lost+found, or lost with its name;
// every file whose names lie outside the damaged leaf must read back byte for byte. Any failed
// check makes the exit status 1.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Basalt.Cli.Local;
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
        var files = CliOptions.Int("--files", null, "regular files in the sample tree, 20..20000 (default 300)", min: 20, max: 20_000, defaultValue: 300);
        var seed = CliOptions.Int("--seed", null, "seed of the sample tree, the moment of the kill and the corruption (default 42)", defaultValue: 42);
        var force = new Option<bool>("--force", "-f") { Description = "overwrite DIR/demo.img when it exists" };
        var command = new Command("demo", "format, copy a tree in with children killed mid-copy, recover and verify, damage, fsck, repair and verify again: a self-check in a few seconds")
        {
            dir, files, seed, force,
        };
        command.SetAction(parse => Program.Execute(cli, () =>
            new Demo(cli, parse.GetValue(dir), parse.GetValue(files), parse.GetValue(seed), parse.GetValue(force)).Run()));
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

    private sealed class Demo(CliContext cli, string? dir, int files, int seed, bool force)
    {
        /// <summary>How long a child may take (a busy machine is slow to start a process).</summary>
        private static readonly TimeSpan s_childTimeout = TimeSpan.FromSeconds(120);

        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly List<string> _report = [];
        private int _failures;

        public int Run()
        {
            const long size = 128L * 1024 * 1024;
            var created = CreateImage(dir, size, force, out var image);
            Step($"image {image} (seed {seed})");
            var random = new Random(seed);

            // 1. Format.
            using (created)
            using (var fs = BasaltFileSystem.Format(created, new FormatOptions
                   {
                       BlockSize = 4096, NodeSize = 4096, BucketSize = 128 * 1024, Label = "basalt-demo",
                   }))
            {
                Step($"formatted {SuperblockText.Size(size)}: node size {fs.Superblock.NodeSize}, block size {fs.Superblock.BlockSize}, " +
                     $"node area {SuperblockText.Size(fs.Superblock.NodeAreaLength)}");
            }

            // 2. The sample tree, and its copy by two children: A to the end, B killed mid-copy.
            var tree = DemoTree.Generate(Directory.CreateTempSubdirectory("basalt-demo-tree-").FullName, files, seed);
            try
            {
                return Story(image, tree, random);
            }
            finally
            {
                tree.Delete();
            }
        }

        private int Story(string image, DemoTree tree, Random random)
        {
            Step($"sample tree in {tree.Root}: part A {Describe(tree, tree.A)}, " +
                 (tree.Xattr is { } x ? $"xattr {DemoTree.XattrName} on /{x.Path}" : $"no xattr (the local filesystem refused it: {tree.XattrRefused})") +
                 $"; part B {Describe(tree, tree.B)}");
            CopyA(image, tree);
            // A Ctrl-C reaches the child too (it stops the copy, exit 32): say cancelled, not failed.
            cli.Cancellation.ThrowIfCancellationRequested();
            var syncedB = CopyAndKillB(image, tree, random);

            // 3. Recover and verify: A synced, B prefix-consistent.
            Dictionary<string, (ulong Ino, Bpos Dirent)> inodes;
            using (var fs = BasaltFileSystem.Mount(image, cli.WritableMount))
            {
                Step($"recovered: {fs.Recovery.ToText()}");
                var problems = tree.VerifySynced(fs.Files, tree.A);
                Step($"part A (synced): {tree.A.Count - problems.Count} of {tree.A.Count} entries verified " +
                     $"({tree.Count(tree.A, DemoEntryKind.File)} files byte for byte, names, sizes, modes, symlink target, hard link" +
                     $"{(tree.Xattr is null ? "" : ", xattr")})");
                Problems(problems);
                Check(problems.Count == 0, "every synced file is there, byte for byte, with its name, size, mode and links");
                _report.Add($"crash   part A synced, {tree.A.Count - problems.Count} of {tree.A.Count} entries intact after the kill");
                var b = tree.VerifyPrefix(fs.Files, tree.B);
                var filesB = tree.Count(tree.B, DemoEntryKind.File);
                // put --fsync makes each file durable once copied: B holds those, and perhaps the file it was writing.
                Step($"part B (killed): {b.Complete} files complete, {b.Partial} partial (a prefix of the original), {b.Absent} absent, of {filesB}");
                Problems(b.Problems);
                Check(b.Problems.Count == 0, "every file of B in the image is complete or a prefix of itself; every name is one of B's");
                // Each file `put --fsync` reported durable before the kill must be whole.
                var durable = tree.B.Where(e => e.Kind == DemoEntryKind.File && syncedB.Contains("/" + e.Path)).ToList();
                var lost = tree.VerifySynced(fs.Files, durable);
                Step($"part B: {durable.Count - lost.Count} of the {durable.Count} files `put` reported durable before the kill are whole");
                Problems(lost);
                Check(lost.Count == 0 && durable.Count == syncedB.Count, "every file put reported as synced survived the kill, byte for byte");
                _report.Add($"        part B: {durable.Count - lost.Count} of {durable.Count} files reported synced before the kill intact");
                _report.Add($"        part B killed mid-copy: {b.Complete} complete, {b.Partial} partial, {b.Absent} absent of {filesB}" +
                            $"{(b.Problems.Count == 0 ? ", all prefix-consistent" : $", {b.Problems.Count} not prefix-consistent")}");
                inodes = DemoTree.Inodes(fs.Files, tree.A);
            }
            var afterCrash = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.CheckOnly });
            Findings("fsck -n after the recovery", afterCrash);
            Check(afterCrash.Clean, "fsck finds nothing wrong after the kill and the recovery");

            // 4. Damage the leaf of file names that holds the name of a seeded file of A: a bit flip
            // in a key header, checksum left bad. The file is one of the later half by name position,
            // so that the leaf is unlikely to hold the root's names too (which would take all of A).
            var victims = tree.A.Where(e => e.Kind == DemoEntryKind.File).OrderBy(e => inodes[e.Path].Dirent).ToList();
            victims = victims[(victims.Count / 2)..];
            var victim = victims[random.Next(victims.Count)];
            CorruptResult damage;
            using (var device = FileBlockDevice.Open(image, readOnly: false))
            {
                damage = ImageCorruptor.Corrupt(device, new CorruptRequest
                {
                    Target = CorruptTarget.Key, Btree = BtreeId.Dirents, Level = 0, Field = "pos.offset",
                    Mode = CorruptMode.Bitflip, FixChecksum = false, Seed = seed, Holding = inodes[victim.Path].Dirent,
                });
            }
            Step("damaged: " + damage.ToText().Replace("\n", "; ", StringComparison.Ordinal));
            var node = damage.Node!;
            bool InNode(Bpos pos) => pos >= node.Min && pos <= node.Max;
            var namesInNode = tree.A.Where(e => inodes.TryGetValue(e.Path, out var i) && InNode(i.Dirent)).ToList();
            // An entry is beyond the damage when neither its name nor a name on its path lies in the leaf.
            bool Beyond(DemoEntry e)
            {
                for (var path = e.Path; path.Length > 0; path = path[..Math.Max(0, path.LastIndexOf('/'))])
                {
                    if (inodes.TryGetValue(path, out var i) && InNode(i.Dirent))
                        return false;
                }
                return true;
            }
            var beyond = tree.A.Count(Beyond);
            Step($"the damaged leaf covers {node.Min.ToText()}..{node.Max.ToText()} (it holds the name /{victim.Path}): {namesInNode.Count} names of part A live there, " +
                 $"{tree.A.Count - beyond} entries of A lie at or below them, {beyond} beyond");

            var hashBefore = Hash(image);
            var check = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.CheckOnly });
            Findings("fsck -n", check);
            Check(!check.Clean, "fsck -n finds the damage");
            Check(check.ExitCode == FsckExitCodes.Uncorrected, $"fsck -n exits 4 (it exited {check.ExitCode})");
            Check(Hash(image).SequenceEqual(hashBefore), "fsck -n leaves every byte of the image unchanged");

            var repair = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.Yes });
            Findings("fsck -y", repair);
            Check((repair.ExitCode & FsckExitCodes.Corrected) != 0, $"fsck -y corrects them (exit {repair.ExitCode})");
            // The node scan may restore the damaged leaf from an older version on disk: the names it
            // held then come back, later ones are lost (their inodes go to lost+found).
            if (repair.Findings.Any(f => f.Id == FsckErrorId.BtreeRangeRestoredFromOlderVersion))
                Step("fsck restored the damaged leaf's range from an older version of it: the names it held then are back");
            var again = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.CheckOnly });
            Findings("second fsck -n", again);
            Check(again.Clean, "a second fsck after the repair is clean");

            // 5. Where each synced entry went.
            using (var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true }))
            {
                var lostFound = DemoTree.LostAndFound(fs.Files);
                int inPlace = 0, reattached = 0, lost = 0, damagedBeyond = 0, wrong = 0;
                var problems = new List<string>();
                foreach (var e in tree.A)
                {
                    var ino = inodes[e.Path].Ino;
                    if (fs.Files.TryResolvePath(Encoding.UTF8.GetBytes("/" + e.Path), followLast: false, out var attr, out _) && attr.Ino == ino)
                    {
                        inPlace++;
                    }
                    else if (lostFound.TryGetValue(ino, out var where) && fs.Files.TryResolvePath(Encoding.UTF8.GetBytes(where), followLast: false, out attr, out _))
                    {
                        reattached++;
                    }
                    else
                    {
                        lost++;
                        if (Beyond(e))
                        {
                            damagedBeyond++;
                            problems.Add($"/{e.Path}: lost, though no name on its path was in the damaged leaf");
                        }
                        continue;
                    }
                    // Directories reattached keep their entries but may have lost names: only their kind counts.
                    var problem = e.Kind == DemoEntryKind.Directory ? (attr.IsDirectory ? null : $"a {attr.Type}, not a directory")
                        : DemoTree.Check(fs.Files, e, attr);
                    if (problem is not null)
                    {
                        wrong++;
                        problems.Add($"/{e.Path}: {problem}");
                    }
                }
                Step($"after repair: of {tree.A.Count} synced entries of A, {inPlace} at their path, {reattached} reattached in lost+found " +
                     $"({lostFound.Count} entries there), {lost} lost with their names; {wrong} read back wrong");
                Problems(problems);
                Check(damagedBeyond == 0, "every synced entry beyond the damaged leaf is still there");
                Check(wrong == 0, "every synced file still there reads back byte for byte, wherever it is now");
                _report.Add($"damage  one dirents leaf ({namesInNode.Count} names of A); fsck -n {check.Findings.Count} findings, -y repaired " +
                            $"{repair.Findings.Count(f => f.Corrected)}, then {(again.Clean ? "clean" : $"{again.Findings.Count} findings")}");
                _report.Add($"        part A after repair: {inPlace} at their path, {reattached} in lost+found, {lost} lost, {wrong} wrong");
                var errorCounters = fs.Superblock.ErrorCounters;
                Step($"superblock error counters: {(errorCounters.Count == 0 ? "none" : string.Join(", ", errorCounters.Select(e => e.ToText())))}");
                Check(errorCounters.Count > 0, "the repair's findings are counted in the superblock");
            }

            cli.Line("report:");
            foreach (var line in _report)
                cli.Line($"  {line}");
            var verdict = _failures == 0 ? "demo passed" : $"demo FAILED: {_failures} check{(_failures == 1 ? "" : "s")} failed";
            cli.Line($"{verdict} in {_clock.Elapsed.TotalSeconds:0.0} s; image kept at {image}", _failures == 0 ? "green" : "red");
            return _failures == 0 ? CliExitCodes.Ok : CliExitCodes.Failure;
        }

        private static string Describe(DemoTree tree, List<DemoEntry> part) => string.Create(CultureInfo.InvariantCulture,
            $"{tree.Count(part, DemoEntryKind.File)} files ({tree.Bytes(part)} bytes) in {tree.Count(part, DemoEntryKind.Directory)} directories") +
            (part.Any(e => e.Kind == DemoEntryKind.Symlink) ? ", a sparse file, a symlink, a hard link" : "");

        /// <summary>`basalt put IMAGE LOCAL/a /` in a child, to the end: it unmounts cleanly, so all of A is synced.</summary>
        private void CopyA(string image, DemoTree tree)
        {
            using var child = LoadProcess.StartCommand(["put", image, Path.Combine(tree.Root, "a"), "/"]);
            var exited = child.WaitForExit(s_childTimeout);
            if (!exited)
                child.Kill();
            Step($"`basalt put` of part A (pid {child.Pid}) exited {(exited ? child.ExitCode.ToString(CultureInfo.InvariantCulture) : "late, killed")}: " +
                 string.Join("; ", child.OtherLines));
            foreach (var line in child.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Take(5))
                cli.Line($"    {line}", "yellow");
            Check(exited && child.ExitCode == CliExitCodes.Ok, "the copy of part A finished and unmounted the image cleanly (exit 0)");
        }

        /// <summary>
        /// `basalt put --fsync IMAGE LOCAL/b /` in a child (each file durable once copied), killed
        /// with SIGKILL once the image file has grown by a seeded 55..85% of B's bytes: the sparse
        /// image grows as the copy writes, so the kill lands mid-copy whatever the machine's speed.
        /// </summary>
        /// <summary>Copies part B with `put --fsync --print-synced` in a child and kills it mid-copy; returns the image paths it reported durable.</summary>
        private HashSet<string> CopyAndKillB(string image, DemoTree tree, Random random)
        {
            var imageName = Encoding.UTF8.GetBytes(image);
            long Allocated() => LocalFs.Stat(LocalFd.CurrentDirectory, imageName).Blocks * 512;
            var baseline = Allocated();
            var bytesB = tree.Bytes(tree.B);
            var threshold = bytesB * (55 + random.Next(31)) / 100;
            using var child = LoadProcess.StartCommand(["put", "--fsync", "--print-synced", image, Path.Combine(tree.Root, "b"), "/"]);
            var clock = Stopwatch.StartNew();
            long grown;
            while ((grown = Allocated() - baseline) < threshold && !child.HasExited && clock.Elapsed < s_childTimeout)
            {
                cli.Cancellation.ThrowIfCancellationRequested();
                Thread.Sleep(2);
            }
            child.Kill();
            Step(string.Create(CultureInfo.InvariantCulture,
                $"`basalt put` of part B (pid {child.Pid}) killed with SIGKILL after {clock.Elapsed.TotalSeconds:0.00} s, " +
                $"the image grown by {grown} bytes (threshold {threshold} of B's {bytesB})"));
            Check(child.Killed, "the copy of part B was still running when it was killed");
            var synced = child.OtherLines.Where(l => l.StartsWith("synced ", StringComparison.Ordinal)).Select(l => l["synced ".Length..]).ToHashSet();
            Step($"`basalt put` reported {synced.Count} files of B durable before the kill");
            return synced;
        }

        private void Problems(List<string> problems)
        {
            foreach (var p in problems.Take(10))
                cli.Line($"    {p}", "red");
            if (problems.Count > 10)
                cli.Line($"    ... and {problems.Count - 10} more");
        }

        private void Findings(string what, FsckReport report)
        {
            Step($"{what}: {FsckCommand.Summary(report)} (exit {report.ExitCode})");
            foreach (var f in report.Findings.Take(10))
                cli.Line($"    {f.ToText()}", f.Corrected ? "green" : "yellow");
            if (report.Findings.Count > 10)
                cli.Line($"    ... and {report.Findings.Count - 10} more");
        }

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
