// An in-memory block device for fast tests. Flush is a no-op: everything written is "durable".
// Crash behaviour is modelled by RecordingBlockDevice on top of it, not here.
using Basalt.Format;

namespace Basalt.Devices;

public sealed class MemoryBlockDevice : IExtensibleDevice
{
    private byte[] _data;
    private bool _disposed;

    public MemoryBlockDevice(long size, string name = "memory")
    {
        if (size <= 0 || size % FormatLimits.SectorSize != 0)
            throw new ArgumentOutOfRangeException(nameof(size), $"device size {size} is not a positive multiple of {FormatLimits.SectorSize}");
        _data = new byte[size];
        Name = name;
    }

    /// <summary>Wraps a copy of existing contents (a captured image).</summary>
    public MemoryBlockDevice(ReadOnlySpan<byte> contents, string name = "memory")
        : this(contents.Length, name) => contents.CopyTo(_data);

    private MemoryBlockDevice(byte[] data, string name, bool _)
    {
        _data = data;
        Name = name;
    }

    /// <summary>A device over <paramref name="data"/> itself, not a copy (crash searches reuse one buffer per state).</summary>
    public static MemoryBlockDevice Wrap(byte[] data, string name = "memory")
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length == 0 || data.Length % FormatLimits.SectorSize != 0)
            throw new ArgumentOutOfRangeException(nameof(data), $"device size {data.Length} is not a positive multiple of {FormatLimits.SectorSize}");
        return new MemoryBlockDevice(data, name, false);
    }

    public string Name { get; }
    public long Size => _data.LongLength;
    public bool IsReadOnly => false;

    /// <summary>The raw contents, for tests that inspect or damage the image directly.</summary>
    public Span<byte> Contents => _data;

    public bool CanExtend => true;

    /// <summary>Grows the device to <paramref name="size"/> bytes; the new tail reads as zeroes.</summary>
    public void Extend(long size)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (size % FormatLimits.SectorSize != 0 || size < _data.LongLength)
            throw new ArgumentOutOfRangeException(nameof(size), $"{Name}: cannot extend to {size} bytes (now {_data.LongLength} bytes)");
        Array.Resize(ref _data, checked((int)size));
    }

    public void Read(long offset, Span<byte> buffer)
    {
        Check(offset, buffer.Length);
        _data.AsSpan(checked((int)offset), buffer.Length).CopyTo(buffer);
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        Check(offset, data.Length);
        data.CopyTo(_data.AsSpan(checked((int)offset)));
    }

    public void Flush() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Discard(long offset, long length)
    {
        Check(offset, length);
        _data.AsSpan(checked((int)offset), checked((int)length)).Clear();
    }

    private void Check(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        DeviceRange.Check(this, offset, length);
    }

    public void Dispose() => _disposed = true;
}

/// <summary>Argument checks shared by every device.</summary>
public static class DeviceRange
{
    public static void Check(IBlockDevice device, long offset, long length)
    {
        if (offset < 0 || length < 0 || offset % FormatLimits.SectorSize != 0 || length % FormatLimits.SectorSize != 0)
            throw new ArgumentException($"{device.Name}: I/O at {offset}+{length} is not sector aligned");
        if (offset + length > device.Size)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"{device.Name}: I/O at {offset}+{length} is past the end of the device ({device.Size} bytes)");
    }
}
