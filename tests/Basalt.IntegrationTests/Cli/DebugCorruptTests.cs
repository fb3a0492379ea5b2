using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class DebugCorruptTests
{
    [Theory]
    [InlineData("node")]
    [InlineData("bset")]
    [InlineData("key")]
    [InlineData("superblock")]
    public void Corrupt_changes_one_field_prints_it_and_fsck_finds_it(string target)
    {
        using var dir = new TempDirectory("cli-corrupt");
        var path = CliImages.WithKeys(dir, 1500);
        var before = File.ReadAllBytes(path);
        var r = CliRunner.Succeeds("debug", "corrupt", "--target", target, "--seed", "7", path);
        Assert.Contains("device offset", r.Out, StringComparison.Ordinal);
        Assert.Contains("->", r.Out, StringComparison.Ordinal);

        var after = File.ReadAllBytes(path);
        var changed = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToList();
        Assert.NotEmpty(changed);
        var offset = long.Parse(r.Out.Split("device offset ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.All(changed, i => Assert.InRange(i, offset, offset + 32));

        var fsck = CliRunner.Run("fsck", "-n", path);
        Assert.True(fsck.ExitCode == 4, fsck.ToString());
    }

    [Fact]
    public void Corrupt_is_deterministic_for_a_seed()
    {
        using var dir = new TempDirectory("cli-corrupt");
        var a = CliImages.WithKeys(dir, 1500, "a.img");
        File.Copy(a, dir.File("b.img"));
        var ra = CliRunner.Succeeds("debug", "corrupt", "--target", "key", "--mode", "random", "--seed", "11", a);
        var rb = CliRunner.Succeeds("debug", "corrupt", "--target", "key", "--mode", "random", "--seed", "11", dir.File("b.img"));
        Assert.Equal(ra.Out.Replace("a.img", "", StringComparison.Ordinal), rb.Out.Replace("b.img", "", StringComparison.Ordinal));
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(dir.File("b.img")));
    }

    [Fact]
    public void Corrupt_with_fix_csum_reports_the_new_checksum()
    {
        using var dir = new TempDirectory("cli-corrupt");
        var path = CliImages.WithKeys(dir, 500);
        var r = CliRunner.Succeeds("debug", "corrupt", "--target", "key", "--field", "pos.offset", "--fix-csum", "--seed", "1", path);
        Assert.Contains("checksum of the record", r.Out, StringComparison.Ordinal);
        var s = CliRunner.Succeeds("debug", "corrupt", "--target", "superblock", "--field", "label", "--mode", "ones", "--fix-csum", path);
        Assert.Contains("checksum (device offset", s.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Corrupt_bad_arguments()
    {
        using var dir = new TempDirectory("cli-corrupt");
        var path = CliImages.Formatted(dir);
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "bogus", path], "bogus");
        CliRunner.Fails(16, ["debug", "corrupt", path], "--target");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "superblock", "--field", "nosuch", path], "nosuch", "fields:");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "node", "--mode", "melt", path], "melt");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "superblock", "--btree", "test", path], "do not apply");
        // A fresh image holds only the allocation btrees' roots (freespace, accounting): no test btree node.
        CliRunner.Fails(1, ["debug", "corrupt", "--target", "node", "--btree", "test", path], "no btree node in btree test");
    }
}
