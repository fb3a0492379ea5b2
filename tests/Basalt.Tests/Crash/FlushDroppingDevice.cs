// A deliberately broken device for the crash suite's must-fail check (DESIGN §5): every Flush
// returns at once without reaching the device below, so a RecordingBlockDevice under it logs no
// flush completion and the whole run becomes one epoch. A correct oracle must then find crash
// states that lose writes of a Sync that had already returned.
using Basalt.Devices;

namespace Basalt.Tests.Crash;

internal sealed class FlushDroppingDevice(IBlockDevice inner) : IBlockDevice
{
    public int FlushesDropped { get; private set; }

    public string Name => inner.Name;
    public long Size => inner.Size;
    public bool IsReadOnly => inner.IsReadOnly;

    public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

    public void Write(long offset, ReadOnlySpan<byte> data) => inner.Write(offset, data);

    public void Flush() => FlushesDropped++;

    public void Discard(long offset, long length) => inner.Discard(offset, length);

    public void Dispose()
    {
    }
}
