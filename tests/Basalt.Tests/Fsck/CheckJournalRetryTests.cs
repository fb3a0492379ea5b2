// fsck on an unclean filesystem whose root the journal names and which is unreadable: the replay
// sets every key of that btree aside (pinned), check_journal's checkpoint then covers their seqs,
// check_topology resets the root, and the set-aside keys are retried into the new root. A retried
// key whose seq the checkpoint covers pins nothing (an entry the checkpoint covers is never read
// again): both -n and -y run to the end, -y keeps the retried keys, and a second run is clean.
using Basalt.Btree.Node;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.TestKit;

namespace Basalt.Tests.Fsck;

public sealed class CheckJournalRetryTests
{
    private static byte[] Value(long i) => BitConverter.GetBytes(i * 31);

    [Fact]
    public void Keys_set_aside_by_an_unreadable_journal_root_are_retried_after_the_checkpoint()
    {
        using var f = new BtreeFixture();
        for (var i = 0; i < 300; i++)
            f.Insert(BtreeFixture.Pos(i), Value(i));
        f.Checkpoint();
        // More keys, written back through the journal: the root the journal names is newer than the superblock's.
        for (var i = 300; i < 600; i++)
            f.Insert(BtreeFixture.Pos(i), Value(i));
        f.WriteBackAll();
        // The window's keys: journaled, their nodes never written.
        for (var i = 600; i < 610; i++)
            f.Insert(BtreeFixture.Pos(i), Value(i));
        f.Sync();
        var root = f.Test.Root!;
        Assert.True(root.Level >= 1, $"root level {root.Level}");
        f.Fs.Close(sync: false);

        var superRoot = Basalt.Superblocks.SuperblockIo.Read(f.Memory).Superblock.Roots.Single(r => r.Btree == BtreeId.Test);
        Assert.NotEqual(superRoot.Ptr.ToText(), root.Ptr.ToText());
        f.Memory.Contents[(int)root.Ptr.Ptrs[0].OffsetBytes + BtreeNodeFormat.NodeMagicOffset] ^= 0x10;

        var check = Basalt.Fsck.Fsck.Run(f.Memory, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.Equal([FsckErrorId.BtreeRootUnreadable, FsckErrorId.BtreeRangeRebuiltFromScan], check.Findings.Select(x => x.Id));
        var repair = Basalt.Fsck.Fsck.Run(f.Memory, new FsckOptions { Mode = FsckMode.Yes });
        Assert.Equal([FsckErrorId.BtreeRootUnreadable, FsckErrorId.BtreeRangeRebuiltFromScan], repair.Findings.Select(x => x.Id));
        Assert.Contains("nothing lost", repair.Findings[1].Detail, StringComparison.Ordinal);
        Assert.Equal(FsckExitCodes.Corrected, repair.ExitCode);
        Assert.True(Basalt.Fsck.Fsck.Run(f.Memory, new FsckOptions { Mode = FsckMode.CheckOnly }).Clean);

        // The root is rebuilt over the leaves the node scan found (every key written back
        // survives), and the window's keys were retried into the new root and written.
        using var fs = BasaltFileSystem.Mount(f.Memory, new MountOptions { ReadOnly = true });
        for (var i = 0; i < 610; i++)
        {
            Assert.True(fs.Btrees[BtreeId.Test].TryGet(BtreeFixture.Pos(i), out var value), $"key {i}");
            Assert.Equal(Value(i), value);
        }
    }
}
