// FsCheck generators for format values. Each field mixes the boundary values (0, 1, max-1, max)
// with uniform 64-bit values, because ordering bugs live at the carries between fields.
using Basalt.Format;
using FsCheck;
using FsCheck.Fluent;

namespace Basalt.Tests.Format;

internal static class FormatGenerators
{
    public static Gen<ulong> U64 { get; } = Gen.OneOf(
        Gen.Elements(0UL, 1UL, 2UL, ulong.MaxValue - 1, ulong.MaxValue),
        Gen.Choose(0, 1000).Select(i => (ulong)i),
        ArbMap.Default.GeneratorFor<ulong>(),
        Gen.Choose(int.MinValue, int.MaxValue).Two().Select(t => ((ulong)(uint)t.Item1 << 32) | (uint)t.Item2));

    public static Gen<uint> U32 { get; } = Gen.OneOf(
        Gen.Elements(0u, 1u, 2u, uint.MaxValue - 1, uint.MaxValue),
        Gen.Choose(int.MinValue, int.MaxValue).Select(i => (uint)i));

    public static Gen<Bpos> Bpos { get; } =
        from inode in U64
        from offset in U64
        from snapshot in U32
        select new Bpos(inode, offset, snapshot);

    public static Gen<KeyType> KeyTypes { get; } = Gen.Elements(Enum.GetValues<KeyType>());

    public static Gen<byte[]> Bytes(int max) =>
        from n in Gen.Choose(0, max)
        from bytes in Gen.ArrayOf(ArbMap.Default.GeneratorFor<byte>(), n)
        select bytes;

    public static Gen<DevicePtr> DevicePtrs { get; } =
        from device in Gen.Choose(0, 255)
        from offset in U64
        from gen in Gen.Choose(0, 255)
        from cached in ArbMap.Default.GeneratorFor<bool>()
        select new DevicePtr((byte)device, offset, (byte)gen, cached);

    public static Gen<BtreePtrValue> BtreePtrs { get; } =
        from seq in U64
        from written in Gen.Choose(0, ushort.MaxValue)
        from rangeUpdated in ArbMap.Default.GeneratorFor<bool>()
        from min in Bpos
        from n in Gen.Choose(1, BtreePtrValue.MaxReplicas)
        from ptrs in Gen.ArrayOf(DevicePtrs, n)
        select new BtreePtrValue
        {
            Seq = seq,
            SectorsWritten = (ushort)written,
            Flags = rangeUpdated ? BtreePtrFlags.RangeUpdated : BtreePtrFlags.None,
            MinKey = min,
            Ptrs = ptrs,
        };
}
