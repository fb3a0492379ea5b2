using Basalt.Backpointers;
using Basalt.Data;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Fsck.Files;
using Basalt.Fsck.Space;
using Basalt.Tests.Fs;
using Basalt.Tests.Fsck.Space;
using static Basalt.Tests.Fsck.FindingsText;

namespace Basalt.Tests.Fsck.Files;

/// <summary>
/// Reflinks made by the file API (CloneFile, Reflink), then overwritten, punched, truncated and
/// deleted: every space and file pass finds nothing after every step, also with a budget so small
/// that check_reflink counts in windows; and damage to what the API made is found and repaired.
/// </summary>
public sealed class ReflinkWorkloadTests
{
    private const ulong Root = FsPositions.RootIno;
    private const long Tiny = 4096;

    private static byte[] B(string s) => FilesTests.B(s);

    private static void AssertClean(BasaltFileSystem fs, string step)
    {
        foreach (var maxMem in new long?[] { null, Tiny })
        {
            Assert.True(FileChecks.Run(fs, repair: false, out var files, maxMem), $"{step} (max-mem {maxMem}):\n{Text(files)}");
            Assert.True(SpaceChecks.Run(fs, repair: false, out var space, maxMem), $"{step} (max-mem {maxMem}):\n{Text(space)}");
        }
    }

    private static byte[] ReadAll(Basalt.Fs.Files f, ulong ino)
    {
        var buffer = new byte[(int)f.GetAttr(ino).Size];
        Assert.Equal(buffer.Length, f.Read(ino, 0, buffer));
        return buffer;
    }

    private static List<(Bkey Key, byte[] Value)> Keys(BasaltFileSystem fs, BtreeId btree)
    {
        var result = new List<(Bkey, byte[])>();
        var it = fs.Btrees[btree].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
            result.Add((it.Key, it.Value.ToArray()));
        return result;
    }

    [Fact]
    public void Clones_overwrites_punches_and_deletes_leave_every_pass_clean()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        byte[] expectB, expectC;
        using (var fs = BasaltFileSystem.Format(device, FilesTests.Geometry, SpaceFsckTests.Quiet))
        {
            var f = fs.Files;
            var a = f.Create(Root, B("a"), 0x1A4).Ino;
            var b = f.Create(Root, B("b"), 0x1A4).Ino;
            var c = f.Create(Root, B("c"), 0x1A4).Ino;
            // Written in pieces, so the shared range is several indirect extents.
            for (var i = 0; i < 8; i++)
                f.Write(a, i * 16384, SpaceFsckTests.Bytes(16384, i + 1));
            AssertClean(fs, "written");

            f.CloneFile(a, b);
            AssertClean(fs, "cloned a to b");
            f.Reflink(a, 32768, c, 4096, 65536);
            f.Reflink(b, 0, c, 100 * 1024, 8192);
            AssertClean(fs, "reflinked ranges of a and b into c");
            Assert.NotEmpty(Keys(fs, BtreeId.Reflink));

            f.Write(a, 1000, SpaceFsckTests.Bytes(5000, 20));
            f.Write(b, 40000, SpaceFsckTests.Bytes(30000, 21));
            f.Write(c, 8192, SpaceFsckTests.Bytes(512, 22));
            AssertClean(fs, "overwrote parts of a, b and c");

            f.Fallocate(b, FallocateFlags.PunchHole | FallocateFlags.KeepSize, 64 * 1024, 24 * 1024);
            f.Fallocate(c, FallocateFlags.PunchHole | FallocateFlags.KeepSize, 20 * 1024, 4096);
            f.Truncate(c, 90 * 1024 + 300);
            f.Truncate(c, 110 * 1024);
            AssertClean(fs, "punched b and c, truncated c");

            f.Unlink(Root, B("a"));
            AssertClean(fs, "deleted a");
            expectB = ReadAll(f, b);
            expectC = ReadAll(f, c);
        }

        // A whole fsck run over the image: nothing, with the default budget and with a tiny one.
        foreach (var maxMem in new[] { SpaceChecks.DefaultMaxMem, Tiny })
        {
            var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly, MaxMem = maxMem });
            Assert.True(report.Findings.Count == 0, Text(report.Findings));
        }
        using (var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet))
        {
            Assert.Equal(expectB, ReadAll(fs.Files, fs.Files.Lookup(Root, B("b")).Ino));
            Assert.Equal(expectC, ReadAll(fs.Files, fs.Files.Lookup(Root, B("c")).Ino));
        }
    }

    /// <summary>/a (8 runs of 16 KiB) cloned to /b, then /a deleted: /b's data lives only in indirect extents.</summary>
    private static (MemoryBlockDevice Device, byte[] Data) OnlyCopyInIndirectExtents(Action<BasaltFileSystem, ulong>? damage = null)
    {
        var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        var data = new byte[8 * 16384];
        using var fs = BasaltFileSystem.Format(device, FilesTests.Geometry, SpaceFsckTests.Quiet);
        var f = fs.Files;
        var a = f.Create(Root, B("a"), 0x1A4).Ino;
        var b = f.Create(Root, B("b"), 0x1A4).Ino;
        for (var i = 0; i < 8; i++)
        {
            var part = SpaceFsckTests.Bytes(16384, i + 1);
            part.CopyTo(data, i * 16384);
            f.Write(a, i * 16384, part);
        }
        f.CloneFile(a, b);
        f.Unlink(Root, B("a"));
        Assert.DoesNotContain(Keys(fs, BtreeId.Extents), k => k.Key.Type == KeyType.Extent);
        Assert.All(Keys(fs, BtreeId.Backpointers), bp => Assert.True(BackpointerValue.TryRead(bp.Value, out var v, out _) && v.Btree == BtreeId.Reflink));
        AssertClean(fs, "the only copy is shared");
        damage?.Invoke(fs, b);
        return (device, data);
    }

    private static void AssertRepaired(MemoryBlockDevice device, params FsckErrorId[] expected)
    {
        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(expected.Order().SequenceEqual(check.Findings.Select(f => f.Id).Order()), Text(check.Findings));
        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        Assert.True(expected.Order().SequenceEqual(repair.Findings.Select(f => f.Id).Order()), Text(repair.Findings));
        Assert.All(repair.Findings, f => Assert.True(f.Corrected, f.ToText()));
        var again = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly, MaxMem = Tiny });
        Assert.True(again.Findings.Count == 0, Text(again.Findings));
    }

    [Fact]
    public void A_missing_backpointer_of_an_indirect_extent_is_found_and_written()
    {
        var (device, data) = OnlyCopyInIndirectExtents((fs, dst) =>
        {
            var bp = Keys(fs, BtreeId.Backpointers)[2].Key.Pos;
            fs.Transact(t => t.Delete(BtreeId.Backpointers, bp));
        });
        AssertRepaired(device, FsckErrorId.PtrToMissingBackpointer);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(data, ReadAll(fs.Files, fs.Files.Lookup(Root, B("b")).Ino));
    }

    [Fact]
    public void A_wrong_refcount_of_a_clone_is_set_and_the_data_still_reads()
    {
        var (device, data) = OnlyCopyInIndirectExtents((fs, dst) =>
        {
            var (key, value) = Keys(fs, BtreeId.Reflink)[0];
            fs.Transact(t => t.Set(BtreeId.Reflink, key, ReflinkIndirect.WithRefcount(value, 9)));
        });
        AssertRepaired(device, FsckErrorId.ReflinkVRefcountWrong);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var b = fs.Files.Lookup(Root, B("b")).Ino;
        Assert.Equal(data, ReadAll(fs.Files, b));
        // Deleting the last copy releases everything: the refcounts were right.
        fs.Files.Unlink(Root, B("b"));
        Assert.Empty(Keys(fs, BtreeId.Reflink));
        AssertClean(fs, "deleted b");
    }

    [Fact]
    public void A_lost_indirect_extent_fails_reads_of_its_range_only()
    {
        var (device, data) = OnlyCopyInIndirectExtents((fs, dst) =>
        {
            var (key, value) = Keys(fs, BtreeId.Reflink)[1];
            Assert.True(ReflinkIndirect.TryRead(value, out _, out var extent, out _));
            fs.Transact(t =>
            {
                ExtentTriggers.ChargeIndirect(t, key, extent, -1);
                t.Delete(BtreeId.Reflink, key.Pos);
            });
        });
        AssertRepaired(device, FsckErrorId.ReflinkPToMissingReflinkV);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var b = fs.Files.Lookup(Root, B("b")).Ino;
        var first = Keys(fs, BtreeId.Reflink)[0].Key;
        var lostAt = (int)first.Size * FormatLimits.SectorSize;
        var head = new byte[lostAt];
        Assert.Equal(lostAt, fs.Files.Read(b, 0, head));
        Assert.Equal(data.AsSpan(0, lostAt).ToArray(), head);
        var e = Assert.Throws<BasaltException>(() => fs.Files.Read(b, lostAt, new byte[512]));
        Assert.Equal(ErrorCode.IoError, e.Code);
        var tail = new byte[16384];
        Assert.Equal(tail.Length, fs.Files.Read(b, data.Length - tail.Length, tail));
        Assert.Equal(data.AsSpan(data.Length - tail.Length).ToArray(), tail);
    }
}
