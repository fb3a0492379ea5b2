using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class DemoCommandTests
{
    [Fact]
    public void Demo_passes_every_check_and_prints_numbers_from_the_run()
    {
        using var dir = new TempDirectory("cli-demo");
        var r = CliRunner.Run("demo", dir.Path, "--keys", LongTests.Enabled ? "50000" : "6000", "--seed", "5");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("demo passed", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("FAIL", r.Out, StringComparison.Ordinal);
        Assert.Contains("fsck -n", r.Out, StringComparison.Ordinal);
        Assert.Contains("second fsck -n: clean", r.Out, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(dir.Path, "demo.img")));
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
}
