using Basalt.Alloc;
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
    }
}
