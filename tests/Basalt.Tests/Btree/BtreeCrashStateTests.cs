using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Btree.BtreeTestData;

namespace Basalt.Tests.Btree;

/// <summary>
/// DESIGN §5 for the btree alone: every crash state of the device writes made by two Syncs
/// (ordered prefixes, drop-one and random subsets of the unflushed epoch, torn last writes),
/// reopened with the roots committed before the crash, reads back exactly the state of that
/// commit. This is what append-only nodes, flush-per-level and delayed slot reuse guarantee.
/// </summary>
public sealed class BtreeCrashStateTests(ITestOutputHelper output)
{
    private sealed record Commit(int WritesIssued, IReadOnlyList<BtreeRoot> Roots, SortedDictionary<Bpos, byte[]> Model);

    [Fact]
    public void Every_crash_state_of_two_syncs_reads_as_the_last_commit_before_the_crash()
    {
        var seed = TestSeed.Get(output);
        var rng = new Random(seed);
        using var fx = new BtreeFixture(slots: 256, seed: seed);
        var model = Fill(fx.Test, Enumerable.Range(0, 600).Select(i => (long)i * 3));
        fx.Engine.Sync();
        fx.Test.DeleteRange(BtreeFixture.Pos(300), BtreeFixture.Pos(900));
        foreach (var k in model.Keys.Where(k => k >= BtreeFixture.Pos(300) && k <= BtreeFixture.Pos(900)).ToList())
            model.Remove(k);
        fx.Engine.Sync();
        fx.Engine.Sync();
        var baseImage = fx.Memory.Contents.ToArray();
        var commits = new List<Commit> { new(0, fx.Committer.Roots, new SortedDictionary<Bpos, byte[]>(model)) };

        // The recorded session: churn, Sync, more churn, Sync.
        var recorder = new RecordingBlockDevice(new MemoryBlockDevice(baseImage));
        var committer = new MemoryRootCommitter();
        var live = new SortedDictionary<Bpos, byte[]>(model);
        committer.BeforeCommit = () => commits.Add(new(recorder.Log.Count, [], new SortedDictionary<Bpos, byte[]>(live)));
        var checker = new WriteOnceCheckingDevice(recorder);
        using (var engine = BtreeEngine.Open(checker, fx.Geometry, fx.Committer.Roots, new BtreeEngineOptions
        {
            NodeSpaceObserver = checker,
            Random = new Random(seed),
        }, committer))
        {
            var t = engine[BtreeId.Test];
            for (var round = 0; round < 2; round++)
            {
                for (var i = 0; i < 150; i++)
                {
                    var k = rng.Next(2500);
                    if (rng.Next(3) == 0)
                    {
                        t.Delete(BtreeFixture.Pos(k));
                        live.Remove(BtreeFixture.Pos(k));
                    }
                    else
                    {
                        var v = ValueOf(k, round + 1);
                        t.Insert(BtreeFixture.Pos(k), v);
                        live[BtreeFixture.Pos(k)] = v;
                    }
                }
                engine.Sync();
                commits[^1] = commits[^1] with { Roots = committer.Roots };
            }
            Assert.True(engine.Stats.Splits + engine.Stats.Merges + engine.Stats.Compactions > 0);
        }
        Assert.Equal(3, commits.Count);

        var enumerator = new CrashStateEnumerator(recorder.Log, new CrashStateOptions { RandomSubsets = 3, MaxTornVariants = 2, Seed = seed });
        var states = 0;
        foreach (var state in enumerator.AllStates())
        {
            // The last commit whose writes were all issued strictly before the crash point is
            // certainly done; at exactly its write count the commit may or may not have happened.
            var certain = commits.Last(c => c.WritesIssued < state.CrashPoint || c.WritesIssued == 0);
            CheckState(fx.Geometry, baseImage, state, certain);
            var boundary = commits.FirstOrDefault(c => c.WritesIssued == state.CrashPoint && c.WritesIssued > 0);
            if (boundary is not null && state.DurableCount == state.CrashPoint)
                CheckState(fx.Geometry, baseImage, state, boundary);
            states++;
        }
        output.WriteLine($"{recorder.Log.Count} writes, {states} crash states checked ({enumerator.DuplicatesDropped} duplicates dropped)");
        Assert.True(states > 20);
    }

    private static void CheckState(BtreeGeometry geometry, byte[] baseImage, CrashState state, Commit commit)
    {
        using var device = state.MaterialiseInMemory(baseImage);
        using var engine = BtreeEngine.Open(device, geometry, commit.Roots, new BtreeEngineOptions(), new MemoryRootCommitter());
        Assert.True(engine.MountProblems.Count == 0, $"{state}: {string.Join("; ", engine.MountProblems)}");
        var t = engine[BtreeId.Test];
        try
        {
            BtreeAssertions.AssertTopology(t);
            BtreeAssertions.AssertContents(t, commit.Model);
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"crash state {state} with the roots of the commit after write {commit.WritesIssued}: {e.Message}");
        }
    }
}
