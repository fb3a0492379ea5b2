// One journal entry, in memory: the open entry commits are appended to (JournalEntryBuilder), the
// decoded form recovery works with (JournalEntry, JournalRecord), and the reader that validates
// an entry found on disk (JournalEntryReader). The reader has the shape of BtreeNodeReader:
// identity (magic), then the one length field bounded against the space left, then the checksum
// over exactly that length, then the header, then every record; it never throws for any bytes,
// and each problem is a finding with a catalogue id.
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Format;
using static Basalt.Journal.JournalFormat;

namespace Basalt.Journal;

/// <summary>One record of an entry: its type, btree and level, and its payload.</summary>
public readonly record struct JournalRecord(JournalRecordType Type, BtreeId Btree, byte Level, ReadOnlyMemory<byte> Payload)
{
    /// <summary>The keys of a btree_keys record, in the order they were committed.</summary>
    public IEnumerable<BtreeUpdate> Keys()
    {
        var at = 0;
        while (at < Payload.Length)
        {
            var view = new BkeyView(Payload.Span[at..]);
            var total = view.TotalBytes;
            var key = view.Key;
            var valueLength = view.ValueLength;
            yield return new BtreeUpdate(Btree, Level, key, Payload.Slice(at + BkeyFormat.HeaderSize, valueLength));
            at += total;
        }
    }

    /// <summary>The root of a btree_root record; null when it says the btree has no root.</summary>
    public BtreeRoot? Root() =>
        Payload.Length > 0 && BtreePtrValue.TryRead(Payload.Span, out var ptr, out _) ? new BtreeRoot(Btree, Level, ptr) : null;

    public SeqRange Blacklist() =>
        new(BinaryPrimitives.ReadUInt64LittleEndian(Payload.Span), BinaryPrimitives.ReadUInt64LittleEndian(Payload.Span[8..]));

    public DateTimeOffset Time() =>
        DateTimeOffset.UnixEpoch.AddTicks(Math.Clamp(BinaryPrimitives.ReadInt64LittleEndian(Payload.Span) / 100,
            (DateTimeOffset.MinValue - DateTimeOffset.UnixEpoch).Ticks, (DateTimeOffset.MaxValue - DateTimeOffset.UnixEpoch).Ticks));

    public string ToText() => Type switch
    {
        JournalRecordType.BtreeKeys => $"btree_keys {Btree.ToText()} level {Level}: {Keys().Count()} keys",
        JournalRecordType.BtreeRoot => Root() is { } r ? $"btree_root {Btree.ToText()} level {Level} {r.Ptr.ToText()}" : $"btree_root {Btree.ToText()}: none",
        JournalRecordType.Blacklist => $"blacklist {Blacklist().ToText()}",
        JournalRecordType.Datetime => $"datetime {Time().UtcDateTime:yyyy-MM-dd HH:mm:ss.fff}Z",
        JournalRecordType.LevelsVoided => $"levels_voided {Btree.ToText()} from level {Level}",
        _ => $"record type {(byte)Type}",
    };
}

/// <summary>Where an entry sits: the ring bucket index, the bucket number and the byte offset on the device.</summary>
public readonly record struct JournalLocation(int RingIndex, ulong Bucket, long Offset)
{
    public string ToText() => $"bucket {Bucket} (ring index {RingIndex}) at byte {Offset}";
}

/// <summary>A decoded, validated journal entry.</summary>
public sealed record JournalEntry
{
    public required ulong Seq { get; init; }
    public required ulong LastSeq { get; init; }
    public required JournalEntryFlags Flags { get; init; }
    public required ushort Version { get; init; }
    public required ChecksumType ChecksumType { get; init; }

    /// <summary>Bytes on disk, block padded.</summary>
    public required int DiskBytes { get; init; }

    public required IReadOnlyList<JournalRecord> Records { get; init; }

    public JournalLocation Location { get; init; }

    public bool IsFlush => (Flags & JournalEntryFlags.NoFlush) == 0;

    public int KeyCount => Records.Where(r => r.Type == JournalRecordType.BtreeKeys).Sum(r => r.Keys().Count());

    public string ToText() =>
        $"seq {Seq} {(IsFlush ? "flush" : "no-flush")} last_seq {LastSeq} version {Version} {ChecksumType.ToText()} {DiskBytes} bytes at {Location.ToText()}: " +
        $"{Records.Count} records, {KeyCount} keys";
}

/// <summary>What the reader found at one offset.</summary>
public enum JournalEntryStatus
{
    /// <summary>No entry of this filesystem starts here (the end of a bucket's entries).</summary>
    NoEntry,
    /// <summary>The header's length or checksum type cannot be trusted: nothing here can be used.</summary>
    BadHeader,
    /// <summary>The checksum does not match: a torn or damaged entry.</summary>
    BadChecksum,
    /// <summary>Checksum good but a header field or record is invalid: the entry is not used.</summary>
    Invalid,
    Good,
}

/// <summary>The outcome of reading one entry.</summary>
public readonly record struct JournalEntryReadResult(JournalEntryStatus Status, ulong HeaderSeq, int DiskBytes, JournalEntry? Entry,
    FsckErrorId? Finding, string Detail);

/// <summary>What the reader checks an entry against.</summary>
public readonly record struct JournalReadContext(ulong Magic, int BlockSize, int NodeSize);

public static class JournalEntryReader
{
    /// <summary>
    /// Reads the entry that starts at the beginning of <paramref name="data"/>, which runs to the
    /// end of its bucket. Never throws.
    /// </summary>
    public static JournalEntryReadResult Read(ReadOnlySpan<byte> data, in JournalReadContext context)
    {
        if (data.Length < HeaderSize)
            return new(JournalEntryStatus.NoEntry, 0, 0, null, null, "no room for an entry header");
        if (BinaryPrimitives.ReadUInt64LittleEndian(data[MagicOffset..]) != context.Magic)
            return new(JournalEntryStatus.NoEntry, 0, 0, null, null, "no journal entry magic");
        var seq = BinaryPrimitives.ReadUInt64LittleEndian(data[SeqOffset..]);
        var csumType = data[ChecksumTypeOffset];
        var payload = BinaryPrimitives.ReadUInt32LittleEndian(data[PayloadBytesOffset..]);
        if (!JournalHeaderChecks.IsEntryChecksumType(csumType))
            return Bad(JournalEntryStatus.BadHeader, seq, 0, FsckErrorId.JournalEntryBadHeader, $"unknown checksum type {csumType}");
        if (payload % 8 != 0 || HeaderSize + (long)payload > Math.Min(data.Length, MaxEntryBytes))
        {
            return Bad(JournalEntryStatus.BadHeader, seq, 0, FsckErrorId.JournalEntryBadHeader,
                $"payload of {payload} bytes runs past the end of the bucket ({data.Length - HeaderSize} bytes left)");
        }
        var end = HeaderSize + (int)payload;
        var diskBytes = (int)Math.Min(RoundUp(end, context.BlockSize), data.Length);
        var stored = BinaryPrimitives.ReadUInt64LittleEndian(data[ChecksumOffset..]);
        var computed = Checksums.Compute((ChecksumType)csumType, data[ChecksummedFrom..end]);
        if (stored != computed)
        {
            return Bad(JournalEntryStatus.BadChecksum, seq, diskBytes, FsckErrorId.JournalEntryBadChecksum,
                $"{((ChecksumType)csumType).ToText()} checksum {stored:x16}, computed {computed:x16}");
        }

        var version = BinaryPrimitives.ReadUInt16LittleEndian(data[VersionOffset..]);
        var flags = data[FlagsOffset];
        var lastSeq = BinaryPrimitives.ReadUInt64LittleEndian(data[LastSeqOffset..]);
        if (seq == 0)
            return Bad(JournalEntryStatus.Invalid, seq, diskBytes, FsckErrorId.JournalEntryBadHeader, "seq 0");
        if (version > FormatVersion.Current || version < FormatVersion.Min)
        {
            return Bad(JournalEntryStatus.Invalid, seq, diskBytes, FsckErrorId.JournalEntryBadHeader,
                $"written by format version {version}; this build reads {FormatVersion.Min}..{FormatVersion.Current}");
        }
        if ((flags & ~(byte)JournalEntryFlags.NoFlush) != 0 || data.Slice(ReservedOffset, ReservedSize).IndexOfAnyExcept((byte)0) >= 0)
            return Bad(JournalEntryStatus.Invalid, seq, diskBytes, FsckErrorId.JournalEntryBadHeader, $"unknown flags {flags:x2} or reserved bytes set");
        var records = new List<JournalRecord>();
        var copy = data[HeaderSize..end].ToArray();
        var at = 0;
        while (at < copy.Length)
        {
            if (!TryReadRecord(copy, at, context, out var record, out var length, out var problem))
                return Bad(JournalEntryStatus.Invalid, seq, diskBytes, FsckErrorId.JournalEntryBadRecord, $"record at byte {HeaderSize + at}: {problem}");
            records.Add(record);
            at += length;
        }
        var entry = new JournalEntry
        {
            Seq = seq,
            // A flush entry's last_seq past its own seq is repaired by reading it as its own seq.
            LastSeq = Math.Min(lastSeq, seq),
            Flags = (JournalEntryFlags)flags,
            Version = version,
            ChecksumType = (ChecksumType)csumType,
            DiskBytes = diskBytes,
            Records = records,
        };
        if (lastSeq > seq)
        {
            return new(JournalEntryStatus.Good, seq, diskBytes, entry, FsckErrorId.JournalLastSeqNewerThanSeq,
                $"last_seq {lastSeq} is newer than the entry's own seq {seq}: read as {seq}");
        }
        return new(JournalEntryStatus.Good, seq, diskBytes, entry, null, "");
    }

    private static JournalEntryReadResult Bad(JournalEntryStatus status, ulong seq, int diskBytes, FsckErrorId id, string detail) =>
        new(status, seq, diskBytes, null, id, detail);

    private static bool TryReadRecord(byte[] payload, int at, in JournalReadContext context, out JournalRecord record, out int length, out string problem)
    {
        record = default;
        length = 0;
        var span = payload.AsSpan(at);
        if (span.Length < RecordHeaderSize)
        {
            problem = "no room for a record header";
            return false;
        }
        var bytes = BinaryPrimitives.ReadUInt32LittleEndian(span[RecordBytesOffset..]);
        if (bytes < RecordHeaderSize || bytes % 8 != 0 || bytes > span.Length)
        {
            problem = $"length {bytes} (the entry has {span.Length} bytes left)";
            return false;
        }
        length = (int)bytes;
        var type = span[RecordTypeOffset];
        var btree = span[RecordBtreeOffset];
        var level = span[RecordLevelOffset];
        if (!JournalRecordTypes.IsKnown(type) || span[RecordReservedOffset] != 0)
        {
            problem = $"unknown record type {type}";
            return false;
        }
        var body = payload.AsMemory(at + RecordHeaderSize, length - RecordHeaderSize);
        record = new JournalRecord((JournalRecordType)type, (BtreeId)btree, level, body);
        switch ((JournalRecordType)type)
        {
            case JournalRecordType.BtreeKeys:
                return CheckKeys(record, context, out problem);
            case JournalRecordType.BtreeRoot:
                if (!BtreeIds.IsKnown(btree) || level > FormatLimits.MaxBtreeLevel)
                {
                    problem = $"root of btree {btree} at level {level}";
                    return false;
                }
                if (body.Length > 0 && !BtreePtrValue.TryRead(body.Span, out _, out var why))
                {
                    problem = $"root of {((BtreeId)btree).ToText()}: {why}";
                    return false;
                }
                problem = "";
                return true;
            case JournalRecordType.LevelsVoided:
                if (!BtreeIds.IsKnown(btree) || level > FormatLimits.MaxBtreeLevel || body.Length != 0)
                {
                    problem = $"levels_voided record of btree {btree} level {level} with {body.Length} payload bytes";
                    return false;
                }
                problem = "";
                return true;
            case JournalRecordType.Blacklist:
                if (body.Length != BlacklistPayloadSize || record.Blacklist().First > record.Blacklist().Last)
                {
                    problem = "blacklist record is not one seq range";
                    return false;
                }
                problem = "";
                return true;
            default:
                if (body.Length != DatetimePayloadSize)
                {
                    problem = "datetime record of the wrong size";
                    return false;
                }
                problem = "";
                return true;
        }
    }

    private static bool CheckKeys(in JournalRecord record, in JournalReadContext context, out string problem)
    {
        if (!BtreeIds.IsKnown((byte)record.Btree) || record.Level > FormatLimits.MaxBtreeLevel)
        {
            problem = $"keys of btree {(byte)record.Btree} at level {record.Level}";
            return false;
        }
        var span = record.Payload.Span;
        var at = 0;
        while (at < span.Length)
        {
            if (span.Length - at < BkeyFormat.HeaderSize)
            {
                problem = $"key at payload byte {at}: no room for a key header";
                return false;
            }
            var view = new BkeyView(span[at..]);
            if (!view.IsWellFormed(span.Length - at) || view.Reserved != 0 || span.Slice(at + BkeyFormat.HeaderSize + view.ValueLength, view.ValuePad).IndexOfAnyExcept((byte)0) >= 0)
            {
                problem = $"key at payload byte {at}: malformed key header";
                return false;
            }
            var key = view.Key;
            if (!KeyValidation.ValidateJournalKey(record.Btree, record.Level, key, view.Value, context.NodeSize, out var id, out var detail))
            {
                problem = $"key {key.ToText()}: {FsckCatalogue.NameOf(id)}: {detail}";
                return false;
            }
            at += view.TotalBytes;
        }
        problem = "";
        return true;
    }
}

/// <summary>
/// The entry being filled: records appended by commits, then sealed (header, checksum, zero
/// padding to the block size) into one write. Its buffer comes from the shared pool.
/// </summary>
internal sealed class JournalEntryBuilder : IDisposable
{
    private byte[]? _buffer;
    private int _end = HeaderSize;
    private int _recordStart = -1;
    private BtreeId _recordBtree;
    private byte _recordLevel;

    public JournalEntryBuilder(ulong seq, int capacity)
    {
        Seq = seq;
        Capacity = capacity;
        _buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(capacity);
    }

    public ulong Seq { get; }

    /// <summary>The ring bucket this entry is written to.</summary>
    public int RingIndex { get; init; }

    /// <summary>Byte offset of the entry inside its bucket (a block boundary).</summary>
    public int Offset { get; init; }

    private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(JournalEntryBuilder));

    /// <summary>Bytes the entry may take on disk (header and records, before block padding).</summary>
    public int Capacity { get; }

    /// <summary>Header plus records so far.</summary>
    public int Used => _end;

    /// <summary>Commits appended (a commit may be empty of keys: a root change).</summary>
    public int Commits { get; set; }

    public int Free => Capacity - _end;

    public ReadOnlySpan<byte> Sealed(int diskBytes) => Buffer.AsSpan(0, diskBytes);

    /// <summary>Bytes the entry takes on disk once closed (header and records, block padded).</summary>
    public int DiskBytesFor(int blockSize) => DiskBytes(_end - HeaderSize, blockSize);

    public void Dispose()
    {
        if (_buffer is { } b)
            System.Buffers.ArrayPool<byte>.Shared.Return(b);
        _buffer = null;
    }

    /// <summary>Appends a key to the open btree_keys record of (btree, level), starting a new record when they change.</summary>
    public void AppendKey(BtreeId btree, byte level, in Bkey key, ReadOnlySpan<byte> value)
    {
        if (_recordStart < 0 || _recordBtree != btree || _recordLevel != level)
            StartRecord(JournalRecordType.BtreeKeys, btree, level);
        _end += BkeyFormat.Write(Buffer.AsSpan(_end), key, value);
        BinaryPrimitives.WriteUInt32LittleEndian(Buffer.AsSpan(_recordStart + RecordBytesOffset), (uint)(_end - _recordStart));
    }

    public void AppendRoot(BtreeId btree, BtreeRoot? root)
    {
        CloseRecord();
        var value = root?.Ptr.ToBytes() ?? [];
        var start = _end;
        WriteRecordHeader(start, RootRecordBytes(value.Length), JournalRecordType.BtreeRoot, btree, root?.Level ?? 0);
        value.CopyTo(Buffer.AsSpan(start + RecordHeaderSize));
        _end = start + RootRecordBytes(value.Length);
    }

    public void AppendLevelsVoided(BtreeId btree, byte level)
    {
        CloseRecord();
        WriteRecordHeader(_end, RecordHeaderSize, JournalRecordType.LevelsVoided, btree, level);
        _end += RecordHeaderSize;
    }

    public void AppendBlacklist(SeqRange range)
    {
        CloseRecord();
        WriteRecordHeader(_end, RecordHeaderSize + BlacklistPayloadSize, JournalRecordType.Blacklist, 0, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(Buffer.AsSpan(_end + RecordHeaderSize), range.First);
        BinaryPrimitives.WriteUInt64LittleEndian(Buffer.AsSpan(_end + RecordHeaderSize + 8), range.Last);
        _end += RecordHeaderSize + BlacklistPayloadSize;
    }

    public void AppendDatetime(DateTimeOffset time)
    {
        CloseRecord();
        WriteRecordHeader(_end, RecordHeaderSize + DatetimePayloadSize, JournalRecordType.Datetime, 0, 0);
        var ticks = (time - DateTimeOffset.UnixEpoch).Ticks;
        BinaryPrimitives.WriteInt64LittleEndian(Buffer.AsSpan(_end + RecordHeaderSize), ticks > long.MaxValue / 100 ? long.MaxValue : ticks * 100);
        _end += RecordHeaderSize + DatetimePayloadSize;
    }

    /// <summary>Ends the current key record so the next key starts a new one.</summary>
    public void CloseRecord() => _recordStart = -1;

    /// <summary>Writes the header and checksum and zero-pads to the block size; returns the bytes to write.</summary>
    public int Seal(ulong magic, ulong lastSeq, bool noFlush, ChecksumType checksumType, ushort version, int blockSize)
    {
        CloseRecord();
        var diskBytes = DiskBytes(_end - HeaderSize, blockSize);
        if (diskBytes > Capacity)
            throw new InvalidOperationException($"journal entry {Seq}: {diskBytes} bytes exceed its room of {Capacity}");
        var header = Buffer.AsSpan(0, HeaderSize);
        header.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(header[MagicOffset..], magic);
        BinaryPrimitives.WriteUInt64LittleEndian(header[SeqOffset..], Seq);
        BinaryPrimitives.WriteUInt64LittleEndian(header[LastSeqOffset..], lastSeq);
        BinaryPrimitives.WriteUInt16LittleEndian(header[VersionOffset..], version);
        header[ChecksumTypeOffset] = (byte)checksumType;
        header[FlagsOffset] = (byte)(noFlush ? JournalEntryFlags.NoFlush : JournalEntryFlags.None);
        BinaryPrimitives.WriteUInt32LittleEndian(header[PayloadBytesOffset..], (uint)(_end - HeaderSize));
        Buffer.AsSpan(_end, diskBytes - _end).Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(header[ChecksumOffset..], Checksums.Compute(checksumType, Buffer.AsSpan(ChecksummedFrom, _end - ChecksummedFrom)));
        return diskBytes;
    }

    private void StartRecord(JournalRecordType type, BtreeId btree, byte level)
    {
        _recordStart = _end;
        _recordBtree = btree;
        _recordLevel = level;
        WriteRecordHeader(_end, RecordHeaderSize, type, btree, level);
        _end += RecordHeaderSize;
    }

    private void WriteRecordHeader(int at, int bytes, JournalRecordType type, BtreeId btree, byte level)
    {
        var h = Buffer.AsSpan(at, RecordHeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(h[RecordBytesOffset..], (uint)bytes);
        h[RecordTypeOffset] = (byte)type;
        h[RecordBtreeOffset] = (byte)btree;
        h[RecordLevelOffset] = level;
        h[RecordReservedOffset] = 0;
    }
}
