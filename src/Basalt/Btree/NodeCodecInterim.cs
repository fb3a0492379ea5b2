// INTERIM node codec: a minimal implementation of the node-codec API (Btree/Node/*, owned by the
// node-format work) so the in-memory btree can be built and tested before that lands. It follows
// the fixed on-disk layout of the brief. This file is deleted when main's codec is merged.
using System.Buffers.Binary;
using Basalt.Format;

namespace Basalt.Btree;

public readonly record struct NodeHeader(ulong Seq, uint Generation, BtreeId Btree, byte Level, Bpos MinKey, Bpos MaxKey);

public readonly record struct BsetWriteOptions(int BlockSize, ChecksumType ChecksumType, ushort Version, ulong JournalSeq);

public readonly record struct NodeReadContext(BtreeId Btree, byte Level, Bpos MaxKey, BtreePtrValue Ptr, ulong Magic,
    int NodeSize, int BlockSize, ushort Version, ushort VersionMin, long DeviceSize = 0, bool HaveRetry = false);

public sealed record NodeFinding(FsckErrorId Id, string Detail)
{
    public override string ToString() => $"{FsckCatalogue.NameOf(Id)}: {Detail}";
}

public sealed class NodeReadResult
{
    public bool Ok { get; init; }
    public NodeErrorClass? FailureClass { get; init; }
    public NodeHeader Header { get; init; }
    public KeyRun Keys { get; init; } = KeyRun.Empty;
    public IReadOnlyList<NodeFinding> Findings { get; init; } = [];
    public bool NeedsRewrite { get; init; }
    public int SectorsFound { get; init; }
    public int BsetCount { get; init; }
    public int IgnoredBsetsBeyondWritten { get; init; }
    public ulong MaxJournalSeq { get; init; }
}

public static class BtreeNodeWriter
{
    private const int NodeHeaderSize = 80;
    private const int BsetHeaderSize = 32;
    private const int FirstKeysOffset = NodeHeaderSize + BsetHeaderSize;
    private const int AppendKeysOffset = 8 + BsetHeaderSize;

    public static int FirstRecordSize(long encodedKeyBytes, int blockSize) => RoundUp(FirstKeysOffset + encodedKeyBytes, blockSize);

    public static int AppendRecordSize(long encodedKeyBytes, int blockSize) => RoundUp(AppendKeysOffset + encodedKeyBytes, blockSize);

    private static int RoundUp(long n, int block) => checked((int)((n + block - 1) / block * block));

    public static int WriteFirst(Span<byte> dst, ulong magic, in NodeHeader h, KeyRun keys, in BsetWriteOptions o)
    {
        var size = FirstRecordSize(keys.EncodedBytes, o.BlockSize);
        var rec = dst[..size];
        rec.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(rec[8..], magic);
        BinaryPrimitives.WriteUInt64LittleEndian(rec[16..], h.Seq);
        rec[24] = (byte)h.Btree;
        rec[25] = h.Level;
        BinaryPrimitives.WriteUInt32LittleEndian(rec[28..], h.Generation);
        h.MinKey.Write(rec[32..]);
        h.MaxKey.Write(rec[52..]);
        var u64s = WriteBset(rec[NodeHeaderSize..], rec[FirstKeysOffset..], h.Seq, 0, keys, o);
        BinaryPrimitives.WriteUInt64LittleEndian(rec, Checksums.Compute(o.ChecksumType, rec[8..(FirstKeysOffset + (8 * u64s))]));
        return size;
    }

    public static int WriteAppend(Span<byte> dst, ulong nodeSeq, int sectorOffset, KeyRun keys, in BsetWriteOptions o)
    {
        var size = AppendRecordSize(keys.EncodedBytes, o.BlockSize);
        var rec = dst[..size];
        rec.Clear();
        var u64s = WriteBset(rec[8..], rec[AppendKeysOffset..], nodeSeq, sectorOffset, keys, o);
        BinaryPrimitives.WriteUInt64LittleEndian(rec, Checksums.Compute(o.ChecksumType, rec[8..(AppendKeysOffset + (8 * u64s))]));
        return size;
    }

    private static int WriteBset(Span<byte> header, Span<byte> keyArea, ulong seq, int sectorOffset, KeyRun keys, in BsetWriteOptions o)
    {
        var at = 0;
        for (var i = 0; i < keys.Count; i++)
            at += BkeyFormat.Write(keyArea[at..], keys[i].Key, keys.ValueOf(i));
        var u64s = at / 8;
        BinaryPrimitives.WriteUInt64LittleEndian(header, seq);
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], o.JournalSeq);
        BinaryPrimitives.WriteUInt16LittleEndian(header[16..], o.Version);
        header[18] = (byte)o.ChecksumType;
        BinaryPrimitives.WriteUInt16LittleEndian(header[20..], (ushort)sectorOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(header[24..], (uint)u64s);
        return u64s;
    }
}

public static class BtreeNodeReader
{
    public static NodeReadResult Read(ReadOnlySpan<byte> slot, in NodeReadContext ctx)
    {
        if (BinaryPrimitives.ReadUInt64LittleEndian(slot[8..]) != ctx.Magic)
            return Fail(FsckErrorId.BtreeNodeBadMagic, NodeErrorClass.MustRetry, "bad magic");
        var seq = BinaryPrimitives.ReadUInt64LittleEndian(slot[16..]);
        if (seq != ctx.Ptr.Seq)
            return Fail(FsckErrorId.BtreeNodeBadSeq, NodeErrorClass.MustRetry, $"seq {seq:x16}, pointer expects {ctx.Ptr.Seq:x16}");
        var header = new NodeHeader(seq, BinaryPrimitives.ReadUInt32LittleEndian(slot[28..]), (BtreeId)slot[24], slot[25],
            Bpos.Read(slot[32..]), Bpos.Read(slot[52..]));
        if (header.Btree != ctx.Btree || header.Level != ctx.Level)
            return Fail(FsckErrorId.BtreeNodeBadLevel, NodeErrorClass.MustRetry, "wrong btree or level");
        var written = ctx.Ptr.SectorsWritten * 512;
        var runs = new List<List<(Bkey Key, byte[] Value)>>();
        var offset = 0;
        var ignored = 0;
        while (offset < Math.Min(written, ctx.NodeSize))
        {
            var first = offset == 0;
            var bset = slot[(first ? 80 : offset + 8)..];
            var keysAt = first ? 112 : offset + 40;
            if (BinaryPrimitives.ReadUInt64LittleEndian(bset) != seq)
                return Fail(FsckErrorId.BtreeNodeDataMissing, NodeErrorClass.WantRetry, $"no bset at sector {offset / 512}");
            var u64s = (int)BinaryPrimitives.ReadUInt32LittleEndian(bset[24..]);
            var end = keysAt + (8 * u64s);
            if (end > ctx.NodeSize)
                return Fail(FsckErrorId.BsetPastEndOfBtreeNode, NodeErrorClass.Fixable, "bset past end");
            var csum = Checksums.Compute((ChecksumType)bset[18], slot[(offset + 8)..end]);
            if (csum != BinaryPrimitives.ReadUInt64LittleEndian(slot[offset..]))
                return Fail(FsckErrorId.BsetBadChecksum, NodeErrorClass.WantRetry, $"bad checksum at sector {offset / 512}");
            var run = new List<(Bkey, byte[])>();
            for (var at = keysAt; at < end;)
            {
                var view = new BkeyView(slot[at..end]);
                if (!view.IsWellFormed(end - at))
                    return Fail(FsckErrorId.BtreeNodeBkeyBadFormat, NodeErrorClass.Fixable, "bad key");
                run.Add((view.Key, view.Value.ToArray()));
                at += view.TotalBytes;
            }
            runs.Add(run);
            offset += (end + ctx.BlockSize - 1) / ctx.BlockSize * ctx.BlockSize - offset;
        }
        if (offset < ctx.NodeSize && offset >= 512 && BinaryPrimitives.ReadUInt64LittleEndian(slot[(offset + 8)..]) == seq)
            ignored = 1;
        var merged = new SortedDictionary<Bpos, (Bkey Key, byte[] Value)>();
        foreach (var run in runs)
        {
            foreach (var (key, value) in run)
                merged[key.Pos] = (key, value);
        }
        var builder = new KeyRunBuilder();
        foreach (var (key, value) in merged.Values)
        {
            if (key.Type != KeyType.Deleted)
                builder.Add(key, value);
        }
        return new NodeReadResult
        {
            Ok = true,
            Header = header,
            Keys = builder.Build(),
            SectorsFound = offset / 512,
            BsetCount = runs.Count,
            IgnoredBsetsBeyondWritten = ignored,
        };
    }

    private static NodeReadResult Fail(FsckErrorId id, NodeErrorClass cls, string detail) =>
        new() { Ok = false, FailureClass = cls, Findings = [new NodeFinding(id, detail)] };
}

/// <summary>INTERIM: the subset of key validation the in-memory btree needs before insertion.</summary>
public static class KeyValidation
{
    public static bool Validate(BtreeId btree, byte level, in Bkey key, ReadOnlySpan<byte> value, Bpos nodeMin, Bpos nodeMax,
        int nodeSize, out FsckErrorId id, out string detail)
    {
        id = default;
        detail = "";
        if (key.Pos.IsMax)
            return Bad(FsckErrorId.BkeyAtPosMax, "key at max position", out id, out detail);
        if (key.Pos < nodeMin)
            return Bad(FsckErrorId.BkeyBeforeStartOfBtreeNode, "key before node min", out id, out detail);
        if (key.Pos > nodeMax)
            return Bad(FsckErrorId.BkeyAfterEndOfBtreeNode, "key after node max", out id, out detail);
        if (level > 0)
        {
            if (key.Type != KeyType.BtreePtr && key.Type != KeyType.Deleted)
                return Bad(FsckErrorId.BkeyInvalidTypeForBtree, "interior key not a btree pointer", out id, out detail);
            if (key.Type == KeyType.BtreePtr && !BtreePtrValue.TryRead(value, out var ptr, out var problem))
                return Bad(FsckErrorId.BkeyValueInvalid, problem ?? "bad pointer", out id, out detail);
            return true;
        }
        var d = BtreeIds.Describe(btree);
        if (!d.Allows(key.Type))
            return Bad(FsckErrorId.BkeyInvalidTypeForBtree, $"type {key.Type.ToText()} not allowed in {btree.ToText()}", out id, out detail);
        if (d.HasSnapshots ? key.Pos.Snapshot != uint.MaxValue : key.Pos.Snapshot != 0)
            return Bad(FsckErrorId.BkeyBadSnapshot, "bad snapshot field", out id, out detail);
        if (d.IsExtents ? key.Type != KeyType.Deleted && (key.Size == 0 || key.Size > key.Pos.Offset) : key.Size != 0)
            return Bad(FsckErrorId.BkeyBadSize, "bad size", out id, out detail);
        if (key.Type == KeyType.Deleted && value.Length != 0)
            return Bad(FsckErrorId.BkeyValueInvalid, "deleted key with a value", out id, out detail);
        if (value.Length > Math.Min(BkeyFormat.MaxValueBytes, nodeSize / 4))
            return Bad(FsckErrorId.BkeyValueInvalid, "value too large", out id, out detail);
        return true;
    }

    private static bool Bad(FsckErrorId error, string text, out FsckErrorId id, out string detail)
    {
        id = error;
        detail = text;
        return false;
    }
}
