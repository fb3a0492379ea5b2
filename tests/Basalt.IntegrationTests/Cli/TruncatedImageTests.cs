// Truncated image files through the CLI (docs/cli.md, "Truncated images"): fsck -n reports the
// truncation and what it cost without changing a byte, fsck -y reports the same, extends the file
// to the size the superblock records and repairs the rest, a second fsck is clean, and the keys of
// the nodes before the cut all survive; the read-only commands work as far as the image goes and
// name the truncation in one line; a writable command refuses with one line, exit 8.
using System.Text.Json;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.IntegrationTests.Cli;

public sealed class TruncatedImageTests(ITestOutputHelper output)
{
    private const long ImageSize = 16L << 20;

    [Fact]
    public void A_cut_of_three_bytes_is_only_the_truncation_and_fsck_y_restores_the_length()
    {
        using var dir = new TempDirectory("cli-trunc");
        var path = CliImages.WithKeys(dir, 2000);
        var model = ModelOf(path);
        Cut(path, ImageSize - 3);
        var (check, _) = CheckRepairCheck(path);
        var finding = Assert.Single(check);
        Assert.Equal(
            $"device_truncated at {path}: device size: the image is {ImageSize - 3} bytes, the superblock records {ImageSize} bytes: " +
            $"the missing bytes {ImageSize - 512}..{ImageSize - 1} held no metadata",
            finding);
        AssertKeys(path, model.AllKeys);
    }

    [Fact]
    public void A_cut_through_live_leaves_loses_the_nodes_past_it_and_every_other_key_survives()
    {
        using var dir = new TempDirectory("cli-trunc");
        var path = CliImages.WithKeys(dir, 4000);
        var model = ModelOf(path);
        var interiorEnd = model.Nodes.Where(n => n.Level > 0).Max(n => n.Offset);
        var leaves = model.Leaves.Where(l => l.Offset > interiorEnd).OrderBy(l => l.Offset).ToList();
        Assert.True(leaves.Count >= 2, "no leaves after the interior nodes");
        // Inside the written bytes of a leaf, not on a sector boundary.
        var cut = leaves[leaves.Count / 2].Offset + (leaves[leaves.Count / 2].WrittenBytes / 2) + 100;
        Cut(path, cut);

        // Before fsck: the keys before the lost leaves list; the listing of a lost leaf fails in one line.
        var first = model.Survivors(cut).First().Key;
        var some = CliRunner.Succeeds("list", "--btree", "test", "--end", first.ToText(), path);
        Assert.Contains($"warning: {path}: truncated: the image is {cut} bytes, the superblock records {ImageSize} bytes", some.Err, StringComparison.Ordinal);
        CliRunner.Fails(8, ["list", "--btree", "test", path], $"the image is truncated: it is {cut} bytes, the superblock records {ImageSize} bytes (run basalt fsck)");
        CliRunner.Fails(8, ["debug", "load", path, "--ops", "1"],
            $"{path}: truncated: the image is {cut} bytes, the superblock records {ImageSize} bytes; run basalt fsck -y to extend it and repair what was lost");

        var (check, _) = CheckRepairCheck(path);
        Assert.StartsWith($"device_truncated at {path}: device size: the image is {cut} bytes, the superblock records {ImageSize} bytes: " +
                          $"the missing bytes {cut - (cut % 512)}..{ImageSize - 1} held node slots at bytes {leaves[leaves.Count / 2].Offset}..", check[0], StringComparison.Ordinal);
        var lost = model.TopmostLost(cut);
        Assert.NotEmpty(lost);
        Assert.All(lost, n => Assert.Equal(0, n.Level));
        Assert.Equal(lost.Select(n => $"btree_node_unreadable at test level 0 node at offset {n.Offset} [{n.Min.ToText()}..{n.Max.ToText()}]").Order(),
            check.Where(f => f.StartsWith("btree_node_unreadable", StringComparison.Ordinal)).Select(f => f[..(f.IndexOf("]: ", StringComparison.Ordinal) + 1)]).Order());
        AssertKeys(path, model.Survivors(cut));
    }

    [Fact]
    public void A_cut_inside_the_journal_is_listed_as_damage_and_repaired()
    {
        using var dir = new TempDirectory("cli-trunc");
        var path = CliImages.Formatted(dir);
        var written = new SortedDictionary<Bpos, string>();
        // Step mode: no write-back moves last_seq past entries whose nodes the cut takes.
        using (var fs = BasaltFileSystem.Mount(path, new MountOptions { Journal = new Basalt.Journal.JournalOptions { Manual = true } }))
        {
            for (var i = 0; i < 300; i++)
            {
                var pos = new Bpos(5, (ulong)i);
                var value = BitConverter.GetBytes(i * 104729L);
                fs.Transact(t => t.Set(BtreeId.Test, pos, value), Basalt.Transactions.CommitOptions.Durable);
                written[pos] = Convert.ToHexString(value);
            }
            fs.Close(sync: false);
        }
        Superblock sb;
        using (var device = FileBlockDevice.Open(path, readOnly: true))
            sb = SuperblockIo.Read(device).Superblock;
        var ring = sb.JournalBuckets[0];
        var cut = ((long)(ring.Start + 1) * sb.BucketSize) + 8192;
        Cut(path, cut);

        var damage = $"damage: truncated: the image is {cut} bytes, the superblock records {ImageSize} bytes: the missing bytes {cut}..{ImageSize - 1} " +
                     $"held journal buckets {ring.Start + 1}..{ring.End - 1} ({ring.Count - 1} of {ring.Count}), node slots at bytes {sb.NodeAreaOffset}..";
        Assert.Contains(damage, CliRunner.Succeeds("show-super", path).Out, StringComparison.Ordinal);
        var journal = CliRunner.Succeeds("list-journal", path).Out;
        Assert.Contains(damage, journal, StringComparison.Ordinal);
        Assert.Contains($"journal bucket {ring.Start + 2} lies outside the device", journal, StringComparison.Ordinal);
        using (var doc = JsonDocument.Parse(CliRunner.Succeeds("show-super", "--json", path).Out))
        {
            Assert.Equal(cut, doc.RootElement.GetProperty("image_size").GetInt64());
            Assert.StartsWith("truncated: the image is", doc.RootElement.GetProperty("truncated").GetString(), StringComparison.Ordinal);
        }

        var (check, _) = CheckRepairCheck(path);
        // The node area lies past the journal: the roots format wrote for the allocation info are
        // lost with it, and the space passes rebuild the freespace runs and the accounting. So are
        // the roots of the first mount's root directory and lost+found: with no inode left, the
        // file passes see a filesystem that has no root yet, which is no finding.
        Assert.All(check, f => Assert.Matches(
            "^(device_truncated|sb_copy_bad_magic|accounting_mismatch|freespace_key_wrong) |^btree_root_unreadable at (freespace|accounting|inodes|dirents) ", f));

        // What survives is a prefix of the commits, each with the value written.
        var kept = ListKeys(path);
        Assert.InRange(kept.Count, 1, written.Count - 1);
        Assert.Equal(written.Take(kept.Count), kept);
    }

    [Fact]
    public void A_cut_at_the_node_area_loses_the_root_and_show_super_still_reads()
    {
        using var dir = new TempDirectory("cli-trunc");
        var path = CliImages.WithKeys(dir, 1000);
        long nodeArea;
        using (var device = FileBlockDevice.Open(path, readOnly: true))
            nodeArea = SuperblockIo.Read(device).Superblock.NodeAreaOffset;
        Cut(path, nodeArea);
        Assert.Contains("damage: truncated:", CliRunner.Succeeds("show-super", path).Out, StringComparison.Ordinal);
        CliRunner.Fails(8, ["list", "--btree", "test", path], "the image is truncated");
        var (check, _) = CheckRepairCheck(path);
        var ids = check.Select(f => f[..f.IndexOf(' ', StringComparison.Ordinal)]).ToList();
        Assert.Equal(["device_truncated", "sb_copy_bad_magic"], ids.Take(2));
        Assert.Contains(check, f => f.StartsWith("btree_root_unreadable at test ", StringComparison.Ordinal));
        // The allocation info's roots go with the node area; the space passes rebuild its indexes.
        Assert.All(ids.Skip(2), id => Assert.Contains(id, new[] { "btree_root_unreadable", "accounting_mismatch", "freespace_key_wrong" }));
        Assert.Empty(ListKeys(path));
    }

    private static void Cut(string path, long length)
    {
        using var f = new FileStream(path, FileMode.Open);
        f.SetLength(length);
    }

    private static TruncationModel ModelOf(string path)
    {
        using var device = FileBlockDevice.Open(path, readOnly: true);
        return TruncationModel.Of(device);
    }

    /// <summary>
    /// fsck -n (exit 4, not a byte changed), fsck -y (the same findings, exit 1, the file back to its
    /// recorded size), fsck -n (clean). Returns the findings as "name at where: detail".
    /// </summary>
    private (List<string> Check, List<string> Repair) CheckRepairCheck(string path)
    {
        var hash = CliImages.Hash(path);
        var length = new FileInfo(path).Length;
        var check = CliRunner.Run("fsck", "-n", "--json", path);
        output.WriteLine(check.Out);
        Assert.True(check.ExitCode == 4, check.ToString());
        Assert.Equal(length, new FileInfo(path).Length);
        Assert.True(hash.AsSpan().SequenceEqual(CliImages.Hash(path)), "fsck -n changed the image");

        var repair = CliRunner.Run("fsck", "-y", "--json", path);
        Assert.True(repair.ExitCode == 1, repair.ToString());
        Assert.Equal(ImageSize, new FileInfo(path).Length);
        var found = Findings(check);
        Assert.Equal(found, Findings(repair));
        CliRunner.Succeeds("fsck", "-n", path);
        return (found, Findings(repair));
    }

    private static List<string> Findings(CliResult fsck)
    {
        using var doc = JsonDocument.Parse(fsck.Out);
        return [.. doc.RootElement.GetProperty("findings").EnumerateArray().Select(f =>
            $"{f.GetProperty("name").GetString()} at {f.GetProperty("where").GetString()}: {f.GetProperty("detail").GetString()}")];
    }

    private static SortedDictionary<Bpos, string> ListKeys(string path)
    {
        using var fs = BasaltFileSystem.Mount(path, new MountOptions { ReadOnly = true });
        return new SortedDictionary<Bpos, string>(BtreeAssertions.Contents(fs.Btrees[BtreeId.Test])
            .ToDictionary(kv => kv.Key, kv => Convert.ToHexString(kv.Value)));
    }

    private static void AssertKeys(string path, SortedDictionary<Bpos, byte[]> expected)
    {
        var kept = ListKeys(path);
        Assert.Equal(expected.Count, kept.Count);
        Assert.Equal(expected.Select(kv => (kv.Key, Convert.ToHexString(kv.Value))), kept.Select(kv => (kv.Key, kv.Value)));
    }
}
