// Reading the ring: entries found with their exact locations, the end of a bucket's entries
// (no magic, or an older seq from an earlier lap), damage recorded where it is while the scan
// goes on, and the newest seq seen.
using Basalt.Devices;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Superblocks;
using static Basalt.Tests.Journal.JournalTestEntries;

namespace Basalt.Tests.Journal;

public sealed class JournalScanTests
{
    [Fact]
    public void Entries_are_found_in_every_bucket_with_their_locations()
    {
        using var ring = new TestRing();
        var e = Enumerable.Range(1, 5).Select(s => WithKeys((ulong)s, 1, s % 2 == 1, ((ulong)s, (byte)s))).ToArray();
        var first = ring.Fill(0, e[0], e[1], e[2]);
        var second = ring.Fill(1, e[3], e[4]);

        var scan = ring.Scan();
        Assert.Empty(scan.Damage);
        Assert.Equal([1UL, 2, 3, 4, 5], scan.Entries.Keys.Order().ToArray());
        Assert.Equal([3UL, 5, 0, 0, 0, 0], scan.BucketNewestSeq);
        Assert.Equal(e[0].Length + e[1].Length + e[2].Length, scan.BucketEnd[0]);
        Assert.Equal(e[3].Length + e[4].Length, scan.BucketEnd[1]);
        Assert.Equal(0, scan.BucketEnd[2]);
        Assert.Equal(5UL, scan.NewestSeqSeen);
        Assert.Equal(first[1], scan.Entries[2].Location.Offset);
        Assert.Equal(second[1], scan.Entries[5].Location.Offset);
        Assert.Equal(1, scan.Entries[5].Location.RingIndex);
        Assert.Equal(ring.Ring.BucketAt(1), scan.Entries[5].Location.Bucket);
        Assert.False(scan.Entries[2].IsFlush);
        Assert.Equal(ring.Ring.Bytes, scan.BytesRead);
    }

    [Fact]
    public void A_zeroed_ring_has_no_entries_and_no_damage()
    {
        using var ring = new TestRing();
        var scan = ring.Scan();
        Assert.Empty(scan.Entries);
        Assert.Empty(scan.Damage);
        Assert.All(scan.BucketNewestSeq, s => Assert.Equal(0UL, s));
        Assert.Equal(0UL, scan.NewestSeqSeen);
    }

    [Fact]
    public void A_reused_bucket_ends_at_the_first_older_entry_of_an_earlier_lap()
    {
        using var ring = new TestRing();
        // The earlier lap: seqs 1..3, equal sizes.
        var old = Enumerable.Range(1, 3).Select(s => WithKeys((ulong)s, 1, true, (7, 7))).ToArray();
        ring.Fill(0, old);
        // The new lap wrote seq 20 over the first one, of exactly the same size: seq 2 follows it intact.
        var fresh = WithKeys(20, 18, true, (8, 8));
        Assert.Equal(old[0].Length, fresh.Length);
        ring.Put(0, 0, fresh);

        var scan = ring.Scan();
        Assert.Equal([20UL], scan.Entries.Keys);
        Assert.Equal(20UL, scan.BucketNewestSeq[0]);
        Assert.Equal(fresh.Length, scan.BucketEnd[0]);
        Assert.Empty(scan.Damage);
    }

    [Fact]
    public void A_stale_entry_after_a_damaged_one_of_the_new_lap_is_not_taken_as_newer()
    {
        using var ring = new TestRing();
        ring.Fill(0, WithKeys(1, 1, true, (1, 1)), WithKeys(2, 1, true, (2, 2)), WithKeys(3, 1, true, (3, 3)));
        var fresh = WithKeys(20, 18, true, (8, 8));
        var damaged = WithKeys(21, 18, true, (9, 9));
        damaged[JournalFormat.HeaderSize + 3] ^= 0x10;
        ring.Put(0, 0, fresh);
        ring.Put(0, fresh.Length, damaged);

        var scan = ring.Scan();
        // Seq 3 of the earlier lap follows the damaged entry: older than 20, the end of the bucket.
        Assert.DoesNotContain(3UL, scan.Entries.Keys);
        Assert.Contains(20UL, scan.Entries.Keys);
        Assert.Equal(20UL, scan.BucketNewestSeq[0]);
        var d = Assert.Single(scan.Damage);
        Assert.Equal(FsckErrorId.JournalEntryBadChecksum, d.Id);
        Assert.Equal(21UL, d.Seq);
    }

    [Fact]
    public void A_damaged_entry_is_recorded_where_it_is_and_the_scan_goes_on_after_it()
    {
        using var ring = new TestRing();
        var e = Enumerable.Range(1, 4).Select(s => WithKeys((ulong)s, 1, true, ((ulong)s, (byte)s))).ToArray();
        e[1][JournalFormat.HeaderSize + 20] ^= 0x01;
        var offsets = ring.Fill(0, e);

        var scan = ring.Scan();
        Assert.Equal([1UL, 3, 4], scan.Entries.Keys.Order().ToArray());
        var d = Assert.Single(scan.Damage);
        Assert.Equal(FsckErrorId.JournalEntryBadChecksum, d.Id);
        Assert.Equal(2UL, d.Seq);
        Assert.Equal(offsets[1], d.Location!.Value.Offset);
        Assert.Contains($"at byte {offsets[1]}", d.ToText(), StringComparison.Ordinal);
        Assert.Equal(4UL, scan.BucketNewestSeq[0]);
    }

    [Fact]
    public void The_newest_seq_seen_counts_a_torn_header_near_the_good_entries_but_not_a_wild_one()
    {
        using var ring = new TestRing();
        ring.Fill(0, WithKeys(1, 1, true, (1, 1)), WithKeys(2, 1, true, (2, 2)));
        var torn = WithKeys(3, 1, false, (3, 3));
        torn[JournalFormat.HeaderSize + 9] ^= 0x01;
        ring.Fill(1, torn);
        Assert.Equal(3UL, ring.Scan().NewestSeqSeen);

        var wild = WithKeys(1_000_000, 1, false, (3, 3));
        wild[JournalFormat.HeaderSize + 9] ^= 0x01;
        ring.Fill(1, wild);
        var scan = ring.Scan();
        Assert.Equal(2UL, scan.NewestSeqSeen);
        Assert.Equal(1_000_000UL, Assert.Single(scan.Damage).Seq);
    }

    [Fact]
    public void A_bucket_outside_the_device_and_a_failing_read_are_damage_not_exceptions()
    {
        using var memory = new MemoryBlockDevice(16 * 4096, "short.img");
        using var device = new FaultyBlockDevice(memory, ownsInner: false);
        var ring = new JournalRing([new BucketRange(2, 2), new BucketRange(100, 1)], 4096);
        memory.Write(2 * 4096, WithKeys(1, 1, true, (1, 1)));
        device.FailReads(3 * 4096, 4096);

        var scan = JournalScan.Scan(device, ring, Context);
        Assert.Equal([1UL], scan.Entries.Keys);
        Assert.Equal(2, scan.Damage.Count);
        Assert.Contains(scan.Damage, d => d.Detail.Contains("read failed", StringComparison.Ordinal) && d.Location!.Value.Offset == 3 * 4096);
        Assert.Contains(scan.Damage, d => d.Id == FsckErrorId.JournalEntryBadHeader && d.Detail.Contains("lies outside the device", StringComparison.Ordinal));
    }

    [Fact]
    public void An_entry_that_does_not_fit_its_bucket_is_a_bad_header()
    {
        using var ring = new TestRing(bucketSize: 4096);
        var big = Build(1, 1, records: b =>
        {
            for (var i = 0; i < 100; i++)
                b.AppendKey(Basalt.Format.BtreeId.Test, 0, Key((ulong)i), new byte[16]);
        });
        Assert.True(big.Length > 4096);
        ring.Put(0, 0, big.AsSpan(0, 4096));
        var d = Assert.Single(ring.Scan().Damage);
        Assert.Equal(FsckErrorId.JournalEntryBadHeader, d.Id);
        Assert.Contains("runs past the end of the bucket", d.Detail, StringComparison.Ordinal);
    }
}
