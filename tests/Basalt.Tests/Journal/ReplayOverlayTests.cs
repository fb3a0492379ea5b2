// Reads before replay finishes (docs/recovery.md): once the interior keys are replayed, the replay
// overlay (the tree's leaves with the journal's leaf keys merged over them) must read exactly what
// the tree holds after the leaf keys are replayed: journal keys replace the disk's at their
// position, journal deletions hide them, and keys only one side has come through.
using Basalt.Format;
using Basalt.Fs;
using Basalt.Recovery;
using Basalt.TestKit;
using Basalt.Transactions;
using Xunit.Abstractions;

namespace Basalt.Tests.Journal;

public sealed class ReplayOverlayTests(ITestOutputHelper output)
{
    [Fact]
    public void The_overlay_before_leaf_replay_reads_what_the_tree_holds_after_it()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        using var fx = new BtreeFixture(seed: seed);
        static Bkey Key(int k) => new(new Bpos(1, (ulong)k * 13), KeyType.Cookie);
        // On disk: 3,000 keys written back and checkpointed.
        for (var i = 0; i < 3000; i += 100)
        {
            var first = i;
            fx.Fs.Transactor.Transact(t =>
            {
                for (var k = first; k < first + 100; k++)
                    t.Set(BtreeId.Test, Key(k), BitConverter.GetBytes(k));
            });
        }
        fx.CleanRemount();
        // In the journal only: overwrites, deletions and new keys, durable, nothing written back.
        var overwrites = 0;
        var deletes = 0;
        for (var n = 0; n < 60; n++)
        {
            fx.Fs.Transactor.Transact(t =>
            {
                for (var op = 0; op < 20; op++)
                {
                    var k = random.Next(4000);
                    if (random.Next(3) == 0)
                    {
                        if (t.TryGet(BtreeId.Test, Key(k).Pos, out _))
                        {
                            t.Delete(BtreeId.Test, Key(k).Pos);
                            deletes++;
                        }
                    }
                    else
                    {
                        t.Set(BtreeId.Test, Key(k), BitConverter.GetBytes(-k - n));
                        overwrites++;
                    }
                }
            }, CommitOptions.Durable);
        }
        output.WriteLine($"journal-only: {overwrites} sets, {deletes} deletions");
        Assert.True(deletes > 50 && overwrites > 200);
        fx.Fs.Close(sync: false);

        List<(Bkey Key, byte[] Value)>? seen = null;
        List<(Bkey Key, byte[] Value)>? middle = null;
        var (from, to) = (Key(1000).Pos, Key(2000).Pos);
        using var fs = BasaltFileSystem.Mount(fx.Base, new MountOptions
        {
            Journal = fx.JournalOptions,
            BeforeLeafReplay = overlay =>
            {
                seen = [.. overlay.Range(BtreeId.Test, Bpos.Min, Bpos.Max)];
                middle = [.. overlay.Range(BtreeId.Test, from, to)];
            },
        });
        Assert.NotNull(seen);
        Assert.True(fs.Recovery.KeysReplayed > 0, "the mount replayed the journal");
        var after = new List<(Bkey Key, byte[] Value)>();
        var it = fs.Btrees[BtreeId.Test].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
            after.Add((it.Key, it.Value.ToArray()));
        Assert.Equal(after.Count, seen!.Count);
        for (var i = 0; i < after.Count; i++)
        {
            Assert.Equal(after[i].Key.Pos, seen[i].Key.Pos);
            Assert.Equal(after[i].Value, seen[i].Value);
        }
        // A range inside the btree starts and ends exactly where the tree's does.
        Assert.Equal(after.Where(k => k.Key.Pos >= from && k.Key.Pos <= to).Select(k => k.Key.Pos), middle!.Select(k => k.Key.Pos));
    }
}
