using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Devices.DeviceTestData;

namespace Basalt.Tests.Devices;

public sealed class FaultyBlockDeviceTests(ITestOutputHelper output)
{
    private static (MemoryBlockDevice Inner, FaultyBlockDevice Faulty) Make(int seed = 1)
    {
        var inner = new MemoryBlockDevice(64 * Sector);
        return (inner, new FaultyBlockDevice(inner, seed));
    }

    [Fact]
    public void NoRules_PassesThrough()
    {
        var (inner, faulty) = Make();
        var data = Pattern(4 * Sector, 1);
        faulty.Write(8 * Sector, data);
        faulty.Flush();
        var back = new byte[data.Length];
        faulty.Read(8 * Sector, back);
        Assert.Equal(data, back);
        Assert.Equal(data, inner.Contents.Slice(8 * Sector, data.Length).ToArray());
        Assert.Equal(0, faulty.Counters.Total);
    }

    [Fact]
    public void ReadErrorsByRange_OnlyOverlappingReadsFail()
    {
        var (_, faulty) = Make();
        var rule = faulty.FailReads(10 * Sector, 2 * Sector);
        var buffer = new byte[Sector];
        faulty.Read(9 * Sector, buffer);
        faulty.Read(12 * Sector, buffer);
        var e = Assert.Throws<BasaltException>(() => faulty.Read(11 * Sector, buffer));
        Assert.Equal(ErrorCode.IoError, e.Code);
        Assert.Contains("offset 5632", e.Message, StringComparison.Ordinal);
        Assert.Throws<BasaltException>(() => faulty.Read(8 * Sector, new byte[3 * Sector])); // straddles the start
        Assert.Equal(2, faulty.Counters.ReadErrors);
        Assert.Equal(2, rule.Hits);
        faulty.Write(10 * Sector, new byte[Sector]); // writes are not affected
    }

    [Fact]
    public void FailedWrite_LeavesTheDeviceUnchanged()
    {
        var (inner, faulty) = Make();
        faulty.FailWrites(0, 0);
        Assert.Throws<BasaltException>(() => faulty.Write(0, Pattern(Sector, 2)));
        Assert.True(inner.Contents[..Sector].IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(1, faulty.Counters.WriteErrors);
    }

    [Fact]
    public void FlushErrors_CanBeDisarmedAndRearmed()
    {
        var (_, faulty) = Make();
        var rule = faulty.FailFlushes();
        Assert.Throws<BasaltException>(faulty.Flush);
        rule.Disarm();
        faulty.Flush();
        rule.Arm();
        Assert.Throws<BasaltException>(faulty.Flush);
        Assert.Equal(2, faulty.Counters.FlushErrors);
    }

    [Fact]
    public void MaxHits_DisarmsTheRule()
    {
        var (_, faulty) = Make();
        var rule = faulty.FailWrites();
        rule.MaxHits = 2;
        Assert.Throws<BasaltException>(() => faulty.Write(0, new byte[Sector]));
        Assert.Throws<BasaltException>(() => faulty.Write(0, new byte[Sector]));
        faulty.Write(0, new byte[Sector]);
        Assert.False(rule.Armed);
        Assert.Equal(2, faulty.Counters.WriteErrors);
    }

    [Fact]
    public void RateRules_AreSeededAndNearTheRate()
    {
        var seed = TestSeed.Get(output);
        int Run()
        {
            var (_, faulty) = Make(seed);
            faulty.FailReads(rate: 0.25);
            var failures = 0;
            var buffer = new byte[Sector];
            for (var i = 0; i < 2000; i++)
            {
                try
                {
                    faulty.Read((i % 64) * Sector, buffer);
                }
                catch (BasaltException)
                {
                    failures++;
                }
            }
            Assert.Equal(failures, faulty.Counters.ReadErrors);
            return failures;
        }
        var first = Run();
        Assert.Equal(first, Run()); // same seed, same faults
        Assert.InRange(first, 400, 600);
    }

    [Fact]
    public void BitFlipOnRead_ChangesTheReturnedDataNotTheDevice()
    {
        var (inner, faulty) = Make();
        var data = Pattern(2 * Sector, 3);
        faulty.Write(0, data);
        faulty.FlipBitOnRead(700, 5);
        var back = new byte[2 * Sector];
        faulty.Read(0, back);
        Assert.Equal(data[700] ^ 0x20, back[700]);
        back[700] = data[700];
        Assert.Equal(data, back);
        Assert.Equal(data, inner.Contents[..(2 * Sector)].ToArray());
        faulty.Read(2 * Sector, new byte[Sector]); // not covering byte 700: no flip
        Assert.Equal(1, faulty.Counters.ReadBitFlips);
    }

    [Fact]
    public void BitFlipOnWrite_StoresTheFlipButLeavesTheCallersBuffer()
    {
        var (inner, faulty) = Make();
        var data = Pattern(Sector, 4);
        var copy = (byte[])data.Clone();
        faulty.FlipBitOnWrite(3 * Sector + 10, 0);
        faulty.Write(3 * Sector, data);
        Assert.Equal(copy, data);
        Assert.Equal(data[10] ^ 1, inner.Contents[(3 * Sector) + 10]);
        Assert.Equal(1, faulty.Counters.WriteBitFlips);
    }

    [Fact]
    public void RandomBitFlips_FlipExactlyOneBitPerHit()
    {
        var seed = TestSeed.Get(output);
        var (inner, faulty) = Make(seed);
        var data = Pattern(8 * Sector, 5);
        faulty.FlipRandomBitsOnWrite(1.0, 2 * Sector, 2 * Sector);
        faulty.Write(0, data);
        var differing = 0;
        for (var i = 0; i < data.Length; i++)
        {
            var diff = data[i] ^ inner.Contents[i];
            if (diff != 0)
            {
                Assert.InRange(i, 2 * Sector, (4 * Sector) - 1); // inside the rule's range
                Assert.Equal(1, System.Numerics.BitOperations.PopCount((uint)diff));
                differing++;
            }
        }
        Assert.Equal(1, differing);
    }

    [Fact]
    public void TornWrite_Fail_StoresThePrefixAndThrows()
    {
        var (inner, faulty) = Make();
        faulty.TearWrites(3, TornWriteOutcome.Fail);
        var data = Pattern(8 * Sector, 6);
        var e = Assert.Throws<BasaltException>(() => faulty.Write(Sector, data));
        Assert.Equal(ErrorCode.IoError, e.Code);
        Assert.Equal(data.AsSpan(0, 3 * Sector).ToArray(), inner.Contents.Slice(Sector, 3 * Sector).ToArray());
        Assert.True(inner.Contents.Slice(4 * Sector, 5 * Sector).IndexOfAnyExcept((byte)0) < 0);
        Assert.False(faulty.IsCrashed);
        faulty.Read(0, new byte[Sector]);
        Assert.Equal(1, faulty.Counters.TornWrites);
    }

    [Fact]
    public void TornWrite_Crash_KillsTheDeviceUntilRevived()
    {
        var (inner, faulty) = Make();
        var rule = faulty.TearWrites(1, TornWriteOutcome.Crash, offset: 16 * Sector, length: Sector);
        faulty.Write(0, Pattern(Sector, 7)); // outside the range
        Assert.Throws<BasaltException>(() => faulty.Write(15 * Sector, Pattern(4 * Sector, 8)));
        Assert.True(faulty.IsCrashed);
        Assert.Equal(Pattern(Sector, 8), inner.Contents.Slice(15 * Sector, Sector).ToArray());
        Assert.True(inner.Contents.Slice(16 * Sector, Sector).IndexOfAnyExcept((byte)0) < 0);
        var e = Assert.Throws<BasaltException>(() => faulty.Read(0, new byte[Sector]));
        Assert.Contains("crashed", e.Message, StringComparison.Ordinal);
        Assert.Throws<BasaltException>(faulty.Flush);
        rule.Disarm();
        faulty.Revive();
        faulty.Read(0, new byte[Sector]);
    }

    [Fact]
    public void ClearRules_StopsAllInjection()
    {
        var (_, faulty) = Make();
        faulty.FailReads();
        faulty.FailWrites();
        faulty.ClearRules();
        faulty.Write(0, new byte[Sector]);
        faulty.Read(0, new byte[Sector]);
    }
}
