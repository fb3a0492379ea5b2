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

    [Fact]
    public void Reads_inside_one_extent_return_the_window_zeros_for_holes_allocate_nothing_and_fail_whole_on_a_bad_run()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        var random = new Random(TestSeed.Get(output));
        using var fs = BasaltFileSystem.Format(device, Geometry);
        // 64 KiB runs, a 4 KiB extent, a hole, an overwrite that trims two runs into windows.
        var file = new byte[512 * 1024];
        random.NextBytes(file.AsSpan(0, 256 * 1024));
        fs.Data.Write(9, 0, file.AsSpan(0, 256 * 1024));
        random.NextBytes(file.AsSpan(300 * 1024, 4096));
        fs.Data.Write(9, 300 * 1024, file.AsSpan(300 * 1024, 4096));
        random.NextBytes(file.AsSpan(100 * 1024, 40 * 1024));
        fs.Data.Write(9, 100 * 1024, file.AsSpan(100 * 1024, 40 * 1024));
        var read = new byte[64 * 1024];
        for (var i = 0; i < 2000; i++)
        {
            var length = random.Next(3) switch { 0 => 4096, 1 => random.Next(1, 5000), _ => random.Next(1, read.Length + 1) };
            var offset = random.Next(2) == 0 ? Math.Min(random.Next(0, 128) * 4096L, file.Length - length) : random.Next(0, file.Length - length);
            var destination = read.AsSpan(0, length);
            destination.Fill(0xAA);
            fs.Data.Read(9, offset, destination);
            Assert.True(file.AsSpan((int)offset, length).SequenceEqual(destination), $"read of {length} at {offset} differs");
        }

        // Reads inside one extent (whole runs, part of a run, a window) and inside the hole allocate nothing.
        var offsets = new long[] { 0, 64 * 1024, 4096, 70 * 1024 + 17, 150 * 1024, 300 * 1024, 400 * 1024 };
        foreach (var offset in offsets)
            fs.Data.Read(9, offset, read.AsSpan(0, 4096));
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
            fs.Data.Read(9, offsets[i % offsets.Length], read.AsSpan(0, 4096));
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        // A damaged 64 KiB run: every read touching it fails whole, naming the inode and its offset,
        // and leaves zeros; reads of other runs are unaffected.
        Assert.True(ExtentValue.TryRead(fs.Data.Map(9, 128, 129).Single().Value, out var second, out _));
        device.Contents[(int)second.Ptrs[0].OffsetBytes + 60_000] ^= 0x20;
        foreach (var (offset, length) in new (long, int)[] { (64 * 1024, 64 * 1024), (64 * 1024, 4096), (65 * 1024 + 3, 100), (96 * 1024, 4096) })
        {
            var destination = read.AsSpan(0, length);
            destination.Fill(0xAA);
            var errors = fs.Data.ChecksumErrors;
            var error = Assert.Throws<BasaltException>(() => fs.Data.Read(9, offset, read.AsSpan(0, length)));
            Assert.Equal(ErrorCode.IoError, error.Code);
            Assert.Contains($"inode 9 offset {offset}", error.Message, StringComparison.Ordinal);
            Assert.Contains("checksum mismatch", error.Message, StringComparison.Ordinal);
            Assert.Equal(errors + 1, fs.Data.ChecksumErrors);
            Assert.True(destination.IndexOfAnyExcept((byte)0) < 0, $"read of {length} at {offset} left unverified bytes");
        }
        fs.Data.Read(9, 0, read.AsSpan(0, 4096));
        Assert.True(file.AsSpan(0, 4096).SequenceEqual(read.AsSpan(0, 4096)));
    }

    [Fact]
    public void A_sequential_write_goes_down_in_one_device_write_per_bucket_and_hands_each_filled_bucket_to_write_back()
    {
        const int Bucket = 256 * 1024;
        using var memory = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        var device = new WritebackRecordingDevice(memory);
        var data = new byte[2 * 1024 * 1024];
        new Random(TestSeed.Get(output)).NextBytes(data);
        using var fs = BasaltFileSystem.Format(device, Geometry with { BucketSize = Bucket, NodeSize = 4096 });
        lock (device.Writes)
            device.Writes.Clear();
        fs.Data.Write(9, 0, data);
        List<(long Offset, long Length)> writes;
        lock (device.Writes)
            writes = [.. device.Writes];

        var read = new byte[data.Length];
        fs.Data.Read(9, 0, read);
        Assert.True(data.AsSpan().SequenceEqual(read));
        var buckets = new SortedSet<long>();
        foreach (var (_, value) in fs.Data.Map(9, 0, (ulong)data.Length / 512))
        {
            Assert.True(ExtentValue.TryRead(value, out var extent, out _));
            Assert.True(extent.CoveredSectors <= ExtentValue.MaxCoveredSectors);
            buckets.Add(extent.Ptrs[0].OffsetBytes / Bucket);
        }
        // Four 64 KiB runs per bucket, written together: one device write per bucket the data touches.
        var dataWrites = writes.Where(w => buckets.Contains(w.Offset / Bucket)).ToList();
        Assert.Equal(buckets.Count, dataWrites.Count);
        Assert.All(dataWrites, w => Assert.Equal(w.Offset / Bucket, (w.Offset + w.Length - 1) / Bucket));
        // Every bucket the write filled (all but possibly the last) was handed to write-back whole.
        Assert.True(device.Writebacks.Count >= buckets.Count - 1, $"{device.Writebacks.Count} write-backs for {buckets.Count} buckets");
        Assert.All(device.Writebacks, w =>
        {
            Assert.Equal(0, w.Offset % Bucket);
            Assert.Equal(Bucket, w.Length);
        });
    }

    /// <summary>Records the writes and the write-back hints that reach a device.</summary>
    private sealed class WritebackRecordingDevice(IBlockDevice inner) : IBlockDevice
    {
        public List<(long Offset, long Length)> Writes { get; } = [];

        public List<(long Offset, long Length)> Writebacks { get; } = [];

        public string Name => inner.Name;

        public long Size => inner.Size;

        public bool IsReadOnly => inner.IsReadOnly;

        public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            lock (Writes)
                Writes.Add((offset, data.Length));
            inner.Write(offset, data);
        }

        public void Flush() => inner.Flush();

        public void Discard(long offset, long length) => inner.Discard(offset, length);

        public void StartWriteback(long offset, long length)
        {
            lock (Writebacks)
                Writebacks.Add((offset, length));
        }

        public void Dispose()
        {
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
        // The allocation info the triggers kept is what the space passes recompute from scratch.
        Basalt.Fsck.Space.SpaceChecks.Run(fs, repair: false, out var findings);
        Assert.True(findings.Count == 0, string.Join("; ", findings.Select(f => f.ToText())));
    }
}
