using System.Text.Json;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class FsckCommandTests
{
    [Fact]
    public void A_node_naming_a_journal_seq_past_the_journal_does_not_stop_the_repair_that_rewrites_it()
    {
        // The root's bset claims journal seq 2^64 - 1 with a valid checksum, and a leaf under it is
        // unreadable: the repair rewrites the root, which must not look like a write before its
        // journal entry is durable (that stopped fsck with the filesystem in emergency read-only).
        using var dir = new TempDirectory("cli-fsck-future-seq");
        var path = CliImages.WithKeys(dir, 4000); // a level 2 root
        Assert.Contains("level 2", CliRunner.Succeeds("list", "--btree", "test", "--level", "2", path).Err, StringComparison.Ordinal);
        CliRunner.Succeeds("debug", "corrupt", "--target", "bset", "--btree", "test", "--level", "2", "--field", "journal_seq", "--mode", "ones",
            "--fix-csum", path);
        CliRunner.Succeeds("debug", "corrupt", "--target", "node", "--btree", "test", "--level", "0", "--seed", "1", path);
        var repair = CliRunner.Run("fsck", "-y", path);
        Assert.True(repair.ExitCode == 1, repair.ToString());
        var check = CliRunner.Run("fsck", "-n", path);
        Assert.True(check.ExitCode == 0, check.ToString());
    }

    [Fact]
    public void Fsck_of_a_fresh_image_is_clean_in_every_mode()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        foreach (var mode in new[] { "-n", "-y", "-p" })
        {
            var r = CliRunner.Succeeds("fsck", mode, path);
            Assert.Contains("clean", r.Out, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Fsck_t_prints_each_pass_time_and_the_total_and_json_carries_them()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        var r = CliRunner.Succeeds("fsck", "-n", "-t", path);
        var passLines = r.Out.Split('\n').Where(l => l.StartsWith("pass ", StringComparison.Ordinal) && l.Contains(": ok", StringComparison.Ordinal)).ToArray();
        Assert.Equal(FsckCatalogue.Passes.Count, passLines.Length);
        Assert.All(passLines, l => Assert.Matches(@": ok \(\d+\.\d{3} s\)$", l.TrimEnd()));
        Assert.Matches(@"time: \d+\.\d{3} s in all, \d+\.\d{3} s in the passes", r.Out);
        // Without -t the lines stay as they were.
        Assert.DoesNotContain(" s)", CliRunner.Succeeds("fsck", "-n", path).Out, StringComparison.Ordinal);

        using var doc = System.Text.Json.JsonDocument.Parse(CliRunner.Succeeds("fsck", "-n", "-t", "--json", path).Out);
        var seconds = doc.RootElement.GetProperty("pass_seconds");
        Assert.Equal(FsckCatalogue.Passes.Count, seconds.EnumerateObject().Count());
        Assert.True(seconds.GetProperty("check_superblock").GetDouble() >= 0);
        Assert.True(doc.RootElement.GetProperty("seconds").GetDouble() > 0);
        using var plain = System.Text.Json.JsonDocument.Parse(CliRunner.Succeeds("fsck", "-n", "--json", path).Out);
        Assert.False(plain.RootElement.TryGetProperty("pass_seconds", out _));
    }

    [Fact]
    public void Fsck_without_a_flag_and_without_a_terminal_checks_only_and_says_so()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        CliImages.DamageSuperblockCopy(path, 1);
        var before = CliImages.Hash(path);
        var r = CliRunner.Run("fsck", path);
        Assert.Equal(4, r.ExitCode);
        Assert.Contains("checking only", r.Out, StringComparison.Ordinal);
        Assert.Equal(before, CliImages.Hash(path));
    }

    [Fact]
    public void Fsck_takes_a_max_mem_size_with_a_suffix_and_refuses_a_bad_one()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        var r = CliRunner.Succeeds("fsck", "-n", "--max-mem", "4K", path);
        Assert.Contains("clean", r.Out, StringComparison.Ordinal);
        CliRunner.Fails(16, ["fsck", "-n", "--max-mem", "12Q", path], "--max-mem 12Q");
    }

    [Fact]
    public void Fsck_takes_max_keys_for_the_json_list_of_lost_keys_and_refuses_a_negative_one()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        using (var doc = System.Text.Json.JsonDocument.Parse(CliRunner.Succeeds("fsck", "-n", "--json", "--max-keys", "0", path).Out))
        {
            Assert.Equal(0, doc.RootElement.GetProperty("lost_keys_total").GetInt64());
            Assert.Empty(doc.RootElement.GetProperty("lost_keys").EnumerateArray());
        }
        CliRunner.Fails(16, ["fsck", "-n", "--max-keys", "-1", path], "--max-keys");
        CliRunner.Fails(16, ["fsck", "-n", "--max-keys", "many", path], "--max-keys");
    }

    [Fact]
    public void Fsck_flags_exclude_each_other()
    {
        CliRunner.Fails(16, ["fsck", "-n", "-y", "x.img"], "exclude each other");
        CliRunner.Fails(16, ["fsck", "-p", "-y", "x.img"], "exclude each other");
    }

    [Fact]
    public void Fsck_repairs_a_damaged_superblock_copy_and_n_reports_what_y_repairs()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        var offset = CliImages.DamageSuperblockCopy(path, 1);
        var before = CliImages.Hash(path);

        var check = CliRunner.Run("fsck", "-n", "--json", path);
        Assert.True(check.ExitCode == 4, check.ToString());
        Assert.Equal(before, CliImages.Hash(path));

        var repair = CliRunner.Run("fsck", "-y", "--json", path);
        Assert.True(repair.ExitCode == 1, repair.ToString());
        Assert.Equal(Findings(check.Out), Findings(repair.Out));
        Assert.Contains(("sb_copy_bad_checksum", $"{path}: superblock copy 1 at byte {offset}"), Findings(repair.Out));

        var again = CliRunner.Run("fsck", "-n", path);
        Assert.True(again.ExitCode == 0, again.ToString());

        var show = CliRunner.Succeeds("show-super", "--json", path);
        using var doc = JsonDocument.Parse(show.Out);
        var counters = doc.RootElement.GetProperty("error_counters");
        Assert.Equal("sb_copy_bad_checksum", counters[0].GetProperty("name").GetString());
        Assert.Equal(1UL, counters[0].GetProperty("count").GetUInt64());
    }

    [Theory]
    [InlineData("key", "3")]
    [InlineData("bset", "5")]
    [InlineData("node", "8")]
    public void Fsck_n_changes_no_byte_of_a_damaged_btree_and_reports_exactly_what_y_repairs(string target, string seed)
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.WithKeys(dir, 3000);
        CliRunner.Succeeds("debug", "corrupt", "--target", target, "--btree", "test", "--level", "0", "--seed", seed, path);
        var before = CliImages.Hash(path);

        var check = CliRunner.Run("fsck", "-n", "--json", path);
        Assert.True(check.ExitCode == 4, check.ToString());
        Assert.Equal(before, CliImages.Hash(path));

        var repair = CliRunner.Run("fsck", "-y", "--json", path);
        Assert.True((repair.ExitCode & 1) == 1, repair.ToString());
        Assert.Equal(Findings(check.Out), Findings(repair.Out));
        Assert.NotEqual(before, CliImages.Hash(path));

        var again = CliRunner.Run("fsck", "-n", path);
        Assert.True(again.ExitCode == 0, again.ToString());
        CliRunner.Succeeds("list", "--btree", "test", path);
    }

    [Fact]
    public void Fsck_text_output_prints_one_line_per_finding_with_the_decision()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        CliImages.DamageSuperblockCopy(path, 1);
        var check = CliRunner.Run("fsck", "-n", path);
        var line = Assert.Single(check.Out.Split('\n'), l => l.Contains("sb_copy_bad_checksum", StringComparison.Ordinal));
        Assert.Contains("superblock copy 1", line, StringComparison.Ordinal);
        Assert.Contains("not fixing", line, StringComparison.Ordinal);
        var repair = CliRunner.Run("fsck", "-p", path);
        Assert.Equal(1, repair.ExitCode);
        Assert.Contains("sb_copy_bad_checksum", repair.Out, StringComparison.Ordinal);
        Assert.Contains(", fixing", repair.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Fsck_json_is_one_document_with_every_finding()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        CliImages.DamageSuperblockCopy(path, 1);
        CliImages.DamageSuperblockCopy(path, 2);
        var r = CliRunner.Run("fsck", "-n", "--json", path);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal(2, doc.RootElement.GetProperty("findings").GetArrayLength());
        Assert.Equal(4, doc.RootElement.GetProperty("exit_code").GetInt32());
        Assert.Equal(2, doc.RootElement.GetProperty("uncorrected").GetInt32());
        Assert.Equal("check_superblock", doc.RootElement.GetProperty("passes")[0].GetString());
    }

    [Fact]
    public void Fsck_without_a_flag_on_a_terminal_asks_per_finding()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        CliImages.DamageSuperblockCopy(path, 1);
        CliImages.DamageSuperblockCopy(path, 2);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        // "maybe" is not an answer: asked again. Then no for copy 1, yes for copy 2.
        var terminal = new Basalt.Cli.CliTerminal(true, true, new StringReader("maybe\nn\ny\n"));
        var code = Basalt.Cli.Program.Run(["fsck", path], stdout, stderr, terminal, CancellationToken.None);
        var output = stdout.ToString();
        Assert.True(code == 5, $"exit {code}\n{output}\n{stderr}");
        Assert.Equal(3, output.Split("fix? [y]es, [n]o, [Y]es to all, [N]o to all").Length - 1);
        Assert.Contains("superblock copy 1", output, StringComparison.Ordinal);
        Assert.Contains("1 corrected, 1 left uncorrected", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Fsck_ask_treats_end_of_input_as_no_to_all()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        CliImages.DamageSuperblockCopy(path, 1);
        CliImages.DamageSuperblockCopy(path, 2);
        var stdout = new StringWriter();
        var terminal = new Basalt.Cli.CliTerminal(true, true, new StringReader(""));
        var code = Basalt.Cli.Program.Run(["fsck", path], stdout, new StringWriter(), terminal, CancellationToken.None);
        Assert.Equal(4, code);
        Assert.Single(stdout.ToString().Split("fix? [y]es").Skip(1));
    }

    [Fact]
    public void Fsck_cancelled_exits_32()
    {
        using var dir = new TempDirectory("cli-fsck");
        var path = CliImages.Formatted(dir);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        var stderr = new StringWriter();
        var code = Basalt.Cli.Program.Run(["fsck", "-y", path], new StringWriter(), stderr, Basalt.Cli.CliTerminal.None, cancel.Token);
        Assert.Equal(32, code);
        Assert.Contains("cancelled", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Json_commands_that_fail_still_print_one_json_document()
    {
        using var dir = new TempDirectory("cli-fsck");
        var r = CliRunner.Fails(8, ["fsck", "-n", "--json", dir.File("missing.img")], "no such file");
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal(8, doc.RootElement.GetProperty("exit_code").GetInt32());
        Assert.Contains("no such file", doc.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        var show = CliRunner.Fails(1, ["show-super", "--json", dir.Path], "is a directory");
        using var doc2 = JsonDocument.Parse(show.Out);
        Assert.Equal(1, doc2.RootElement.GetProperty("exit_code").GetInt32());
    }

    private static List<(string Name, string Where)> Findings(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return [.. doc.RootElement.GetProperty("findings").EnumerateArray()
            .Select(f => (f.GetProperty("name").GetString()!, f.GetProperty("where").GetString()!))];
    }
}
