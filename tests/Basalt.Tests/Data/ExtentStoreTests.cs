using Basalt.Alloc;
using Basalt.Data;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Data;

public sealed class ExtentStoreTests(ITestOutputHelper output)
{
    internal static readonly FormatOptions Geometry = new()
    {
        BlockSize = 4096,
        BucketSize = 64 * 1024,
        NodeSize = 4096,
        Uuid = new Guid("0b7d2c1e-5f3a-4a66-8e1c-3b9f6a2d7c44"),
    };

    [Fact]
    public void Written_bytes_read_back_across_overwrites_punches_and_remounts()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        var model = new Dictionary<ulong, byte[]>();
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        using (var fs = BasaltFileSystem.Format(device, Geometry))
        {
            for (var op = 0; op < 200; op++)
                Step(fs, model, random);
            Verify(fs, model);
        }
        using (var fs = BasaltFileSystem.Mount(device, new MountOptions()))
        {
            Verify(fs, model);
            for (var op = 0; op < 200; op++)
                Step(fs, model, random);
            Verify(fs, model);
        }
    }

    [Fact]
    public void Reads_of_contiguous_runs_match_at_any_offset_and_a_bad_run_fails_with_zeros_from_it_on()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        var random = new Random(TestSeed.Get(output));
        var data = new byte[1024 * 1024];
        random.NextBytes(data);
        using var fs = BasaltFileSystem.Format(device, Geometry);
        fs.Data.Write(7, 0, data);
        for (var i = 0; i < 200; i++)
        {
            var offset = random.Next(0, data.Length);
            var read = new byte[random.Next(1, 300_000)];
            fs.Data.Read(7, offset, read);
            var inFile = Math.Min(read.Length, data.Length - offset);
            Assert.True(data.AsSpan(offset, inFile).SequenceEqual(read.AsSpan(0, inFile)), $"read of {read.Length} at {offset} differs");
            Assert.True(read.AsSpan(inFile).IndexOfAnyExcept((byte)0) < 0, $"read of {read.Length} at {offset} has bytes past the end");
        }

        var extents = fs.Data.Map(7, 0, (ulong)data.Length / 512).ToList();
        Assert.True(extents.Count >= 4);
        Assert.True(ExtentValue.TryRead(extents[2].Value, out var third, out _));
        var badStart = (long)(extents[2].Key.Pos.Offset - extents[2].Key.Size) * 512;
        device.Contents[(int)third.Ptrs[0].OffsetBytes + 100] ^= 0x55;
        var whole = new byte[data.Length];
        whole.AsSpan().Fill(0xAA);
        var error = Assert.Throws<BasaltException>(() => fs.Data.Read(7, 0, whole));
        Assert.Equal(ErrorCode.IoError, error.Code);
        Assert.Contains($"offset {badStart}", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, fs.Data.ChecksumErrors);
        Assert.True(data.AsSpan(0, (int)badStart).SequenceEqual(whole.AsSpan(0, (int)badStart)));
        Assert.True(whole.AsSpan((int)badStart).IndexOfAnyExcept((byte)0) < 0, "unverified bytes left in the destination");
    }

    private static void Step(BasaltFileSystem fs, Dictionary<ulong, byte[]> model, Random random)
    {
        var inode = (ulong)random.Next(1, 6);
        var file = model.GetValueOrDefault(inode) ?? [];
        var offset = random.Next(0, 300_000);
        var length = random.Next(1, 100_000);
        if (random.Next(4) == 0)
        {
            fs.Data.Punch(inode, offset, length);
            if (offset < file.Length)
                Array.Clear(file, offset, Math.Min(length, file.Length - offset));
        }
        else
        {
            var data = new byte[length];
            random.NextBytes(data);
            try
            {
                fs.Data.Write(inode, offset, data);
            }
            catch (BasaltException)
            {
                foreach (var (t, u) in fs.Space.Usage(0))
                    Console.WriteLine($"{t.ToText()}: {u.ToText()}");
                Console.WriteLine($"discards {fs.Space.Discards} invalidated {fs.Space.Invalidated} moved {fs.Space.CopygcMovedSectors} worker {fs.Space.WorkerError}");
                throw;
            }
            if (offset + length > file.Length)
                Array.Resize(ref file, offset + length);
            data.CopyTo(file, offset);
        }
        model[inode] = file;
    }

    private static void Verify(BasaltFileSystem fs, Dictionary<ulong, byte[]> model)
    {
        foreach (var (inode, file) in model)
        {
            var read = new byte[file.Length + 4096];
            fs.Data.Read(inode, 0, read);
            Assert.True(file.AsSpan().SequenceEqual(read.AsSpan(0, file.Length)), $"inode {inode} differs");
            Assert.True(read.AsSpan(file.Length).IndexOfAnyExcept((byte)0) < 0, $"inode {inode} has bytes past its end");
        }
        // The allocation info the triggers kept is what the space passes recompute from scratch.
        Basalt.Fsck.Space.SpaceChecks.Run(fs, repair: false, out var findings);
        Assert.True(findings.Count == 0, string.Join("; ", findings.Select(f => f.ToText())));
    }
}
