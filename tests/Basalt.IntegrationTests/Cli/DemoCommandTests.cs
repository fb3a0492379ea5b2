using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Basalt.Cli;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed partial class DemoCommandTests
{
    [Fact]
    public void Demo_passes_every_check_and_prints_numbers_from_the_run()
    {
        using var dir = new TempDirectory("cli-demo");
        const int Keys = 300;
        const int Seed = 5;
        var r = CliRunner.Run("demo", dir.Path, "--keys", Keys.ToString(CultureInfo.InvariantCulture), "--seed", Seed.ToString(CultureInfo.InvariantCulture));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("demo passed", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("FAIL", r.Out, StringComparison.Ordinal);
        Assert.Contains("second fsck -n: clean", r.Out, StringComparison.Ordinal);
        Assert.Contains("fsck -n after the kill: ", r.Out, StringComparison.Ordinal);
        var image = Path.Combine(dir.Path, "demo.img");
        Assert.True(File.Exists(image));
        var p = new LoadParameters(Seed, 2, 100, Keys);

        // The child reported durable transactions; the recovery found each thread at or past them.
        var killed = Killed().Match(r.Out);
        Assert.True(killed.Success, r.Out);
        Assert.True(int.Parse(killed.Groups["lines"].Value, CultureInfo.InvariantCulture) >= 2);
        var durable = new[] { long.Parse(killed.Groups["d0"].Value, CultureInfo.InvariantCulture), long.Parse(killed.Groups["d1"].Value, CultureInfo.InvariantCulture) };
        var recovered = Recovered().Match(r.Out);
        Assert.True(recovered.Success, r.Out);
        var k = new[] { long.Parse(recovered.Groups["k0"].Value, CultureInfo.InvariantCulture), long.Parse(recovered.Groups["k1"].Value, CultureInfo.InvariantCulture) };
        Assert.Equal(durable[0], long.Parse(recovered.Groups["d0"].Value, CultureInfo.InvariantCulture));
        Assert.Equal(durable[1], long.Parse(recovered.Groups["d1"].Value, CultureInfo.InvariantCulture));
        Assert.True(k[0] >= durable[0] && k[1] >= durable[1], recovered.Value);
        Assert.True(durable.Min() > 0, "both threads made commits durable before the kill");
        Assert.Equal("0", recovered.Groups["differences"].Value);
        Assert.InRange(int.Parse(recovered.Groups["depth"].Value, CultureInfo.InvariantCulture), 2, 8);

        // The keys those counters call for, computed here: one counter per thread plus the live slots.
        var expected = new SortedDictionary<Bpos, byte[]>();
        for (var t = 0; t < 2; t++)
        {
            expected[LoadModel.CounterPos(t)] = LoadModel.CounterValue(p, t, k[t]);
            foreach (var (slot, writer) in LoadModel.ExpectedSlots(p, t, k[t]))
                expected[LoadModel.SlotPos(t, slot)] = LoadModel.Value(p, t, writer, slot);
        }
        Assert.Equal(expected.Count, long.Parse(recovered.Groups["keys"].Value, CultureInfo.InvariantCulture));
        Assert.Contains($"{expected.Count} keys verified, 0 differences; unmounting cleanly", r.Out, StringComparison.Ordinal);

        var leaf = DamagedLeaf().Match(r.Out);
        Assert.True(leaf.Success, r.Out);
        Assert.True(Bpos.TryParse(leaf.Groups["min"].Value, out var min), leaf.Value);
        Assert.True(Bpos.TryParse(leaf.Groups["max"].Value, out var max), leaf.Value);
        var inLeaf = expected.Keys.Count(pos => pos >= min && pos <= max);
        Assert.Equal(inLeaf, int.Parse(leaf.Groups["keys"].Value, CultureInfo.InvariantCulture));

        var check = FsckSummary().Match(r.Out);
        Assert.True(check.Success, r.Out);
        var findings = int.Parse(check.Groups["findings"].Value, CultureInfo.InvariantCulture);
        Assert.True(findings > 0);
        var findingLines = r.Out.Split('\n').SkipWhile(l => !l.Contains("] fsck -n: ", StringComparison.Ordinal)).Skip(1)
            .TakeWhile(l => l.StartsWith("    ", StringComparison.Ordinal) && !l.TrimStart().StartsWith("ok", StringComparison.Ordinal)).Count();
        Assert.Equal(Math.Min(findings, 10) + (findings > 10 ? 1 : 0), findingLines);

        var after = AfterRepair().Match(r.Out);
        Assert.True(after.Success, r.Out);
        var intact = int.Parse(after.Groups["intact"].Value, CultureInfo.InvariantCulture);
        var lost = int.Parse(after.Groups["lost"].Value, CultureInfo.InvariantCulture);
        var wrong = int.Parse(after.Groups["wrong"].Value, CultureInfo.InvariantCulture);
        var extra = int.Parse(after.Groups["extra"].Value, CultureInfo.InvariantCulture);
        Assert.Equal(expected.Count, int.Parse(after.Groups["live"].Value, CultureInfo.InvariantCulture));
        Assert.Equal(expected.Count, intact + lost + wrong);
        Assert.InRange(lost + wrong, 0, inLeaf);
        // Keys may differ from the expected ones only where fsck restored the damaged leaf's range
        // from an older version of it (the node scan found one on disk), and it must say so.
        var restoredOlder = r.Out.Contains("restored the damaged leaf's range from an older version", StringComparison.Ordinal);
        Assert.True(restoredOlder || (wrong == 0 && extra == 0), after.Value);
        Assert.Equal(restoredOlder, r.Out.Contains("btree_range_restored_from_older_version", StringComparison.Ordinal));

        // The image it leaves holds exactly the expected keys but those lost from the damaged leaf.
        var list = CliRunner.Succeeds("list", "--btree", "test", "--json", image);
        using var doc = JsonDocument.Parse(list.Out);
        var listed = 0;
        foreach (var key in doc.RootElement.GetProperty("keys").EnumerateArray())
        {
            Assert.True(Bpos.TryParse(key.GetProperty("pos").GetString(), out var pos));
            if (pos == LoadModel.ParametersPos)
                continue;
            listed++;
            if (restoredOlder && pos >= min && pos <= max)
                continue;
            Assert.True(expected.TryGetValue(pos, out var value), $"{pos.ToText()} is not a key of transactions 1..k");
            Assert.Equal(value.Length, key.GetProperty("value_length").GetInt32());
            Assert.StartsWith($"{value.Length} bytes {Convert.ToHexStringLower(value.AsSpan(0, Math.Min(16, value.Length)))}",
                key.GetProperty("value").GetString(), StringComparison.Ordinal);
            Assert.False(pos >= min && pos <= max && lost == inLeaf, $"{pos.ToText()} in the dropped leaf survived");
        }
        Assert.Equal(intact + wrong + extra, listed);

        // The error counters it prints are the superblock's.
        var show = CliRunner.Succeeds("show-super", "--json", image);
        using var sb = JsonDocument.Parse(show.Out);
        var counters = sb.RootElement.GetProperty("error_counters").EnumerateArray().ToList();
        Assert.NotEmpty(counters);
        var counterLine = Assert.Single(r.Out.Split('\n'), l => l.Contains("superblock error counters:", StringComparison.Ordinal));
        foreach (var counter in counters)
        {
            Assert.Contains($"{counter.GetProperty("name").GetString()} ({counter.GetProperty("id").GetInt32()}): {counter.GetProperty("count").GetUInt64()}",
                counterLine, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Demo_rejects_a_silly_workload_size() =>
        CliRunner.Fails(16, ["demo", "--keys", "5"], "--keys");

    [Fact]
    public void Demo_refuses_to_overwrite_an_existing_image_without_force()
    {
        using var dir = new TempDirectory("cli-demo");
        var image = Path.Combine(dir.Path, "demo.img");
        File.WriteAllBytes(image, [1, 2, 3]);

        var r = CliRunner.Fails(1, ["demo", dir.Path, "--keys", "100"]);

        Assert.Equal($"basalt demo: {image}: already exists; the demo would overwrite it (use --force, or give another DIR)",
            Assert.Single(r.ErrLines));
        Assert.Equal("", r.Out);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(image));

        var forced = CliRunner.Run("demo", dir.Path, "--keys", "100", "--force");
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.Contains($"image kept at {image}", forced.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Demo_refuses_a_dir_that_is_a_file()
    {
        using var dir = new TempDirectory("cli-demo");
        var file = dir.File("not-a-dir");
        File.WriteAllBytes(file, [7]);
        CliRunner.Fails(1, ["demo", file], $"{file}: is a file, not a directory");
        Assert.Equal([7], File.ReadAllBytes(file));
    }

    [Fact]
    public void Help_shows_dir_as_optional()
    {
        var top = CliRunner.Succeeds("--help");
        Assert.Contains("\n  demo [<DIR>] ", top.Out.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.DoesNotContain("demo <DIR>", top.Out, StringComparison.Ordinal);
        // The other rows stay aligned: the description column starts where it did.
        var rows = top.Out.Split('\n').Where(l => l.StartsWith("  ", StringComparison.Ordinal) && l.Contains("  create a new", StringComparison.Ordinal) ||
                                                  l.StartsWith("  demo [<DIR>]", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, rows.Count);
        Assert.Equal(rows[0].IndexOf("create", StringComparison.Ordinal), rows[1].IndexOf("format,", StringComparison.Ordinal));

        var demo = CliRunner.Succeeds("demo", "--help");
        Assert.Contains("basalt demo [<DIR>] [options]", demo.Out, StringComparison.Ordinal);
        Assert.Contains("--force", demo.Out, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"killed pid \d+ with SIGKILL [0-9.]+ s after every thread's first durable commit: (?<lines>\d+) durable lines read; durable: thread 0 up to transaction (?<d0>\d+), thread 1 up to transaction (?<d1>\d+)\n")]
    private static partial Regex Killed();

    [GeneratedRegex(@"recovered: thread 0 at transaction (?<k0>\d+) \(durable (?<d0>\d+)\), thread 1 at transaction (?<k1>\d+) \(durable (?<d1>\d+)\); (?<keys>\d+) keys verified, (?<differences>\d+) differences, depth (?<depth>\d+)\n")]
    private static partial Regex Recovered();

    [GeneratedRegex(@"the damaged leaf covers (?<min>\S+)\.\.(?<max>\S+): (?<keys>\d+) keys of the load live there")]
    private static partial Regex DamagedLeaf();

    [GeneratedRegex(@"\] fsck -n: \S+: (?<findings>\d+) findings? ")]
    private static partial Regex FsckSummary();

    [GeneratedRegex(@"after repair: (?<intact>\d+) of (?<live>\d+) keys intact, (?<lost>\d+) lost \(all of them in the damaged leaf: yes\), (?<wrong>\d+) wrong, (?<extra>\d+) unexpected")]
    private static partial Regex AfterRepair();
}
