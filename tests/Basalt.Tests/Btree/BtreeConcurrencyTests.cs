using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Btree.BtreeTestData;

namespace Basalt.Tests.Btree;

/// <summary>
/// Readers scan and look up while one writer inserts, overwrites, deletes and syncs. Keys with an
/// even number are permanent once written (overwritten only with the same value); odd keys come
/// and go. Every reader must see sorted, unique keys and every permanent key the writer had
/// finished before the reader's operation started.
/// </summary>
public sealed class BtreeConcurrencyTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(256L * 1024 * 1024)]
    [InlineData(24L * 4096)]
    public void Readers_see_sorted_unique_keys_and_everything_committed_before_they_started(long cacheBudget)
    {
        var seed = TestSeed.Get(output);
        using var fx = new BtreeFixture(cacheBudget: cacheBudget, seed: seed);
        const int initial = 3000;
        Fill(fx.Test, Enumerable.Range(0, initial).Select(i => (long)i * 2));
        fx.Checkpoint();
        var done = 0L;
        var permanentBelow = (long)initial; // permanent keys are 2*i for i < permanentBelow
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var readerOps = 0L;

        var writer = new Thread(() =>
        {
            try
            {
                var rng = new Random(seed);
                for (var round = 0; round < 60; round++)
                {
                    for (var j = 0; j < 100; j++)
                    {
                        var p = Interlocked.Read(ref permanentBelow);
                        fx.Test.Insert(BtreeFixture.Pos(p * 2), ValueOf(p * 2));
                        Interlocked.Exchange(ref permanentBelow, p + 1);
                        var odd = (rng.Next((int)p) * 2) + 1;
                        fx.Test.Insert(BtreeFixture.Pos(odd), ValueOf(odd));
                        fx.Test.Delete(BtreeFixture.Pos((rng.Next((int)p) * 2) + 1));
                        var even = rng.Next((int)p) * 2;
                        fx.Test.Insert(BtreeFixture.Pos(even), ValueOf(even));
                    }
                    if (round % 10 == 9)
                    {
                        var a = (rng.Next((int)Interlocked.Read(ref permanentBelow)) * 2) + 1;
                        // Only odd keys in a range: delete them one by one through the range API
                        // on a span holding no permanent key (a single odd position).
                        fx.Test.DeleteRange(BtreeFixture.Pos(a), BtreeFixture.Pos(a));
                    }
                    if (round % 3 == 2)
                        fx.Checkpoint();
                }
            }
            catch (Exception e)
            {
                failures.Enqueue($"writer: {e}");
            }
            finally
            {
                Interlocked.Exchange(ref done, 1);
            }
        });

        var readers = Enumerable.Range(0, 3).Select(r => new Thread(() =>
        {
            try
            {
                var rng = new Random(seed + r + 1);
                while (Interlocked.Read(ref done) == 0 && failures.IsEmpty)
                {
                    var committed = Interlocked.Read(ref permanentBelow);
                    var mode = rng.Next(4);
                    if (mode == 0)
                    {
                        for (var n = 0; n < 200; n++)
                        {
                            var k = rng.Next((int)committed) * 2L;
                            if (!fx.Test.TryGet(BtreeFixture.Pos(k), out var v) || !v.AsSpan().SequenceEqual(ValueOf(k)))
                                failures.Enqueue($"reader {r}: permanent key {k} missing or wrong");
                        }
                    }
                    else if (mode == 1)
                    {
                        // From an odd position the first key is that odd key, if present, or the permanent one after it.
                        var buffer = new byte[128];
                        for (var n = 0; n < 200; n++)
                        {
                            var k = (rng.Next((int)committed - 1) * 2L) + 1;
                            if (!fx.Test.TryGetAtOrAfter(BtreeFixture.Pos(k), Bpos.Max, buffer, out var key, out var length))
                            {
                                failures.Enqueue($"reader {r}: nothing at or after key {k}");
                                continue;
                            }
                            var found = (long)((key.Pos.Inode * 1000) + key.Pos.Offset);
                            if ((found != k && found != k + 1) || !buffer.AsSpan(0, length).SequenceEqual(ValueOf(found)))
                                failures.Enqueue($"reader {r}: at or after key {k}: key {found} ({key.Pos.ToText()}) or its value is wrong");
                        }
                    }
                    else
                    {
                        var reverse = rng.Next(2) == 0;
                        var it = fx.Test.Iterate(Bpos.Min, Bpos.Max, reverse);
                        var seen = 0L;
                        Bpos? last = null;
                        while (it.MoveNext())
                        {
                            var pos = it.Key.Pos;
                            if (last is { } l && (reverse ? pos >= l : pos <= l))
                                failures.Enqueue($"reader {r}: {pos.ToText()} after {l.ToText()} (reverse {reverse})");
                            last = pos;
                            var k = (long)((pos.Inode * 1000) + pos.Offset);
                            if (!it.Value.SequenceEqual(ValueOf(k)))
                                failures.Enqueue($"reader {r}: wrong value at {k}");
                            if (k % 2 == 0 && k / 2 < committed)
                                seen++;
                        }
                        if (seen != committed)
                            failures.Enqueue($"reader {r}: saw {seen} of {committed} permanent keys (reverse {reverse})");
                    }
                    Interlocked.Increment(ref readerOps);
                }
            }
            catch (Exception e)
            {
                failures.Enqueue($"reader {r}: {e}");
            }
        })).ToList();

        // Syncs from another thread too: the writer keeps changing nodes while their images are
        // being written (and Syncs from two threads serialise).
        var syncs = 0;
        var syncer = new Thread(() =>
        {
            try
            {
                var synced = 0L;
                while (Interlocked.Read(ref done) == 0 && failures.IsEmpty)
                {
                    var progress = Interlocked.Read(ref permanentBelow);
                    if (progress - synced < 40)
                    {
                        Thread.Yield();
                        continue;
                    }
                    fx.Checkpoint();
                    synced = progress;
                    syncs++;
                }
            }
            catch (Exception e)
            {
                failures.Enqueue($"syncer: {e}");
            }
        });

        writer.Start();
        syncer.Start();
        readers.ForEach(t => t.Start());
        Assert.True(writer.Join(TimeSpan.FromSeconds(90)), "writer did not finish: deadlock?");
        Assert.True(syncer.Join(TimeSpan.FromSeconds(30)), "syncer did not finish: deadlock?");
        foreach (var t in readers)
            Assert.True(t.Join(TimeSpan.FromSeconds(30)), "reader did not finish: deadlock?");
        Assert.True(failures.IsEmpty, string.Join(Environment.NewLine, failures.Take(10)));
        output.WriteLine($"reader operations {readerOps}, background syncs {syncs}; {fx.Engine.Stats.ToText()}");
        Assert.True(readerOps > 3);
        Assert.True(syncs > 0);

        fx.Checkpoint();
        fx.Remount();
        BtreeAssertions.AssertTopology(fx.Test);
        var it2 = fx.Test.Iterate(Bpos.Min, Bpos.Max);
        var evens = 0;
        while (it2.MoveNext())
        {
            if (it2.Key.Pos.Offset % 2 == 0)
                evens++;
        }
        Assert.Equal(permanentBelow, evens);
    }
}
