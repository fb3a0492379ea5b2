using Basalt.Data;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;

namespace Basalt.Tests.Fs;

public sealed class ReflinkTests
{
    private const ulong Root = FsPositions.RootIno;

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static byte[] ReadAll(Files f, ulong ino)
    {
        var size = (int)f.GetAttr(ino).Size;
        var buffer = new byte[size];
        Assert.Equal(size, f.Read(ino, 0, buffer));
        return buffer;
    }

    /// <summary>Every indirect extent: (start, end, refcount).</summary>
    internal static List<(ulong Start, ulong End, ulong Refcount)> Indirect(BasaltFileSystem fs)
    {
        var list = new List<(ulong, ulong, ulong)>();
        var it = fs.Btrees[BtreeId.Reflink].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
            list.Add((it.Key.Pos.Offset - it.Key.Size, it.Key.Pos.Offset, ReflinkIndirect.Refcount(it.Value)));
        return list;
    }

    /// <summary>Sectors charged to buckets (the alloc keys' dirty sectors).</summary>
    internal static long DirtySectors(BasaltFileSystem fs)
    {
        long sum = 0;
        var it = fs.Btrees[BtreeId.Alloc].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            if (Basalt.Alloc.AllocValue.TryRead(it.Value, out var a, out _))
                sum += a.DirtySectors;
        }
        return sum;
    }

    /// <summary>The refcount each indirect extent must have: the reflink pointers whose padded range overlaps it.</summary>
    internal static void AssertRefcountsExact(BasaltFileSystem fs)
    {
        var padded = new List<(ulong Start, ulong End)>();
        var it = fs.Btrees[BtreeId.Extents].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            if (it.Key.Type == KeyType.ReflinkP && ReflinkPointer.TryRead(it.Value, out var p, out _))
                padded.Add(p.Padded(it.Key.Size));
        }
        foreach (var (start, end, refcount) in Indirect(fs))
        {
            var counted = (ulong)padded.Count(r => r.Start < end && start < r.End);
            Assert.True(counted > 0, $"indirect extent {start}..{end} is referenced by no pointer (refcount {refcount})");
            Assert.Equal(counted, refcount);
        }
    }

    [Fact]
    public void A_clone_shares_the_data_allocates_nothing_and_each_copy_changes_on_its_own()
    {
        using var device = new MemoryBlockDevice(64 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, FilesTests.Geometry);
        var f = fs.Files;
        var data = Pattern(1_000_000, 1); // 1,000,000 bytes: not a multiple of 512
        var src = f.Create(Root, FilesTests.B("src"), 0x1A4).Ino;
        f.Write(src, 0, data);
        var srcSectors = f.GetAttr(src).Inode.Sectors;
        var available = fs.Space.AvailableSectors();
        var dst = f.Create(Root, FilesTests.B("dst"), 0x1A4).Ino;
        f.CloneFile(src, dst);

        Assert.Equal(available, fs.Space.AvailableSectors());
        Assert.Equal((long)srcSectors, DirtySectors(fs));
        Assert.Equal(data, ReadAll(f, dst));
        Assert.Equal(data, ReadAll(f, src));
        Assert.Equal((ulong)data.Length, f.GetAttr(dst).Size);
        Assert.Equal(srcSectors, f.GetAttr(dst).Inode.Sectors);
        Assert.Equal(srcSectors, f.GetAttr(src).Inode.Sectors);
        Assert.All(Indirect(fs), v => Assert.Equal(2UL, v.Refcount));
        AssertRefcountsExact(fs);

        // Writes to either copy are copy-on-write: the other keeps its bytes.
        var patch = Pattern(10_000, 2);
        f.Write(dst, 300_000, patch);
        f.Write(src, 5, patch);
        var expectDst = (byte[])data.Clone();
        patch.CopyTo(expectDst, 300_000);
        var expectSrc = (byte[])data.Clone();
        patch.CopyTo(expectSrc, 5);
        Assert.Equal(expectDst, ReadAll(f, dst));
        Assert.Equal(expectSrc, ReadAll(f, src));
        AssertRefcountsExact(fs);

        // Deleting the source leaves the clone whole; deleting the clone too frees every indirect extent.
        f.Unlink(Root, FilesTests.B("src"));
        Assert.Equal(expectDst, ReadAll(f, dst));
        AssertRefcountsExact(fs);
        f.Unlink(Root, FilesTests.B("dst"));
        Assert.Empty(Indirect(fs));
        Assert.Equal(0L, DirtySectors(fs)); // every bucket's data was released
    }

    [Fact]
    public void A_range_clone_replaces_the_destination_range_and_grows_the_file()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, FilesTests.Geometry);
        var f = fs.Files;
        var a = f.Create(Root, FilesTests.B("a"), 0x1A4).Ino;
        var b = f.Create(Root, FilesTests.B("b"), 0x1A4).Ino;
        var dataA = Pattern(256 * 1024, 3);
        var dataB = Pattern(100 * 1024, 4);
        f.Write(a, 0, dataA);
        f.Write(b, 0, dataB);
        f.Fallocate(a, FallocateFlags.PunchHole | FallocateFlags.KeepSize, 64 * 1024, 32 * 1024);
        Array.Clear(dataA, 64 * 1024, 32 * 1024);

        f.Reflink(a, 32 * 1024, b, 50 * 1024, 96 * 1024);          // over b's tail and past its end, a hole inside
        var expect = new byte[146 * 1024];
        dataB.CopyTo(expect, 0);
        Array.Copy(dataA, 32 * 1024, expect, 50 * 1024, 96 * 1024);
        Assert.Equal(expect, ReadAll(f, b));
        Assert.Equal(dataA, ReadAll(f, a));
        AssertRefcountsExact(fs);

        // Clone of a range that is already shared, within one file.
        f.Reflink(b, 50 * 1024, b, 200 * 1024, 20 * 1024);
        Array.Resize(ref expect, 220 * 1024);
        Array.Copy(expect, 50 * 1024, expect, 200 * 1024, 20 * 1024);
        Assert.Equal(expect, ReadAll(f, b));
        AssertRefcountsExact(fs);

        // Truncating and punching drop references; the data of a and b stays right.
        f.Truncate(b, 60 * 1024);
        f.Fallocate(a, FallocateFlags.PunchHole | FallocateFlags.KeepSize, 0, 48 * 1024);
        Array.Clear(dataA, 0, 48 * 1024);
        Assert.Equal(expect.AsSpan(0, 60 * 1024).ToArray(), ReadAll(f, b));
        Assert.Equal(dataA, ReadAll(f, a));
        AssertRefcountsExact(fs);
    }

    [Fact]
    public void Bad_ranges_are_refused_with_errno()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, FilesTests.Geometry);
        var f = fs.Files;
        var a = f.Create(Root, FilesTests.B("a"), 0x1A4).Ino;
        var dir = f.Mkdir(Root, FilesTests.B("d"), 0x1ED).Ino;
        f.Write(a, 0, Pattern(10_000, 5));
        int ErrnoOf(Action action) => Errno.Of(Assert.Throws<BasaltException>(action).Code);
        Assert.Equal(Errno.EINVAL, ErrnoOf(() => f.Reflink(a, 100, a, 8192, 512)));       // unaligned offset
        Assert.Equal(Errno.EINVAL, ErrnoOf(() => f.Reflink(a, 0, a, 512, 1024)));         // overlapping ranges of one file
        Assert.Equal(Errno.EINVAL, ErrnoOf(() => f.Reflink(a, 0, a, 20480, 700)));        // unaligned length not at the end
        Assert.Equal(Errno.EINVAL, ErrnoOf(() => f.Reflink(a, 8192, a, 20480, 4096)));    // past the end of the source
        Assert.Equal(Errno.EISDIR, ErrnoOf(() => f.Reflink(a, 0, dir, 0, 0)));
        Assert.Equal(Errno.EINVAL, ErrnoOf(() => f.CloneFile(a, a)));
        f.Reflink(a, 9728, a, 20480, 272);                                               // the tail at the end of file
        Assert.Equal(20480UL + 272, f.GetAttr(a).Size);
        AssertRefcountsExact(fs);
    }

    [Fact]
    public void A_reflink_of_many_batches_is_finished_at_mount_after_a_crash()
    {
        using var device = new MemoryBlockDevice(64 * 1024 * 1024, "mem.img");
        var data = Pattern(8 * 1024 * 1024, 6);
        ulong src, dst;
        ReflinkIntent intent;
        using (var fs = BasaltFileSystem.Format(device, FilesTests.Geometry))
        {
            var f = fs.Files;
            src = f.Create(Root, FilesTests.B("src"), 0x1A4).Ino;
            dst = f.Create(Root, FilesTests.B("dst"), 0x1A4).Ino;
            f.Write(src, 0, data);
            // What the first batch of a long reflink leaves: the intent with some progress, the
            // destination's first part shared. Later batches never ran (a crash).
            intent = new ReflinkIntent(src, 0, 0, (ulong)data.Length / 512, 0, (ulong)data.Length);
            f.Reflink(src, 0, dst, 0, 1024 * 1024);
            fs.Transact(t => t.Set(BtreeId.LoggedOps, new Bkey(FsPositions.Reflink(dst), KeyType.LoggedOpReflink),
                (intent with { Done = 2048 }).ToBytes()), Basalt.Transactions.CommitOptions.Durable);
            fs.Close(sync: false);
        }
        using (var fs = BasaltFileSystem.Mount(device, new MountOptions()))
        {
            Assert.Equal(data, ReadAll(fs.Files, dst));
            Assert.False(fs.Btrees[BtreeId.LoggedOps].TryGet(FsPositions.Reflink(dst), out _));
            AssertRefcountsExact(fs);
        }
    }
}
