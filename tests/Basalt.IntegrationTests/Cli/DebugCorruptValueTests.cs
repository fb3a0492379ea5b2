using System.Globalization;
using System.Text.RegularExpressions;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed partial class DebugCorruptValueTests
{
    [Theory]
    [InlineData("alloc", "dirty_sectors", "ones", "alloc_key_dirty_sectors_wrong (137)")]
    [InlineData("alloc", "fragmentation_lru", "ones", "alloc_key_fragmentation_lru_wrong (139)")]
    [InlineData("alloc", "data_type", "ones", "bkey_value_invalid (55)")]
    [InlineData("backpointer", "pos", "ones", "backpointer_to_missing_ptr (163), ptr_to_missing_backpointer (162)")]
    [InlineData("backpointer", "btree", "ones", "bkey_value_invalid (55)")]
    [InlineData("extent", "gen", "ones", "stale_dirty_ptr (133)")]
    [InlineData("extent", "offset", "ones", "bkey_value_invalid (55)")]
    [InlineData("extent", "window", "ones", "bkey_value_invalid (55)")]
    [InlineData("extent", "covered", "zero", "bkey_value_invalid (55)")]
    public void Corrupt_value_changes_exactly_the_reported_bytes_and_names_a_catalogue_id(string target, string field, string mode, string expect)
    {
        using var dir = new TempDirectory("cli-corrupt-value");
        var path = CliImages.WithData(dir);
        var before = File.ReadAllBytes(path);
        var r = CliRunner.Succeeds("debug", "corrupt", "--target", target, "--field", field, "--mode", mode, "--seed", "3", path);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 4, r.ToString());
        Assert.Contains($": field {field} at device offset ", lines[1], StringComparison.Ordinal);
        Assert.Contains("in node at byte", lines[1], StringComparison.Ordinal);
        Assert.StartsWith("  checksum of the record at byte ", lines[2], StringComparison.Ordinal);
        Assert.Equal($"  expect: fsck finds {expect}", lines[3]);
        AssertIdsInCatalogue(lines[3]);
        AssertOnlyReportedBytesChanged(before, File.ReadAllBytes(path), r.Out);
    }

    [Fact]
    public void Corrupt_alloc_picks_the_bucket_given()
    {
        using var dir = new TempDirectory("cli-corrupt-value");
        var path = CliImages.WithData(dir);
        // The first data bucket after the node area (buckets 11..71) holds the first file's data.
        var r = CliRunner.Succeeds("debug", "corrupt", "--target", "alloc", "--bucket", "72", "--field", "gen", "--mode", "ones", path);
        Assert.Contains("alloc key 0:72:0 (gen 0 oldest_gen 0 user dirty 128 cached 0 need_discard need_inc_gen)", r.Out, StringComparison.Ordinal);
        Assert.Contains("field gen at device offset", r.Out, StringComparison.Ordinal);
        Assert.Contains("(1 byte): 00 -> ff", r.Out, StringComparison.Ordinal);
        Assert.Contains("expect: fsck finds alloc_key_gen_wrong (136), bucket_gens_key_wrong (144)", r.Out, StringComparison.Ordinal);
        // The node's checksum was recomputed: a read-only mount reads the changed key.
        var list = CliRunner.Succeeds("list", "--btree", "alloc", "--start", "0:72", "--end", "0:72", path);
        Assert.Equal("0:72:0 alloc: gen 255 oldest_gen 0 user dirty 128 cached 0 need_discard need_inc_gen (dev 0 bucket 72)\n", list.Out);
    }

    [Fact]
    public void Corrupt_on_an_unclean_image_changes_the_journal_copy_the_next_mount_replays()
    {
        using var dir = new TempDirectory("cli-corrupt-value");
        var path = CliImages.WithData(dir, clean: false);
        var before = File.ReadAllBytes(path);
        var r = CliRunner.Succeeds("debug", "corrupt", "--target", "alloc", "--bucket", "72", "--field", "dirty_sectors", "--mode", "ones", path);
        Assert.Contains("in journal entry seq ", r.Out, StringComparison.Ordinal);
        Assert.Contains("checksum of journal entry seq ", r.Out, StringComparison.Ordinal);
        Assert.Contains("expect: fsck finds alloc_key_dirty_sectors_wrong (137)", r.Out, StringComparison.Ordinal);
        AssertOnlyReportedBytesChanged(before, File.ReadAllBytes(path), r.Out);
        var list = CliRunner.Succeeds("list", "--btree", "alloc", "--start", "0:72", "--end", "0:72", path);
        Assert.Contains("dirty 4294967295", list.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Corrupt_data_makes_the_read_of_that_offset_fail()
    {
        using var dir = new TempDirectory("cli-corrupt-value");
        var path = CliImages.WithData(dir);
        var before = File.ReadAllBytes(path);
        var r = CliRunner.Succeeds("debug", "corrupt", "--target", "data", "--pos", "11:0", "--seed", "5", path);
        var m = ExpectRead().Match(r.Out);
        Assert.True(m.Success, r.ToString());
        Assert.Equal("11", m.Groups[1].Value);
        var offset = long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.InRange(offset, 0, CliImages.DataFileSizes[1] - 1);
        AssertOnlyReportedBytesChanged(before, File.ReadAllBytes(path), r.Out);
        using var fs = BasaltFileSystem.Mount(path, new MountOptions { ReadOnly = true });
        var e = Assert.Throws<BasaltException>(() => fs.Data.Read(11, offset, new byte[1]));
        Assert.Equal(ErrorCode.IoError, e.Code);
        // The other files still read back as written.
        var other = new byte[CliImages.DataFileSizes[2]];
        fs.Data.Read(12, 0, other);
        Assert.Equal(CliImages.DataOf(12, other.Length), other);
    }

    [Fact]
    public void Corrupt_value_bad_input()
    {
        using var dir = new TempDirectory("cli-corrupt-value");
        var path = CliImages.WithData(dir);
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "alloc", "--bucket", "999", path], "--bucket 999 is outside 0..254 (device 0 has 255 buckets)");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "alloc", "--bucket", "x", path], "--bucket: 'x' is not a bucket number");
        CliRunner.Fails(1, ["debug", "corrupt", "--target", "alloc", "--bucket", "5", path],
            "no alloc key for bucket 5 (it has no alloc key: it is in its layout state, gen 0 oldest_gen 0 journal dirty 128");
        CliRunner.Fails(1, ["debug", "corrupt", "--target", "extent", "--pos", "99:0", path], "no extent key at or after 99:0:0 in btree extents");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "alloc", "--field", "bogus", path], "--field 'bogus' is not a alloc field");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "node", "--bucket", "72", path], "do not apply to --target node");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "alloc", "--bucket", "72", "--pos", "0:72", path], "--bucket and --pos exclude each other");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "data", "--keep-csum", path], "--keep-csum applies to");
        var empty = CliImages.Formatted(dir, "empty.img");
        CliRunner.Fails(1, ["debug", "corrupt", "--target", "backpointer", empty], "btree backpointers holds no backpointer key to corrupt");
        var junk = dir.File("junk.img");
        File.WriteAllBytes(junk, new byte[1 << 20]);
        CliRunner.Fails(1, ["debug", "corrupt", "--target", "alloc", junk], "not a Basalt filesystem");
        CliRunner.Fails(1, ["debug", "corrupt", "--target", "alloc", dir.File("missing.img")], "missing.img");
    }

    [Fact]
    public void Corrupt_keep_csum_leaves_the_record_checksum_bad()
    {
        using var dir = new TempDirectory("cli-corrupt-value");
        var path = CliImages.WithData(dir);
        var before = File.ReadAllBytes(path);
        var r = CliRunner.Succeeds("debug", "corrupt", "--target", "backpointer", "--field", "sectors", "--keep-csum", path);
        Assert.Contains("left as is (--keep-csum: it no longer matches)", r.Out, StringComparison.Ordinal);
        var after = File.ReadAllBytes(path);
        var offset = long.Parse(FieldAt().Match(r.Out).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.All(Changed(before, after), i => Assert.InRange(i, offset, offset + 3));
    }

    private static void AssertIdsInCatalogue(string line)
    {
        var ids = Ids().Matches(line).Select(m => ushort.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.NotEmpty(ids);
        Assert.All(ids, id => Assert.True(FsckCatalogue.TryGet(id, out _), $"{id} is not in the catalogue"));
    }

    /// <summary>Every changed byte lies in the reported field or in the reported checksum.</summary>
    private static void AssertOnlyReportedBytesChanged(byte[] before, byte[] after, string output)
    {
        var field = FieldAt().Match(output);
        Assert.True(field.Success, output);
        var fieldAt = long.Parse(field.Groups[1].Value, CultureInfo.InvariantCulture);
        var fieldSize = int.Parse(field.Groups[2].Value, CultureInfo.InvariantCulture);
        var csum = ChecksumAt().Match(output);
        var csumAt = csum.Success ? long.Parse(csum.Groups[1].Value, CultureInfo.InvariantCulture) : -100;
        var changed = Changed(before, after);
        Assert.NotEmpty(changed);
        Assert.Contains(changed, i => i >= fieldAt && i < fieldAt + fieldSize);
        Assert.All(changed, i => Assert.True((i >= fieldAt && i < fieldAt + fieldSize) || (i >= csumAt && i < csumAt + 8),
            $"byte {i} changed outside the field {fieldAt}+{fieldSize} and the checksum {csumAt}: {output}"));
    }

    private static List<long> Changed(byte[] before, byte[] after) =>
        [.. Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).Select(i => (long)i)];

    [GeneratedRegex(@"\((\d+)\)")]
    private static partial Regex Ids();

    [GeneratedRegex(@"field \S+ at device offset (\d+) \((\d+) bytes?\)")]
    private static partial Regex FieldAt();

    [GeneratedRegex(@"checksum of [^\n]*\(device offset (\d+)\)")]
    private static partial Regex ChecksumAt();

    [GeneratedRegex(@"expect: reads of inode (\d+) at offset (\d+) fail with EIO")]
    private static partial Regex ExpectRead();
}
