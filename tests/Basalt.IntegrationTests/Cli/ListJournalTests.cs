// list-journal and the journal part of show-super, on images whose journal the test wrote itself
// (JournalImages): every entry's seq, flush flag, keys, place and fate must match what was
// committed and how; damage must be listed where debug corrupt put it; a ring of garbage must
// still list, not crash.
using System.Globalization;
using System.Text.Json;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.IntegrationTests.Cli;

public sealed class ListJournalTests(ITestOutputHelper output)
{
    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Out).RootElement.Clone();

    private static Dictionary<ulong, JsonElement> EntriesBySeq(JsonElement doc) =>
        doc.GetProperty("entries").EnumerateArray().ToDictionary(e => e.GetProperty("seq").GetUInt64());

    [Fact]
    public void Unclean_image_lists_every_written_entry_with_its_flush_flag_keys_and_fate()
    {
        using var dir = new TempDirectory("cli-list-journal");
        var image = JournalImages.Make(dir, JournalImages.SmallPlan);
        var doc = Json(CliRunner.Succeeds("list-journal", "--json", image.Path));
        var entries = EntriesBySeq(doc);
        var c = image.Commits;

        Assert.False(doc.GetProperty("clean").GetBoolean());
        Assert.Equal(32, doc.GetProperty("ring").GetProperty("buckets").GetInt32());
        Assert.Equal(4096, doc.GetProperty("ring").GetProperty("bucket_size").GetInt32());
        var checkpoint = doc.GetProperty("checkpoint_seq").GetUInt64();
        Assert.True(checkpoint < c[0].Seq, $"checkpoint {checkpoint}");

        // Every written transaction has its entry, flushed exactly when it was committed durable; the unwritten one has none.
        foreach (var commit in c.Where(x => x.Kind != CommitKind.Unwritten))
        {
            var e = entries[commit.Seq];
            Assert.Equal(commit.Kind == CommitKind.Flush, e.GetProperty("flush").GetBoolean());
            Assert.Equal(JournalImages.KeysPerTransaction + 1, e.GetProperty("key_count").GetInt32());
            Assert.Equal(1, e.GetProperty("records").GetProperty("btree_keys").GetInt32());
            Assert.Equal(1, e.GetProperty("records").GetProperty("datetime").GetInt32());
            Assert.Equal(JsonValueKind.Null, e.GetProperty("keys").ValueKind);
            // Every entry carries every btree's root: test, and the allocation btrees format's first mount made.
            Assert.Equal(["accounting", "freespace", "test"],
                e.GetProperty("roots").EnumerateArray().Select(r => r.GetProperty("btree").GetString()).Order(StringComparer.Ordinal));
            // Its place: a block boundary inside the ring bucket it names.
            var ring = e.GetProperty("ring_index").GetInt32();
            var bucket = e.GetProperty("bucket").GetUInt64();
            var offset = e.GetProperty("offset").GetInt64();
            Assert.Equal(doc.GetProperty("ring").GetProperty("ranges")[0].GetProperty("first_bucket").GetUInt64() + (ulong)ring, bucket);
            Assert.InRange(offset, (long)bucket * 4096, ((long)bucket * 4096) + 4096 - e.GetProperty("bytes").GetInt32());
            Assert.Equal(0, offset % 512);
        }
        Assert.DoesNotContain(c[^1].Seq, entries.Keys);
        Assert.Equal([true, false, false, true, false], c.Take(5).Select(x => entries[x.Seq].GetProperty("flush").GetBoolean()));

        // The next mount replays up to the newest flush entry (transaction 4) and drops transaction 5's entry.
        Assert.All(c.Take(4), x => Assert.Equal("replay", entries[x.Seq].GetProperty("fate").GetString()));
        Assert.Equal("dropped", entries[c[4].Seq].GetProperty("fate").GetString());
        Assert.Equal(c[3].Seq, doc.GetProperty("replay").GetProperty("last").GetUInt64());
        Assert.InRange(doc.GetProperty("replay").GetProperty("first").GetUInt64(), checkpoint + 1, c[0].Seq);
        Assert.Equal(c[4].Seq, doc.GetProperty("new_blacklist").GetProperty("first").GetUInt64());
        Assert.Equal(c[4].Seq, doc.GetProperty("new_blacklist").GetProperty("last").GetUInt64());
        Assert.Equal(1, doc.GetProperty("dropped").GetInt32());
        Assert.Equal(JsonValueKind.Null, doc.GetProperty("lost").ValueKind);
        Assert.Equal(c[4].Seq + 1, doc.GetProperty("next_seq").GetUInt64());
        // 4 transactions of 3 keys; the counter key is deduplicated to its newest value.
        Assert.Equal((4 * JournalImages.KeysPerTransaction) + 1, doc.GetProperty("replay_keys").GetInt32());
        Assert.Empty(doc.GetProperty("damage").EnumerateArray());
        Assert.Empty(doc.GetProperty("gaps").EnumerateArray());

        // The text listing says the same, one line per entry.
        var text = CliRunner.Succeeds("list-journal", image.Path).Out;
        foreach (var commit in c.Take(5))
        {
            var line = text.Split('\n').Single(l => l.StartsWith($"seq {commit.Seq} ", StringComparison.Ordinal));
            Assert.StartsWith($"seq {commit.Seq} {(commit.Kind == CommitKind.Flush ? "flush" : "no-flush")} last_seq ", line, StringComparison.Ordinal);
            Assert.Contains($"at byte {entries[commit.Seq].GetProperty("offset").GetInt64()}, ", line, StringComparison.Ordinal);
            Assert.Contains("1 btree_keys (3 keys)", line, StringComparison.Ordinal);
            Assert.EndsWith(commit.K <= 4 ? "; replay" : "; dropped", line, StringComparison.Ordinal);
        }
        Assert.Contains($"replay: the next mount replays seqs {doc.GetProperty("replay").GetProperty("first").GetUInt64()}..{c[3].Seq}", text, StringComparison.Ordinal);
        Assert.Contains($"blacklists seq {c[4].Seq}", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Keys_lists_each_key_of_each_entry()
    {
        using var dir = new TempDirectory("cli-list-journal");
        var image = JournalImages.Make(dir, JournalImages.SmallPlan);
        var c = image.Commits;
        var doc = Json(CliRunner.Succeeds("list-journal", "--keys", "--json", "--seq", $"{c[1].Seq}", image.Path));
        var entry = Assert.Single(doc.GetProperty("entries").EnumerateArray());
        var keys = entry.GetProperty("keys").EnumerateArray().ToList();
        Assert.Equal(
            [JournalImages.KeyPos(2, 0).ToText(), JournalImages.KeyPos(2, 1).ToText(), JournalImages.CounterPos.ToText()],
            keys.Select(k => k.GetProperty("pos").GetString()));
        Assert.Equal([JournalImages.ValueBytes, JournalImages.ValueBytes, 8], keys.Select(k => k.GetProperty("value_bytes").GetInt32()));
        Assert.All(keys, k =>
        {
            Assert.Equal("test", k.GetProperty("btree").GetString());
            Assert.Equal(0, k.GetProperty("level").GetInt32());
            Assert.Equal("cookie", k.GetProperty("type").GetString());
            Assert.Equal(JsonValueKind.Null, k.GetProperty("pointer").ValueKind);
        });

        var text = CliRunner.Succeeds("list-journal", "--keys", "--seq", $"{c[1].Seq}", image.Path).Out;
        Assert.Contains($"  key test level 0 {JournalImages.KeyPos(2, 1).ToText()} cookie, {JournalImages.ValueBytes} value bytes\n", text, StringComparison.Ordinal);
        Assert.Contains($"  key test level 0 {JournalImages.CounterPos.ToText()} cookie, 8 value bytes\n", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{1}..{2}", 1, 2)]
    [InlineData("{3}..", 3, 4)]
    [InlineData("..{0}", -1, 0)]
    [InlineData("{2}", 2, 2)]
    public void Seq_filters_the_entries(string pattern, int firstCommit, int lastCommit)
    {
        using var dir = new TempDirectory("cli-list-journal");
        var image = JournalImages.Make(dir, JournalImages.SmallPlan);
        var seqs = image.Commits.Select(x => x.Seq.ToString(CultureInfo.InvariantCulture)).ToArray();
        var filter = string.Format(CultureInfo.InvariantCulture, pattern, seqs);
        var all = EntriesBySeq(Json(CliRunner.Succeeds("list-journal", "--json", image.Path))).Keys.ToList();
        var doc = Json(CliRunner.Succeeds("list-journal", "--json", "--seq", filter, image.Path));

        var lo = firstCommit < 0 ? 0 : image.Commits[firstCommit].Seq;
        var hi = image.Commits[lastCommit].Seq;
        var expected = all.Where(s => s >= lo && s <= hi).Order().ToList();
        Assert.NotEmpty(expected);
        Assert.Equal(expected, doc.GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("seq").GetUInt64()));
        Assert.Equal(lo, doc.GetProperty("seq_filter").GetProperty("first").GetUInt64());
        // The replay decision does not depend on the filter.
        Assert.Equal(image.Commits[3].Seq, doc.GetProperty("replay").GetProperty("last").GetUInt64());
    }

    [Theory]
    [InlineData("x", "'x' is not a seq or seq range")]
    [InlineData("9..3", "'9..3' is an empty range: 9 is after 3")]
    [InlineData("..", "'..' names no seq")]
    [InlineData("1..2..3", "'1..2..3' is not a seq or seq range")]
    [InlineData("-4", "'-4' is not a seq or seq range")]
    public void Bad_seq_syntax_is_a_usage_error(string seq, string message)
    {
        using var dir = new TempDirectory("cli-list-journal");
        var path = CliImages.Formatted(dir);
        CliRunner.Fails(16, ["list-journal", "--seq", seq, path], $"basalt list-journal: --seq: {message}", "see 'basalt list-journal --help'");
    }

    [Fact]
    public void An_image_that_is_not_basalt_fails_in_one_line_with_a_json_error()
    {
        using var dir = new TempDirectory("cli-list-journal");
        var junk = dir.File("junk.img");
        File.WriteAllBytes(junk, new byte[1 << 20]);
        var r = CliRunner.Fails(1, ["list-journal", "--json", junk], "basalt list-journal:", "not a Basalt filesystem");
        Assert.Equal(1, Json(r).GetProperty("exit_code").GetInt32());
    }

    [Fact]
    public void Clean_image_lists_checkpointed_entries_and_replays_nothing()
    {
        using var dir = new TempDirectory("cli-list-journal");
        var path = CliImages.WithKeys(dir, 500);
        var doc = Json(CliRunner.Succeeds("list-journal", "--json", "--keys", path));
        Assert.True(doc.GetProperty("clean").GetBoolean());
        var checkpoint = doc.GetProperty("checkpoint_seq").GetUInt64();
        var entries = doc.GetProperty("entries").EnumerateArray().ToList();
        Assert.NotEmpty(entries);
        Assert.All(entries, e =>
        {
            Assert.InRange(e.GetProperty("seq").GetUInt64(), 1UL, checkpoint);
            Assert.Equal("checkpointed", e.GetProperty("fate").GetString());
        });
        // 500 keys were inserted, one transaction each: the journal holds each leaf key once.
        var leafKeys = entries.SelectMany(e => e.GetProperty("keys").EnumerateArray()).Where(k => k.GetProperty("level").GetInt32() == 0).ToList();
        Assert.Equal(500, leafKeys.Count);
        Assert.Equal(500, leafKeys.Select(k => k.GetProperty("pos").GetString()).Distinct().Count());
        Assert.Equal(entries.Sum(e => e.GetProperty("key_count").GetInt32()), entries.Sum(e => e.GetProperty("keys").GetArrayLength()));
        Assert.Equal(JsonValueKind.Null, doc.GetProperty("replay").ValueKind);
        Assert.Equal(0, doc.GetProperty("replay_keys").GetInt32());
        Assert.Equal(checkpoint + 1, doc.GetProperty("next_seq").GetUInt64());
        Assert.Empty(doc.GetProperty("damage").EnumerateArray());
        var text = CliRunner.Succeeds("list-journal", path).Out;
        Assert.Contains($"replay: clean at checkpoint seq {checkpoint}: the next mount replays nothing", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Damaged_entries_are_listed_with_their_offsets_and_what_they_cost()
    {
        using var dir = new TempDirectory("cli-list-journal");
        var image = JournalImages.Make(dir, JournalImages.SmallPlan);
        var c = image.Commits;
        var before = EntriesBySeq(Json(CliRunner.Succeeds("list-journal", "--json", image.Path)));

        // A bit flip inside transaction 2's entry: its checksum fails; transaction 3 gets a damaged magic.
        CliRunner.Succeeds("debug", "corrupt", "--target", "journal-entry", "--seq", $"{c[1].Seq}", "--seed", "5", image.Path);
        CliRunner.Succeeds("debug", "corrupt", "--target", "journal-field", "--field", "magic", "--seq", $"{c[2].Seq}", image.Path);
        var r = CliRunner.Succeeds("list-journal", "--json", image.Path);
        output.WriteLine(r.Out);
        var doc = Json(r);

        var entries = EntriesBySeq(doc);
        Assert.DoesNotContain(c[1].Seq, entries.Keys);
        Assert.DoesNotContain(c[2].Seq, entries.Keys);
        var damage = doc.GetProperty("damage").EnumerateArray().ToList();
        var csum = Assert.Single(damage, d => d.GetProperty("id").GetInt32() == 100);
        Assert.Equal("journal_entry_bad_csum", csum.GetProperty("name").GetString());
        Assert.Equal(c[1].Seq, csum.GetProperty("seq").GetUInt64());
        Assert.Equal(before[c[1].Seq].GetProperty("offset").GetInt64(), csum.GetProperty("offset").GetInt64());
        // In the lost range: a finding of its own, next to the seqs it cost.
        Assert.True(csum.GetProperty("finding").GetBoolean());
        var missing = Assert.Single(damage, d => d.GetProperty("id").GetInt32() == 103);
        Assert.Equal(c[1].Seq, missing.GetProperty("seq").GetUInt64());
        Assert.True(missing.GetProperty("finding").GetBoolean());

        var gap = Assert.Single(doc.GetProperty("gaps").EnumerateArray());
        Assert.Equal(c[1].Seq, gap.GetProperty("first").GetUInt64());
        Assert.Equal(c[2].Seq, gap.GetProperty("last").GetUInt64());
        Assert.Equal("needed by the replay window: lost", gap.GetProperty("note").GetString());
        var magic = Assert.Single(gap.GetProperty("damaged_magic").EnumerateArray());
        Assert.Equal(c[2].Seq, magic.GetProperty("seq").GetUInt64());
        Assert.Equal(before[c[2].Seq].GetProperty("offset").GetInt64(), magic.GetProperty("offset").GetInt64());

        Assert.Equal(c[0].Seq, doc.GetProperty("replay").GetProperty("last").GetUInt64());
        Assert.Equal(c[1].Seq, doc.GetProperty("lost").GetProperty("first").GetUInt64());
        Assert.Equal(c[3].Seq, doc.GetProperty("lost").GetProperty("last").GetUInt64());
        Assert.Equal(["replay", "dropped", "dropped"], new[] { c[0], c[3], c[4] }.Select(x => entries[x.Seq].GetProperty("fate").GetString()));

        var text = CliRunner.Succeeds("list-journal", image.Path).Out;
        Assert.Contains($"journal_entry_bad_csum (100) seq {c[1].Seq} at ring index ", text, StringComparison.Ordinal);
        Assert.Contains($"byte {before[c[1].Seq].GetProperty("offset").GetInt64()}: ", text, StringComparison.Ordinal);
        Assert.Contains($"LOST seqs {c[1].Seq}..{c[3].Seq}", text, StringComparison.Ordinal);
        Assert.Contains($"seq {c[2].Seq} is at ring index ", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_ring_of_garbage_still_lists_and_show_super_still_reports()
    {
        var seed = TestSeed.Get(output, "journal garbage");
        using var dir = new TempDirectory("cli-list-journal");
        var image = JournalImages.Make(dir, JournalImages.SmallPlan);
        long start, length;
        using (var device = FileBlockDevice.Open(image.Path, readOnly: true))
        {
            var sb = SuperblockIo.Read(device).Superblock;
            start = (long)sb.JournalBuckets[0].Start * sb.BucketSize;
            length = (long)sb.JournalBuckets[0].Count * sb.BucketSize;
        }
        var original = EntriesBySeq(Json(CliRunner.Succeeds("list-journal", "--json", image.Path)));
        var random = new Random(seed);
        using (var file = new FileStream(image.Path, FileMode.Open, FileAccess.ReadWrite))
        {
            // Random bytes over every other block of the ring: every bucket's first block among them.
            var block = new byte[512];
            for (var at = start; at < start + length; at += 1024)
            {
                random.NextBytes(block);
                file.Position = at;
                file.Write(block);
            }
        }
        var r = CliRunner.Succeeds("list-journal", "--json", "--keys", image.Path);
        var doc = Json(r);
        // Garbage never becomes an entry: whatever is listed was written by the test, where it was written.
        foreach (var (seq, entry) in EntriesBySeq(doc))
            Assert.Equal(original[seq].GetProperty("offset").GetInt64(), entry.GetProperty("offset").GetInt64());
        Assert.True(doc.GetProperty("entries").GetArrayLength() < original.Count, r.Out);
        Assert.NotEmpty(doc.GetProperty("damage").EnumerateArray());
        CliRunner.Succeeds("list-journal", image.Path);
        var show = Json(CliRunner.Succeeds("show-super", "--json", image.Path));
        Assert.Equal(doc.GetProperty("entries").GetArrayLength(), show.GetProperty("journal").GetProperty("entries").GetInt32());
    }

    [Fact]
    public void Show_super_reports_the_journal_of_an_unclean_image()
    {
        using var dir = new TempDirectory("cli-list-journal");
        var image = JournalImages.Make(dir, JournalImages.SmallPlan);
        var c = image.Commits;
        var list = Json(CliRunner.Succeeds("list-journal", "--json", image.Path));
        var doc = Json(CliRunner.Succeeds("show-super", "--json", image.Path));
        var j = doc.GetProperty("journal");

        Assert.Equal(32, j.GetProperty("buckets").GetInt32());
        Assert.Equal(4096, j.GetProperty("bucket_size").GetInt32());
        Assert.Equal(32 * 4096, j.GetProperty("bytes").GetInt64());
        var range = Assert.Single(j.GetProperty("ranges").EnumerateArray());
        Assert.Equal(range.GetProperty("first_bucket").GetInt64() * 4096, range.GetProperty("offset").GetInt64());
        Assert.Equal(32 * 4096, range.GetProperty("length").GetInt64());
        Assert.Equal(range.GetProperty("first_bucket").GetUInt64() + 31, range.GetProperty("last_bucket").GetUInt64());
        Assert.False(j.GetProperty("clean").GetBoolean());
        Assert.False(doc.GetProperty("clean").GetBoolean());
        Assert.NotEqual(JsonValueKind.Null, j.GetProperty("last_mount").ValueKind);
        Assert.Equal(list.GetProperty("checkpoint_seq").GetUInt64(), j.GetProperty("checkpoint_seq").GetUInt64());
        Assert.Equal(c[4].Seq, j.GetProperty("newest_seq").GetUInt64());
        Assert.Equal(c[3].Seq, j.GetProperty("newest_flush_seq").GetUInt64());
        Assert.Equal(list.GetProperty("entries").GetArrayLength(), j.GetProperty("entries").GetInt32());
        Assert.Equal(list.GetProperty("entries")[0].GetProperty("seq").GetUInt64(), j.GetProperty("oldest_seq").GetUInt64());
        Assert.Equal(list.GetProperty("replay").GetProperty("first").GetUInt64(), j.GetProperty("oldest_in_window").GetUInt64());
        Assert.Equal(c[3].Seq, j.GetProperty("replay").GetProperty("last").GetUInt64());
        Assert.Equal(0, j.GetProperty("damaged").GetInt32());
        Assert.Empty(j.GetProperty("superblock_blacklist").EnumerateArray());
        Assert.Equal(c[4].Seq + 1, j.GetProperty("next_seq").GetUInt64());

        var text = CliRunner.Succeeds("show-super", image.Path).Out;
        Assert.DoesNotContain("never", text, StringComparison.Ordinal);
        Assert.Contains("clean:                  no; last mount 20", text, StringComparison.Ordinal);
        Assert.Contains($"journal ring:           32 buckets of 4096 bytes (131072 bytes: buckets {range.GetProperty("first_bucket").GetUInt64()}..", text, StringComparison.Ordinal);
        Assert.Contains($"journal on disk:        {j.GetProperty("entries").GetInt32()} entries, seqs {j.GetProperty("oldest_seq").GetUInt64()}..{c[4].Seq} " +
                        $"(newest {c[4].Seq}, newest flush {c[3].Seq})", text, StringComparison.Ordinal);
        Assert.Contains($"journal state:          dirty, checkpoint seq {j.GetProperty("checkpoint_seq").GetUInt64()}, " +
                        $"oldest seq in the replay window {j.GetProperty("oldest_in_window").GetUInt64()}", text, StringComparison.Ordinal);
        Assert.Contains($"journal replay:         the next mount replays seqs {j.GetProperty("oldest_in_window").GetUInt64()}..{c[3].Seq}", text, StringComparison.Ordinal);

        // After recovery by a writable mount the dropped seq is in the superblock's blacklist.
        using (var fs = Basalt.Fs.BasaltFileSystem.Mount(image.Path, new Basalt.Fs.MountOptions()))
            fs.Close(sync: false);
        var after = Json(CliRunner.Succeeds("show-super", "--json", image.Path)).GetProperty("journal");
        var black = Assert.Single(after.GetProperty("superblock_blacklist").EnumerateArray());
        Assert.Equal(c[4].Seq, black.GetProperty("first").GetUInt64());
        Assert.Contains($"journal blacklisted:    seq {c[4].Seq}", CliRunner.Succeeds("show-super", image.Path).Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Show_super_reports_clean_and_never_mounted_images()
    {
        using var dir = new TempDirectory("cli-list-journal");
        // Only the library's bare superblock format leaves an image that was never mounted (format mounts once).
        var bare = dir.File("bare.img");
        using (var device = FileBlockDevice.Create(bare, 16 << 20, overwrite: false))
            SuperblockIo.Format(device, new FormatOptions { BucketSize = 64 * 1024, NodeSize = 4096, BlockSize = 512 });
        var bareDoc = Json(CliRunner.Succeeds("show-super", "--json", bare)).GetProperty("journal");
        Assert.True(bareDoc.GetProperty("clean").GetBoolean());
        Assert.Equal(JsonValueKind.Null, bareDoc.GetProperty("last_mount").ValueKind);
        Assert.Equal(0, bareDoc.GetProperty("entries").GetInt32());
        Assert.Equal(JsonValueKind.Null, bareDoc.GetProperty("newest_seq").ValueKind);
        Assert.Equal(JsonValueKind.Null, bareDoc.GetProperty("replay").ValueKind);
        var bareText = CliRunner.Succeeds("show-super", bare).Out;
        Assert.Contains("clean:                  yes; last mount never (formatted ", bareText, StringComparison.Ordinal);
        Assert.Contains("journal on disk:        no entries\n", bareText, StringComparison.Ordinal);

        var used = CliImages.WithKeys(dir, 300, "used.img");
        var doc = Json(CliRunner.Succeeds("show-super", "--json", used)).GetProperty("journal");
        Assert.True(doc.GetProperty("clean").GetBoolean());
        Assert.NotEqual(JsonValueKind.Null, doc.GetProperty("last_mount").ValueKind);
        Assert.InRange(doc.GetProperty("newest_seq").GetUInt64(), 1UL, doc.GetProperty("checkpoint_seq").GetUInt64());
        Assert.Equal(JsonValueKind.Null, doc.GetProperty("replay").ValueKind);
        var text = CliRunner.Succeeds("show-super", used).Out;
        Assert.Contains("clean:                  yes; last mount 20", text, StringComparison.Ordinal);
        Assert.Contains($"journal state:          clean, checkpoint seq {doc.GetProperty("checkpoint_seq").GetUInt64()}\n", text, StringComparison.Ordinal);
        Assert.Contains("journal replay:         clean at checkpoint seq ", text, StringComparison.Ordinal);
    }
}
