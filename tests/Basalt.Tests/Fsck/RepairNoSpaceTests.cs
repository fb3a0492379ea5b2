// A repair batch that a full filesystem has no room for (device, node space or journal) is left
// as a repair_no_space finding: the batch changes nothing, fsck goes on with the next passes, and
// the filesystem stays usable. Any other failure still stops the run.
using Basalt.Alloc;
using Basalt.Diagnostics;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;

namespace Basalt.Tests.Fsck;

public sealed class RepairNoSpaceTests
{
    private static BasaltFileSystem Small(MemoryBlockDevice device) =>
        BasaltFileSystem.Format(device, Basalt.Tests.Data.ExtentStoreTests.Geometry, new MountOptions { Space = new SpaceOptions { BackgroundWorker = false } });

    private static Bkey Key(ulong i) => new(new Bpos(9, i), KeyType.Cookie);

    [Fact]
    public void A_batch_without_room_is_a_finding_and_changes_nothing()
    {
        using var device = new MemoryBlockDevice(8 * 1024 * 1024, "full.img");
        using var fs = Small(device);
        var reporter = new CollectingReporter(repair: true);
        var batch = new RepairBatch(fs, reporter);
        batch.Add(t => t.Set(BtreeId.Test, Key(1), [1]));
        batch.Add(_ => throw new BasaltException(ErrorCode.DeviceFull, "full.img: no space left: 4096 bytes needed, 0 available"));
        batch.Flush();

        var finding = Assert.Single(reporter.Findings);
        Assert.Equal(FsckErrorId.RepairNoSpace, finding.Id);
        Assert.Contains("2 repairs not applied", finding.Detail, StringComparison.Ordinal);
        Assert.Contains("no space left", finding.Detail, StringComparison.Ordinal);
        // The whole batch was one transaction: its first repair did not land either.
        Assert.False(fs.Btrees[BtreeId.Test].TryGet(Key(1).Pos, out _));
        // The filesystem goes on: the next batch commits.
        batch.Add(t => t.Set(BtreeId.Test, Key(2), [2]));
        batch.Flush();
        Assert.True(fs.Btrees[BtreeId.Test].TryGet(Key(2).Pos, out _));
        Assert.Single(reporter.Findings);
    }

    [Fact]
    public void Other_failures_still_stop_the_run()
    {
        using var device = new MemoryBlockDevice(8 * 1024 * 1024, "bad.img");
        using var fs = Small(device);
        var batch = new RepairBatch(fs, new CollectingReporter(repair: true));
        batch.Add(_ => throw new BasaltException(ErrorCode.BtreeNodeCorrupt, "bad.img: a node that cannot be read"));
        var ex = Assert.Throws<BasaltException>(batch.Flush);
        Assert.Equal(ErrorCode.BtreeNodeCorrupt, ex.Code);
    }
}
