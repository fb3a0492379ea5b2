// Node space: fixed-size slots in the metadata area [NodeAreaOffset, +NodeAreaLength). The
// in-memory state (a bitmap of used slots) is derived: rebuilt at mount from the pointers of the
// interior nodes reachable from the roots. A freed slot is not reusable at once: the recoverable
// tree (the nodes on disk plus the journal) may still point at it until the journal entry that
// stopped pointing at it is durable (DESIGN §4 rule (d)). Frees are tagged with that entry's seq.
using Basalt.Devices;
using Basalt.Diagnostics;

namespace Basalt.Btree;

internal sealed class NodeAllocator
{
    private readonly long _areaOffset;
    private readonly int _nodeSize;
    private readonly int _slots;
    private readonly ulong[] _used;
    private readonly INodeSpaceObserver? _observer;
    private readonly List<(long Offset, ulong Seq)> _pendingFree = [];
    private int _usedCount;
    private int _cursor;

    // Free slots to hand out only when no other is free: they hold nodes a damaged tree may still
    // need (see Avoid). Null until the first Avoid.
    private ulong[]? _avoid;

    public NodeAllocator(BtreeGeometry geometry, INodeSpaceObserver? observer)
    {
        _areaOffset = geometry.NodeAreaOffset;
        _nodeSize = geometry.NodeSize;
        _slots = checked((int)(geometry.NodeAreaLength / geometry.NodeSize));
        _used = new ulong[(_slots + 63) / 64];
        _observer = observer;
    }

    public int SlotCount => _slots;

    /// <summary>Slots that can be allocated now (pending frees are not among them).</summary>
    public int Available => _slots - _usedCount;

    public int PendingFreeCount => _pendingFree.Count;

    public bool Contains(long offset) =>
        offset >= _areaOffset && offset < _areaOffset + ((long)_slots * _nodeSize) && (offset - _areaOffset) % _nodeSize == 0;

    public bool IsUsed(long offset) => Contains(offset) && IsSet(SlotOf(offset));

    /// <summary>Marks a slot found reachable at mount. Returns false for an offset outside the area or already marked.</summary>
    public bool MarkUsed(long offset)
    {
        if (!Contains(offset))
            return false;
        var slot = SlotOf(offset);
        if (IsSet(slot))
            return false;
        Set(slot);
        return true;
    }

    public long Allocate()
    {
        if (_usedCount == _slots)
            BasaltException.Throw(ErrorCode.BtreeNodeSpaceFull,
                $"btree node space full: all {_slots} node slots of {_nodeSize} bytes are in use ({_pendingFree.Count} freed, reusable once the journal entries that freed them are flushed)");
        for (var n = 0; n < _slots * (_avoid is null ? 1 : 2); n++)
        {
            var slot = (_cursor + n) % _slots;
            if (!IsSet(slot) && (n >= _slots || _avoid is null || (_avoid[slot >> 6] & (1UL << (slot & 63))) == 0))
            {
                Set(slot);
                _cursor = (slot + 1) % _slots;
                var offset = _areaOffset + ((long)slot * _nodeSize);
                _observer?.NodeAllocated(offset, _nodeSize);
                return offset;
            }
        }
        throw new InvalidOperationException("node allocator bitmap and count disagree");
    }

    /// <summary>
    /// Hands the free slot at <paramref name="offset"/> out only when no other slot is free: a
    /// mount that met an unreadable node keeps the slots holding nodes for topology repair's node
    /// scan this way, without ever making the node space fuller than it is.
    /// </summary>
    public void Avoid(long offset)
    {
        if (!Contains(offset))
            return;
        _avoid ??= new ulong[_used.Length];
        var slot = SlotOf(offset);
        _avoid[slot >> 6] |= 1UL << (slot & 63);
    }

    /// <summary>Frees a slot; it becomes reusable once journal entry <paramref name="seq"/> is durable.</summary>
    public void Free(long offset, ulong seq)
    {
        if (!Contains(offset) || !IsSet(SlotOf(offset)))
            throw new InvalidOperationException($"freeing node slot at {offset} that is not allocated");
        _pendingFree.Add((offset, seq));
    }

    /// <summary>Frees a slot that no durable pointer can reach (its node was never written): reusable at once.</summary>
    public void Release(long offset)
    {
        if (!Contains(offset) || !IsSet(SlotOf(offset)))
            throw new InvalidOperationException($"releasing node slot at {offset} that is not allocated");
        Clear(SlotOf(offset));
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
                Clear(SlotOf(offset));
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
        for (var s = 0; s < _slots; s++)
        {
            if (IsSet(s))
                list.Add(_areaOffset + ((long)s * _nodeSize));
        }
        return list;
    }

    public IReadOnlyList<long> PendingFree() => _pendingFree.Select(p => p.Offset).ToList();

    private int SlotOf(long offset) => (int)((offset - _areaOffset) / _nodeSize);

    private bool IsSet(int slot) => (_used[slot >> 6] & (1UL << (slot & 63))) != 0;

    private void Set(int slot)
    {
        _used[slot >> 6] |= 1UL << (slot & 63);
        _usedCount++;
    }

    private void Clear(int slot)
    {
        _used[slot >> 6] &= ~(1UL << (slot & 63));
        _usedCount--;
    }
}
