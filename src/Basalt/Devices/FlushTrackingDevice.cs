// A decorator that knows whether anything was written since the last completed flush. The
// journal asks it before a flush entry: the device flush that must precede a flush entry (rule g)
// is skipped when nothing was written since the last one completed, so a lone durable commit
// costs one flush, not two.
namespace Basalt.Devices;

public sealed class FlushTrackingDevice : IBlockDevice
{
    private readonly IBlockDevice _inner;
    private long _writes;
    private long _writesCoveredByFlush;
    private long _flushes;

    public FlushTrackingDevice(IBlockDevice inner) => _inner = inner;

    public IBlockDevice Inner => _inner;

    public string Name => _inner.Name;

    public long Size => _inner.Size;

    public bool IsReadOnly => _inner.IsReadOnly;

    /// <summary>Device flushes issued through this device.</summary>
    public long Flushes => Interlocked.Read(ref _flushes);

    /// <summary>True when a write completed after the start of the last completed flush.</summary>
    public bool WrittenSinceFlush => Interlocked.Read(ref _writes) != Interlocked.Read(ref _writesCoveredByFlush);

    public void Read(long offset, Span<byte> buffer) => _inner.Read(offset, buffer);

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        _inner.Write(offset, data);
        Interlocked.Increment(ref _writes);
    }

    public void Flush()
    {
        // Writes that completed before the flush started are covered by it.
        var covered = Interlocked.Read(ref _writes);
        _inner.Flush();
        Interlocked.Increment(ref _flushes);
        long seen;
        do
        {
            seen = Interlocked.Read(ref _writesCoveredByFlush);
            if (seen >= covered)
                return;
        }
        while (Interlocked.CompareExchange(ref _writesCoveredByFlush, covered, seen) != seen);
    }

    public void Discard(long offset, long length)
    {
        _inner.Discard(offset, length);
        Interlocked.Increment(ref _writes);
    }

    public void StartWriteback(long offset, long length) => _inner.StartWriteback(offset, length);

    /// <summary>The inner device is owned by whoever created it.</summary>
    public void Dispose()
    {
    }
}
