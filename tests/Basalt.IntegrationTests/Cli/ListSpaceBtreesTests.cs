using System.Text.Json;
using Basalt.Alloc;
using Basalt.Fs;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

/// <summary>`list` of the allocation and data btrees prints decoded values and what each position means.</summary>
public sealed class ListSpaceBtreesTests
{
    [Fact]
    public void List_decodes_the_allocation_and_data_btrees()
    {
        using var dir = new TempDirectory("cli-list-space");
        var path = CliImages.WithData(dir);
        // Inode 10 (200 KiB) fills buckets 72..74 and 16 sectors of 75; inode 11 (70 KiB) the rest
        // of 75 and 28 sectors of 76; inode 12 (5000 bytes) 10 sectors of 76.
        Assert.Equal("0:72:0 alloc: gen 0 oldest_gen 0 user dirty 128 cached 0 need_discard need_inc_gen (dev 0 bucket 72)",
            Lines(path, "alloc")[0]);
        Assert.Equal("0:76:0 alloc: gen 0 oldest_gen 0 user dirty 38 cached 0 need_discard need_inc_gen frag 637534208 (dev 0 bucket 76)",
            Lines(path, "alloc")[4]);
        Assert.Equal(["0:255:0 len 178 set (dev 0 free buckets 77..254)"], Lines(path, "freespace"));
        Assert.Equal(["562950590955520:76:0 set (fragmentation lru index 637534208: dev 0 bucket 76)"], Lines(path, "lru"));
        // Each counter names the version (journal seq, ordinal) of the newest delta folded into it.
        Assert.Collection(Lines(path, "accounting"),
            line => Assert.Matches(@"^1:0:0 accounting: buckets 178 sectors 0 fragmented 0 folded at seq [1-9][0-9]*\.[1-9][0-9]* \(dev 0 free\)$", line),
            line => Assert.Matches(@"^1:2:0 accounting: buckets 8 sectors 1024 fragmented 0 folded at seq [1-9][0-9]*\.[1-9][0-9]* \(dev 0 journal\)$", line),
            line => Assert.Matches(@"^1:3:0 accounting: buckets 61 sectors 7808 fragmented 0 folded at seq [1-9][0-9]*\.[1-9][0-9]* \(dev 0 btree\)$", line),
            line => Assert.Matches(@"^1:4:0 accounting: buckets 5 sectors 550 fragmented 90 folded at seq [1-9][0-9]*\.[1-9][0-9]* \(dev 0 user\)$", line));
        Assert.Equal("0:9437184:0 backpointer: extents level 0 user gen 0 sectors 128 owner 10:128:4294967295 (dev 0 data at byte 4718592 window 0)",
            Lines(path, "backpointers")[0]);
        var extents = Lines(path, "extents");
        Assert.Equal(7, extents.Length);
        Assert.Matches(@"^10:128:4294967295 len 128 extent: crc32c [0-9a-f]+ run 128 window 0 \[dev 0 offset 4718592 gen 0\] \(inode 10 bytes 0\.\.65535\)$", extents[0]);
        Assert.Matches(@"^12:10:4294967295 len 10 extent: crc32c [0-9a-f]+ run 10 window 0 \[dev 0 offset 4995072 gen 0\] \(inode 12 bytes 0\.\.5119\)$", extents[6]);

        var json = CliRunner.Succeeds("list", "--json", "--btree", "freespace", path);
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Equal("dev 0 free buckets 77..254", doc.RootElement.GetProperty("keys")[0].GetProperty("where").GetString());
    }

    [Fact]
    public void List_shows_need_discard_then_bucket_gens_after_a_punch()
    {
        using var dir = new TempDirectory("cli-list-space");
        var path = CliImages.WithData(dir);
        using (var fs = BasaltFileSystem.Mount(path, new MountOptions { Space = new SpaceOptions { BackgroundWorker = false } }))
        {
            fs.Data.Punch(10, 0, CliImages.DataFileSizes[0]);
            fs.Sync();
        }
        Assert.Equal(["0:72:0 set (dev 0 bucket 72)", "0:73:0 set (dev 0 bucket 73)", "0:74:0 set (dev 0 bucket 74)"], Lines(path, "need_discard"));
        Assert.Equal("0:72:0 alloc: gen 0 oldest_gen 0 need_discard dirty 0 cached 0 need_discard need_inc_gen (dev 0 bucket 72)", Lines(path, "alloc")[0]);
        using (var fs = BasaltFileSystem.Mount(path, new MountOptions { Space = new SpaceOptions { BackgroundWorker = false } }))
        {
            Assert.Equal(3, fs.Space.RunDiscards(waitForJournal: true));
            fs.Sync();
        }
        Assert.Empty(Lines(path, "need_discard"));
        Assert.Equal(["min bucket_gens: 256 gens, 3 non-zero (dev 0 gens of buckets 0..255: 72=1 73=1 74=1)"], Lines(path, "bucket_gens"));
    }

    private static string[] Lines(string path, string btree) =>
        CliRunner.Succeeds("list", "--btree", btree, path).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
}
