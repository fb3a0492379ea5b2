// Shared pieces of the transaction tests: the counter key every workload transaction bumps (so a
// recovered state names the last transaction it holds), snapshots of the test btree with key
// types, the cause chain of an exception, and an fsck run that must find nothing.
using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fsck;
using Basalt.Transactions;

namespace Basalt.Tests.Transactions;

internal static class TransactionTestData
{
    /// <summary>The counter key: a cookie holding the number of the last workload transaction committed.</summary>
    public static readonly Bpos CounterPos = new(0xC0FFEE, 0);

    public static byte[] U64(ulong n)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, n);
        return bytes;
    }

    public static ulong ReadU64(ReadOnlySpan<byte> value) => BinaryPrimitives.ReadUInt64LittleEndian(value);

    /// <summary>Reads the counter through the transaction (0 when absent).</summary>
    public static ulong ReadCounter(Transaction t) =>
        t.TryGet(BtreeId.Test, CounterPos, out var v) ? ReadU64(v) : 0;

    /// <summary>Reads the counter from the btree as readers see it (0 when absent).</summary>
    public static ulong ReadCounter(Basalt.Btree.Btree tree) =>
        tree.TryGet(CounterPos, out var v) ? ReadU64(v) : 0;

    /// <summary>Every key of the btree with its type and value.</summary>
    public static SortedDictionary<Bpos, (KeyType Type, byte[] Value)> Snapshot(Basalt.Btree.Btree tree)
    {
        var keys = new SortedDictionary<Bpos, (KeyType, byte[])>();
        var it = tree.Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
            keys[it.Key.Pos] = (it.Key.Type, it.Value.ToArray());
        return keys;
    }

    /// <summary>Null when both snapshots hold the same keys, types and values; else the first difference.</summary>
    public static string? Difference(SortedDictionary<Bpos, (KeyType Type, byte[] Value)> expected,
        SortedDictionary<Bpos, (KeyType Type, byte[] Value)> actual)
    {
        foreach (var (pos, (type, value)) in expected)
        {
            if (!actual.TryGetValue(pos, out var got))
                return $"missing {pos.ToText()} ({type.ToText()})";
            if (got.Type != type || !got.Value.AsSpan().SequenceEqual(value))
                return $"{pos.ToText()}: expected {type.ToText()} {Convert.ToHexString(value)}, found {got.Type.ToText()} {Convert.ToHexString(got.Value)}";
        }
        foreach (var pos in actual.Keys)
        {
            if (!expected.ContainsKey(pos))
                return $"extra key {pos.ToText()} ({actual[pos].Type.ToText()})";
        }
        return null;
    }

    /// <summary>The exception and its inner exceptions, outermost first.</summary>
    public static IEnumerable<Exception> CauseChain(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            yield return x;
    }

    /// <summary>Runs fsck check-only on <paramref name="device"/> and asserts it finds nothing.</summary>
    public static void AssertFsckClean(IBlockDevice device)
    {
        var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly, CheckWriteOnce = true });
        Assert.True(report.Clean, "fsck findings:\n" + string.Join("\n", report.Findings.Select(f => f.ToText())));
        Assert.Equal(FsckExitCodes.Clean, report.ExitCode);
    }
}
