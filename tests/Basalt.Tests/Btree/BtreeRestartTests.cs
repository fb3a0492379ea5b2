using Basalt.Btree;
using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Btree.BtreeTestData;

namespace Basalt.Tests.Btree;

/// <summary>Every engine operation is restartable: random injected restarts change no result.</summary>
public sealed class BtreeRestartTests(ITestOutputHelper output)
{
    [Fact]
    public void Operations_give_the_same_results_under_injected_restarts()
    {
        var seed = TestSeed.Get(output, nameof(Operations_give_the_same_results_under_injected_restarts));
        var rng = new Random(seed);
        var injection = new RestartInjection(seed, 0.3);
        using var fx = new BtreeFixture(seed: seed, cacheBudget: 24L * 4096) { RestartInjection = injection };
        fx.Remount();
        var model = new SortedDictionary<Bpos, byte[]>();
        for (var op = 0; op < 6000; op++)
        {
            var pos = BtreeFixture.Pos(rng.Next(3000));
            switch (rng.Next(10))
            {
                case < 5:
                    var value = ValueOf(rng.Next(1000));
                    fx.Test.Insert(pos, value);
                    model[pos] = value;
                    break;
                case < 7:
                    Assert.Equal(model.Remove(pos), fx.Test.Delete(pos));
                    break;
                case 7:
                    var end = BtreeFixture.Pos(rng.Next(3000));
                    var expected = model.Keys.Where(k => k >= pos && k <= end).ToList();
                    Assert.Equal(expected.Count, fx.Test.DeleteRange(pos, end));
                    expected.ForEach(k => model.Remove(k));
                    break;
                default:
                    Assert.Equal(model.TryGetValue(pos, out var v), fx.Test.TryGet(pos, out var got));
                    if (v is not null)
                        Assert.Equal(v, got);
                    break;
            }
            if (op % 1500 == 1499)
            {
                fx.Checkpoint();
                fx.Remount();
            }
        }
        BtreeAssertions.AssertContents(fx.Test, model);
        BtreeAssertions.AssertTopology(fx.Test);
        Assert.True(injection.Injected > 1000, $"only {injection.Injected} restarts injected");
    }
}
