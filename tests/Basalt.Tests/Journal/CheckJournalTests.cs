// fsck's check_journal pass on damaged images: every error id of the pass (100–107) is produced by
// an image a mounted filesystem wrote and a test then damaged, and is repaired by fsck -y as
// docs/fsck-errors.md says. Each case runs fsck -n first (the image must not change by one byte
// and the findings must be exactly those -y then repairs), then -y, then -n again, which must find
// nothing (fsck is idempotent), and checks what the repaired filesystem holds.
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Journal;
using Basalt.Superblocks;
using Basalt.TestKit;
using Basalt.Transactions;
using Xunit.Abstractions;

namespace Basalt.Tests.Journal;

public sealed class CheckJournalTests(ITestOutputHelper output)
{
    private static readonly Bpos s_keyA = new(50, 1);
    private static readonly Bpos s_keyB = new(50, 2);
    private static readonly Bpos s_keyC = new(50, 3);

    private static MountOptions MountOptions => new() { Journal = new JournalOptions { Manual = true }, CheckWriteOnce = true };

    private static FsckOptions Options(FsckMode mode) => new() { Mode = mode, Journal = new JournalOptions { Manual = true }, CheckWriteOnce = true };

    /// <summary>
    /// A small filesystem (8 journal buckets of 8 KiB) holding 100 keys in its nodes (checkpointed),
    /// then three durable commits A, B and C, each its own flush entry, and a crash: the leaf they
    /// change stays dirty, so C's last_seq is A's seq and replay needs all three entries.
    /// </summary>
    private sealed class JournalImage : IDisposable
    {
        public JournalImage(bool largeCommits = false, bool writeBackBeforeC = false)
        {
            Fixture = new BtreeFixture(slots: 512, journalBuckets: 8, bucketSize: 8192);
            for (var i = 0; i < 100; i++)
                Fixture.Insert(new Bpos(50, 100 + (ulong)i), [(byte)i]);
            Fixture.Checkpoint();
            SeqA = Commit(s_keyA, 0xA, large: false);
            SeqB = Commit(s_keyB, 0xB, largeCommits);
            if (writeBackBeforeC)
                Fixture.WriteBackAll();
            SeqC = Commit(s_keyC, 0xC, largeCommits);
            Fixture.Fs.Close(sync: false);
            Superblock = SuperblockIo.Read(Memory).Superblock;
        }

        public BtreeFixture Fixture { get; }

        public MemoryBlockDevice Memory => Fixture.Memory;

        public Superblock Superblock { get; }

        public ulong SeqA { get; }

        public ulong SeqB { get; }

        public ulong SeqC { get; }

        /// <summary>Commits <paramref name="pos"/> durably; a large commit adds five keys of 1000 bytes (more than half a bucket).</summary>
        private ulong Commit(Bpos pos, byte value, bool large)
        {
            Fixture.Fs.Transactor.Transact(t =>
            {
                t.Set(BtreeId.Test, pos, [value]);
                if (large)
                {
                    for (var k = 0u; k < 5; k++)
                        t.Set(BtreeId.Test, new Bpos(60 + (ulong)value, k), new byte[1000]);
                }
                return true;
            }, CommitOptions.Durable, out var result);
            return result.Seq;
        }

        public JournalScanResult Scan() => JournalScan.Scan(Memory, JournalRing.Of(Superblock),
            new JournalReadContext(JournalFormat.MagicFor(Superblock.Uuid), Superblock.BlockSize, Superblock.NodeSize));

        public JournalEntry Entry(ulong seq) => Scan().Entries[seq];

        /// <summary>The bytes of entry <paramref name="seq"/> on the device.</summary>
        public Span<byte> Bytes(JournalEntry entry) => Memory.Contents.Slice(checked((int)entry.Location.Offset), entry.DiskBytes);

        public void Dispose() => Fixture.Dispose();
    }

    /// <summary>
    /// fsck -n (nothing changes; the findings are <paramref name="expected"/>), fsck -y (the same
    /// findings, every one fixed), fsck -n again (clean). Returns the repairing run's report.
    /// </summary>
    private FsckReport CheckRepairCheck(MemoryBlockDevice memory, params FsckErrorId[] expected)
    {
        var before = memory.Contents.ToArray();
        var check = Basalt.Fsck.Fsck.Run(memory, Options(FsckMode.CheckOnly));
        foreach (var f in check.Findings)
            output.WriteLine(f.ToText());
        Assert.True(memory.Contents.SequenceEqual(before), "fsck -n changed the image");
        Assert.Equal(expected.Order(), check.Findings.Select(f => f.Id).Order());
        Assert.All(check.Findings, f => Assert.Equal(FsckOutcome.WouldFix, f.Outcome));

        var repair = Basalt.Fsck.Fsck.Run(memory, Options(FsckMode.Yes));
        Assert.Equal(check.Findings.Select(f => (f.Id, f.Where, f.Detail)), repair.Findings.Select(f => (f.Id, f.Where, f.Detail)));
        Assert.All(repair.Findings, f => Assert.Equal(FsckOutcome.Fixed, f.Outcome));
        Assert.Equal(FsckExitCodes.Corrected, repair.ExitCode);
        Assert.True(repair.CountersPersisted);
        var counters = SuperblockIo.Read(memory).Superblock.ErrorCounters;
        foreach (var id in expected.Distinct())
            Assert.Contains(counters, c => c.Id == id && c.Count == (ulong)expected.Count(e => e == id));

        var again = Basalt.Fsck.Fsck.Run(memory, Options(FsckMode.CheckOnly));
        Assert.True(again.Clean, "second run: " + string.Join("; ", again.Findings.Select(f => f.ToText())));
        return repair;
    }

    private static void AssertHas(BasaltFileSystem fs, Bpos pos, byte value)
    {
        Assert.True(fs.Btrees[BtreeId.Test].TryGet(pos, out var v), $"{pos.ToText()} is missing");
        Assert.Equal(value, v[0]);
    }

    private static void AssertMissing(BasaltFileSystem fs, Bpos pos) =>
        Assert.False(fs.Btrees[BtreeId.Test].TryGet(pos, out _), $"{pos.ToText()} is present");

    [Theory]
    [InlineData(FsckErrorId.JournalEntryBadChecksum)]
    [InlineData(FsckErrorId.JournalEntryBadHeader)]
    [InlineData(FsckErrorId.JournalEntryBadRecord)]
    public void A_damaged_entry_the_replay_needs_is_reported_and_replay_keeps_the_prefix_before_it(FsckErrorId damage)
    {
        using var image = new JournalImage();
        var b = image.Entry(image.SeqB);
        Assert.Equal(image.SeqA, image.Entry(image.SeqC).LastSeq);
        var bytes = image.Bytes(b);
        switch (damage)
        {
            case FsckErrorId.JournalEntryBadChecksum:
                // A bit flipped in the records since the entry was written.
                bytes[JournalFormat.HeaderSize + 12] ^= 0x04;
                break;
            case FsckErrorId.JournalEntryBadHeader:
                // A version this build does not read, under a valid checksum.
                BinaryPrimitives.WriteUInt16LittleEndian(bytes[JournalFormat.VersionOffset..], (ushort)(FormatVersion.Current + 1));
                JournalTestEntries.Reseal(bytes);
                break;
            case FsckErrorId.JournalEntryBadRecord:
                // An unknown record type, under a valid checksum.
                bytes[JournalFormat.HeaderSize + JournalFormat.RecordTypeOffset] = 0x7f;
                JournalTestEntries.Reseal(bytes);
                break;
        }

        var repair = CheckRepairCheck(image.Memory, damage, FsckErrorId.JournalEntriesMissing);
        var found = repair.Findings.Single(f => f.Id == damage);
        Assert.Contains($"at byte {b.Location.Offset}", found.Where, StringComparison.Ordinal);
        Assert.Contains($"seq {image.SeqB}", found.Detail, StringComparison.Ordinal);
        var missing = repair.Findings.Single(f => f.Id == FsckErrorId.JournalEntriesMissing);
        Assert.Contains($"seqs {image.SeqB}..{image.SeqC} cannot be replayed", missing.Detail, StringComparison.Ordinal);

        // Replay stopped before B: A is kept, B and C (after it) are lost and blacklisted.
        using var fs = BasaltFileSystem.Mount(image.Memory, MountOptions);
        AssertHas(fs, s_keyA, 0xA);
        AssertMissing(fs, s_keyB);
        AssertMissing(fs, s_keyC);
        AssertHas(fs, new Bpos(50, 150), 50);
    }

    [Fact]
    public void A_missing_entry_between_last_seq_and_the_newest_flush_entry_is_reported_with_the_seqs_it_costs()
    {
        using var image = new JournalImage(largeCommits: true);
        var b = image.Entry(image.SeqB);
        var c = image.Entry(image.SeqC);
        Assert.NotEqual(b.Location.Bucket, c.Location.Bucket);
        // B's write never reached the device (a lost write): its blocks hold nothing.
        image.Bytes(b).Clear();

        var repair = CheckRepairCheck(image.Memory, FsckErrorId.JournalEntriesMissing);
        var missing = repair.Findings.Single();
        Assert.Contains($"seqs {image.SeqB}..{image.SeqC} cannot be replayed (entry missing)", missing.Detail, StringComparison.Ordinal);
        Assert.Contains($"replaying seq {image.SeqA}", missing.Detail, StringComparison.Ordinal);

        using var fs = BasaltFileSystem.Mount(image.Memory, MountOptions);
        AssertHas(fs, s_keyA, 0xA);
        AssertMissing(fs, s_keyB);
        AssertMissing(fs, s_keyC);
    }

    [Fact]
    public void A_last_seq_newer_than_the_entry_s_seq_is_read_as_its_own_seq()
    {
        // Everything before C was written back: C's last_seq is its own seq.
        using var image = new JournalImage(writeBackBeforeC: true);
        var c = image.Entry(image.SeqC);
        Assert.Equal(image.SeqC, c.LastSeq);
        var bytes = image.Bytes(c);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes[JournalFormat.LastSeqOffset..], image.SeqC + 5);
        JournalTestEntries.Reseal(bytes);

        var repair = CheckRepairCheck(image.Memory, FsckErrorId.JournalLastSeqNewerThanSeq);
        Assert.Contains($"last_seq {image.SeqC + 5} is newer than the entry's own seq {image.SeqC}", repair.Findings.Single().Detail, StringComparison.Ordinal);

        // Read as C's own seq, the window is C itself: C is replayed (a last_seq past C would replay nothing).
        using var fs = BasaltFileSystem.Mount(image.Memory, MountOptions);
        AssertHas(fs, s_keyA, 0xA);
        AssertHas(fs, s_keyB, 0xB);
        AssertHas(fs, s_keyC, 0xC);
    }

    [Fact]
    public void A_flush_entry_whose_seq_the_blacklist_holds_is_ignored()
    {
        using var image = new JournalImage();
        // The superblock's blacklist claims B was never flushed, but B is a flush entry.
        SuperblockIo.Write(image.Memory, image.Superblock with { JournalBlacklist = [new SeqRange(image.SeqB, image.SeqB)] });

        var repair = CheckRepairCheck(image.Memory, FsckErrorId.JournalSeqBlacklistedFlush);
        Assert.Contains($"seq {image.SeqB}", repair.Findings.Single().Detail, StringComparison.Ordinal);

        // B is ignored; A and C, on either side of it, are replayed.
        using var fs = BasaltFileSystem.Mount(image.Memory, MountOptions);
        AssertHas(fs, s_keyA, 0xA);
        AssertMissing(fs, s_keyB);
        AssertHas(fs, s_keyC, 0xC);
    }

    [Fact]
    public void A_clean_superblock_over_a_journal_with_newer_entries_is_recovered_as_after_a_crash()
    {
        using var fx = new BtreeFixture(slots: 512, journalBuckets: 8, bucketSize: 8192);
        for (var i = 0; i < 100; i++)
            fx.Insert(new Bpos(50, 100 + (ulong)i), [(byte)i]);
        fx.Fs.Close(sync: true);
        var clean = SuperblockIo.Read(fx.Memory).Superblock;
        Assert.True(clean.IsClean);
        var saved = clean.CopyOffsets.Select(o => (Offset: o, Bytes: fx.Memory.Contents.Slice(checked((int)o), SuperblockFormat.CopySize).ToArray())).ToList();

        using (var fs = BasaltFileSystem.Mount(fx.Memory, MountOptions))
        {
            fs.Transact(t => t.Set(BtreeId.Test, s_keyA, [0xA]), CommitOptions.Durable);
            fs.Close(sync: false);
        }
        // The superblock of the clean unmount comes back (every copy): clean, yet the journal holds A.
        foreach (var (offset, bytes) in saved)
            bytes.CopyTo(fx.Memory.Contents[checked((int)offset)..]);
        Assert.True(SuperblockIo.Read(fx.Memory).Superblock.IsClean);

        var repair = CheckRepairCheck(fx.Memory, FsckErrorId.JournalCleanMismatch);
        Assert.Contains("recovering as after a crash", repair.Findings.Single().Detail, StringComparison.Ordinal);

        using var again = BasaltFileSystem.Mount(fx.Memory, MountOptions);
        Assert.True(again.Recovery.WasClean);
        AssertHas(again, s_keyA, 0xA);
        AssertHas(again, new Bpos(50, 199), 99);
    }

    [Fact]
    public void Keys_set_aside_by_a_damaged_root_replay_into_the_root_the_node_scan_rebuilds()
    {
        using var fx = new BtreeFixture(slots: 512, journalBuckets: 8, bucketSize: 8192);
        for (var i = 0; i < 400; i++)
            fx.Insert(BtreeFixture.Pos(i), new byte[32]);
        fx.Checkpoint();
        var root = fx.Test.Root!;
        Assert.True(root.Level >= 1, "the test btree needs an interior root");
        // A leaf written back: its new sectors_written is journaled in the root as a level-1 key,
        // and the root stays dirty, pinning that entry. Then a durable leaf commit.
        fx.Insert(BtreeFixture.Pos(5), [5]);
        fx.Sync();
        Assert.Equal(1, fx.Engine.WriteBack(upToSeq: fx.Journal.CommittedSeq).NodesWritten);
        fx.Fs.Transact(t => t.Set(BtreeId.Test, s_keyA, [0xA]), CommitOptions.Durable);
        fx.Fs.Close(sync: false);

        var sb = SuperblockIo.Read(fx.Memory).Superblock;
        var scan = JournalScan.Scan(fx.Memory, JournalRing.Of(sb), new JournalReadContext(JournalFormat.MagicFor(sb.Uuid), sb.BlockSize, sb.NodeSize));
        var plan = JournalReplayPlan.Build(scan, sb.CleanInfo.JournalSeq, sb.JournalBlacklist);
        var interior = plan.Keys.Where(k => k.Update.Level > 0).ToList();
        Assert.NotEmpty(interior);
        // The root node on disk is damaged beyond use: its magic is wrong.
        var rootOffset = checked((int)root.Ptr.Ptrs[0].OffsetBytes);
        fx.Memory.Contents[rootOffset + BtreeNodeFormat.NodeMagicOffset] ^= 0xff;

        // Replay sets aside every key that needs the root; topology repair rebuilds the root over
        // the leaves the node scan finds (the written-back leaf with its appended bset among
        // them); the set-aside keys then replay into it, and no key is lost.
        var repair = CheckRepairCheck(fx.Memory, [FsckErrorId.BtreeRootUnreadable, FsckErrorId.BtreeRangeRebuiltFromScan]);
        Assert.Contains("nothing lost", repair.Findings[1].Detail, StringComparison.Ordinal);

        using var fs = BasaltFileSystem.Mount(fx.Memory, MountOptions);
        AssertHas(fs, s_keyA, 0xA);
        Assert.Equal(1, fs.Btrees[BtreeId.Test].Root!.Level);
        AssertHas(fs, BtreeFixture.Pos(5), 5);
        for (var i = 0; i < 400; i++)
        {
            if (i != 5)
                Assert.True(fs.Btrees[BtreeId.Test].TryGet(BtreeFixture.Pos(i), out _), $"key {i} lost");
        }
    }
}
