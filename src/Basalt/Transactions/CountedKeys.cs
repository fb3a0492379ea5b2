// The test btree's counted keys: a key type whose trigger keeps a summary key exact, the way the
// allocation and accounting triggers will keep derived state exact. A counted key's value is an
// 8-byte little-endian number; the summary key, a cookie at SummaryPos, holds {u64 count, u64 sum}
// of every counted key in the btree. Every transaction that adds, changes or removes counted
// keys updates the summary in the same commit, so the invariant "summary = count and sum of the
// counted keys" holds in every state a crash can leave (tests check it after every workload).
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Format;

namespace Basalt.Transactions;

public static class CountedKeys
{
    /// <summary>Where the summary key lives in the test btree.</summary>
    public static readonly Bpos SummaryPos = new(ulong.MaxValue, 0);

    private static readonly Lazy<bool> s_registration = new(() =>
    {
        KeyTypeTable.Register(KeyType.Counted, new KeyTypeBehaviour(Validate, Print, Trigger));
        return true;
    });

    /// <summary>Registers the counted key type's behaviour (once; the transaction layer does it at start-up).</summary>
    public static void Register() => _ = s_registration.Value;

    /// <summary>The value of a counted key.</summary>
    public static byte[] Value(ulong n)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, n);
        return bytes;
    }

    /// <summary>Reads the summary (0, 0 when the btree has none).</summary>
    public static (ulong Count, ulong Sum) ReadSummary(Basalt.Btree.Btree tree)
    {
        ArgumentNullException.ThrowIfNull(tree);
        return tree.TryGet(SummaryPos, out var v) && v.Length == 16
            ? (BinaryPrimitives.ReadUInt64LittleEndian(v), BinaryPrimitives.ReadUInt64LittleEndian(v.AsSpan(8)))
            : (0, 0);
    }

    /// <summary>
    /// Scans the btree and returns null when the summary equals the count and sum of its counted
    /// keys, else what differs.
    /// </summary>
    public static string? CheckSummary(Basalt.Btree.Btree tree)
    {
        ArgumentNullException.ThrowIfNull(tree);
        ulong count = 0, sum = 0;
        var it = tree.Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            if (it.Key.Type == KeyType.Counted)
            {
                count++;
                sum += BinaryPrimitives.ReadUInt64LittleEndian(it.Value);
            }
        }
        var (c, s) = ReadSummary(tree);
        return c == count && s == sum ? null : $"summary says {c} counted keys summing to {s}; the btree holds {count} summing to {sum}";
    }

    private static bool Validate(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        problem = value.Length == 8 ? null : $"counted value of {value.Length} bytes (must be 8)";
        return problem is null;
    }

    private static string Print(ReadOnlySpan<byte> value) =>
        value.Length == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(value).ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{value.Length} bytes";

    private static void Trigger(ITriggerTransaction t, BtreeId btree, in KeyVersion oldKey, in KeyVersion newKey)
    {
        ulong count = 0, sum = 0;
        if (oldKey.Key.Type == KeyType.Counted)
        {
            count--;
            sum -= BinaryPrimitives.ReadUInt64LittleEndian(oldKey.Value.Span);
        }
        if (newKey.Key.Type == KeyType.Counted)
        {
            count++;
            sum += BinaryPrimitives.ReadUInt64LittleEndian(newKey.Value.Span);
        }
        if (count == 0 && sum == 0)
            return;
        var summary = new byte[16];
        if (t.TryGet(btree, SummaryPos, out _, out var current) && current.Length == 16)
        {
            count += BinaryPrimitives.ReadUInt64LittleEndian(current);
            sum += BinaryPrimitives.ReadUInt64LittleEndian(current.AsSpan(8));
        }
        BinaryPrimitives.WriteUInt64LittleEndian(summary, count);
        BinaryPrimitives.WriteUInt64LittleEndian(summary.AsSpan(8), sum);
        t.Set(btree, new Bkey(SummaryPos, KeyType.Cookie), summary);
    }
}
