// Published check values for the three checksums of the format. crc32c and crc64 values are
// the catalogue "check" values (input "123456789") plus the iSCSI (RFC 3720 B.4) vectors; the
// xxhash64 values were produced by the reference implementation (libxxhash 0.8.1).
using System.Text;
using Basalt.Format;

namespace Basalt.Tests.Format;

public sealed class ChecksumTests
{
    private static readonly byte[] s_check = Encoding.ASCII.GetBytes("123456789");

    [Fact]
    public void Crc32C_StandardCheckValue() => Assert.Equal(0xE3069283u, Crc32C.Compute(s_check));

    [Fact]
    public void Crc32C_Rfc3720Vectors()
    {
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
        Assert.Equal(0x62A8AB43u, Crc32C.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
        Assert.Equal(0x46DD794Eu, Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
        Assert.Equal(0x113FDB5Cu, Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)(31 - i)).ToArray()));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Crc32C_interleaved_chains_equal_one_serial_chain(int seed)
    {
        // Lengths around the three-lane step (3 × 512) and its multiples, odd tails, large runs.
        var random = new Random(seed);
        var data = new byte[70_000];
        random.NextBytes(data);
        foreach (var length in new[] { 0, 7, 1535, 1536, 1537, 3071, 3072, 4096, 4099, 16384, 65536, 70_000 }
                     .Concat(Enumerable.Range(0, 40).Select(_ => random.Next(data.Length))))
        {
            var init = (uint)random.Next();
            var offset = random.Next(8);
            var span = data.AsSpan(offset, Math.Min(length, data.Length - offset));
            Assert.Equal(Crc32C.UpdateSerial(init, span), Crc32C.UpdateChains(init, span));
            Assert.Equal(Crc32C.UpdateSerial(init, span), Crc32C.Update(init, span));
        }
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(2)]
    public void Crc32C_folding_equals_one_serial_chain(int seed)
    {
        Skip.IfNot(Crc32C.CanFold, "this CPU has no 256-bit carry-less multiply");
        // Every length over the first few accumulator steps (the 16-byte blocks and the byte tail
        // after them), the sizes of a run, and random ones; unaligned starts and any register.
        var random = new Random(seed);
        var data = new byte[70_000];
        random.NextBytes(data);
        foreach (var length in Enumerable.Range(Crc32C.FoldMinimum, 600).Concat([4096, 65536, 69_990])
                     .Concat(Enumerable.Range(0, 40).Select(_ => random.Next(Crc32C.FoldMinimum, data.Length - 8))))
        {
            var init = (uint)random.Next();
            var span = data.AsSpan(random.Next(8), length);
            Assert.Equal(Crc32C.UpdateSerial(init, span), Crc32C.UpdateFolded(init, span));
        }
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(2)]
    public void Crc32C_folding_and_chains_together_equal_one_serial_chain(int seed)
    {
        Skip.IfNot(Crc32C.CanFoldAndChain, "this CPU has no 256-bit carry-less multiply or no 64-bit crc32 instruction");
        // One and several whole blocks, each with every kind of rest after it (none, a byte tail,
        // 16-byte blocks, whole folding steps), the sizes of a run, and random ones; unaligned
        // starts and any register.
        var random = new Random(seed);
        var data = new byte[70_000];
        random.NextBytes(data);
        var block = Crc32C.HybridBlock;
        var rests = new[] { 0, 1, 7, 8, 16, 127, 128, 129, 200, 512, block - 1 };
        foreach (var length in new[] { 1, 2, 3, 16 }.SelectMany(n => rests.Select(r => (n * block) + r))
                     .Concat([65536, 69_990])
                     .Concat(Enumerable.Range(0, 40).Select(_ => random.Next(block, data.Length - 8))))
        {
            var init = (uint)random.Next();
            var span = data.AsSpan(random.Next(8), length);
            Assert.True(Crc32C.UpdateSerial(init, span) == Crc32C.UpdateHybrid(init, span), $"length {length}");
            Assert.Equal(Crc32C.UpdateSerial(init, span), Crc32C.Update(init, span));
        }
    }

    [Fact]
    public void Crc32C_split_tail_equals_one_serial_chain_at_every_length()
    {
        // Every length up to past two three-lane steps: each size of the tail's three shorter lanes, and the bytes after them.
        var random = new Random(4);
        var data = new byte[2 * 3 * 512 + 600];
        random.NextBytes(data);
        for (var length = 0; length <= data.Length - 8; length++)
        {
            var init = (uint)random.Next();
            var span = data.AsSpan(length % 8, length);
            Assert.True(Crc32C.UpdateSerial(init, span) == Crc32C.Update(init, span), $"length {length}");
        }
    }

    [Fact]
    public void Crc32C_EmptyIsZero() => Assert.Equal(0u, Crc32C.Compute([]));

    [Fact]
    public void Crc32C_UpdateInPiecesEqualsOneShot()
    {
        var data = Enumerable.Range(0, 1000).Select(i => (byte)(i * 7)).ToArray();
        // Every split point, including the odd tails the 32/8/1-byte loops handle differently.
        for (var split = 0; split <= 70; split++)
        {
            var crc = Crc32C.Update(0xFFFF_FFFFu, data.AsSpan(0, split));
            crc = Crc32C.Update(crc, data.AsSpan(split));
            Assert.Equal(Crc32C.Compute(data), ~crc);
        }
    }

    [Fact]
    public void Crc32C_MatchesBitwiseReferenceOnEveryLength()
    {
        // Past FoldMinimum too: the folded path against a reference that shares nothing with it.
        var data = Enumerable.Range(0, 300).Select(i => (byte)((i * 131) + 17)).ToArray();
        for (var n = 0; n <= data.Length; n++)
            Assert.Equal(BitwiseCrc32C(data.AsSpan(0, n)), Crc32C.Compute(data.AsSpan(0, n)));
    }

    // The format pins CRC-64/ECMA-182 (docs/format.md): check value 0x6C40DF5F0B497347.
    [Fact]
    public void Crc64_EcmaCheckValue() => Assert.Equal(0x6C40DF5F0B497347UL, Checksums.Compute(ChecksumType.Crc64, s_check));

    [Fact]
    public void Crc64_EmptyIsZero() => Assert.Equal(0UL, Checksums.Compute(ChecksumType.Crc64, []));

    [Theory]
    [InlineData("", 0xEF46DB3751D8E999UL)]
    [InlineData("a", 0xD24EC4F1A98C6E5BUL)]
    [InlineData("abc", 0x44BC2CF5AD770999UL)]
    [InlineData("123456789", 0x8CB841DB40E6AE83UL)]
    [InlineData("The quick brown fox jumps over the lazy dog", 0x0B242D361FDA71BCUL)]
    public void XxHash64_ReferenceValues(string text, ulong expected) =>
        Assert.Equal(expected, Checksums.Compute(ChecksumType.XxHash64, Encoding.ASCII.GetBytes(text)));

    [Fact]
    public void XxHash64_LongInputsAndSeed()
    {
        // 100 bytes: three 32-byte stripes, then 8-byte, 4-byte and 1-byte tails.
        Assert.Equal(0x6AC1E58032166597UL, Checksums.Compute(ChecksumType.XxHash64, Enumerable.Range(0, 100).Select(i => (byte)i).ToArray()));
        var twoTables = Enumerable.Range(0, 512).Select(i => (byte)i).ToArray();
        Assert.Equal(0x1FD317AABF1D776DUL, System.IO.Hashing.XxHash64.HashToUInt64(twoTables, seed: 12345));
        Assert.Equal(0x6B8EBCF6D6F5B807UL, System.IO.Hashing.XxHash64.HashToUInt64(s_check, seed: unchecked((long)0x9E3779B97F4A7C15UL)));
    }

    [Theory]
    [InlineData(ChecksumType.None, 0UL)]
    [InlineData(ChecksumType.Crc32C, 0xE3069283UL)]
    [InlineData(ChecksumType.Crc64, 0x6C40DF5F0B497347UL)]
    [InlineData(ChecksumType.XxHash64, 0x8CB841DB40E6AE83UL)]
    public void Compute_DispatchesByType(ChecksumType type, ulong expected) =>
        Assert.Equal(expected, Checksums.Compute(type, s_check));

    [Fact]
    public void ChecksumType_NumbersArePersisted()
    {
        Assert.Equal(0, (byte)ChecksumType.None);
        Assert.Equal(1, (byte)ChecksumType.Crc32C);
        Assert.Equal(2, (byte)ChecksumType.Crc64);
        Assert.Equal(3, (byte)ChecksumType.XxHash64);
        Assert.False(Checksums.IsKnown(4));
        Assert.Throws<ArgumentOutOfRangeException>(() => Checksums.Compute((ChecksumType)4, s_check));
    }

    [Theory]
    [InlineData(ChecksumType.None)]
    [InlineData(ChecksumType.Crc32C)]
    [InlineData(ChecksumType.Crc64)]
    [InlineData(ChecksumType.XxHash64)]
    public void ChecksumType_TextRoundTrips(ChecksumType type)
    {
        Assert.True(Checksums.TryParse(type.ToText(), out var parsed));
        Assert.Equal(type, parsed);
        Assert.True(Checksums.TryParse(type.ToText().ToUpperInvariant(), out parsed));
        Assert.Equal(type, parsed);
    }

    [Fact]
    public void ChecksumType_UnknownTextIsRejected() => Assert.False(Checksums.TryParse("md5", out _));

    private static uint BitwiseCrc32C(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFF_FFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var bit = 0; bit < 8; bit++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78u : crc >> 1;
        }
        return ~crc;
    }
}
