// Space accounting: counters in the accounting btree, kept by the allocation triggers in the same
// transaction as the change they count, and recomputed by check_allocations. One key per device
// and bucket data type at (kind 1, device << 8 | data type, 0) holds {buckets, sectors, fragmented
// sectors}.
// Layout in docs/format.md ("Accounting").
using System.Buffers.Binary;
using System.Globalization;
using Basalt.Format;

namespace Basalt.Alloc;

public enum AccountingKind : ulong
{
    /// <summary>Per device and bucket data type: buckets, sectors, fragmented sectors.</summary>
    DeviceDataType = 1,
}

/// <summary>The counters of one device and data type.</summary>
public record struct DeviceUsage(long Buckets, long Sectors, long Fragmented)
{
    public const int Size = 24;

    public static Bpos Position(byte device, BucketDataType type) => new((ulong)AccountingKind.DeviceDataType, ((ulong)device << 8) | (byte)type);

    public static bool TryReadPosition(Bpos pos, out byte device, out BucketDataType type)
    {
        device = (byte)(pos.Offset >> 8);
        type = (BucketDataType)(byte)pos.Offset;
        return pos.Inode == (ulong)AccountingKind.DeviceDataType && pos.Offset <= ushort.MaxValue && pos.Snapshot == 0 &&
               BucketDataTypes.IsKnown((byte)pos.Offset);
    }

    public readonly bool IsZero => Buckets == 0 && Sectors == 0 && Fragmented == 0;

    public readonly DeviceUsage Add(DeviceUsage d) => new(Buckets + d.Buckets, Sectors + d.Sectors, Fragmented + d.Fragmented);

    public readonly byte[] ToArray()
    {
        var bytes = new byte[Size];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, Buckets);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8), Sectors);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(16), Fragmented);
        return bytes;
    }

    public static bool TryRead(ReadOnlySpan<byte> value, out DeviceUsage usage, out string? problem)
    {
        usage = default;
        if (value.Length != Size)
        {
            problem = $"accounting value of {value.Length} bytes (must be {Size})";
            return false;
        }
        usage = new DeviceUsage(BinaryPrimitives.ReadInt64LittleEndian(value), BinaryPrimitives.ReadInt64LittleEndian(value[8..]),
            BinaryPrimitives.ReadInt64LittleEndian(value[16..]));
        if (usage.Buckets < 0 || usage.Sectors < 0 || usage.Fragmented < 0)
        {
            problem = $"accounting counters below zero ({usage.ToText()})";
            return false;
        }
        problem = null;
        return true;
    }

    public readonly string ToText() => string.Create(CultureInfo.InvariantCulture, $"buckets {Buckets} sectors {Sectors} fragmented {Fragmented}");
}
