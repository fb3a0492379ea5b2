// debug corrupt on unclean images: the journal targets change exactly the bytes they report (and
// the checksum they say they recomputed), inside the entry they name; damage to an entry the
// replay window needs is a check_journal finding; and the node targets hit nodes that are live
// after recovery, not the stale ones the superblock's roots still lead to.
using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Basalt.Cli;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.IntegrationTests.Cli;

public sealed partial class DebugCorruptJournalTests(ITestOutputHelper output)
{
    [GeneratedRegex(@"journal entry seq (\d+) \((flush|no-flush)\) at ring index \d+ \(bucket \d+\) at byte (\d+), (\d+) bytes")]
    private static partial Regex EntryPattern();

    [GeneratedRegex(@"field (\S+)(?: \(header and records\))? at device offset (\d+) \((\d+) bytes?\)")]
    private static partial Regex FieldPattern();

    [GeneratedRegex(@"checksum of journal entry seq \d+ \(device offset (\d+)\): ([0-9a-f]{16}) -> ([0-9a-f]{16})")]
    private static partial Regex ChecksumPattern();

    private sealed record Report(ulong Seq, bool Flush, long EntryOffset, int EntryBytes, string Field, long Offset, int Length, long? ChecksumOffset);

    private static Report Parse(CliResult r)
    {
        var entry = EntryPattern().Match(r.Out);
        var field = FieldPattern().Match(r.Out);
        Assert.True(entry.Success && field.Success, r.ToString());
        var csum = ChecksumPattern().Match(r.Out);
        static long L(Group g) => long.Parse(g.Value, CultureInfo.InvariantCulture);
        return new Report(ulong.Parse(entry.Groups[1].Value, CultureInfo.InvariantCulture), entry.Groups[2].Value == "flush",
            L(entry.Groups[3]), (int)L(entry.Groups[4]), field.Groups[1].Value, L(field.Groups[2]), (int)L(field.Groups[3]),
            csum.Success ? L(csum.Groups[1]) : null);
    }

    private static List<long> Changed(byte[] before, byte[] after) =>
        [.. Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).Select(i => (long)i)];

    public static TheoryData<string, string, bool, string?> Cases => new()
    {
        { "journal-entry", "bitflip", false, null },
        { "journal-entry", "zero", false, null },
        { "journal-entry", "random", true, null },
        { "journal-record", "bitflip", false, null },
        { "journal-record", "ones", true, "type" },
        { "journal-record", "random", false, "payload" },
        { "journal-field", "bitflip", false, "seq" },
        { "journal-field", "random", true, "last_seq" },
        { "journal-field", "ones", false, "flags" },
        { "journal-field", "bitflip", false, "payload_bytes" },
        { "journal-field", "zero", true, "magic" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Journal_targets_change_exactly_the_bytes_they_report(string target, string mode, bool fix, string? field)
    {
        var seed = TestSeed.Get(output, $"corrupt {target}");
        using var dir = new TempDirectory("cli-corrupt-journal");
        var image = JournalImages.Make(dir, JournalImages.SmallPlan);
        var entries = JsonDocument.Parse(CliRunner.Succeeds("list-journal", "--json", image.Path).Out).RootElement
            .GetProperty("entries").EnumerateArray().ToDictionary(e => e.GetProperty("seq").GetUInt64(), e => e.Clone());
        var before = File.ReadAllBytes(image.Path);
        List<string> args = ["debug", "corrupt", image.Path, "--target", target, "--mode", mode, "--seed", $"{seed}"];
        if (fix)
            args.Add("--fix-csum");
        if (field is not null)
            args.AddRange(["--field", field]);
        var r = CliRunner.Succeeds([.. args]);
        output.WriteLine(r.Out);
        var report = Parse(r);
        var after = File.ReadAllBytes(image.Path);

        // The entry named is one list-journal listed, where it listed it.
        var entry = entries[report.Seq];
        Assert.Equal(entry.GetProperty("offset").GetInt64(), report.EntryOffset);
        Assert.Equal(entry.GetProperty("bytes").GetInt32(), report.EntryBytes);
        Assert.Equal(entry.GetProperty("flush").GetBoolean(), report.Flush);

        // Every changed byte lies in the reported field, or in the checksum the report says was recomputed.
        var changed = Changed(before, after);
        Assert.NotEmpty(changed);
        Assert.All(changed, i => Assert.True(
            (i >= report.Offset && i < report.Offset + report.Length) || (report.ChecksumOffset is { } c && i >= c && i < c + 8),
            $"byte {i} changed outside the reported field {report.Offset}+{report.Length}"));
        Assert.InRange(report.Offset, report.EntryOffset, report.EntryOffset + report.EntryBytes - report.Length);
        Assert.Equal(fix, report.ChecksumOffset is not null || r.Out.Contains("could not be recomputed", StringComparison.Ordinal));
        if (report.ChecksumOffset is { } csum)
            Assert.Equal(report.EntryOffset, csum);
        if (mode == "bitflip" && !fix)
        {
            var bits = changed.Sum(i => System.Numerics.BitOperations.PopCount((uint)(before[i] ^ after[i])));
            Assert.Equal(1, bits);
        }
        switch (target)
        {
            case "journal-field":
            {
                var f = JournalInspector.HeaderFields.Single(x => x.Name == field);
                Assert.Equal(report.EntryOffset + f.Offset, report.Offset);
                Assert.Equal(f.Size, report.Length);
                if (field == "seq")
                    Assert.Equal(report.Seq, BinaryPrimitives.ReadUInt64LittleEndian(before.AsSpan((int)report.Offset)));
                break;
            }
            case "journal-entry":
                Assert.Equal(report.EntryOffset, report.Offset);
                Assert.Equal(JournalFormat.HeaderSize + BinaryPrimitives.ReadUInt32LittleEndian(before.AsSpan((int)report.EntryOffset + JournalFormat.PayloadBytesOffset)),
                    (uint)report.Length);
                break;
            default:
            {
                // The record named starts at a record boundary of the entry as the inspector walks it.
                var records = JournalInspector.Records(before.AsSpan((int)report.EntryOffset, report.EntryBytes));
                var at = Regex.Match(r.Out, @"at byte (\d+) of the entry");
                var record = records.Single(x => x.Offset == int.Parse(at.Groups[1].Value, CultureInfo.InvariantCulture));
                var header = JournalInspector.RecordHeaderFields.SingleOrDefault(x => x.Name == report.Field);
                var (offset, length) = report.Field == "payload"
                    ? (record.Offset + JournalFormat.RecordHeaderSize, (int)record.Bytes - JournalFormat.RecordHeaderSize)
                    : (record.Offset + header.Offset, header.Size);
                Assert.Equal(report.EntryOffset + offset, report.Offset);
                Assert.Equal(length, report.Length);
                break;
            }
        }
    }

    /// <summary>
    /// Damage per target on the small plan's image (seqs c1..c5: flush, no-flush, no-flush, flush,
    /// no-flush): which entry (by transaction), the arguments, and the check_journal ids the first
    /// fsck -n must report. Every entry damaged here is one the replay window needs.
    /// </summary>
    public static TheoryData<int, string, int[]> FsckCases => new()
    {
        // The entry is unreadable, so the seqs from it to the newest flush entry are lost (103); an
        // entry still found (its magic intact) is reported as well, by what is wrong with it:
        // the checksum (100), the header (101) or a record (102).
        { 2, "--target journal-entry --mode bitflip --seed 3", [100, 103] },
        { 2, "--target journal-entry --mode zero", [103] },
        { 1, "--target journal-record --field payload --mode random --seed 1", [100, 103] },
        { 2, "--target journal-record --field type --mode ones --fix-csum", [102, 103] },
        { 1, "--target journal-field --field magic --mode bitflip", [103] },
        { 2, "--target journal-field --field version --mode random --fix-csum --seed 2", [101, 103] },
        // Forged with a good checksum: a last_seq past the entry's own seq, read as its own seq.
        { 1, "--target journal-field --field last_seq --mode ones --fix-csum", [104] },
        { 3, "--target journal-field --field last_seq --mode ones --fix-csum", [104] },
    };

    [Theory]
    [MemberData(nameof(FsckCases))]
    public void Each_target_is_a_check_journal_finding_that_fsck_y_repairs(int transaction, string args, int[] ids)
    {
        using var dir = new TempDirectory("cli-corrupt-journal");
        var image = JournalImages.Make(dir, JournalImages.SmallPlan);
        var c = image.Commits;
        var clean = CliRunner.Run("fsck", "-n", image.Path);
        Assert.True(clean.ExitCode == 0, clean.ToString());

        var seq = c[transaction - 1].Seq;
        var corrupt = CliRunner.Succeeds(["debug", "corrupt", .. args.Split(' '), "--seq", $"{seq}", image.Path]);
        output.WriteLine(corrupt.Out);
        Assert.Contains($"journal entry seq {seq} ", corrupt.Out, StringComparison.Ordinal);
        var hash = CliImages.Hash(image.Path);
        var check = CliRunner.Run("fsck", "-n", "--json", image.Path);
        output.WriteLine(check.Out);
        Assert.True(check.ExitCode == 4, check.ToString());
        Assert.Equal(hash, CliImages.Hash(image.Path));
        var findings = JsonDocument.Parse(check.Out).RootElement.GetProperty("findings").EnumerateArray().ToList();
        Assert.Equal(ids, findings.Select(f => f.GetProperty("id").GetInt32()));
        Assert.All(findings, f => Assert.Equal("check_journal", f.GetProperty("pass").GetString()));
        Assert.All(findings, f => Assert.StartsWith($"seq {seq}: ", f.GetProperty("detail").GetString(), StringComparison.Ordinal));
        if (ids[^1] == 103)
        {
            // The seqs from the damaged one to the newest flush entry (transaction 4) are lost.
            Assert.StartsWith($"seq {seq}: journal seqs {seq}..{c[3].Seq} cannot be replayed", findings[^1].GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        var repair = CliRunner.Run("fsck", "-y", "--json", image.Path);
        Assert.True(repair.ExitCode == 1, repair.ToString());
        Assert.Equal(ids, JsonDocument.Parse(repair.Out).RootElement.GetProperty("findings").EnumerateArray().Select(f => f.GetProperty("id").GetInt32()));
        var again = CliRunner.Run("fsck", "-n", image.Path);
        Assert.True(again.ExitCode == 0, again.ToString());
        // The repaired image's journal lists, and nothing in it is a finding any more.
        var listed = JsonDocument.Parse(CliRunner.Succeeds("list-journal", "--json", image.Path).Out).RootElement;
        Assert.True(listed.GetProperty("clean").GetBoolean());
        Assert.All(listed.GetProperty("damage").EnumerateArray(), d => Assert.False(d.GetProperty("finding").GetBoolean()));
    }

    [Fact]
    public void Journal_target_arguments_are_checked()
    {
        using var dir = new TempDirectory("cli-corrupt-journal");
        var image = JournalImages.Make(dir, JournalImages.SmallPlan);
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "journal-entry", "--btree", "test", image.Path], "do not apply to --target journal-entry");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "node", "--seq", "3", image.Path], "--seq selects journal entries; it does not apply to --target node");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "journal-field", "--field", "nosuch", image.Path],
            "--field 'nosuch' is not a journal-field field", "fields: csum, magic, seq, last_seq, version, csum_type, flags, payload_bytes, reserved");
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "journal-entry", "--seq", "x", image.Path], "--seq: 'x' is not a seq");
        CliRunner.Fails(1, ["debug", "corrupt", "--target", "journal-entry", "--seq", "900000..", image.Path], "no journal entry with seqs 900000..");
        // The reserved field is zero: zeroing it would change nothing.
        CliRunner.Fails(16, ["debug", "corrupt", "--target", "journal-field", "--field", "reserved", "--mode", "zero", image.Path], "already holds zeroes");
    }

    [Theory]
    // A grown tree: the superblock's root is a leaf, the journal's a new level 1 root (and new leaves).
    [InlineData(3)]
    // A full base tree: the journal's root has more sectors written, its pointers name new children.
    [InlineData(JournalImages.BaseKeys)]
    public void Node_targets_hit_nodes_that_are_live_after_recovery(int baseKeys)
    {
        using var dir = new TempDirectory("cli-corrupt-journal");
        // Twelve durable transactions; the dirty nodes are written back after the sixth, so the
        // later entries name nodes and a root the superblock does not.
        var image = JournalImages.Make(dir, [.. Enumerable.Repeat(CommitKind.Flush, 12)], writeBackAfter: 6, baseKeys: baseKeys);
        List<ReachableNode> live, stale;
        using (var device = FileBlockDevice.Open(image.Path, readOnly: true))
        {
            live = ImageCorruptor.ReachableNodes(device, out var note);
            Assert.Null(note);
            var sb = SuperblockIo.Read(device).Superblock;
            stale = ImageCorruptor.RawNodes(device, sb, sb.Roots);
        }
        // The newest root exists only in the journal.
        var superRoot = JsonDocument.Parse(CliRunner.Succeeds("show-super", "--json", image.Path).Out).RootElement
            .GetProperty("roots").EnumerateArray().Single(r => r.GetProperty("btree").GetString() == "test");
        var journalRoot = JsonDocument.Parse(CliRunner.Succeeds("list-journal", "--json", image.Path).Out).RootElement
            .GetProperty("entries").EnumerateArray().Last().GetProperty("roots").EnumerateArray().Single(r => r.GetProperty("btree").GetString() == "test");
        Assert.NotEqual(superRoot.GetProperty("pointer").GetString(), journalRoot.GetProperty("pointer").GetString());
        var rootLevel = journalRoot.GetProperty("level").GetInt32();
        if (baseKeys < JournalImages.BaseKeys)
            Assert.True(rootLevel > superRoot.GetProperty("level").GetInt32(), $"the tree did not grow: {journalRoot}");
        var root = Assert.Single(live, n => n.Btree == BtreeId.Test && n.Level == rootLevel);
        Assert.Contains($"offset {root.Offset} ", journalRoot.GetProperty("pointer").GetString() + " ", StringComparison.Ordinal);

        var liveOffsets = live.Select(n => n.Offset).ToHashSet();
        var newlyLive = live.Where(n => !stale.Any(s => s.Offset == n.Offset && s.SectorsWritten == n.SectorsWritten)).ToList();
        output.WriteLine($"{live.Count} live nodes, {stale.Count} from the superblock's roots, {newlyLive.Count} live ones the superblock does not lead to");
        Assert.Contains(root, newlyLive);

        var seed = TestSeed.Get(output, "live nodes");
        var hitNew = 0;
        for (var round = 0; round < 6; round++)
        {
            var copy = dir.File($"round{round}.img");
            File.Copy(image.Path, copy, overwrite: true);
            var r = CliRunner.Succeeds("debug", "corrupt", "--target", "bset", "--field", "u64s", "--seed", $"{seed + round}", copy);
            var at = long.Parse(Regex.Match(r.Out, @"node at byte (\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.Contains(at, liveOffsets);
            if (newlyLive.Any(n => n.Offset == at))
                hitNew++;
            var check = CliRunner.Run("fsck", "-n", copy);
            Assert.True(check.ExitCode == 4, $"damage to the live node at byte {at} not found:\n{r.Out}\n{check}");
        }
        output.WriteLine($"{hitNew} of 6 seeded rounds hit a node only the journal leads to");

        // The root only the journal names, damaged on purpose, is found, and fsck -y brings the image back.
        var chosen = dir.File("root.img");
        File.Copy(image.Path, chosen, overwrite: true);
        var hit = CliRunner.Succeeds("debug", "corrupt", "--target", "node", "--field", "magic", "--btree", "test", "--level", $"{rootLevel}", chosen);
        Assert.Contains($"node at byte {root.Offset} ", hit.Out, StringComparison.Ordinal);
        var found = CliRunner.Run("fsck", "-n", chosen);
        Assert.True(found.ExitCode == 4, found.ToString());
        var repaired = CliRunner.Run("fsck", "-y", chosen);
        Assert.True(repaired.ExitCode == 1, repaired.ToString());
        var again = CliRunner.Run("fsck", "-n", chosen);
        Assert.True(again.ExitCode == 0, again.ToString());
    }
}
