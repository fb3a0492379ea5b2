// A device whose flushes, or writes to a chosen range, stop until the test releases them: with a
// write or flush held, a test can show what does and does not wait for it without any timing.
using Basalt.Devices;

namespace Basalt.Tests.Transactions;

internal sealed class GatedDevice(IBlockDevice inner) : IBlockDevice
{
    private readonly ManualResetEventSlim _open = new(initialState: true);
    private readonly ManualResetEventSlim _someoneWaits = new(initialState: false);
    private volatile bool _holdFlushes;
    private volatile Func<long, bool>? _holdWrites;
    private int _waiting;

    public string Name => inner.Name;

    public long Size => inner.Size;

    public bool IsReadOnly => inner.IsReadOnly;

    /// <summary>Operations stopped at the gate right now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>From now on every flush stops until <see cref="Release"/>.</summary>
    public void HoldFlushes()
    {
        _open.Reset();
        _holdFlushes = true;
    }

    /// <summary>From now on every write at an offset <paramref name="where"/> accepts stops until <see cref="Release"/>.</summary>
    public void HoldWrites(Func<long, bool> where)
    {
        _open.Reset();
        _holdWrites = where;
    }

    /// <summary>Waits until an operation is stopped at the gate; false if none arrived within the failsafe (a hang guard, not a timing).</summary>
    public bool WaitUntilSomeoneWaits(TimeSpan failsafe) => _someoneWaits.Wait(failsafe);

    public void Release()
    {
        _holdFlushes = false;
        _holdWrites = null;
        _open.Set();
    }

    public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        if (_holdWrites is { } where && where(offset))
            Wait();
        inner.Write(offset, data);
    }

    public void Flush()
    {
        if (_holdFlushes)
            Wait();
        inner.Flush();
    }

    public void Discard(long offset, long length) => inner.Discard(offset, length);

    public void Dispose()
    {
        Release();
        _open.Dispose();
        _someoneWaits.Dispose();
    }

    private void Wait()
    {
        Interlocked.Increment(ref _waiting);
        _someoneWaits.Set();
        try
        {
            _open.Wait();
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }
}
