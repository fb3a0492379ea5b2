using Basalt.Devices;
using Basalt.Diagnostics;

namespace Basalt.Tests.Btree;

/// <summary>Fails writes or flushes on demand (until the devices branch's FaultyBlockDevice is on main).</summary>
internal sealed class BtreeFaultDevice(IBlockDevice inner) : IBlockDevice
{
    public bool FailWrites { get; set; }
    public bool FailFlushes { get; set; }
    public bool FailReads { get; set; }

    /// <summary>Writes that still succeed after FailWrites is set.</summary>
    public int WritesBeforeFailure { get; set; }

    /// <summary>Fails only the writes at offsets it accepts (when set, FailWrites is not needed).</summary>
    public Func<long, bool>? FailWriteAt { get; set; }

    public string Name => inner.Name;
    public long Size => inner.Size;
    public bool IsReadOnly => inner.IsReadOnly;

    public void Read(long offset, Span<byte> buffer)
    {
        if (FailReads)
            throw new BasaltException(ErrorCode.IoError, $"{Name}: injected read error at {offset}");
        inner.Read(offset, buffer);
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        if (FailWriteAt?.Invoke(offset) == true)
            throw new BasaltException(ErrorCode.IoError, $"{Name}: injected write error at {offset}");
        if (FailWrites)
        {
            if (WritesBeforeFailure <= 0)
                throw new BasaltException(ErrorCode.IoError, $"{Name}: injected write error at {offset}");
            WritesBeforeFailure--;
        }
        inner.Write(offset, data);
    }

    public void Flush()
    {
        if (FailFlushes)
            throw new BasaltException(ErrorCode.IoError, $"{Name}: injected flush error");
        inner.Flush();
    }

    public void Discard(long offset, long length) => inner.Discard(offset, length);
    public void Dispose() => inner.Dispose();
}
