using Basalt.Backpointers;
using Basalt.Data;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Fsck.Space;
using Basalt.TestKit;
using Basalt.Tests.Data;
using Xunit.Abstractions;
using static Basalt.Tests.Fsck.FindingsText;

namespace Basalt.Tests.Fsck.Space;

public sealed class SpaceWorkloadTests(ITestOutputHelper output)
{
    private static void Step(BasaltFileSystem fs, Random random)
    {
        var inode = (ulong)random.Next(101, 130); // no inode and no name: extents of the data layer used on its own
        var offset = random.Next(0, 200_000);
        var length = random.Next(1, 40_000);
        switch (random.Next(10))
        {
            case < 3:
                fs.Data.Punch(inode, offset, length);
                break;
            case 3:
                fs.Space.RunDiscards(waitForJournal: true);
                break;
            case 4:
                fs.Space.RunCopygc(4);
                break;
            default:
                try
                {
                    fs.Data.Write(inode, offset, SpaceFsckTests.Bytes(length, random.Next()));
                }
                catch (BasaltException ex) when (ex.Class == ErrorClass.NoSpace)
                {
                    fs.Data.Punch(inode, 0, 1 << 20);
                }
                break;
        }
    }

    private static void AssertClean(BasaltFileSystem fs, string when)
    {
        Assert.True(SpaceChecks.Run(fs, repair: false, out var findings), $"{when}:\n{Text(findings)}");
    }

    [Fact]
    public void Random_writes_overwrites_punches_and_remounts_leave_nothing_for_the_space_passes()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        BasaltFileSystem.Format(device, ExtentStoreTests.Geometry, SpaceFsckTests.Quiet).Dispose();
        for (var mount = 0; mount < 4; mount++)
        {
            using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
            AssertClean(fs, $"after mount {mount}");
            for (var op = 0; op < 150; op++)
            {
                Step(fs, random);
                if (op % 50 == 49)
                    AssertClean(fs, $"mount {mount} op {op}");
            }
        }
        var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(report.Findings.Count == 0, Text(report.Findings));
    }

    /// <summary>Many small extents, checked with a budget far too small for their backpointers: several rounds, same verdict.</summary>
    [Fact]
    public void A_small_max_mem_takes_several_rounds_and_still_finds_a_wrong_owner()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using (var fs = BasaltFileSystem.Format(device, ExtentStoreTests.Geometry, SpaceFsckTests.Quiet))
        {
            for (var i = 0; i < 400; i++)
                fs.Data.Write((ulong)(i % 40) + 101, i / 40 * 8192, SpaceFsckTests.Bytes(4096, i));
            Assert.True(SpaceChecks.Run(fs, repair: false, out var findings, maxMem: 4096), Text(findings));
        }
        var clean = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly, MaxMem = 4096 });
        Assert.True(clean.Findings.Count == 0, Text(clean.Findings));
        Assert.True(clean.Counters["check_backpointers_to_extents: rounds"] > 1);

        using (var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet))
        {
            // A backpointer of the last file's extent renamed to a nonexistent owner: the bucket's sums still agree.
            var it = fs.Btrees[BtreeId.Extents].Iterate(new Bpos(140, 0), new Bpos(140, ulong.MaxValue, uint.MaxValue));
            Assert.True(it.MoveNext());
            var key = it.Key;
            Assert.True(ExtentValue.TryRead(it.Value, out var e, out _));
            var p = e.Ptrs[0];
            var bp = new BackpointerValue(BtreeId.Extents, 0, Basalt.Alloc.BucketDataType.User, p.Gen, key.Size, new Bpos(500, 8, uint.MaxValue));
            fs.Transact(t => t.Set(BtreeId.Backpointers, new Bkey(BackpointerValue.PositionOf(p.Device, p.OffsetSectors, e.Window), KeyType.Backpointer),
                bp.ToArray()));
        }
        SpaceFsckTests.AssertRepaired(device, FsckErrorId.BackpointerToMissingPtr, FsckErrorId.PtrToMissingBackpointer);
    }
}
