// Builds real node slots for the node tests: a first record and appended bsets written with
// BtreeNodeWriter, plus the read context a parent pointer to the node would give.
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Format;

namespace Basalt.Tests.Btree.Node;

internal sealed class TestNode
{
    public const ulong Magic = 0x45444F4E544C5342UL ^ 0x1122334455667788UL;

    public TestNode(BtreeId btree, byte level, Bpos min, Bpos max, int nodeSize = 8192, int blockSize = 512, ulong seq = 0x5eed_cafe_f00d_0001UL)
    {
        Slot = new byte[nodeSize];
        BlockSize = blockSize;
        Header = new NodeHeader(seq, 1, btree, level, min, max);
    }

    public byte[] Slot { get; }
    public int BlockSize { get; }
    public NodeHeader Header { get; }
    public int Written { get; private set; }
    public List<int> RecordOffsets { get; } = [];
    public ulong JournalSeq { get; set; } = 1;

    public int NodeSize => Slot.Length;

    public BsetWriteOptions Options => new(BlockSize, ChecksumType.Crc32C, FormatVersion.Current, JournalSeq);

    /// <summary>Writes the first record, or appends a node entry after what is written.</summary>
    public TestNode Write(KeyRun keys)
    {
        RecordOffsets.Add(Written);
        Written += Written == 0
            ? BtreeNodeWriter.WriteFirst(Slot, Magic, Header, keys, Options)
            : BtreeNodeWriter.WriteAppend(Slot.AsSpan(Written), Header.Seq, Written / 512, keys, Options);
        JournalSeq++;
        return this;
    }

    public BtreePtrValue Pointer(ushort? sectorsWritten = null, BtreePtrFlags flags = BtreePtrFlags.None, Bpos? min = null) => new()
    {
        Seq = Header.Seq,
        SectorsWritten = sectorsWritten ?? (ushort)(Written / 512),
        Flags = flags,
        MinKey = min ?? Header.MinKey,
        Ptrs = [new DevicePtr(0, 1024, 0)],
    };

    public NodeReadContext Context(bool haveRetry = false, ushort? sectorsWritten = null, BtreePtrFlags flags = BtreePtrFlags.None,
        Bpos? min = null, Bpos? max = null) =>
        new(Header.Btree, Header.Level, max ?? Header.MaxKey, Pointer(sectorsWritten, flags, min), Magic, NodeSize, BlockSize,
            FormatVersion.Current, FormatVersion.Min, HaveRetry: haveRetry);

    public NodeReadResult Read(bool haveRetry = false) => BtreeNodeReader.Read(Slot, Context(haveRetry));

    /// <summary>Recomputes the checksum of record <paramref name="index"/> (after a deliberate corruption).</summary>
    public void FixChecksum(int index) => Assert.True(BtreeNodeInspector.RecomputeChecksum(Slot, RecordOffsets[index]));

    /// <summary>Slot offset of a bset header field of record <paramref name="index"/>.</summary>
    public int BsetField(int index, string name) =>
        BtreeNodeInspector.Walk(Slot).Single(r => r.Offset == RecordOffsets[index]).BsetOffset +
        BtreeNodeInspector.Field(BtreeNodeInspector.BsetHeaderFields, name).Offset;

    /// <summary>Slot offset of a key header field of key <paramref name="key"/> of record <paramref name="index"/>.</summary>
    public int KeyField(int index, int key, string name) =>
        BtreeNodeInspector.Describe(Slot, RecordOffsets[index]).Keys[key].Offset +
        BtreeNodeInspector.Field(BtreeNodeInspector.KeyHeaderFields, name).Offset;

    public static int NodeField(string name) => BtreeNodeInspector.Field(BtreeNodeInspector.NodeHeaderFields, name).Offset;

    public static Bpos P(ulong inode, ulong offset = 0, uint snapshot = 0) => new(inode, offset, snapshot);

    /// <summary>Cookie keys at the given inode numbers (offset 0), each value naming its key and a tag.</summary>
    public static KeyRun Cookies(string tag, params ulong[] inodes)
    {
        var builder = new KeyRunBuilder();
        foreach (var i in inodes)
            builder.Add(new Bkey(P(i), KeyType.Cookie), CookieValue(i, tag));
        return builder.Build();
    }

    public static byte[] CookieValue(ulong inode, string tag) => System.Text.Encoding.ASCII.GetBytes($"{tag}:{inode}");

    public static KeyRun Deletions(params ulong[] inodes)
    {
        var builder = new KeyRunBuilder();
        foreach (var i in inodes)
            builder.Add(new Bkey(P(i), KeyType.Deleted), []);
        return builder.Build();
    }

    /// <summary>The merged keys as (inode → value text) for compact assertions.</summary>
    public static Dictionary<ulong, string> Contents(KeyRun keys)
    {
        var map = new Dictionary<ulong, string>();
        for (var i = 0; i < keys.Count; i++)
            map[keys[i].Key.Pos.Inode] = System.Text.Encoding.ASCII.GetString(keys.ValueOf(i));
        return map;
    }

    public static ulong[] Inodes(KeyRun keys)
    {
        var result = new ulong[keys.Count];
        for (var i = 0; i < keys.Count; i++)
            result[i] = keys[i].Key.Pos.Inode;
        return result;
    }

    public static void WriteU64(byte[] slot, int offset, ulong value) =>
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(slot.AsSpan(offset), value);

    public static void WriteU32(byte[] slot, int offset, uint value) =>
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(slot.AsSpan(offset), value);

    public static void WriteU16(byte[] slot, int offset, ushort value) =>
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(slot.AsSpan(offset), value);
}
