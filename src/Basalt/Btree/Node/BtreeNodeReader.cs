// Reading a btree node: validate every record of the slot, then merge the surviving bsets into
// one KeyRun (newest wins, deletion markers dropped). Validation follows the node-read model of
// digest §4 with Basalt's own layout and ids:
//  - identity first: the header's magic and seq say whether the slot holds the node the pointer
//    names at all (a zeroed or reused slot is "the wrong thing", MustRetry, not media damage);
//  - per record: only the length is bounded before the checksum is verified, nothing else in a
//    record is trusted before that;
//  - every finding carries its catalogue id and class; the class decides the outcome: with another
//    replica a retry class fails the read, without one WantRetry is downgraded to Fixable (keep
//    what validated) and MustRetry becomes BadNode;
//  - records past the pointer's sectors_written are the trace of an append that crashed before its
//    parent was updated: ignored and counted, never reported.
// The clean path allocates nothing per key: keys are validated in place in the slot, indexed in a
// pooled scratch array, and copied once into the result's entry array and single value arena.
using System.Buffers;
using System.Buffers.Binary;
using Basalt.Btree.Node;
using Basalt.Format;
using static Basalt.Btree.Node.BtreeNodeFormat;

namespace Basalt.Btree.Node;

public static partial class BtreeNodeReader
{
    /// <summary>
    /// Validates and merges the node in <paramref name="slot"/> (the node's bytes from offset 0, at
    /// least the node size when it was read whole). The result owns a copy of the surviving values,
    /// so the slot buffer may be reused at once. Never throws for any slot content; throws only for
    /// an impossible context (block or node size).
    /// </summary>
    public static NodeReadResult Read(ReadOnlySpan<byte> slot, in NodeReadContext context) => Read(slot, null, context);

    /// <summary>
    /// Like <see cref="Read(ReadOnlySpan{byte}, in NodeReadContext)"/>, but the result's KeyRun uses
    /// <paramref name="slot"/> itself as its value arena instead of copying the values out: the
    /// caller hands the buffer over and must never modify or reuse it (nor return it to a pool)
    /// while the run is alive. Saves one node-sized allocation and copy per read.
    /// </summary>
    public static NodeReadResult ReadInPlace(byte[] slot, in NodeReadContext context)
    {
        ArgumentNullException.ThrowIfNull(slot);
        return Read(slot, slot, context);
    }

    /// <summary>
    /// Every key of every bset the reader keeps, unmerged (an older bset's version of a position as
    /// well as the newest): what a node may have pointed at in any of its versions. Recovery marks
    /// node slots from it before a replay. Never throws for any slot content.
    /// </summary>
    public static List<(Bkey Key, byte[] Value)> ReadAllVersions(ReadOnlySpan<byte> slot, in NodeReadContext context)
    {
        var maxKeys = Math.Max(1, Math.Min(slot.Length, context.NodeSize) / BkeyFormat.HeaderSize);
        var scratch = ArrayPool<KeyEntry>.Shared.Rent(maxKeys);
        var bsetEnds = ArrayPool<int>.Shared.Rent(Math.Max(1, context.NodeSize / FormatLimits.SectorSize) + 1);
        try
        {
            var walk = new NodeWalk(slot, null, context, scratch, bsetEnds);
            walk.Run();
            var keys = new List<(Bkey, byte[])>();
            foreach (var e in walk.AcceptedKeys)
                keys.Add((e.Key, slot.Slice(e.ValueOffset, e.ValueLength).ToArray()));
            return keys;
        }
        finally
        {
            ArrayPool<KeyEntry>.Shared.Return(scratch);
            ArrayPool<int>.Shared.Return(bsetEnds);
        }
    }

    private static NodeReadResult Read(ReadOnlySpan<byte> slot, byte[]? arena, in NodeReadContext context)
    {
        ArgumentNullException.ThrowIfNull(context.Ptr, nameof(context));
        if (context.BlockSize < FormatLimits.SectorSize || (context.BlockSize & (context.BlockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(context), $"block size {context.BlockSize} is not a power of two >= 512");
        if (context.NodeSize < context.BlockSize || context.NodeSize % context.BlockSize != 0)
            throw new ArgumentOutOfRangeException(nameof(context), $"node size {context.NodeSize} is not a multiple of block size {context.BlockSize}");

        var maxKeys = Math.Max(1, Math.Min(slot.Length, context.NodeSize) / BkeyFormat.HeaderSize);
        var scratch = ArrayPool<KeyEntry>.Shared.Rent(maxKeys);
        var bsetEnds = ArrayPool<int>.Shared.Rent(Math.Max(1, context.NodeSize / FormatLimits.SectorSize) + 1);
        try
        {
            var walk = new NodeWalk(slot, arena, context, scratch, bsetEnds);
            walk.Run();
            return walk.Finish();
        }
        finally
        {
            ArrayPool<KeyEntry>.Shared.Return(scratch);
            ArrayPool<int>.Shared.Return(bsetEnds);
        }
    }

    /// <summary>The state of one read: the walk over the records, the findings, the accepted keys.</summary>
    private ref partial struct NodeWalk
    {
        private readonly ReadOnlySpan<byte> _slot;
        private readonly byte[]? _inPlaceArena;  // the slot's own array when the result may keep it
        private readonly NodeReadContext _context;
        private readonly int _nodeEnd;          // bytes of the slot that belong to the node
        private readonly int _limit;            // bytes the pointer says were written (node end if unknown)
        private readonly ushort _sbVersion;
        private readonly ushort _sbVersionMin;
        private readonly int _maxValueBytes;

        // Accepted keys of the kept bsets, in slot order: _scratch[.._keyCount]; bset b holds
        // [_bsetEnds[b-1], _bsetEnds[b]). ValueOffset is the value's offset in the slot.
        private readonly KeyEntry[] _scratch;
        private readonly int[] _bsetEnds;
        private int _keyCount;
        private int _keptBsets;

        /// <summary>Every accepted key of the kept bsets, in slot order, before the merge.</summary>
        public readonly ReadOnlySpan<KeyEntry> AcceptedKeys => _scratch.AsSpan(0, _keyCount);
        private long _valueBytes;

        private List<NodeFinding>? _findings;
        private NodeErrorClass? _failure;
        private NodeHeader _header;
        private bool _haveHeader;
        private Bpos _nodeMin;
        private Bpos _nodeMax;
        private ulong _seq;
        private int _walked;                    // end of the last record walked, bytes
        private int _bsetCount;
        private int _ignoredBeyond;
        private int _blacklisted;
        private ulong _maxJournalSeq;

        public NodeWalk(ReadOnlySpan<byte> slot, byte[]? inPlaceArena, in NodeReadContext context, KeyEntry[] scratch, int[] bsetEnds)
        {
            _slot = slot;
            _inPlaceArena = inPlaceArena;
            _context = context;
            _nodeEnd = Math.Min(slot.Length, context.NodeSize) / FormatLimits.SectorSize * FormatLimits.SectorSize;
            var written = context.Ptr.SectorsWritten * FormatLimits.SectorSize;
            _limit = written > 0 ? Math.Min(written, context.NodeSize) : context.NodeSize;
            _sbVersion = context.Version != 0 ? context.Version : FormatVersion.Current;
            _sbVersionMin = context.VersionMin != 0 ? context.VersionMin : FormatVersion.Min;
            _maxValueBytes = MaxValueBytes(context.NodeSize);
            _scratch = scratch;
            _bsetEnds = bsetEnds;
        }

        private readonly bool RangeUpdated => (_context.Ptr.Flags & BtreePtrFlags.RangeUpdated) != 0;

        public void Run()
        {
            if (!CheckIdentity())
                return;
            var stoppedByFinding = !WalkRecords();
            if (_failure is not null)
                return;
            if (!stoppedByFinding)
            {
                if (_context.Ptr.SectorsWritten == 0)
                    FindRecordAfterGap(Math.Min(_nodeEnd, _limit));   // length unknown: nothing of this node may follow the end
                else if (_walked < _limit && ReportMissingData())
                    FindRecordAfterGap(Math.Min(_nodeEnd, _limit));
            }
            if (_failure is null)
                CountRecordsBeyondWritten();
        }

        // Magic and seq: is this the node the pointer names at all?
        private bool CheckIdentity()
        {
            if (_nodeEnd < FirstKeysOffset)
                return Report(FsckErrorId.BtreeNodeBadHeader, 0, $"slot of {_slot.Length} bytes cannot hold a node header");
            var magic = BinaryPrimitives.ReadUInt64LittleEndian(_slot[NodeMagicOffset..]);
            if (magic != _context.Magic)
                return Report(FsckErrorId.BtreeNodeBadMagic, 0, $"bad magic: want {_context.Magic:x16}, got {magic:x16}");
            _seq = BinaryPrimitives.ReadUInt64LittleEndian(_slot[NodeSeqOffset..]);
            if (_seq == 0 || _seq != _context.Ptr.Seq)
                return Report(FsckErrorId.BtreeNodeBadSeq, 0, $"got the wrong node: seq {_seq:x16}, pointer wants {_context.Ptr.Seq:x16}");
            return true;
        }

        // Walks the records from offset 0 while they carry the node's seq and start inside
        // sectors_written. Returns false when a finding ended the walk (the rest is dropped).
        private bool WalkRecords()
        {
            var offset = 0;
            var blockSize = _context.BlockSize;
            while (offset < _limit)
            {
                var first = offset == 0;
                var keysStart = offset + KeysOffsetIn(first);
                if (keysStart > _nodeEnd)
                    break;
                var sector = offset / FormatLimits.SectorSize;
                var bset = _slot.Slice(offset + BsetOffsetIn(first), BsetHeaderSize);
                if (!first && BinaryPrimitives.ReadUInt64LittleEndian(bset[BsetSeqOffset..]) != _seq)
                    break;

                var checksumType = bset[BsetChecksumTypeOffset];
                if (!IsNodeChecksumType(checksumType))
                {
                    Report(FsckErrorId.BsetUnknownChecksum, sector, $"unknown checksum type {checksumType}");
                    return false;
                }
                var u64s = BinaryPrimitives.ReadUInt32LittleEndian(bset[BsetU64sOffset..]);
                var keysEnd = keysStart + ((long)u64s * 8);
                if (keysEnd > _nodeEnd && first)
                {
                    // The first record holds the node header: without it the node cannot be kept.
                    return Report(FsckErrorId.BtreeNodeBadHeader, sector,
                        $"the first record (the node header) of {u64s} u64s runs past the end of the node ({_nodeEnd} bytes)");
                }
                if (keysEnd > _nodeEnd)
                {
                    Report(FsckErrorId.BsetPastEndOfBtreeNode, sector,
                        $"bset of {u64s} u64s at byte {offset} runs past the end of the node ({_nodeEnd} bytes)");
                    return false;
                }
                var stored = BinaryPrimitives.ReadUInt64LittleEndian(_slot[offset..]);
                var computed = Checksums.Compute((ChecksumType)checksumType, _slot[(offset + ChecksumStart)..(int)keysEnd]);
                if (stored != computed)
                {
                    Report(FsckErrorId.BsetBadChecksum, sector,
                        $"{((ChecksumType)checksumType).ToText()} checksum {stored:x16}, computed {computed:x16}");
                    return false;
                }

                if (first && !CheckHeader(bset))
                    return false;
                if (!CheckBsetVersionAndFlags(bset, sector))
                    return false;

                var recordEnd = (int)Math.Min(RoundUp(keysEnd, blockSize), int.MaxValue);
                var keep = true;
                if (recordEnd > _limit && first)
                {
                    // The first record is written whole when the node is made, so sectors_written
                    // always covers it: one claiming more is damaged, and an append at the written
                    // end would land inside what its checksum covers. The node is unreadable.
                    return Report(FsckErrorId.BtreeNodeBadHeader, sector,
                        $"the first record (the node header) at bytes 0-{recordEnd} runs past the written end at byte {_limit} (sectors_written {_limit / FormatLimits.SectorSize})");
                }
                if (recordEnd > _limit)
                {
                    Report(FsckErrorId.BsetPastEndOfBtreeNode, sector,
                        $"bset at bytes {offset}-{recordEnd} runs past the written end at byte {_limit} (sectors_written {_limit / FormatLimits.SectorSize}): treated as empty");
                    keep = false;
                }
                else if (BinaryPrimitives.ReadUInt16LittleEndian(bset[BsetSectorOffsetOffset..]) is var recorded && recorded != sector)
                {
                    if (!Report(FsckErrorId.BsetWrongSectorOffset, sector,
                            $"bset records offset {recorded * FormatLimits.SectorSize}, read at byte {offset}"))
                        return false;
                    keep = false;
                }
                else if (!first && u64s == 0)
                {
                    Report(FsckErrorId.BsetEmpty, sector, "bset after the first holds no keys");
                    keep = false;
                }
                else if (!first && _context.IsBlacklisted is { } blacklisted &&
                         blacklisted(BinaryPrimitives.ReadUInt64LittleEndian(bset[BsetJournalSeqOffset..])))
                {
                    // Written for a journal entry that was never flushed before a crash: not part of
                    // the recovered history. The first bset cannot be skipped (it holds the header).
                    _blacklisted++;
                    keep = false;
                }

                if (keep)
                {
                    ValidateKeys(keysStart, (int)keysEnd, sector);
                    _bsetEnds[_keptBsets++] = _keyCount;
                    _maxJournalSeq = Math.Max(_maxJournalSeq, BinaryPrimitives.ReadUInt64LittleEndian(bset[BsetJournalSeqOffset..]));
                }
                _bsetCount++;
                offset = recordEnd;
                _walked = offset;
            }
            return true;
        }

        // The first record's node header, after its checksum passed: well-formed, then the node the
        // pointer names (btree, level, range). A RangeUpdated pointer is trusted over the header's range.
        private bool CheckHeader(ReadOnlySpan<byte> firstBset)
        {
            var header = ReadNodeHeader(_slot);
            _header = header;
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(_slot[NodeFlagsOffset..]);
            var reserved = BinaryPrimitives.ReadUInt64LittleEndian(_slot[NodeReservedOffset..]);
            if (flags != 0 || reserved != 0)
                return Report(FsckErrorId.BtreeNodeBadHeader, 0, $"reserved header fields set: flags {flags:x4}, reserved {reserved:x16}");
            if (header.Level > FormatLimits.MaxBtreeLevel)
                return Report(FsckErrorId.BtreeNodeBadHeader, 0, $"level {header.Level} above the maximum {FormatLimits.MaxBtreeLevel}");
            if (header.MinKey > header.MaxKey)
                return Report(FsckErrorId.BtreeNodeBadHeader, 0, $"min key {header.MinKey.ToText()} after max key {header.MaxKey.ToText()}");
            var bsetSeq = BinaryPrimitives.ReadUInt64LittleEndian(firstBset[BsetSeqOffset..]);
            if (bsetSeq != _seq)
                return Report(FsckErrorId.BtreeNodeBadSeq, 0, $"first bset seq {bsetSeq:x16} differs from the node seq {_seq:x16}");
            if (header.Btree != _context.Btree)
                return Report(FsckErrorId.BtreeNodeBadBtree, 0, $"node of btree {header.Btree.ToText()}, expected {_context.Btree.ToText()}");
            if (header.Level != _context.Level)
                return Report(FsckErrorId.BtreeNodeBadLevel, 0, $"node at level {header.Level}, expected {_context.Level}");
            if (RangeUpdated)
            {
                _nodeMin = _context.Ptr.MinKey;
                _nodeMax = _context.MaxKey;
                _header = header with { MinKey = _nodeMin, MaxKey = _nodeMax };
                // Keys are checked against the range the node was written with and filtered to the
                // pointer's range in the merge.
                _nodeMin = header.MinKey < _nodeMin ? header.MinKey : _nodeMin;
                _nodeMax = header.MaxKey > _nodeMax ? header.MaxKey : _nodeMax;
            }
            else
            {
                if (header.MinKey != _context.Ptr.MinKey)
                    return Report(FsckErrorId.BtreeNodeBadMinKey, 0, $"min key {header.MinKey.ToText()}, pointer says {_context.Ptr.MinKey.ToText()}");
                if (header.MaxKey != _context.MaxKey)
                    return Report(FsckErrorId.BtreeNodeBadMaxKey, 0, $"max key {header.MaxKey.ToText()}, pointer says {_context.MaxKey.ToText()}");
                _nodeMin = header.MinKey;
                _nodeMax = header.MaxKey;
            }
            _haveHeader = true;
            return true;
        }

        private bool CheckBsetVersionAndFlags(ReadOnlySpan<byte> bset, int sector)
        {
            var version = BinaryPrimitives.ReadUInt16LittleEndian(bset[BsetVersionOffset..]);
            if (version > FormatVersion.Current || version < FormatVersion.Min)
                return Report(FsckErrorId.BtreeNodeUnsupportedVersion, sector,
                    $"bset version {version}, this build reads {FormatVersion.Min}..{FormatVersion.Current}");
            var flags = bset[BsetFlagsOffset];
            var reserved1 = BinaryPrimitives.ReadUInt16LittleEndian(bset[BsetReserved1Offset..]);
            var reserved2 = BinaryPrimitives.ReadUInt32LittleEndian(bset[BsetReserved2Offset..]);
            if (flags != 0 || reserved1 != 0 || reserved2 != 0)
                return Report(FsckErrorId.BtreeNodeUnsupportedVersion, sector,
                    $"bset uses flags {flags:x2} / reserved fields {reserved1:x4} {reserved2:x8} unknown to version {FormatVersion.Current}");
            if (version < _sbVersionMin)
                Report(FsckErrorId.BtreeNodeBsetOlderThanSbMin, sector, $"bset version {version} older than the superblock's version_min {_sbVersionMin}");
            else if (version > _sbVersion)
                Report(FsckErrorId.BtreeNodeBsetNewerThanSb, sector, $"bset version {version} newer than the superblock's version {_sbVersion}");
            return true;
        }

        // The walk ended inside sectors_written: data is missing.
        private bool ReportMissingData() =>
            Report(FsckErrorId.BtreeNodeDataMissing, _walked / FormatLimits.SectorSize,
                $"records end at byte {_walked}, sectors_written {_limit / FormatLimits.SectorSize} says byte {_limit}");

        // A record of this node at a later block before <paramref name="end"/> means an append in
        // the middle went missing (a gap), not just a short tail; what follows the gap is dropped.
        private void FindRecordAfterGap(int end)
        {
            for (var block = (int)RoundUp(_walked + 1, _context.BlockSize); block + EntryKeysOffset <= end; block += _context.BlockSize)
            {
                if (BinaryPrimitives.ReadUInt64LittleEndian(_slot[(block + EntryBsetOffset + BsetSeqOffset)..]) == _seq)
                {
                    Report(FsckErrorId.BtreeNodeBsetAfterEnd, block / FormatLimits.SectorSize,
                        $"a bset of this node at byte {block} after the end of its records at byte {_walked}: dropped");
                    return;
                }
            }
        }

        private void CountRecordsBeyondWritten()
        {
            if (_context.Ptr.SectorsWritten == 0)
                return;
            var blockSize = _context.BlockSize;
            var start = (int)RoundUp(Math.Max(_limit, _walked), blockSize);
            for (var block = start; block + EntryKeysOffset <= _nodeEnd; block += blockSize)
            {
                if (BinaryPrimitives.ReadUInt64LittleEndian(_slot[(block + EntryBsetOffset + BsetSeqOffset)..]) == _seq)
                    _ignoredBeyond++;
            }
        }

        // Records a finding. Returns true when reading may go on, false when the finding decides the
        // read (a retry is wanted and possible, or the node is bad or incompatible).
        private bool Report(FsckErrorId id, int sector, string detail)
        {
            var readClass = FsckCatalogue.Get(id).ReadClass ?? NodeErrorClass.BadNode;
            (_findings ??= []).Add(new NodeFinding(id, readClass, sector, detail));
            NodeErrorClass? failure = readClass switch
            {
                NodeErrorClass.Fixable => null,
                NodeErrorClass.WantRetry => _context.HaveRetry ? NodeErrorClass.WantRetry : null,
                NodeErrorClass.MustRetry => _context.HaveRetry ? NodeErrorClass.MustRetry : NodeErrorClass.BadNode,
                _ => readClass,
            };
            if (failure is null)
                return true;
            _failure = failure;
            return false;
        }
    }
}
