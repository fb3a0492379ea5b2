// A deliberately broken device for the crash suite's must-fail checks: writes the predicate picks
// are acknowledged but never reach the device below (a lost write), so the recording, and every
// crash state made from it, lacks them.
using Basalt.Devices;

namespace Basalt.Tests.Crash;

internal sealed class WriteDroppingDevice(IBlockDevice inner, Func<long, int, bool> drop) : IBlockDevice
{
    public int WritesDropped { get; private set; }

    public string Name => inner.Name;
    public long Size => inner.Size;
    public bool IsReadOnly => inner.IsReadOnly;

    public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        if (drop(offset, data.Length))
            WritesDropped++;
        else
            inner.Write(offset, data);
    }

    public void Flush() => inner.Flush();

    public void Discard(long offset, long length) => inner.Discard(offset, length);

    public void Dispose()
    {
    }
}
