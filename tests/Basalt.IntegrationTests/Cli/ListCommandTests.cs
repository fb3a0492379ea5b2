using System.Text.Json;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class ListCommandTests
{
    [Fact]
    public void List_prints_every_key_in_range_with_its_value()
    {
        using var dir = new TempDirectory("cli-list");
        var path = CliImages.WithKeys(dir, 2000);
        var all = CliRunner.Succeeds("list", "--btree", "test", path);
        var lines = all.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2000, lines.Length);
        Assert.Contains("2000 keys", all.Err, StringComparison.Ordinal);
        Assert.Contains("cookie", lines[0], StringComparison.Ordinal);

        // Keys of inode 3 are i*3 for i % 7 == 2.
        var range = CliRunner.Succeeds("list", "--btree", "test", "--start", "3:0", "--end", "3:max".Replace("max", "999999", StringComparison.Ordinal), path);
        var expected = Enumerable.Range(0, 2000).Count(i => i % 7 == 2);
        Assert.Equal(expected, range.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.All(range.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.StartsWith("3:", l, StringComparison.Ordinal));
    }

    [Fact]
    public void List_json_is_one_document_and_interior_levels_list_pointers()
    {
        using var dir = new TempDirectory("cli-list");
        var path = CliImages.WithKeys(dir, 2000);
        var r = CliRunner.Succeeds("list", "--btree", "test", "--json", path);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal(2000, doc.RootElement.GetProperty("count").GetInt64());
        Assert.Equal(2000, doc.RootElement.GetProperty("keys").GetArrayLength());

        var level1 = CliRunner.Succeeds("list", "--btree", "test", "--level", "1", path);
        Assert.Contains("btree_ptr", level1.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void List_of_an_empty_btree_prints_nothing()
    {
        using var dir = new TempDirectory("cli-list");
        var path = CliImages.Formatted(dir);
        var r = CliRunner.Succeeds("list", "--btree", "inodes", path);
        Assert.Equal("", r.Out);
        Assert.Contains("0 keys", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void List_leaves_the_image_unchanged()
    {
        using var dir = new TempDirectory("cli-list");
        var path = CliImages.WithKeys(dir, 500);
        var before = CliImages.Hash(path);
        CliRunner.Succeeds("list", "--btree", "test", path);
        Assert.Equal(before, CliImages.Hash(path));
    }

    [Theory]
    [InlineData(new[] { "--btree", "nosuch" }, "not a btree")]
    [InlineData(new[] { "--btree", "test", "--start", "1:x" }, "not a position")]
    [InlineData(new[] { "--btree", "test", "--end", "1" }, "not a position")]
    [InlineData(new[] { "--btree", "test", "--start", "5:0", "--end", "4:0" }, "is after")]
    [InlineData(new[] { "--btree", "test", "--level", "9" }, "outside 0..7")]
    [InlineData(new string[0], "--btree")]
    public void List_bad_options_are_usage_errors(string[] options, string fragment)
    {
        using var dir = new TempDirectory("cli-list");
        var path = CliImages.Formatted(dir);
        CliRunner.Fails(16, ["list", .. options, path], fragment);
    }
}
