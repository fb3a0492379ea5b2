// Node space: fixed-size slots in the buckets claimed for btree nodes. The node area format
// reserved is claimed for good; the allocation layer claims more buckets as the btrees grow and
// takes back the ones that empty (docs/allocation.md, "Btree buckets"). Without buckets (an
// engine on a bare device) the node area is the whole node space, one claim unit.
//
// The in-memory state (which slots are used) is derived: rebuilt at mount from the pointers of
// the interior nodes reachable from the roots; a reachable node in a bucket not yet known claims
// it. A freed slot is not reusable at once: the recoverable tree (the nodes on disk plus the
// journal) may still point at it until the journal entry that stopped pointing at it is durable
// (DESIGN §4 rule (d)). Frees are tagged with that entry's seq, and a bucket holding a slot
// whose free is pending is not empty.
using Basalt.Devices;
using Basalt.Diagnostics;

namespace Basalt.Btree;

internal sealed class NodeAllocator
{
    private readonly int _nodeSize;
    private readonly bool _buckets;
    private readonly long _unitBytes;
    private readonly long _unitBase;
    private readonly int _slotsPerUnit;
    private readonly ulong _firstUnit;
    private readonly ulong _unitCount;
    private readonly IReadOnlyList<(ulong Start, ulong End)> _reservedUnits;
    private readonly INodeSpaceObserver? _observer;
    private readonly Dictionary<ulong, Unit> _units = [];
    private readonly List<ulong> _order = [];
    private readonly List<(long Offset, ulong Seq)> _pendingFree = [];
    private int _slotCount;
    private int _usedCount;
    private int _cursor;
    private int _cursorSlot;

    // Free slots to hand out only when no other is free: they hold nodes a damaged tree may still
    // need (see Avoid). Null until the first Avoid.
    private HashSet<long>? _avoid;

    public NodeAllocator(BtreeGeometry geometry, INodeSpaceObserver? observer)
    {
        _nodeSize = geometry.NodeSize;
        _observer = observer;
        _buckets = geometry.BucketSize > 0;
        if (_buckets)
        {
            _unitBytes = geometry.BucketSize;
            _unitBase = 0;
            _firstUnit = geometry.FirstBucket;
            _unitCount = geometry.Buckets;
            _reservedUnits = geometry.ReservedBuckets;
            _slotsPerUnit = geometry.BucketSize / geometry.NodeSize;
            var first = (ulong)(geometry.NodeAreaOffset / geometry.BucketSize);
            var count = (ulong)(geometry.NodeAreaLength / geometry.BucketSize);
            for (var u = first; u < first + count; u++)
                AddUnit(u, fixedUnit: true);
        }
        else
        {
            // One unit: the node area.
            _slotsPerUnit = checked((int)(geometry.NodeAreaLength / geometry.NodeSize));
            _unitBytes = (long)_slotsPerUnit * geometry.NodeSize;
            _unitBase = geometry.NodeAreaOffset;
            _firstUnit = 0;
            _unitCount = 1;
            _reservedUnits = [];
            AddUnit(0, fixedUnit: true);
        }
    }

    /// <summary>Slots in the claimed buckets (used or not); buckets only found through pointers are not counted.</summary>
    public int SlotCount => _slotCount;

    /// <summary>Slots that can be allocated now (pending frees are not among them).</summary>
    public int Available => _slotCount - _usedCount;

    public int PendingFreeCount => _pendingFree.Count;

    /// <summary>Slots per claimed bucket.</summary>
    public int SlotsPerUnit => _slotsPerUnit;

    /// <summary>True when <paramref name="offset"/> is a node slot of a claimed bucket.</summary>
    public bool Contains(long offset) => CanHold(offset, out var unit) && _units.ContainsKey(unit);

    /// <summary>
    /// True when a node may live at <paramref name="offset"/>: a node-size boundary of a bucket
    /// that is neither before the first bucket, past the last, nor a journal bucket.
    /// </summary>
    public bool CanHold(long offset) => CanHold(offset, out _);

    private bool CanHold(long offset, out ulong unit)
    {
        unit = 0;
        if (offset < _unitBase)
            return false;
        var rel = offset - _unitBase;
        unit = (ulong)(rel / _unitBytes);
        var within = rel % _unitBytes;
        if (unit < _firstUnit || unit >= _unitCount || within % _nodeSize != 0 || within + _nodeSize > _unitBytes)
            return false;
        foreach (var (start, end) in _reservedUnits)
        {
            if (unit >= start && unit < end)
                return false;
        }
        return true;
    }

    public bool IsUsed(long offset) => CanHold(offset, out var u) && _units.TryGetValue(u, out var unit) && unit.IsSet(SlotIn(offset));

    /// <summary>
    /// Marks a slot found reachable at mount, claiming its bucket when it is not claimed yet (a
    /// reachable node makes its bucket a btree bucket). Returns false for an offset where no node
    /// can live or a slot already marked.
    /// </summary>
    public bool MarkUsed(long offset)
    {
        if (!CanHold(offset, out var u))
            return false;
        // A bucket only found through a pointer is not allocated from until its claim is known
        // (Claim): the pointer may be an old version that the journal replaced, in a bucket given
        // back since.
        if (!_units.TryGetValue(u, out var unit))
            unit = AddUnit(u, fixedUnit: false, allocatable: false);
        var slot = SlotIn(offset);
        if (unit.IsSet(slot))
            return false;
        Set(unit, slot);
        return true;
    }

    /// <summary>
    /// Adds bucket <paramref name="bucket"/> to node space (its claim is committed). False when it
    /// is claimed already or cannot hold nodes.
    /// </summary>
    public bool Claim(ulong bucket)
    {
        if (!_buckets || !CanHold(checked((long)bucket * _unitBytes), out var u))
            return false;
        if (_units.TryGetValue(u, out var found))
        {
            if (found.Allocatable)
                return false;
            found.Allocatable = true;
            _slotCount += _slotsPerUnit;
            _usedCount += found.Used;
            return true;
        }
        AddUnit(u, fixedUnit: false);
        return true;
    }

    /// <summary>
    /// Drops the buckets only found through pointers that hold no used slot any more (after the
    /// exact rebuild of a replay): nothing lives there, and they were never claimed.
    /// </summary>
    public void DropEmptyFound()
    {
        for (var i = _order.Count - 1; i >= 0; i--)
        {
            var u = _order[i];
            if (_units[u] is { Allocatable: false, Used: 0 })
            {
                _units.Remove(u);
                _order.RemoveAt(i);
            }
        }
        if (_cursor >= _order.Count)
            (_cursor, _cursorSlot) = (0, 0);
    }

    /// <summary>
    /// Takes claimed buckets that hold no node and no pending free out of node space, while at
    /// least <paramref name="keepFree"/> free slots remain, at most <paramref name="max"/> of
    /// them; the format's node area is never taken. The caller commits their release.
    /// </summary>
    public IReadOnlyList<ulong> TakeEmpty(int keepFree, int max)
    {
        List<ulong>? taken = null;
        for (var i = _order.Count - 1; i >= 0 && (taken?.Count ?? 0) < max; i--)
        {
            var u = _order[i];
            var unit = _units[u];
            if (unit.Fixed || unit.Used > 0 || (unit.Allocatable && Available - _slotsPerUnit < keepFree) || HoldsAvoided(u))
                continue;
            _units.Remove(u);
            _order.RemoveAt(i);
            if (unit.Allocatable)
                _slotCount -= _slotsPerUnit;
            (taken ??= []).Add(u);
        }
        if (_cursor >= _order.Count)
            (_cursor, _cursorSlot) = (0, 0);
        return taken ?? (IReadOnlyList<ulong>)[];
    }

    /// <summary>True when bucket <paramref name="bucket"/> is node space (always false without buckets).</summary>
    public bool IsClaimed(ulong bucket) => _buckets && _units.ContainsKey(bucket);

    /// <summary>Claimed buckets, ascending, with the slots of each in use and whether format reserved it.</summary>
    public IReadOnlyList<(ulong Bucket, int Used, bool Fixed)> Units() =>
        _units.OrderBy(p => p.Key).Select(p => (p.Key, p.Value.Used, p.Value.Fixed)).ToList();

    /// <summary>The byte ranges of the claimed buckets, ascending, adjacent buckets merged.</summary>
    public IReadOnlyList<(long Offset, long Length)> UnitRanges()
    {
        var ranges = new List<(long Offset, long Length)>();
        foreach (var u in _units.Keys.Order())
        {
            var at = _unitBase + ((long)u * _unitBytes);
            if (ranges.Count > 0 && ranges[^1].Offset + ranges[^1].Length == at)
                ranges[^1] = (ranges[^1].Offset, ranges[^1].Length + _unitBytes);
            else
                ranges.Add((at, _unitBytes));
        }
        return ranges;
    }

    public long Allocate()
    {
        if (_usedCount == _slotCount)
            BasaltException.Throw(ErrorCode.BtreeNodeSpaceFull,
                $"btree node space full: all {_slotCount} node slots of {_nodeSize} bytes are in use ({_pendingFree.Count} freed, reusable once the journal entries that freed them are flushed)");
        // Round robin from the slot after the last one handed out: a freed slot is reused as late
        // as possible, so older versions of nodes stay on disk for topology repair's node scan.
        // Claimed buckets go first, the node area last: a mount after a crash replays the journal's
        // interior keys before it can read which buckets were claimed (the tree's alloc keys), and
        // what that needs comes from the node area's free slots.
        for (var pass = 0; pass < (_avoid is null ? 2 : 4); pass++)
        {
            var nodeArea = (pass & 1) == 1;
            for (var n = 0; n <= _order.Count; n++)
            {
                var index = (_cursor + n) % _order.Count;
                var u = _order[index];
                var unit = _units[u];
                if (unit.Used == _slotsPerUnit || !unit.Allocatable || unit.Fixed != nodeArea)
                    continue;
                // The cursor's bucket is searched from the cursor slot on, and once more (n ==
                // count) for the slots before it.
                var from = n == 0 ? _cursorSlot : 0;
                var to = n == _order.Count ? _cursorSlot : _slotsPerUnit;
                for (var slot = from; slot < to; slot++)
                {
                    if ((slot & 63) == 0 && unit.Bits[slot >> 6] == ulong.MaxValue)
                    {
                        slot += 63;
                        continue;
                    }
                    if (unit.IsSet(slot))
                        continue;
                    var offset = OffsetOf(u, slot);
                    if (pass < 2 && _avoid is not null && _avoid.Contains(offset))
                        continue;
                    Set(unit, slot);
                    _cursor = index;
                    _cursorSlot = slot + 1;
                    if (_cursorSlot == _slotsPerUnit)
                    {
                        _cursor = (index + 1) % _order.Count;
                        _cursorSlot = 0;
                    }
                    _observer?.NodeAllocated(offset, _nodeSize);
                    return offset;
                }
            }
        }
        throw new InvalidOperationException("node allocator bitmap and count disagree");
    }

    /// <summary>
    /// Hands the free slot at <paramref name="offset"/> out only when no other slot is free (and
    /// keeps its bucket claimed): a mount that met an unreadable node keeps the slots holding
    /// nodes for topology repair's node scan this way, without ever making the node space fuller
    /// than it is.
    /// </summary>
    public void Avoid(long offset)
    {
        if (!Contains(offset))
            return;
        (_avoid ??= []).Add(offset);
    }

    /// <summary>Frees a slot; it becomes reusable once journal entry <paramref name="seq"/> is durable.</summary>
    public void Free(long offset, ulong seq)
    {
        if (!IsUsed(offset))
            throw new InvalidOperationException($"freeing node slot at {offset} that is not allocated");
        _pendingFree.Add((offset, seq));
    }

    /// <summary>Frees a slot that no durable pointer can reach (its node was never written): reusable at once.</summary>
    public void Release(long offset)
    {
        if (!IsUsed(offset))
            throw new InvalidOperationException($"releasing node slot at {offset} that is not allocated");
        Clear(offset);
        _observer?.NodeFreed(offset);
    }

    /// <summary>Releases the frees whose journal entry is durable (seq at or below <paramref name="durableSeq"/>).</summary>
    public void ReleaseFreedUpTo(ulong durableSeq)
    {
        if (_pendingFree.Count == 0)
            return;
        var kept = 0;
        for (var i = 0; i < _pendingFree.Count; i++)
        {
            var (offset, seq) = _pendingFree[i];
            if (seq <= durableSeq)
            {
                Clear(offset);
                _observer?.NodeFreed(offset);
            }
            else
            {
                _pendingFree[kept++] = _pendingFree[i];
            }
        }
        _pendingFree.RemoveRange(kept, _pendingFree.Count - kept);
    }

    /// <summary>Offsets of all used slots (pending frees included), ascending.</summary>
    public IReadOnlyList<long> UsedSlots()
    {
        var list = new List<long>(_usedCount);
        foreach (var (u, unit) in _units.OrderBy(p => p.Key))
        {
            for (var slot = 0; slot < _slotsPerUnit && unit.Used > 0; slot++)
            {
                if (unit.IsSet(slot))
                    list.Add(OffsetOf(u, slot));
            }
        }
        return list;
    }

    public IReadOnlyList<long> PendingFree() => _pendingFree.Select(p => p.Offset).ToList();

    private Unit AddUnit(ulong u, bool fixedUnit, bool allocatable = true)
    {
        var unit = new Unit(_slotsPerUnit, fixedUnit, allocatable);
        _units.Add(u, unit);
        _order.Add(u);
        if (allocatable)
            _slotCount += _slotsPerUnit;
        return unit;
    }

    private bool HoldsAvoided(ulong u)
    {
        if (_avoid is null)
            return false;
        for (var slot = 0; slot < _slotsPerUnit; slot++)
        {
            if (_avoid.Contains(OffsetOf(u, slot)))
                return true;
        }
        return false;
    }

    private long OffsetOf(ulong u, int slot) => _unitBase + ((long)u * _unitBytes) + ((long)slot * _nodeSize);

    private int SlotIn(long offset) => (int)((offset - _unitBase) % _unitBytes / _nodeSize);

    private void Set(Unit unit, int slot)
    {
        unit.Bits[slot >> 6] |= 1UL << (slot & 63);
        unit.Used++;
        if (unit.Allocatable)
            _usedCount++;
    }

    private void Clear(long offset)
    {
        CanHold(offset, out var u);
        var unit = _units[u];
        var slot = SlotIn(offset);
        unit.Bits[slot >> 6] &= ~(1UL << (slot & 63));
        unit.Used--;
        if (unit.Allocatable)
            _usedCount--;
    }

    private sealed class Unit(int slots, bool fixedUnit, bool allocatable)
    {
        public readonly ulong[] Bits = new ulong[(slots + 63) / 64];
        public readonly bool Fixed = fixedUnit;
        public bool Allocatable = allocatable;
        public int Used;

        public bool IsSet(int slot) => (Bits[slot >> 6] & (1UL << (slot & 63))) != 0;
    }
}
