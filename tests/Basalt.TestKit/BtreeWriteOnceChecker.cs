// A minimal write-once checker for btree tests: a device decorator that is also the btree's
// INodeSpaceObserver. It knows each live node slot's durable prefix and fails any write that
// lands in a slot that is not allocated or below that prefix (nodes are append-only).
using Basalt.Devices;
using Basalt.Diagnostics;

namespace Basalt.TestKit;

public sealed class BtreeWriteOnceChecker : IBlockDevice, INodeSpaceObserver
{
    private readonly IBlockDevice _inner;
    private readonly long _areaOffset;
    private readonly long _areaLength;
    private readonly int _nodeSize;
    private readonly Dictionary<long, int> _written = [];
    private readonly object _gate = new();
    private readonly List<string> _violations = [];
    private readonly List<long> _allocations = [];

    public BtreeWriteOnceChecker(IBlockDevice inner, long areaOffset, long areaLength, int nodeSize)
    {
        _inner = inner;
        _areaOffset = areaOffset;
        _areaLength = areaLength;
        _nodeSize = nodeSize;
    }

    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_gate)
                return _violations.ToArray();
        }
    }

    /// <summary>Every slot offset ever allocated, in order (mount-time registrations included).</summary>
    public IReadOnlyList<long> Allocations
    {
        get
        {
            lock (_gate)
                return _allocations.ToArray();
        }
    }

    public int LiveSlots
    {
        get
        {
            lock (_gate)
                return _written.Count;
        }
    }

    /// <summary>Forgets all slots (a remount tells the checker again what is live).</summary>
    public void Reset()
    {
        lock (_gate)
            _written.Clear();
    }

    public string Name => _inner.Name;
    public long Size => _inner.Size;
    public bool IsReadOnly => _inner.IsReadOnly;

    public void Read(long offset, Span<byte> buffer) => _inner.Read(offset, buffer);

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        if (offset >= _areaOffset && offset < _areaOffset + _areaLength)
        {
            var slot = _areaOffset + ((offset - _areaOffset) / _nodeSize * _nodeSize);
            lock (_gate)
            {
                if (!_written.TryGetValue(slot, out var prefix))
                    Violation($"write at {offset} into node slot {slot} that is not allocated");
                else if (offset < slot + prefix)
                    Violation($"write at {offset} below the written prefix {prefix} of node slot {slot}");
                else if (offset + data.Length > slot + _nodeSize)
                    Violation($"write at {offset}+{data.Length} runs past node slot {slot}");
            }
        }
        _inner.Write(offset, data);
    }

    public void Flush() => _inner.Flush();
    public void Discard(long offset, long length) => _inner.Discard(offset, length);
    public void Dispose() => _inner.Dispose();

    public void NodeAllocated(long offset, int length)
    {
        lock (_gate)
        {
            _allocations.Add(offset);
            if (!_written.TryAdd(offset, 0))
                Violation($"node slot {offset} allocated while live");
        }
    }

    public void NodeWritten(long offset, int writtenBytes)
    {
        lock (_gate)
        {
            if (!_written.TryGetValue(offset, out var prefix))
                Violation($"node slot {offset} written while not allocated");
            else if (writtenBytes < prefix)
                Violation($"node slot {offset} written prefix shrank from {prefix} to {writtenBytes}");
            else
                _written[offset] = writtenBytes;
        }
    }

    public void NodeFreed(long offset)
    {
        lock (_gate)
        {
            if (!_written.Remove(offset))
                Violation($"node slot {offset} freed while not live");
        }
    }

    private void Violation(string what)
    {
        _violations.Add(what);
        throw new BasaltException(ErrorCode.WriteOnceViolation, $"write-once violation: {what}");
    }
}
