// A copy-on-write overlay: reads fall through to a base device, writes are kept aside, the base
// is never written. Used to open an image for a dry-run repair, and to materialise crash states
// over a base image without copying it. Written sectors live in a sector-granular map; their
// bytes sit in memory up to a threshold (default 64 MiB) and in an unlinked temporary file
// beyond it. Flush never touches the base (there is nothing durable to make: the overlay dies
// with the process); Discard stores zeroes aside.
using System.Globalization;
using Basalt.Diagnostics;
using Basalt.Format;
using Microsoft.Win32.SafeHandles;

namespace Basalt.Devices;

public sealed class OverlayBlockDevice : IBlockDevice
{
    public const long DefaultMemoryThreshold = 64L * 1024 * 1024;

    private const int Sector = FormatLimits.SectorSize;
    private const int SectorsPerChunk = 128; // 64 KiB memory chunks

    private readonly IBlockDevice _base;
    private readonly bool _ownsBase;
    private readonly long _memorySlots;
    private readonly string _spillDirectory;
    private readonly Dictionary<long, long> _slotOfSector = [];
    private readonly List<byte[]> _chunks = [];
    private readonly object _gate = new();
    private SafeFileHandle? _spill;
    private long _slotCount;
    private bool _disposed;

    /// <param name="baseDevice">The device reads fall through to; it is only ever read.</param>
    /// <param name="memoryThreshold">Bytes kept in memory before spilling to a temporary file.</param>
    /// <param name="ownsBase">Dispose the base with the overlay.</param>
    /// <param name="spillDirectory">Where the unlinked spill file is created (default: the temp directory).</param>
    public OverlayBlockDevice(IBlockDevice baseDevice, long memoryThreshold = DefaultMemoryThreshold, bool ownsBase = false,
        string? spillDirectory = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(memoryThreshold);
        _base = baseDevice;
        _ownsBase = ownsBase;
        _memorySlots = memoryThreshold / Sector;
        _spillDirectory = spillDirectory ?? Path.GetTempPath();
    }

    /// <summary>The name errors and reports use; default "BASE (overlay)". A read-only mount shows the image's own name.</summary>
    public string? DisplayName { get; init; }

    public string Name => DisplayName ?? _base.Name + " (overlay)";
    public long Size => _base.Size;
    public bool IsReadOnly => false;
    public IBlockDevice Base => _base;

    /// <summary>Bytes written aside (distinct sectors written or discarded, times 512).</summary>
    public long BytesWrittenAside
    {
        get
        {
            lock (_gate)
                return (long)_slotOfSector.Count * Sector;
        }
    }

    /// <summary>Bytes of the written-aside data that live in the spill file.</summary>
    public long BytesSpilled
    {
        get
        {
            lock (_gate)
                return Math.Max(0, _slotCount - _memorySlots) * Sector;
        }
    }

    /// <summary>Sector offsets (bytes) written aside, ascending.</summary>
    public IReadOnlyList<long> WrittenSectors()
    {
        lock (_gate)
        {
            var list = _slotOfSector.Keys.Select(s => s * Sector).ToList();
            list.Sort();
            return list;
        }
    }

    public void Read(long offset, Span<byte> buffer)
    {
        DeviceRange.Check(this, offset, buffer.Length);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var sectors = buffer.Length / Sector;
            var first = offset / Sector;
            var i = 0;
            while (i < sectors)
            {
                if (_slotOfSector.TryGetValue(first + i, out var slot))
                {
                    ReadSlot(slot, buffer.Slice(i * Sector, Sector));
                    i++;
                    continue;
                }
                // A run of sectors not written aside: one read of the base.
                var run = 1;
                while (i + run < sectors && !_slotOfSector.ContainsKey(first + i + run))
                    run++;
                _base.Read((first + i) * Sector, buffer.Slice(i * Sector, run * Sector));
                i += run;
            }
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        DeviceRange.Check(this, offset, data.Length);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var first = offset / Sector;
            for (var i = 0; i < data.Length / Sector; i++)
                WriteSlot(SlotFor(first + i), data.Slice(i * Sector, Sector));
        }
    }

    public void Flush() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Discard(long offset, long length)
    {
        DeviceRange.Check(this, offset, length);
        Span<byte> zero = stackalloc byte[Sector];
        zero.Clear();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var first = offset / Sector;
            for (long i = 0; i < length / Sector; i++)
                WriteSlot(SlotFor(first + i), zero);
        }
    }

    /// <summary>Forgets everything written aside: the overlay reads as the base again.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _slotOfSector.Clear();
            _chunks.Clear();
            _slotCount = 0;
            _spill?.Dispose();
            _spill = null;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            _spill?.Dispose();
            _chunks.Clear();
        }
        if (_ownsBase)
            _base.Dispose();
    }

    private long SlotFor(long sector)
    {
        if (!_slotOfSector.TryGetValue(sector, out var slot))
        {
            slot = _slotCount++;
            _slotOfSector.Add(sector, slot);
        }
        return slot;
    }

    private void ReadSlot(long slot, Span<byte> destination)
    {
        if (slot < _memorySlots)
        {
            _chunks[(int)(slot / SectorsPerChunk)].AsSpan((int)(slot % SectorsPerChunk) * Sector, Sector).CopyTo(destination);
            return;
        }
        var at = (slot - _memorySlots) * Sector;
        var n = RandomAccess.Read(_spill!, destination, at);
        if (n != Sector)
            throw new BasaltException(ErrorCode.IoError,
                string.Create(CultureInfo.InvariantCulture, $"{Name}: short read of the overlay spill file at {at}"));
    }

    private void WriteSlot(long slot, ReadOnlySpan<byte> sector)
    {
        if (slot < _memorySlots)
        {
            var chunk = (int)(slot / SectorsPerChunk);
            while (_chunks.Count <= chunk)
                _chunks.Add(new byte[SectorsPerChunk * Sector]);
            sector.CopyTo(_chunks[chunk].AsSpan((int)(slot % SectorsPerChunk) * Sector));
            return;
        }
        _spill ??= CreateSpillFile();
        try
        {
            RandomAccess.Write(_spill, sector, (slot - _memorySlots) * Sector);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BasaltException(IoErrorText.ErrnoOf(e) == Interop.LibC.ENoSpc ? ErrorCode.DeviceFull : ErrorCode.IoError,
                $"{Name}: cannot write the overlay spill file: {IoErrorText.Describe(e)}", e);
        }
    }

    private SafeFileHandle CreateSpillFile()
    {
        var path = Path.Combine(_spillDirectory, $"basalt-overlay-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        try
        {
            var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            File.Delete(path); // unlinked: the space goes back when the handle closes, even after a crash
            return handle;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BasaltException(ErrorCode.IoError, $"{path}: cannot create the overlay spill file: {IoErrorText.Describe(e)}", e);
        }
    }
}
