// Helpers for superblock tests: a small formatted memory device and ways to damage copies.
using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Superblocks;

namespace Basalt.Tests.Superblocks;

internal static class SuperblockTestKit
{
    public const long SmallDeviceSize = 4L * 1024 * 1024;

    public static readonly Guid FsUuid = Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    public static readonly Guid DevUuid = Guid.Parse("11111111-2222-3333-4444-555555555555");
    public static readonly DateTimeOffset FormatTime = new(2026, 11, 21, 6, 0, 0, TimeSpan.Zero);

    public static FormatOptions SmallOptions => new()
    {
        BlockSize = 512,
        BucketSize = 16 * 1024,
        NodeSize = 4096,
        Label = "test",
        Uuid = FsUuid,
        DeviceUuid = DevUuid,
        Time = FormatTime,
    };

    public static (MemoryBlockDevice Device, Superblock Superblock) FormatSmall(long size = SmallDeviceSize, FormatOptions? options = null)
    {
        var device = new MemoryBlockDevice(size, "test.img");
        var sb = SuperblockIo.Format(device, options ?? SmallOptions);
        return (device, sb);
    }

    /// <summary>Recomputes the checksum of the copy at <paramref name="offset"/> after a test edited it.</summary>
    public static void Reseal(MemoryBlockDevice device, long offset)
    {
        var copy = device.Contents.Slice(checked((int)offset), SuperblockFormat.CopySize);
        var total = (int)BinaryPrimitives.ReadUInt32LittleEndian(copy[SuperblockFormat.TotalBytesOffset..]);
        var type = (ChecksumType)copy[SuperblockFormat.ChecksumTypeOffset];
        if (!Checksums.IsKnown((byte)type) || total > copy.Length || total < SuperblockFormat.HeaderSize)
            return; // an edit that makes the copy unsealable is rejected before the checksum is looked at
        BinaryPrimitives.WriteUInt64LittleEndian(copy, Checksums.Compute(type, copy[SuperblockFormat.ChecksummedFrom..total]));
    }

    public static Span<byte> Copy(MemoryBlockDevice device, long offset) =>
        device.Contents.Slice(checked((int)offset), SuperblockFormat.CopySize);

    /// <summary>Edits a field of every copy and reseals each.</summary>
    public static void EditAllCopies(MemoryBlockDevice device, Superblock sb, Action<Span<byte>> edit)
    {
        foreach (var offset in sb.CopyOffsets)
        {
            edit(Copy(device, offset));
            Reseal(device, offset);
        }
    }

    public static BtreeRoot SampleRoot(BtreeId btree, byte level, ulong offsetSectors) => new(btree, level, new BtreePtrValue
    {
        Seq = 0x1234_5678_9abc_def0UL + offsetSectors,
        SectorsWritten = 8,
        MinKey = Bpos.Min,
        Ptrs = [new DevicePtr(0, offsetSectors, 3)],
    });
}
