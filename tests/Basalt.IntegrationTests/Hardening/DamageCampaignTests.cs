// A seeded damage campaign through the CLI, in process, on real image files: every round copies
// a small image with a 3-level test btree, damages it (debug corrupt on every target and mode,
// with and without --fix-csum; random bytes overwritten; a sector zeroed; the file truncated; a
// superblock copy wiped), then runs show-super, list (levels 0 and 1), fsck -n, fsck -y, fsck -n.
// Every command must return within a time limit with a documented exit code, errors in one line
// without a stack trace, and bounded memory; fsck -n must change no byte and report exactly what
// -y repairs; after -y a second fsck -n is clean and list shows only keys that were written.
// A round whose damage certainly hit live metadata (a changed byte inside the checksummed region
// of a live node record or superblock copy, no checksum recomputed, the file not truncated) must
// make the first fsck -n report at least one finding. Journal rounds (DamageCampaignTests.Journal.cs)
// damage the journal of an unclean image instead.
using System.Diagnostics;
using System.Text.Json;
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.IntegrationTests.Cli;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.IntegrationTests.Hardening;

public sealed partial class DamageCampaignTests : IClassFixture<DamageCampaignTests.BaseImage>
{
    private static readonly TimeSpan s_callTimeout = TimeSpan.FromSeconds(30);
    private const long MemoryGrowthLimit = 400L * 1024 * 1024;

    private readonly BaseImage _base;
    private readonly ITestOutputHelper _output;

    public DamageCampaignTests(BaseImage image, UncleanBase unclean, ITestOutputHelper output)
    {
        _base = image;
        _unclean = unclean;
        _output = output;
    }

    /// <summary>The image every round starts from, formatted and filled once per test class.</summary>
    public sealed class BaseImage : IDisposable
    {
        public static readonly string[] Geometry = ["--size", "16M", "--btree-node-size", "4K", "--block-size", "512", "--bucket-size", "128K"];
        public const int Keys = 4000;

        public BaseImage()
        {
            Dir = new TempDirectory("basalt-hardening");
            Path = Dir.File("base.img");
            var r = Cli(["format", .. Geometry, Path]);
            if (r.ExitCode != 0)
                throw new InvalidOperationException($"format failed: {r}");
            var random = new Random(12345);
            using (var fs = BasaltFileSystem.Mount(Path, new MountOptions()))
            {
                var tree = fs.Btrees[BtreeId.Test];
                for (var i = 0; i < Keys; i++)
                {
                    var pos = new Bpos(1 + (ulong)random.Next(5), (ulong)random.Next(1_000_000), 0);
                    var value = new byte[8 + random.Next(24)];
                    random.NextBytes(value);
                    tree.Insert(pos, value);
                    Written[pos] = KeyTypeTable.ToText(KeyType.Cookie, value);
                }
                // Data extents too, so damage meets allocation info, backpointers and extents:
                // files written, partly overwritten and punched.
                for (var i = 0; i < 60; i++)
                {
                    var data = new byte[1 + random.Next(120_000)];
                    random.NextBytes(data);
                    fs.Data.Write((ulong)(100 + (i % 25)), random.Next(150_000), data);
                    if (i % 7 == 3)
                        fs.Data.Punch((ulong)(100 + (i % 25)), random.Next(100_000), random.Next(60_000));
                }
                fs.Sync();
                Levels = tree.Root is { } root ? root.Level + 1 : 0;
            }
            LiveRegions = FindLiveRegions(Path);
            Leaves = FindLeaves(Path);
            // BASALT_HARDENING_DUMP=DIR keeps a copy of the base image for replaying a recipe by hand.
            if (Environment.GetEnvironmentVariable("BASALT_HARDENING_DUMP") is { Length: > 0 } dump)
                File.Copy(Path, System.IO.Path.Combine(dump, "base.img"), overwrite: true);
        }

        public TempDirectory Dir { get; }
        public string Path { get; }
        public int Levels { get; }

        /// <summary>Every key written with its value as list prints it (the last write wins).</summary>
        public Dictionary<Bpos, string> Written { get; } = [];

        /// <summary>
        /// The checksummed bytes every reader depends on, with their contents in the base image: each
        /// record of each node reachable from the roots below its pointer's sectors_written (checksum
        /// field, header and keys; not the padding), and each superblock copy up to its total_bytes.
        /// </summary>
        public IReadOnlyList<LiveRegion> LiveRegions { get; }

        /// <summary>Every leaf of the test btree in the base image: its range and its slot bytes below sectors_written.</summary>
        public IReadOnlyList<LiveRegion> Leaves { get; }

        /// <summary>The ranges of the test btree's leaves whose bytes in <paramref name="image"/> differ from the base image.</summary>
        public List<(Bpos Min, Bpos Max)> DamagedLeafRanges(string image)
        {
            using var file = File.OpenRead(image);
            var damaged = new List<(Bpos, Bpos)>();
            foreach (var leaf in Leaves)
            {
                var now = new byte[leaf.Bytes.Length];
                file.Position = leaf.Offset;
                var read = file.ReadAtLeast(now, now.Length, throwOnEndOfStream: false);
                if (read < now.Length || !now.AsSpan().SequenceEqual(leaf.Bytes))
                    damaged.Add(LeafRange(leaf));
            }
            return damaged;
        }

        /// <summary>A leaf region's range, from its node header.</summary>
        public static (Bpos Min, Bpos Max) LeafRange(LiveRegion leaf) =>
            (Bpos.Read(leaf.Bytes.AsSpan(BtreeNodeFormat.NodeMinKeyOffset)), Bpos.Read(leaf.Bytes.AsSpan(BtreeNodeFormat.NodeMaxKeyOffset)));

        private static List<LiveRegion> FindLeaves(string path)
        {
            var leaves = new List<LiveRegion>();
            using var device = FileBlockDevice.Open(path, readOnly: true);
            foreach (var node in Basalt.Cli.ImageCorruptor.ReachableNodes(device, out _).Where(n => n.Btree == BtreeId.Test && n.Level == 0))
            {
                var bytes = new byte[node.SectorsWritten * FormatLimits.SectorSize];
                device.Read(node.Offset, bytes);
                leaves.Add(new LiveRegion(node.ToText(), node.Offset, bytes));
            }
            return leaves;
        }

        /// <summary>The live regions whose bytes in <paramref name="image"/> differ from the base image.</summary>
        public List<LiveRegion> ChangedLiveRegions(string image)
        {
            using var file = File.OpenRead(image);
            var changed = new List<LiveRegion>();
            foreach (var region in LiveRegions)
            {
                var now = new byte[region.Bytes.Length];
                file.Position = region.Offset;
                var read = file.ReadAtLeast(now, now.Length, throwOnEndOfStream: false);
                if (read < now.Length || !now.AsSpan().SequenceEqual(region.Bytes))
                    changed.Add(region);
            }
            return changed;
        }

        private static List<LiveRegion> FindLiveRegions(string path)
        {
            var regions = new List<LiveRegion>();
            using var device = FileBlockDevice.Open(path, readOnly: true);
            var sb = SuperblockIo.Read(device).Superblock;
            for (var i = 0; i < sb.CopyOffsets.Count; i++)
            {
                var copy = new byte[SuperblockFormat.CopySize];
                device.Read(sb.CopyOffsets[i], copy);
                var total = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(copy.AsSpan(SuperblockFormat.TotalBytesOffset));
                regions.Add(new LiveRegion($"superblock copy {i}", sb.CopyOffsets[i], copy[..total]));
            }
            var slot = new byte[sb.NodeSize];
            foreach (var node in Basalt.Cli.ImageCorruptor.ReachableNodes(device, out _))
            {
                device.Read(node.Offset, slot);
                var written = node.SectorsWritten * FormatLimits.SectorSize;
                foreach (var record in BtreeNodeInspector.Walk(slot).Where(r => r.Offset < written))
                {
                    var end = record.KeysOffset + ((int)record.U64s * 8);
                    regions.Add(new LiveRegion($"{node.ToText()}, record at byte {record.Offset}", node.Offset + record.Offset,
                        slot.AsSpan(record.Offset, end - record.Offset).ToArray()));
                }
            }
            return regions;
        }

        public void Dispose() => Dir.Dispose();
    }

    /// <summary>Checksummed bytes of live metadata at a device offset, as the base image holds them.</summary>
    public sealed record LiveRegion(string What, long Offset, byte[] Bytes);

    [Fact]
    public void Base_image_has_a_deep_test_btree()
    {
        Assert.True(_base.Levels >= 2, $"test btree has {_base.Levels} levels");
        var r = Cli(["fsck", "-n", _base.Path]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(3, _base.LiveRegions.Count(l => l.What.StartsWith("superblock", StringComparison.Ordinal)));
        Assert.True(_base.LiveRegions.Count > 3 + 10, $"{_base.LiveRegions.Count} live regions");
        Assert.Empty(_base.ChangedLiveRegions(_base.Path));
    }

    [Theory]
    [InlineData("corrupt node bitflip nofix seed=3")]
    [InlineData("corrupt key random nofix seed=8 level=0")]
    [InlineData("corrupt bset bitflip nofix seed=21 level=1")]
    [InlineData("zero-sector {live node sector}")]
    [InlineData("bytes {live node byte}+3 seed=4")]
    [InlineData("wipe-super 1")]
    [InlineData("multi zero-sector {live node sector} & wipe-super 0,2")]
    public void Damage_to_live_metadata_is_always_found_by_the_first_fsck_n(string recipe)
    {
        // {live node …}: the last node record of the base image (a leaf, written last).
        var node = _base.LiveRegions.Last(r => r.What.StartsWith("node", StringComparison.Ordinal));
        var damage = Damage.Parse(recipe
            .Replace("{live node sector}", (node.Offset / FormatLimits.SectorSize).ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{live node byte}", (node.Offset + 100).ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        Assert.True(damage.CertainlyDetectable, recipe);
        RunRound(-2, damage, requireCertainDamage: true);
    }

    [Fact]
    public void Seeded_damage_rounds_never_crash_hang_or_diverge()
    {
        var seed = TestSeed.Get(_output, "damage campaign");
        var rounds = LongTests.Scale(120, 10);
        var single = Environment.GetEnvironmentVariable("BASALT_ROUND") is { } only && int.TryParse(only, out var o) ? o : -1;
        var clock = Stopwatch.StartNew();
        var failures = new List<string>();
        var certain = 0;
        for (var round = 0; round < rounds; round++)
        {
            if (single >= 0 && round != single)
                continue;
            var recipe = Damage.Pick(new Random(unchecked((seed * 1_000_003) + round)));
            try
            {
                if (RunRound(round, recipe))
                    certain++;
            }
            catch (Exception e) when (e is Xunit.Sdk.XunitException or TimeoutException)
            {
                failures.Add($"round {round} ({recipe}): {e.Message}");
                _output.WriteLine($"FAILED round {round}: replay with BASALT_SEED={seed} BASALT_ROUND={round}: {recipe}\n{e.Message}");
            }
        }
        _output.WriteLine($"{rounds} rounds in {clock.Elapsed.TotalSeconds:F1} s, {certain} with damage certain to be found");
        Assert.True(failures.Count == 0, $"seed {seed}: {failures.Count} rounds failed:\n{string.Join("\n\n", failures)}");
        if (single < 0)
            Assert.True(certain >= rounds / 10, $"seed {seed}: only {certain} of {rounds} rounds damaged live metadata for certain");
    }

    /// <summary>Known recipes that once failed; each stays as a regression case.</summary>
    [Theory]
    [MemberData(nameof(Regressions))]
    public void Regression_recipes(string recipe) => RunRound(-1, Damage.Parse(recipe));

    public static TheoryData<string> Regressions() => new(DamageRegressions.Recipes);

    /// <summary>Runs one round; returns whether its damage was certain to be found (and was).</summary>
    internal bool RunRound(int round, Damage damage, bool requireCertainDamage = false)
    {
        var image = _base.Dir.File($"round-{round}-{Environment.CurrentManagedThreadId}.img");
        File.Copy(_base.Path, image, overwrite: true);
        try
        {
            var applied = damage.Apply(image);
            // BASALT_HARDENING_DUMP=DIR also keeps each damaged image, before any repair.
            if (Environment.GetEnvironmentVariable("BASALT_HARDENING_DUMP") is { Length: > 0 } dumpTo)
                File.Copy(image, Path.Combine(dumpTo, $"round-{round}.img"), overwrite: true);
            // Certain: bytes of live checksummed metadata changed, and no checksum was recomputed
            // over them (a recomputed checksum can make a changed key or field legal).
            var changed = damage.CertainlyDetectable ? _base.ChangedLiveRegions(image) : [];
            var certain = changed.Count > 0;
            _output.WriteLine($"round {round}: {damage}: {applied}" +
                              (certain ? $" (live metadata changed: {string.Join("; ", changed.Take(3).Select(c => c.What))})" : ""));
            Assert.True(certain || !requireCertainDamage, $"{damage} changed no live metadata: {applied}");
            var memoryBefore = GC.GetTotalMemory(forceFullCollection: true);

            Check(["show-super", image], isFsck: false);
            Check(["list", image, "--btree", "test"], isFsck: false);
            Check(["list", image, "--btree", "test", "--level", "1"], isFsck: false);

            var hash = CliImages(image);
            var check = Check(["fsck", "-n", "--json", image], isFsck: true);
            Assert.True(hash.AsSpan().SequenceEqual(CliImages(image)), $"fsck -n changed the image: {check}");
            if (certain)
            {
                // Only when every superblock copy was hit may fsck be unable to open the image at all.
                var everyCopy = changed.Count(c => c.What.StartsWith("superblock copy", StringComparison.Ordinal)) == 3;
                if (check.ExitCode == 8)
                    Assert.True(everyCopy, $"fsck -n could not check an image whose live metadata was damaged ({string.Join("; ", changed.Select(c => c.What))}):\n{check}");
                else
                    Assert.True(Findings(check).Count > 0 && check.ExitCode == 4,
                        $"fsck -n found nothing although live metadata changed ({string.Join("; ", changed.Select(c => c.What))}):\n{check}");
            }
            // A truncation that leaves a superblock copy to read is always found, first.
            if (damage.Truncates && check.ExitCode != 8)
                Assert.True(Findings(check).FirstOrDefault()?.StartsWith("device_truncated ", StringComparison.Ordinal) == true, $"fsck -n did not report the truncation first:\n{check}");
            var repair = Check(["fsck", "-y", "--json", image], isFsck: true);
            AssertMemory(memoryBefore);

            if (check.ExitCode == 8 || repair.ExitCode == 8)
            {
                // An image fsck cannot open: both runs must say so, and nothing was written.
                Assert.True(check.ExitCode == 8 && repair.ExitCode == 8, $"fsck -n exit {check.ExitCode}, fsck -y exit {repair.ExitCode}:\n{check}\n{repair}");
                Assert.True(hash.AsSpan().SequenceEqual(CliImages(image)), "fsck -y that could not open the image changed it");
                return certain;
            }
            var found = Findings(check);
            var repaired = Findings(repair);
            Assert.True(found.SequenceEqual(repaired),
                $"fsck -n findings differ from fsck -y findings:\n-n:\n  {string.Join("\n  ", found)}\n-y:\n  {string.Join("\n  ", repaired)}");

            var again = Check(["fsck", "-n", "--json", image], isFsck: true);
            // The one exception to "clean after -y": findings whose catalogue policy is never
            // (sb_member_invalid, btree_node_unsupported_version) have no repair, so they may stay;
            // then the second run may report those and nothing else.
            var unrepairable = Policies(repair).Contains("never");
            if (!unrepairable)
                Assert.True(again.ExitCode == 0, $"second fsck -n after fsck -y (exit {repair.ExitCode}) is not clean:\n{again}\nfirst -y:\n{repair.Out}");
            else
                Assert.True(again.ExitCode is 0 or 4 && Policies(again).All(p => p == "never"), $"after fsck -y, more than the unrepairable findings remain:\n{again}");

            var list = Check(["list", image, "--btree", "test", "--json"], isFsck: false);
            Assert.True(list.ExitCode == 0, $"list after fsck -y failed: {Show(list)}");
            AssertOnlyWrittenKeys(list, damage.ForgedKeys);
            // Every key outside the damaged leaves survives the repair, forged fields included (a
            // forged pointer's node comes back over its own range, a btree whose superblock root
            // is invalid is rebuilt from the node scan).
            AssertNoKeyLostOutsideDamagedLeaves(list, _base.DamagedLeafRanges(image), repair);
            AssertMemory(memoryBefore);
            return certain;
        }
        finally
        {
            File.Delete(image);
        }
    }

    /// <summary>
    /// Every listed key was written, with the value written last. <paramref name="forged"/> keys
    /// may differ: a key changed by debug corrupt with its checksum recomputed is a valid key
    /// (cookie values are arbitrary bytes), which no check can tell from a written one.
    /// </summary>
    private void AssertOnlyWrittenKeys(CliResult list, int forged)
    {
        using var doc = JsonDocument.Parse(list.Out);
        var unexpected = new List<string>();
        foreach (var key in doc.RootElement.GetProperty("keys").EnumerateArray())
        {
            var posText = key.GetProperty("pos").GetString()!;
            Assert.True(Bpos.TryParse(posText, out var pos), $"list printed an unparsable position {posText}");
            Assert.Equal("cookie", key.GetProperty("type").GetString());
            if (!_base.Written.TryGetValue(pos, out var value))
                unexpected.Add($"key {posText} was never written");
            else if (value != key.GetProperty("value").GetString())
                unexpected.Add($"key {posText} has value {key.GetProperty("value").GetString()}, written {value}");
        }
        Assert.True(unexpected.Count <= forged, $"list after fsck -y: {string.Join("; ", unexpected)}");
    }

    /// <summary>Every written key whose leaf's bytes are unchanged is listed after fsck -y, with its value.</summary>
    private void AssertNoKeyLostOutsideDamagedLeaves(CliResult list, List<(Bpos Min, Bpos Max)> damaged, CliResult repair)
    {
        using var doc = JsonDocument.Parse(list.Out);
        var listed = new Dictionary<Bpos, string>();
        foreach (var key in doc.RootElement.GetProperty("keys").EnumerateArray())
        {
            if (Bpos.TryParse(key.GetProperty("pos").GetString(), out var pos))
                listed[pos] = key.GetProperty("value").GetString()!;
        }
        var lost = _base.Written
            .Where(w => !damaged.Any(d => d.Min <= w.Key && w.Key <= d.Max))
            .Where(w => !listed.TryGetValue(w.Key, out var v) || v != w.Value)
            .Select(w => w.Key.ToText())
            .ToList();
        Assert.True(lost.Count == 0,
            $"{lost.Count} keys outside the {damaged.Count} damaged leaves were lost (first: {string.Join(", ", lost.Take(5))}); fsck -y:\n{Show(repair)}");
    }

    private static void AssertMemory(long before)
    {
        var after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(after - before < MemoryGrowthLimit, $"managed memory grew by {(after - before) >> 20} MiB");
        var workingSet = Process.GetCurrentProcess().WorkingSet64;
        Assert.True(workingSet < 2L * 1024 * 1024 * 1024, $"working set {workingSet >> 20} MiB");
    }

    private static byte[] CliImages(string path) => System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path));

    private static List<string> Findings(CliResult fsck)
    {
        using var doc = JsonDocument.Parse(fsck.Out);
        return [.. doc.RootElement.GetProperty("findings").EnumerateArray().Select(f =>
            $"{f.GetProperty("name").GetString()} at {f.GetProperty("where").GetString()}: {f.GetProperty("detail").GetString()}")];
    }

    private static HashSet<string> Policies(CliResult fsck)
    {
        using var doc = JsonDocument.Parse(fsck.Out);
        return [.. doc.RootElement.GetProperty("findings").EnumerateArray().Select(f => f.GetProperty("policy").GetString()!)];
    }

    /// <summary>Runs one command and checks the rules every command obeys on any image.</summary>
    private CliResult Check(string[] args, bool isFsck)
    {
        var r = Cli(args);
        var line = $"basalt {string.Join(' ', args)}";
        _output.WriteLine($"  {line}: exit {r.ExitCode}{(r.ErrLines.Length > 0 ? $", {r.ErrLines[0]}" : "")}");
        int[] allowed = isFsck ? [0, 1, 4, 5, 8] : [0, 1, 8];
        Assert.True(allowed.Contains(r.ExitCode), $"{line}: undocumented exit code:\n{Show(r)}");
        var isError = isFsck ? r.ExitCode >= 8 : r.ExitCode != 0;
        if (isError)
            Assert.True(r.ErrLines.Length <= 1, $"{line}: an error must be one line:\n{Show(r)}");
        Assert.False(r.Err.Contains("   at ", StringComparison.Ordinal), $"{line}: stack trace on stderr:\n{Show(r)}");
        if (r.Err.Contains("Exception", StringComparison.Ordinal) || r.Err.Contains("internal error", StringComparison.Ordinal))
        {
            // The same command with --verbose, for the stack trace (the image may have changed if it wrote).
            var verbose = Cli([.. args, "--verbose"]);
            Assert.Fail($"{line}: an exception reached the user:\n{Show(r)}\nwith --verbose:\n{verbose.Err}");
        }
        if (args.Contains("--json"))
        {
            try
            {
                using var doc = JsonDocument.Parse(r.Out);
            }
            catch (JsonException e)
            {
                Assert.Fail($"{line}: stdout is not one JSON document ({e.Message}):\n{Show(r)}");
            }
        }
        return r;
    }

    private static string Show(CliResult r) =>
        r.Out.Length <= 2000 ? r.ToString() : (r with { Out = r.Out[..1000] + "\n…\n" + r.Out[^600..] }).ToString();

    internal static CliResult Cli(string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var task = Task.Run(() => Basalt.Cli.Program.Run(args, stdout, stderr));
        if (!task.Wait(s_callTimeout))
            throw new TimeoutException($"basalt {string.Join(' ', args)} did not finish within {s_callTimeout.TotalSeconds} s");
        return new CliResult(task.Result, stdout.ToString(), stderr.ToString());
    }
}
