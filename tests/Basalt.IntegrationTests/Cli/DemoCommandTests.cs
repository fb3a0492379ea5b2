using System.Globalization;
using System.Text.RegularExpressions;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed partial class DemoCommandTests
{
    [Fact]
    public void Demo_tells_the_story_and_every_check_holds()
    {
        using var dir = new TempDirectory("cli-demo");
        var r = CliRunner.Run("demo", dir.Path, "--files", "60", "--seed", "5");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("demo passed", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("FAIL", r.Out, StringComparison.Ordinal);
        var image = Path.Combine(dir.Path, "demo.img");
        Assert.True(File.Exists(image));

        // 1-2. Format, the sample tree, part A copied to the end, part B killed mid-copy.
        Assert.Contains("] formatted 128 MiB: node size 4096", r.Out, StringComparison.Ordinal);
        var tree = Tree().Match(r.Out);
        Assert.True(tree.Success, r.Out);
        var filesA = Int(tree, "filesA");
        var filesB = Int(tree, "filesB");
        Assert.Equal(60, filesA + filesB - 1); // A has the sparse file besides its share
        Assert.Matches(@"`basalt put` of part A \(pid \d+\) exited 0: put \d+ files, 13 directories, \d+ bytes", r.Out);
        Assert.Matches(@"`basalt put` of part B \(pid \d+\) killed with SIGKILL after [0-9.]+ s, the image grown by \d+ bytes", r.Out);
        Assert.Contains("ok   the copy of part B was still running when it was killed", r.Out, StringComparison.Ordinal);

        // 3. Recovery: every entry of A verified, B complete, partial or absent, file by file.
        Assert.Contains("] recovered: unclean, replayed", r.Out, StringComparison.Ordinal);
        var a = SyncedA().Match(r.Out);
        Assert.True(a.Success, r.Out);
        var entriesA = Int(a, "total");
        Assert.Equal(entriesA, Int(a, "verified"));
        Assert.Equal(filesA, Int(a, "files"));
        var b = KilledB().Match(r.Out);
        Assert.True(b.Success, r.Out);
        Assert.Equal(filesB, Int(b, "complete") + Int(b, "partial") + Int(b, "absent"));
        Assert.Equal(filesB, Int(b, "total"));
        Assert.True(Int(b, "absent") > 0, "the kill came before the end of B's copy");
        var reported = System.Text.RegularExpressions.Regex.Match(r.Out, @"`basalt put` reported (?<n>\d+) files of B durable before the kill");
        Assert.True(reported.Success, r.Out);
        var synced = int.Parse(reported.Groups["n"].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains($"part B: {synced} of the {synced} files `put` reported durable before the kill are whole", r.Out, StringComparison.Ordinal);
        Assert.Contains("ok   every file put reported as synced survived the kill, byte for byte", r.Out, StringComparison.Ordinal);
        Assert.True(synced <= Int(b, "complete"), "a file reported durable is complete");
        Assert.Contains("] fsck -n after the recovery: ", r.Out, StringComparison.Ordinal);
        Assert.Contains("ok   fsck finds nothing wrong after the kill and the recovery", r.Out, StringComparison.Ordinal);

        // 4. The damaged leaf of names: fsck -n finds it, -y repairs it, a second -n is clean.
        Assert.Contains("] damaged: node at byte ", r.Out, StringComparison.Ordinal);
        var leaf = Leaf().Match(r.Out);
        Assert.True(leaf.Success, r.Out);
        Assert.True(Int(leaf, "names") > 0, "the leaf holds names of A");
        Assert.Equal(entriesA, Int(leaf, "below") + Int(leaf, "beyond"));
        Assert.Matches(@"\] fsck -n: \S+: \d+ findings? .*\(exit 4\)", r.Out);
        Assert.Matches(@"\] fsck -y: \S+: \d+ findings? .*\(exit 1\)", r.Out);
        Assert.Matches(@"\] second fsck -n: \S+: clean \(exit 0\)", r.Out);

        // Where each entry of A went: beyond the damage all in place; nothing reads back wrong.
        var after = AfterRepair().Match(r.Out);
        Assert.True(after.Success, r.Out);
        Assert.Equal(entriesA, Int(after, "total"));
        Assert.Equal(entriesA, Int(after, "inPlace") + Int(after, "reattached") + Int(after, "lost"));
        Assert.True(Int(after, "inPlace") >= Int(leaf, "beyond"), after.Value);
        // Unless fsck restored the leaf from an older version (which it then says), names of A are gone.
        var restoredOlder = r.Out.Contains("restored the damaged leaf's range from an older version", StringComparison.Ordinal);
        Assert.Equal(restoredOlder, r.Out.Contains("btree_range_restored_from_older_version", StringComparison.Ordinal));
        Assert.True(restoredOlder || Int(after, "inPlace") < entriesA, "the damage took names of A");
        Assert.Equal("0", after.Groups["wrong"].Value);
        Assert.Contains("superblock error counters: ", r.Out, StringComparison.Ordinal);

        // The short report repeats the numbers of the steps.
        Assert.Contains($"\n  crash   part A synced, {entriesA} of {entriesA} entries intact after the kill\n", r.Out, StringComparison.Ordinal);
        Assert.Contains($"\n          part B killed mid-copy: {Int(b, "complete")} complete, {Int(b, "partial")} partial, {Int(b, "absent")} absent of {filesB}, all prefix-consistent\n",
            r.Out, StringComparison.Ordinal);
        Assert.Contains($"\n  damage  one dirents leaf ({Int(leaf, "names")} names of A); fsck -n ", r.Out, StringComparison.Ordinal);
        Assert.Contains($"\n          part A after repair: {Int(after, "inPlace")} at their path, {Int(after, "reattached")} in lost+found, {Int(after, "lost")} lost, 0 wrong\n",
            r.Out, StringComparison.Ordinal);

        // The image it leaves is clean, and the sample tree it made locally is gone.
        CliRunner.Succeeds("fsck", "-n", image);
        var root = tree.Groups["root"].Value;
        Assert.False(Directory.Exists(root), $"{root} was left behind");
    }

    [Fact]
    public void Demo_rejects_a_silly_workload_size() =>
        CliRunner.Fails(16, ["demo", "--files", "5"], "--files");

    [Fact]
    public void Demo_refuses_to_overwrite_an_existing_image_without_force()
    {
        using var dir = new TempDirectory("cli-demo");
        var image = Path.Combine(dir.Path, "demo.img");
        File.WriteAllBytes(image, [1, 2, 3]);

        var r = CliRunner.Fails(1, ["demo", dir.Path, "--files", "20"]);

        Assert.Equal($"basalt demo: {image}: already exists; the demo would overwrite it (use --force, or give another DIR)",
            Assert.Single(r.ErrLines));
        Assert.Equal("", r.Out);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(image));

        var forced = CliRunner.Run("demo", dir.Path, "--files", "20", "--force");
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
        Assert.Contains("--files", demo.Out, StringComparison.Ordinal);
    }

    private static int Int(Match m, string group) => int.Parse(m.Groups[group].Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"sample tree in (?<root>\S+): part A (?<filesA>\d+) files \(\d+ bytes\) in 13 directories, a sparse file, a symlink, a hard link, .*; part B (?<filesB>\d+) files \(\d+ bytes\) in 13 directories\n")]
    private static partial Regex Tree();

    [GeneratedRegex(@"part A \(synced\): (?<verified>\d+) of (?<total>\d+) entries verified \((?<files>\d+) files byte for byte")]
    private static partial Regex SyncedA();

    [GeneratedRegex(@"part B \(killed\): (?<complete>\d+) files complete, (?<partial>\d+) partial \(a prefix of the original\), (?<absent>\d+) absent, of (?<total>\d+)\n")]
    private static partial Regex KilledB();

    [GeneratedRegex(@"the damaged leaf covers \S+ \(it holds the name /a/\S+\): (?<names>\d+) names of part A live there, (?<below>\d+) entries of A lie at or below them, (?<beyond>\d+) beyond\n")]
    private static partial Regex Leaf();

    [GeneratedRegex(@"after repair: of (?<total>\d+) synced entries of A, (?<inPlace>\d+) at their path, (?<reattached>\d+) reattached in lost\+found \(\d+ entries there\), (?<lost>\d+) lost with their names; (?<wrong>\d+) read back wrong\n")]
    private static partial Regex AfterRepair();
}
