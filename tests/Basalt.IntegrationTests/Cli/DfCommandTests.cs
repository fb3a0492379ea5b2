using System.Text.Json;
using Basalt.Fs;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class DfCommandTests
{
    [Fact]
    public void Df_of_a_fresh_image_counts_every_bucket_in_its_layout_state()
    {
        using var dir = new TempDirectory("cli-df");
        var path = CliImages.Formatted(dir);
        var r = CliRunner.Succeeds("df", path);
        // 16 MiB with 64 KiB buckets: 255 buckets, 3 below first_bucket, 8 journal, 61 node area, 183 free.
        Assert.Equal(
            $"{path}: device 0: 255 buckets of 65536 bytes, first bucket 3, reserve 2 buckets\n" +
            "  state              buckets           bytes\n" +
            "  free                   183               0\n" +
            "  need_discard             0               0\n" +
            "  need_gc_gens             0               0\n" +
            "  sb                       3          196608\n" +
            "  journal                  8          524288\n" +
            "  btree                   61         3997696\n" +
            "  user                     0               0\n" +
            "  cached                   0               0\n" +
            "  fragmented                               0\n" +
            "size                  16711680\n" +
            "used                   4718592\n" +
            "available             11862016\n" +
            "inodes                       2\n", r.Out);
    }

    [Fact]
    public void Df_json_counts_the_data_written_and_matches_the_allocator()
    {
        using var dir = new TempDirectory("cli-df");
        var path = CliImages.WithData(dir);
        var r = CliRunner.Succeeds("df", "--json", path);
        using var doc = JsonDocument.Parse(r.Out);
        var dev = doc.RootElement.GetProperty("devices")[0];
        var buckets = dev.GetProperty("buckets");
        var bytes = dev.GetProperty("bytes");
        var written = CliImages.DataFileSizes.Sum(s => (s + 511) / 512 * 512L);
        Assert.Equal(written, bytes.GetProperty("user").GetInt64());
        Assert.Equal("accounting", dev.GetProperty("source").GetString());
        var user = buckets.GetProperty("user").GetInt64();
        Assert.InRange(user, (written + 65535) / 65536, ((written + 65535) / 65536) + 1);
        Assert.Equal(183 - user, buckets.GetProperty("free").GetInt64() + buckets.GetProperty("need_discard").GetInt64());
        Assert.Equal(4718592 + written, doc.RootElement.GetProperty("used").GetInt64());
        Assert.Equal((buckets.GetProperty("free").GetInt64() - 2) * 65536, doc.RootElement.GetProperty("available").GetInt64());
        using var fs = BasaltFileSystem.Mount(path, new MountOptions { ReadOnly = true });
        Assert.Equal(fs.Space.AvailableSectors() * 512, doc.RootElement.GetProperty("available").GetInt64());
    }

    [Fact]
    public void Df_of_an_unclean_image_replays_in_memory_and_leaves_the_image_alone()
    {
        using var dir = new TempDirectory("cli-df");
        var path = CliImages.WithData(dir, clean: false);
        var before = CliImages.Hash(path);
        var r = CliRunner.Succeeds("df", "--json", path);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal(CliImages.DataFileSizes.Sum(s => (s + 511) / 512 * 512L),
            doc.RootElement.GetProperty("devices")[0].GetProperty("bytes").GetProperty("user").GetInt64());
        Assert.Equal(before, CliImages.Hash(path));
    }

    [Fact]
    public void Df_of_a_device_never_mounted_counts_from_the_layout()
    {
        using var dir = new TempDirectory("cli-df");
        var path = dir.File("bare.img");
        using (var device = Basalt.Devices.FileBlockDevice.Create(path, 16L << 20))
        {
            Basalt.Superblocks.SuperblockIo.Format(device, new Basalt.Superblocks.FormatOptions
            {
                BucketSize = 64 * 1024, NodeSize = 4096, BlockSize = 512,
            });
        }
        Assert.Contains("alloc initialized:      no (the first writable mount creates the allocation info)\n",
            CliRunner.Succeeds("show-super", path).Out, StringComparison.Ordinal);
        var text = CliRunner.Succeeds("df", path).Out;
        Assert.StartsWith($"{path}: device 0: 255 buckets of 65536 bytes, first bucket 3, reserve 2 buckets " +
                          "(allocation info not created yet: every bucket in its layout state)\n", text, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(CliRunner.Succeeds("df", "--json", path).Out);
        var dev = doc.RootElement.GetProperty("devices")[0];
        Assert.Equal("layout", dev.GetProperty("source").GetString());
        Assert.Equal(183, dev.GetProperty("buckets").GetProperty("free").GetInt64());
        Assert.Equal(61, dev.GetProperty("buckets").GetProperty("btree").GetInt64());
        Assert.Equal(11862016, doc.RootElement.GetProperty("available").GetInt64());
    }

    [Fact]
    public void Df_bad_input_is_one_line()
    {
        using var dir = new TempDirectory("cli-df");
        CliRunner.Fails(1, ["df", dir.File("missing.img")], "missing.img");
        var junk = dir.File("junk.img");
        File.WriteAllBytes(junk, new byte[1 << 20]);
        CliRunner.Fails(1, ["df", junk], "not a Basalt filesystem");
        // A damaged accounting node: the read fails with one line naming the node, exit 8.
        var damaged = CliImages.WithData(dir, name: "damaged.img");
        CliRunner.Succeeds("debug", "corrupt", "--target", "node", "--btree", "accounting", "--field", "magic", damaged);
        CliRunner.Fails(8, ["df", damaged], "btree accounting level 0 node at offset ", "btree_node_bad_magic");
        var r = CliRunner.Fails(16, ["df", "--json", "--bogus", junk], "unknown option '--bogus'");
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal(16, doc.RootElement.GetProperty("exit_code").GetInt32());
    }
}
