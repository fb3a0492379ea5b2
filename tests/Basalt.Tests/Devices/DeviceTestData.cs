namespace Basalt.Tests.Devices;

internal static class DeviceTestData
{
    public const int Sector = 512;

    /// <summary>Bytes that differ per sector and per call, so a misplaced sector shows.</summary>
    public static byte[] Pattern(int length, int salt)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
            bytes[i] = (byte)((i / Sector * 31) + (i * 7) + (salt * 101) + 1);
        return bytes;
    }

    public static byte[] ReadAll(Basalt.Devices.IBlockDevice device)
    {
        var bytes = new byte[device.Size];
        device.Read(0, bytes);
        return bytes;
    }
}
