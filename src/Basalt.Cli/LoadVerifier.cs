// `debug load --verify`: compares every key in every thread's range of the test btree with what
// transactions 1..k_t of that thread leave behind (LoadModel.ExpectedSlots), k_t being the
// thread's counter on the image or a number the caller gives (the demo checks a repaired image
// against the counters it recovered before the damage). The expected slots of one thread are
// held at a time, sorted, and merged with the btree's keys in position order: memory is one
// entry per live key of one thread, whatever the image holds.
using System.Globalization;
using Basalt.Format;
using Basalt.Fs;

namespace Basalt.Cli;

internal enum LoadDifferenceKind
{
    /// <summary>An expected key is absent.</summary>
    Missing,

    /// <summary>A key the transactions do not leave is present.</summary>
    Extra,

    /// <summary>An expected key holds another value or type.</summary>
    Wrong,

    /// <summary>The counter is not a transaction number: the thread's keys cannot be checked.</summary>
    Counter,
}

internal sealed record LoadDifference(int Thread, Bpos Pos, LoadDifferenceKind Kind, string Detail)
{
    public string KindText => Kind.ToString().ToLowerInvariant();

    public string ToText() => string.Create(CultureInfo.InvariantCulture, $"thread {Thread}: {Pos.ToText()}: {KindText}: {Detail}");
}

/// <summary>One thread's result: the transaction it was checked at (null: unreadable counter) and its expected keys.</summary>
internal sealed record LoadThreadVerification(int Thread, long? Recovered, long Keys, long Differences);

internal sealed record LoadVerification(IReadOnlyList<LoadThreadVerification> Threads)
{
    public long Keys => Threads.Sum(t => t.Keys);

    public long Differences => Threads.Sum(t => t.Differences);
}

internal static class LoadVerifier
{
    /// <summary>
    /// Checks every thread of <paramref name="p"/> on <paramref name="fs"/>; each difference goes to
    /// <paramref name="onDifference"/> in position order. <paramref name="counters"/>, when given,
    /// replaces the counters read from the image (the counter key itself is then compared as well).
    /// </summary>
    public static LoadVerification Verify(BasaltFileSystem fs, LoadParameters p, IReadOnlyList<long>? counters,
        Action<LoadDifference> onDifference, CancellationToken cancellation = default)
    {
        if (counters is not null && counters.Count != p.Threads)
            throw new ArgumentException($"{counters.Count} counters for {p.Threads} threads", nameof(counters));
        var threads = new List<LoadThreadVerification>(p.Threads);
        for (var t = 0; t < p.Threads; t++)
            threads.Add(VerifyThread(fs, p, t, counters?[t], onDifference, cancellation));
        return new LoadVerification(threads);
    }

    private static LoadThreadVerification VerifyThread(BasaltFileSystem fs, LoadParameters p, int thread, long? given,
        Action<LoadDifference> onDifference, CancellationToken cancellation)
    {
        var tree = fs.Btrees[BtreeId.Test];
        var counterPos = LoadModel.CounterPos(thread);
        long differences = 0;
        void Report(Bpos pos, LoadDifferenceKind kind, string detail)
        {
            differences++;
            onDifference(new LoadDifference(thread, pos, kind, detail));
        }

        long k;
        if (given is { } g)
        {
            k = g;
        }
        else if (!tree.TryGet(counterPos, out var counter))
        {
            k = 0;
        }
        else if (!LoadModel.TryReadCounter(p, thread, counter, out k))
        {
            Report(counterPos, LoadDifferenceKind.Counter,
                $"the counter holds {LoadModel.DescribeCounter(p, thread, counter)}; the thread's keys are not checked");
            return new LoadThreadVerification(thread, null, 0, differences);
        }

        var live = LoadModel.ExpectedSlots(p, thread, k, cancellation);
        var expected = live.Keys.ToArray();
        Array.Sort(expected);
        var keys = expected.LongLength + (k > 0 ? 1 : 0);
        var buffer = new byte[p.ValueBytes];
        var next = 0;
        var counterSeen = false;

        void Missing(int slot) => Report(LoadModel.SlotPos(thread, slot), LoadDifferenceKind.Missing,
            string.Create(CultureInfo.InvariantCulture, $"slot {slot} is absent; expected the value of transaction {live[slot]}"));

        var it = tree.Iterate(LoadModel.RangeStart(thread), LoadModel.RangeEnd(thread));
        while (it.MoveNext())
        {
            var pos = it.Key.Pos;
            var value = it.Value;
            if (pos == counterPos)
            {
                counterSeen = true;
                if (given is null)
                    continue; // k was read from this very key
                if (k == 0)
                    Report(pos, LoadDifferenceKind.Extra, $"a counter holding {LoadModel.DescribeCounter(p, thread, value)}; expected none (transaction 0)");
                else if (!LoadModel.TryReadCounter(p, thread, value, out var found) || found != k)
                    Report(pos, LoadDifferenceKind.Wrong, $"the counter holds {LoadModel.DescribeCounter(p, thread, value)}; expected transaction {k}");
                continue;
            }
            var slot = LoadModel.SlotOf(thread, pos, p.Keys);
            if (slot < 0)
            {
                Report(pos, LoadDifferenceKind.Extra, $"not a key of the load: a {it.Key.Type.ToText()} key holding {LoadModel.DescribeValue(value, thread, -1)}");
                continue;
            }
            while (next < expected.Length && expected[next] < slot)
                Missing(expected[next++]);
            if (next < expected.Length && expected[next] == slot)
            {
                var writer = live[slot];
                LoadModel.ValueInto(p, thread, writer, slot, buffer);
                if (it.Key.Type != KeyType.Cookie)
                    Report(pos, LoadDifferenceKind.Wrong, $"a {it.Key.Type.ToText()} key; expected a cookie with the value of transaction {writer}");
                else if (value.CommonPrefixLength(buffer) is var same && (same != buffer.Length || value.Length != buffer.Length))
                {
                    Report(pos, LoadDifferenceKind.Wrong, string.Create(CultureInfo.InvariantCulture,
                        $"holds {LoadModel.DescribeValue(value, thread, slot)}, which differs from the value of transaction {writer} at byte {same}"));
                }
                next++;
            }
            else
            {
                Report(pos, LoadDifferenceKind.Extra, string.Create(CultureInfo.InvariantCulture,
                    $"slot {slot} holds {LoadModel.DescribeValue(value, thread, slot)}; transactions 1..{k} leave it empty"));
            }
            cancellation.ThrowIfCancellationRequested();
        }
        while (next < expected.Length)
            Missing(expected[next++]);
        if (given is not null && k > 0 && !counterSeen)
            Report(counterPos, LoadDifferenceKind.Missing, string.Create(CultureInfo.InvariantCulture, $"the counter is absent; expected transaction {k}"));
        return new LoadThreadVerification(thread, k, keys, differences);
    }
}
