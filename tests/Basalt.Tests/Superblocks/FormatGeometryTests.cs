using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Superblocks;
using static Basalt.Tests.Superblocks.SuperblockTestKit;

namespace Basalt.Tests.Superblocks;

public sealed class FormatGeometryTests
{
    private const long MiB = 1024 * 1024;
    private const long GiB = 1024 * MiB;

    [Theory]
    [InlineData(16 * MiB, 128 * 1024)]
    [InlineData(2 * GiB, 128 * 1024)]
    [InlineData(4 * GiB, 256 * 1024)]
    [InlineData(8 * GiB, 512 * 1024)]
    [InlineData(32 * GiB, 2 * 1024 * 1024)]
    [InlineData(4096 * GiB, 2 * 1024 * 1024)]
    public void Default_bucket_size_follows_device_size(long deviceSize, int expected) =>
        Assert.Equal(expected, SuperblockGeometry.DefaultBucketSize(deviceSize));

    [Fact]
    public void Preallocate_leaves_no_hole_in_an_image_file_and_clears_discard()
    {
        using var dir = new Basalt.TestKit.TempDirectory("prealloc");
        foreach (var preallocate in new[] { false, true })
        {
            var path = dir.File($"{preallocate}.img");
            using var device = FileBlockDevice.Create(path, 32 * MiB);
            var sb = SuperblockIo.Format(device, new FormatOptions { Preallocate = preallocate });
            Assert.Equal(!preallocate, sb.Members[0].Flags.HasFlag(MemberFlags.Discard));
            // A sparse image holds little more than its journal; a preallocated one every byte.
            if (preallocate)
                Assert.True(device.AllocatedBytes >= 32 * MiB, $"{device.AllocatedBytes} bytes allocated");
            else
                Assert.True(device.AllocatedBytes < 16 * MiB, $"{device.AllocatedBytes} bytes allocated");
            Assert.True(SuperblockIo.Read(device).Superblock is not null);
        }
    }

    [Fact]
    public void Defaults_on_a_64_MiB_device()
    {
        var g = SuperblockGeometry.Compute("d", 64 * MiB, new FormatOptions());
        Assert.Equal(4096, g.BlockSize);
        Assert.Equal(128 * 1024, g.BucketSize);
        Assert.Equal(128 * 1024, g.NodeSize); // min(256 KiB, bucket)
        Assert.Equal(2u, g.FirstBucket);      // 135168 bytes of start area → bucket 2
        Assert.Equal((ulong)((64 * MiB - 65536) / (128 * 1024)), g.Nbuckets);
        Assert.Equal(new BucketRange(2, 8), g.Journal); // 512 buckets / 128 = 4 → at least 8
        Assert.Equal(g.Journal.End, g.NodeArea.Start);
        Assert.Equal((g.Nbuckets - g.Journal.End) / 4, g.NodeArea.Count); // more than 16 buckets or 64 slots of 128 KiB
    }

    [Fact]
    public void Large_device_journal_is_a_128th_capped_at_512_MiB()
    {
        var g = SuperblockGeometry.Compute("d", 16 * GiB, new FormatOptions());
        Assert.Equal(1024 * 1024, g.BucketSize);
        Assert.Equal(16UL * 1024 / 128, g.Journal.Count); // 16384 buckets / 128
        Assert.Equal(256 * 1024, g.NodeSize);

        var huge = SuperblockGeometry.Compute("d", 1024 * GiB, new FormatOptions());
        Assert.Equal(512 * MiB, (long)huge.Journal.Count * huge.BucketSize);
    }

    [Theory]
    [InlineData(4096)]
    [InlineData(16 * 1024)]
    [InlineData(128 * 1024)]
    [InlineData(2 * 1024 * 1024)]
    public void No_allocatable_bucket_overlaps_a_superblock_copy(int bucketSize)
    {
        var minimum = SuperblockGeometry.MinimumDeviceSize(bucketSize);
        foreach (var size in new[] { minimum, minimum + 512, (2 * minimum) + 12288, (3 * GiB) + 512 })
        {
            var g = SuperblockGeometry.Compute("d", size, new FormatOptions { BucketSize = bucketSize, NodeSize = Math.Min(bucketSize, 4096), BlockSize = 512 });
            var first = (long)g.FirstBucket * bucketSize;
            var end = (long)g.Nbuckets * bucketSize;
            Assert.True(end <= size);
            foreach (var o in g.CopyOffsets)
                Assert.True(o + SuperblockFormat.CopySize <= first || o >= end, $"copy at {o} overlaps buckets [{first}, {end}) on a {size}-byte device");
            Assert.Equal(3, g.CopyOffsets.Count);
            Assert.True(g.Nbuckets - g.Journal.End >= 64);
            Assert.True(g.NodeArea.Count >= 16);
            Assert.True(g.NodeArea.End <= g.Nbuckets);
        }
    }

    [Fact]
    public void Device_below_the_minimum_is_refused_with_the_minimum()
    {
        var bucket = 128 * 1024;
        var minimum = SuperblockGeometry.MinimumDeviceSize(bucket);
        // 2 sb buckets + 8 journal + 64 usable = 74 buckets, then the 64 KiB end copy.
        Assert.Equal(74L * bucket + 65536, minimum);
        using var device = new MemoryBlockDevice(minimum - 65536, "small.img");
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Format(device, new FormatOptions { BucketSize = bucket }));
        Assert.Equal(ErrorCode.DeviceTooSmall, ex.Code);
        Assert.Equal($"small.img: device is {minimum - 65536} bytes; Basalt needs at least {minimum} bytes with bucket size {bucket}", ex.Message);

        using var exact = new MemoryBlockDevice(minimum, "exact.img");
        var sb = SuperblockIo.Format(exact, new FormatOptions { BucketSize = bucket });
        Assert.Equal(64UL + 8, sb.Member.Nbuckets - sb.Member.FirstBucket);
        Assert.Equal(sb.Uuid, SuperblockIo.Read(exact).Superblock.Uuid);
    }

    public static TheoryData<FormatOptions, string> BadOptions() => new()
    {
        { new FormatOptions { BlockSize = 3000 }, "block size 3000 is not a power of two between 512 and 65536" },
        { new FormatOptions { BlockSize = 256 }, "block size 256 is not a power of two" },
        { new FormatOptions { BucketSize = 100_000 }, "bucket size 100000 is not a power of two" },
        { new FormatOptions { BucketSize = 32 * 1024 * 1024 }, "bucket size 33554432 is not a power of two" },
        { new FormatOptions { NodeSize = 5000 }, "btree node size 5000 is not a power of two" },
        { new FormatOptions { BucketSize = 64 * 1024, NodeSize = 128 * 1024 }, "btree node size 131072 is larger than the bucket size 65536" },
        { new FormatOptions { BlockSize = 8192, NodeSize = 4096 }, "btree node size 4096 is smaller than the block size 8192" },
        { new FormatOptions { MetadataChecksumType = ChecksumType.None }, "metadata checksum type none is not allowed" },
        { new FormatOptions { Label = new string('x', 33) }, "is longer than 32 bytes" },
        { new FormatOptions { Uuid = Guid.Empty }, "uuid must not be zero" },
        { new FormatOptions { NodeAreaBuckets = 100_000 }, "node area of 100000 buckets does not fit" },
        { new FormatOptions { JournalBuckets = 0 }, "journal of 0 buckets" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Bad_options_are_refused_with_a_clear_message(FormatOptions options, string message)
    {
        using var device = new MemoryBlockDevice(64 * MiB, "opt.img");
        var ex = Assert.Throws<BasaltException>(() => SuperblockIo.Format(device, options));
        Assert.Equal(ErrorCode.InvalidArgument, ex.Code);
        Assert.StartsWith("opt.img: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Format_zeroes_the_first_4_KiB_and_the_copy_areas_and_discards_the_rest()
    {
        var device = new MemoryBlockDevice(SmallDeviceSize, "dirty.img");
        device.Contents.Fill(0xAB);
        var sb = SuperblockIo.Format(device, SmallOptions);
        Assert.False(device.Contents[..4096].ContainsAnyExcept((byte)0));
        foreach (var o in sb.CopyOffsets)
        {
            var copy = Copy(device, o);
            var used = SuperblockCodec.EncodedSize(sb);
            Assert.False(copy[((used + 511) / 512 * 512)..].ContainsAnyExcept((byte)0), $"copy area at {o} has leftover bytes");
        }
        // Memory devices zero on discard: the space between copies and after the last is clean.
        Assert.False(device.Contents[(int)SuperblockFormat.StartAreaEnd..(int)sb.CopyOffsets[2]].ContainsAnyExcept((byte)0));
    }

    [Fact]
    public void Explicit_geometry_is_honoured()
    {
        var (_, sb) = FormatSmall(options: SmallOptions with
        {
            JournalBuckets = 20,
            NodeAreaBuckets = 30,
            MetadataChecksumType = ChecksumType.Crc64,
            UserUuid = Guid.Parse("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
        });
        Assert.Equal(new BucketRange(9, 20), sb.JournalBuckets[0]);
        Assert.Equal(new BucketRange(29, 30), sb.NodeArea);
        Assert.Equal(ChecksumType.Crc64, sb.MetadataChecksumType);
        Assert.Equal(Guid.Parse("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"), sb.UserUuid);
        Assert.Equal(29L * 16384, sb.NodeAreaOffset);
        Assert.Equal(30L * 16384, sb.NodeAreaLength);
    }

    [Fact]
    public void Format_of_a_read_only_device_is_refused()
    {
        using var device = new ReadOnlyDevice(new MemoryBlockDevice(SmallDeviceSize));
        Assert.Equal(ErrorCode.ReadOnlyDevice, Assert.Throws<BasaltException>(() => SuperblockIo.Format(device, SmallOptions)).Code);
    }

    [Fact]
    public void Copy_offsets_for_device_sizes()
    {
        Assert.Equal(new long[] { 4096, 69632, 1048576 - 65536 }, SuperblockIo.CopyOffsets(1048576));
        // Not 64 KiB aligned: the end copy goes to the last aligned slot that fits.
        Assert.Equal(new long[] { 4096, 69632, 1048576 - 65536 }, SuperblockIo.CopyOffsets(1048576 + 60000 / 512 * 512));
        Assert.Equal(new long[] { 4096 }, SuperblockIo.CopyOffsets(69632));
    }

    private sealed class ReadOnlyDevice(IBlockDevice inner) : IBlockDevice
    {
        public string Name => inner.Name;
        public long Size => inner.Size;
        public bool IsReadOnly => true;
        public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);
        public void Write(long offset, ReadOnlySpan<byte> data) => throw new InvalidOperationException("write to a read-only device");
        public void Flush() => inner.Flush();
        public void Discard(long offset, long length) => throw new InvalidOperationException("discard on a read-only device");
        public void Dispose() => inner.Dispose();
    }
}
