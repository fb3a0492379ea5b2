// The CLI as a new user meets it: help everywhere, typos in commands and options, a missing
// --size, a bad btree name, an image another process holds. Every refusal is one line naming
// what was wrong, with the documented exit code.
using Basalt.IntegrationTests.Cli;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Hardening;

public sealed class NewUserTests
{
    [Theory]
    [InlineData("--help")]
    [InlineData("format", "--help")]
    [InlineData("show-super", "--help")]
    [InlineData("list", "--help")]
    [InlineData("fsck", "--help")]
    [InlineData("debug", "--help")]
    [InlineData("debug", "corrupt", "--help")]
    [InlineData("demo", "--help")]
    public void Help_prints_usage_and_exits_0(params string[] args)
    {
        var r = CliRunner.Succeeds(args);
        Assert.Contains("Usage:", r.Out, StringComparison.Ordinal);
        Assert.Contains("basalt", r.Out, StringComparison.Ordinal);
        Assert.Equal("", r.Err);
    }

    [Fact]
    public void A_misspelt_command_is_named_with_the_known_ones()
    {
        var r = CliRunner.Fails(16, ["fsk", "fs.img"], "unknown command 'fsk'", "fsck", "see 'basalt --help'");
        Assert.DoesNotContain("more", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_option_is_named_not_the_image_after_it()
    {
        using var dir = new TempDirectory();
        var image = CliImages.Formatted(dir);
        var r = CliRunner.Fails(16, ["fsck", "--bogus", image], "unknown option '--bogus'", "basalt fsck --help");
        Assert.DoesNotContain(image, r.Err, StringComparison.Ordinal);
        CliRunner.Fails(16, ["list", image, "--btree", "test", "--levle", "1"], "unknown option '--levle'");
        CliRunner.Fails(16, ["fsck", "--bogus"], "unknown option '--bogus'");
    }

    [Fact]
    public void Negative_numbers_are_values_not_options()
    {
        using var dir = new TempDirectory();
        // --start -5 reaches the position parser (a bad position), not the unknown-option check.
        CliRunner.Fails(16, ["list", CliImages.Formatted(dir), "--btree", "test", "--start", "-5"], "--start '-5' is not a position");
    }

    [Fact]
    public void A_choice_error_lists_the_choices_on_one_line()
    {
        using var dir = new TempDirectory();
        var r = CliRunner.Fails(16, ["debug", "corrupt", CliImages.Formatted(dir), "--target", "nope"],
            "--target: 'nope' is not one of node, bset, key, superblock");
        Assert.DoesNotContain(":;", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Format_of_a_missing_file_without_size_says_to_give_one()
    {
        using var dir = new TempDirectory();
        CliRunner.Fails(16, ["format", dir.File("new.img")], "does not exist", "--size");
        Assert.False(File.Exists(dir.File("new.img")));
    }

    [Fact]
    public void List_with_a_bad_btree_names_the_known_ones()
    {
        using var dir = new TempDirectory();
        CliRunner.Fails(16, ["list", CliImages.Formatted(dir), "--btree", "nope"], "'nope' is not a btree", "test");
    }

    [Fact]
    public void An_image_another_process_writes_is_refused_and_says_so()
    {
        using var dir = new TempDirectory();
        var image = CliImages.Formatted(dir);
        // .NET takes flock(LOCK_EX) for FileShare.None: a writer outside the device's lock registry.
        using (new FileStream(image, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            var writer = CliRunner.Fails(8, ["fsck", "-y", image], "in use");
            Assert.DoesNotContain("read-only", writer.Err, StringComparison.Ordinal);
            CliRunner.Fails(8, ["fsck", "-n", image], "in use");
            CliRunner.Fails(1, ["show-super", image], "in use");
            CliRunner.Fails(1, ["list", image, "--btree", "test"], "in use");
        }
        // A reader (flock LOCK_SH) lets checks run, and a writer is told the holder only reads.
        using (new FileStream(image, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            CliRunner.Succeeds("fsck", "-n", image);
            CliRunner.Fails(8, ["fsck", "-y", image], "in use", "opened read-only by the holder");
        }
    }

    [Fact]
    public void Read_only_commands_name_the_image_not_an_overlay()
    {
        using var dir = new TempDirectory();
        var junk = dir.File("junk.img");
        File.WriteAllBytes(junk, new byte[1 << 20]);
        var r = CliRunner.Fails(1, ["list", junk, "--btree", "test"], "not a Basalt filesystem");
        Assert.DoesNotContain("overlay", r.Err, StringComparison.Ordinal);
        var list = CliRunner.Succeeds("list", CliImages.WithKeys(dir, 10), "--btree", "test", "--json");
        Assert.DoesNotContain("overlay", list.Out, StringComparison.Ordinal);
    }

    /// <summary>
    /// The usage lines of README.md run in order, as a new user would paste them, on a fresh image
    /// and a small local tree: each must succeed (fsck may report the damage the lines before it
    /// made: exit 1 or 4). Only the demo (run by its own tests) and the publish lines are left out.
    /// </summary>
    [Fact]
    public void The_readme_usage_lines_run_in_order_on_a_fresh_image()
    {
        using var dir = new TempDirectory("readme");
        var photos = Path.Combine(dir.Path, "photos");
        Directory.CreateDirectory(Path.Combine(photos, "2026"));
        File.WriteAllBytes(Path.Combine(photos, "2026", "a.jpg"), CliImages.DataOf(3, 70_000));
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot(), "README.md"))
            .Where(l => l.StartsWith("    basalt ", StringComparison.Ordinal))
            .Select(l => l.Trim())
            .ToList();
        Assert.True(lines.Count >= 20, $"README.md has {lines.Count} usage lines");
        foreach (var line in lines)
        {
            var command = line.Split(" #", 2)[0].Split(" > ", 2)[0].Trim();
            var args = command.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..]
                .Select(a => a switch
                {
                    "disk.img" => Path.Combine(dir.Path, "disk.img"),
                    "./photos" => photos,
                    "./restored" => Path.Combine(dir.Path, "restored"),
                    _ => a,
                })
                .ToArray();
            if (args[0] == "demo")
                continue;
            var result = CliRunner.Run(args);
            var allowed = args[0] == "fsck" ? new[] { 0, 1, 4 } : [0];
            Assert.True(allowed.Contains(result.ExitCode), $"README line '{line}': {result}");
        }
        Assert.Equal(CliImages.DataOf(3, 70_000), File.ReadAllBytes(Path.Combine(dir.Path, "restored", "2026", "a.jpg")));
    }

    private static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Basalt.slnx")))
                return d.FullName;
        }
        throw new InvalidOperationException($"no Basalt.slnx above {AppContext.BaseDirectory}");
    }
}
