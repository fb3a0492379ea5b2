// A device that is shorter than the filesystem on it: an image file cut short (a copy that ran out
// of space, a download that stopped), or a block device smaller than the one the filesystem was
// made on. It presents the size the filesystem records, so every layer above keeps its geometry,
// and serves the missing tail as what it is, unreadable: a read that touches bytes past the end
// of the device below fails as an I/O error naming the truncation, exactly like a medium error,
// and the layers above handle it as they handle any unreadable block (a superblock copy that
// cannot be read, a journal bucket that cannot be read, an unreadable btree node).
//
// fsck repairs the truncation by extending an image file to the recorded size (Extend: the new
// tail reads as zeroes, and is then repaired like any zeroed metadata). A check-only run must not
// change the image, so it extends in memory only (ExtendInMemory): from then on the tail reads as
// zeroes without anything being written, which is what the image will hold after the real
// extension. A block device cannot be extended: its tail stays unreadable.
//
// Writes past the end of the device below fail the same way; a caller that may write there puts an
// overlay on top (fsck holds its repairs when the truncation cannot be repaired).
using System.Globalization;
using Basalt.Diagnostics;

namespace Basalt.Devices;

public sealed class TruncatedDevice : IBlockDevice
{
    private readonly IBlockDevice _inner;
    private readonly bool _ownsInner;
    private volatile bool _zeroTail;

    /// <param name="inner">The device as it is, shorter than <paramref name="recordedSize"/>.</param>
    /// <param name="recordedSize">The size the filesystem records (a multiple of 512).</param>
    /// <param name="ownsInner">Dispose <paramref name="inner"/> with this device.</param>
    public TruncatedDevice(IBlockDevice inner, long recordedSize, bool ownsInner = false)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (recordedSize % Format.FormatLimits.SectorSize != 0 || recordedSize <= inner.Size)
        {
            throw new ArgumentOutOfRangeException(nameof(recordedSize),
                $"{inner.Name}: recorded size {recordedSize} is not a multiple of 512 larger than the device ({inner.Size} bytes)");
        }
        _inner = inner;
        _ownsInner = ownsInner;
        Size = recordedSize;
        ImageLength = LengthOf(inner);
    }

    /// <summary>
    /// The length of <paramref name="device"/> as messages quote it: an image file's length before
    /// rounding to 512, also through an overlay (a check-only run names the image as it is).
    /// </summary>
    public static long LengthOf(IBlockDevice device) => device switch
    {
        FileBlockDevice file => file.Length,
        OverlayBlockDevice overlay when overlay.Size == overlay.Base.Size => LengthOf(overlay.Base),
        _ => device.Size,
    };

    /// <summary>
    /// One line for a device shorter than <paramref name="recordedSize"/> that a caller refuses to
    /// use: what is wrong and what to do ("fs.img: truncated: the image is N bytes, the superblock
    /// records M bytes; run basalt fsck -y …").
    /// </summary>
    public static string RefusalText(IBlockDevice device, long recordedSize)
    {
        ArgumentNullException.ThrowIfNull(device);
        var image = device is IExtensibleDevice { CanExtend: true };
        return string.Create(CultureInfo.InvariantCulture,
            $"{device.Name}: truncated: the {(image ? "image" : "device")} is {LengthOf(device)} bytes, the superblock records {recordedSize} bytes; ") +
            (image
                ? "run basalt fsck -y to extend it and repair what was lost"
                : string.Create(CultureInfo.InvariantCulture, $"a block device cannot be extended: copy it to an image file of {recordedSize} bytes and run basalt fsck -y on that"));
    }

    public string Name => _inner.Name;

    /// <summary>The size the filesystem records: what the layers above see.</summary>
    public long Size { get; }

    public bool IsReadOnly => _inner.IsReadOnly;

    public IBlockDevice Inner => _inner;

    /// <summary>The length of the image (or block device) when it was opened, in bytes, as the messages quote it.</summary>
    public long ImageLength { get; }

    /// <summary>Bytes that can be read now: the device below's size, or all of <see cref="Size"/> once extended.</summary>
    public long AvailableSize => _zeroTail ? Size : Math.Min(_inner.Size, Size);

    /// <summary>True while reads past the end of the device below fail (neither extended nor extended in memory).</summary>
    public bool IsTruncated => AvailableSize < Size;

    /// <summary>True when the device below is an image file (or memory) that <see cref="Extend"/> can lengthen.</summary>
    public bool CanExtend => _inner is IExtensibleDevice { CanExtend: true };

    /// <summary>"image" for an image file, "device" for a block device.</summary>
    public string Noun => CanExtend ? "image" : "device";

    /// <summary>"the image is N bytes, the superblock records M bytes".</summary>
    public string ShortfallText => string.Create(CultureInfo.InvariantCulture,
        $"the {Noun} is {ImageLength} bytes, the superblock records {Size} bytes");

    /// <summary>Extends the image below to <see cref="Size"/> for real (fsck -y); the new tail reads as zeroes.</summary>
    public void Extend()
    {
        if (_inner is not IExtensibleDevice { CanExtend: true } extensible)
            throw new BasaltException(ErrorCode.InvalidArgument, $"{Name}: {ShortfallText}, and a block device cannot be extended");
        extensible.Extend(Size);
    }

    /// <summary>
    /// Reads the missing tail as zeroes from now on without writing anything: what <see cref="Extend"/>
    /// would leave, for a check-only run on an overlay.
    /// </summary>
    public void ExtendInMemory() => _zeroTail = true;

    public void Read(long offset, Span<byte> buffer)
    {
        DeviceRange.Check(this, offset, buffer.Length);
        var available = Math.Min(_inner.Size, Size);
        if (offset + buffer.Length <= available)
        {
            _inner.Read(offset, buffer);
            return;
        }
        if (!_zeroTail)
            throw PastTheEnd("read", offset, buffer.Length);
        var head = (int)Math.Max(0, available - offset);
        if (head > 0)
            _inner.Read(offset, buffer[..head]);
        buffer[head..].Clear();
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        DeviceRange.Check(this, offset, data.Length);
        if (offset + data.Length > _inner.Size)
            throw PastTheEnd("write", offset, data.Length);
        _inner.Write(offset, data);
    }

    public void Flush() => _inner.Flush();

    /// <summary>A hint: the part inside the device below is passed on; the missing tail holds nothing to discard.</summary>
    public void Discard(long offset, long length)
    {
        DeviceRange.Check(this, offset, length);
        var end = Math.Min(offset + length, _inner.Size);
        if (end > offset)
            _inner.Discard(offset, end - offset);
    }

    public void Dispose()
    {
        if (_ownsInner)
            _inner.Dispose();
    }

    public override string ToString() => $"{Name} (truncated: {ShortfallText})";

    private BasaltException PastTheEnd(string what, long offset, long length) =>
        new(ErrorCode.IoError, string.Create(CultureInfo.InvariantCulture,
            $"{Name}: cannot {what} at offset {offset}+{length}: the {Noun} is truncated: it is {ImageLength} bytes, the superblock records {Size} bytes (run basalt fsck)"));
}
