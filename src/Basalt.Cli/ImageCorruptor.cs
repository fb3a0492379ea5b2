// The machinery behind `basalt debug corrupt` (and the demo's damage step): picks a target
// deterministically from a seed, changes one named on-disk field, and says exactly what it did.
//
// Nodes are found by walking the btrees from the superblock's roots over raw slots with
// BtreeNodeInspector: no validation, no engine, so a damaged image can be damaged further and
// the walk never trusts a checksum. Within a node only the records below the parent pointer's
// sectors_written count (those are the node's content; anything after is a crash trace).
// --fix-csum recomputes the checksum of the record (or superblock copy) that was changed, so a
// corruption can pass the checksum and reach the validation behind it.
using System.Buffers.Binary;
using System.Globalization;
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Superblocks;

namespace Basalt.Cli;

internal enum CorruptTarget
{
    Node,
    Bset,
    Key,
    Superblock,
}

internal enum CorruptMode
{
    Zero,
    Ones,
    Random,
    Bitflip,
}

internal sealed record CorruptRequest
{
    public required CorruptTarget Target { get; init; }
    public BtreeId? Btree { get; init; }
    public int? Level { get; init; }
    public string? Field { get; init; }
    public CorruptMode Mode { get; init; } = CorruptMode.Bitflip;
    public bool FixChecksum { get; init; }
    public int Seed { get; init; }
}

/// <summary>What was changed: where on the device, which field, the bytes before and after.</summary>
internal sealed record CorruptResult(
    string Target,
    long DeviceOffset,
    string Field,
    byte[] Old,
    byte[] New,
    string? ChecksumNote,
    ReachableNode? Node = null)
{
    public string ToText()
    {
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{Target}: field {Field} at device offset {DeviceOffset} ({Old.Length} byte{(Old.Length == 1 ? "" : "s")}): " +
            $"{Convert.ToHexStringLower(Old)} -> {Convert.ToHexStringLower(New)}");
        return ChecksumNote is null ? text : $"{text}\n{ChecksumNote}";
    }
}

/// <summary>A node reachable from the roots: where it is and what its parent says about it.</summary>
internal sealed record ReachableNode(BtreeId Btree, byte Level, long Offset, int SectorsWritten, Bpos Min, Bpos Max)
{
    public string ToText() => $"node at byte {Offset} (btree {Btree.ToText()} level {Level}, {Min.ToText()}..{Max.ToText()})";
}

internal static class ImageCorruptor
{
    /// <summary>Nodes visited at most by the walk, so a looping damaged image cannot hang it.</summary>
    private const int MaxNodes = 1_000_000;

    /// <summary>
    /// Superblock header fields a corruption may target (offsets inside a copy), taken from the
    /// format's field table. The selection and its order are fixed: a seed picks a field by index.
    /// </summary>
    public static IReadOnlyList<NodeField> SuperblockFields { get; } =
    [
        .. new[]
        {
            "csum", "magic", "csum_type", "metadata_csum_type", "version", "version_min", "total_bytes", "uuid", "label",
            "seq", "copy_offset", "write_time", "flags", "block_size", "node_size", "device_size",
        }.Select(name => SuperblockFormat.HeaderFields.Single(f => f.Name == name)).Select(f => new NodeField(f.Name, f.Offset, f.Size)),
    ];

    public static IReadOnlyList<NodeField> FieldsOf(CorruptTarget target) => target switch
    {
        CorruptTarget.Node => BtreeNodeInspector.NodeHeaderFields,
        CorruptTarget.Bset => BtreeNodeInspector.BsetHeaderFields,
        CorruptTarget.Key => BtreeNodeInspector.KeyHeaderFields,
        _ => SuperblockFields,
    };

    public static CorruptResult Corrupt(IBlockDevice device, CorruptRequest request)
    {
        var random = new Random(request.Seed);
        var field = PickField(request, random);
        return request.Target == CorruptTarget.Superblock
            ? CorruptSuperblock(device, request, field, random)
            : CorruptNode(device, request, field, random);
    }

    private static NodeField PickField(CorruptRequest request, Random random)
    {
        var fields = FieldsOf(request.Target);
        if (request.Field is null)
            return fields[random.Next(fields.Count)];
        var match = fields.FirstOrDefault(f => string.Equals(f.Name, request.Field, StringComparison.OrdinalIgnoreCase));
        if (match == default)
        {
            throw new BasaltException(ErrorCode.InvalidArgument,
                $"--field '{request.Field}' is not a {request.Target.ToString().ToLowerInvariant()} field " +
                $"(fields: {string.Join(", ", fields.Select(f => f.Name))})");
        }
        return match;
    }

    // ---- Nodes ---------------------------------------------------------------------------

    private static CorruptResult CorruptNode(IBlockDevice device, CorruptRequest request, NodeField field, Random random)
    {
        var sb = SuperblockIo.Read(device).Superblock;
        var candidates = ReachableNodes(device, sb)
            .Where(n => request.Btree is null || n.Btree == request.Btree)
            .Where(n => request.Level is null || n.Level == request.Level)
            .ToList();
        if (candidates.Count == 0)
        {
            var filter = (request.Btree is { } b ? $" in btree {b.ToText()}" : "") + (request.Level is { } l ? $" at level {l}" : "");
            throw new BasaltException(ErrorCode.FileNotFound, $"{device.Name}: no btree node{filter} to corrupt");
        }

        // Candidates are in walk order (btree id, then breadth first), so a seed always picks the same node.
        var node = candidates[random.Next(candidates.Count)];
        var slot = new byte[sb.NodeSize];
        device.Read(node.Offset, slot);
        var written = Math.Min(slot.Length, node.SectorsWritten * FormatLimits.SectorSize);
        var records = BtreeNodeInspector.Walk(slot).Where(r => r.Offset < written).ToList();

        int recordOffset;
        int fieldOffset;
        string target;
        switch (request.Target)
        {
            case CorruptTarget.Node:
                recordOffset = 0;
                fieldOffset = field.Offset;
                target = node.ToText();
                break;
            case CorruptTarget.Bset:
            {
                var record = records[random.Next(records.Count)];
                recordOffset = record.Offset;
                fieldOffset = record.BsetOffset + field.Offset;
                target = $"{node.ToText()}, bset at byte {record.Offset} of the node";
                break;
            }
            default:
            {
                var withKeys = records.Where(r => r.Keys.Count > 0).ToList();
                if (withKeys.Count == 0)
                    throw new BasaltException(ErrorCode.FileNotFound, $"{device.Name}: {node.ToText()} holds no keys to corrupt");
                var record = withKeys[random.Next(withKeys.Count)];
                var key = record.Keys[random.Next(record.Keys.Count)];
                recordOffset = record.Offset;
                fieldOffset = key.Offset + field.Offset;
                target = $"{node.ToText()}, bset at byte {record.Offset}, key {key.Key.ToText()} at byte {key.Offset} of the node";
                break;
            }
        }
        if (fieldOffset + field.Size > slot.Length)
            throw new BasaltException(ErrorCode.InvalidArgument, $"{device.Name}: field {field.Name} lies past the end of the node");

        var old = slot.AsSpan(fieldOffset, field.Size).ToArray();
        Damage(slot.AsSpan(fieldOffset, field.Size), request.Mode, random);
        var changed = slot.AsSpan(fieldOffset, field.Size).ToArray();
        string? note = null;
        if (request.FixChecksum)
        {
            var before = BinaryPrimitives.ReadUInt64LittleEndian(slot.AsSpan(recordOffset));
            note = BtreeNodeInspector.RecomputeChecksum(slot, recordOffset)
                ? $"checksum of the record at byte {recordOffset} of the node (device offset {node.Offset + recordOffset}): " +
                  $"{before:x16} -> {BinaryPrimitives.ReadUInt64LittleEndian(slot.AsSpan(recordOffset)):x16}"
                : $"checksum of the record at byte {recordOffset} could not be recomputed (the damaged header makes it uncomputable); left as is";
        }
        else
        {
            note = "checksum left as is (it no longer matches unless the field was outside the checksummed range)";
        }
        WriteBack(device, node.Offset, slot, fieldOffset, field.Size, request.FixChecksum ? recordOffset : -1);
        return new CorruptResult(target, node.Offset + fieldOffset, field.Name, old, changed, note, node);
    }

    /// <summary>Walks every btree from its root, breadth first, over raw slots. Never throws on content.</summary>
    public static List<ReachableNode> ReachableNodes(IBlockDevice device, Superblock sb)
    {
        var result = new List<ReachableNode>();
        var seen = new HashSet<long>();
        var slot = new byte[sb.NodeSize];
        foreach (var root in sb.Roots.OrderBy(r => r.Btree))
        {
            var queue = new Queue<ReachableNode>();
            if (SlotOf(device, sb, root.Ptr) is { } rootOffset)
                queue.Enqueue(new ReachableNode(root.Btree, root.Level, rootOffset, root.Ptr.SectorsWritten, Bpos.Min, Bpos.Max));
            while (queue.Count > 0 && result.Count < MaxNodes)
            {
                var node = queue.Dequeue();
                if (!seen.Add(node.Offset))
                    continue;
                result.Add(node);
                if (node.Level == 0)
                    continue;
                device.Read(node.Offset, slot);
                foreach (var (max, ptr) in ChildPointers(slot, node.SectorsWritten * FormatLimits.SectorSize))
                {
                    if (SlotOf(device, sb, ptr) is { } child)
                        queue.Enqueue(new ReachableNode(node.Btree, (byte)(node.Level - 1), child, ptr.SectorsWritten, ptr.MinKey, max));
                }
            }
        }
        return result;
    }

    /// <summary>The current child pointers of an interior node: newest record wins per position, deletions remove.</summary>
    private static List<(Bpos Max, BtreePtrValue Ptr)> ChildPointers(byte[] slot, int written)
    {
        var current = new SortedDictionary<Bpos, BtreePtrValue?>();
        foreach (var record in BtreeNodeInspector.Walk(slot))
        {
            if (record.Offset >= written)
                break;
            foreach (var key in record.Keys)
            {
                var valueStart = key.Offset + BkeyFormat.HeaderSize;
                if (key.Key.Type != KeyType.BtreePtr || key.ValueLength < 0 || valueStart + key.ValueLength > slot.Length)
                {
                    current[key.Key.Pos] = null;
                    continue;
                }
                current[key.Key.Pos] = BtreePtrValue.TryRead(slot.AsSpan(valueStart, key.ValueLength), out var ptr, out _) ? ptr : null;
            }
        }
        return [.. current.Where(kv => kv.Value is not null).Select(kv => (kv.Key, kv.Value!))];
    }

    private static long? SlotOf(IBlockDevice device, Superblock sb, BtreePtrValue ptr)
    {
        if (ptr.Ptrs.Count == 0 || ptr.Ptrs[0].OffsetSectors > (ulong)(device.Size / FormatLimits.SectorSize))
            return null;
        var offset = ptr.Ptrs[0].OffsetBytes;
        return offset + sb.NodeSize <= device.Size ? offset : null;
    }

    // ---- Superblock ----------------------------------------------------------------------

    private static CorruptResult CorruptSuperblock(IBlockDevice device, CorruptRequest request, NodeField field, Random random)
    {
        var read = SuperblockIo.Read(device);
        // Copies a truncated device no longer holds cannot be damaged further.
        var copies = read.Superblock.CopyOffsets
            .Select((offset, index) => (Offset: offset, Index: index))
            .Where(c => c.Offset + SuperblockFormat.CopySize <= device.Size)
            .ToList();
        var (copyOffset, copy) = copies[random.Next(copies.Count)];
        var buffer = new byte[SuperblockFormat.CopySize];
        device.Read(copyOffset, buffer);
        var old = buffer.AsSpan(field.Offset, field.Size).ToArray();
        Damage(buffer.AsSpan(field.Offset, field.Size), request.Mode, random);
        var changed = buffer.AsSpan(field.Offset, field.Size).ToArray();
        string? note = "checksum left as is";
        if (request.FixChecksum)
        {
            var before = BinaryPrimitives.ReadUInt64LittleEndian(buffer);
            var total = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(SuperblockFormat.TotalBytesOffset));
            var type = buffer[SuperblockFormat.ChecksumTypeOffset];
            if (total >= SuperblockFormat.HeaderSize && total <= buffer.Length && Checksums.IsKnown(type) && type != 0)
            {
                var sum = Checksums.Compute((ChecksumType)type, buffer.AsSpan(SuperblockFormat.ChecksummedFrom, (int)total - SuperblockFormat.ChecksummedFrom));
                BinaryPrimitives.WriteUInt64LittleEndian(buffer, sum);
                note = $"superblock copy {copy} checksum (device offset {copyOffset}): {before:x16} -> {sum:x16}";
            }
            else
            {
                note = $"superblock copy {copy} checksum could not be recomputed (total_bytes {total}, csum_type {type}); left as is";
            }
        }
        WriteBack(device, copyOffset, buffer, field.Offset, field.Size, request.FixChecksum ? 0 : -1);
        return new CorruptResult($"superblock copy {copy} at byte {copyOffset}", copyOffset + field.Offset, field.Name, old, changed, note);
    }

    // ---- Bytes ---------------------------------------------------------------------------

    /// <summary>Changes the bytes by mode; the result always differs from the input.</summary>
    private static void Damage(Span<byte> bytes, CorruptMode mode, Random random)
    {
        var before = bytes.ToArray();
        switch (mode)
        {
            case CorruptMode.Zero:
                bytes.Clear();
                break;
            case CorruptMode.Ones:
                bytes.Fill(0xFF);
                break;
            case CorruptMode.Random:
                random.NextBytes(bytes);
                break;
            default:
                var bit = random.Next(bytes.Length * 8);
                bytes[bit / 8] ^= (byte)(1 << (bit % 8));
                break;
        }
        if (bytes.SequenceEqual(before))
        {
            if (mode is CorruptMode.Zero or CorruptMode.Ones)
            {
                throw new BasaltException(ErrorCode.InvalidArgument,
                    $"the field already holds {(mode == CorruptMode.Zero ? "zeroes" : "all ones")}: --mode {mode.ToString().ToLowerInvariant()} would change nothing");
            }
            bytes[0] ^= 1;  // random drew the same bytes: make it a change
        }
    }

    /// <summary>Writes back the sectors holding the field (and the checksum when it was recomputed).</summary>
    private static void WriteBack(IBlockDevice device, long baseOffset, byte[] buffer, int fieldOffset, int fieldSize, int checksumOffset)
    {
        var first = fieldOffset;
        var end = fieldOffset + fieldSize;
        if (checksumOffset >= 0)
        {
            first = Math.Min(first, checksumOffset);
            end = Math.Max(end, checksumOffset + 8);
        }
        var start = first / FormatLimits.SectorSize * FormatLimits.SectorSize;
        var stop = (end + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize * FormatLimits.SectorSize;
        device.Write(baseOffset + start, buffer.AsSpan(start, stop - start));
        device.Flush();
    }
}
