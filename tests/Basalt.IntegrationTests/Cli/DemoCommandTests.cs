using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed partial class DemoCommandTests
{
    [Fact]
    public void Demo_passes_every_check_and_prints_numbers_from_the_run()
    {
        using var dir = new TempDirectory("cli-demo");
        var operations = LongTests.Enabled ? 50_000 : 6000;
        const int Seed = 5;
        var r = CliRunner.Run("demo", dir.Path, "--keys", operations.ToString(CultureInfo.InvariantCulture), "--seed", Seed.ToString(CultureInfo.InvariantCulture));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("demo passed", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("FAIL", r.Out, StringComparison.Ordinal);
        Assert.Contains("second fsck -n: clean", r.Out, StringComparison.Ordinal);
        var image = Path.Combine(dir.Path, "demo.img");
        Assert.True(File.Exists(image));

        // The workload is seeded: replaying it gives the counts the demo must report.
        var model = Workload.Replay(operations, Seed);
        Assert.Contains($"workload: {operations} operations ({model.Inserts} inserts, {model.Overwrites} overwrites, {model.Deletes} deletes), " +
                        $"{model.Keys.Count} keys live; synced", r.Out, StringComparison.Ordinal);
        Assert.Equal(operations, model.Inserts + model.Overwrites + model.Deletes);
        Assert.Matches($@"remounted: {model.Keys.Count} of {model.Keys.Count} keys intact, 0 missing, 0 wrong, 0 unexpected, depth [2-8]\n", r.Out);

        var leaf = DamagedLeaf().Match(r.Out);
        Assert.True(leaf.Success, r.Out);
        Assert.True(Bpos.TryParse(leaf.Groups["min"].Value, out var min), leaf.Value);
        Assert.True(Bpos.TryParse(leaf.Groups["max"].Value, out var max), leaf.Value);
        var inLeaf = model.Keys.Keys.Count(k => k >= min && k <= max);
        Assert.Equal(inLeaf, int.Parse(leaf.Groups["keys"].Value, CultureInfo.InvariantCulture));

        var check = FsckSummary().Match(r.Out);
        Assert.True(check.Success, r.Out);
        var findings = int.Parse(check.Groups["findings"].Value, CultureInfo.InvariantCulture);
        Assert.True(findings > 0);
        var findingLines = r.Out.Split('\n').SkipWhile(l => !l.Contains("] fsck -n:", StringComparison.Ordinal)).Skip(1)
            .TakeWhile(l => l.StartsWith("    ", StringComparison.Ordinal) && !l.TrimStart().StartsWith("ok", StringComparison.Ordinal)).Count();
        Assert.Equal(Math.Min(findings, 10) + (findings > 10 ? 1 : 0), findingLines);

        var after = AfterRepair().Match(r.Out);
        Assert.True(after.Success, r.Out);
        var intact = int.Parse(after.Groups["intact"].Value, CultureInfo.InvariantCulture);
        var lost = int.Parse(after.Groups["lost"].Value, CultureInfo.InvariantCulture);
        Assert.Equal(model.Keys.Count, int.Parse(after.Groups["live"].Value, CultureInfo.InvariantCulture));
        Assert.Equal(model.Keys.Count, intact + lost);
        Assert.InRange(lost, 0, inLeaf);

        // The image it leaves holds exactly the model's keys but those lost from the damaged leaf.
        var list = CliRunner.Succeeds("list", "--btree", "test", "--json", image);
        using var doc = JsonDocument.Parse(list.Out);
        Assert.Equal(intact, doc.RootElement.GetProperty("count").GetInt32());
        foreach (var key in doc.RootElement.GetProperty("keys").EnumerateArray())
        {
            Assert.True(Bpos.TryParse(key.GetProperty("pos").GetString(), out var pos));
            Assert.True(model.Keys.TryGetValue(pos, out var value), $"{pos.ToText()} was never written or was deleted");
            Assert.Equal(value.Length, key.GetProperty("value_length").GetInt32());
            Assert.StartsWith($"{value.Length} bytes {Convert.ToHexStringLower(value.AsSpan(0, Math.Min(16, value.Length)))}",
                key.GetProperty("value").GetString(), StringComparison.Ordinal);
            Assert.False(pos >= min && pos <= max && lost == inLeaf, $"{pos.ToText()} in the dropped leaf survived");
        }

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

    /// <summary>
    /// The demo's workload written out again: a seeded mix of 60 % inserts at random positions,
    /// 25 % overwrites and 15 % deletes of live keys, mirrored in a model (DemoCommand.Fill).
    /// </summary>
    private sealed record Workload(SortedDictionary<Bpos, byte[]> Keys, int Inserts, int Overwrites, int Deletes)
    {
        public static Workload Replay(int operations, int seed)
        {
            var random = new Random(seed);
            var keys = new SortedDictionary<Bpos, byte[]>();
            var live = new List<Bpos>();
            int inserts = 0, overwrites = 0, deletes = 0;
            for (var i = 0; i < operations; i++)
            {
                var roll = random.Next(100);
                if (live.Count == 0 || roll < 60)
                {
                    var pos = new Bpos((ulong)random.Next(1, 65), (ulong)random.Next(0, 1_000_000));
                    var value = Value(random);
                    if (keys.TryAdd(pos, value))
                        live.Add(pos);
                    else
                        keys[pos] = value;
                    inserts++;
                }
                else if (roll < 85)
                {
                    keys[live[random.Next(live.Count)]] = Value(random);
                    overwrites++;
                }
                else
                {
                    var index = random.Next(live.Count);
                    keys.Remove(live[index]);
                    live[index] = live[^1];
                    live.RemoveAt(live.Count - 1);
                    deletes++;
                }
            }
            return new Workload(keys, inserts, overwrites, deletes);
        }

        private static byte[] Value(Random random)
        {
            var value = new byte[random.Next(8, 65)];
            random.NextBytes(value);
            return value;
        }
    }

    [GeneratedRegex(@"the damaged leaf covers (?<min>\S+)\.\.(?<max>\S+): (?<keys>\d+) keys of the model live there")]
    private static partial Regex DamagedLeaf();

    [GeneratedRegex(@"\] fsck -n: \S+: (?<findings>\d+) findings? ")]
    private static partial Regex FsckSummary();

    [GeneratedRegex(@"after repair: (?<intact>\d+) of (?<live>\d+) keys intact, (?<lost>\d+) lost \(all of them in the damaged leaf: yes\), 0 wrong, 0 unexpected")]
    private static partial Regex AfterRepair();
}
