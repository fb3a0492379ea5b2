// A journal that is full at mount (issue "Bad input": a full journal at mount): every bucket of the
// ring holds entries recovery still needs, so the mount's first entry has nowhere to go. The
// read-write mount must checkpoint (which needs no journal space and frees every bucket) and carry
// on with every committed key; a read-only mount and fsck -n must recover in memory and change no
// byte; fsck must find nothing, before the mount and after it.
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Journal;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Journal;

public sealed class FullJournalAtMountTests(ITestOutputHelper output)
{
    private static FsckOptions CheckOnly => new() { Mode = FsckMode.CheckOnly, Journal = new JournalOptions { Manual = true } };

    /// <summary>
    /// Write-back disabled: a committer that finds no room only gets the queued entries written
    /// (what reclaim does first), never a node write-back or a checkpoint; then it fails.
    /// </summary>
    private sealed class NoWriteBack(JournalWriter journal) : IRestartHandler
    {
        public bool WaitForJournalSpace(int attempt)
        {
            journal.WaitForWriter();
            return attempt < 2;
        }

        public bool WaitForNodeSpace(int attempt, int slotsNeeded) => false;
    }

    /// <summary>
    /// 300 keys checkpointed into nodes, then transactions until the ring (four 8 KiB buckets) has no
    /// room outside its reserve, then the reserve filled the way reclaim's own updates fill it, all
    /// flushed, and a crash before any write-back. Returns the image and the keys it must hold.
    /// </summary>
    private (byte[] Image, SortedDictionary<Bpos, byte[]> Model) FullJournalImage(int seed)
    {
        var rng = new Random(seed);
        var model = new SortedDictionary<Bpos, byte[]>();
        using var fx = new BtreeFixture(slots: 512, journalBuckets: 4, bucketSize: 8192);
        for (var i = 0; i < 300; i++)
        {
            var value = new byte[24];
            rng.NextBytes(value);
            fx.Insert(BtreeFixture.Pos(i), value);
            model[BtreeFixture.Pos(i)] = value;
        }
        fx.Checkpoint();
        fx.Engine.SetRestartHandler(new NoWriteBack(fx.Journal));

        var transactions = 0;
        var refused = false;
        while (!refused && transactions < 10_000)
        {
            var writes = new List<(Bpos Pos, byte[] Value)>();
            for (var k = 0; k < 4; k++)
            {
                var value = new byte[rng.Next(8, 120)];
                rng.NextBytes(value);
                writes.Add((BtreeFixture.Pos(rng.Next(600)), value));
            }
            try
            {
                fx.Fs.Transact(t =>
                {
                    foreach (var (pos, value) in writes)
                        t.Set(BtreeId.Test, pos, value);
                }, rng.Next(8) == 0 ? Basalt.Transactions.CommitOptions.Durable : default);
                foreach (var (pos, value) in writes)
                    model[pos] = value;
                transactions++;
            }
            catch (BasaltException ex) when (ex.Code == ErrorCode.JournalFull)
            {
                refused = true;
            }
        }
        Assert.True(refused, $"{transactions} transactions and the journal never filled: {fx.Journal.Stats.ToText()}");
        Assert.Equal(0, fx.Fs.Reclaim!.Rounds);

        // The reserve: reclaim's updates go there when a write-back round releases pins. Here they
        // are leaf keys, so what replay makes of them can be checked like any other key.
        var reserved = 0;
        for (var i = 0; i < 1000; i++)
        {
            var pos = BtreeFixture.Pos(1000 + i);
            var value = new byte[200];
            rng.NextBytes(value);
            var commit = new InteriorCommit();
            commit.Keys.Add(new BtreeUpdate(BtreeId.Test, 0, new Bkey(pos, KeyType.Cookie), value));
            if (!fx.Journal.TryCommitInterior(commit, out _))
            {
                fx.Journal.WaitForWriter();
                if (!fx.Journal.TryCommitInterior(commit, out _))
                    break;
            }
            model[pos] = value;
            reserved++;
        }
        fx.Sync();
        var stats = fx.Journal.Stats;
        output.WriteLine($"seed {seed}: {transactions} transactions, {reserved} reserve commits; journal: {stats.ToText()}");
        Assert.True(reserved > 0, "nothing went into the reserve");
        Assert.Equal(stats.Buckets, stats.BucketsInUse);
        fx.Fs.Close(sync: false);
        return (fx.Memory.Contents.ToArray(), model);
    }

    [Fact]
    public void A_full_journal_at_mount_is_checkpointed_keeps_every_key_and_checks_clean()
    {
        var seed = TestSeed.Get(output, nameof(A_full_journal_at_mount_is_checkpointed_keeps_every_key_and_checks_clean));
        var (image, model) = FullJournalImage(seed);

        // On disk: every bucket's newest entry is one replay needs (at or after the newest last_seq,
        // after the checkpoint), so the bucket after the newest entry, where a mount starts, is taken.
        var sb = SuperblockIo.Read(new MemoryBlockDevice(image.ToArray(), "full.img")).Superblock;
        Assert.False(sb.IsClean);
        using (var device = new MemoryBlockDevice(image.ToArray(), "full.img"))
        {
            var scan = JournalScan.Scan(device, JournalRing.Of(sb), new JournalReadContext(JournalFormat.MagicFor(sb.Uuid), sb.BlockSize, sb.NodeSize));
            Assert.Empty(scan.Damage);
            var lastSeq = scan.Entries[scan.NewestSeqSeen].LastSeq;
            for (var i = 0; i < scan.BucketNewestSeq.Length; i++)
            {
                Assert.True(scan.BucketNewestSeq[i] >= lastSeq && scan.BucketNewestSeq[i] > sb.CleanInfo.JournalSeq,
                    $"seed {seed}: bucket {i} holds nothing needed (newest seq {scan.BucketNewestSeq[i]}, last_seq {lastSeq}, checkpoint {sb.CleanInfo.JournalSeq})");
            }
        }

        // fsck -n and a read-only mount recover in memory: not one byte changes.
        using (var device = new MemoryBlockDevice(image.ToArray(), "full.img"))
        {
            var check = Basalt.Fsck.Fsck.Run(device, CheckOnly);
            Assert.True(check.Clean, $"seed {seed}: fsck -n: " + string.Join("; ", check.Findings.Select(f => f.ToText())));
            Assert.True(device.Contents.SequenceEqual(image), "fsck -n changed the image");
            using (var fs = BasaltFileSystem.Mount(device, new MountOptions { ReadOnly = true, Journal = new JournalOptions { Manual = true } }))
            {
                Assert.False(fs.Recovery.CheckpointedAtMount);
                BtreeAssertions.AssertContents(fs.Btrees[BtreeId.Test], model);
            }
            Assert.True(device.Contents.SequenceEqual(image), "a read-only mount changed the image");
        }

        // Read-write: the mount's first entry finds no bucket, so it checkpoints and starts again.
        using var memory = new MemoryBlockDevice(image.ToArray(), "full.img");
        using (var fs = BasaltFileSystem.Mount(memory, new MountOptions { Journal = new JournalOptions { Manual = true }, CheckWriteOnce = true }))
        {
            output.WriteLine($"mount: {fs.Recovery.ToText()}");
            Assert.True(fs.Recovery.CheckpointedAtMount, fs.Recovery.ToText());
            Assert.Contains("journal full", fs.Recovery.ToText(), StringComparison.Ordinal);
            Assert.Null(fs.Recovery.Lost);
            Assert.True(fs.Superblock.CleanInfo.JournalSeq > sb.CleanInfo.JournalSeq, "the mount's checkpoint did not move the superblock's seq");
            BtreeAssertions.AssertContents(fs.Btrees[BtreeId.Test], model);
            BtreeAssertions.AssertTopology(fs.Btrees[BtreeId.Test]);
            // The journal takes commits again.
            for (var i = 0; i < 50; i++)
            {
                var pos = BtreeFixture.Pos(5000 + i);
                fs.Transact(t => t.Set(BtreeId.Test, pos, [(byte)i]), Basalt.Transactions.CommitOptions.Durable);
                model[pos] = [(byte)i];
            }
            fs.Close(sync: false);
        }
        var after = Basalt.Fsck.Fsck.Run(memory, CheckOnly);
        Assert.True(after.Clean, $"seed {seed}: fsck -n after the mount: " + string.Join("; ", after.Findings.Select(f => f.ToText())));
        using (var fs = BasaltFileSystem.Mount(memory, new MountOptions { Journal = new JournalOptions { Manual = true } }))
        {
            Assert.False(fs.Recovery.CheckpointedAtMount);
            BtreeAssertions.AssertContents(fs.Btrees[BtreeId.Test], model);
            fs.Close(sync: true);
        }
        var final = Basalt.Fsck.Fsck.Run(memory, CheckOnly);
        Assert.True(final.Clean, $"seed {seed}: fsck -n after a clean unmount: " + string.Join("; ", final.Findings.Select(f => f.ToText())));
    }
}
