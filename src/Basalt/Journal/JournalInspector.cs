// A raw view of journal entries for `basalt debug corrupt`, `list-journal` and tests, as
// BtreeNodeInspector is for node slots: names every header and record-header field with its
// offset and size, walks an entry's records without validating them, and recomputes an entry's
// checksum so a deliberate corruption can carry a valid one (`--fix-csum`). JournalEntryReader
// is the only judge of validity; nothing here decides whether an entry is good.
using System.Buffers.Binary;
using Basalt.Btree.Node;
using Basalt.Format;
using static Basalt.Journal.JournalFormat;

namespace Basalt.Journal;

/// <summary>One record of an entry as found (unvalidated): where it starts in the entry, its stated size and header.</summary>
/// <param name="Offset">Byte offset of the record header from the start of the entry.</param>
/// <param name="Bytes">The record's bytes field (header included), as stored.</param>
public readonly record struct JournalRecordInfo(int Offset, uint Bytes, byte Type, byte Btree, byte Level)
{
    /// <summary>Payload bytes of the record that lie inside the entry's records.</summary>
    public int PayloadBytes(int entryEnd) => (int)Math.Max(0, Math.Min(Bytes, (long)entryEnd - Offset) - RecordHeaderSize);
}

/// <summary>Entries an earlier lap of the ring left in a bucket after the current lap's: stale, never read.</summary>
/// <param name="Offset">Byte offset in the bucket of the first of them.</param>
/// <param name="Bytes">Bytes from the first to the end of the last.</param>
public readonly record struct EarlierLapRun(int Offset, int Entries, ulong FirstSeq, ulong LastSeq, int Bytes);

public static class JournalInspector
{
    /// <summary>Entry header fields, offsets from the start of the entry.</summary>
    public static IReadOnlyList<NodeField> HeaderFields { get; } =
    [
        new("csum", ChecksumOffset, 8),
        new("magic", MagicOffset, 8),
        new("seq", SeqOffset, 8),
        new("last_seq", LastSeqOffset, 8),
        new("version", VersionOffset, 2),
        new("csum_type", ChecksumTypeOffset, 1),
        new("flags", FlagsOffset, 1),
        new("payload_bytes", PayloadBytesOffset, 4),
        new("reserved", ReservedOffset, ReservedSize),
    ];

    /// <summary>Record header fields, offsets from the start of the record.</summary>
    public static IReadOnlyList<NodeField> RecordHeaderFields { get; } =
    [
        new("bytes", RecordBytesOffset, 4),
        new("type", RecordTypeOffset, 1),
        new("btree", RecordBtreeOffset, 1),
        new("level", RecordLevelOffset, 1),
        new("reserved", RecordReservedOffset, 1),
    ];

    /// <summary>
    /// The end of the entry's records (header plus payload_bytes), clamped to <paramref name="entry"/>;
    /// the header alone when the entry is shorter than a header.
    /// </summary>
    public static int RecordsEnd(ReadOnlySpan<byte> entry)
    {
        if (entry.Length < HeaderSize)
            return entry.Length;
        var payload = BinaryPrimitives.ReadUInt32LittleEndian(entry[PayloadBytesOffset..]);
        return (int)Math.Min(entry.Length, HeaderSize + (long)payload);
    }

    /// <summary>
    /// Lists the records of the entry at the start of <paramref name="entry"/> without validating
    /// them: one after another from the header up to payload_bytes, stopping at a record header
    /// that does not fit or whose size is not a positive multiple of 8. Never throws.
    /// </summary>
    public static IReadOnlyList<JournalRecordInfo> Records(ReadOnlySpan<byte> entry)
    {
        var records = new List<JournalRecordInfo>();
        var end = RecordsEnd(entry);
        var at = HeaderSize;
        while (end - at >= RecordHeaderSize)
        {
            var header = entry.Slice(at, RecordHeaderSize);
            var bytes = BinaryPrimitives.ReadUInt32LittleEndian(header[RecordBytesOffset..]);
            records.Add(new JournalRecordInfo(at, bytes, header[RecordTypeOffset], header[RecordBtreeOffset], header[RecordLevelOffset]));
            if (bytes < RecordHeaderSize || bytes % 8 != 0 || bytes > end - at)
                break;
            at += (int)bytes;
        }
        return records;
    }

    /// <summary>The checksum the entry's checksum type computes over its checksummed bytes; null when it cannot be computed.</summary>
    public static ulong? ComputeChecksum(ReadOnlySpan<byte> entry)
    {
        if (entry.Length < HeaderSize)
            return null;
        var type = entry[ChecksumTypeOffset];
        var payload = BinaryPrimitives.ReadUInt32LittleEndian(entry[PayloadBytesOffset..]);
        if (!JournalHeaderChecks.IsEntryChecksumType(type) || HeaderSize + (long)payload > entry.Length)
            return null;
        return Checksums.Compute((ChecksumType)type, entry[ChecksummedFrom..(HeaderSize + (int)payload)]);
    }

    /// <summary>Recomputes and stores the entry's checksum. False (nothing written) when it cannot be computed.</summary>
    public static bool RecomputeChecksum(Span<byte> entry)
    {
        if (ComputeChecksum(entry) is not { } checksum)
            return false;
        BinaryPrimitives.WriteUInt64LittleEndian(entry[ChecksumOffset..], checksum);
        return true;
    }

    /// <summary>
    /// The entries of an earlier lap in <paramref name="bucket"/> (a whole ring bucket): the first
    /// good entry at or after <paramref name="from"/> (a block boundary; where the current lap's
    /// entries end) older than <paramref name="newestSeq"/>, the current lap's newest, and the good
    /// entries that follow it. Null when there are none. Never throws.
    /// </summary>
    public static EarlierLapRun? EarlierLap(ReadOnlySpan<byte> bucket, int from, ulong newestSeq, in JournalReadContext context)
    {
        if (newestSeq == 0 || from < 0 || context.BlockSize <= 0)
            return null;
        for (var at = from; at + HeaderSize <= bucket.Length; at += context.BlockSize)
        {
            if (BinaryPrimitives.ReadUInt64LittleEndian(bucket[(at + MagicOffset)..]) != context.Magic)
                continue;
            var first = JournalEntryReader.Read(bucket[at..], context);
            if (first.Status != JournalEntryStatus.Good)
                continue;
            if (first.Entry!.Seq >= newestSeq)
                return null;
            var run = new EarlierLapRun(at, 0, first.Entry.Seq, first.Entry.Seq, 0);
            var next = at;
            while (next + HeaderSize <= bucket.Length)
            {
                var r = JournalEntryReader.Read(bucket[next..], context);
                if (r.Status != JournalEntryStatus.Good || r.Entry!.Seq >= newestSeq)
                    break;
                next += r.Entry.DiskBytes;
                run = run with
                {
                    Entries = run.Entries + 1,
                    FirstSeq = Math.Min(run.FirstSeq, r.Entry.Seq),
                    LastSeq = Math.Max(run.LastSeq, r.Entry.Seq),
                    Bytes = next - at,
                };
            }
            return run;
        }
        return null;
    }

    /// <summary>
    /// Whether an entry whose magic was changed starts at <paramref name="data"/>: the magic is not
    /// the filesystem's, but with the filesystem's magic put back the entry reads as good (the
    /// checksum covers the magic, so this does not match by chance). Never throws.
    /// </summary>
    public static bool HasDamagedMagic(ReadOnlySpan<byte> data, in JournalReadContext context, out ulong seq, out ulong magic)
    {
        seq = 0;
        magic = data.Length >= HeaderSize ? BinaryPrimitives.ReadUInt64LittleEndian(data[MagicOffset..]) : 0;
        if (data.Length < HeaderSize || magic == context.Magic)
            return false;
        var payload = BinaryPrimitives.ReadUInt32LittleEndian(data[PayloadBytesOffset..]);
        if (payload % 8 != 0 || HeaderSize + (long)payload > Math.Min(data.Length, MaxEntryBytes))
            return false;
        var copy = data[..(HeaderSize + (int)payload)].ToArray();
        BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(MagicOffset), context.Magic);
        var read = JournalEntryReader.Read(copy, context);
        if (read.Status != JournalEntryStatus.Good)
            return false;
        seq = read.Entry!.Seq;
        return true;
    }
}
