using Basalt.Devices;
using Basalt.Diagnostics;
using static Basalt.Tests.Devices.DeviceTestData;

namespace Basalt.Tests.Devices;

public sealed class TruncatedDeviceTests
{
    private static MemoryBlockDevice Short(int sectors = 8)
    {
        var device = new MemoryBlockDevice(sectors * Sector, "cut.img");
        device.Write(0, Pattern(sectors * Sector, 7));
        return device;
    }

    [Fact]
    public void It_presents_the_recorded_size_and_reads_what_the_device_holds()
    {
        using var inner = Short();
        using var device = new TruncatedDevice(inner, 32 * Sector);
        Assert.Equal(32 * Sector, device.Size);
        Assert.Equal(8 * Sector, device.AvailableSize);
        Assert.True(device.IsTruncated);
        Assert.True(device.CanExtend);
        var buffer = new byte[8 * Sector];
        device.Read(0, buffer);
        Assert.Equal(Pattern(8 * Sector, 7), buffer);
        Assert.Equal("the image is 4096 bytes, the superblock records 16384 bytes", device.ShortfallText);
    }

    [Fact]
    public void A_read_or_write_that_reaches_the_missing_tail_is_an_io_error_naming_the_truncation()
    {
        using var inner = Short();
        using var device = new TruncatedDevice(inner, 32 * Sector);
        var e = Assert.Throws<BasaltException>(() => device.Read(7 * Sector, new byte[2 * Sector]));
        Assert.Equal(ErrorCode.IoError, e.Code);
        Assert.Equal("cut.img: cannot read at offset 3584+1024: the image is truncated: it is 4096 bytes, the superblock records 16384 bytes (run basalt fsck)", e.Message);
        var w = Assert.Throws<BasaltException>(() => device.Write(20 * Sector, new byte[Sector]));
        Assert.Equal(ErrorCode.IoError, w.Code);
        Assert.StartsWith("cut.img: cannot write at offset 10240+512: the image is truncated", w.Message, StringComparison.Ordinal);
        // Past the recorded size is a caller's bug, as on every device.
        Assert.Throws<ArgumentOutOfRangeException>(() => device.Read(32 * Sector, new byte[Sector]));
        // A discard is a hint: the part inside the device is passed on.
        device.Discard(6 * Sector, 10 * Sector);
        Assert.True(inner.Contents[(6 * Sector)..].ToArray().All(b => b == 0));
    }

    [Fact]
    public void Extended_in_memory_the_tail_reads_as_zeroes_and_nothing_is_written()
    {
        using var inner = Short();
        using var device = new TruncatedDevice(inner, 32 * Sector);
        device.ExtendInMemory();
        Assert.False(device.IsTruncated);
        var buffer = new byte[4 * Sector];
        Array.Fill(buffer, (byte)0xff);
        device.Read(6 * Sector, buffer);
        Assert.Equal(Pattern(8 * Sector, 7)[(6 * Sector)..], buffer[..(2 * Sector)]);
        Assert.True(buffer[(2 * Sector)..].All(b => b == 0));
        Assert.Equal(8 * Sector, inner.Size);
    }

    [Fact]
    public void Extend_lengthens_the_device_below_and_the_tail_reads_as_zeroes()
    {
        using var inner = Short();
        using var device = new TruncatedDevice(inner, 32 * Sector);
        device.Extend();
        Assert.Equal(32 * Sector, inner.Size);
        Assert.False(device.IsTruncated);
        var buffer = new byte[24 * Sector];
        device.Read(8 * Sector, buffer);
        Assert.True(buffer.All(b => b == 0));
        device.Write(31 * Sector, Pattern(Sector, 3));
        Assert.Equal(Pattern(Sector, 3), inner.Contents[(31 * Sector)..].ToArray());
    }

    [Fact]
    public void A_device_that_cannot_grow_is_not_extended()
    {
        using var inner = Short();
        using var faulty = new FaultyBlockDevice(inner, ownsInner: false);
        using var device = new TruncatedDevice(faulty, 32 * Sector);
        Assert.False(device.CanExtend);
        Assert.Equal("device", device.Noun);
        var e = Assert.Throws<BasaltException>(device.Extend);
        Assert.Contains("a block device cannot be extended", e.Message, StringComparison.Ordinal);
        Assert.Equal(
            "cut.img: truncated: the device is 4096 bytes, the superblock records 16384 bytes; a block device cannot be extended: copy it to an image file of 16384 bytes and run basalt fsck -y on that",
            TruncatedDevice.RefusalText(faulty, 32 * Sector));
    }
}
