// A test decorator that proves btree node writes only ever append (BRIEF "a node is only ever
// appended to"; DESIGN §4). The node allocator reports each slot's lifecycle through
// INodeSpaceObserver: allocated (empty), written (its durable prefix, the parent's
// sectors_written, grew) and freed. Any write overlapping a live slot's durable prefix is a
// WriteOnceViolation. Writes outside registered slots pass untouched (superblock, journal,
// data). A freed slot may be written again from its start once it is allocated anew.
using System.Globalization;
using Basalt.Diagnostics;

namespace Basalt.Devices;

public sealed class WriteOnceCheckingDevice : IBlockDevice, INodeSpaceObserver
{
    private readonly IBlockDevice _inner;
    private readonly bool _ownsInner;
    private readonly SortedList<long, Slot> _slots = [];
    private readonly object _gate = new();

    public WriteOnceCheckingDevice(IBlockDevice inner, bool ownsInner = false)
    {
        _inner = inner;
        _ownsInner = ownsInner;
    }

    public string Name => _inner.Name;
    public long Size => _inner.Size;
    public bool IsReadOnly => _inner.IsReadOnly;
    public IBlockDevice Inner => _inner;

    /// <summary>Number of live slots.</summary>
    public int LiveSlots
    {
        get
        {
            lock (_gate)
                return _slots.Count;
        }
    }

    /// <summary>Writes checked against a live slot and found appending.</summary>
    public long CheckedWrites { get; private set; }

    public void NodeAllocated(long offset, int length)
    {
        lock (_gate)
        {
            if (length <= 0)
                Violation(ErrorCode.InvariantViolated, $"node slot at {offset} allocated with length {length}");
            var index = FindOverlap(offset, length);
            if (index >= 0)
            {
                var other = _slots.Values[index];
                Violation(ErrorCode.InvariantViolated,
                    $"node slot {offset}+{length} allocated over the live slot {other.Offset}+{other.Length}");
            }
            _slots.Add(offset, new Slot(offset, length));
        }
    }

    public void NodeWritten(long offset, int writtenBytes)
    {
        lock (_gate)
        {
            if (!_slots.TryGetValue(offset, out var slot))
                Violation(ErrorCode.InvariantViolated, $"node written at {offset}, which is not a live slot");
            if (writtenBytes < slot.Written || writtenBytes > slot.Length)
                Violation(ErrorCode.WriteOnceViolation,
                    $"node slot at {offset}: written prefix moved from {slot.Written} to {writtenBytes} (slot length {slot.Length})");
            slot.Written = writtenBytes;
        }
    }

    public void NodeFreed(long offset)
    {
        lock (_gate)
        {
            if (!_slots.Remove(offset))
                Violation(ErrorCode.InvariantViolated, $"node freed at {offset}, which is not a live slot");
        }
    }

    /// <summary>The durable written prefix of the live slot at <paramref name="offset"/>, or -1.</summary>
    public int WrittenPrefix(long offset)
    {
        lock (_gate)
            return _slots.TryGetValue(offset, out var slot) ? slot.Written : -1;
    }

    public void Read(long offset, Span<byte> buffer) => _inner.Read(offset, buffer);

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        Check("write", offset, data.Length);
        _inner.Write(offset, data);
    }

    public void Flush() => _inner.Flush();

    public void Discard(long offset, long length)
    {
        Check("discard", offset, length);
        _inner.Discard(offset, length);
    }

    public void Dispose()
    {
        if (_ownsInner)
            _inner.Dispose();
    }

    private void Check(string what, long offset, long length)
    {
        lock (_gate)
        {
            // Slots are disjoint and sorted: start at the last slot beginning at or before offset.
            var i = LastAtOrBefore(offset);
            if (i < 0)
                i = 0;
            var end = offset + length;
            var touched = false;
            for (; i < _slots.Count; i++)
            {
                var slot = _slots.Values[i];
                if (slot.Offset >= end)
                    break;
                if (slot.Offset + slot.Length <= offset)
                    continue;
                touched = true;
                if (offset < slot.Offset + slot.Written && slot.Offset < end && slot.Written > 0)
                    Violation(ErrorCode.WriteOnceViolation, string.Create(CultureInfo.InvariantCulture,
                        $"{Name}: {what} at offset {offset}+{length} overwrites node slot {slot.Offset}+{slot.Length} " +
                        $"below its written prefix {slot.Written} (slot offset {offset - slot.Offset})"));
            }
            if (touched)
                CheckedWrites++;
        }
    }

    private int LastAtOrBefore(long offset)
    {
        var keys = _slots.Keys;
        int lo = 0, hi = keys.Count - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (keys[mid] <= offset)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return found;
    }

    private int FindOverlap(long offset, int length)
    {
        var i = Math.Max(0, LastAtOrBefore(offset));
        for (; i < _slots.Count; i++)
        {
            var slot = _slots.Values[i];
            if (slot.Offset >= offset + length)
                break;
            if (slot.Offset + slot.Length > offset)
                return i;
        }
        return -1;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Violation(ErrorCode code, string message) => throw new BasaltException(code, message);

    private sealed class Slot(long offset, int length)
    {
        public long Offset { get; } = offset;
        public int Length { get; } = length;
        public int Written { get; set; }
    }
}
