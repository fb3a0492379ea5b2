using Basalt.Devices;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Devices.DeviceTestData;

namespace Basalt.Tests.Devices;

public sealed class OverlayBlockDeviceTests(ITestOutputHelper output)
{
    private static MemoryBlockDevice Base(int sectors = 64)
    {
        var device = new MemoryBlockDevice(sectors * Sector, "base");
        device.Write(0, Pattern(sectors * Sector, 42));
        return device;
    }

    [Fact]
    public void Reads_FallThroughUntilWritten()
    {
        var baseDevice = Base();
        using var overlay = new OverlayBlockDevice(baseDevice);
        Assert.Equal(DeviceTestData.ReadAll(baseDevice), DeviceTestData.ReadAll(overlay));
        Assert.Equal(0, overlay.BytesWrittenAside);
        Assert.Equal(baseDevice.Size, overlay.Size);
    }

    [Fact]
    public void Writes_AreKeptAsideAndTheBaseIsUntouched()
    {
        var baseDevice = Base();
        var original = DeviceTestData.ReadAll(baseDevice);
        using var overlay = new OverlayBlockDevice(baseDevice);
        var data = Pattern(3 * Sector, 7);
        overlay.Write(10 * Sector, data);
        overlay.Write(11 * Sector, Pattern(Sector, 8)); // rewrite of an aside sector
        overlay.Flush();
        Assert.Equal(original, DeviceTestData.ReadAll(baseDevice));
        Assert.Equal(3 * Sector, overlay.BytesWrittenAside);
        Assert.Equal(new long[] { 10 * Sector, 11 * Sector, 12 * Sector }, overlay.WrittenSectors());

        var expected = (byte[])original.Clone();
        data.CopyTo(expected, 10 * Sector);
        Pattern(Sector, 8).CopyTo(expected, 11 * Sector);
        Assert.Equal(expected, DeviceTestData.ReadAll(overlay));
        // A read straddling aside and base sectors.
        var mixed = new byte[6 * Sector];
        overlay.Read(8 * Sector, mixed);
        Assert.Equal(expected.AsSpan(8 * Sector, 6 * Sector).ToArray(), mixed);
    }

    [Fact]
    public void Discard_ReadsZeroesAside()
    {
        var baseDevice = Base();
        using var overlay = new OverlayBlockDevice(baseDevice);
        overlay.Discard(4 * Sector, 2 * Sector);
        var back = new byte[2 * Sector];
        overlay.Read(4 * Sector, back);
        Assert.True(back.AsSpan().IndexOfAnyExcept((byte)0) < 0);
        Assert.NotEqual(0, baseDevice.Contents[4 * Sector]);
    }

    [Fact]
    public void PastTheThreshold_SpillsToATempFileAndReadsBack()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        var baseDevice = Base(256);
        var original = DeviceTestData.ReadAll(baseDevice);
        using var spillDir = new TempDirectory("overlay");
        using var overlay = new OverlayBlockDevice(baseDevice, memoryThreshold: 16 * Sector, spillDirectory: spillDir.Path);
        var model = (byte[])original.Clone();
        for (var i = 0; i < 200; i++)
        {
            var sectors = random.Next(1, 9);
            var at = random.Next(0, 256 - sectors);
            var data = Pattern(sectors * Sector, random.Next());
            overlay.Write(at * Sector, data);
            data.CopyTo(model, at * Sector);
        }
        Assert.True(overlay.BytesSpilled > 0);
        Assert.Equal(overlay.BytesWrittenAside - (16 * Sector), overlay.BytesSpilled);
        Assert.Empty(Directory.GetFiles(spillDir.Path)); // unlinked right after creation
        Assert.Equal(model, DeviceTestData.ReadAll(overlay));
        Assert.Equal(original, DeviceTestData.ReadAll(baseDevice));
    }

    [Fact]
    public void Reset_ForgetsTheWritesAside()
    {
        var baseDevice = Base();
        using var overlay = new OverlayBlockDevice(baseDevice, memoryThreshold: 0);
        overlay.Write(0, Pattern(4 * Sector, 1));
        Assert.Equal(4 * Sector, overlay.BytesSpilled);
        overlay.Reset();
        Assert.Equal(0, overlay.BytesWrittenAside);
        Assert.Equal(DeviceTestData.ReadAll(baseDevice), DeviceTestData.ReadAll(overlay));
    }

    [Fact]
    public void Disposed_RefusesIo()
    {
        var overlay = new OverlayBlockDevice(Base());
        overlay.Dispose();
        Assert.Throws<ObjectDisposedException>(() => overlay.Read(0, new byte[Sector]));
        Assert.Throws<ObjectDisposedException>(() => overlay.Write(0, new byte[Sector]));
    }
}
