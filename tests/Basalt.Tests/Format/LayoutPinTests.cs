// Pins every on-disk layout of the format primitives to the documented numbers (BRIEF "On-disk
// layout decisions", docs/format.md). A change here is a format change: update the docs with it.
using System.Buffers.Binary;
using Basalt.Format;

namespace Basalt.Tests.Format;

public sealed class LayoutPinTests
{
    [Fact]
    public void Bpos_Is20BytesInodeOffsetSnapshot()
    {
        Assert.Equal(20, Bpos.SizeOf);
        Assert.Equal(0, Bpos.InodeOffset);
        Assert.Equal(8, Bpos.OffsetOffset);
        Assert.Equal(16, Bpos.SnapshotOffset);
        var bytes = new byte[20];
        new Bpos(0x0102030405060708, 0x1112131415161718, 0x21222324).Write(bytes);
        Assert.Equal("08070605040302011817161514131211" + "24232221", Convert.ToHexString(bytes));
    }

    [Fact]
    public void BkeyHeader_Is32Bytes()
    {
        Assert.Equal(32, BkeyFormat.HeaderSize);
        Assert.Equal(0, BkeyFormat.U64sOffset);
        Assert.Equal(2, BkeyFormat.TypeOffset);
        Assert.Equal(3, BkeyFormat.ValuePadOffset);
        Assert.Equal(4, BkeyFormat.SizeOffset);
        Assert.Equal(8, BkeyFormat.PosOffset);
        Assert.Equal(28, BkeyFormat.ReservedOffset);
        Assert.Equal(BkeyFormat.PosOffset + Bpos.SizeOf, BkeyFormat.ReservedOffset);
        Assert.Equal(64 * 1024, BkeyFormat.MaxValueBytes);
    }

    [Fact]
    public void BtreePtrValue_Layout()
    {
        Assert.Equal(0, BtreePtrValue.SeqOffset);
        Assert.Equal(8, BtreePtrValue.SectorsWrittenOffset);
        Assert.Equal(10, BtreePtrValue.FlagsOffset);
        Assert.Equal(12, BtreePtrValue.Reserved1Offset);
        Assert.Equal(16, BtreePtrValue.MinKeyOffset);
        Assert.Equal(36, BtreePtrValue.Reserved2Offset);
        Assert.Equal(40, BtreePtrValue.PtrsOffset);
        Assert.Equal(40, BtreePtrValue.FixedSize);
        Assert.Equal(4, BtreePtrValue.MaxReplicas);
        Assert.Equal(16, DevicePtr.SizeOf);
        Assert.Equal(0, BtreePtrValue.PtrOffsetOffset);
        Assert.Equal(8, BtreePtrValue.PtrDeviceOffset);
        Assert.Equal(9, BtreePtrValue.PtrGenOffset);
        Assert.Equal(10, BtreePtrValue.PtrFlagsOffset);
        Assert.Equal(12, BtreePtrValue.PtrReservedOffset);
        Assert.Equal(56, BtreePtrValue.SizeFor(1));
        Assert.Equal(104, BtreePtrValue.SizeFor(4));
        Assert.Equal(1, (ushort)BtreePtrFlags.RangeUpdated);
    }

    [Fact]
    public void BtreePtrValue_BytesAtTheDocumentedOffsets()
    {
        var bytes = new BtreePtrValue
        {
            Seq = 0x0102030405060708,
            SectorsWritten = 0x1112,
            Flags = BtreePtrFlags.RangeUpdated,
            MinKey = new Bpos(0x21, 0x22, 0x23),
            Ptrs = [new DevicePtr(0x31, 0x4142434445464748, 0x51, Cached: true)],
        }.ToBytes();
        Assert.Equal(56, bytes.Length);
        Assert.Equal(0x0102030405060708UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(0)));
        Assert.Equal(0x1112, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(10)));
        Assert.Equal(new Bpos(0x21, 0x22, 0x23), Bpos.Read(bytes.AsSpan(16)));
        Assert.Equal(0x4142434445464748UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(40)));
        Assert.Equal(0x31, bytes[48]);
        Assert.Equal(0x51, bytes[49]);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(50)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(52)));
    }
}
