// Roots travel in journal entries: commits, splits and write-back rounds that change a root write no
// superblock; the superblock is written at mount (dirty) and at a clean unmount (clean section with
// the roots), and a crash recovers the newest roots from the journal while the superblock's are stale.
using Basalt.Devices;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.Tests.Journal;

public sealed class RootsInTheJournalTests
{
    /// <summary>Counts writes that start at a superblock copy's offset.</summary>
    private sealed class SuperblockWriteCounter(IBlockDevice inner) : IBlockDevice
    {
        public HashSet<long> CopyOffsets { get; } = [];
        public int Writes { get; set; }
        public string Name => inner.Name;
        public long Size => inner.Size;
        public bool IsReadOnly => inner.IsReadOnly;
        public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            if (CopyOffsets.Contains(offset))
                Writes++;
            inner.Write(offset, data);
        }

        public void Flush() => inner.Flush();
        public void Discard(long offset, long length) => inner.Discard(offset, length);
        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void Root_changes_write_no_superblock_and_a_crash_recovers_the_roots_from_the_journal()
    {
        SuperblockWriteCounter? counter = null;
        using var fx = new BtreeFixture(decorate: d => counter = new SuperblockWriteCounter(d));
        counter!.CopyOffsets.UnionWith(fx.Fs.Superblock.CopyOffsets.Select(o => (long)o));
        var stale = fx.Fs.Superblock.Roots.SingleOrDefault(r => r.Btree == BtreeId.Test);
        counter.Writes = 0;

        // Enough keys for the test btree's root to change several times, written back as it grows.
        var model = new SortedDictionary<Bpos, byte[]>();
        var rootLevels = new HashSet<byte>();
        for (var i = 0; i < 3000; i++)
        {
            var value = BitConverter.GetBytes((long)i * 7919);
            fx.Insert(BtreeFixture.Pos(i), value);
            model[BtreeFixture.Pos(i)] = value;
            if (i % 500 == 499)
            {
                fx.WriteBackAll();
                rootLevels.Add(fx.Test.Root!.Level);
            }
        }
        Assert.True(rootLevels.Count >= 2, $"the root stayed at level {string.Join(", ", rootLevels)}");
        Assert.Equal(0, counter.Writes);
        Assert.Equal(stale, SuperblockIoRoot(fx));

        // A crash: the superblock still names the old root; the journal has the new ones.
        fx.Remount();
        Assert.False(fx.Fs.Recovery.WasClean);
        Assert.True(counter.Writes > 0, "the mount did not write the superblock dirty");
        Assert.Equal(rootLevels.Max(), fx.Test.Root!.Level);
        BtreeAssertions.AssertContents(fx.Test, model);

        // A clean unmount writes the roots into the superblock.
        counter.Writes = 0;
        fx.Fs.Close(sync: true);
        Assert.True(counter.Writes > 0, "a clean unmount wrote no superblock");
        var sb = Basalt.Superblocks.SuperblockIo.Read(fx.Memory).Superblock;
        Assert.True(sb.IsClean);
        Assert.Equal(rootLevels.Max(), sb.Roots.Single(r => r.Btree == BtreeId.Test).Level);
    }

    private static BtreeRoot? SuperblockIoRoot(BtreeFixture fx) =>
        Basalt.Superblocks.SuperblockIo.Read(fx.Memory).Superblock.Roots.SingleOrDefault(r => r.Btree == BtreeId.Test);
}
