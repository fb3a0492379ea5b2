// Unclean images for the journal commands: a small-bucket geometry (4 KiB buckets, so one
// transaction of a few 1 KiB values fills a journal entry on its own and entry boundaries follow
// the transactions), a clean base tree, then a mount in the journal's deterministic step mode that
// commits a planned list of transactions, some durable (a flush entry), some written as no-flush
// entries, the last ones never written, and is abandoned without a checkpoint, as a crash leaves it.
//
// Transaction k writes KeysPerTransaction fresh keys at (2, k*100 + i) with values derived from
// (k, i), and sets the counter key to k, so a recovered image reveals which prefix it holds.
using System.Buffers.Binary;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Journal;
using Basalt.TestKit;
using Basalt.Transactions;

namespace Basalt.IntegrationTests.Cli;

/// <summary>How a planned transaction reaches the journal.</summary>
internal enum CommitKind
{
    /// <summary>Committed durable: written in a flush entry before Transact returns.</summary>
    Flush,
    /// <summary>Committed, then its entry written as a no-flush entry (Step(flush: false) once the next commit closed it).</summary>
    NoFlush,
    /// <summary>Committed and never written: lost by the crash.</summary>
    Unwritten,
}

/// <summary>One committed transaction: its number, how it was written, and the journal seq it got.</summary>
internal sealed record Commit(int K, CommitKind Kind, ulong Seq);

/// <summary>An unclean image and the transactions committed into it.</summary>
internal sealed record UncleanImage(string Path, IReadOnlyList<Commit> Commits, ulong FirstSeqAfterMount)
{
    /// <summary>Seq of the newest flush entry the transactions made.</summary>
    public ulong NewestFlushSeq => Commits.Where(c => c.Kind == CommitKind.Flush).Max(c => c.Seq);

    /// <summary>The last transaction a flush made durable: every transaction in an entry up to the newest flush entry.</summary>
    public int DurableK => Commits.Where(c => c.Seq <= NewestFlushSeq && c.Kind != CommitKind.Unwritten).Max(c => c.K);
}

internal static class JournalImages
{
    public static readonly string[] Geometry = ["--size", "16M", "--bucket-size", "4K", "--btree-node-size", "4K", "--block-size", "512"];

    public const int KeysPerTransaction = 2;
    public const int ValueBytes = 700;
    public const int BaseKeys = 400;

    public static readonly Bpos CounterPos = new(0xC0_0000, 0);

    public static Bpos KeyPos(int k, int i) => new(2, (ulong)((k * 100) + i));

    public static byte[] Value(int k, int i)
    {
        var value = new byte[ValueBytes];
        new Random((k * 1000) + i).NextBytes(value);
        return value;
    }

    public static int ReadCounter(ReadOnlySpan<byte> value) => value.Length == 8 ? checked((int)BinaryPrimitives.ReadInt64LittleEndian(value)) : -1;

    /// <summary>flush, no-flush, no-flush, flush, no-flush, unwritten: the plan the list-journal tests assert on.</summary>
    public static readonly CommitKind[] SmallPlan =
        [CommitKind.Flush, CommitKind.NoFlush, CommitKind.NoFlush, CommitKind.Flush, CommitKind.NoFlush, CommitKind.Unwritten];

    /// <summary>Formats <paramref name="name"/> in <paramref name="dir"/>, fills a clean base tree, then commits <paramref name="plan"/> and crashes.</summary>
    public static UncleanImage Make(TempDirectory dir, IReadOnlyList<CommitKind> plan, string name = "unclean.img", int writeBackAfter = 0,
        int baseKeys = BaseKeys)
    {
        var path = dir.File(name);
        CliRunner.Succeeds(["format", .. Geometry, path]);
        using (var fs = BasaltFileSystem.Mount(path, new MountOptions()))
        {
            var tree = fs.Btrees[BtreeId.Test];
            for (var i = 0; i < baseKeys; i++)
                tree.Insert(new Bpos(1, (ulong)i * 5), BitConverter.GetBytes((long)i * 17));
            fs.Sync();
        }
        return Commit(path, plan, writeBackAfter);
    }

    /// <summary>
    /// Mounts <paramref name="path"/> in step mode, commits <paramref name="plan"/> and abandons the
    /// mount. After transaction <paramref name="writeBackAfter"/> every dirty node is written back:
    /// the nodes and roots the later entries name are then on the device but not in the superblock.
    /// </summary>
    public static UncleanImage Commit(string path, IReadOnlyList<CommitKind> plan, int writeBackAfter = 0)
    {
        var fs = BasaltFileSystem.Mount(path, new MountOptions { Journal = new JournalOptions { Manual = true } });
        var commits = new List<Commit>();
        var firstSeq = fs.Journal.CommittedSeq + 1;
        try
        {
            for (var k = 1; k <= plan.Count; k++)
            {
                var kind = plan[k - 1];
                fs.Transactor.Transact(t =>
                {
                    for (var i = 0; i < KeysPerTransaction; i++)
                        t.Set(BtreeId.Test, KeyPos(k, i), Value(k, i));
                    var counter = new byte[8];
                    BinaryPrimitives.WriteInt64LittleEndian(counter, k);
                    t.Set(BtreeId.Test, CounterPos, counter);
                    return true;
                }, kind == CommitKind.Flush ? CommitOptions.Durable : CommitOptions.Default, out var result);
                // This commit did not fit beside the previous one and closed its entry: a no-flush
                // transaction's entry is written now, as a no-flush entry.
                if (k >= 2 && plan[k - 2] == CommitKind.NoFlush)
                    fs.Journal.Step(flush: false);
                commits.Add(new Commit(k, kind, result.Seq));
                if (k == writeBackAfter)
                {
                    // Rounds until nothing is left: a parent waits for its children's round, the root last.
                    for (var round = 0; round < 8 && fs.Btrees.WriteBack(null).NodesWritten > 0; round++)
                    {
                    }
                }
            }
        }
        finally
        {
            fs.Close(sync: false);
        }
        Validate(commits);
        return new UncleanImage(path, commits, firstSeq);
    }

    /// <summary>Each transaction has an entry of its own (the geometry's point); a plan that broke that would test nothing.</summary>
    private static void Validate(List<Commit> commits)
    {
        var seqs = commits.Select(c => c.Seq).ToList();
        Assert.True(seqs.Distinct().Count() == seqs.Count, $"transactions shared journal entries: {string.Join(", ", commits)}");
    }
}
