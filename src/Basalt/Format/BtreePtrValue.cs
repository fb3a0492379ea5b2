// The value of a BtreePtr key: the pointer from a parent (or the superblock) to a child node.
// The key's position is the child's max key; the value records the child's min key, its node
// seq (so a reader can tell it read the right node), how many sectors of it are valid on disk,
// and one device pointer per replica. Layout in docs/format.md ("Btree pointer value").
using System.Buffers.Binary;
using System.Text;

namespace Basalt.Format;

/// <summary>One replica of a node: device index, offset in sectors and the bucket generation.</summary>
public readonly record struct DevicePtr(byte Device, ulong OffsetSectors, byte Gen, bool Cached = false)
{
    public const int SizeOf = 16;

    public long OffsetBytes => checked((long)OffsetSectors * FormatLimits.SectorSize);

    /// <summary>"dev 0 offset 1114112 gen 0": the offset in bytes, like every offset Basalt prints (sectors are the on-disk unit only).</summary>
    public string ToText() => $"dev {Device} offset {(UInt128)OffsetSectors * FormatLimits.SectorSize} gen {Gen}{(Cached ? " cached" : "")}";

    /// <summary>Writes the 16-byte on-disk form (offset u64, device u8, gen u8, flags u16, reserved u32).</summary>
    public void Write(Span<byte> destination)
    {
        var p = destination[..SizeOf];
        p.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(p[BtreePtrValue.PtrOffsetOffset..], OffsetSectors);
        p[BtreePtrValue.PtrDeviceOffset] = Device;
        p[BtreePtrValue.PtrGenOffset] = Gen;
        BinaryPrimitives.WriteUInt16LittleEndian(p[BtreePtrValue.PtrFlagsOffset..], (ushort)(Cached ? 1 : 0));
    }

    /// <summary>Reads the on-disk form without checking the reserved bits (see <see cref="TryRead"/>).</summary>
    public static DevicePtr Read(ReadOnlySpan<byte> source) =>
        new(source[BtreePtrValue.PtrDeviceOffset], BinaryPrimitives.ReadUInt64LittleEndian(source[BtreePtrValue.PtrOffsetOffset..]),
            source[BtreePtrValue.PtrGenOffset], (BinaryPrimitives.ReadUInt16LittleEndian(source[BtreePtrValue.PtrFlagsOffset..]) & 1) != 0);

    /// <summary>Reads the on-disk form; false when unknown flag bits or reserved bytes are set.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out DevicePtr ptr)
    {
        ptr = Read(source);
        return (BinaryPrimitives.ReadUInt16LittleEndian(source[BtreePtrValue.PtrFlagsOffset..]) & ~1) == 0 &&
               BinaryPrimitives.ReadUInt32LittleEndian(source[BtreePtrValue.PtrReservedOffset..]) == 0;
    }
}

[Flags]
public enum BtreePtrFlags : ushort
{
    None = 0,
    /// <summary>Topology repair changed the child's range: trust the pointer, drop keys outside it.</summary>
    RangeUpdated = 1,
}

public sealed class BtreePtrValue
{
    public const int SeqOffset = 0;             // u64
    public const int SectorsWrittenOffset = 8;  // u16
    public const int FlagsOffset = 10;          // u16
    public const int Reserved1Offset = 12;      // u32, zero
    public const int MinKeyOffset = 16;         // Bpos, 20 bytes
    public const int Reserved2Offset = 36;      // u32, zero
    public const int PtrsOffset = 40;           // DevicePtr[n], 16 bytes each
    public const int FixedSize = 40;
    public const int MaxReplicas = 4;

    // DevicePtr layout
    public const int PtrOffsetOffset = 0;       // u64 offset in sectors
    public const int PtrDeviceOffset = 8;       // u8
    public const int PtrGenOffset = 9;          // u8
    public const int PtrFlagsOffset = 10;       // u16, bit 0 = cached
    public const int PtrReservedOffset = 12;    // u32, zero

    public ulong Seq { get; init; }
    public ushort SectorsWritten { get; init; }
    public BtreePtrFlags Flags { get; init; }
    public Bpos MinKey { get; init; }
    public IReadOnlyList<DevicePtr> Ptrs { get; init; } = [];

    public int EncodedSize => FixedSize + (DevicePtr.SizeOf * Ptrs.Count);

    public static int SizeFor(int replicas) => FixedSize + (DevicePtr.SizeOf * replicas);

    public BtreePtrValue With(ushort? sectorsWritten = null, Bpos? minKey = null, BtreePtrFlags? flags = null) => new()
    {
        Seq = Seq,
        SectorsWritten = sectorsWritten ?? SectorsWritten,
        Flags = flags ?? Flags,
        MinKey = minKey ?? MinKey,
        Ptrs = Ptrs,
    };

    public int Write(Span<byte> destination)
    {
        var size = EncodedSize;
        var d = destination[..size];
        d.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d[SeqOffset..], Seq);
        BinaryPrimitives.WriteUInt16LittleEndian(d[SectorsWrittenOffset..], SectorsWritten);
        BinaryPrimitives.WriteUInt16LittleEndian(d[FlagsOffset..], (ushort)Flags);
        MinKey.Write(d[MinKeyOffset..]);
        for (var i = 0; i < Ptrs.Count; i++)
            Ptrs[i].Write(d[(PtrsOffset + (i * DevicePtr.SizeOf))..]);
        return size;
    }

    public byte[] ToBytes()
    {
        var bytes = new byte[EncodedSize];
        Write(bytes);
        return bytes;
    }

    /// <summary>
    /// Parses a value. Returns false with a reason when the bytes are not a well-formed pointer
    /// (wrong size, no replicas, too many, reserved fields set, unknown flags).
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> value, out BtreePtrValue ptr, out string? problem)
    {
        ptr = null!;
        if (value.Length < SizeFor(1) || (value.Length - FixedSize) % DevicePtr.SizeOf != 0)
        {
            problem = $"btree pointer value of {value.Length} bytes (expected {FixedSize} + 16 per replica)";
            return false;
        }
        var n = (value.Length - FixedSize) / DevicePtr.SizeOf;
        if (n > MaxReplicas)
        {
            problem = $"btree pointer with {n} replicas (at most {MaxReplicas})";
            return false;
        }
        var flags = BinaryPrimitives.ReadUInt16LittleEndian(value[FlagsOffset..]);
        if ((flags & ~(ushort)BtreePtrFlags.RangeUpdated) != 0)
        {
            problem = $"btree pointer with unknown flags 0x{flags:x}";
            return false;
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(value[Reserved1Offset..]) != 0 ||
            BinaryPrimitives.ReadUInt32LittleEndian(value[Reserved2Offset..]) != 0)
        {
            problem = "btree pointer with reserved fields set";
            return false;
        }
        var ptrs = new DevicePtr[n];
        for (var i = 0; i < n; i++)
        {
            if (!DevicePtr.TryRead(value[(PtrsOffset + (i * DevicePtr.SizeOf))..], out ptrs[i]))
            {
                problem = $"btree pointer replica {i} with reserved bits set";
                return false;
            }
        }
        ptr = new BtreePtrValue
        {
            Seq = BinaryPrimitives.ReadUInt64LittleEndian(value[SeqOffset..]),
            SectorsWritten = BinaryPrimitives.ReadUInt16LittleEndian(value[SectorsWrittenOffset..]),
            Flags = (BtreePtrFlags)flags,
            MinKey = Bpos.Read(value[MinKeyOffset..]),
            Ptrs = ptrs,
        };
        problem = null;
        return true;
    }

    public string ToText()
    {
        var sb = new StringBuilder();
        sb.Append($"seq {Seq:x16} sectors_written {SectorsWritten} min {MinKey.ToText()}");
        if (Flags != BtreePtrFlags.None)
            sb.Append($" flags {Flags}");
        foreach (var p in Ptrs)
            sb.Append(" [").Append(p.ToText()).Append(']');
        return sb.ToString();
    }

    public override string ToString() => ToText();
}

/// <summary>A btree's root as the superblock records it: the pointer to the root node and its level.</summary>
public sealed record BtreeRoot(BtreeId Btree, byte Level, BtreePtrValue Ptr)
{
    public string ToText() => $"{Btree.ToText()} level {Level} {Ptr.ToText()}";
}
