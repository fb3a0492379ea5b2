// The journal writer alone, on a memory device under a recording one: flush entries and the
// device flushes around them (rule g and its skip), no-flush entries becoming durable, pins and
// last_seq, bucket reuse only once a durable last_seq has passed a bucket (rule f).
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Journal.JournalTestEntries;

namespace Basalt.Tests.Journal;

public sealed class JournalWriterTests(ITestOutputHelper output)
{
    [Fact]
    public void The_range_recovery_blacklisted_holds_from_the_mount_that_made_it()
    {
        // Nodes read right after recovery must ignore bsets of the seqs recovery gave up, as every
        // later mount (which finds the range in the superblock and the journal) will.
        using var h = new Harness(newBlacklist: new SeqRange(5, 9), nextSeq: 10);
        Assert.False(h.Writer.IsBlacklisted(4));
        Assert.True(h.Writer.IsBlacklisted(5));
        Assert.True(h.Writer.IsBlacklisted(9));
        Assert.False(h.Writer.IsBlacklisted(10));
        Assert.Contains(new SeqRange(5, 9), h.Writer.Blacklist);
    }

    /// <summary>A started journal writer over a ring of small buckets.</summary>
    private sealed class Harness : IDisposable
    {
        public Harness(int buckets = 8, int bucketSize = 8192, JournalOptions? options = null, SeqRange? newBlacklist = null, ulong nextSeq = 1)
        {
            Ring = new JournalRing([new BucketRange(1, (ulong)buckets)], bucketSize);
            Memory = new MemoryBlockDevice((long)(buckets + 4) * bucketSize, "journal.img");
            Recording = new RecordingBlockDevice(Memory);
            Tracking = new FlushTrackingDevice(Recording);
            Writer = new JournalWriter(Tracking, Ring, new JournalStart
            {
                NextSeq = nextSeq,
                RingIndex = 0,
                BucketNewestSeq = new ulong[buckets],
                DurableSeq = nextSeq - 1,
                LastSeq = nextSeq,
                CheckpointSeq = nextSeq - 1,
                Roots = [],
                Blacklist = [],
                NewBlacklist = newBlacklist,
            }, options ?? new JournalOptions { Manual = true }, Emergency, Magic, ChecksumType.Crc32C, BlockSize);
            Writer.Start();
        }

        public JournalRing Ring { get; }
        public MemoryBlockDevice Memory { get; }
        public RecordingBlockDevice Recording { get; }
        public FlushTrackingDevice Tracking { get; }
        public EmergencyState Emergency { get; } = new();
        public JournalWriter Writer { get; }

        /// <summary>Commits one key; in step mode writes closed entries when the queue is full.</summary>
        public ulong Commit(ulong key, bool flush = false, int valueBytes = 8)
        {
            var updates = new[] { new BtreeUpdate(BtreeId.Test, 0, Key(key), new byte[valueBytes]) };
            for (var attempt = 0; attempt < 3; attempt++)
            {
                if (Writer.TryCommit(updates, flush, out var seq))
                {
                    if (flush)
                        Writer.WaitDurable(seq);
                    return seq;
                }
                // What reclaim does for a waiting committer when there is nothing to write back.
                Writer.WaitForWriter();
                Writer.WaitDurable(Writer.CommittedSeq);
            }
            return 0;
        }

        public JournalScanResult Scan() => JournalScan.Scan(Memory, Ring, Context);

        public void Dispose()
        {
            Writer.Dispose();
            Recording.Dispose();
            Memory.Dispose();
        }
    }

    [Fact]
    public void Start_writes_a_flush_entry_that_is_durable_before_it_returns()
    {
        using var h = new Harness();
        var scan = h.Scan();
        var start = Assert.Single(scan.Entries.Values);
        Assert.Equal(1UL, start.Seq);
        Assert.True(start.IsFlush);
        Assert.Equal(1UL, h.Writer.DurableSeq);
        Assert.Single(h.Recording.Log.Flushes);
        // Every btree's root (none here), the time: a start entry is never empty of records.
        Assert.Contains(start.Records, r => r.Type == JournalRecordType.Datetime);
        Assert.Equal(BtreeIds.All.Count, start.Records.Count(r => r.Type == JournalRecordType.BtreeRoot));
    }

    [Fact]
    public void A_flush_entry_has_a_device_flush_before_it_unless_nothing_was_written_since_the_last_one()
    {
        using var h = new Harness();
        var stats0 = h.Writer.Stats;
        var flushes0 = h.Tracking.Flushes;

        // Nothing written since the start entry's flush: one device flush (after the entry), the pre-flush skipped.
        h.Commit(1, flush: true);
        Assert.Equal(flushes0 + 1, h.Tracking.Flushes);
        Assert.Equal(stats0.PreFlushesSkipped + 1, h.Writer.Stats.PreFlushesSkipped);
        Assert.Equal(stats0.DeviceFlushes + 1, h.Writer.Stats.DeviceFlushes);

        // A no-flush entry written, then a flushed commit: flush, entry, flush.
        var noFlushSeq = h.Commit(2);
        Assert.True(h.Writer.Step(flush: false));
        Assert.True(h.Writer.DurableSeq < noFlushSeq, "a no-flush entry is not durable by itself");
        var log = h.Recording.Log;
        var noFlushWrite = log.Writes.Count - 1;
        var flushesBefore = log.Flushes.Count;
        var seq = h.Commit(3, flush: true);
        Assert.Equal(flushesBefore + 2, log.Flushes.Count);
        Assert.Equal(noFlushWrite + 2, log.Writes.Count);
        // The pre-flush completed after the no-flush entry's write and before the flush entry's write (rule g).
        Assert.Equal(noFlushWrite + 1, log.Flushes[^2]);
        Assert.Equal(noFlushWrite + 2, log.Flushes[^1]);
        Assert.True(h.Writer.DurableSeq >= seq);
        Assert.True(h.Writer.DurableSeq >= noFlushSeq);

        // Any other write (a node) since the last flush also needs the pre-flush.
        h.Tracking.Write(h.Memory.Size - 4096, new byte[4096]);
        var skipped = h.Writer.Stats.PreFlushesSkipped;
        h.Commit(4, flush: true);
        Assert.Equal(skipped, h.Writer.Stats.PreFlushesSkipped);
        Assert.Equal(h.Tracking.Flushes, h.Writer.Stats.DeviceFlushes);

        var entries = h.Scan().Entries;
        Assert.False(entries[noFlushSeq].IsFlush);
        Assert.True(entries[seq].IsFlush);
    }

    [Fact]
    public void Step_mode_makes_a_no_flush_commit_durable_only_when_stepped()
    {
        using var h = new Harness();
        var seq = h.Commit(7);
        Assert.Equal(seq, h.Writer.CommittedSeq);
        Assert.True(h.Writer.DurableSeq < seq);
        Assert.DoesNotContain(seq, h.Scan().Entries.Keys);

        Assert.True(h.Writer.Step(flush: true));
        Assert.True(h.Writer.DurableSeq >= seq);
        var entry = h.Scan().Entries[seq];
        Assert.True(entry.IsFlush);
        Assert.Single(KeysOf(entry));
        Assert.False(h.Writer.Step(flush: false), "nothing left to write");
    }

    [Fact]
    public void In_thread_mode_a_commit_without_flush_becomes_durable_without_any_further_commit()
    {
        using var h = new Harness(options: new JournalOptions { FlushDelay = TimeSpan.FromMilliseconds(20) });
        var flushes = h.Writer.Stats.FlushEntries;
        var seq = h.Commit(7);
        // The flush delay is a timer of the writer thread: nobody asks for a flush.
        Assert.True(SpinWait.SpinUntil(() => h.Writer.DurableSeq >= seq, TimeSpan.FromSeconds(60)),
            $"seq {seq} not durable: {h.Writer.Stats.ToText()}");
        Assert.True(h.Writer.Stats.FlushEntries > flushes);
        h.Writer.Abandon();
        var scan = h.Scan();
        Assert.Contains(seq, scan.Entries.Keys);
        Assert.Contains(scan.Entries.Values, e => e.IsFlush && e.Seq >= seq);
    }

    [Fact]
    public void Last_seq_is_the_oldest_pin_and_each_flush_entry_carries_it()
    {
        using var h = new Harness();
        var s1 = h.Commit(1);
        h.Writer.Pin(s1);
        h.Commit(2, flush: true);
        var s3 = h.Commit(3);
        h.Writer.Step(flush: true);
        var s4 = h.Commit(4);
        h.Writer.Pin(s4);
        h.Writer.Pin(s4);
        Assert.Equal(s1, h.Writer.LastSeq);
        Assert.Equal(s1, h.Writer.OldestPin);
        h.Writer.Step(flush: true);
        Assert.Equal(s1, h.Scan().Entries[s4].LastSeq);
        Assert.Equal(s1, h.Scan().Entries[s3].LastSeq);

        // Released: the next flush entry carries the next oldest pin.
        h.Writer.Unpin(s1);
        Assert.Equal(s4, h.Writer.OldestPin);
        var s5 = h.Commit(5, flush: true);
        var entries = h.Scan().Entries;
        Assert.Equal(s4, entries[s5].LastSeq);
        Assert.Equal(s4, h.Writer.Stats.LastSeqOnDisk);

        // Two pins on one seq: it stays the oldest until both are released.
        h.Writer.Unpin(s4);
        Assert.Equal(s4, h.Writer.OldestPin);
        h.Writer.Unpin(s4);
        Assert.Equal(0UL, h.Writer.OldestPin);
        var s6 = h.Commit(6, flush: true);
        Assert.Equal(s6, h.Scan().Entries[s6].LastSeq);
        Assert.Throws<InvalidOperationException>(() => h.Writer.Unpin(s3));
    }

    [Fact]
    public void Last_seq_on_disk_never_goes_back_under_random_pins()
    {
        var seed = TestSeed.Get(output, nameof(Last_seq_on_disk_never_goes_back_under_random_pins));
        var rng = new Random(seed);
        using var h = new Harness(buckets: 16);
        var pinned = new List<ulong>();
        for (var i = 0; i < 300; i++)
        {
            var seq = h.Commit((ulong)i, flush: rng.Next(8) == 0);
            Assert.True(seq != 0, $"seed {seed}: commit {i} found the journal full ({h.Writer.Stats.ToText()})");
            if (rng.Next(4) == 0)
            {
                h.Writer.Pin(seq);
                pinned.Add(seq);
            }
            if (pinned.Count > 0 && rng.Next(3) == 0)
            {
                var k = rng.Next(pinned.Count);
                h.Writer.Unpin(pinned[k]);
                pinned.RemoveAt(k);
            }
            Assert.Equal(pinned.Count == 0 ? 0 : pinned.Min(), h.Writer.OldestPin);
            if (rng.Next(5) == 0)
                h.Writer.Step(flush: rng.Next(2) == 0);
            // A full ring needs pins released: keep the oldest ones from blocking for ever.
            if (pinned.Count > 6)
            {
                h.Writer.Unpin(pinned.Min());
                pinned.Remove(pinned.Min());
            }
        }
        h.Writer.WaitDurable(h.Writer.CommittedSeq);
        var flushEntries = h.Scan().Entries.Values.Where(e => e.IsFlush).OrderBy(e => e.Seq).ToList();
        Assert.True(flushEntries.Count > 10);
        for (var i = 1; i < flushEntries.Count; i++)
        {
            Assert.True(flushEntries[i].LastSeq >= flushEntries[i - 1].LastSeq,
                $"seed {seed}: flush entry {flushEntries[i].Seq} has last_seq {flushEntries[i].LastSeq} < {flushEntries[i - 1].LastSeq} of {flushEntries[i - 1].Seq}");
        }
    }

    [Fact]
    public void A_bucket_is_reused_only_after_a_durable_last_seq_passed_it()
    {
        using var h = new Harness(buckets: 4, bucketSize: 4096);
        var first = h.Commit(1, flush: true);
        h.Writer.Pin(first);
        var firstBucket = h.Scan().Entries[first].Location.RingIndex;

        // Fill the ring: commits stop (no exception) when the next bucket would be the pinned one or the reserve.
        var committed = new List<ulong>();
        for (var i = 0; i < 200; i++)
        {
            var seq = h.Commit((ulong)(100 + i), flush: i % 3 == 0, valueBytes: 300);
            if (seq == 0)
                break;
            committed.Add(seq);
        }
        Assert.True(committed.Count is > 3 and < 200, $"{committed.Count} commits before the ring was full");
        Assert.True(h.Writer.Stats.JournalFullWaits > 0);
        h.Writer.WaitDurable(h.Writer.CommittedSeq);
        // The pinned entry is still on disk, untouched.
        var scan = h.Scan();
        Assert.Contains(first, scan.Entries.Keys);
        Assert.Equal(firstBucket, scan.Entries[first].Location.RingIndex);
        Assert.All(committed, s => Assert.Contains(s, scan.Entries.Keys));

        // Released, but not yet in a durable last_seq: still no room (rule f).
        h.Writer.Unpin(first);
        Assert.Equal(0UL, h.Writer.OldestPin);
        Assert.False(h.Writer.TryCommit([new BtreeUpdate(BtreeId.Test, 0, Key(999), new byte[300])], false, out _));
        // Reclaim's own commit comes from the reserve; its flush entry carries the new last_seq to disk.
        Assert.True(h.Writer.TryCommitInterior(new InteriorCommit(), out var reclaimSeq));
        h.Writer.WaitDurable(reclaimSeq);
        Assert.Equal(reclaimSeq, h.Writer.Stats.LastSeqOnDisk);
        // Now the ring moves on over the old entries.
        var resumed = 0;
        for (var i = 0; i < 60; i++)
        {
            var seq = h.Commit((ulong)(1000 + i), flush: true, valueBytes: 300);
            Assert.True(seq != 0, $"commit {i} after the release found the journal full: {h.Writer.Stats.ToText()}");
            resumed++;
        }
        Assert.Equal(60, resumed);
        Assert.DoesNotContain(first, h.Scan().Entries.Keys);
        Assert.True(h.Writer.Stats.LastSeqOnDisk > first);
    }

    [Fact]
    public void A_commit_larger_than_one_entry_is_refused_and_the_journal_goes_on()
    {
        using var h = new Harness(buckets: 4, bucketSize: 8192);
        var max = h.Writer.MaxCommitBytes;
        var updates = Enumerable.Range(0, (max / 200) + 2)
            .Select(i => new BtreeUpdate(BtreeId.Test, 0, Key((ulong)i), new byte[168])).ToList();
        Assert.True(JournalWriter.CommitBytes(updates) > max);
        var e = Assert.Throws<BasaltException>(() => h.Writer.TryCommit(updates, false, out _));
        Assert.Equal(ErrorCode.TransactionTooLarge, e.Code);

        // The largest whole number of these keys that fits is one entry.
        var fits = updates.Take((max - JournalFormat.RecordHeaderSize) / 200).ToList();
        Assert.True(JournalWriter.CommitBytes(fits) > max - 200);
        Assert.True(h.Writer.TryCommit(fits, true, out var seq));
        h.Writer.WaitDurable(seq);
        Assert.Equal(fits.Count, KeysOf(h.Scan().Entries[seq]).Count);
    }
}
