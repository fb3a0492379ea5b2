using Basalt.Format;
using FsCheck;
using FsCheck.Fluent;

namespace Basalt.Tests.Format;

public sealed class BkeyFormatTests
{
    private static readonly Config s_config = Config.QuickThrowOnFailure.WithMaxTest(300);

    private static Gen<(Bkey Key, byte[] Value)> Keys { get; } =
        from pos in FormatGenerators.Bpos
        from type in FormatGenerators.KeyTypes
        from size in FormatGenerators.U32
        from value in FormatGenerators.Bytes(200)
        select (new Bkey(pos, type, size), value);

    [Fact]
    public void EncodeDecode_RoundTrips() =>
        Check.One(s_config, Prop.ForAll(Keys.ToArbitrary(), t =>
        {
            var (key, value) = t;
            var buffer = new byte[BkeyFormat.EncodedSize(value.Length) + 16];
            buffer.AsSpan().Fill(0xA5); // garbage the encoder must overwrite (padding, reserved)
            var written = BkeyFormat.Write(buffer, key, value);
            var view = new BkeyView(buffer);
            return written == BkeyFormat.EncodedSize(value.Length) &&
                   written % 8 == 0 &&
                   view.TotalBytes == written &&
                   view.IsWellFormed(written) &&
                   !view.IsWellFormed(written - 8) &&
                   view.Key == key &&
                   view.Value.SequenceEqual(value) &&
                   view.Reserved == 0 &&
                   view.ValuePad == written - BkeyFormat.HeaderSize - value.Length &&
                   buffer.AsSpan(BkeyFormat.HeaderSize + value.Length, view.ValuePad).IndexOfAnyExcept((byte)0) < 0 &&
                   buffer[written] == 0xA5;
        }));

    [Fact]
    public void KeysOneAfterAnother_DecodeInSequence() =>
        Check.One(s_config, Prop.ForAll(Gen.ListOf(Keys).ToArbitrary(), keys =>
        {
            var total = keys.Sum(k => BkeyFormat.EncodedSize(k.Value.Length));
            var buffer = new byte[total];
            var at = 0;
            foreach (var (key, value) in keys)
                at += BkeyFormat.Write(buffer.AsSpan(at), key, value);
            at = 0;
            foreach (var (key, value) in keys)
            {
                var view = new BkeyView(buffer.AsSpan(at));
                if (!view.IsWellFormed(total - at) || view.Key != key || !view.Value.SequenceEqual(value))
                    return false;
                at += view.TotalBytes;
            }
            return at == total;
        }));

    [Theory]
    [InlineData(0, 32)]
    [InlineData(1, 40)]
    [InlineData(7, 40)]
    [InlineData(8, 40)]
    [InlineData(9, 48)]
    [InlineData(40, 72)]
    public void EncodedSize_PadsValueTo8(int valueLength, int expected) => Assert.Equal(expected, BkeyFormat.EncodedSize(valueLength));

    [Fact]
    public void Write_RefusesShortDestination() =>
        Assert.Throws<ArgumentException>(() => BkeyFormat.Write(new byte[39], new Bkey(Bpos.Min, KeyType.Cookie), new byte[1]));

    [Fact]
    public void View_RejectsMalformedHeaders()
    {
        var buffer = new byte[64];
        BkeyFormat.Write(buffer, new Bkey(new Bpos(1, 2), KeyType.Cookie), [1, 2, 3]);
        Assert.True(new BkeyView(buffer).IsWellFormed(40));

        var tooSmall = (byte[])buffer.Clone();
        tooSmall[BkeyFormat.U64sOffset] = 3; // 24 bytes: shorter than the header
        tooSmall[BkeyFormat.ValuePadOffset] = 0;
        Assert.False(new BkeyView(tooSmall).IsWellFormed(64));

        var badPad = (byte[])buffer.Clone();
        badPad[BkeyFormat.ValuePadOffset] = 8;
        Assert.False(new BkeyView(badPad).IsWellFormed(64));

        var pastEnd = (byte[])buffer.Clone();
        pastEnd[BkeyFormat.U64sOffset] = 200;
        Assert.False(new BkeyView(pastEnd).IsWellFormed(64));

        var empty = new byte[32];
        Assert.False(new BkeyView(empty).IsWellFormed(32)); // u64s = 0
    }

    [Fact]
    public void Header_FieldsLandAtTheDocumentedOffsets()
    {
        var buffer = new byte[48];
        var key = new Bkey(new Bpos(0x0102030405060708, 0x1112131415161718, 0x21222324), KeyType.Extent, 0x31323334);
        BkeyFormat.Write(buffer, key, [0xEE, 0xEE, 0xEE]);
        Assert.Equal(
            "0500" + "06" + "05" + "34333231" +
            "0807060504030201" + "1817161514131211" + "24232221" +
            "00000000" + "EEEEEE0000000000",
            Convert.ToHexString(buffer.AsSpan(0, 40)));
    }
}
