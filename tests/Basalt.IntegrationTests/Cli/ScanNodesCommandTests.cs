using System.Text.Json;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

/// <summary>
/// `basalt debug scan-nodes` and the fsck side of the node scan on real image files: the listing
/// is read-only and names every reachable node as chosen; a damaged interior node costs no key
/// through fsck -y; fsck --json names the lost keys it can.
/// </summary>
public sealed class ScanNodesCommandTests
{
    [Fact]
    public void Scan_nodes_lists_every_reachable_node_as_chosen_and_changes_nothing()
    {
        using var dir = new TempDirectory("cli-scan");
        var path = CliImages.WithKeys(dir, 2000);
        var reachable = Reachable(path);
        var before = CliImages.Hash(path);

        var r = CliRunner.Succeeds("debug", "scan-nodes", "--btree", "test", "--json", path);
        Assert.Equal(before, CliImages.Hash(path));
        using var doc = JsonDocument.Parse(r.Out);
        var root = doc.RootElement;
        Assert.Equal(4096, root.GetProperty("node_size").GetInt32());
        Assert.True(root.GetProperty("bytes_scanned").GetInt64() > 0);
        var nodes = root.GetProperty("nodes").EnumerateArray().ToList();
        Assert.All(nodes, n => Assert.Equal("test", n.GetProperty("btree").GetString()));
        foreach (var (offset, level) in reachable)
        {
            var n = nodes.Single(x => x.GetProperty("offset").GetInt64() == offset);
            Assert.Equal(level, n.GetProperty("level").GetInt32());
            Assert.Equal("chosen", n.GetProperty("status").GetString());
        }
        var text = CliRunner.Succeeds("debug", "scan-nodes", path);
        Assert.Contains("bytes of node space scanned", text.Out, StringComparison.Ordinal);
        Assert.Contains(": chosen", text.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Scan_nodes_reports_a_damaged_node_as_rejected_with_its_reason()
    {
        using var dir = new TempDirectory("cli-scan");
        var path = CliImages.WithKeys(dir, 2000);
        var (offset, _) = Reachable(path).First(n => n.Level == 1);
        Flip(path, offset + 40);

        var r = CliRunner.Succeeds("debug", "scan-nodes", "--json", path);
        using var doc = JsonDocument.Parse(r.Out);
        var node = doc.RootElement.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("offset").GetInt64() == offset);
        Assert.Equal("rejected", node.GetProperty("status").GetString());
        Assert.Equal("bset_bad_csum", node.GetProperty("reason").GetString());
    }

    [Fact]
    public void Scan_nodes_errors_are_one_line_with_the_usual_exit_codes()
    {
        CliRunner.Fails(1, ["debug", "scan-nodes", "/nonexistent/fs.img"], "no such file");
        using var dir = new TempDirectory("cli-scan");
        var path = CliImages.Formatted(dir);
        CliRunner.Fails(16, ["debug", "scan-nodes", "--btree", "nope", path], "is not a btree");
    }

    [Fact]
    public void Fsck_rebuilds_a_damaged_level_1_node_from_the_scan_and_loses_no_key()
    {
        using var dir = new TempDirectory("cli-scan");
        var path = CliImages.WithKeys(dir, 8000);
        var all = CliRunner.Succeeds("list", path, "--btree", "test", "--json").Out;
        var nodes = Reachable(path);
        Assert.True(nodes.Max(n => n.Level) >= 2, "the test btree needs a level-1 node below its root");
        var (offset, _) = nodes.First(n => n.Level == 1);
        Flip(path, offset + 40);

        var check = CliRunner.Run("fsck", "-n", "--json", path);
        Assert.True(check.ExitCode == 4, check.ToString());
        var repair = CliRunner.Run("fsck", "-y", "--json", path);
        Assert.True(repair.ExitCode == 1, repair.ToString());
        using (var doc = JsonDocument.Parse(repair.Out))
        {
            var names = doc.RootElement.GetProperty("findings").EnumerateArray().Select(f => f.GetProperty("name").GetString()).ToList();
            Assert.Contains("btree_node_unreadable", names);
            Assert.Contains("btree_range_rebuilt_from_scan", names);
            Assert.Equal(0, doc.RootElement.GetProperty("lost_keys_total").GetInt64());
            Assert.Empty(doc.RootElement.GetProperty("lost_keys").EnumerateArray());
        }
        Assert.Equal(0, CliRunner.Run("fsck", "-n", path).ExitCode);
        Assert.Equal(all, CliRunner.Succeeds("list", path, "--btree", "test", "--json").Out);
    }

    private static void Flip(string path, long offset)
    {
        using var file = File.Open(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        var b = file.ReadByte();
        file.Position = offset;
        file.WriteByte((byte)(b ^ 0x5a));
    }

    /// <summary>Offset and level of every node of the test btree reachable from its root.</summary>
    private static List<(long Offset, int Level)> Reachable(string path)
    {
        using var device = FileBlockDevice.Open(path, readOnly: true);
        return [.. Basalt.Cli.ImageCorruptor.ReachableNodes(device, out _).Where(n => n.Btree == BtreeId.Test).Select(n => (n.Offset, (int)n.Level))];
    }
}
