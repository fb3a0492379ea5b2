using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed partial class ListCommandTests
{
    /// <summary>The keys CliImages.WithKeys writes, in key order, as list must print them.</summary>
    private static List<(Bpos Pos, string Line, byte[] Value)> Written(int keys) =>
        [.. Enumerable.Range(0, keys)
            .Select(i => (Pos: new Bpos(1 + ((ulong)i % 7), (ulong)i * 3), Value: BitConverter.GetBytes(i * 31L)))
            .OrderBy(k => k.Pos)
            .Select(k => (k.Pos, $"{k.Pos.ToText()} cookie: 8 bytes {Convert.ToHexStringLower(k.Value)}", k.Value))];

    [Fact]
    public void List_prints_exactly_the_keys_written_with_their_values()
    {
        using var dir = new TempDirectory("cli-list");
        var path = CliImages.WithKeys(dir, 2000);
        var written = Written(2000);

        var all = CliRunner.Succeeds("list", "--btree", "test", path);

        Assert.Equal(written.Select(k => k.Line), all.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("basalt list: 2000 keys in btree test level 0", Assert.Single(all.ErrLines));

        // Keys of inode 3 are i*3 for i % 7 == 2; the end is inclusive.
        var range = CliRunner.Succeeds("list", "--btree", "test", "--start", "3:0", "--end", "3:5991", path);
        var expected = written.Where(k => k.Pos >= new Bpos(3, 0) && k.Pos <= new Bpos(3, 5991)).Select(k => k.Line).ToList();
        Assert.Equal(Enumerable.Range(0, 2000).Count(i => i % 7 == 2), expected.Count);
        Assert.Equal("3:5991:0", expected[^1].Split(' ')[0]);
        Assert.Equal(expected, range.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal($"basalt list: {expected.Count} keys in btree test level 0", Assert.Single(range.ErrLines));
    }

    [Fact]
    public void List_json_holds_every_key_written_and_the_interior_pointers_tile_the_key_space()
    {
        using var dir = new TempDirectory("cli-list");
        var path = CliImages.WithKeys(dir, 2000);
        var written = Written(2000);

        var r = CliRunner.Succeeds("list", "--btree", "test", "--json", path);

        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal(2000, doc.RootElement.GetProperty("count").GetInt64());
        var keys = doc.RootElement.GetProperty("keys").EnumerateArray().ToList();
        Assert.Equal(written.Count, keys.Count);
        for (var i = 0; i < keys.Count; i++)
        {
            Assert.Equal(written[i].Pos.ToText(), keys[i].GetProperty("pos").GetString());
            Assert.Equal("cookie", keys[i].GetProperty("type").GetString());
            Assert.Equal(0, keys[i].GetProperty("size").GetInt32());
            Assert.Equal(8, keys[i].GetProperty("value_length").GetInt32());
            Assert.Equal($"8 bytes {Convert.ToHexStringLower(written[i].Value)}", keys[i].GetProperty("value").GetString());
        }

        // Level 1 lists the leaves' pointers: ranges that tile [min, max] in order, distinct node slots.
        var level1 = CliRunner.Succeeds("list", "--btree", "test", "--level", "1", "--json", path);
        using var pointers = JsonDocument.Parse(level1.Out);
        var children = pointers.RootElement.GetProperty("keys").EnumerateArray().ToList();
        Assert.True(children.Count >= 2, level1.Out);
        var expectedMin = Bpos.Min;
        var offsets = new HashSet<long>();
        foreach (var child in children)
        {
            Assert.Equal("btree_ptr", child.GetProperty("type").GetString());
            var match = Pointer().Match(child.GetProperty("value").GetString()!);
            Assert.True(match.Success, child.GetProperty("value").GetString());
            Assert.True(Bpos.TryParse(match.Groups["min"].Value, out var min));
            Assert.Equal(expectedMin, min);
            var offset = long.Parse(match.Groups["offset"].Value, CultureInfo.InvariantCulture);
            Assert.Equal(0, offset % 4096);
            Assert.True(offsets.Add(offset), $"two pointers to the node at byte {offset}");
            Assert.True(Bpos.TryParse(child.GetProperty("pos").GetString(), out var max));
            expectedMin = max.IsMax ? max : max.Successor();
        }
        Assert.Equal("max", children[^1].GetProperty("pos").GetString());
    }

    [GeneratedRegex(@"^seq [0-9a-f]{16} sectors_written \d+ min (?<min>\S+) \[dev 0 offset (?<offset>\d+) gen \d+\]$")]
    private static partial Regex Pointer();

    [Fact]
    public void List_of_an_empty_btree_prints_nothing()
    {
        using var dir = new TempDirectory("cli-list");
        var path = CliImages.Formatted(dir);
        var r = CliRunner.Succeeds("list", "--btree", "reflink", path);
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

    [Fact]
    public void List_of_an_unclean_image_shows_the_replayed_keys_and_leaves_the_image_unchanged()
    {
        // list recovers read-only on an overlay: the keys of every entry up to the newest flush
        // entry are listed, the lost unwritten transaction is not, and not one byte changes.
        using var dir = new TempDirectory("cli-list-unclean");
        var image = JournalImages.Make(dir, JournalImages.SmallPlan);
        var before = CliImages.Hash(image.Path);

        var list = CliRunner.Succeeds("list", "--btree", "test", "--start", "2:0", "--end", "2:999", image.Path);

        var lines = list.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var expected = Enumerable.Range(1, image.DurableK)
            .SelectMany(k => Enumerable.Range(0, JournalImages.KeysPerTransaction).Select(i => JournalImages.KeyPos(k, i).ToText()))
            .ToList();
        Assert.Equal(expected, lines.Select(l => l.Split(' ')[0]));
        Assert.True(image.DurableK < image.Commits.Count, "the plan loses its last transaction");
        Assert.Equal(before, CliImages.Hash(image.Path));
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
