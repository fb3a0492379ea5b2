using System.Text.Json;
using Basalt.Alloc;
using Basalt.Format;
using Basalt.Fs;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

/// <summary>format --no-discard and --data-checksum, and the bucket geometry show-super prints.</summary>
public sealed class FormatOptionsTests
{
    [Fact]
    public void Defaults_discard_on_crc32c_and_show_super_prints_the_bucket_geometry()
    {
        using var dir = new TempDirectory("cli-format-options");
        var path = dir.File("fs.img");
        var r = CliRunner.Succeeds(["format", .. CliImages.SmallGeometry, path]);
        Assert.EndsWith("\ndata checksum crc32c, discard on\n", r.Out, StringComparison.Ordinal);
        var show = CliRunner.Succeeds("show-super", path).Out;
        Assert.Contains(
            "buckets:                255 of 65536 bytes, first bucket 3 (buckets 0..2 hold the superblock area)\n" +
            "journal buckets:        8 (buckets 3..10)\n" +
            "node area:              61 buckets (buckets 11..71 at bytes 720896..4718591)\n" +
            "node regions:           buckets 8..71 (regions of 4 buckets that have held btree nodes: what the node scan reads)\n" +
            "data buckets:           183 (btree buckets claimed beyond the node area come out of these)\n" +
            "discard:                on\n" +
            "alloc initialized:      yes\n", show, StringComparison.Ordinal);
        Assert.Contains("data checksum:          crc32c\n", show, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("crc64", ChecksumType.Crc64)]
    [InlineData("xxhash64", ChecksumType.XxHash64)]
    [InlineData("CRC32C", ChecksumType.Crc32C)]
    public void Data_checksum_and_no_discard_are_stored_and_used(string name, ChecksumType type)
    {
        using var dir = new TempDirectory("cli-format-options");
        var path = dir.File("fs.img");
        var r = CliRunner.Succeeds(["format", .. CliImages.SmallGeometry, "--no-discard", "--data-checksum", name, path]);
        Assert.EndsWith($"\ndata checksum {type.ToText()}, discard off\n", r.Out, StringComparison.Ordinal);
        var show = CliRunner.Succeeds("show-super", path).Out;
        Assert.Contains($"data checksum:          {type.ToText()}\n", show, StringComparison.Ordinal);
        Assert.Contains("discard:                off\n", show, StringComparison.Ordinal);
        using (var doc = JsonDocument.Parse(CliRunner.Succeeds("show-super", "--json", path).Out))
        {
            Assert.Equal(type.ToText(), doc.RootElement.GetProperty("data_checksum").GetString());
            var member = doc.RootElement.GetProperty("members")[0];
            Assert.False(member.GetProperty("discard").GetBoolean());
            Assert.True(member.GetProperty("alloc_initialized").GetBoolean());
            Assert.Equal(8UL, member.GetProperty("journal_buckets").GetUInt64());
            Assert.Equal(183UL, member.GetProperty("data_buckets").GetUInt64());
            Assert.Equal(2, member.GetProperty("node_region_shift").GetInt32());
            var region = Assert.Single(member.GetProperty("node_regions").EnumerateArray());
            Assert.Equal(8UL, region.GetProperty("start").GetUInt64());
            Assert.Equal(64UL, region.GetProperty("count").GetUInt64());
        }
        // The data layer writes its extents with that checksum, and the allocator does not discard.
        using (var fs = BasaltFileSystem.Mount(path, new MountOptions()))
        {
            Assert.False(fs.Space.DiscardEnabled);
            fs.Data.Write(5, 0, CliImages.DataOf(5, 4096));
        }
        Assert.Contains($"extent: {type.ToText()} ", CliRunner.Succeeds("list", "--btree", "extents", path).Out, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_data_checksum_is_a_usage_error()
    {
        using var dir = new TempDirectory("cli-format-options");
        var path = dir.File("fs.img");
        CliRunner.Fails(16, ["format", .. CliImages.SmallGeometry, "--data-checksum", "md5", path],
            "--data-checksum: 'md5' is not one of crc32c, crc64, xxhash64");
        CliRunner.Fails(16, ["format", .. CliImages.SmallGeometry, path, "--data-checksum"], "--data-checksum needs a value");
        Assert.False(File.Exists(path));
    }
}
