// basalt demo [DIR] [--keys N] [--seed N] [--force]
// A self-check anyone can run: format an image, fill the test btree from a seeded workload while
// keeping a model, sync and remount, verify every key, damage a leaf with the same machinery as
// `debug corrupt`, show what fsck -n finds (image untouched), repair with -y, check that a second
// fsck is clean, and verify again: every key outside the damaged leaf must have survived intact.
// Every number printed comes from the run; any failed check makes the exit status 1.
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
        var keys = CliOptions.Int("--keys", null, "workload operations, 100..10000000 (default 50000)", min: 100, max: 10_000_000, defaultValue: 50_000);
        var seed = CliOptions.Int("--seed", null, "workload and corruption seed (default 42)", defaultValue: 42);
        var force = new Option<bool>("--force", "-f") { Description = "overwrite DIR/demo.img when it exists" };
        var command = new Command("demo", "format, fill, verify, damage, fsck, repair and verify again: a self-check in a few seconds")
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

    private sealed class Demo(CliContext cli, string? dir, int operations, int seed, bool force)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly SortedDictionary<Bpos, byte[]> _model = [];
        private int _failures;

        public int Run()
        {
            const long size = 128L * 1024 * 1024;
            var created = CreateImage(dir, size, force, out var image);
            Step($"image {image} (seed {seed})");

            // 1. Format with small nodes so the workload builds a tree several levels deep.
            using (created)
            using (var fs = BasaltFileSystem.Format(created, new FormatOptions
                   {
                       BlockSize = 4096, NodeSize = 16 * 1024, BucketSize = 128 * 1024, Label = "basalt-demo",
                   }))
            {
                Step($"formatted {SuperblockText.Size(size)}: node size {fs.Superblock.NodeSize}, block size {fs.Superblock.BlockSize}, " +
                     $"node area {SuperblockText.Size(fs.Superblock.NodeAreaLength)}");

                // 2. Workload: inserts, overwrites and deletes from a fixed seed, mirrored in the model.
                var (inserts, overwrites, deletes) = cli.WithStatus("running the workload", () => Fill(fs));
                fs.Sync();
                Step($"workload: {operations} operations ({inserts} inserts, {overwrites} overwrites, {deletes} deletes), " +
                     $"{_model.Count} keys live; synced");
            }

            // 3. Remount and verify every key.
            using (var fs = BasaltFileSystem.Mount(image, cli.WritableMount))
            {
                var v = Verify(fs);
                Step($"remounted: {v.Intact} of {_model.Count} keys intact, {v.Missing} missing, {v.Wrong} wrong, {v.Unexpected} unexpected, " +
                     $"depth {Depth(fs)}");
                Check(v.Intact == _model.Count && v.Unexpected == 0, "every key survives a remount");
            }

            // 4. Damage one leaf: a bit flip in a key header, checksum left bad.
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
            var inNode = _model.Keys.Count(k => k >= node.Min && k <= node.Max);
            Step($"the damaged leaf covers {node.Min.ToText()}..{node.Max.ToText()}: {inNode} keys of the model live there");

            // 5. fsck -n: findings, image unchanged.
            var hashBefore = Hash(image);
            var check = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.CheckOnly });
            Findings("fsck -n", check);
            Check(!check.Clean, "fsck -n finds the damage");
            Check(check.ExitCode == FsckExitCodes.Uncorrected, $"fsck -n exits 4 (it exited {check.ExitCode})");
            Check(Hash(image).SequenceEqual(hashBefore), "fsck -n leaves every byte of the image unchanged");

            // 6. fsck -y: the same findings, repaired; a second run is clean.
            var repair = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.Yes });
            Findings("fsck -y", repair);
            Check(Same(check, repair), "fsck -y reports exactly the findings fsck -n reported");
            Check((repair.ExitCode & FsckExitCodes.Corrected) != 0, $"fsck -y corrects them (exit {repair.ExitCode})");
            var again = Basalt.Fsck.Fsck.Run(image, new FsckOptions { Mode = FsckMode.CheckOnly });
            Step($"second fsck -n: {(again.Clean ? "clean" : $"{again.Findings.Count} findings")}");
            Check(again.Clean, "a second fsck after the repair is clean");

            // 7. Verify again: what was lost must lie in the damaged leaf; nothing may be wrong.
            using (var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true }))
            {
                var v = Verify(fs);
                var lostOutside = v.MissingKeys.Count(k => k < node.Min || k > node.Max);
                Step($"after repair: {v.Intact} of {_model.Count} keys intact, {v.Missing} lost (all of them in the damaged leaf: " +
                     $"{(lostOutside == 0 ? "yes" : $"no, {lostOutside} outside")}), {v.Wrong} wrong, {v.Unexpected} unexpected");
                Check(lostOutside == 0, "keys outside the damaged leaf are all kept");
                Check(v.Missing <= inNode, "no more keys are lost than the damaged leaf held");
                Check(v.Wrong == 0 && v.Unexpected == 0, "no key has a wrong value and no unknown key appears");
                var errorCounters = fs.Superblock.ErrorCounters;
                Step($"superblock error counters: {(errorCounters.Count == 0 ? "none" : string.Join(", ", errorCounters.Select(e => e.ToText())))}");
                Check(errorCounters.Count > 0, "the repair's findings are counted in the superblock");
            }

            var verdict = _failures == 0 ? "demo passed" : $"demo FAILED: {_failures} check{(_failures == 1 ? "" : "s")} failed";
            cli.Line($"{verdict} in {_clock.Elapsed.TotalSeconds:0.0} s; image kept at {image}", _failures == 0 ? "green" : "red");
            return _failures == 0 ? CliExitCodes.Ok : CliExitCodes.Failure;
        }

        private (int Inserts, int Overwrites, int Deletes) Fill(BasaltFileSystem fs)
        {
            var random = new Random(seed);
            var tree = fs.Btrees[BtreeId.Test];
            var live = new List<Bpos>();
            int inserts = 0, overwrites = 0, deletes = 0;
            for (var i = 0; i < operations; i++)
            {
                var roll = random.Next(100);
                if (live.Count == 0 || roll < 60)
                {
                    var pos = new Bpos((ulong)random.Next(1, 65), (ulong)random.Next(0, 1_000_000));
                    var value = RandomValue(random);
                    tree.Insert(pos, value);
                    if (_model.TryAdd(pos, value))
                        live.Add(pos);
                    else
                        _model[pos] = value;
                    inserts++;
                }
                else if (roll < 85)
                {
                    var pos = live[random.Next(live.Count)];
                    var value = RandomValue(random);
                    tree.Insert(pos, value);
                    _model[pos] = value;
                    overwrites++;
                }
                else
                {
                    var index = random.Next(live.Count);
                    var pos = live[index];
                    live[index] = live[^1];
                    live.RemoveAt(live.Count - 1);
                    if (!tree.Delete(pos))
                        Check(false, $"delete of live key {pos.ToText()} found it");
                    _model.Remove(pos);
                    deletes++;
                }
            }
            return (inserts, overwrites, deletes);
        }

        private static byte[] RandomValue(Random random)
        {
            var value = new byte[random.Next(8, 65)];
            random.NextBytes(value);
            return value;
        }

        private sealed record Verification(int Intact, int Missing, int Wrong, int Unexpected, List<Bpos> MissingKeys);

        private Verification Verify(BasaltFileSystem fs)
        {
            var tree = fs.Btrees[BtreeId.Test];
            int intact = 0, wrong = 0, unexpected = 0;
            var missing = new List<Bpos>();
            foreach (var (pos, value) in _model)
            {
                if (!tree.TryGet(pos, out var found))
                    missing.Add(pos);
                else if (found.AsSpan().SequenceEqual(value))
                    intact++;
                else
                    wrong++;
            }
            var it = tree.Iterate(Bpos.Min, Bpos.Max);
            while (it.MoveNext())
            {
                if (!_model.ContainsKey(it.Key.Pos))
                    unexpected++;
            }
            return new Verification(intact, missing.Count, wrong, unexpected, missing);
        }

        private static int Depth(BasaltFileSystem fs) =>
            fs.Superblock.RootOf(BtreeId.Test) is { } root ? root.Level + 1 : 0;

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
