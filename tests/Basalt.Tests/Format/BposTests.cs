using System.Numerics;
using Basalt.Format;
using FsCheck;
using FsCheck.Fluent;

namespace Basalt.Tests.Format;

public sealed class BposTests
{
    private static readonly Config s_config = Config.QuickThrowOnFailure.WithMaxTest(500);

    // The order a Bpos promises: one 160-bit unsigned integer, inode most significant.
    private static BigInteger AsInteger(Bpos p) =>
        ((BigInteger)p.Inode << 96) | ((BigInteger)p.Offset << 32) | p.Snapshot;

    [Fact]
    public void CompareTo_Is160BitUnsignedOrder() =>
        Check.One(s_config, Prop.ForAll(FormatGenerators.Bpos.Two().ToArbitrary(), t =>
        {
            var (a, b) = t;
            var expected = AsInteger(a).CompareTo(AsInteger(b));
            return Math.Sign(a.CompareTo(b)) == expected &&
                   (a < b) == (expected < 0) && (a > b) == (expected > 0) &&
                   (a <= b) == (expected <= 0) && (a >= b) == (expected >= 0) &&
                   (a == b) == (expected == 0) && (a != b) == (expected != 0) &&
                   Math.Sign(b.CompareTo(a)) == -expected;
        }));

    [Fact]
    public void IsBelow_IsLessThan() =>
        Check.One(s_config, Prop.ForAll(FormatGenerators.Bpos.Two().ToArbitrary(), t =>
        {
            var (a, b) = t;
            // Positions that tie on the leading fields, so every field decides the order somewhere.
            var sameInode = new Bpos(a.Inode, b.Offset, b.Snapshot);
            var sameOffset = new Bpos(a.Inode, a.Offset, b.Snapshot);
            return Bpos.IsBelow(a, b) == (AsInteger(a) < AsInteger(b)) &&
                   Bpos.IsBelow(a, sameInode) == (AsInteger(a) < AsInteger(sameInode)) &&
                   Bpos.IsBelow(a, sameOffset) == (AsInteger(a) < AsInteger(sameOffset)) &&
                   !Bpos.IsBelow(a, a);
        }));

    [Fact]
    public void Successor_IsPlusOne() =>
        Check.One(s_config, Prop.ForAll(FormatGenerators.Bpos.Where(p => !p.IsMax).ToArbitrary(), p =>
            AsInteger(p.Successor()) == AsInteger(p) + 1 && p.Successor().Predecessor() == p && p < p.Successor()));

    [Fact]
    public void Predecessor_IsMinusOne() =>
        Check.One(s_config, Prop.ForAll(FormatGenerators.Bpos.Where(p => !p.IsMin).ToArbitrary(), p =>
            AsInteger(p.Predecessor()) == AsInteger(p) - 1 && p.Predecessor().Successor() == p));

    [Fact]
    public void SuccessorAndPredecessor_CarryAcrossFields()
    {
        Assert.Equal(new Bpos(1, 3, 0), new Bpos(1, 2, uint.MaxValue).Successor());
        Assert.Equal(new Bpos(2, 0, 0), new Bpos(1, ulong.MaxValue, uint.MaxValue).Successor());
        Assert.Equal(new Bpos(1, 2, uint.MaxValue), new Bpos(1, 3, 0).Predecessor());
        Assert.Equal(new Bpos(1, ulong.MaxValue, uint.MaxValue), new Bpos(2, 0, 0).Predecessor());
        Assert.Equal(new Bpos(0, 0, 1), Bpos.Min.Successor());
        Assert.Equal(new Bpos(ulong.MaxValue, ulong.MaxValue, uint.MaxValue - 1), Bpos.Max.Predecessor());
        Assert.Throws<InvalidOperationException>(() => Bpos.Max.Successor());
        Assert.Throws<InvalidOperationException>(() => Bpos.Min.Predecessor());
    }

    [Fact]
    public void TextRoundTrips() =>
        Check.One(s_config, Prop.ForAll(FormatGenerators.Bpos.ToArbitrary(), p =>
            Bpos.TryParse(p.ToText(), out var parsed) && parsed == p));

    [Fact]
    public void BinaryRoundTrips() =>
        Check.One(s_config, Prop.ForAll(FormatGenerators.Bpos.ToArbitrary(), p =>
        {
            var bytes = new byte[Bpos.SizeOf + 4];
            bytes.AsSpan().Fill(0xCC);
            p.Write(bytes);
            return Bpos.Read(bytes) == p && bytes[Bpos.SizeOf] == 0xCC;
        }));

    [Fact]
    public void EqualPositionsHashEqually() =>
        Check.One(s_config, Prop.ForAll(FormatGenerators.Bpos.ToArbitrary(), p =>
            new Bpos(p.Inode, p.Offset, p.Snapshot).GetHashCode() == p.GetHashCode() && p.Equals((object)p)));

    [Theory]
    [InlineData("min", 0UL, 0UL, 0u)]
    [InlineData("MAX", ulong.MaxValue, ulong.MaxValue, uint.MaxValue)]
    [InlineData("1:2", 1UL, 2UL, 0u)]
    [InlineData(" 1:2:3 ", 1UL, 2UL, 3u)]
    [InlineData("18446744073709551615:0:4294967295", ulong.MaxValue, 0UL, uint.MaxValue)]
    public void Parse_Accepts(string text, ulong inode, ulong offset, uint snapshot)
    {
        Assert.True(Bpos.TryParse(text, out var p));
        Assert.Equal(new Bpos(inode, offset, snapshot), p);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("1")]
    [InlineData("1:2:3:4")]
    [InlineData("-1:2")]
    [InlineData("+1:2")]
    [InlineData("1:x")]
    [InlineData("1::2")]
    [InlineData("18446744073709551616:0")]
    [InlineData("1:2:4294967296")]
    [InlineData("0x10:2")]
    public void Parse_Rejects(string? text) => Assert.False(Bpos.TryParse(text, out _));

    [Fact]
    public void Print_UsesNamesForTheEnds()
    {
        Assert.Equal("min", Bpos.Min.ToText());
        Assert.Equal("max", Bpos.Max.ToText());
        Assert.Equal("1:2:3", new Bpos(1, 2, 3).ToText());
        Assert.Equal("0:0:1", new Bpos(0, 0, 1).ToText());
    }
}
