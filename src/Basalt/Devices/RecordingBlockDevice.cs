// Write recording for crash testing (DESIGN §5). The recording device passes every operation to
// the device below and logs, in order, each write (offset and a copy of the data), each discard
// and each flush *completion* with the writes logged before the flush was issued (a write that
// runs while a flush does is not covered by it). An epoch is the run of writes between two flush completions:
// when a flush returns, everything logged before it is durable; writes of the current epoch may
// each independently have reached the media or not. CrashStateEnumerator turns such a log into
// the set of device states a crash could leave behind.
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Devices;

/// <summary>One logged write or discard. Data is null for a discard (the range reads as zeroes).</summary>
public sealed class RecordedWrite
{
    public RecordedWrite(int index, int epoch, long offset, byte[]? data, long length)
    {
        Index = index;
        Epoch = epoch;
        Offset = offset;
        Data = data;
        Length = length;
    }

    /// <summary>Position in the write log (0-based).</summary>
    public int Index { get; }

    /// <summary>Number of flushes that completed before this write was issued.</summary>
    public int Epoch { get; }

    public long Offset { get; }
    public long Length { get; }
    public byte[]? Data { get; }
    public bool IsDiscard => Data is null;
    public int Sectors => (int)(Length / FormatLimits.SectorSize);

    public override string ToString() => $"#{Index} epoch {Epoch} {(IsDiscard ? "discard" : "write")} {Offset}+{Length}";
}

/// <summary>An ordered log of writes and flush completions.</summary>
public sealed class WriteLog
{
    private readonly List<RecordedWrite> _writes = [];
    private readonly List<int> _flushes = [];
    private readonly List<int> _covered = [];
    private readonly object _gate = new();

    /// <summary>Logged writes in issue order.</summary>
    public IReadOnlyList<RecordedWrite> Writes => _writes;

    /// <summary>For each completed flush, the number of writes logged before it completed.</summary>
    public IReadOnlyList<int> Flushes => _flushes;

    /// <summary>For each completed flush, the number of writes it made durable: those logged before it was issued.</summary>
    public IReadOnlyList<int> Covered => _covered;

    public int Count
    {
        get
        {
            lock (_gate)
                return _writes.Count;
        }
    }

    /// <summary>The current epoch: flushes completed so far.</summary>
    public int Epoch
    {
        get
        {
            lock (_gate)
                return _flushes.Count;
        }
    }

    public RecordedWrite AddWrite(long offset, ReadOnlySpan<byte> data)
    {
        CheckAligned(offset, data.Length);
        lock (_gate)
        {
            var write = new RecordedWrite(_writes.Count, _flushes.Count, offset, data.ToArray(), data.Length);
            _writes.Add(write);
            return write;
        }
    }

    public RecordedWrite AddDiscard(long offset, long length)
    {
        CheckAligned(offset, length);
        lock (_gate)
        {
            var write = new RecordedWrite(_writes.Count, _flushes.Count, offset, null, length);
            _writes.Add(write);
            return write;
        }
    }

    public void AddFlush() => AddFlush(Count);

    /// <summary>
    /// Logs the completion of a flush that covers the first <paramref name="covered"/> writes: those
    /// logged when it was issued. A write issued while the flush ran is not covered by it.
    /// </summary>
    public void AddFlush(int covered)
    {
        lock (_gate)
        {
            _flushes.Add(_writes.Count);
            _covered.Add(Math.Clamp(covered, _covered.Count == 0 ? 0 : _covered[^1], _writes.Count));
        }
    }

    /// <summary>
    /// Writes made durable before crash point <paramref name="crashPoint"/> (the crash happens before
    /// write number crashPoint is issued, and before a flush completing at exactly that point returns).
    /// </summary>
    public int DurableCount(int crashPoint)
    {
        lock (_gate)
        {
            var durable = 0;
            for (var i = 0; i < _flushes.Count && _flushes[i] < crashPoint; i++)
                durable = _covered[i];
            return durable;
        }
    }

    private static void CheckAligned(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset % FormatLimits.SectorSize != 0 || length % FormatLimits.SectorSize != 0)
            throw new BasaltException(ErrorCode.InvalidArgument, $"write log: {offset}+{length} is not sector aligned");
    }
}

public sealed class RecordingBlockDevice : IBlockDevice
{
    private readonly IBlockDevice _inner;
    private readonly bool _ownsInner;

    /// <param name="inner">The device writes go to.</param>
    /// <param name="ownsInner">Dispose <paramref name="inner"/> with the recorder.</param>
    public RecordingBlockDevice(IBlockDevice inner, bool ownsInner = false)
    {
        _inner = inner;
        _ownsInner = ownsInner;
    }

    public WriteLog Log { get; } = new();

    /// <summary>Recording can be paused (e.g. while formatting the base image).</summary>
    public bool Recording { get; set; } = true;

    public string Name => _inner.Name;
    public long Size => _inner.Size;
    public bool IsReadOnly => _inner.IsReadOnly;
    public IBlockDevice Inner => _inner;

    public void Read(long offset, Span<byte> buffer) => _inner.Read(offset, buffer);

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        _inner.Write(offset, data);
        if (Recording)
            Log.AddWrite(offset, data);
    }

    public void Flush()
    {
        var covered = Log.Count;
        _inner.Flush();
        if (Recording)
            Log.AddFlush(covered);
    }

    public void Discard(long offset, long length)
    {
        _inner.Discard(offset, length);
        if (Recording)
            Log.AddDiscard(offset, length);
    }

    /// <summary>The crash states of this recording (see <see cref="CrashStateEnumerator"/>).</summary>
    public CrashStateEnumerator CrashStates(CrashStateOptions? options = null) => new(Log, options);

    public void Dispose()
    {
        if (_ownsInner)
            _inner.Dispose();
    }
}
