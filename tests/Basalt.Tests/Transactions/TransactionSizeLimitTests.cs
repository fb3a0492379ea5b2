// A transaction is one journal entry: the largest that fits commits (and survives a crash), one
// 8 bytes larger is refused with TransactionTooLarge naming both sizes, and commits nothing.
using System.Globalization;
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Journal;
using Basalt.TestKit;
using Basalt.Transactions;
using static Basalt.Tests.Transactions.TransactionTestData;

namespace Basalt.Tests.Transactions;

public sealed class TransactionSizeLimitTests
{
    [Fact]
    public void The_largest_transaction_that_fits_an_entry_commits_and_one_larger_is_refused_with_both_sizes()
    {
        using var fx = new BtreeFixture();
        var max = fx.Journal.MaxCommitBytes;
        var largest = ValuesFilling(max, fx.Geometry.NodeSize);
        Assert.Equal(max, CommitBytes(largest));
        var tooLarge = new List<int>(largest);
        tooLarge[^1] += 8;
        Assert.Equal(max + 8, CommitBytes(tooLarge));

        fx.Fs.Transact(t => t.Set(BtreeId.Test, new Bpos(1, 1), [1]), CommitOptions.Durable);
        var before = Snapshot(fx.Test);
        var seq = fx.Journal.CommittedSeq;

        var e = Assert.Throws<BasaltException>(() => fx.Fs.Transact(t => Write(t, tooLarge, 0xAA), CommitOptions.Durable));
        Assert.Equal(ErrorCode.TransactionTooLarge, e.Code);
        Assert.Equal(ErrorClass.Usage, e.Class);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"{tooLarge.Count} updates"), e.Message, StringComparison.Ordinal);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"needs {max + 8} bytes"), e.Message, StringComparison.Ordinal);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"at most {max}"), e.Message, StringComparison.Ordinal);
        Assert.Null(Difference(before, Snapshot(fx.Test)));
        Assert.Equal(seq, fx.Journal.CommittedSeq);
        Assert.False(fx.Fs.Emergency.IsSet);

        // The largest one commits as one entry, durable, and a crash remount replays it whole.
        fx.Fs.Transactor.Transact(t =>
        {
            Write(t, largest, 0x55);
            return true;
        }, CommitOptions.Durable, out var result);
        Assert.Equal(largest.Count, result.Updates);
        fx.Remount();
        var after = Snapshot(fx.Test);
        Assert.Equal(largest.Count + 1, after.Count);
        for (var i = 0; i < largest.Count; i++)
        {
            Assert.Equal(largest[i], after[new Bpos(2, (ulong)i)].Value.Length);
            Assert.All(after[new Bpos(2, (ulong)i)].Value, b => Assert.Equal(0x55, b));
        }
    }

    /// <summary>Value lengths (each at most a node's maximum value) whose keys take exactly <paramref name="bytes"/> of an entry.</summary>
    private static List<int> ValuesFilling(int bytes, int nodeSize)
    {
        var maxValue = Basalt.Btree.Node.BtreeNodeFormat.MaxValueBytes(nodeSize) & ~7;
        var left = bytes - JournalFormat.RecordHeaderSize;
        Assert.True(left % 8 == 0, $"a commit of {bytes} bytes is not reachable with 8-byte aligned keys");
        var lengths = new List<int>();
        while (left > 0)
        {
            var value = Math.Min(maxValue, left - BkeyFormat.HeaderSize);
            // Leave room for a last key of at least its header.
            if (left - BkeyFormat.EncodedSize(value) is > 0 and < BkeyFormat.HeaderSize)
                value -= BkeyFormat.HeaderSize;
            lengths.Add(value);
            left -= BkeyFormat.EncodedSize(value);
        }
        return lengths;
    }

    private static int CommitBytes(List<int> lengths) =>
        JournalWriter.CommitBytes([.. lengths.Select((n, i) => new BtreeUpdate(BtreeId.Test, 0, new Bkey(new Bpos(2, (ulong)i), KeyType.Cookie), new byte[n]))]);

    private static void Write(Transaction t, List<int> lengths, byte fill)
    {
        for (var i = 0; i < lengths.Count; i++)
            t.Set(BtreeId.Test, new Bpos(2, (ulong)i), Enumerable.Repeat(fill, lengths[i]).ToArray());
    }
}
