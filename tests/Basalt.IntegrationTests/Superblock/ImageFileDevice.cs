// A minimal file-backed device for these tests, through RandomAccess and fsync. The Devices
// layer's FileBlockDevice (locking, BLKGETSIZE64, punch-hole discard) replaces it once it is on
// main; nothing here depends on more than IBlockDevice.
using Basalt.Devices;
using Basalt.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Basalt.IntegrationTests.Superblocks;

internal sealed class ImageFileDevice : IBlockDevice
{
    private readonly SafeFileHandle _handle;

    private ImageFileDevice(string path, SafeFileHandle handle, bool readOnly)
    {
        Name = path;
        _handle = handle;
        IsReadOnly = readOnly;
        Size = RandomAccess.GetLength(handle) / IBlockDevice.SectorSize * IBlockDevice.SectorSize;
    }

    public static ImageFileDevice Create(string path, long size)
    {
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.SetLength(handle, size);
        return new ImageFileDevice(path, handle, readOnly: false);
    }

    public static ImageFileDevice Open(string path, bool readOnly = false) =>
        new(path, File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite), readOnly);

    public string Name { get; }
    public long Size { get; }
    public bool IsReadOnly { get; }

    public void Read(long offset, Span<byte> buffer)
    {
        DeviceRange.Check(this, offset, buffer.Length);
        var n = RandomAccess.Read(_handle, buffer, offset);
        if (n != buffer.Length)
            throw new BasaltException(ErrorCode.ShortDevice, $"{Name}: short read at {offset}");
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        DeviceRange.Check(this, offset, data.Length);
        RandomAccess.Write(_handle, data, offset);
    }

    public void Flush() => RandomAccess.FlushToDisk(_handle);

    public void Discard(long offset, long length)
    {
        // Zero-fill in chunks: portable stand-in for punch-hole.
        DeviceRange.Check(this, offset, length);
        var zero = new byte[Math.Min(length, 1L << 20)];
        for (var at = offset; at < offset + length; at += zero.Length)
            RandomAccess.Write(_handle, zero.AsSpan(0, (int)Math.Min(zero.Length, offset + length - at)), at);
    }

    public void Dispose() => _handle.Dispose();
}
