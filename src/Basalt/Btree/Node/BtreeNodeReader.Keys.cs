// Per-key checks of one bset and the merge of the kept bsets into the result's KeyRun.
using System.Buffers.Binary;
using Basalt.Btree.Node;
using Basalt.Format;
using static Basalt.Btree.Node.BtreeNodeFormat;

namespace Basalt.Btree.Node;

public static partial class BtreeNodeReader
{
    private ref partial struct NodeWalk
    {
        // Validates the keys in [start, end) of the slot in place. A key whose length cannot be
        // trusted truncates the rest of the bset; any other bad key is dropped alone (its length is
        // trustworthy, so the walk skips exactly it). Accepted keys go to the scratch index.
        private void ValidateKeys(int start, int end, int sector)
        {
            var at = start;
            var havePrevious = false;
            var previous = default(Bpos);
            while (at < end)
            {
                var remaining = end - at;
                if (remaining < BkeyFormat.HeaderSize)
                {
                    Report(FsckErrorId.BtreeNodeBkeyPastBsetEnd, sector,
                        $"key header at byte {at} needs {BkeyFormat.HeaderSize} bytes, {remaining} left in the bset: bset truncated");
                    return;
                }
                var header = _slot.Slice(at, BkeyFormat.HeaderSize);
                var total = BinaryPrimitives.ReadUInt16LittleEndian(header[BkeyFormat.U64sOffset..]) * 8;
                if (total < BkeyFormat.HeaderSize)
                {
                    Report(FsckErrorId.BtreeNodeBkeyBadU64s, sector,
                        $"key at byte {at} of {total / 8} u64s, smaller than a key header: rest of the bset dropped");
                    return;
                }
                if (total > remaining)
                {
                    Report(FsckErrorId.BtreeNodeBkeyPastBsetEnd, sector,
                        $"key at byte {at} of {total} bytes runs {total - remaining} bytes past the bset end: bset truncated");
                    return;
                }
                var pad = header[BkeyFormat.ValuePadOffset];
                var reserved = BinaryPrimitives.ReadUInt32LittleEndian(header[BkeyFormat.ReservedOffset..]);
                var valueLength = total - BkeyFormat.HeaderSize - pad;
                if (pad > 7 || reserved != 0 || valueLength < 0)
                {
                    Report(FsckErrorId.BtreeNodeBkeyBadFormat, sector,
                        $"key at byte {at}: value_pad {pad}, reserved {reserved:x8}: key dropped");
                    at += total;
                    continue;
                }
                // The padding is inside the checksummed range, so a nonzero byte there is not media
                // damage the checksum would catch but a writer bug or a deliberate change: reject it.
                var padding = _slot.Slice(at + total - pad, pad);
                if (padding.IndexOfAnyExcept((byte)0) is var nonzero and >= 0)
                {
                    Report(FsckErrorId.BtreeNodeBkeyBadFormat, sector,
                        $"key at byte {at}: value padding byte {nonzero} of {pad} is {padding[nonzero]:x2}, not zero: key dropped");
                    at += total;
                    continue;
                }
                if (valueLength > _maxValueBytes)
                {
                    Report(FsckErrorId.BtreeNodeBkeyBadU64s, sector,
                        $"key at byte {at} with a {valueLength}-byte value (limit {_maxValueBytes}): rest of the bset dropped");
                    return;
                }
                var key = new Bkey(Bpos.Read(header[BkeyFormat.PosOffset..]), (KeyType)header[BkeyFormat.TypeOffset],
                    BinaryPrimitives.ReadUInt32LittleEndian(header[BkeyFormat.SizeOffset..]));
                // Strictly increasing: a second key at the same position is as wrong as one before it
                // (the merge would keep one of the two arbitrarily).
                if (havePrevious && key.Pos <= previous)
                {
                    Report(FsckErrorId.BtreeNodeBkeyOutOfOrder, sector, key.Pos == previous
                        ? $"key {key.ToText()} at byte {at} at the same position as the key before it: key dropped"
                        : $"key {key.ToText()} at byte {at} not after {previous.ToText()}: key dropped");
                    at += total;
                    continue;
                }
                var valueOffset = at + BkeyFormat.HeaderSize;
                if (!KeyValidation.Validate(_context.Btree, _context.Level, key, _slot.Slice(valueOffset, valueLength),
                        _nodeMin, _nodeMax, _context.NodeSize, _context.DeviceSize, out var id, out var detail))
                {
                    Report(id, sector, $"{detail} (key at byte {at}): key dropped");
                    at += total;
                    continue;
                }
                _scratch[_keyCount++] = new KeyEntry(key, valueOffset, valueLength);
                _valueBytes += valueLength;
                previous = key.Pos;
                havePrevious = true;
                at += total;
            }
        }

        public readonly NodeReadResult Finish()
        {
            var findings = (IReadOnlyList<NodeFinding>?)_findings ?? [];
            if (_failure is { } failure)
            {
                return new NodeReadResult
                {
                    Ok = false,
                    FailureClass = failure,
                    Header = _header,
                    Findings = findings,
                    NeedsRewrite = true,
                    SectorsFound = _walked / FormatLimits.SectorSize,
                    BsetCount = _bsetCount,
                    IgnoredBsetsBeyondWritten = _ignoredBeyond,
                    BlacklistedBsets = _blacklisted,
                    MaxJournalSeq = _maxJournalSeq,
                };
            }
            // Without a trustworthy header (the first record failed its checksum and no replica is
            // left) the node is what its pointer says it is, with no keys.
            var header = _haveHeader
                ? _header
                : new NodeHeader(_seq, 0, _context.Btree, _context.Level, _context.Ptr.MinKey, _context.MaxKey);
            var keys = Merge(out var droppedOutsideRange);
            return new NodeReadResult
            {
                Ok = true,
                Header = header,
                Keys = keys,
                Findings = findings,
                NeedsRewrite = findings.Count > 0 || droppedOutsideRange > 0,
                SectorsFound = _walked / FormatLimits.SectorSize,
                BsetCount = _bsetCount,
                IgnoredBsetsBeyondWritten = _ignoredBeyond,
                BlacklistedBsets = _blacklisted,
                MaxJournalSeq = _maxJournalSeq,
            };
        }

        // Merges the kept bsets: at equal positions the newest bset (the later one in the slot)
        // wins; deletion markers shadow older keys and are then dropped. With a RangeUpdated
        // pointer, keys outside the pointer's range are dropped.
        private readonly KeyRun Merge(out int droppedOutsideRange)
        {
            droppedOutsideRange = 0;
            if (_keyCount == 0)
                return KeyRun.Empty;
            var output = new MergeOutput(_slot, _inPlaceArena, _keyCount, _valueBytes, RangeUpdated, _header.MinKey, _header.MaxKey);
            if (_keptBsets == 1)
            {
                for (var i = 0; i < _keyCount; i++)
                    output.Emit(in _scratch[i]);
            }
            else
            {
                MergeBsets(ref output);
            }
            droppedOutsideRange = output.DroppedOutsideRange;
            return output.Build();
        }

        // k-way merge over the kept bsets (a handful: one per append since the last rewrite). Each
        // step takes the smallest head position; on ties the newest bset (highest index) wins and
        // every head at that position advances.
        private readonly void MergeBsets(ref MergeOutput output)
        {
            var count = _keptBsets;
            Span<int> heads = count <= 64 ? stackalloc int[count] : new int[count];
            Span<int> ends = count <= 64 ? stackalloc int[count] : new int[count];
            Span<Bpos> positions = count <= 64 ? stackalloc Bpos[count] : new Bpos[count];
            var scratch = _scratch;
            var active = 0;
            for (var b = 0; b < count; b++)
            {
                heads[b] = b == 0 ? 0 : _bsetEnds[b - 1];
                ends[b] = _bsetEnds[b];
                if (heads[b] < ends[b])
                {
                    positions[b] = scratch[heads[b]].Key.Pos;
                    active++;
                }
            }
            while (active > 0)
            {
                var winner = -1;
                var min = default(Bpos);
                for (var b = 0; b < count; b++)
                {
                    if (heads[b] < ends[b] && (winner < 0 || positions[b].CompareTo(min) <= 0))
                    {
                        winner = b;
                        min = positions[b];
                    }
                }
                output.Emit(in scratch[heads[winner]]);
                for (var b = 0; b < count; b++)
                {
                    if (heads[b] < ends[b] && positions[b] == min)
                    {
                        if (++heads[b] < ends[b])
                            positions[b] = scratch[heads[b]].Key.Pos;
                        else
                            active--;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Collects the merge's survivors into one entry array and one value arena: a fresh arena
    /// holding copies of the values, or (in place) the slot's own array with values left where they are.
    /// </summary>
    private ref struct MergeOutput
    {
        private readonly ReadOnlySpan<byte> _slot;
        private readonly KeyEntry[] _entries;
        private readonly byte[] _arena;
        private readonly bool _inPlace;
        private readonly bool _filter;
        private readonly Bpos _min;
        private readonly Bpos _max;
        private int _count;
        private int _arenaLength;

        public MergeOutput(ReadOnlySpan<byte> slot, byte[]? inPlaceArena, int maxKeys, long maxValueBytes, bool filter, Bpos min, Bpos max)
        {
            _slot = slot;
            _entries = GC.AllocateUninitializedArray<KeyEntry>(maxKeys);
            _inPlace = inPlaceArena is not null;
            _arena = inPlaceArena ?? GC.AllocateUninitializedArray<byte>(checked((int)maxValueBytes));
            _arenaLength = _inPlace ? _arena.Length : 0;
            _filter = filter;
            _min = min;
            _max = max;
        }

        public int DroppedOutsideRange { get; private set; }

        public void Emit(in KeyEntry source)
        {
            if (source.Key.Type == KeyType.Deleted)
                return;
            if (_filter && (source.Key.Pos < _min || source.Key.Pos > _max))
            {
                DroppedOutsideRange++;
                return;
            }
            if (_inPlace)
            {
                _entries[_count++] = source;
                return;
            }
            _slot.Slice(source.ValueOffset, source.ValueLength).CopyTo(_arena.AsSpan(_arenaLength));
            _entries[_count++] = new KeyEntry(source.Key, _arenaLength, source.ValueLength);
            _arenaLength += source.ValueLength;
        }

        public readonly KeyRun Build() => new(_entries, _count, _arena, _arenaLength);
    }
}
