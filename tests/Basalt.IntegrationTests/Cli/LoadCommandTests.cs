// `basalt debug load` and `--verify` in process: parameters stored and resumed, durable lines,
// conflicting flags, differences found and named, the JSON document, and images that cannot be
// opened.
using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using Basalt.Cli;
using Basalt.Format;
using Basalt.Fs;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class LoadCommandTests
{
    private static string[] Load(string image, params string[] args) => ["debug", "load", image, .. args];

    private static string[] VerifyArgs(string image, params string[] args) => ["debug", "load", "--verify", image, .. args];

    /// <summary>The `durable t i` lines of an output, in order.</summary>
    private static List<(int Thread, long Transaction)> DurableLines(string output)
    {
        var lines = new List<(int, long)>();
        foreach (var line in output.ReplaceLineEndings("\n").Split('\n').Where(l => l.StartsWith("durable ", StringComparison.Ordinal)))
        {
            Assert.True(LoadProcess.TryParseDurable(line, out var thread, out var transaction), line);
            lines.Add((thread, transaction));
        }
        return lines;
    }

    /// <summary>Every key of the test btree as (pos, value hex), through `list --json`.</summary>
    private static List<(string Pos, int Length, string Value)> ListKeys(string image)
    {
        var r = CliRunner.Succeeds("list", "--btree", "test", "--json", image);
        using var doc = JsonDocument.Parse(r.Out);
        return [.. doc.RootElement.GetProperty("keys").EnumerateArray()
            .Select(k => (k.GetProperty("pos").GetString()!, k.GetProperty("value_length").GetInt32(), k.GetProperty("value").GetString()!))];
    }

    [Fact]
    public void A_load_stores_its_parameters_prints_durable_lines_and_resumes_each_thread_after_its_counter()
    {
        using var dir = new TempDirectory("cli-load");
        var image = CliImages.Formatted(dir);

        var first = CliRunner.Succeeds(Load(image, "--threads", "2", "--ops", "30", "--seed", "7", "--value-bytes", "40", "--keys", "50", "--flush-every", "5"));

        // Every 5th transaction flushes; the last one (30) is a multiple of 5 too: nothing more to print.
        var lines = DurableLines(first.Out);
        for (var t = 0; t < 2; t++)
            Assert.Equal([5L, 10, 15, 20, 25, 30], lines.Where(l => l.Thread == t).Select(l => l.Transaction));
        Assert.Equal(12, lines.Count);
        Assert.Contains("seed 7, 2 threads, 40-byte values, 50 keys per thread (stored in the image)", first.Out, StringComparison.Ordinal);
        Assert.Contains("thread 1: transactions 1..30: ", first.Out, StringComparison.Ordinal);

        using (var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true }))
        {
            var tree = fs.Btrees[BtreeId.Test];
            Assert.True(tree.TryGet(new Bpos(ulong.MaxValue, 1), out var stored), "parameters at max-inode:1");
            Assert.Equal(new LoadParameters(7, 2, 40, 50), LoadParameters.Decode(stored));
            for (var t = 0; t < 2; t++)
            {
                Assert.True(tree.TryGet(new Bpos(((ulong)t << 32) + 1, 0), out var counter));
                Assert.Equal(16, counter.Length);
                Assert.Equal(30, BinaryPrimitives.ReadInt64LittleEndian(counter));
            }
        }

        // Resumed without flags: the stored parameters apply, each thread continues at 31; the last
        // transaction (33) is not a multiple of 5 and is waited for at the end.
        var second = CliRunner.Succeeds(Load(image, "--ops", "3", "--flush-every", "5"));
        Assert.Contains("(read from the image)", second.Out, StringComparison.Ordinal);
        Assert.Equal([(0, 33L), (1, 33L)], DurableLines(second.Out).Order());
        Assert.Contains("thread 0: transactions 31..33: ", second.Out, StringComparison.Ordinal);
        var rest = CliRunner.Succeeds(Load(image, "--ops", "7", "--seed", "7"));
        Assert.Equal(Enumerable.Range(34, 7).Select(i => (long)i), DurableLines(rest.Out).Where(l => l.Thread == 1).Select(l => l.Transaction));

        var verify = CliRunner.Succeeds(VerifyArgs(image));
        Assert.Contains("recovered 0 40\n", verify.Out.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Contains("recovered 1 40\n", verify.Out.ReplaceLineEndings("\n"), StringComparison.Ordinal);

        // Resuming is the same as running in one go: a fresh image loaded with 40 transactions holds
        // byte for byte the same keys; another seed does not.
        var once = CliImages.Formatted(dir, "once.img");
        CliRunner.Succeeds(Load(once, "--threads", "2", "--ops", "40", "--seed", "7", "--value-bytes", "40", "--keys", "50"));
        var keys = ListKeys(image);
        Assert.Equal(keys, ListKeys(once));
        var other = CliImages.Formatted(dir, "other.img");
        CliRunner.Succeeds(Load(other, "--threads", "2", "--ops", "40", "--seed", "8", "--value-bytes", "40", "--keys", "50"));
        Assert.NotEqual(keys, ListKeys(other));

        // What the keys are: two counters (inode t·2^32 + 1), the parameters, and slot keys of 40 bytes (inode t·2^32 + 2).
        Assert.Equal("1:0:0", keys[0].Pos);
        Assert.Contains(keys, k => k.Pos == "4294967297:0:0");
        Assert.Equal($"{ulong.MaxValue}:1:0", keys[^1].Pos);
        var slots = keys.Where(k => k.Pos.StartsWith("2:", StringComparison.Ordinal) || k.Pos.StartsWith("4294967298:", StringComparison.Ordinal)).ToList();
        Assert.Equal(keys.Count - 3, slots.Count);
        Assert.All(slots, k => Assert.Equal(40, k.Length));
        Assert.All(slots, k => Assert.InRange(long.Parse(k.Pos.Split(':')[1], CultureInfo.InvariantCulture), 0, 49));
        var total = JsonDocument.Parse(CliRunner.Succeeds(VerifyArgs(image, "--json")).Out).RootElement.GetProperty("keys").GetInt64();
        Assert.Equal(keys.Count - 1, total);
    }

    [Fact]
    public void A_flag_that_conflicts_with_the_stored_parameters_is_a_usage_error_naming_the_stored_value()
    {
        using var dir = new TempDirectory("cli-load");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds(Load(image, "--threads", "2", "--ops", "3", "--seed", "7", "--value-bytes", "40", "--keys", "50"));
        var hash = CliImages.Hash(image);

        CliRunner.Fails(16, Load(image, "--threads", "3"), $"--threads 3 conflicts with --threads 2 stored in {image}");
        CliRunner.Fails(16, Load(image, "--seed", "1"), $"--seed 1 conflicts with --seed 7 stored in {image}");
        CliRunner.Fails(16, Load(image, "--value-bytes", "100"), $"--value-bytes 100 conflicts with --value-bytes 40 stored in {image}");
        CliRunner.Fails(16, Load(image, "--keys", "51"), $"--keys 51 conflicts with --keys 50 stored in {image}");
        CliRunner.Fails(16, VerifyArgs(image, "--seed", "8"), $"--seed 8 conflicts with --seed 7 stored in {image}");
        var json = CliRunner.Fails(16, VerifyArgs(image, "--threads", "1", "--json"), "--threads 1 conflicts with --threads 2");
        Assert.Equal(16, JsonDocument.Parse(json.Out).RootElement.GetProperty("exit_code").GetInt32());
        // The same values are no conflict.
        CliRunner.Succeeds(VerifyArgs(image, "--seed", "7", "--threads", "2", "--value-bytes", "40", "--keys", "50"));
        Assert.Equal(hash, CliImages.Hash(image));

        CliRunner.Fails(16, Load(image, "--ops", "3", "--seconds", "1"), "--ops and --seconds exclude each other");
        CliRunner.Fails(16, VerifyArgs(image, "--ops", "3"), "--ops does not apply to --verify");
        CliRunner.Fails(16, VerifyArgs(image, "--flush-every", "1"), "--flush-every does not apply to --verify");
        CliRunner.Fails(16, Load(image, "--json"), "--json goes with --verify");
        CliRunner.Fails(16, Load(image, "--seconds", "-1"), "--seconds: '-1' is not a number of seconds");
        CliRunner.Fails(16, Load(image, "--threads", "0"), "--threads: 0 is outside 1..256");
        CliRunner.Fails(16, Load(image, "--value-bytes", "8"), "--value-bytes: 8 is outside 16..65536");
        Assert.Equal(hash, CliImages.Hash(image));

        // A first load whose values do not fit the image's 4 KiB nodes.
        var fresh = CliImages.Formatted(dir, "fresh.img");
        CliRunner.Fails(16, Load(fresh, "--value-bytes", "2000"), "--value-bytes 2000 is more than a key of", "(1024 bytes with 4096-byte nodes)");
    }

    [Fact]
    public void A_first_load_refuses_a_test_btree_that_already_holds_keys_in_the_thread_ranges()
    {
        using var dir = new TempDirectory("cli-load");
        var image = CliImages.WithKeys(dir, 20);
        var hash = CliImages.Hash(image);
        CliRunner.Fails(1, Load(image, "--ops", "1"), "btree test already holds keys where the load's threads write (the first at 1:0:0)");
        Assert.Equal(hash, CliImages.Hash(image));
    }

    [Fact]
    public void A_load_that_fills_the_device_stops_with_one_device_full_line_and_leaves_a_consistent_image()
    {
        using var dir = new TempDirectory("cli-load");
        var image = CliImages.Formatted(dir);

        // 1 KiB values in 4 KiB nodes of a 16 MiB image: the node space runs out after a few thousand keys.
        var full = CliRunner.Fails(1, Load(image, "--threads", "2", "--value-bytes", "1000", "--keys", "1000000", "--ops", "1000000", "--flush-every", "4"),
            $"basalt debug load: {image}: device full: ", "node space full", "the load stopped with thread 0 at transaction ",
            "the image was unmounted cleanly and holds every transaction up to those");
        var lines = full.Out.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        Assert.EndsWith("stopped: device full; unmounted cleanly", lines[^1], StringComparison.Ordinal);

        // The summary names where every thread stopped; a clean unmount keeps each of those
        // transactions, including the unflushed last ones, and nothing else.
        var stopped = new Dictionary<int, long>();
        foreach (var line in lines.Where(l => l.StartsWith("thread ", StringComparison.Ordinal)))
        {
            var words = line.Split(' ');
            stopped[int.Parse(words[1].TrimEnd(':'), CultureInfo.InvariantCulture)] =
                long.Parse(words[3].TrimEnd(':').Split("..")[1], CultureInfo.InvariantCulture);
        }
        Assert.Equal(2, stopped.Count);
        Assert.All(stopped.Values, last => Assert.True(last > 10, full.ToString()));
        foreach (var (thread, transaction) in DurableLines(full.Out))
            Assert.True(transaction <= stopped[thread], $"durable {thread} {transaction} beyond the summary: {full}");

        var verify = CliRunner.Succeeds(VerifyArgs(image, "--json"));
        using (var doc = JsonDocument.Parse(verify.Out))
        {
            Assert.StartsWith("clean", doc.RootElement.GetProperty("recovery").GetString(), StringComparison.Ordinal);
            foreach (var t in doc.RootElement.GetProperty("threads").EnumerateArray())
                Assert.Equal(stopped[t.GetProperty("thread").GetInt32()], t.GetProperty("recovered").GetInt64());
        }
        CliRunner.Succeeds("fsck", "-n", image);

        // A second load on the full image says the same thing and changes nothing it verifies.
        CliRunner.Fails(1, Load(image, "--ops", "1000"), "device full: ");
        CliRunner.Succeeds(VerifyArgs(image));
        CliRunner.Succeeds("fsck", "-n", image);
    }

    [Fact]
    public void Verify_names_every_altered_missing_and_extra_key_and_exits_1()
    {
        using var dir = new TempDirectory("cli-load");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds(Load(image, "--threads", "2", "--ops", "200", "--seed", "3", "--keys", "40", "--value-bytes", "32"));
        var p = new LoadParameters(3, 2, 32, 40);
        var live = LoadModel.ExpectedSlots(p, 1, 200);
        var slots = live.Keys.Order().ToArray();
        var changed = LoadModel.SlotPos(1, slots[0]);
        var deleted = LoadModel.SlotPos(1, slots[1]);
        var empty = Enumerable.Range(0, 40).First(s => !live.ContainsKey(s));
        var added = LoadModel.SlotPos(1, empty);
        using (var fs = BasaltFileSystem.Mount(image, new MountOptions()))
        {
            var tree = fs.Btrees[BtreeId.Test];
            Assert.True(tree.TryGet(changed, out var value));
            value[20] ^= 1;
            tree.Insert(changed, value);
            Assert.True(tree.Delete(deleted));
            tree.Insert(added, LoadModel.Value(p, 1, 7, empty));
        }

        var r = CliRunner.Fails(1, VerifyArgs(image), $"3 differences from the keys the counters call for; the first: thread 1: {changed.ToText()}: wrong:");
        var text = r.Out.ReplaceLineEndings("\n");
        Assert.Contains("recovered 0 200\nrecovered 1 200\n", text, StringComparison.Ordinal);
        Assert.Contains($"difference: thread 1: {changed.ToText()}: wrong: holds the 32-byte value of transaction {live[slots[0]]}, which differs from the value of transaction {live[slots[0]]} at byte 20", text, StringComparison.Ordinal);
        Assert.Contains($"difference: thread 1: {deleted.ToText()}: missing: slot {slots[1]} is absent; expected the value of transaction {live[slots[1]]}", text, StringComparison.Ordinal);
        Assert.Contains($"difference: thread 1: {added.ToText()}: extra: slot {empty} holds the 32-byte value of transaction 7; transactions 1..200 leave it empty", text, StringComparison.Ordinal);
        Assert.Contains("verify FAILED: ", text, StringComparison.Ordinal);

        var json = CliRunner.Run(VerifyArgs(image, "--json"));
        Assert.Equal(1, json.ExitCode);
        using var doc = JsonDocument.Parse(json.Out);
        var root = doc.RootElement;
        Assert.Equal(3, root.GetProperty("difference_count").GetInt64());
        var differences = root.GetProperty("differences").EnumerateArray().ToList();
        var kinds = differences.ToDictionary(d => d.GetProperty("pos").GetString()!, d => d.GetProperty("kind").GetString());
        Assert.Equal(3, kinds.Count);
        Assert.Equal("wrong", kinds[changed.ToText()]);
        Assert.Equal("missing", kinds[deleted.ToText()]);
        Assert.Equal("extra", kinds[added.ToText()]);
        Assert.All(differences, d => Assert.Equal(1, d.GetProperty("thread").GetInt32()));
        Assert.All(differences, d => Assert.False(string.IsNullOrEmpty(d.GetProperty("detail").GetString())));
        var threads = root.GetProperty("threads").EnumerateArray().ToList();
        Assert.Equal(0, threads[0].GetProperty("differences").GetInt64());
        Assert.Equal(3, threads[1].GetProperty("differences").GetInt64());
        Assert.Equal(1, root.GetProperty("exit_code").GetInt32());
    }

    [Fact]
    public void A_damaged_counter_is_reported_and_never_replayed()
    {
        using var dir = new TempDirectory("cli-load");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds(Load(image, "--threads", "2", "--ops", "10", "--keys", "20"));
        var counter = new Bpos((1UL << 32) + 1, 0);
        var damaged = new byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(damaged, 1L << 62);
        using (var fs = BasaltFileSystem.Mount(image, new MountOptions()))
            fs.Btrees[BtreeId.Test].Insert(counter, damaged);

        var r = CliRunner.Fails(1, VerifyArgs(image),
            $"1 difference from the keys the counters call for; the first: thread 1: {counter.ToText()}: counter: the counter holds 16 bytes 00000000000000400000000000000000, not a counter of thread 1; the thread's keys are not checked");
        Assert.Contains("recovered 0 10\nrecovered 1 ?\n", r.Out.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        using (var doc = JsonDocument.Parse(CliRunner.Run(VerifyArgs(image, "--json")).Out))
        {
            var threads = doc.RootElement.GetProperty("threads").EnumerateArray().ToList();
            Assert.Equal(10, threads[0].GetProperty("recovered").GetInt64());
            Assert.Equal(JsonValueKind.Null, threads[1].GetProperty("recovered").ValueKind);
            Assert.Equal("counter", Assert.Single(doc.RootElement.GetProperty("differences").EnumerateArray()).GetProperty("kind").GetString());
        }
        // A load does not resume from it either.
        CliRunner.Fails(8, Load(image, "--ops", "1"), $"the key at {counter.ToText()} in btree test holds 16 bytes 00000000000000400000000000000000, not a counter of thread 1");
    }

    [Fact]
    public void Verify_json_lists_each_thread_with_its_counter_and_key_count()
    {
        using var dir = new TempDirectory("cli-load");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds(Load(image, "--threads", "3", "--ops", "25", "--seed", "11", "--keys", "30", "--value-bytes", "16"));
        CliRunner.Succeeds(Load(image, "--ops", "5"));

        var r = CliRunner.Succeeds(VerifyArgs(image, "--json"));
        using var doc = JsonDocument.Parse(r.Out);
        var root = doc.RootElement;
        var p = new LoadParameters(11, 3, 16, 30);
        Assert.Equal(image, root.GetProperty("device").GetString());
        Assert.Equal(11, root.GetProperty("seed").GetInt32());
        Assert.Equal(3, root.GetProperty("thread_count").GetInt32());
        Assert.Equal(16, root.GetProperty("value_bytes").GetInt32());
        Assert.Equal(30, root.GetProperty("keys_per_thread").GetInt32());
        var threads = root.GetProperty("threads").EnumerateArray().ToList();
        Assert.Equal(3, threads.Count);
        long total = 0;
        for (var t = 0; t < 3; t++)
        {
            Assert.Equal(t, threads[t].GetProperty("thread").GetInt32());
            Assert.Equal(30, threads[t].GetProperty("recovered").GetInt64());
            var expected = LoadModel.ExpectedSlots(p, t, 30).Count + 1;
            Assert.Equal(expected, threads[t].GetProperty("keys").GetInt64());
            total += expected;
        }
        Assert.Equal(total, root.GetProperty("keys").GetInt64());
        Assert.Equal(ListKeys(image).Count - 1, total);
        Assert.Empty(root.GetProperty("differences").EnumerateArray());
        Assert.Equal(0, root.GetProperty("difference_count").GetInt64());
        Assert.Equal(0, root.GetProperty("exit_code").GetInt32());
    }

    [Fact]
    public void Verify_exits_8_when_the_image_cannot_be_opened_or_holds_no_load()
    {
        using var dir = new TempDirectory("cli-load");
        var missing = dir.File("missing.img");
        CliRunner.Fails(8, VerifyArgs(missing), $"{missing}: no such file");
        var json = CliRunner.Fails(8, VerifyArgs(missing, "--json"), "no such file");
        Assert.Equal(8, JsonDocument.Parse(json.Out).RootElement.GetProperty("exit_code").GetInt32());

        var garbage = dir.File("garbage.img");
        var bytes = new byte[1 << 20];
        new Random(5).NextBytes(bytes);
        File.WriteAllBytes(garbage, bytes);
        CliRunner.Fails(8, VerifyArgs(garbage), $"{garbage}: not a Basalt filesystem");
        Assert.Equal(bytes, File.ReadAllBytes(garbage));

        var empty = CliImages.Formatted(dir);
        CliRunner.Fails(8, VerifyArgs(empty), $"{empty}: no load parameters in btree test at {ulong.MaxValue}:1:0 (run basalt debug load on it first)");
        CliRunner.Fails(8, VerifyArgs(dir.Path), "is a directory");

        // A load (not --verify) on a missing image is a failure the user can act on, like other commands.
        CliRunner.Fails(1, Load(missing), $"{missing}: no such file");
    }
}
