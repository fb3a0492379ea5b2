// Every offset the CLI prints is in bytes, so the numbers of different commands can be compared
// as they stand: the node `debug corrupt` damaged is the node `list` warns about, the node a
// level-1 pointer names, and the node fsck reports; superblock copies are at the bytes format and
// show-super name. (Sectors are the on-disk unit of pointers and sectors_written only.)
using System.Globalization;
using System.Text.RegularExpressions;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed partial class OffsetTextTests
{
    [Fact]
    public void Corrupt_list_fsck_and_pointers_name_the_same_node_by_the_same_byte_offset()
    {
        using var dir = new TempDirectory("cli-offsets");
        var path = CliImages.WithKeys(dir, 2000);
        var corrupt = CliRunner.Succeeds("debug", "corrupt", "--target", "key", "--btree", "test", "--level", "0",
            "--field", "reserved", "--mode", "ones", "--fix-csum", "--seed", "3", path);
        var damaged = CorruptedNode().Match(corrupt.Out);
        Assert.True(damaged.Success, corrupt.Out);
        var node = long.Parse(damaged.Groups["node"].Value, CultureInfo.InvariantCulture);
        var record = long.Parse(damaged.Groups["record"].Value, CultureInfo.InvariantCulture);
        var key = long.Parse(damaged.Groups["key"].Value, CultureInfo.InvariantCulture);
        var field = long.Parse(damaged.Groups["field"].Value, CultureInfo.InvariantCulture);
        Assert.Equal(node + key + 28, field);   // reserved: byte 28 of the key header
        Assert.Equal(0, node % 4096);

        var list = CliRunner.Succeeds("list", "--btree", "test", path);
        var warning = ListWarning().Match(list.Err);
        Assert.True(warning.Success, list.Err);
        Assert.Equal(node, long.Parse(warning.Groups["node"].Value, CultureInfo.InvariantCulture));
        Assert.Equal(record, long.Parse(warning.Groups["record"].Value, CultureInfo.InvariantCulture));

        var pointers = CliRunner.Succeeds("list", "--btree", "test", "--level", "1", path);
        Assert.Contains($"[dev 0 offset {node} gen ", pointers.Out, StringComparison.Ordinal);

        var fsck = CliRunner.Run("fsck", "-n", path);
        Assert.Equal(4, fsck.ExitCode);
        Assert.Contains($"test level 0 node at offset {node} [", fsck.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Format_and_show_super_name_the_superblock_copies_by_byte()
    {
        using var dir = new TempDirectory("cli-offsets");
        var path = dir.File("fs.img");
        var format = CliRunner.Succeeds(["format", .. CliImages.SmallGeometry, path]);
        Assert.Contains("superblock copies at bytes 4096, 69632, 16711680", format.Out, StringComparison.Ordinal);

        var show = CliRunner.Succeeds("show-super", path);
        Assert.Contains("at bytes 4096, 69632, 16711680", show.Out, StringComparison.Ordinal);
        Assert.Contains("copy 2 at byte 16711680: good", show.Out, StringComparison.Ordinal);
        // Offsets are bytes; the only "sector" word is the root pointers' sectors_written field.
        Assert.DoesNotMatch(@"(?i)\bsectors?\b", show.Out);
    }

    [Fact]
    public void Show_super_prints_a_root_pointer_offset_in_bytes()
    {
        using var dir = new TempDirectory("cli-offsets");
        var path = CliImages.WithKeys(dir, 10);
        var corrupt = CliRunner.Succeeds("debug", "corrupt", "--target", "node", "--btree", "test", "--field", "seq", "--seed", "1", path);
        var node = CorruptedNodeOnly().Match(corrupt.Out);
        Assert.True(node.Success, corrupt.Out);

        var show = CliRunner.Succeeds("show-super", path);
        Assert.Contains($"[dev 0 offset {node.Groups["node"].Value} gen ", show.Out, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"node at byte (?<node>\d+) \(btree test level 0, [^)]*\), bset at byte (?<record>\d+), key \S+ cookie at byte (?<key>\d+) of the node: field reserved at device offset (?<field>\d+)")]
    private static partial Regex CorruptedNode();

    [GeneratedRegex(@"node at byte (?<node>\d+) \(btree test level 0")]
    private static partial Regex CorruptedNodeOnly();

    [GeneratedRegex(@"warning: btree test level 0 node at byte (?<node>\d+): btree_node_bkey_\w+ \(Fixable\) in the record at byte (?<record>\d+) of the node: ")]
    private static partial Regex ListWarning();
}
