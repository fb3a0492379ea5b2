using System.Buffers.Binary;
using Basalt.Format;
using FsCheck;
using FsCheck.Fluent;

namespace Basalt.Tests.Format;

public sealed class BtreePtrValueTests
{
    private static readonly Config s_config = Config.QuickThrowOnFailure.WithMaxTest(300);

    private static BtreePtrValue Sample(int replicas = 1) => new()
    {
        Seq = 0xDEADBEEF_01020304,
        SectorsWritten = 24,
        Flags = BtreePtrFlags.RangeUpdated,
        MinKey = new Bpos(5, 6, 7),
        Ptrs = Enumerable.Range(0, replicas).Select(i => new DevicePtr((byte)i, 1000UL + (ulong)i, (byte)(3 + i), i == 1)).ToArray(),
    };

    [Fact]
    public void RoundTrips() =>
        Check.One(s_config, Prop.ForAll(FormatGenerators.BtreePtrs.ToArbitrary(), ptr =>
        {
            var bytes = ptr.ToBytes();
            return bytes.Length == BtreePtrValue.SizeFor(ptr.Ptrs.Count) &&
                   BtreePtrValue.TryRead(bytes, out var back, out var problem) && problem is null &&
                   back.Seq == ptr.Seq && back.SectorsWritten == ptr.SectorsWritten && back.Flags == ptr.Flags &&
                   back.MinKey == ptr.MinKey && back.Ptrs.SequenceEqual(ptr.Ptrs) &&
                   back.ToBytes().AsSpan().SequenceEqual(bytes);
        }));

    [Fact]
    public void Write_ClearsReservedBytes()
    {
        var buffer = new byte[BtreePtrValue.SizeFor(2)];
        buffer.AsSpan().Fill(0xFF);
        Sample(2).Write(buffer);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(BtreePtrValue.Reserved1Offset)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(BtreePtrValue.Reserved2Offset)));
        Assert.True(BtreePtrValue.TryRead(buffer, out _, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(39)]
    [InlineData(40)]   // no replica
    [InlineData(55)]   // 40 + 15: not a whole replica
    [InlineData(57)]
    [InlineData(40 + (5 * 16))] // five replicas
    public void TryRead_RejectsBadSizes(int length)
    {
        var bytes = new byte[length];
        Assert.False(BtreePtrValue.TryRead(bytes, out _, out var problem));
        Assert.NotNull(problem);
    }

    [Fact]
    public void TryRead_AcceptsOneToFourReplicas()
    {
        for (var n = 1; n <= BtreePtrValue.MaxReplicas; n++)
            Assert.True(BtreePtrValue.TryRead(Sample(n).ToBytes(), out var ptr, out _) && ptr.Ptrs.Count == n);
    }

    [Theory]
    [InlineData(BtreePtrValue.FlagsOffset, 0x02, "unknown flags")]
    [InlineData(BtreePtrValue.FlagsOffset + 1, 0x80, "unknown flags")]
    [InlineData(BtreePtrValue.Reserved1Offset, 0x01, "reserved")]
    [InlineData(BtreePtrValue.Reserved2Offset + 3, 0x01, "reserved")]
    [InlineData(BtreePtrValue.PtrsOffset + BtreePtrValue.PtrFlagsOffset, 0x02, "replica 0")]
    [InlineData(BtreePtrValue.PtrsOffset + 16 + BtreePtrValue.PtrReservedOffset, 0x01, "replica 1")]
    public void TryRead_RejectsReservedBitsAndUnknownFlags(int offset, byte bits, string expectedProblem)
    {
        var bytes = Sample(2).ToBytes();
        bytes[offset] |= bits;
        Assert.False(BtreePtrValue.TryRead(bytes, out _, out var problem));
        Assert.Contains(expectedProblem, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void With_ChangesOnlyTheNamedFields()
    {
        var ptr = Sample(2);
        var grown = ptr.With(sectorsWritten: 32);
        Assert.Equal(32, grown.SectorsWritten);
        Assert.Equal(ptr.Seq, grown.Seq);
        Assert.Equal(ptr.MinKey, grown.MinKey);
        Assert.Equal(ptr.Flags, grown.Flags);
        Assert.Equal(ptr.Ptrs, grown.Ptrs);
        var moved = ptr.With(minKey: Bpos.Min, flags: BtreePtrFlags.None);
        Assert.Equal(Bpos.Min, moved.MinKey);
        Assert.Equal(BtreePtrFlags.None, moved.Flags);
        Assert.Equal(ptr.SectorsWritten, moved.SectorsWritten);
    }

    [Fact]
    public void DevicePtr_OffsetBytesIsSectorsTimes512()
    {
        Assert.Equal(512L * 1000, new DevicePtr(0, 1000, 0).OffsetBytes);
        Assert.Throws<OverflowException>(() => new DevicePtr(0, ulong.MaxValue, 0).OffsetBytes);
    }

    [Fact]
    public void ToText_NamesEveryField()
    {
        var text = Sample(2).ToText();
        Assert.Contains("deadbeef01020304", text, StringComparison.Ordinal);
        Assert.Contains("sectors_written 24", text, StringComparison.Ordinal);
        Assert.Contains("min 5:6:7", text, StringComparison.Ordinal);
        Assert.Contains("RangeUpdated", text, StringComparison.Ordinal);
        Assert.Contains("dev 1 offset 512512 gen 4 cached", text, StringComparison.Ordinal); // bytes: 1001 sectors
    }

    [Fact]
    public void ToText_prints_any_offset_in_bytes_without_overflow() =>
        Assert.Equal($"dev 0 offset {(UInt128)ulong.MaxValue * 512} gen 0", new DevicePtr(0, ulong.MaxValue, 0).ToText());
}
