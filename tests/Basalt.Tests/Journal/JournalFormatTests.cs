// The journal entry format: what the builder writes, the reader reads back exactly; the checksum
// covers every byte that carries meaning; a torn or foreign entry never validates; each header
// and record check has its finding.
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Format;
using Basalt.Journal;
using static Basalt.Tests.Journal.JournalTestEntries;

namespace Basalt.Tests.Journal;

public sealed class JournalFormatTests
{
    private static readonly DateTimeOffset s_time = new(2031, 5, 6, 7, 8, 9, 123, TimeSpan.Zero);

    /// <summary>One record of every type, keys at two levels and two btrees, a root and a "no root".</summary>
    private static byte[] EveryRecordType(ulong seq = 42, ulong lastSeq = 40, bool flush = true, ChecksumType checksum = ChecksumType.Crc32C) =>
        Build(seq, lastSeq, flush, b =>
        {
            b.AppendKey(BtreeId.Test, 0, Key(1), [1, 2, 3]);
            b.AppendKey(BtreeId.Test, 0, Key(2), new byte[17]);
            b.AppendKey(BtreeId.Test, 0, new Bkey(new Bpos(1, 3), KeyType.Deleted), []);
            b.CloseRecord();
            b.AppendKey(BtreeId.Test, 1, new Bkey(new Bpos(9, 9), KeyType.BtreePtr), Ptr(7).ToBytes());
            b.AppendLevelsVoided(BtreeId.Test, 2);
            b.AppendRoot(BtreeId.Test, Root(BtreeId.Test, 1, 11));
            b.AppendRoot(BtreeId.Inodes, null);
            b.AppendBlacklist(new SeqRange(30, 35));
            b.AppendDatetime(s_time);
        }, checksum: checksum);

    [Theory]
    [InlineData(ChecksumType.Crc32C)]
    [InlineData(ChecksumType.Crc64)]
    [InlineData(ChecksumType.XxHash64)]
    public void Every_record_type_round_trips(ChecksumType checksum)
    {
        var bytes = EveryRecordType(checksum: checksum);
        var r = JournalEntryReader.Read(bytes, Context);
        Assert.Equal(JournalEntryStatus.Good, r.Status);
        Assert.Null(r.Finding);
        var e = r.Entry!;
        Assert.Equal(42UL, e.Seq);
        Assert.Equal(40UL, e.LastSeq);
        Assert.True(e.IsFlush);
        Assert.Equal(FormatVersion.Current, e.Version);
        Assert.Equal(checksum, e.ChecksumType);
        Assert.Equal(bytes.Length, e.DiskBytes);

        Assert.Equal(
            [JournalRecordType.BtreeKeys, JournalRecordType.BtreeKeys, JournalRecordType.LevelsVoided, JournalRecordType.BtreeRoot,
             JournalRecordType.BtreeRoot, JournalRecordType.Blacklist, JournalRecordType.Datetime],
            e.Records.Select(x => x.Type));
        var keys = KeysOf(e);
        Assert.Equal(4, keys.Count);
        Assert.Equal((BtreeId.Test, (byte)0, new Bpos(1, 1)), (keys[0].Btree, keys[0].Level, keys[0].Pos));
        Assert.Equal([1, 2, 3], keys[0].Value);
        Assert.Equal(new byte[17], keys[1].Value);
        Assert.Equal(KeyType.Deleted, e.Records[0].Keys().ElementAt(2).Key.Type);
        Assert.Equal((BtreeId.Test, (byte)1, new Bpos(9, 9)), (keys[3].Btree, keys[3].Level, keys[3].Pos));
        Assert.Equal(Ptr(7).ToBytes(), keys[3].Value);

        Assert.Equal((BtreeId.Test, (byte)2), (e.Records[2].Btree, e.Records[2].Level));
        var root = e.Records[3].Root();
        Assert.NotNull(root);
        Assert.Equal(Root(BtreeId.Test, 1, 11).ToText(), root.ToText());
        Assert.Equal(BtreeId.Inodes, e.Records[4].Btree);
        Assert.Null(e.Records[4].Root());
        Assert.Equal(new SeqRange(30, 35), e.Records[5].Blacklist());
        Assert.Equal(s_time, e.Records[6].Time());
        Assert.Contains("seq 42 flush last_seq 40", e.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_no_flush_entry_keeps_its_flag()
    {
        var e = ReadGood(EveryRecordType(flush: false));
        Assert.False(e.IsFlush);
        Assert.Equal(JournalEntryFlags.NoFlush, e.Flags);
    }

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public void Entries_are_block_padded_with_zeroes(int blockSize)
    {
        for (var keys = 0; keys < 40; keys += 3)
        {
            var n = keys;
            var bytes = Build(7, 7, records: b =>
            {
                for (var i = 0; i < n; i++)
                    b.AppendKey(BtreeId.Test, 0, Key((ulong)i), new byte[i % 11]);
            }, blockSize: blockSize);
            var end = JournalFormat.HeaderSize + (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(JournalFormat.PayloadBytesOffset));
            Assert.Equal(0, bytes.Length % blockSize);
            Assert.True(bytes.Length - end < blockSize, $"{bytes.Length} bytes for {end} used");
            Assert.Equal(JournalFormat.DiskBytes(end - JournalFormat.HeaderSize, blockSize), bytes.Length);
            Assert.True(bytes.AsSpan(end).IndexOfAnyExcept((byte)0) < 0, "padding is zero");
            var r = JournalEntryReader.Read(bytes, new JournalReadContext(Magic, blockSize, NodeSize));
            Assert.Equal(JournalEntryStatus.Good, r.Status);
            Assert.Equal(bytes.Length, r.DiskBytes);
            Assert.Equal(n, r.Entry!.KeyCount);
        }
    }

    [Theory]
    [InlineData(ChecksumType.Crc32C)]
    [InlineData(ChecksumType.XxHash64)]
    public void Every_single_bit_flip_of_header_and_records_is_rejected(ChecksumType checksum)
    {
        var good = EveryRecordType(checksum: checksum);
        var end = JournalFormat.HeaderSize + (int)BinaryPrimitives.ReadUInt32LittleEndian(good.AsSpan(JournalFormat.PayloadBytesOffset));
        var buffer = new byte[good.Length + 4096];
        var outcomes = new Dictionary<JournalEntryStatus, int>();
        for (var bit = 0; bit < end * 8; bit++)
        {
            good.CopyTo(buffer, 0);
            buffer[bit / 8] ^= (byte)(1 << (bit % 8));
            var r = JournalEntryReader.Read(buffer, Context);
            Assert.True(r.Status != JournalEntryStatus.Good, $"bit {bit} (byte {bit / 8}) flipped, still read as good");
            Assert.Null(r.Entry);
            outcomes[r.Status] = outcomes.GetValueOrDefault(r.Status) + 1;
            if (r.Status != JournalEntryStatus.NoEntry)
                Assert.NotNull(r.Finding);
        }
        // Magic flips say "no entry here"; everything else is a checksum or header finding.
        Assert.Equal(64, outcomes[JournalEntryStatus.NoEntry]);
        Assert.True(outcomes[JournalEntryStatus.BadChecksum] > (end - 16) * 8 * 9 / 10, string.Join(", ", outcomes));
    }

    [Fact]
    public void Bit_flips_in_the_block_padding_change_nothing_the_reader_returns()
    {
        // The checksum covers header and records; the padding after them carries no meaning.
        var good = EveryRecordType();
        var end = JournalFormat.HeaderSize + (int)BinaryPrimitives.ReadUInt32LittleEndian(good.AsSpan(JournalFormat.PayloadBytesOffset));
        Assert.True(good.Length > end, "the test entry has padding");
        var expected = KeysOf(ReadGood(good));
        for (var at = end; at < good.Length; at++)
        {
            var copy = (byte[])good.Clone();
            copy[at] ^= 0x40;
            var e = ReadGood(copy);
            Assert.Equal(good.Length, e.DiskBytes);
            Assert.Equal(expected.Count, KeysOf(e).Count);
        }
    }

    [Fact]
    public void Every_proper_sector_prefix_of_a_multi_sector_entry_is_torn()
    {
        var good = Build(9, 9, records: b =>
        {
            for (var i = 0; i < 60; i++)
                b.AppendKey(BtreeId.Test, 0, Key((ulong)i), new byte[40]);
        });
        var sectors = good.Length / FormatLimits.SectorSize;
        Assert.True(sectors >= 6, $"{sectors} sectors");
        var older = Build(3, 1, records: b =>
        {
            for (var i = 0; i < 80; i++)
                b.AppendKey(BtreeId.Test, 0, Key((ulong)i + 500), new byte[40]);
        });
        foreach (var leftover in new[] { new byte[older.Length], older })
        {
            for (var t = 1; t < sectors; t++)
            {
                var torn = (byte[])leftover.Clone();
                good.AsSpan(0, t * FormatLimits.SectorSize).CopyTo(torn);
                var r = JournalEntryReader.Read(torn, Context);
                Assert.True(r.Status is JournalEntryStatus.BadChecksum or JournalEntryStatus.BadHeader,
                    $"{t} of {sectors} sectors over {(leftover[8] == 0 ? "zeroes" : "an older entry")}: {r.Status} {r.Detail}");
                Assert.Equal(9UL, r.HeaderSeq);
            }
        }
    }

    [Fact]
    public void The_magic_comes_from_the_uuid_and_a_foreign_entry_never_validates()
    {
        var rng = new Random(5);
        var bytes = new byte[16];
        for (var i = 0; i < 200; i++)
        {
            rng.NextBytes(bytes);
            var other = new Guid(bytes);
            var foreign = Build(5, 5, magic: JournalFormat.MagicFor(other));
            var r = JournalEntryReader.Read(foreign, Context);
            if (JournalFormat.MagicFor(other) == Magic)
                continue;
            Assert.Equal(JournalEntryStatus.NoEntry, r.Status);
            Assert.Null(r.Finding);
            // The same bytes validate for the filesystem they belong to.
            Assert.Equal(JournalEntryStatus.Good, JournalEntryReader.Read(foreign, new JournalReadContext(JournalFormat.MagicFor(other), BlockSize, NodeSize)).Status);
        }

        // Every bit of the uuid's first eight bytes (RFC 4122 order) changes the magic.
        Span<byte> raw = stackalloc byte[16];
        Uuid.TryWriteBytes(raw, bigEndian: true, out _);
        for (var bit = 0; bit < 64; bit++)
        {
            var changed = raw.ToArray();
            changed[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.NotEqual(Magic, JournalFormat.MagicFor(new Guid(changed, bigEndian: true)));
        }
        Assert.Equal(BinaryPrimitives.ReadUInt64LittleEndian(raw) ^ JournalFormat.MagicXor, Magic);
    }

    [Theory]
    [InlineData((ushort)0)]
    [InlineData((ushort)(FormatVersion.Current + 1))]
    [InlineData(ushort.MaxValue)]
    public void A_version_outside_what_this_build_reads_is_a_bad_header(ushort version)
    {
        var bytes = EveryRecordType();
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(JournalFormat.VersionOffset), version);
        Reseal(bytes);
        var r = JournalEntryReader.Read(bytes, Context);
        Assert.Equal(JournalEntryStatus.Invalid, r.Status);
        Assert.Equal(FsckErrorId.JournalEntryBadHeader, r.Finding);
        Assert.Contains($"format version {version}", r.Detail, StringComparison.Ordinal);
        Assert.Equal(bytes.Length, r.DiskBytes);
    }

    [Theory]
    [InlineData(JournalFormat.FlagsOffset, 0x02, "unknown flags")]
    [InlineData(JournalFormat.ReservedOffset + 5, 0x01, "reserved bytes")]
    [InlineData(JournalFormat.SeqOffset, 0, "seq 0")]
    public void Unknown_flags_reserved_bytes_and_seq_zero_are_bad_headers(int offset, byte value, string expected)
    {
        var bytes = EveryRecordType();
        if (offset == JournalFormat.SeqOffset)
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(offset), 0);
        else
            bytes[offset] |= value;
        Reseal(bytes);
        var r = JournalEntryReader.Read(bytes, Context);
        Assert.Equal(JournalEntryStatus.Invalid, r.Status);
        Assert.Equal(FsckErrorId.JournalEntryBadHeader, r.Finding);
        Assert.Contains(expected, r.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData((byte)0)]
    [InlineData((byte)4)]
    [InlineData((byte)200)]
    public void An_unknown_or_absent_checksum_type_is_a_bad_header(byte type)
    {
        var bytes = EveryRecordType();
        bytes[JournalFormat.ChecksumTypeOffset] = type;
        var r = JournalEntryReader.Read(bytes, Context);
        Assert.Equal(JournalEntryStatus.BadHeader, r.Status);
        Assert.Equal(FsckErrorId.JournalEntryBadHeader, r.Finding);
        Assert.Contains($"checksum type {type}", r.Detail, StringComparison.Ordinal);
        Assert.Equal(42UL, r.HeaderSeq);
    }

    [Fact]
    public void A_last_seq_after_the_entry_is_read_as_its_own_seq_with_a_finding()
    {
        var bytes = EveryRecordType(seq: 42, lastSeq: 50);
        var r = JournalEntryReader.Read(bytes, Context);
        Assert.Equal(JournalEntryStatus.Good, r.Status);
        Assert.Equal(FsckErrorId.JournalLastSeqNewerThanSeq, r.Finding);
        Assert.Equal(42UL, r.Entry!.LastSeq);
        Assert.Contains("last_seq 50", r.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)]     // shorter than a record header
    [InlineData(12)]    // not a multiple of 8
    [InlineData(4096)]  // past the end of the entry
    [InlineData(int.MaxValue)]
    public void A_record_length_that_does_not_fit_is_a_finding_not_an_exception(int length)
    {
        var bytes = EveryRecordType();
        var second = SecondRecordOffset(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(second + JournalFormat.RecordBytesOffset), (uint)length);
        Reseal(bytes);
        var r = JournalEntryReader.Read(bytes, Context);
        Assert.Equal(JournalEntryStatus.Invalid, r.Status);
        Assert.Equal(FsckErrorId.JournalEntryBadRecord, r.Finding);
        Assert.Contains($"record at byte {second}: length {(uint)length}", r.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(JournalFormat.RecordTypeOffset, 0, "unknown record type 0")]
    [InlineData(JournalFormat.RecordTypeOffset, 6, "unknown record type 6")]
    [InlineData(JournalFormat.RecordReservedOffset, 1, "unknown record type")]
    [InlineData(JournalFormat.RecordBtreeOffset, 200, "keys of btree 200")]
    [InlineData(JournalFormat.RecordLevelOffset, 9, "at level 9")]
    public void Malformed_record_headers_are_bad_records(int field, byte value, string expected)
    {
        var bytes = EveryRecordType();
        var first = JournalFormat.HeaderSize;
        bytes[first + field] = value;
        Reseal(bytes);
        var r = JournalEntryReader.Read(bytes, Context);
        Assert.Equal(JournalEntryStatus.Invalid, r.Status);
        Assert.Equal(FsckErrorId.JournalEntryBadRecord, r.Finding);
        Assert.Contains(expected, r.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Payloads_of_fixed_size_records_and_invalid_keys_are_bad_records()
    {
        // A blacklist whose first seq is after its last.
        var bytes = Build(5, 5, records: b => b.AppendBlacklist(new SeqRange(9, 3)));
        Assert.Equal(FsckErrorId.JournalEntryBadRecord, JournalEntryReader.Read(bytes, Context).Finding);

        // A levels_voided record with a payload.
        bytes = Build(5, 5, records: b => b.AppendBlacklist(new SeqRange(1, 2)));
        bytes[JournalFormat.HeaderSize + JournalFormat.RecordTypeOffset] = (byte)JournalRecordType.LevelsVoided;
        bytes[JournalFormat.HeaderSize + JournalFormat.RecordBtreeOffset] = (byte)BtreeId.Test;
        Reseal(bytes);
        var r = JournalEntryReader.Read(bytes, Context);
        Assert.Equal(FsckErrorId.JournalEntryBadRecord, r.Finding);
        Assert.Contains("16 payload bytes", r.Detail, StringComparison.Ordinal);

        // A datetime record read as a blacklist: the wrong size.
        bytes = Build(5, 5, records: b => b.AppendDatetime(s_time));
        bytes[JournalFormat.HeaderSize + JournalFormat.RecordTypeOffset] = (byte)JournalRecordType.Blacklist;
        Reseal(bytes);
        Assert.Equal(FsckErrorId.JournalEntryBadRecord, JournalEntryReader.Read(bytes, Context).Finding);

        // A key whose header claims more bytes than its record holds.
        bytes = Build(5, 5, records: b => b.AppendKey(BtreeId.Test, 0, Key(1), [1, 2, 3]));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(JournalFormat.HeaderSize + JournalFormat.RecordHeaderSize), 200);
        Reseal(bytes);
        r = JournalEntryReader.Read(bytes, Context);
        Assert.Equal(FsckErrorId.JournalEntryBadRecord, r.Finding);
        Assert.Contains("malformed key header", r.Detail, StringComparison.Ordinal);

        // A key the btree may not hold (a child pointer in a leaf).
        bytes = Build(5, 5, records: b => b.AppendKey(BtreeId.Test, 0, new Bkey(new Bpos(1, 1), KeyType.BtreePtr), Ptr(3).ToBytes()));
        r = JournalEntryReader.Read(bytes, Context);
        Assert.Equal(FsckErrorId.JournalEntryBadRecord, r.Finding);
        Assert.Contains("key 1:1:0 btree_ptr", r.Detail, StringComparison.Ordinal);

        // A root record whose pointer does not parse.
        bytes = Build(5, 5, records: b => b.AppendRoot(BtreeId.Test, Root(BtreeId.Test, 0, 3)));
        bytes[JournalFormat.HeaderSize + JournalFormat.RecordHeaderSize + BtreePtrValue.Reserved1Offset] = 1;
        Reseal(bytes);
        Assert.Equal(FsckErrorId.JournalEntryBadRecord, JournalEntryReader.Read(bytes, Context).Finding);
    }

    [Fact]
    public void A_payload_past_the_end_of_the_bucket_is_a_bad_header()
    {
        var bytes = EveryRecordType();
        var payload = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(JournalFormat.PayloadBytesOffset));
        // The reader is given exactly the entry's bytes as "the rest of the bucket": one more word does not fit.
        var tight = bytes.AsSpan(0, JournalFormat.HeaderSize + (int)payload).ToArray();
        Assert.Equal(JournalEntryStatus.Good, JournalEntryReader.Read(tight, Context).Status);
        BinaryPrimitives.WriteUInt32LittleEndian(tight.AsSpan(JournalFormat.PayloadBytesOffset), payload + 8);
        var r = JournalEntryReader.Read(tight, Context);
        Assert.Equal(JournalEntryStatus.BadHeader, r.Status);
        Assert.Equal(FsckErrorId.JournalEntryBadHeader, r.Finding);
        Assert.Contains($"payload of {payload + 8} bytes runs past the end of the bucket", r.Detail, StringComparison.Ordinal);

        // A payload that is not a multiple of 8.
        BinaryPrimitives.WriteUInt32LittleEndian(tight.AsSpan(JournalFormat.PayloadBytesOffset), payload - 4);
        Assert.Equal(JournalEntryStatus.BadHeader, JournalEntryReader.Read(tight, Context).Status);
    }

    [Fact]
    public void An_entry_of_exactly_MaxEntryBytes_reads_and_one_word_more_does_not()
    {
        const int datetimeRecord = JournalFormat.RecordHeaderSize + JournalFormat.DatetimePayloadSize;
        const int records = (JournalFormat.MaxEntryBytes - JournalFormat.HeaderSize) / datetimeRecord;
        Assert.Equal(JournalFormat.MaxEntryBytes, JournalFormat.HeaderSize + (records * datetimeRecord));
        var max = Build(8, 8, records: b =>
        {
            for (var i = 0; i < records; i++)
                b.AppendDatetime(s_time);
        }, capacity: JournalFormat.MaxEntryBytes);
        Assert.Equal(JournalFormat.MaxEntryBytes, max.Length);
        var bucket = new byte[2 * JournalFormat.MaxEntryBytes];
        max.CopyTo(bucket, 0);
        var r = JournalEntryReader.Read(bucket, Context);
        Assert.Equal(JournalEntryStatus.Good, r.Status);
        Assert.Equal(records, r.Entry!.Records.Count);

        BinaryPrimitives.WriteUInt32LittleEndian(bucket.AsSpan(JournalFormat.PayloadBytesOffset), (uint)(JournalFormat.MaxEntryBytes - JournalFormat.HeaderSize + 8));
        Reseal(bucket);
        r = JournalEntryReader.Read(bucket, Context);
        Assert.Equal(JournalEntryStatus.BadHeader, r.Status);
        Assert.Equal(FsckErrorId.JournalEntryBadHeader, r.Finding);

        // The builder refuses to seal an entry larger than its room.
        using var builder = new JournalEntryBuilder(9, 1000);
        for (var i = 0; i < 60; i++)
            builder.AppendDatetime(s_time);
        Assert.Throws<InvalidOperationException>(() => builder.Seal(Magic, 9, false, ChecksumType.Crc32C, FormatVersion.Current, BlockSize));
    }

    [Fact]
    public void A_short_buffer_holds_no_entry()
    {
        var bytes = EveryRecordType();
        for (var n = 0; n < JournalFormat.HeaderSize; n += 7)
            Assert.Equal(JournalEntryStatus.NoEntry, JournalEntryReader.Read(bytes.AsSpan(0, n), Context).Status);
    }

    private static int SecondRecordOffset(byte[] entry) =>
        JournalFormat.HeaderSize + (int)BinaryPrimitives.ReadUInt32LittleEndian(entry.AsSpan(JournalFormat.HeaderSize + JournalFormat.RecordBytesOffset));
}
