using Basalt.Devices;
using Basalt.Format;
using Basalt.Superblocks;
using Basalt.TestKit;
using static Basalt.Tests.Superblocks.SuperblockTestKit;

namespace Basalt.Tests.Superblocks;

/// <summary>
/// A crash at any point of a superblock write (optionally tearing the write in progress)
/// leaves a device that reads back as the old or the new superblock, never neither.
/// </summary>
public sealed class SuperblockCrashTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Crash_at_every_point_of_a_write_leaves_old_or_new(bool tearLastWrite)
    {
        var (pristine, sb) = FormatSmall();
        var image = pristine.Contents.ToArray();
        for (var crashAfter = 0; crashAfter <= 3; crashAfter++)
        {
            var inner = new MemoryBlockDevice(image, "crash.img");
            var device = new CrashingDevice(inner, crashAfter, tearLastWrite);
            try
            {
                // The new superblock differs in its sections too, so a torn copy cannot pass as either.
                SuperblockIo.Write(device, sb.WithErrorCounted(FsckErrorId.SbCopyStale, FormatTime) with { Label = "new" });
            }
            catch (SimulatedCrash)
            {
            }
            var result = SuperblockIo.Read(inner);
            var expectNew = crashAfter > 0;
            Assert.Equal(expectNew ? "new" : "test", result.Superblock.Label);
            Assert.Equal(expectNew ? 2UL : 1UL, result.Superblock.Seq);
            var damaged = result.Copies.Count(c => c.Status is CopyStatus.BadChecksum or CopyStatus.BadMagic or CopyStatus.Invalid);
            Assert.True(damaged <= 1, $"crash after {crashAfter} writes damaged {damaged} copies:\n{result.ToText()}");
            if (tearLastWrite && crashAfter < 3)
                Assert.Equal(CopyStatus.BadChecksum, result.Copies[crashAfter].Status);
        }
    }

    /// <summary>Every crash state of a recorded write (the Devices crash-state model, DESIGN §5).</summary>
    [Fact]
    public void Every_crash_state_of_a_superblock_write_reads_as_old_or_new()
    {
        var (inner, sb) = FormatSmall();
        var baseImage = DevicesTestKit.Capture(inner);
        using var recording = new RecordingBlockDevice(inner);
        // Roots and counters make the new superblock span two sectors, so torn states exist.
        var next = sb
            .WithRoot(BtreeId.Inodes, SampleRoot(BtreeId.Inodes, 0, (ulong)(sb.NodeAreaOffset / 512)))
            .WithErrorCounted(FsckErrorId.BsetEmpty, FormatTime)
            .WithErrorCounted(FsckErrorId.SbCopyStale, FormatTime)
            with { Label = "new", UnknownSections = [new UnknownSection(50, new byte[200])] };
        SuperblockIo.Write(recording, next, FormatTime);
        Assert.Equal(3, recording.Log.Count);

        var states = DevicesTestKit.ForEachCrashState(baseImage, recording.Log, new CrashStateOptions { Seed = 7 }, (state, device) =>
        {
            var result = SuperblockIo.Read(device);
            var seq = result.Superblock.Seq;
            Assert.True(seq is 1 or 2, $"seq {seq}");
            Assert.Equal(seq == 2 ? "new" : "test", result.Superblock.Label);
            if (state.DurableCount >= 1)
                Assert.Equal(2UL, seq); // copy 0's write was flushed: the new superblock must win
            var damaged = result.Copies.Count(c => c.Status is CopyStatus.BadChecksum or CopyStatus.BadMagic or CopyStatus.Invalid);
            Assert.True(damaged <= 1, result.ToText());
        });
        Assert.True(states >= 6, $"only {states} crash states");
    }

    private sealed class SimulatedCrash : Exception;

    /// <summary>Lets <c>allowed</c> writes through, then tears or drops the next and crashes.</summary>
    private sealed class CrashingDevice(MemoryBlockDevice inner, int allowed, bool tear) : IBlockDevice
    {
        private int _writes;
        public string Name => inner.Name;
        public long Size => inner.Size;
        public bool IsReadOnly => false;
        public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            if (_writes++ < allowed)
            {
                inner.Write(offset, data);
                return;
            }
            if (tear)
            {
                // Byte-granular tear (harsher than real sector-atomic devices): new first half, old second half.
                var mixed = new byte[data.Length];
                inner.Read(offset, mixed);
                data[..(data.Length / 2)].CopyTo(mixed);
                inner.Write(offset, mixed);
            }
            throw new SimulatedCrash();
        }

        public void Flush() => inner.Flush();
        public void Discard(long offset, long length) => inner.Discard(offset, length);
        public void Dispose() => inner.Dispose();
    }
}
