// Device decorators the journal tests observe or hold a filesystem with: a counter of how often
// journal writes wrap around the ring, and a gate that holds node writes until a test opens it.
using Basalt.Devices;

namespace Basalt.Tests.Journal;

/// <summary>Counts wraps of the journal ring: a journal write landing in an earlier bucket than the previous one.</summary>
internal sealed class RingWrapCounter(IBlockDevice inner) : IBlockDevice
{
    private long _start = -1;
    private long _end;
    private int _bucketSize;
    private long _lastBucket = -1;
    private int _wraps;

    public int Wraps => Volatile.Read(ref _wraps);

    public long JournalWrites { get; private set; }

    /// <summary>Starts counting writes to the journal at [start, end) in buckets of <paramref name="bucketSize"/>.</summary>
    public void Watch(long start, long end, int bucketSize)
    {
        _start = start;
        _end = end;
        _bucketSize = bucketSize;
        _lastBucket = -1;
        _wraps = 0;
        JournalWrites = 0;
    }

    public string Name => inner.Name;
    public long Size => inner.Size;
    public bool IsReadOnly => inner.IsReadOnly;
    public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        inner.Write(offset, data);
        if (_start >= 0 && offset >= _start && offset < _end)
        {
            JournalWrites++;
            var bucket = (offset - _start) / _bucketSize;
            if (bucket < _lastBucket)
                Interlocked.Increment(ref _wraps);
            _lastBucket = bucket;
        }
    }

    public void Flush() => inner.Flush();
    public void Discard(long offset, long length) => inner.Discard(offset, length);

    public void Dispose()
    {
    }
}

/// <summary>Holds every write into [start, end) until the gate opens; counts the writers held.</summary>
internal sealed class WriteGate(IBlockDevice inner) : IBlockDevice
{
    private readonly ManualResetEventSlim _open = new(initialState: true);
    private long _start;
    private long _end;
    private int _held;
    private long _heldTotal;

    /// <summary>Writers waiting at the gate now.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>Writes that had to wait at the gate, ever.</summary>
    public long HeldTotal => Interlocked.Read(ref _heldTotal);

    public void Close(long start, long end)
    {
        _start = start;
        _end = end;
        _open.Reset();
    }

    public void Open() => _open.Set();

    public string Name => inner.Name;
    public long Size => inner.Size;
    public bool IsReadOnly => inner.IsReadOnly;
    public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        if (!_open.IsSet && offset < _end && offset + data.Length > _start)
        {
            Interlocked.Increment(ref _held);
            Interlocked.Increment(ref _heldTotal);
            _open.Wait();
            Interlocked.Decrement(ref _held);
        }
        inner.Write(offset, data);
    }

    public void Flush() => inner.Flush();
    public void Discard(long offset, long length) => inner.Discard(offset, length);

    public void Dispose() => _open.Dispose();
}
