// A seeded transaction workload and its model. Each planned transaction reads and bumps the
// counter key, then runs a few operations on the test btree: cookie and counted-key inserts and
// overwrites (the type of a position may change either way), deletes, reads, and range deletes
// read through the transaction. The body folds everything it read into a digest it returns; the
// model runs the same plan on a dictionary and computes the digest the body must return. So a
// run that reads the wrong thing, applies an update twice or loses one disagrees with the model.
using Basalt.Format;
using Basalt.TestKit;
using Basalt.Transactions;
using static Basalt.Tests.Transactions.TransactionTestData;

namespace Basalt.Tests.Transactions;

internal enum WorkloadOpKind
{
    SetCookie,
    SetCounted,
    Delete,
    Read,
    RangeDelete,
}

/// <param name="Pad">For cookies: bytes after the 8-byte number (0: a few, from the number).</param>
internal readonly record struct WorkloadOp(WorkloadOpKind Kind, int Key, int End, ulong Value, int Pad = 0);

internal sealed record WorkloadPlan(IReadOnlyList<WorkloadOp> Ops, bool Durable);

internal static class TransactionWorkload
{
    /// <param name="maxPad">Cookies get up to this many bytes after their number (0: a few, from the number).</param>
    public static List<WorkloadPlan> Generate(Random rng, int transactions, int keySpace, double durable = 0.2, int maxOps = 8, int maxPad = 0)
    {
        var plans = new List<WorkloadPlan>(transactions);
        for (var i = 0; i < transactions; i++)
        {
            var ops = new List<WorkloadOp>();
            for (var n = rng.Next(1, maxOps + 1); n > 0; n--)
            {
                var key = rng.Next(keySpace);
                var value = (ulong)rng.Next(1, 1_000_000);
                ops.Add(rng.Next(20) switch
                {
                    < 7 => new WorkloadOp(WorkloadOpKind.SetCounted, key, 0, value),
                    < 11 => new WorkloadOp(WorkloadOpKind.SetCookie, key, 0, value, maxPad == 0 ? 0 : rng.Next(1, maxPad + 1)),
                    < 15 => new WorkloadOp(WorkloadOpKind.Delete, key, 0, 0),
                    < 19 => new WorkloadOp(WorkloadOpKind.Read, key, 0, 0),
                    _ => new WorkloadOp(WorkloadOpKind.RangeDelete, key, key + rng.Next(0, 12), 0),
                });
            }
            plans.Add(new WorkloadPlan(ops, rng.NextDouble() < durable));
        }
        return plans;
    }

    /// <summary>Large cookies at every key of [0, <paramref name="keySpace"/>), <paramref name="block"/> keys a transaction.</summary>
    public static List<WorkloadPlan> GenerateFill(Random rng, int keySpace, int block, int minPad = 500, int maxPad = 900)
    {
        var plans = new List<WorkloadPlan>();
        for (var start = 0; start < keySpace; start += block)
            plans.Add(new WorkloadPlan(FillBlock(rng, start, Math.Min(block, keySpace - start), minPad, maxPad), Durable: false));
        return plans;
    }

    /// <summary>
    /// Node churn: transactions that alternately range-delete a block of keys and fill one with large
    /// cookies, so leaves keep merging and splitting; after a fill written to disk, every node they
    /// replace frees a slot that only a journal flush makes reusable.
    /// </summary>
    public static List<WorkloadPlan> GenerateChurn(Random rng, int transactions, int keySpace, int maxBlock, int minPad = 500, int maxPad = 900)
    {
        var plans = new List<WorkloadPlan>(transactions);
        for (var i = 0; i < transactions; i++)
        {
            var start = rng.Next(keySpace - maxBlock);
            var length = rng.Next(1, maxBlock + 1);
            plans.Add(new WorkloadPlan(i % 2 == 0
                ? [new WorkloadOp(WorkloadOpKind.RangeDelete, start, start + length - 1, 0)]
                : FillBlock(rng, start, length, minPad, maxPad), Durable: false));
        }
        return plans;
    }

    private static List<WorkloadOp> FillBlock(Random rng, int start, int length, int minPad, int maxPad) =>
        [.. Enumerable.Range(start, length).Select(k => new WorkloadOp(WorkloadOpKind.SetCookie, k, 0, (ulong)rng.Next(1, 1_000_000), rng.Next(minPad, maxPad + 1)))];

    public static byte[] CookieValue(ulong v, int pad = 0) => [.. U64(v), .. new byte[pad == 0 ? (int)(v % 40) : pad]];

    /// <summary>The body of a planned transaction: every read and update goes through <paramref name="t"/>.</summary>
    public static ulong Run(Transaction t, WorkloadPlan plan)
    {
        var digest = new Digest();
        var counter = ReadCounter(t);
        digest.Add(counter);
        t.Set(BtreeId.Test, CounterPos, U64(counter + 1));
        foreach (var op in plan.Ops)
        {
            var pos = BtreeFixture.Pos(op.Key);
            switch (op.Kind)
            {
                case WorkloadOpKind.SetCookie:
                    t.Set(BtreeId.Test, pos, CookieValue(op.Value, op.Pad));
                    break;
                case WorkloadOpKind.SetCounted:
                    t.Set(BtreeId.Test, new Bkey(pos, KeyType.Counted), CountedKeys.Value(op.Value));
                    break;
                case WorkloadOpKind.Delete:
                    t.Delete(BtreeId.Test, pos);
                    break;
                case WorkloadOpKind.Read:
                    if (t.TryGet(BtreeId.Test, pos, out var key, out var value))
                        digest.Add((ulong)key.Type, value);
                    else
                        digest.Add(ulong.MaxValue);
                    break;
                case WorkloadOpKind.RangeDelete:
                    var keys = t.Range(BtreeId.Test, pos, BtreeFixture.Pos(op.End));
                    foreach (var (k, _) in keys)
                        t.Delete(BtreeId.Test, k.Pos);
                    digest.Add((ulong)keys.Count);
                    break;
            }
        }
        return digest.Value;
    }
}

/// <summary>The test btree as the workload should leave it (without the summary key, which the model computes).</summary>
internal sealed class WorkloadModel
{
    public WorkloadModel()
    {
    }

    private WorkloadModel(WorkloadModel other) => Keys = new(other.Keys);

    public SortedDictionary<Bpos, (KeyType Type, byte[] Value)> Keys { get; } = [];

    public WorkloadModel Clone() => new(this);

    /// <summary>What the summary key must say: count and sum of the counted keys.</summary>
    public (ulong Count, ulong Sum) Summary
    {
        get
        {
            ulong count = 0, sum = 0;
            foreach (var (type, value) in Keys.Values)
            {
                if (type == KeyType.Counted)
                {
                    count++;
                    sum += ReadU64(value);
                }
            }
            return (count, sum);
        }
    }

    public ulong Counter => Keys.TryGetValue(CounterPos, out var c) ? ReadU64(c.Value) : 0;

    /// <summary>Applies <paramref name="plan"/>; returns the digest its body must return.</summary>
    public ulong Apply(WorkloadPlan plan)
    {
        var digest = new Digest();
        var counter = Counter;
        digest.Add(counter);
        Keys[CounterPos] = (KeyType.Cookie, U64(counter + 1));
        foreach (var op in plan.Ops)
        {
            var pos = BtreeFixture.Pos(op.Key);
            switch (op.Kind)
            {
                case WorkloadOpKind.SetCookie:
                    Keys[pos] = (KeyType.Cookie, TransactionWorkload.CookieValue(op.Value, op.Pad));
                    break;
                case WorkloadOpKind.SetCounted:
                    Keys[pos] = (KeyType.Counted, CountedKeys.Value(op.Value));
                    break;
                case WorkloadOpKind.Delete:
                    Keys.Remove(pos);
                    break;
                case WorkloadOpKind.Read:
                    if (Keys.TryGetValue(pos, out var kv))
                        digest.Add((ulong)kv.Type, kv.Value);
                    else
                        digest.Add(ulong.MaxValue);
                    break;
                case WorkloadOpKind.RangeDelete:
                    var end = BtreeFixture.Pos(op.End);
                    var doomed = Keys.Keys.Where(k => k >= pos && k <= end).ToList();
                    doomed.ForEach(k => Keys.Remove(k));
                    digest.Add((ulong)doomed.Count);
                    break;
            }
        }
        return digest.Value;
    }

    /// <summary>Null when the btree holds exactly the model's keys (summary key aside) and the model's summary; else what differs.</summary>
    public string? Compare(Basalt.Btree.Btree tree)
    {
        var actual = Snapshot(tree);
        actual.Remove(CountedKeys.SummaryPos);
        if (Difference(Keys, actual) is { } difference)
            return difference;
        var summary = CountedKeys.ReadSummary(tree);
        return summary == Summary ? null : $"summary {summary}, model {Summary}";
    }
}

/// <summary>FNV-1a over what a body read.</summary>
internal struct Digest
{
    private ulong _hash;

    public readonly ulong Value => _hash;

    public void Add(ulong n)
    {
        if (_hash == 0)
            _hash = 14695981039346656037;
        for (var i = 0; i < 8; i++)
        {
            _hash ^= (byte)(n >> (8 * i));
            _hash *= 1099511628211;
        }
    }

    public void Add(ulong tag, ReadOnlySpan<byte> bytes)
    {
        Add(tag);
        Add((ulong)bytes.Length);
        foreach (var b in bytes)
        {
            _hash ^= b;
            _hash *= 1099511628211;
        }
    }
}
