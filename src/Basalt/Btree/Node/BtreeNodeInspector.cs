// A raw view of a node slot for `basalt debug corrupt`, `list` and tests: walks the records
// without validating them, names every header field with its offset and size, and recomputes
// checksums so a deliberate corruption can carry a valid checksum (`--fix-csum`). The reader is
// the only judge of validity; nothing here decides whether a node is good.
using System.Buffers.Binary;
using Basalt.Btree.Node;
using Basalt.Format;
using static Basalt.Btree.Node.BtreeNodeFormat;

namespace Basalt.Btree.Node;

/// <summary>A named on-disk field: its offset (relative to the structure named in the table) and size in bytes.</summary>
public readonly record struct NodeField(string Name, int Offset, int Size);

/// <summary>One encoded key inside a record, as found (unvalidated).</summary>
/// <param name="Offset">Byte offset of the key in the slot.</param>
/// <param name="Size">The key's length in bytes from its u64s field.</param>
public readonly record struct NodeKeyInfo(int Offset, int Size, Bkey Key, int ValuePad, int ValueLength);

/// <summary>One record (first record or node entry) as found in a slot, unvalidated.</summary>
public sealed record NodeRecordInfo
{
    /// <summary>Byte offset of the record in the slot (its checksum field).</summary>
    public required int Offset { get; init; }
    public required bool IsFirst { get; init; }
    /// <summary>Byte offset of the bset header in the slot.</summary>
    public required int BsetOffset { get; init; }
    /// <summary>Byte offset of the first key in the slot.</summary>
    public required int KeysOffset { get; init; }
    /// <summary>Header + keys in bytes (unpadded), from u64s.</summary>
    public required long Length { get; init; }
    public required ulong Seq { get; init; }
    public required ulong JournalSeq { get; init; }
    public required ushort Version { get; init; }
    public required byte ChecksumType { get; init; }
    public required byte Flags { get; init; }
    public required ushort SectorOffsetField { get; init; }
    public required uint U64s { get; init; }
    public required ulong StoredChecksum { get; init; }
    /// <summary>Null when the checksum cannot be computed (unknown type, record past the slot).</summary>
    public required ulong? ComputedChecksum { get; init; }
    /// <summary>Set for the first record.</summary>
    public NodeHeader? Header { get; init; }
    public ulong? Magic { get; init; }
    public required IReadOnlyList<NodeKeyInfo> Keys { get; init; }

    public bool ChecksumMatches => ComputedChecksum == StoredChecksum;

    public string ToText()
    {
        var csum = ComputedChecksum is { } c
            ? (c == StoredChecksum ? $"csum {StoredChecksum:x16} ok" : $"csum {StoredChecksum:x16} BAD (computed {c:x16})")
            : $"csum {StoredChecksum:x16} (not computable)";
        var head = Header is { } h ? $" magic {Magic:x16} {h.ToText()}" : "";
        return $"record at byte {Offset}{head} bset seq {Seq:x16} journal_seq {JournalSeq} " +
            $"version {Version} {((ChecksumType)ChecksumType).ToText()} offset {SectorOffsetField * FormatLimits.SectorSize} u64s {U64s} {Keys.Count} keys {csum}";
    }
}

public static class BtreeNodeInspector
{
    /// <summary>Node header fields, offsets from the start of the slot.</summary>
    public static IReadOnlyList<NodeField> NodeHeaderFields { get; } =
    [
        new("csum", NodeChecksumOffset, 8),
        new("magic", NodeMagicOffset, 8),
        new("seq", NodeSeqOffset, 8),
        new("btree_id", NodeBtreeIdOffset, 1),
        new("level", NodeLevelOffset, 1),
        new("flags", NodeFlagsOffset, 2),
        new("generation", NodeGenerationOffset, 4),
        new("min_key", NodeMinKeyOffset, Bpos.SizeOf),
        new("max_key", NodeMaxKeyOffset, Bpos.SizeOf),
        new("reserved", NodeReservedOffset, 8),
    ];

    /// <summary>Node entry fields (records after the first), offsets from the record start.</summary>
    public static IReadOnlyList<NodeField> NodeEntryFields { get; } = [new("csum", EntryChecksumOffset, 8)];

    /// <summary>Bset header fields, offsets from the bset header start.</summary>
    public static IReadOnlyList<NodeField> BsetHeaderFields { get; } =
    [
        new("seq", BsetSeqOffset, 8),
        new("journal_seq", BsetJournalSeqOffset, 8),
        new("version", BsetVersionOffset, 2),
        new("csum_type", BsetChecksumTypeOffset, 1),
        new("flags", BsetFlagsOffset, 1),
        new("offset", BsetSectorOffsetOffset, 2),
        new("reserved1", BsetReserved1Offset, 2),
        new("u64s", BsetU64sOffset, 4),
        new("reserved2", BsetReserved2Offset, 4),
    ];

    /// <summary>Key header fields, offsets from the key start.</summary>
    public static IReadOnlyList<NodeField> KeyHeaderFields { get; } =
    [
        new("u64s", BkeyFormat.U64sOffset, 2),
        new("type", BkeyFormat.TypeOffset, 1),
        new("value_pad", BkeyFormat.ValuePadOffset, 1),
        new("size", BkeyFormat.SizeOffset, 4),
        new("pos", BkeyFormat.PosOffset, Bpos.SizeOf),
        new("pos.inode", BkeyFormat.PosOffset + Bpos.InodeOffset, 8),
        new("pos.offset", BkeyFormat.PosOffset + Bpos.OffsetOffset, 8),
        new("pos.snapshot", BkeyFormat.PosOffset + Bpos.SnapshotOffset, 4),
        new("reserved", BkeyFormat.ReservedOffset, 4),
    ];

    /// <summary>Looks a field up by name in one of the tables above (case-insensitive).</summary>
    public static NodeField Field(IReadOnlyList<NodeField> table, string name)
    {
        ArgumentNullException.ThrowIfNull(table);
        foreach (var f in table)
        {
            if (string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase))
                return f;
        }
        throw new ArgumentException($"no field '{name}' (fields: {string.Join(", ", table.Select(f => f.Name))})", nameof(name));
    }

    /// <summary>
    /// Resolves a field path to its slot offset and size, for <c>basalt debug corrupt</c>:
    /// <c>node.FIELD</c> (node header), <c>record.R.csum</c> (checksum of record R),
    /// <c>bset.R.FIELD</c> (bset header of record R), <c>key.R.K.FIELD</c> (key K of record R);
    /// records are numbered as <see cref="Walk"/> lists them, from 0. False with a reason when the
    /// path names nothing in this slot.
    /// </summary>
    public static bool TryLocate(ReadOnlySpan<byte> slot, string path, out NodeField located, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(path);
        located = default;
        var parts = path.Split('.', 2);
        if (parts.Length != 2)
            return Fail($"'{path}': expected node.FIELD, record.R.csum, bset.R.FIELD or key.R.K.FIELD", out problem);
        if (parts[0] == "node")
            return Resolve(NodeHeaderFields, parts[1], 0, path, out located, out problem);
        var records = Walk(slot);
        var rest = parts[1].Split('.', 2);
        if (rest.Length != 2 || !int.TryParse(rest[0], out var r) || r < 0 || r >= records.Count)
            return Fail($"'{path}': no record '{rest[0]}' (the slot has {records.Count})", out problem);
        var record = records[r];
        switch (parts[0])
        {
            case "record":
                return Resolve(record.IsFirst ? NodeHeaderFields : NodeEntryFields, rest[1], record.Offset, path, out located, out problem)
                    && (rest[1] == "csum" || Fail($"'{path}': a record only has csum (use node. or bset.)", out problem));
            case "bset":
                return Resolve(BsetHeaderFields, rest[1], record.BsetOffset, path, out located, out problem);
            case "key":
                var keyParts = rest[1].Split('.', 2);
                if (keyParts.Length != 2 || !int.TryParse(keyParts[0], out var k) || k < 0 || k >= record.Keys.Count)
                    return Fail($"'{path}': no key '{keyParts[0]}' in record {r} (it has {record.Keys.Count})", out problem);
                return Resolve(KeyHeaderFields, keyParts[1], record.Keys[k].Offset, path, out located, out problem);
            default:
                return Fail($"'{path}': unknown structure '{parts[0]}' (node, record, bset, key)", out problem);
        }
    }

    private static bool Resolve(IReadOnlyList<NodeField> table, string name, int baseOffset, string path, out NodeField located, out string? problem)
    {
        foreach (var f in table)
        {
            if (string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                located = f with { Name = path, Offset = baseOffset + f.Offset };
                problem = null;
                return true;
            }
        }
        located = default;
        return Fail($"'{path}': no field '{name}' (fields: {string.Join(", ", table.Select(f => f.Name))})", out problem);
    }

    private static bool Fail(string message, out string? problem)
    {
        problem = message;
        return false;
    }

    /// <summary>
    /// Lists the records of the node in <paramref name="slot"/> without validating: the first record
    /// at offset 0, then every later sector-aligned record whose bset seq equals the node's seq
    /// (records beyond sectors_written included). Never throws for any content.
    /// </summary>
    public static IReadOnlyList<NodeRecordInfo> Walk(ReadOnlySpan<byte> slot)
    {
        var records = new List<NodeRecordInfo>();
        if (slot.Length < FirstKeysOffset)
            return records;
        var first = Describe(slot, 0);
        records.Add(first);
        var seq = first.Seq;
        var next = NextSearchStart(slot, first);
        for (var offset = next; offset + EntryKeysOffset <= slot.Length; offset += FormatLimits.SectorSize)
        {
            if (offset < next || BinaryPrimitives.ReadUInt64LittleEndian(slot[(offset + EntryBsetOffset + BsetSeqOffset)..]) != seq)
                continue;
            var record = Describe(slot, offset);
            records.Add(record);
            next = NextSearchStart(slot, record);
        }
        return records;
    }

    /// <summary>Describes the record at <paramref name="recordOffset"/> (0 = the first record) without validating it.</summary>
    public static NodeRecordInfo Describe(ReadOnlySpan<byte> slot, int recordOffset)
    {
        var isFirst = recordOffset == 0;
        var bsetOffset = recordOffset + BsetOffsetIn(isFirst);
        var keysOffset = recordOffset + KeysOffsetIn(isFirst);
        if (recordOffset < 0 || keysOffset > slot.Length)
            throw new ArgumentOutOfRangeException(nameof(recordOffset), $"no record header fits at {recordOffset} in a slot of {slot.Length} bytes");
        var bset = slot.Slice(bsetOffset, BsetHeaderSize);
        var u64s = BinaryPrimitives.ReadUInt32LittleEndian(bset[BsetU64sOffset..]);
        var keysEnd = keysOffset + ((long)u64s * 8);
        var type = bset[BsetChecksumTypeOffset];
        ulong? computed = IsNodeChecksumType(type) && keysEnd <= slot.Length
            ? Checksums.Compute((ChecksumType)type, slot[(recordOffset + ChecksumStart)..(int)keysEnd])
            : null;
        return new NodeRecordInfo
        {
            Offset = recordOffset,
            IsFirst = isFirst,
            BsetOffset = bsetOffset,
            KeysOffset = keysOffset,
            Length = keysEnd - recordOffset,
            Seq = BinaryPrimitives.ReadUInt64LittleEndian(bset[BsetSeqOffset..]),
            JournalSeq = BinaryPrimitives.ReadUInt64LittleEndian(bset[BsetJournalSeqOffset..]),
            Version = BinaryPrimitives.ReadUInt16LittleEndian(bset[BsetVersionOffset..]),
            ChecksumType = type,
            Flags = bset[BsetFlagsOffset],
            SectorOffsetField = BinaryPrimitives.ReadUInt16LittleEndian(bset[BsetSectorOffsetOffset..]),
            U64s = u64s,
            StoredChecksum = BinaryPrimitives.ReadUInt64LittleEndian(slot[recordOffset..]),
            ComputedChecksum = computed,
            Header = isFirst ? ReadNodeHeader(slot) : null,
            Magic = isFirst ? BinaryPrimitives.ReadUInt64LittleEndian(slot[NodeMagicOffset..]) : null,
            Keys = ListKeys(slot, keysOffset, (int)Math.Min(keysEnd, slot.Length)),
        };
    }

    /// <summary>Recomputes and stores the checksum of the record at <paramref name="recordOffset"/>. False when it cannot be computed.</summary>
    public static bool RecomputeChecksum(Span<byte> slot, int recordOffset)
    {
        var isFirst = recordOffset == 0;
        if (recordOffset < 0 || recordOffset + KeysOffsetIn(isFirst) > slot.Length)
            return false;
        var bset = slot.Slice(recordOffset + BsetOffsetIn(isFirst), BsetHeaderSize);
        var type = bset[BsetChecksumTypeOffset];
        var keysEnd = recordOffset + KeysOffsetIn(isFirst) + ((long)BinaryPrimitives.ReadUInt32LittleEndian(bset[BsetU64sOffset..]) * 8);
        if (!IsNodeChecksumType(type) || keysEnd > slot.Length)
            return false;
        var checksum = Checksums.Compute((ChecksumType)type, slot[(recordOffset + ChecksumStart)..(int)keysEnd]);
        BinaryPrimitives.WriteUInt64LittleEndian(slot[recordOffset..], checksum);
        return true;
    }

    /// <summary>Recomputes the checksum of every record <see cref="Walk"/> finds; returns how many were rewritten.</summary>
    public static int RecomputeAllChecksums(Span<byte> slot)
    {
        var done = 0;
        foreach (var record in Walk(slot))
        {
            if (RecomputeChecksum(slot, record.Offset))
                done++;
        }
        return done;
    }

    // Where to look for the next record: after this one when its length is plausible, otherwise
    // the next sector (so records after a damaged length field are still listed).
    private static int NextSearchStart(ReadOnlySpan<byte> slot, NodeRecordInfo record)
    {
        var end = record.Offset + record.Length;
        return end <= slot.Length ? (int)RoundUp(end, FormatLimits.SectorSize) : record.Offset + FormatLimits.SectorSize;
    }

    private static List<NodeKeyInfo> ListKeys(ReadOnlySpan<byte> slot, int start, int end)
    {
        var keys = new List<NodeKeyInfo>();
        var at = start;
        while (end - at >= BkeyFormat.HeaderSize)
        {
            var view = new BkeyView(slot[at..end]);
            var size = view.TotalBytes;
            keys.Add(new NodeKeyInfo(at, size, view.Key, view.ValuePad, view.ValueLength));
            if (size < BkeyFormat.HeaderSize)
                break;
            at += size;
        }
        return keys;
    }
}
