// Block-device tests need a scratch block device whose contents may be destroyed, for example
// a loop device: `truncate -s 8M /tmp/scratch.img && losetup -f --show /tmp/scratch.img`, then
// BASALT_TEST_BLOCK_DEVICE=/dev/loopN. Without the variable these tests are reported as skipped.
using System.Runtime.Versioning;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.IntegrationTests.Devices;

[SupportedOSPlatform("linux")]
public sealed class BlockDeviceTests
{
    private const int Sector = FormatLimits.SectorSize;
    private static readonly string? s_device = Environment.GetEnvironmentVariable("BASALT_TEST_BLOCK_DEVICE");

    [SkippableFact]
    public void SizeWriteFlushReadDiscard()
    {
        Skip.If(s_device is null, "set BASALT_TEST_BLOCK_DEVICE to a scratch block device (e.g. a loop device) to run it");
        long expectedSize;
        using (var device = FileBlockDevice.Open(s_device))
        {
            Assert.True(device.IsBlockDevice);
            Assert.True(device.Size > 0 && device.Size % Sector == 0);
            expectedSize = device.Size;
            var data = new byte[16 * Sector];
            Random.Shared.NextBytes(data);
            device.Write(device.Size - data.Length, data);
            device.Flush();
            var back = new byte[data.Length];
            device.Read(device.Size - data.Length, back);
            Assert.Equal(data, back);
            device.Discard(0, 64 * Sector); // zeroes, old data or nothing: never an error
            var e = Assert.Throws<BasaltException>(() => FileBlockDevice.Open(s_device, readOnly: true));
            Assert.Equal(ErrorCode.DeviceInUse, e.Code);
        }
        using var reopened = FileBlockDevice.Open(s_device, readOnly: true);
        Assert.Equal(expectedSize, reopened.Size);
    }
}
