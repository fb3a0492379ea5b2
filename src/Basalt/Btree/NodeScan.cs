// The node scan: finds btree nodes by reading the device's node space, for topology repair to
// rebuild what an unreadable root or interior node (or a gap) would otherwise lose.
//
// What is scanned: every node slot of the regions that have ever held btree nodes (the
// node-region map of the superblock member: the node area format reserved and every region a
// bucket was claimed in since; the journal buckets left out), read sequentially in large chunks. A slot is a candidate when its header carries
// this filesystem's node magic (which is derived from the filesystem uuid); it is accepted when
// its header is sane (seq, known btree id, level, min <= max, reserved fields zero, a supported
// version) and its first record holds: the node's seq, its checksum, its sector offset, key
// headers that walk its key area exactly. Later records count while they do the same; the first
// that does not ends the node (a torn append looks exactly like that). Keys are not validated one
// by one here: the scan must keep up with the read (docs/topology.md), and the node reader
// validates every key when topology repair reads a found node. A slot whose magic
// is another filesystem's but whose first record checksums correctly is listed as rejected
// ("another filesystem"), so a user sees the leftovers of an earlier format.
//
// How: a few workers (one per core, two to four) each take the next chunk, read it into their own
// buffer and examine its slots right there, on the core that copied them in; the reads are issued
// in chunk order, one at a time, and one worker's examination overlaps the next one's read (see
// Examination). The hot methods are compiled fully optimised from the first call: a scan runs
// once per check, too short for the tiered JIT to reach them in time.
//
// Memory is one small record (ScannedNode, a struct) per slot that holds a node, plus each
// worker's chunk buffer, reused. The scan never writes.
//
// Choosing versions: per btree and level, candidates are taken newest first. "Newer" is the
// highest journal seq among the node's (non-blacklisted) bsets, then the higher generation, then
// more sectors written, then the lower offset (the node seq is a random cookie and orders
// nothing). A node keeps the part of its range that no newer node claimed: all of it (chosen),
// the first unclaimed part (clipped), or nothing (superseded, naming the newer node that covers
// its start). So the chosen nodes of one level never overlap, and which one wins never depends on
// the order the slots were read in. A node whose first bset carries a blacklisted journal seq
// was written for a journal entry recovery discarded: it is rejected, as is a node that fails
// validation.
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>What the scan decided about a node it found.</summary>
public enum ScannedNodeStatus : byte
{
    /// <summary>The newest node for its whole range.</summary>
    Chosen = 0,
    /// <summary>Newer nodes claimed part of its range; it is used for the rest (<see cref="ScannedNode.UseMin"/>..<see cref="ScannedNode.UseMax"/>).</summary>
    Clipped = 1,
    /// <summary>Newer nodes cover all of its range (or it is a copy of a node kept at a lower offset).</summary>
    Superseded = 2,
    /// <summary>Not usable: see <see cref="ScannedNode.Rejection"/>.</summary>
    Rejected = 3,
}

/// <summary>Why a found node was rejected.</summary>
public enum ScanRejection : byte
{
    None = 0,
    /// <summary>A Basalt node (its first record checksums) carrying another filesystem's node magic.</summary>
    ForeignFilesystem = 1,
    /// <summary>The node failed validation (<see cref="ScannedNode.FailureId"/>).</summary>
    Invalid = 2,
    /// <summary>Its first bset carries a blacklisted journal seq: written for an entry recovery discarded.</summary>
    BlacklistedJournalSeq = 3,
    /// <summary>
    /// It lies in a bucket that is not node space: a btree bucket whose claim a crash lost (the
    /// nodes written there were never named by a durable pointer) or one given back since.
    /// </summary>
    OutsideNodeSpace = 4,
}

/// <summary>One node found by the scan. Header fields of a rejected node are as read, unverified.</summary>
public readonly record struct ScannedNode
{
    public required long Offset { get; init; }
    public required BtreeId Btree { get; init; }
    public required byte Level { get; init; }
    public required Bpos Min { get; init; }
    public required Bpos Max { get; init; }
    /// <summary>The node seq (a random cookie: identity, not age).</summary>
    public required ulong Seq { get; init; }
    public required uint Generation { get; init; }
    /// <summary>Highest non-blacklisted journal seq among the node's bsets.</summary>
    public ulong JournalSeq { get; init; }
    public ushort SectorsWritten { get; init; }
    /// <summary>Live keys (pointers for an interior node) after validation.</summary>
    public int Keys { get; init; }
    public ScannedNodeStatus Status { get; init; }
    public ScanRejection Rejection { get; init; }
    /// <summary>The finding that failed validation (with <see cref="ScanRejection.Invalid"/>).</summary>
    public FsckErrorId? FailureId { get; init; }
    /// <summary>Offset of the newer node that supersedes or clips it; -1 when none.</summary>
    public long SupersededBy { get; init; }
    /// <summary>The part of the range the node is used for (chosen or clipped).</summary>
    public Bpos UseMin { get; init; }
    public Bpos UseMax { get; init; }

    /// <summary>
    /// <see cref="Min"/> and <see cref="Max"/> are not the header's: they were narrowed to the range
    /// of the pointer that names this node (<see cref="NodeScan.Narrow"/>).
    /// </summary>
    public bool Narrowed { get; init; }

    public bool IsUsable => Status is ScannedNodeStatus.Chosen or ScannedNodeStatus.Clipped;

    /// <summary>True when this node is newer than <paramref name="other"/> (journal seq, generation, sectors, then lower offset).</summary>
    public bool IsNewerThan(in ScannedNode other) => NodeScan.CompareNewness(this, other) < 0;

    /// <summary>A pointer to this node over the range it is used for (RangeUpdated when that is not its header range).</summary>
    public BtreePtrValue PointerOver(byte device, Bpos min, Bpos max) => new()
    {
        Seq = Seq,
        SectorsWritten = SectorsWritten,
        Flags = min == Min && max == Max && !Narrowed ? BtreePtrFlags.None : BtreePtrFlags.RangeUpdated,
        MinKey = min,
        Ptrs = [new DevicePtr(device, (ulong)(Offset / FormatLimits.SectorSize), 0)],
    };

    public string Describe() =>
        $"node at offset {Offset} [{Min.ToText()}..{Max.ToText()}] gen {Generation} journal seq {JournalSeq}";

    public string StatusText() => Status switch
    {
        ScannedNodeStatus.Chosen => "chosen",
        ScannedNodeStatus.Clipped => $"clipped to [{UseMin.ToText()}..{UseMax.ToText()}] by node at offset {SupersededBy}",
        ScannedNodeStatus.Superseded => $"superseded by node at offset {SupersededBy}",
        _ => Rejection switch
        {
            ScanRejection.ForeignFilesystem => "rejected: node of another filesystem (different uuid)",
            ScanRejection.BlacklistedJournalSeq => $"rejected: journal seq {JournalSeq} is blacklisted",
            ScanRejection.OutsideNodeSpace => "rejected: its bucket is not node space (a claim a crash lost, or a bucket given back)",
            _ => $"rejected: {(FailureId is { } id ? FsckCatalogue.NameOf(id) : "invalid")}",
        },
    };
}

/// <summary>The nodes found in the node space, with the version chosen for each btree, level and range.</summary>
public sealed partial class NodeScan
{
    /// <summary>Bytes read per device read (rounded down to whole nodes, at least one).</summary>
    public const int ChunkBytes = 4 * 1024 * 1024;

    /// <summary>
    /// Most workers a scan runs, each with one chunk buffer: with the reads one at a time, more
    /// than one beyond the reading worker only helps while a chunk's examination takes longer than
    /// the next chunk's read.
    /// </summary>
    private const int MaxWorkers = 4;

    /// <summary>Ascending by offset.</summary>
    private readonly ScannedNode[] _nodes;

    private NodeScan(ScannedNode[] nodes, long bytesScanned, int nodeSize)
    {
        _nodes = nodes;
        BytesScanned = bytesScanned;
        NodeSize = nodeSize;
    }

    /// <summary>Every node found, by offset.</summary>
    public IReadOnlyList<ScannedNode> Nodes => _nodes;

    public long BytesScanned { get; }

    public int NodeSize { get; }

    /// <summary>
    /// Scans the node area of <paramref name="device"/>. <paramref name="isBlacklisted"/> is the
    /// journal's blacklist (null: none).
    /// </summary>
    public static NodeScan Run(IBlockDevice device, BtreeGeometry geometry, Func<ulong, bool>? isBlacklisted, CancellationToken ct,
        Func<long, bool>? inNodeSpace = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(geometry);
        var nodeSize = geometry.NodeSize;
        var chunk = (int)Math.Max(nodeSize, ChunkBytes / nodeSize * nodeSize);
        var chunks = new List<(long At, int Length)>();
        foreach (var (offset, length) in geometry.NodeRegions ?? [(geometry.NodeAreaOffset, geometry.NodeAreaLength)])
        {
            var end = Math.Min(offset + (length / nodeSize * nodeSize), device.Size);
            for (var at = offset; at + nodeSize <= end; at += chunk)
                chunks.Add((at, (int)Math.Min(chunk, (end - at) / nodeSize * nodeSize)));
        }
        var examination = new Examination(device, geometry, isBlacklisted, chunks, chunk, ct);
        var workers = Math.Min(chunks.Count, Math.Clamp(Environment.ProcessorCount, 2, MaxWorkers));
        var helpers = new Task[Math.Max(0, workers - 1)];
        for (var w = 0; w < helpers.Length; w++)
            helpers[w] = Task.Factory.StartNew(examination.Work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (workers > 0)
            examination.Work();
        // Every worker ends (and gives its buffer back) before the scan returns or throws.
        Task.WaitAll(helpers, CancellationToken.None);
        examination.ThrowIfFailed();

        var foundCount = 0;
        foreach (var records in examination.Found)
            foundCount += records?.Length ?? 0;
        var all = new ScannedNode[foundCount];
        var next = 0;
        foreach (var records in examination.Found)
        {
            foreach (var node in records ?? [])
            {
                all[next++] = node.Status != ScannedNodeStatus.Rejected && inNodeSpace is not null && !inNodeSpace(node.Offset)
                    ? node with { Status = ScannedNodeStatus.Rejected, Rejection = ScanRejection.OutsideNodeSpace }
                    : node;
            }
        }
        // Regions come in ascending order; a geometry that lists them otherwise is sorted here.
        if (!IsByOffset(all))
            Array.Sort(all, static (a, b) => a.Offset.CompareTo(b.Offset));
        Resolve(all);
        return new NodeScan(all, chunks.Sum(c => (long)c.Length), nodeSize);
    }

    /// <summary>
    /// The reading and examination of the chunks, shared by the workers. Each worker takes the next
    /// chunk, reads it into its own buffer and examines it there, on the thread (and so, as a rule,
    /// the core) that just copied it in: no hand-over between threads per chunk, and no second core
    /// fetching the bytes from the first one's cache. The reads are issued in chunk order and one at
    /// a time (the device sees what a sequential read of the regions does); a worker's examination
    /// overlaps the next worker's read, so the scan costs about the larger of the read and the
    /// examination, not their sum.
    /// </summary>
    private sealed class Examination(IBlockDevice device, BtreeGeometry geometry, Func<ulong, bool>? isBlacklisted,
        List<(long At, int Length)> chunks, int chunkBytes, CancellationToken ct)
    {
        private readonly object _readGate = new();
        private int _next;
        private volatile bool _stop;
        private Exception? _failure;

        /// <summary>Per chunk, the records of the nodes found in it (null when none), in slot order.</summary>
        public ScannedNode[]?[] Found { get; } = new ScannedNode[]?[chunks.Count];

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Work()
        {
            var nodeSize = geometry.NodeSize;
            var buffer = ArrayPool<byte>.Shared.Rent(chunkBytes);
            var examined = new ScannedNode[chunkBytes / nodeSize];
            try
            {
                while (true)
                {
                    int k;
                    lock (_readGate)
                    {
                        if (_stop)
                            return;
                        ct.ThrowIfCancellationRequested();
                        k = _next++;
                        if (k >= chunks.Count)
                            return;
                        Read(device, chunks[k], buffer, nodeSize);
                    }
                    var (at, length) = chunks[k];
                    var kept = 0;
                    for (var i = 0; i < length / nodeSize; i++)
                    {
                        if (Examine(buffer.AsSpan(i * nodeSize, nodeSize), at + ((long)i * nodeSize), geometry, isBlacklisted, out examined[kept]))
                            kept++;
                    }
                    Found[k] = kept == 0 ? null : examined.AsSpan(0, kept).ToArray();
                }
            }
            catch (Exception ex)
            {
                Interlocked.CompareExchange(ref _failure, ex, null);
                _stop = true;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        /// <summary>Rethrows, on the scan's thread, what stopped the first worker that failed (a cancellation included).</summary>
        public void ThrowIfFailed()
        {
            if (_failure is not null)
                ExceptionDispatchInfo.Throw(_failure);
        }
    }

    private static void Read(IBlockDevice device, (long At, int Length) chunk, byte[] buffer, int nodeSize)
    {
        var span = buffer.AsSpan(0, chunk.Length);
        try
        {
            device.Read(chunk.At, span);
        }
        catch (BasaltException ex) when (ex.Class == ErrorClass.Io)
        {
            // An unreadable chunk: retry it slot by slot, so one bad sector costs one slot.
            ReadSlotwise(device, chunk.At, span, nodeSize);
        }
    }

    private static void ReadSlotwise(IBlockDevice device, long at, Span<byte> span, int nodeSize)
    {
        for (var o = 0; o < span.Length; o += nodeSize)
        {
            var slot = span.Slice(o, nodeSize);
            try
            {
                device.Read(at + o, slot);
            }
            catch (BasaltException ex) when (ex.Class == ErrorClass.Io)
            {
                slot.Clear();
            }
        }
    }

    /// <summary>The record for the slot at <paramref name="offset"/>, when the scan found a node there.</summary>
    public bool TryGet(long offset, out ScannedNode node)
    {
        int low = 0, high = _nodes.Length - 1;
        while (low <= high)
        {
            var middle = low + ((high - low) >> 1);
            var c = _nodes[middle].Offset.CompareTo(offset);
            if (c == 0)
            {
                node = _nodes[middle];
                return true;
            }
            if (c < 0)
                low = middle + 1;
            else
                high = middle - 1;
        }
        node = default;
        return false;
    }

    private static bool IsByOffset(ScannedNode[] nodes)
    {
        for (var i = 1; i < nodes.Length; i++)
        {
            if (nodes[i].Offset <= nodes[i - 1].Offset)
                return false;
        }
        return true;
    }

    /// <summary>
    /// Narrows the nodes at the given offsets to the given ranges (each inside the node's header
    /// range) and decides the versions again. A node's header is its claim over the key space: a
    /// header whose min or max was damaged while its checksum still holds would claim far more than
    /// the node ever covered, and as the newest version there it would supersede every older node in
    /// that range, whose keys it does not hold. The caller narrows a node only to the range of a
    /// pointer that names it and that holds all of its keys.
    /// </summary>
    internal int Narrow(IReadOnlyDictionary<long, (Bpos Min, Bpos Max)> ranges)
    {
        var narrowed = 0;
        for (var i = 0; i < _nodes.Length; i++)
        {
            ref var n = ref _nodes[i];
            if (n.Status == ScannedNodeStatus.Rejected || !ranges.TryGetValue(n.Offset, out var r) || r.Min < n.Min || r.Max > n.Max ||
                (r.Min == n.Min && r.Max == n.Max))
            {
                continue;
            }
            n = n with { Min = r.Min, Max = r.Max, UseMin = r.Min, UseMax = r.Max, Narrowed = true };
            narrowed++;
        }
        if (narrowed > 0)
            Resolve(_nodes);
        return narrowed;
    }

    /// <summary>Whether any usable node of <paramref name="btree"/> was found.</summary>
    public bool HasNodes(BtreeId btree) => _nodes.Any(n => n.Btree == btree && n.IsUsable);

    /// <summary>The highest level holding a usable node of <paramref name="btree"/> below <paramref name="belowLevel"/>; -1 when none.</summary>
    public int HighestLevel(BtreeId btree, int belowLevel)
    {
        var best = -1;
        foreach (ref readonly var n in _nodes.AsSpan())
        {
            if (n.Btree == btree && n.IsUsable && n.Level < belowLevel && n.Level > best)
                best = n.Level;
        }
        return best;
    }

    /// <summary>The usable nodes of <paramref name="btree"/> at <paramref name="level"/> whose used range meets [from, to], in key order.</summary>
    public List<ScannedNode> Usable(BtreeId btree, int level, Bpos from, Bpos to)
    {
        var list = new List<ScannedNode>();
        foreach (ref readonly var n in _nodes.AsSpan())
        {
            if (n.Btree == btree && n.Level == level && n.IsUsable && n.UseMax >= from && n.UseMin <= to)
                list.Add(n);
        }
        list.Sort((a, b) => a.UseMin.CompareTo(b.UseMin));
        return list;
    }

    /// <summary>Rejected nodes whose header (as read) names <paramref name="btree"/> and meets [from, to].</summary>
    public IEnumerable<ScannedNode> Rejected(BtreeId btree, Bpos from, Bpos to) =>
        _nodes.Where(n => n.Status == ScannedNodeStatus.Rejected && n.Rejection != ScanRejection.ForeignFilesystem &&
                          n.Btree == btree && n.Min <= n.Max && n.Max >= from && n.Min <= to);

    internal static int CompareNewness(in ScannedNode a, in ScannedNode b)
    {
        var c = b.JournalSeq.CompareTo(a.JournalSeq);
        if (c != 0)
            return c;
        c = b.Generation.CompareTo(a.Generation);
        if (c != 0)
            return c;
        c = b.SectorsWritten.CompareTo(a.SectorsWritten);
        return c != 0 ? c : a.Offset.CompareTo(b.Offset);
    }

    /// <summary>Validates one slot; false when it holds no node (zeroes, garbage).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool Examine(ReadOnlySpan<byte> slot, long offset, BtreeGeometry geometry, Func<ulong, bool>? isBlacklisted, out ScannedNode node)
    {
        node = default;
        var magic = BinaryPrimitives.ReadUInt64LittleEndian(slot[BtreeNodeFormat.NodeMagicOffset..]);
        if (magic == 0)
            return false;
        var header = BtreeNodeFormat.ReadNodeHeader(slot);
        var firstJournalSeq = BinaryPrimitives.ReadUInt64LittleEndian(slot[(BtreeNodeFormat.FirstBsetOffset + BtreeNodeFormat.BsetJournalSeqOffset)..]);
        var raw = new ScannedNode
        {
            Offset = offset,
            Btree = header.Btree,
            Level = header.Level,
            Min = header.MinKey,
            Max = header.MaxKey,
            Seq = header.Seq,
            Generation = header.Generation,
            JournalSeq = firstJournalSeq,
            Status = ScannedNodeStatus.Rejected,
            SupersededBy = -1,
        };
        if (magic != geometry.NodeMagic)
            return IsForeignNode(slot) && Reject(raw, ScanRejection.ForeignFilesystem, null, out node);
        if (header.Seq == 0 || header.Level > FormatLimits.MaxBtreeLevel || !BtreeIds.IsKnown((byte)header.Btree) || header.MinKey > header.MaxKey)
            return Reject(raw, ScanRejection.Invalid, FsckErrorId.BtreeNodeBadHeader, out node);
        if (isBlacklisted is not null && firstJournalSeq != 0 && isBlacklisted(firstJournalSeq))
            return Reject(raw, ScanRejection.BlacklistedJournalSeq, null, out node);

        // The first record must be whole: its checksum covers the header.
        if (CheckRecord(slot, 0, header.Seq, out var why) is not { } first)
            return Reject(raw, ScanRejection.Invalid, why, out node);
        if (BinaryPrimitives.ReadUInt16LittleEndian(slot[BtreeNodeFormat.NodeFlagsOffset..]) != 0 ||
            BinaryPrimitives.ReadUInt64LittleEndian(slot[BtreeNodeFormat.NodeReservedOffset..]) != 0)
        {
            return Reject(raw, ScanRejection.Invalid, FsckErrorId.BtreeNodeBadHeader, out node);
        }
        if (first.Version > FormatVersion.Current || first.Version < FormatVersion.Min)
            return Reject(raw, ScanRejection.Invalid, FsckErrorId.BtreeNodeUnsupportedVersion, out node);

        // Later records, block-aligned, while they carry the node's seq and checksum: a record
        // that fails is where the node's writes end (a torn append looks exactly like that).
        var journalSeq = first.JournalSeq;
        var keys = first.Keys;
        var end = RoundUp(first.End, geometry.BlockSize);
        while (end + BtreeNodeFormat.EntryKeysOffset <= slot.Length && CheckRecord(slot, end, header.Seq, out _) is { } next)
        {
            if (next.JournalSeq == 0 || isBlacklisted is null || !isBlacklisted(next.JournalSeq))
            {
                journalSeq = Math.Max(journalSeq, next.JournalSeq);
                keys += next.Keys;
            }
            end = RoundUp(next.End, geometry.BlockSize);
        }
        node = raw with
        {
            JournalSeq = journalSeq,
            SectorsWritten = (ushort)(Math.Min(end, slot.Length) / FormatLimits.SectorSize),
            Keys = keys,
            Status = ScannedNodeStatus.Chosen,
            Rejection = ScanRejection.None,
            UseMin = header.MinKey,
            UseMax = header.MaxKey,
        };
        return true;
    }

    /// <summary>The record of a slot that holds a node the scan cannot use; true (a record is kept).</summary>
    private static bool Reject(in ScannedNode raw, ScanRejection rejection, FsckErrorId? failure, out ScannedNode node)
    {
        node = raw with { Rejection = rejection, FailureId = failure };
        return true;
    }

    /// <summary>What one record of a node says about itself, once its checksum held.</summary>
    private readonly record struct RecordInfo(int End, ulong JournalSeq, ushort Version, int Keys);

    /// <summary>
    /// Checks the record at <paramref name="offset"/>: the node's seq, a known checksum type, a key
    /// area inside the slot, a matching checksum, its recorded sector offset, and key headers that
    /// walk to the end of the key area exactly. Null when any of that fails, with the finding
    /// that names why.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static RecordInfo? CheckRecord(ReadOnlySpan<byte> slot, int offset, ulong seq, out FsckErrorId failure)
    {
        failure = FsckErrorId.BtreeNodeBadSeq;
        var isFirst = offset == 0;
        var bset = slot.Slice(offset + BtreeNodeFormat.BsetOffsetIn(isFirst), BtreeNodeFormat.BsetHeaderSize);
        if (BinaryPrimitives.ReadUInt64LittleEndian(bset[BtreeNodeFormat.BsetSeqOffset..]) != seq)
            return null;
        var type = bset[BtreeNodeFormat.BsetChecksumTypeOffset];
        failure = FsckErrorId.BsetUnknownChecksum;
        if (!BtreeNodeFormat.IsNodeChecksumType(type))
            return null;
        failure = FsckErrorId.BsetPastEndOfBtreeNode;
        var keysAt = offset + BtreeNodeFormat.KeysOffsetIn(isFirst);
        var keysEnd = keysAt + ((long)BinaryPrimitives.ReadUInt32LittleEndian(bset[BtreeNodeFormat.BsetU64sOffset..]) * 8);
        if (keysEnd > slot.Length)
            return null;
        failure = FsckErrorId.BsetBadChecksum;
        var stored = BinaryPrimitives.ReadUInt64LittleEndian(slot[offset..]);
        if (Checksums.Compute((ChecksumType)type, slot[(offset + BtreeNodeFormat.ChecksumStart)..(int)keysEnd]) != stored)
            return null;
        failure = FsckErrorId.BsetWrongSectorOffset;
        if (BinaryPrimitives.ReadUInt16LittleEndian(bset[BtreeNodeFormat.BsetSectorOffsetOffset..]) != offset / FormatLimits.SectorSize)
            return null;
        failure = FsckErrorId.BtreeNodeBkeyBadU64s;
        var keys = 0;
        for (var at = keysAt; at < keysEnd; keys++)
        {
            var u64s = BinaryPrimitives.ReadUInt16LittleEndian(slot[(int)at..]);
            if (u64s * 8 < BkeyFormat.HeaderSize || at + (u64s * 8) > keysEnd)
                return null;
            at += u64s * 8;
        }
        return new RecordInfo((int)keysEnd, BinaryPrimitives.ReadUInt64LittleEndian(bset[BtreeNodeFormat.BsetJournalSeqOffset..]),
            BinaryPrimitives.ReadUInt16LittleEndian(bset[BtreeNodeFormat.BsetVersionOffset..]), keys);
    }

    private static int RoundUp(int value, int block) => (value + block - 1) / block * block;

    /// <summary>A slot with another magic that still looks like a Basalt node: its first record checksums.</summary>
    private static bool IsForeignNode(ReadOnlySpan<byte> slot)
    {
        var bset = slot.Slice(BtreeNodeFormat.FirstBsetOffset, BtreeNodeFormat.BsetHeaderSize);
        var seq = BinaryPrimitives.ReadUInt64LittleEndian(slot[BtreeNodeFormat.NodeSeqOffset..]);
        if (seq == 0 || BinaryPrimitives.ReadUInt64LittleEndian(bset[BtreeNodeFormat.BsetSeqOffset..]) != seq)
            return false;
        var type = bset[BtreeNodeFormat.BsetChecksumTypeOffset];
        if (!BtreeNodeFormat.IsNodeChecksumType(type))
            return false;
        var end = BtreeNodeFormat.FirstKeysOffset + ((long)BinaryPrimitives.ReadUInt32LittleEndian(bset[BtreeNodeFormat.BsetU64sOffset..]) * 8);
        if (end > slot.Length)
            return false;
        var stored = BinaryPrimitives.ReadUInt64LittleEndian(slot[BtreeNodeFormat.NodeChecksumOffset..]);
        return Checksums.Compute((ChecksumType)type, slot[BtreeNodeFormat.ChecksumStart..(int)end]) == stored;
    }
}
