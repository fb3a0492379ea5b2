using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Superblocks.SuperblockTestKit;

namespace Basalt.Tests.Superblocks;

public sealed class SuperblockFuzzTests(ITestOutputHelper output)
{
    private static readonly ErrorCode[] s_documented =
    [
        ErrorCode.NotBasalt, ErrorCode.SuperblockCorrupt, ErrorCode.UnsupportedVersion, ErrorCode.UnsupportedFeature,
    ];

    /// <summary>
    /// Random damage to random copies, resealed or not: Read either succeeds with a sane report
    /// or throws one of the documented BasaltException codes, and never anything else.
    /// </summary>
    [Fact]
    public void Random_damage_only_ever_produces_documented_results()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        var (pristine, sb) = FormatSmall(2L * 1024 * 1024);
        // Roots, counters and an unknown section give the parser more to chew on.
        sb = SuperblockIo.Write(pristine, sb
            .WithRoot(BtreeId.Alloc, SampleRoot(BtreeId.Alloc, 1, (ulong)(sb.NodeAreaOffset / 512)))
            .WithErrorCounted(FsckErrorId.SbCopyStale, FormatTime)
            with { UnknownSections = [new UnknownSection(99, new byte[24])] }, FormatTime); // fixed time: the seed replays exactly
        var image = pristine.Contents.ToArray();
        var encodedSize = SuperblockCodec.EncodedSize(sb);
        var iterations = LongTests.Scale(1000);
        var outcomes = new Dictionary<string, int>();

        for (var iter = 0; iter < iterations; iter++)
        {
            using var device = new MemoryBlockDevice(image, "fuzz.img");
            var copies = random.Next(1, 8); // bitmask of damaged copies
            for (var c = 0; c < 3; c++)
            {
                if ((copies & (1 << c)) == 0)
                    continue;
                var offset = sb.CopyOffsets[c];
                var span = Copy(device, offset);
                var edits = random.Next(1, 6);
                for (var e = 0; e < edits; e++)
                {
                    // Mostly inside the encoded superblock, sometimes anywhere in the copy area.
                    var at = random.Next(4) == 0 ? random.Next(span.Length) : random.Next(encodedSize);
                    switch (random.Next(3))
                    {
                        case 0: span[at] ^= (byte)(1 << random.Next(8)); break;
                        case 1: span[at] = (byte)random.Next(256); break;
                        default: span[at..Math.Min(span.Length, at + random.Next(1, 64))].Fill((byte)random.Next(256)); break;
                    }
                }
                if (random.Next(2) == 0)
                    Reseal(device, offset);
            }

            string outcome;
            try
            {
                var result = SuperblockIo.Read(device);
                Assert.Equal(CopyStatus.Good, result.Copies[result.UsedCopy].Status);
                Assert.Null(SuperblockCodec.Validate(result.Superblock));
                Assert.NotEqual(Guid.Empty, result.Superblock.Uuid);
                _ = result.Superblock.ToText();
                _ = result.ToText();
                outcome = "read copy " + result.UsedCopy;
            }
            catch (BasaltException ex) when (Array.IndexOf(s_documented, ex.Code) >= 0)
            {
                outcome = ex.Code.ToString();
            }
            catch (Exception ex)
            {
                Assert.Fail($"seed {seed} iteration {iter}: undocumented {ex.GetType().Name}: {ex.Message}\n{ex.StackTrace}");
                throw;
            }
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }
        foreach (var (k, v) in outcomes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            output.WriteLine($"{k}: {v}");
        Assert.True(outcomes.Count >= 2, "the damage never changed the outcome: the test is not exercising anything");
    }

    [Fact]
    public void Random_whole_copy_contents_with_valid_magic_never_crash()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        for (var iter = 0; iter < LongTests.Scale(300); iter++)
        {
            var copy = new byte[SuperblockFormat.CopySize];
            random.NextBytes(copy);
            SuperblockFormat.Magic.CopyTo(copy.AsSpan(SuperblockFormat.MagicOffset));
            copy[SuperblockFormat.ChecksumTypeOffset] = 1;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(SuperblockFormat.TotalBytesOffset), (uint)(random.Next(32, 8192) * 8));
            var total = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(copy.AsSpan(SuperblockFormat.TotalBytesOffset));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(copy, Checksums.Compute(ChecksumType.Crc32C, copy.AsSpan(8, total - 8)));
            var decoded = SuperblockCodec.Decode(copy, SuperblockFormat.FirstCopyOffset);
            Assert.NotEqual(CopyStatus.Good, decoded.Status);
            Assert.False(string.IsNullOrEmpty(decoded.Detail));
        }
    }
}
