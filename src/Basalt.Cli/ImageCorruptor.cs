// The machinery behind `basalt debug corrupt` (and the demo's damage step): picks a target
// deterministically from a seed, changes one named on-disk field, and says exactly what it did.
//
// Nodes are the live ones: the filesystem is mounted read-only over a copy-on-write overlay (the
// journal replayed in memory, nothing written), and each btree is walked from its recovered root
// level by level, so a node the journal's roots and pointers made current is found even when the
// superblock's roots are stale. Nodes the replay made in memory only (never written) are skipped.
// When recovery cannot walk a damaged image, the walk falls back to raw slots from the roots
// (BtreeNodeInspector: nothing validated, no checksum trusted), so a damaged image can be
// damaged further. Within a node only the records below the parent pointer's sectors_written
// count (those are the node's content; anything after is a crash trace).
//
// Journal targets pick a good entry the journal scan finds (optionally within a seq range): the
// whole entry, one record of it (a record-header field or its payload), or one header field.
// --fix-csum recomputes the checksum of the record, entry or superblock copy that was changed,
// so a corruption can pass the checksum and reach the validation behind it.
using System.Buffers.Binary;
using System.Globalization;
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Journal;
using Basalt.Superblocks;

namespace Basalt.Cli;

internal enum CorruptTarget
{
    Node,
    Bset,
    Key,
    Superblock,
    /// <summary>A whole journal entry: its header and records.</summary>
    JournalEntry,
    /// <summary>One record of a journal entry: a record-header field or its payload.</summary>
    JournalRecord,
    /// <summary>One header field of a journal entry.</summary>
    JournalField,
    /// <summary>One field of an alloc key's value.</summary>
    Alloc,
    /// <summary>One field of a backpointer's value.</summary>
    Backpointer,
    /// <summary>One field of an extent's value (pointer fields: its first pointer).</summary>
    Extent,
    /// <summary>The data an extent points at.</summary>
    Data,
}

internal static class CorruptTargets
{
    /// <summary>The names --target takes, in enum order.</summary>
    public static string[] Names { get; } = ["node", "bset", "key", "superblock", "journal-entry", "journal-record", "journal-field", "alloc", "backpointer", "extent", "data"];

    public static string ToText(this CorruptTarget target) => Names[(int)target];

    public static CorruptTarget Parse(string name) => (CorruptTarget)Array.FindIndex(Names, n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));

    public static bool IsJournal(this CorruptTarget target) => target is >= CorruptTarget.JournalEntry and <= CorruptTarget.JournalField;

    /// <summary>Targets that change a key's value (or the data an extent names), picked by --bucket, --pos or the seed.</summary>
    public static bool IsValue(this CorruptTarget target) => target >= CorruptTarget.Alloc;
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

    /// <summary>Journal targets: only entries with seqs in this range.</summary>
    public SeqRange? Seq { get; init; }

    /// <summary>Value targets: only keys of this bucket (of device 0).</summary>
    public ulong? Bucket { get; init; }

    /// <summary>Value targets: the first key at or after this position.</summary>
    public Bpos? Pos { get; init; }

    /// <summary>Node, bset and key targets: only the node whose range holds this position (the demo's pick of a leaf).</summary>
    public Bpos? Holding { get; init; }

    /// <summary>Value targets: leave the checksum of the changed record or entry as is (it is recomputed by default).</summary>
    public bool KeepChecksum { get; init; }
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
    /// <summary>Bytes shown in full; a longer change shows how many bytes differ and the first ones.</summary>
    private const int ShownBytes = 32;

    /// <summary>Journal targets: the seq of the entry that was changed.</summary>
    public ulong? JournalSeq { get; init; }

    /// <summary>Set when the live nodes could not be found through recovery (see ImageCorruptor.ReachableNodes).</summary>
    public string? WalkNote { get; init; }

    /// <summary>Value targets: the fsck finding (ids of the catalogue) or the failing read the change must cause.</summary>
    public string? Expectation { get; init; }

    public string ToText()
    {
        var bytes = $"{Old.Length} byte{(Old.Length == 1 ? "" : "s")}";
        string change;
        if (Old.AsSpan().SequenceEqual(New))
        {
            change = "unchanged";
        }
        else if (Old.Length <= ShownBytes)
        {
            change = $"{Convert.ToHexStringLower(Old)} -> {Convert.ToHexStringLower(New)}";
        }
        else
        {
            // A long field: how many bytes differ, where the first and last are, and the bytes from the first.
            var first = Old.AsSpan().CommonPrefixLength(New);
            var last = Old.Length - 1 - Old.Reverse().Zip(New.Reverse()).TakeWhile(p => p.First == p.Second).Count();
            var shown = Math.Min(ShownBytes, last - first + 1);
            var more = last - first + 1 > shown ? "…" : "";
            change = $"{Old.Zip(New).Count(p => p.First != p.Second)} of them changed, from byte {first} to byte {last} of the field " +
                     $"(device offset {DeviceOffset + first}): {Convert.ToHexStringLower(Old, first, shown)}{more} -> {Convert.ToHexStringLower(New, first, shown)}{more}";
        }
        var text = string.Create(CultureInfo.InvariantCulture, $"{Target}: field {Field} at device offset {DeviceOffset} ({bytes}): {change}");
        if (ChecksumNote is not null)
            text = $"{text}\n{ChecksumNote}";
        if (WalkNote is not null)
            text = $"{text}\n{WalkNote}";
        return Expectation is null ? text : $"{text}\n{Expectation}";
    }
}

/// <summary>A node reachable from the roots: where it is and what its parent says about it.</summary>
internal sealed record ReachableNode(BtreeId Btree, byte Level, long Offset, int SectorsWritten, Bpos Min, Bpos Max)
{
    public string ToText() => $"node at byte {Offset} (btree {Btree.ToText()} level {Level}, {Min.ToText()}..{Max.ToText()})";
}

internal static partial class ImageCorruptor
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

    /// <summary>The journal-entry target's one pseudo-field: the header and every record (its size depends on the entry).</summary>
    private static readonly NodeField s_wholeEntry = new("entry", 0, 0);

    /// <summary>The journal-record target's fields: the record header's, then its payload (size depends on the record).</summary>
    private static readonly IReadOnlyList<NodeField> s_recordFields = [.. JournalInspector.RecordHeaderFields, new("payload", JournalFormat.RecordHeaderSize, 0)];

    public static IReadOnlyList<NodeField> FieldsOf(CorruptTarget target) => target switch
    {
        CorruptTarget.Node => BtreeNodeInspector.NodeHeaderFields,
        CorruptTarget.Bset => BtreeNodeInspector.BsetHeaderFields,
        CorruptTarget.Key => BtreeNodeInspector.KeyHeaderFields,
        CorruptTarget.JournalEntry => [s_wholeEntry],
        CorruptTarget.JournalRecord => s_recordFields,
        CorruptTarget.JournalField => JournalInspector.HeaderFields,
        _ when target.IsValue() => ValueFieldsOf(target),
        _ => SuperblockFields,
    };

    public static CorruptResult Corrupt(IBlockDevice device, CorruptRequest request)
    {
        var random = new Random(request.Seed);
        var field = PickField(request, random);
        return request.Target switch
        {
            CorruptTarget.Superblock => CorruptSuperblock(device, request, field, random),
            _ when request.Target.IsJournal() => CorruptJournal(device, request, field, random),
            _ when request.Target.IsValue() => CorruptValue(device, request, field, random),
            _ => CorruptNode(device, request, field, random),
        };
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
                $"--field '{request.Field}' is not a {request.Target.ToText()} field " +
                $"(fields: {string.Join(", ", fields.Select(f => f.Name))})");
        }
        return match;
    }

    // ---- Nodes ---------------------------------------------------------------------------

    private static CorruptResult CorruptNode(IBlockDevice device, CorruptRequest request, NodeField field, Random random)
    {
        var sb = SuperblockIo.Read(device).Superblock;
        var candidates = ReachableNodes(device, out var walkNote)
            .Where(n => request.Btree is null || n.Btree == request.Btree)
            .Where(n => request.Level is null || n.Level == request.Level)
            .Where(n => request.Holding is not { } holding || (holding >= n.Min && holding <= n.Max))
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
                if (records.Count == 0)
                    throw new BasaltException(ErrorCode.FileNotFound, $"{device.Name}: {node.ToText()} holds no readable record to corrupt");
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
        return new CorruptResult(target, node.Offset + fieldOffset, field.Name, old, changed, note, node) { WalkNote = walkNote };
    }

    /// <summary>
    /// The nodes of every btree as the next mount sees them, in btree id order, each btree breadth
    /// first (level by level, by position): the filesystem is mounted read-only over an overlay (the
    /// journal replayed in memory) and walked from its recovered roots. Only nodes on the device
    /// are listed (a node the replay made in memory has sectors_written 0). When recovery or the
    /// walk fails on a damaged image, the nodes are found over raw slots from the recovered roots
    /// (or the superblock's when the mount failed) and <paramref name="note"/> says so.
    /// </summary>
    public static List<ReachableNode> ReachableNodes(IBlockDevice device, out string? note)
    {
        ArgumentNullException.ThrowIfNull(device);
        IReadOnlyList<BtreeRoot> roots;
        Superblock sb;
        try
        {
            using var fs = BasaltFileSystem.Mount(device, new MountOptions { ReadOnly = true });
            sb = fs.Superblock;
            roots = fs.Btrees.Roots;
            try
            {
                note = null;
                return RecoveredNodes(fs, device);
            }
            catch (BasaltException e)
            {
                note = $"the recovered btrees could not be walked ({CliContext.OneLine(e.Message)}): nodes found over raw slots from the recovered roots";
            }
        }
        catch (BasaltException e)
        {
            sb = SuperblockIo.Read(device).Superblock;
            roots = sb.Roots;
            note = $"recovery failed ({CliContext.OneLine(e.Message)}): nodes found over raw slots from the superblock's roots";
        }
        return RawNodes(device, sb, roots);
    }

    private static List<ReachableNode> RecoveredNodes(BasaltFileSystem fs, IBlockDevice device)
    {
        var result = new List<ReachableNode>();
        var seen = new HashSet<long>();
        var nodeSize = fs.Superblock.NodeSize;
        void Add(BtreeId btree, byte level, BtreePtrValue ptr, Bpos min, Bpos max)
        {
            if (ptr.SectorsWritten > 0 && SlotOf(device, nodeSize, ptr) is { } offset && seen.Add(offset))
                result.Add(new ReachableNode(btree, level, offset, ptr.SectorsWritten, min, max));
        }
        foreach (var root in fs.Btrees.Roots.OrderBy(r => r.Btree))
        {
            Add(root.Btree, root.Level, root.Ptr, Bpos.Min, Bpos.Max);
            var tree = fs.Btrees[root.Btree];
            for (var level = root.Level; level >= 1 && result.Count < MaxNodes; level--)
            {
                var it = tree.Iterate(Bpos.Min, Bpos.Max, reverse: false, level: level);
                while (it.MoveNext() && result.Count < MaxNodes)
                {
                    if (it.Key.Type == KeyType.BtreePtr && BtreePtrValue.TryRead(it.Value, out var ptr, out _))
                        Add(root.Btree, (byte)(level - 1), ptr, ptr.MinKey, it.Key.Pos);
                }
            }
        }
        return result;
    }

    /// <summary>Walks every btree from <paramref name="roots"/>, breadth first, over raw slots. Never throws on content.</summary>
    internal static List<ReachableNode> RawNodes(IBlockDevice device, Superblock sb, IReadOnlyList<BtreeRoot> roots)
    {
        var result = new List<ReachableNode>();
        var seen = new HashSet<long>();
        var slot = new byte[sb.NodeSize];
        foreach (var root in roots.OrderBy(r => r.Btree))
        {
            var queue = new Queue<ReachableNode>();
            if (SlotOf(device, sb.NodeSize, root.Ptr) is { } rootOffset)
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
                    if (SlotOf(device, sb.NodeSize, ptr) is { } child)
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

    private static long? SlotOf(IBlockDevice device, int nodeSize, BtreePtrValue ptr)
    {
        if (ptr.Ptrs.Count == 0 || ptr.Ptrs[0].OffsetSectors > (ulong)(device.Size / FormatLimits.SectorSize))
            return null;
        var offset = ptr.Ptrs[0].OffsetBytes;
        return offset + nodeSize <= device.Size ? offset : null;
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

    // ---- Journal -------------------------------------------------------------------------

    private static CorruptResult CorruptJournal(IBlockDevice device, CorruptRequest request, NodeField field, Random random)
    {
        var sb = SuperblockIo.Read(device).Superblock;
        var ring = JournalRing.Of(sb);
        var scan = JournalScan.Scan(device, ring, new JournalReadContext(JournalFormat.MagicFor(sb.Uuid), sb.BlockSize, sb.NodeSize));
        // Candidates in seq order, so a seed always picks the same entry of the same image.
        var candidates = scan.Entries.Values
            .Where(e => request.Seq is not { } range || range.Contains(e.Seq))
            .OrderBy(e => e.Seq)
            .ToList();
        if (candidates.Count == 0)
        {
            var filter = request.Seq is { } r ? $" with {ListJournalCommand.FilterText(r)}" : "";
            throw new BasaltException(ErrorCode.FileNotFound, $"{device.Name}: no journal entry{filter} to corrupt");
        }
        var entry = candidates[random.Next(candidates.Count)];
        var offset = entry.Location.Offset;
        var buffer = new byte[entry.DiskBytes];
        device.Read(offset, buffer);
        var target = $"journal entry seq {entry.Seq} ({(entry.IsFlush ? "flush" : "no-flush")}) at ring index {entry.Location.RingIndex} " +
                     $"(bucket {entry.Location.Bucket}) at byte {offset}, {entry.DiskBytes} bytes";

        int fieldOffset;
        int fieldSize;
        string fieldName;
        switch (request.Target)
        {
            case CorruptTarget.JournalEntry:
                fieldOffset = 0;
                fieldSize = JournalInspector.RecordsEnd(buffer);
                fieldName = "entry (header and records)";
                break;
            case CorruptTarget.JournalRecord:
            {
                var end = JournalInspector.RecordsEnd(buffer);
                var records = JournalInspector.Records(buffer)
                    .Where(r => field.Name != "payload" || r.PayloadBytes(end) > 0)
                    .ToList();
                if (records.Count == 0)
                    throw new BasaltException(ErrorCode.FileNotFound, $"{device.Name}: {target}: no record with a payload to corrupt");
                var index = random.Next(records.Count);
                var record = records[index];
                var type = JournalRecordTypes.IsKnown(record.Type) ? ((JournalRecordType)record.Type).ToText() : $"type {record.Type}";
                target += $", record {index} ({type}, {record.Bytes} bytes) at byte {record.Offset} of the entry";
                fieldOffset = record.Offset + field.Offset;
                fieldSize = field.Name == "payload" ? record.PayloadBytes(end) : field.Size;
                fieldName = field.Name;
                break;
            }
            default:
                fieldOffset = field.Offset;
                fieldSize = field.Size;
                fieldName = field.Name;
                break;
        }

        var old = buffer.AsSpan(fieldOffset, fieldSize).ToArray();
        Damage(buffer.AsSpan(fieldOffset, fieldSize), request.Mode, random);
        var changed = buffer.AsSpan(fieldOffset, fieldSize).ToArray();
        string note;
        if (request.FixChecksum)
        {
            var before = BinaryPrimitives.ReadUInt64LittleEndian(buffer);
            note = JournalInspector.RecomputeChecksum(buffer)
                ? $"checksum of journal entry seq {entry.Seq} (device offset {offset}): {before:x16} -> {BinaryPrimitives.ReadUInt64LittleEndian(buffer):x16}"
                : $"checksum of journal entry seq {entry.Seq} could not be recomputed (the damaged header makes it uncomputable); left as is";
        }
        else
        {
            note = "checksum left as is (it no longer matches)";
        }
        WriteBack(device, offset, buffer, fieldOffset, fieldSize, request.FixChecksum ? 0 : -1);
        return new CorruptResult(target, offset + fieldOffset, fieldName, old, changed, note) { JournalSeq = entry.Seq };
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
