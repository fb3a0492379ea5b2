// CraftedTree: builds a btree image node by node, so a test can produce exactly the broken shape
// it wants (gaps, overlaps, wrong levels, bad roots, unreadable slots). Nodes are described as a
// model (range, level, generation, keys or child pointers), written with the node writer into
// slots of a MemoryBlockDevice with a tiny geometry, and can be damaged afterwards. The model
// also knows which keys each node holds, so a test can compute the key set a repair must leave.
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Format;

namespace Basalt.TestKit;

/// <summary>How a crafted node is damaged after it is written.</summary>
public enum CraftedDamage
{
    None,
    /// <summary>One byte of the first record's key area flipped: the header record's checksum fails.</summary>
    BadHeaderChecksum,
    /// <summary>The whole slot overwritten with random bytes.</summary>
    Garbage,
    /// <summary>One byte of the second bset's keys flipped: that bset's checksum fails (the node still reads).</summary>
    BadSecondBsetChecksum,
}

/// <summary>A child pointer of a crafted interior node; its range defaults to the child's header range.</summary>
public sealed class CraftedPointer
{
    public required CraftedNode Node { get; set; }
    public required Bpos Min { get; set; }
    public required Bpos Max { get; set; }
    public BtreePtrFlags Flags { get; set; }
}

/// <summary>One node of a crafted tree.</summary>
public sealed class CraftedNode
{
    internal CraftedNode(string name, ulong seq) 
    {
        Name = name;
        Seq = seq;
    }

    /// <summary>A short name for messages and key values ("A", "B2").</summary>
    public string Name { get; }

    public ulong Seq { get; internal set; }
    public byte Level { get; internal set; }
    public uint Generation { get; internal set; } = 1;

    /// <summary>The journal seq its bsets carry (0: none, as before the journal).</summary>
    public ulong JournalSeq { get; set; }
    public Bpos Min { get; internal set; }
    public Bpos Max { get; internal set; }

    /// <summary>Leaf keys (Cookie keys in the Test btree), sorted.</summary>
    public SortedDictionary<Bpos, byte[]> Keys { get; } = [];

    /// <summary>Interior child pointers, in key order.</summary>
    public List<CraftedPointer> Children { get; } = [];

    public CraftedDamage Damage { get; set; }

    /// <summary>When set, keys from this position on go into a second, appended bset.</summary>
    public Bpos? SecondBsetFrom { get; set; }

    /// <summary>When set, one more bset holding a key here is appended past the pointer's sectors_written (a crash trace).</summary>
    public Bpos? BsetBeyondWritten { get; set; }

    /// <summary>Byte offset of the second bset in the slot as last written, or -1.</summary>
    public int SecondBsetOffset { get; internal set; } = -1;

    /// <summary>Where the node was last written (bytes), and how many sectors it took.</summary>
    public long SlotOffset { get; internal set; } = -1;
    public int SectorsWritten { get; internal set; }

    public override string ToString() => $"{Name} L{Level} [{Min.ToText()}..{Max.ToText()}] gen {Generation}";
}

public sealed partial class CraftedTree
{
    public const int DefaultNodeSize = 4096;
    public const int DefaultBlockSize = 512;

    private readonly Random _random;
    private readonly Dictionary<ulong, CraftedNode> _bySeq = [];
    private long _nextSlot;

    public CraftedTree(BtreeId btree = BtreeId.Test, int nodeSize = DefaultNodeSize, int blockSize = DefaultBlockSize,
        int slots = 512, int seed = 1)
    {
        Btree = btree;
        _random = new Random(seed);
        var areaOffset = 64L * 1024;
        Device = new MemoryBlockDevice(areaOffset + ((long)slots * nodeSize));
        var uuid = new byte[16];
        _random.NextBytes(uuid);
        Geometry = new BtreeGeometry
        {
            NodeSize = nodeSize,
            BlockSize = blockSize,
            NodeAreaOffset = areaOffset,
            NodeAreaLength = (long)slots * nodeSize,
            NodeMagic = BitConverter.ToUInt64(uuid) ^ 0x45444F4E544C5342UL,
        };
        _nextSlot = areaOffset;
    }

    public BtreeId Btree { get; }
    public MemoryBlockDevice Device { get; }
    public BtreeGeometry Geometry { get; }

    /// <summary>The root as last written (null until <see cref="Write"/>, or when the btree was reset).</summary>
    public CraftedNode? Root { get; internal set; }

    /// <summary>The root record of the last write, as the superblock would hold it.</summary>
    public BtreeRoot? RootRecord { get; private set; }

    /// <summary>A position in the crafted btree: inode 1, the given offset.</summary>
    public static Bpos P(ulong offset) => new(1, offset);

    /// <summary>The last position before P(offset + 1): a node max that tiles with a next node starting at P(offset + 1).</summary>
    public static Bpos E(ulong offset) => new(1, offset, uint.MaxValue);

    /// <summary>The value every crafted key carries: which node it was written into and where.</summary>
    public static byte[] ValueFor(string node, Bpos pos) => System.Text.Encoding.ASCII.GetBytes($"{node}@{pos.Offset}");

    /// <summary>A leaf over [min, max] holding one key at each of <paramref name="offsets"/> (inode 1).</summary>
    public CraftedNode Leaf(string name, Bpos min, Bpos max, IEnumerable<ulong> offsets, uint generation = 1)
    {
        var node = NewNode(name, 0, min, max, generation);
        foreach (var o in offsets)
        {
            var pos = P(o);
            if (pos < min || pos > max)
                throw new ArgumentException($"key {pos.ToText()} outside leaf {name} [{min.ToText()}..{max.ToText()}]");
            node.Keys[pos] = ValueFor(name, pos);
        }
        return node;
    }


    /// <summary>An interior node at <paramref name="level"/> over [min, max] pointing to <paramref name="children"/> (pointer range = child header range).</summary>
    public CraftedNode Interior(string name, byte level, Bpos min, Bpos max, params CraftedNode[] children) =>
        Interior(name, level, min, max, 1, children);

    public CraftedNode Interior(string name, byte level, Bpos min, Bpos max, uint generation, params CraftedNode[] children)
    {
        var node = NewNode(name, level, min, max, generation);
        foreach (var c in children)
            node.Children.Add(new CraftedPointer { Node = c, Min = c.Min, Max = c.Max });
        SortChildren(node);
        return node;
    }

    /// <summary>A root over [min, max] at the level above its children.</summary>
    public CraftedNode RootOver(params CraftedNode[] children) =>
        Interior("root", (byte)(children.Max(c => c.Level) + 1), Bpos.Min, Bpos.Max, children);

    private CraftedNode NewNode(string name, byte level, Bpos min, Bpos max, uint generation)
    {
        var node = new CraftedNode(name, NewSeq()) { Level = level, Min = min, Max = max, Generation = generation };
        _bySeq[node.Seq] = node;
        return node;
    }

    internal ulong NewSeq()
    {
        ulong seq;
        do
        {
            seq = (ulong)_random.NextInt64(1, long.MaxValue);
        }
        while (_bySeq.ContainsKey(seq));
        return seq;
    }

    internal CraftedNode? NodeBySeq(ulong seq) => _bySeq.GetValueOrDefault(seq);

    internal void Register(CraftedNode node) => _bySeq[node.Seq] = node;

    internal static void SortChildren(CraftedNode node) => node.Children.Sort((a, b) => a.Max.CompareTo(b.Max));

    /// <summary>Every node reachable from the root, top-down.</summary>
    public IEnumerable<CraftedNode> Nodes()
    {
        if (Root is null)
            yield break;
        var queue = new Queue<CraftedNode>();
        queue.Enqueue(Root);
        while (queue.Count > 0)
        {
            var n = queue.Dequeue();
            yield return n;
            foreach (var c in n.Children)
                queue.Enqueue(c.Node);
        }
    }

    /// <summary>
    /// Writes every node reachable from <paramref name="root"/> into fresh slots (children first,
    /// so pointers carry their sectors_written), applies damage, and returns the root record.
    /// </summary>
    public BtreeRoot Write(CraftedNode root)
    {
        Root = root;
        WriteSubtree(root);
        var ptr = PointerTo(root, root.Min, BtreePtrFlags.None);
        RootRecord = new BtreeRoot(Btree, root.Level, ptr);
        return RootRecord;
    }

    /// <summary>Marks the btree as having no root (an empty btree).</summary>
    internal void ClearRoot()
    {
        Root = null;
        RootRecord = null;
    }

    private void WriteSubtree(CraftedNode node)
    {
        foreach (var c in node.Children)
            WriteSubtree(c.Node);
        var slot = AllocateSlot();
        node.SlotOffset = slot;
        node.SectorsWritten = WriteNode(node, slot, Geometry.NodeMagic);
        ApplyDamage(node);
    }

    /// <summary>
    /// Writes <paramref name="node"/> alone into a fresh slot, outside the tree (an older version
    /// left on disk, a node of another filesystem with <paramref name="magic"/>). An interior
    /// node's children must have been written already. Returns the slot's offset.
    /// </summary>
    public long WriteLoose(CraftedNode node, ulong? magic = null)
    {
        var slot = AllocateSlot();
        node.SlotOffset = slot;
        node.SectorsWritten = WriteNode(node, slot, magic ?? Geometry.NodeMagic);
        ApplyDamage(node);
        return slot;
    }

    /// <summary>Copies the slot at <paramref name="from"/> byte for byte into a fresh slot; returns its offset.</summary>
    public long CopySlotToFreshSlot(long from)
    {
        var to = AllocateSlot();
        CopyBlock(from, to, Geometry.NodeSize);
        return to;
    }

    /// <summary>Copies <paramref name="length"/> bytes at <paramref name="from"/> over <paramref name="to"/> (a misdirected write).</summary>
    public void CopyBlock(long from, long to, int length) =>
        Device.Contents.Slice(checked((int)from), length).CopyTo(Device.Contents.Slice(checked((int)to), length));

    private long AllocateSlot()
    {
        if (_nextSlot + Geometry.NodeSize > Geometry.NodeAreaOffset + Geometry.NodeAreaLength)
            throw new InvalidOperationException("crafted tree is out of node slots");
        var slot = _nextSlot;
        _nextSlot += Geometry.NodeSize;
        return slot;
    }

    internal BtreePtrValue PointerTo(CraftedNode child, Bpos min, BtreePtrFlags flags) => new()
    {
        Seq = child.Seq,
        SectorsWritten = (ushort)child.SectorsWritten,
        Flags = flags,
        MinKey = min,
        Ptrs = [new DevicePtr(Geometry.Device, (ulong)(child.SlotOffset / 512), 0)],
    };

    private void ApplyDamage(CraftedNode node)
    {
        var slot = Device.Contents.Slice(checked((int)node.SlotOffset), Geometry.NodeSize);
        switch (node.Damage)
        {
            case CraftedDamage.BadHeaderChecksum:
                // A byte inside the node header (the min key), covered by the first record's checksum.
                slot[40] ^= 0x5a;
                break;
            case CraftedDamage.Garbage:
                _random.NextBytes(slot);
                break;
            case CraftedDamage.BadSecondBsetChecksum:
                if (node.SecondBsetOffset < 0)
                    throw new InvalidOperationException($"{node} has no second bset to damage");
                // A byte of the first key's position in the appended record.
                slot[node.SecondBsetOffset + 40 + 10] ^= 0x5a;
                break;
        }
    }

    /// <summary>The keys of every leaf reachable from the root, as the model holds them (pos to value).</summary>
    public SortedDictionary<Bpos, byte[]> ModelKeys()
    {
        var keys = new SortedDictionary<Bpos, byte[]>();
        foreach (var n in Nodes())
        {
            if (n.Level != 0)
                continue;
            foreach (var (pos, value) in n.Keys)
                keys[pos] = value;
        }
        return keys;
    }
}

public sealed partial class CraftedTree
{
    /// <summary>
    /// Serialises one node into its slot with the node writer: the first record, then (when
    /// <see cref="CraftedNode.SecondBsetFrom"/> is set) an appended bset with the keys from there
    /// on, then (with <see cref="CraftedNode.BsetBeyondWritten"/>) one more bset that the parent's
    /// sectors_written does not cover. Returns the sectors the parent pointer records.
    /// </summary>
    private int WriteNode(CraftedNode node, long slot, ulong magic)
    {
        var options = new BsetWriteOptions(Geometry.BlockSize, Geometry.ChecksumType, Geometry.Version, JournalSeq: node.JournalSeq);
        var buffer = new byte[Geometry.NodeSize];
        var all = KeysOf(node);
        var split = node.SecondBsetFrom is { } from ? all.LowerBound(from) : all.Count;
        var header = new NodeHeader(node.Seq, node.Generation, Btree, node.Level, node.Min, node.Max);
        var written = BtreeNodeWriter.WriteFirst(buffer, magic, header, Slice(all, 0, split), options);
        node.SecondBsetOffset = -1;
        if (split < all.Count)
        {
            node.SecondBsetOffset = written;
            written += BtreeNodeWriter.WriteAppend(buffer.AsSpan(written), node.Seq, written / 512, Slice(all, split, all.Count), options);
        }
        var durable = written;
        if (node.BsetBeyondWritten is { } extra)
        {
            var b = new KeyRunBuilder();
            b.Add(new Bkey(extra, KeyType.Cookie), ValueFor(node.Name + "+", extra));
            written += BtreeNodeWriter.WriteAppend(buffer.AsSpan(written), node.Seq, written / 512, b.Build(), options);
        }
        Device.Write(slot, buffer);
        return durable / 512;
    }

    private KeyRun KeysOf(CraftedNode node)
    {
        var b = new KeyRunBuilder();
        if (node.Level == 0)
        {
            foreach (var (pos, value) in node.Keys)
                b.Add(new Bkey(pos, KeyType.Cookie), value);
        }
        else
        {
            foreach (var c in node.Children)
                b.Add(new Bkey(c.Max, KeyType.BtreePtr), PointerTo(c.Node, c.Min, c.Flags).ToBytes());
        }
        return b.Build();
    }

    private static KeyRun Slice(KeyRun run, int from, int to)
    {
        var b = new KeyRunBuilder();
        for (var i = from; i < to; i++)
            b.Add(run[i].Key, run.ValueOf(i));
        return b.Build();
    }
}
