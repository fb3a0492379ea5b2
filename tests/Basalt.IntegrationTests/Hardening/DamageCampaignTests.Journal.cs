// Journal rounds of the damage campaign. The base is an unclean image (JournalImages: a clean tree,
// then a step-mode mount that commits transactions durable or not, writes the dirty nodes back
// part way, and is abandoned without a checkpoint). Each round damages one entry with debug
// corrupt (whole entry, one record, one header field; any mode; checksum recomputed or not), then
// runs list-journal, fsck -n (no crash or hang, no byte changed), fsck -y (the same findings,
// repaired) and fsck -n again (clean), and reads the recovered image:
//
//  - An entry damaged with its checksum left alone can no longer be read. When it lies in the
//    replay window before the newest flush entry, the flush had made it durable: the first fsck -n
//    must report it (check_journal, journal_entries_missing). The newest flush entry itself is
//    exempt: damage there cannot be told from a crash during its write (nothing after it is
//    durable), and recovery rightly falls back to the flush entry before it.
//  - Every transaction older than the damaged entry and made durable by a flush entry that is still
//    readable survives; nothing after the newest flush entry appears; the image holds exactly a
//    prefix of the transactions (every key of each transaction up to the counter, none after), and
//    the clean base tree is intact. When the damaged entry is the first of the window nothing is
//    replayed: the roots fall back to the superblock's checkpoint, which precedes every transaction
//    (the nodes written back later are reachable only through the roots the window carries).
//  - Damage with a recomputed checksum can forge a valid entry (other keys, flags, last_seq): only
//    the rules every command obeys, and fsck's (-n changes nothing and finds what -y repairs, a
//    second run is clean), are checked then.
using System.Diagnostics;
using System.Text.Json;
using Basalt.Format;
using Basalt.Fs;
using Basalt.IntegrationTests.Cli;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Hardening;

public sealed partial class DamageCampaignTests : IClassFixture<DamageCampaignTests.UncleanBase>
{
    private readonly UncleanBase _unclean;

    /// <summary>The unclean image every journal round starts from, made once per test class.</summary>
    public sealed class UncleanBase : IDisposable
    {
        /// <summary>Durable and no-flush transactions, the nodes written back after the fifth, the last one never written.</summary>
        internal static readonly CommitKind[] Plan =
        [
            CommitKind.Flush, CommitKind.NoFlush, CommitKind.NoFlush, CommitKind.Flush, CommitKind.NoFlush, CommitKind.Flush,
            CommitKind.Flush, CommitKind.NoFlush, CommitKind.NoFlush, CommitKind.NoFlush, CommitKind.Flush, CommitKind.NoFlush,
            CommitKind.NoFlush, CommitKind.Unwritten,
        ];

        public UncleanBase()
        {
            Dir = new TempDirectory("basalt-hardening-journal");
            Image = JournalImages.Make(Dir, Plan, "unclean-base.img", writeBackAfter: 5);
            var r = Cli(["list-journal", "--json", Image.Path]);
            if (r.ExitCode != 0)
                throw new InvalidOperationException($"list-journal failed: {r}");
            using var doc = JsonDocument.Parse(r.Out);
            foreach (var e in doc.RootElement.GetProperty("entries").EnumerateArray())
                Entries[e.GetProperty("seq").GetUInt64()] = (e.GetProperty("flush").GetBoolean(), e.GetProperty("fate").GetString()!);
            var replay = doc.RootElement.GetProperty("replay");
            Window = new SeqRange(replay.GetProperty("first").GetUInt64(), replay.GetProperty("last").GetUInt64());
            CheckpointSeq = doc.RootElement.GetProperty("checkpoint_seq").GetUInt64();
        }

        public TempDirectory Dir { get; }
        internal UncleanImage Image { get; }

        /// <summary>Every entry on the base image: flush flag and what the next mount does with it.</summary>
        public Dictionary<ulong, (bool Flush, string Fate)> Entries { get; } = [];

        /// <summary>What the next mount of the undamaged image replays; its last entry is the newest flush entry.</summary>
        public SeqRange Window { get; }

        /// <summary>The superblock's checkpoint seq: before the first transaction's entry.</summary>
        public ulong CheckpointSeq { get; }

        public void Dispose() => Dir.Dispose();
    }

    [Fact]
    public void Journal_base_image_is_unclean_with_a_window_of_flush_and_no_flush_entries()
    {
        var image = _unclean.Image;
        Assert.Equal(image.NewestFlushSeq, _unclean.Window.Last);
        Assert.Contains(_unclean.Entries.Values, e => e.Fate == "replay" && !e.Flush);
        Assert.Contains(_unclean.Entries.Values, e => e.Fate == "dropped");
        Assert.Contains(_unclean.Entries.Values, e => e.Fate == "not_needed");
        Assert.True(_unclean.CheckpointSeq < image.Commits[0].Seq, $"checkpoint {_unclean.CheckpointSeq}");
        Assert.True(image.Commits.Count(c => c.Seq < _unclean.Window.First) > 0, "no transaction before the window");
        var r = Cli(["fsck", "-n", image.Path]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var state = ReadState(image.Path);
        Assert.Equal(image.DurableK, state.Counter);
    }

    [Theory]
    // The middle of the window: a bit flip, a changed magic (the scan must look past it), a zeroed entry.
    [InlineData("entry bitflip nofix seed=1", 0.5)]
    [InlineData("field bitflip nofix seed=2 field=magic", 0.5)]
    [InlineData("entry zero nofix seed=3", 0.3)]
    // The newest flush entry, and the first entry of the window.
    [InlineData("record random nofix seed=4", 1.0)]
    [InlineData("field ones nofix seed=5 field=seq", 0.0)]
    // Forged: last_seq and flags rewritten with a good checksum.
    [InlineData("field random fix seed=6 field=last_seq", 0.7)]
    [InlineData("field bitflip fix seed=7 field=flags", 0.4)]
    public void Journal_damage_rounds(string recipe, double where)
    {
        var window = _unclean.Entries.Keys.Where(_unclean.Window.Contains).Order().ToList();
        var seq = window[(int)Math.Round(where * (window.Count - 1))];
        RunJournalRound(-1, Damage.Parse($"journal {recipe} seq={seq}"));
    }

    [Fact]
    public void Seeded_journal_damage_rounds()
    {
        var seed = TestSeed.Get(_output, "journal damage campaign");
        var rounds = LongTests.Scale(6, 10);
        var clock = Stopwatch.StartNew();
        var failures = new List<string>();
        var seqs = _unclean.Entries.Keys.Order().ToList();
        var window = seqs.Where(_unclean.Window.Contains).ToList();
        for (var round = 0; round < rounds; round++)
        {
            var random = new Random(unchecked((seed * 1_000_003) + round));
            // Mostly entries of the replay window; sometimes any entry on the ring.
            var seq = random.Next(4) == 0 ? seqs[random.Next(seqs.Count)] : window[random.Next(window.Count)];
            var recipe = Damage.PickJournal(random, seq);
            try
            {
                RunJournalRound(round, recipe);
            }
            catch (Exception e) when (e is Xunit.Sdk.XunitException or TimeoutException)
            {
                failures.Add($"round {round} ({recipe}): {e.Message}");
                _output.WriteLine($"FAILED round {round}: replay with BASALT_SEED={seed}: {recipe}\n{e.Message}");
            }
        }
        _output.WriteLine($"{rounds} journal rounds in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(failures.Count == 0, $"seed {seed}: {failures.Count} rounds failed:\n{string.Join("\n\n", failures)}");
    }

    internal void RunJournalRound(int round, Damage damage)
    {
        var image = _unclean.Dir.File($"journal-round-{round}-{Environment.CurrentManagedThreadId}.img");
        File.Copy(_unclean.Image.Path, image, overwrite: true);
        try
        {
            var applied = damage.Apply(image);
            _output.WriteLine($"journal round {round}: {damage}: {applied}");
            var hit = System.Text.RegularExpressions.Regex.Match(applied, @"journal entry seq (\d+)");
            if (!hit.Success)
                return; // refused (nothing to change): nothing to check
            var seq = ulong.Parse(hit.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

            // The superblock is untouched: every reader must work, and say what the damage costs.
            Assert.Equal(0, Check(["list-journal", image], isFsck: false).ExitCode);
            var listed = Check(["list-journal", "--json", "--keys", image], isFsck: false);
            Assert.Equal(0, listed.ExitCode);
            Assert.Equal(0, Check(["show-super", "--json", image], isFsck: false).ExitCode);

            var hash = CliImages(image);
            var check = Check(["fsck", "-n", "--json", image], isFsck: true);
            Assert.True(hash.AsSpan().SequenceEqual(CliImages(image)), $"fsck -n changed the image: {check}");
            Assert.True(check.ExitCode is 0 or 4, $"fsck -n on a journal-damaged image:\n{check}");
            var window = _unclean.Window;
            var needed = window.Contains(seq) && seq < window.Last;
            if (damage.BreaksJournalEntry && needed)
            {
                using var doc = JsonDocument.Parse(check.Out);
                var ids = doc.RootElement.GetProperty("findings").EnumerateArray()
                    .Where(f => f.GetProperty("pass").GetString() == "check_journal").Select(f => f.GetProperty("id").GetInt32()).ToList();
                Assert.True(ids.Contains(103) && check.ExitCode == 4,
                    $"fsck -n did not report the damaged entry seq {seq} that the replay window {window.ToText()} needs:\n{check.Out}\n{listed.Out}");
            }

            var repair = Check(["fsck", "-y", "--json", image], isFsck: true);
            Assert.True(repair.ExitCode is 0 or 1, $"fsck -y left findings:\n{repair}");
            Assert.Equal(Findings(check), Findings(repair));
            var again = Check(["fsck", "-n", "--json", image], isFsck: true);
            Assert.True(again.ExitCode == 0, $"second fsck -n after fsck -y is not clean:\n{again}\nfirst -y:\n{repair.Out}");

            if (damage.BreaksJournalEntry)
            {
                var state = ReadState(image);
                AssertPrefix(state);
                var (min, max) = SurvivalBounds(seq);
                Assert.True(state.Counter >= min && state.Counter <= max,
                    $"after damage to seq {seq} the image holds transactions 1..{state.Counter}; expected {min}..{max} " +
                    $"(commits: {string.Join(", ", _unclean.Image.Commits.Select(c => $"{c.K}:{c.Kind}@{c.Seq}"))}; window {window.ToText()})");
            }
        }
        finally
        {
            File.Delete(image);
        }
    }

    /// <summary>
    /// The transactions that must survive an unreadable entry <paramref name="damaged"/>: every one up
    /// to the newest still-readable flush entry that is older than it (all of them when the entry was
    /// not needed; none when it was the window's first, so nothing is replayed), and none after the
    /// newest flush entry.
    /// </summary>
    private (int Min, int Max) SurvivalBounds(ulong damaged)
    {
        var commits = _unclean.Image.Commits.Where(c => c.Kind != CommitKind.Unwritten).ToList();
        var window = _unclean.Window;
        var max = commits.Where(c => c.Seq <= window.Last).Select(c => c.K).DefaultIfEmpty(0).Max();
        if (!window.Contains(damaged))
            return (max, max);
        if (damaged == window.First)
            return (0, 0);
        var durable = _unclean.Entries.Where(e => e.Value.Flush && e.Key != damaged && e.Key <= window.Last).Select(e => e.Key).DefaultIfEmpty(0UL).Max();
        var min = commits.Where(c => c.Seq < damaged && c.Seq <= durable).Select(c => c.K).DefaultIfEmpty(0).Max();
        return (min, max);
    }

    private sealed record RecoveredState(int Counter, Dictionary<int, int> KeysPerTransaction, int BaseKeys, List<string> Wrong);

    /// <summary>Reads the counter, each transaction's keys (checking their values) and the base tree of <paramref name="image"/>.</summary>
    private static RecoveredState ReadState(string image)
    {
        using var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true });
        var tree = fs.Btrees[BtreeId.Test];
        var counter = tree.TryGet(JournalImages.CounterPos, out var c) ? JournalImages.ReadCounter(c) : 0;
        var perTransaction = new Dictionary<int, int>();
        var wrong = new List<string>();
        var it = tree.Iterate(new Bpos(2, 0), new Bpos(2, ulong.MaxValue));
        while (it.MoveNext())
        {
            var k = (int)(it.Key.Pos.Offset / 100);
            var i = (int)(it.Key.Pos.Offset % 100);
            perTransaction[k] = perTransaction.GetValueOrDefault(k) + 1;
            if (!it.Value.SequenceEqual(JournalImages.Value(k, i)))
                wrong.Add($"key {it.Key.Pos.ToText()} of transaction {k} has another value");
        }
        var baseKeys = 0;
        var b = tree.Iterate(new Bpos(1, 0), new Bpos(1, ulong.MaxValue));
        while (b.MoveNext())
            baseKeys++;
        return new RecoveredState(counter, perTransaction, baseKeys, wrong);
    }

    /// <summary>The recovered image holds transactions 1..counter, whole, and the base tree.</summary>
    private static void AssertPrefix(RecoveredState state)
    {
        Assert.True(state.Wrong.Count == 0, string.Join("; ", state.Wrong));
        Assert.Equal(JournalImages.BaseKeys, state.BaseKeys);
        for (var k = 1; k <= state.Counter; k++)
            Assert.True(state.KeysPerTransaction.GetValueOrDefault(k) == JournalImages.KeysPerTransaction, $"transaction {k} of 1..{state.Counter} is not whole");
        Assert.True(state.KeysPerTransaction.Keys.All(k => k <= state.Counter),
            $"keys of transactions after the counter {state.Counter}: {string.Join(", ", state.KeysPerTransaction.Keys.Where(k => k > state.Counter))}");
    }
}
