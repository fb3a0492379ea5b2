// The replay plan: the window from the newest flush entry's last_seq to that entry, cut at the
// first missing seq with the exact lost range; unflushed seqs after it blacklisted; roots from the
// newest window entry; keys deduplicated newest-wins per (btree, level, position); levels_voided
// dropping what was journaled before it.
using Basalt.Btree;
using Basalt.Format;
using Basalt.Journal;
using static Basalt.Tests.Journal.JournalTestEntries;

namespace Basalt.Tests.Journal;

public sealed class JournalReplayPlanTests
{
    /// <summary>Lays the entries into a ring in order (moving to the next bucket when one is full) and scans it.</summary>
    private static JournalScanResult Scan(TestRing ring, params byte[][] entries)
    {
        var index = 0;
        var at = 0;
        foreach (var e in entries)
        {
            if (at + e.Length > ring.Ring.BucketSize)
            {
                index++;
                at = 0;
            }
            ring.Put(index, at, e);
            at += e.Length;
        }
        return ring.Scan();
    }

    private static byte[] Entry(ulong seq, ulong lastSeq, bool flush, ulong key = 0, byte value = 0) =>
        WithKeys(seq, lastSeq, flush, (key == 0 ? seq : key, value == 0 ? (byte)seq : value));

    private static List<ulong> Seqs(JournalReplayPlan plan) => [.. plan.Window.Select(e => e.Seq)];

    [Fact]
    public void The_window_runs_from_the_newest_flush_entrys_last_seq_and_later_seqs_are_blacklisted()
    {
        using var ring = new TestRing();
        var scan = Scan(ring,
            Entry(1, 1, true), Entry(2, 1, false), Entry(3, 2, true), Entry(4, 2, false), Entry(5, 3, true), Entry(6, 3, false), Entry(7, 3, false));
        var plan = JournalReplayPlan.Build(scan, checkpointSeq: 0, blacklist: []);

        Assert.Equal([3UL, 4, 5], Seqs(plan));
        Assert.Equal(new SeqRange(3, 5), plan.Range);
        Assert.Equal(new SeqRange(6, 7), plan.NewBlacklist);
        Assert.Equal(2, plan.DroppedUnflushed);
        Assert.Equal(8UL, plan.NextSeq);
        Assert.Null(plan.LostRange);
        Assert.Empty(plan.Findings);
        // A no-flush entry before the newest flush entry is replayed like any other.
        Assert.Equal([new Bpos(1, 3), new Bpos(1, 4), new Bpos(1, 5)], plan.Keys.Select(k => k.Update.Key.Pos));
        Assert.Equal([3UL, 4, 5], plan.Keys.Select(k => k.Seq));
    }

    [Fact]
    public void A_missing_seq_ends_the_window_and_reports_the_exact_lost_range()
    {
        using var ring = new TestRing();
        var scan = Scan(ring, Entry(1, 1, true), Entry(2, 2, true), Entry(3, 2, false), Entry(4, 2, true), Entry(6, 2, false),
            Entry(7, 2, true), Entry(8, 2, true), Entry(9, 2, false));
        var plan = JournalReplayPlan.Build(scan, checkpointSeq: 0, blacklist: []);

        Assert.Equal([2UL, 3, 4], Seqs(plan));
        Assert.Equal(new SeqRange(5, 8), plan.LostRange);
        Assert.Equal(new SeqRange(5, 9), plan.NewBlacklist);
        Assert.Equal(10UL, plan.NextSeq);
        var f = Assert.Single(plan.Findings);
        Assert.Equal(FsckErrorId.JournalEntriesMissing, f.Id);
        Assert.Equal(5UL, f.Seq);
        Assert.Contains("journal seqs 5..8 cannot be replayed (entry missing); replaying seqs 2..4", f.Detail, StringComparison.Ordinal);
        Assert.Equal([2UL, 3, 4], plan.Keys.Select(k => k.Update.Key.Pos.Offset));
    }

    [Fact]
    public void A_damaged_entry_in_the_window_is_named_with_its_location()
    {
        using var ring = new TestRing();
        var e = new[] { Entry(1, 1, true), Entry(2, 1, true), Entry(3, 1, true), Entry(4, 1, true) };
        e[1][JournalFormat.HeaderSize + 30] ^= 0x04;
        var scan = Scan(ring, e);
        var plan = JournalReplayPlan.Build(scan, checkpointSeq: 0, blacklist: []);

        Assert.Equal([1UL], Seqs(plan));
        Assert.Equal(new SeqRange(2, 4), plan.LostRange);
        var f = Assert.Single(plan.Findings);
        Assert.Equal(scan.Damage.Single().Location, f.Location);
        Assert.Contains("entry damaged: crc32c checksum", f.Detail, StringComparison.Ordinal);
        Assert.Contains("replaying seq 1", f.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Blacklisted_seqs_are_not_gaps_and_a_blacklisted_flush_entry_is_ignored_with_a_finding()
    {
        using var ring = new TestRing();
        var scan = Scan(ring, Entry(1, 1, true), Entry(2, 1, false), Entry(3, 1, true), Entry(5, 1, true), Entry(6, 1, true));
        var plan = JournalReplayPlan.Build(scan, checkpointSeq: 0, blacklist: [new SeqRange(4, 4), new SeqRange(6, 8)]);

        Assert.Equal([1UL, 2, 3, 5], Seqs(plan));
        Assert.Null(plan.LostRange);
        var f = Assert.Single(plan.Findings);
        Assert.Equal(FsckErrorId.JournalSeqBlacklistedFlush, f.Id);
        Assert.Equal(6UL, f.Seq);
        Assert.Equal(scan.Entries[6].Location, f.Location);
        Assert.DoesNotContain(plan.Keys, k => k.Seq == 6);
        // The next seq is after everything ever seen or blacklisted... and after every entry seen.
        Assert.Equal(7UL, plan.NextSeq);
        Assert.Equal([new SeqRange(4, 4), new SeqRange(6, 8)], plan.Blacklist);
    }

    [Fact]
    public void Blacklist_records_in_entries_count_like_the_superblocks_blacklist()
    {
        using var ring = new TestRing();
        var withRecord = Build(5, 1, true, b =>
        {
            b.AppendKey(BtreeId.Test, 0, Key(5), [5]);
            b.AppendBlacklist(new SeqRange(3, 4));
        });
        var scan = Scan(ring, Entry(1, 1, true), Entry(2, 1, true), Entry(3, 1, false), withRecord);
        var plan = JournalReplayPlan.Build(scan, checkpointSeq: 0, blacklist: []);

        Assert.Equal([1UL, 2, 5], Seqs(plan));
        Assert.Null(plan.LostRange);
        Assert.Equal([new SeqRange(3, 4)], plan.Blacklist);
        Assert.DoesNotContain(plan.Keys, k => k.Update.Key.Pos.Offset == 3);
    }

    [Fact]
    public void Roots_come_from_the_newest_window_entry_that_has_them()
    {
        using var ring = new TestRing();
        byte[] WithRoot(ulong seq, bool flush, ulong slot, bool root = true) => Build(seq, 1, flush, b =>
        {
            b.AppendKey(BtreeId.Test, 0, Key(seq), [1]);
            if (root)
            {
                b.AppendRoot(BtreeId.Test, Root(BtreeId.Test, 1, slot));
                b.AppendRoot(BtreeId.Inodes, Root(BtreeId.Inodes, 0, slot + 1));
            }
        });
        var scan = Scan(ring, WithRoot(1, true, 10), WithRoot(2, true, 20), WithRoot(3, true, 0, root: false), WithRoot(4, false, 40));
        var plan = JournalReplayPlan.Build(scan, checkpointSeq: 0, blacklist: []);

        Assert.Equal([1UL, 2, 3], Seqs(plan));
        Assert.NotNull(plan.Roots);
        Assert.Equal([Root(BtreeId.Inodes, 0, 21).ToText(), Root(BtreeId.Test, 1, 20).ToText()], plan.Roots.Select(r => r.ToText()));

        // Nothing to replay: the superblock's roots stand.
        using var empty = new TestRing();
        Assert.Null(JournalReplayPlan.Build(empty.Scan(), 0, []).Roots);
    }

    [Fact]
    public void Keys_are_deduplicated_newest_commit_wins_per_btree_level_and_position()
    {
        using var ring = new TestRing();
        var a = Build(1, 1, true, b =>
        {
            b.AppendKey(BtreeId.Test, 0, Key(1), [0xa1]);
            b.AppendKey(BtreeId.Test, 0, Key(2), [0xa2]);
            b.CloseRecord();
            b.AppendKey(BtreeId.Test, 0, Key(1), [0xa3]);     // a later commit in the same entry
            b.AppendKey(BtreeId.Inodes, 0, new Bkey(new Bpos(0, 1, uint.MaxValue), KeyType.Deleted), []);
        });
        var b2 = Build(2, 1, true, b =>
        {
            b.AppendKey(BtreeId.Test, 0, new Bkey(new Bpos(1, 2), KeyType.Deleted), []);
            b.AppendKey(BtreeId.Test, 1, new Bkey(new Bpos(1, 1), KeyType.BtreePtr), Ptr(5).ToBytes());
        });
        var scan = Scan(ring, a, b2);
        var plan = JournalReplayPlan.Build(scan, 0, []);

        var keys = plan.Keys.Select(k => (k.Update.Btree, k.Update.Level, k.Update.Key.Pos, k.Update.Key.Type, Value: k.Update.Value.ToArray(), k.Seq)).ToList();
        Assert.Equal(4, keys.Count);
        // Sorted by btree, level, position.
        Assert.Equal((BtreeId.Inodes, (byte)0), (keys[0].Btree, keys[0].Level));
        Assert.Equal((BtreeId.Test, (byte)0, new Bpos(1, 1), KeyType.Cookie, 1UL), (keys[1].Btree, keys[1].Level, keys[1].Pos, keys[1].Type, keys[1].Seq));
        Assert.Equal([0xa3], keys[1].Value);
        Assert.Equal((new Bpos(1, 2), KeyType.Deleted, 2UL), (keys[2].Pos, keys[2].Type, keys[2].Seq));
        Assert.Equal((BtreeId.Test, (byte)1, new Bpos(1, 1), 2UL), (keys[3].Btree, keys[3].Level, keys[3].Pos, keys[3].Seq));
    }

    [Fact]
    public void Levels_voided_drops_every_earlier_key_of_its_btree_at_or_above_its_level()
    {
        using var ring = new TestRing();
        BtreeUpdate Interior(byte level, ulong offset) =>
            new(BtreeId.Test, level, new Bkey(new Bpos(1, offset), KeyType.BtreePtr), Ptr(offset).ToBytes());
        var first = Build(1, 1, true, b =>
        {
            b.AppendKey(BtreeId.Test, 0, Key(1), [1]);
            b.AppendKey(BtreeId.Test, 1, Interior(1, 10).Key, Interior(1, 10).Value.Span);
            b.AppendKey(BtreeId.Test, 2, Interior(2, 20).Key, Interior(2, 20).Value.Span);
            b.AppendKey(BtreeId.Inodes, 1, new Bkey(new Bpos(0, 5, uint.MaxValue), KeyType.BtreePtr), Ptr(5).ToBytes());
        });
        var second = Build(2, 1, true, b =>
        {
            b.AppendKey(BtreeId.Test, 1, Interior(1, 11).Key, Interior(1, 11).Value.Span); // before the void: dropped
            b.AppendLevelsVoided(BtreeId.Test, 1);
            b.AppendKey(BtreeId.Test, 1, Interior(1, 12).Key, Interior(1, 12).Value.Span); // after it: kept
        });
        var plan = JournalReplayPlan.Build(Scan(ring, first, second), 0, []);

        Assert.Equal(
            [(BtreeId.Inodes, (byte)1, 5UL), (BtreeId.Test, (byte)0, 1UL), (BtreeId.Test, (byte)1, 12UL)],
            plan.Keys.Select(k => (k.Update.Btree, k.Update.Level, k.Update.Key.Pos.Offset)));
    }

    [Fact]
    public void Entries_up_to_the_checkpoint_are_never_replayed()
    {
        using var ring = new TestRing();
        var scan = Scan(ring, Entry(1, 1, true), Entry(2, 1, true), Entry(3, 1, true), Entry(4, 1, true), Entry(5, 2, true), Entry(6, 2, true));
        var plan = JournalReplayPlan.Build(scan, checkpointSeq: 4, blacklist: []);
        Assert.Equal([5UL, 6], Seqs(plan));
        Assert.Null(plan.LostRange);

        // Everything at or below the checkpoint: nothing to replay, nothing blacklisted.
        plan = JournalReplayPlan.Build(scan, checkpointSeq: 6, blacklist: []);
        Assert.Empty(plan.Window);
        Assert.Null(plan.NewBlacklist);
        Assert.Equal(7UL, plan.NextSeq);
    }

    [Fact]
    public void Without_a_flush_entry_nothing_is_replayed_and_every_later_seq_is_blacklisted()
    {
        using var ring = new TestRing();
        var scan = Scan(ring, Entry(1, 1, true), Entry(2, 1, true), Entry(3, 2, false), Entry(4, 2, false));
        var plan = JournalReplayPlan.Build(scan, checkpointSeq: 2, blacklist: []);
        Assert.Empty(plan.Window);
        Assert.Empty(plan.Keys);
        Assert.Null(plan.Range);
        Assert.Equal(2, plan.DroppedUnflushed);
        Assert.Equal(new SeqRange(3, 4), plan.NewBlacklist);
        Assert.Equal(5UL, plan.NextSeq);
        Assert.Empty(plan.Findings);
    }

    [Fact]
    public void Merge_coalesces_overlapping_and_adjacent_ranges()
    {
        Assert.Equal([new SeqRange(1, 7), new SeqRange(9, 9), new SeqRange(20, 30)],
            JournalReplayPlan.Merge([new SeqRange(20, 30), new SeqRange(5, 7), new SeqRange(1, 4), new SeqRange(9, 9), new SeqRange(22, 25), new SeqRange(2, 3)]));
    }
}
