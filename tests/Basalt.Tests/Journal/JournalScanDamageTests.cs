// The journal scan over hand-built rings: entries written with JournalEntryBuilder into a memory
// device, then damaged the way debug corrupt damages them. Pins what the scan finds after a
// changed magic or a zeroed entry in the middle of a bucket (the entries after it are still
// found, the block is reported with its seq), where an earlier lap ends the scan, and the raw
// views JournalInspector gives of an entry (records, checksum).
using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Superblocks;

namespace Basalt.Tests.Journal;

public sealed class JournalScanDamageTests
{
    private const int BlockSize = 512;
    private const int BucketSize = 8192;
    private const ulong FirstBucket = 2;
    private static readonly Guid s_uuid = new("0f4c1d2e-3b5a-4c6d-8e7f-90a1b2c3d4e5");
    private static readonly ulong s_magic = JournalFormat.MagicFor(s_uuid);
    private static readonly JournalReadContext s_context = new(s_magic, BlockSize, 4096);

    private sealed class Ring
    {
        public MemoryBlockDevice Device { get; } = new(BucketSize * 8);
        public JournalRing Layout { get; } = new([new BucketRange(FirstBucket, 4)], BucketSize);

        /// <summary>Where each entry was written: its seq and device offset.</summary>
        public Dictionary<ulong, long> Offsets { get; } = [];

        private readonly int[] _fill = new int[4];

        /// <summary>Writes an entry of <paramref name="keys"/> test-btree keys with seq <paramref name="seq"/> into ring bucket <paramref name="ring"/>.</summary>
        public void Write(int ring, ulong seq, int keys, bool flush = true)
        {
            using var builder = new JournalEntryBuilder(seq, BucketSize - _fill[ring]) { RingIndex = ring, Offset = _fill[ring] };
            for (var i = 0; i < keys; i++)
                builder.AppendKey(BtreeId.Test, 0, new Bkey(new Bpos(1, (seq * 100) + (ulong)i, 0), KeyType.Cookie, 0), BitConverter.GetBytes(seq + (ulong)i));
            builder.AppendDatetime(DateTimeOffset.UnixEpoch.AddSeconds(seq));
            var bytes = builder.Seal(s_magic, lastSeq: 1, noFlush: !flush, ChecksumType.Crc32C, FormatVersion.Current, BlockSize);
            var offset = Layout.OffsetOf(ring) + _fill[ring];
            Device.Write(offset, builder.Sealed(bytes));
            Offsets[seq] = offset;
            _fill[ring] += bytes;
        }

        public void Flip(long offset, int bit)
        {
            var b = new byte[BlockSize];
            var sector = offset / BlockSize * BlockSize;
            Device.Read(sector, b);
            b[offset - sector + (bit / 8)] ^= (byte)(1 << (bit % 8));
            Device.Write(sector, b);
        }

        public JournalScanResult Scan() => JournalScan.Scan(Device, Layout, s_context);
    }

    [Fact]
    public void A_changed_magic_mid_bucket_hides_no_later_entry_and_is_reported_with_its_seq()
    {
        var ring = new Ring();
        for (ulong s = 1; s <= 4; s++)
            ring.Write(0, s, keys: 20);
        ring.Flip(ring.Offsets[2] + JournalFormat.MagicOffset, 3);

        var scan = ring.Scan();
        Assert.Equal([1UL, 3, 4], scan.Entries.Keys.Order().ToArray());
        var damage = Assert.Single(scan.Damage);
        Assert.Equal(FsckErrorId.JournalEntryBadHeader, damage.Id);
        Assert.Equal(2UL, damage.Seq);
        Assert.Equal(ring.Offsets[2], damage.Location!.Value.Offset);
        Assert.Contains($"entry seq 3 of the same lap follows at byte {ring.Offsets[3]}", damage.Detail, StringComparison.Ordinal);
        Assert.Equal(4UL, scan.BucketNewestSeq[0]);

        // The plan sees the gap: seq 2 lies between the window's start and its newest flush entry.
        var plan = JournalReplayPlan.Build(scan, checkpointSeq: 0, blacklist: []);
        Assert.Equal(new SeqRange(1, 1), plan.Range);
        Assert.Equal(new SeqRange(2, 4), plan.LostRange);
        var missing = Assert.Single(plan.Findings);
        Assert.Equal(FsckErrorId.JournalEntriesMissing, missing.Id);
        Assert.Contains("no journal entry magic here", missing.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_zeroed_entry_mid_bucket_hides_no_later_entry()
    {
        var ring = new Ring();
        for (ulong s = 1; s <= 3; s++)
            ring.Write(0, s, keys: 5);
        ring.Device.Write(ring.Offsets[2], new byte[ring.Offsets[3] - ring.Offsets[2]]);

        var scan = ring.Scan();
        Assert.Equal([1UL, 3], scan.Entries.Keys.Order().ToArray());
        var damage = Assert.Single(scan.Damage);
        Assert.Null(damage.Seq);  // zeroes carry no seq
        Assert.Equal(ring.Offsets[2], damage.Location!.Value.Offset);
    }

    [Fact]
    public void An_earlier_lap_after_the_current_entries_ends_the_bucket_without_damage()
    {
        var ring = new Ring();
        for (ulong s = 1; s <= 3; s++)
            ring.Write(0, s, keys: 20);
        // A later lap rewrote the start of the bucket with one short entry, seq 9: after it comes
        // the rest of the old seq 1 entry (no magic), then the old seq 2 and 3 entries intact.
        var lap = new Ring();
        lap.Write(0, 9, keys: 1);
        var block = new byte[BlockSize];
        lap.Device.Read(lap.Offsets[9], block);
        ring.Device.Write(ring.Offsets[1], block);

        var scan = ring.Scan();
        Assert.Equal([9UL], scan.Entries.Keys);
        Assert.Empty(scan.Damage);
        Assert.Equal(BlockSize, scan.BucketEnd[0]);

        var bucket = new byte[BucketSize];
        ring.Device.Read(ring.Layout.OffsetOf(0), bucket);
        var run = JournalInspector.EarlierLap(bucket, scan.BucketEnd[0], scan.BucketNewestSeq[0], s_context);
        Assert.NotNull(run);
        Assert.Equal((int)(ring.Offsets[2] - ring.Layout.OffsetOf(0)), run.Value.Offset);
        Assert.Equal(2, run.Value.Entries);
        Assert.Equal(2UL, run.Value.FirstSeq);
        Assert.Equal(3UL, run.Value.LastSeq);
        Assert.Equal((int)(ring.Offsets[3] - ring.Offsets[2]) * 2, run.Value.Bytes);
    }

    [Fact]
    public void Inspector_walks_records_and_recomputes_the_checksum()
    {
        var ring = new Ring();
        ring.Write(0, 5, keys: 3);
        var entry = new byte[BlockSize * 2];
        ring.Device.Read(ring.Offsets[5], entry);

        var records = JournalInspector.Records(entry);
        Assert.Equal(2, records.Count);
        Assert.Equal((byte)JournalRecordType.BtreeKeys, records[0].Type);
        Assert.Equal((byte)BtreeId.Test, records[0].Btree);
        Assert.Equal(JournalFormat.HeaderSize, records[0].Offset);
        Assert.Equal((uint)(JournalFormat.RecordHeaderSize + (3 * (BkeyFormat.HeaderSize + 8))), records[0].Bytes);
        Assert.Equal((byte)JournalRecordType.Datetime, records[1].Type);
        Assert.Equal(JournalInspector.RecordsEnd(entry), records[1].Offset + (int)records[1].Bytes);

        var stored = BinaryPrimitives.ReadUInt64LittleEndian(entry);
        Assert.Equal(stored, JournalInspector.ComputeChecksum(entry));
        entry[records[0].Offset + JournalFormat.RecordHeaderSize + BkeyFormat.PosOffset] ^= 1;
        Assert.NotEqual(stored, JournalInspector.ComputeChecksum(entry));
        Assert.True(JournalInspector.RecomputeChecksum(entry));
        Assert.Equal(JournalEntryStatus.Good, JournalEntryReader.Read(entry, s_context).Status);

        // A payload length past the buffer makes the checksum uncomputable: nothing is written.
        BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(JournalFormat.PayloadBytesOffset), 1 << 20);
        var before = entry.ToArray();
        Assert.Null(JournalInspector.ComputeChecksum(entry));
        Assert.False(JournalInspector.RecomputeChecksum(entry));
        Assert.Equal(before, entry);
    }
}
