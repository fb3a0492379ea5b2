// Accounting as deltas: transactions journal accounting_delta keys, the commit folds each into the
// accounting key with its version (seq, ordinal), and replay folds a delta only when the key does
// not hold it yet. A broken version (none, or a seq without the ordinal) counts a delta twice or
// not at all after a crash, which check_allocations reports.
using Basalt.Alloc;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck.Space;
using Basalt.Superblocks;
using Basalt.TestKit;
using Basalt.Transactions;
using Xunit.Abstractions;

namespace Basalt.Tests.Data;

public sealed class AccountingDeltaTests(ITestOutputHelper output)
{
    private static FormatOptions Small => new()
    {
        BlockSize = 512,
        BucketSize = 4096,
        NodeSize = 4096,
        Uuid = new Guid("1f0b8e3a-6c2d-4a91-b7e5-3d9c0a4f2e61"),
    };

    private static MountOptions Manual => new() { Space = new SpaceOptions { BackgroundWorker = false } };

    private sealed class Recorder : ICommitObserver
    {
        public List<BtreeUpdate> Accounting { get; } = [];

        public void Committed(IReadOnlyList<BtreeUpdate> updates, ulong seq) =>
            Accounting.AddRange(updates.Where(u => u.Btree == BtreeId.Accounting));
    }

    [Fact]
    public void A_data_write_journals_deltas_and_the_btree_holds_their_sum()
    {
        using var device = new MemoryBlockDevice(4 * 1024 * 1024, "deltas.img");
        using var fs = BasaltFileSystem.Format(device, Small, Manual);
        var before = fs.Space.Usage(0);
        var recorder = new Recorder();
        fs.Transactor.AddCommitObserver(recorder);
        fs.Data.Write(1, 0, new byte[3 * 4096]);
        var after = fs.Space.Usage(0);

        Assert.NotEmpty(recorder.Accounting);
        Assert.All(recorder.Accounting, u => Assert.Equal(KeyType.AccountingDelta, u.Key.Type));
        // The deltas add up to the change of the totals, type by type.
        foreach (var type in BucketDataTypes.All)
        {
            var sum = recorder.Accounting.Where(u => u.Key.Pos == DeviceUsage.Position(0, type))
                .Select(u => DeviceUsage.TryReadDelta(u.Value.Span, out var d, out _) ? d : throw new InvalidOperationException("bad delta"))
                .Aggregate(default(DeviceUsage), (a, d) => a.Add(d));
            Assert.Equal(after[type].Subtract(before[type]), sum);
        }
        Assert.Equal(before[BucketDataType.Free].Buckets - 3, after[BucketDataType.Free].Buckets);
        // The nodes hold totals only, each folded at the version of the newest delta.
        var it = fs.Btrees[BtreeId.Accounting].Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
            Assert.Equal(KeyType.Accounting, it.Key.Type);
        var user = fs.Btrees[BtreeId.Accounting].TryGet(DeviceUsage.Position(0, BucketDataType.User), out var value) ? value : [];
        Assert.True(DeviceUsage.FoldedVersionOf(user).Seq > 0, "the user counters carry no folded version");
    }

    [Fact]
    public void A_delta_is_valid_in_the_journal_and_never_in_a_node()
    {
        var key = new Bkey(DeviceUsage.Position(0, BucketDataType.User), KeyType.AccountingDelta);
        var delta = new DeviceUsage(-1, -8, 0).ToArray();
        Assert.True(KeyValidation.ValidateJournalKey(BtreeId.Accounting, 0, key, delta, 4096, out _, out var detail), detail);
        Assert.False(KeyValidation.Validate(BtreeId.Accounting, 0, key, delta, Bpos.Min, Bpos.Max, 4096, out var id, out _));
        Assert.Equal(FsckErrorId.BkeyInvalidTypeForBtree, id);
        // A total may not go below zero; a delta may.
        Assert.False(DeviceUsage.TryRead(delta, out _, out _));
        Assert.True(DeviceUsage.TryReadDelta(delta, out var read, out _));
        Assert.Equal(new DeviceUsage(-1, -8, 0), read);
    }

    [Fact]
    public void Replay_over_nodes_written_mid_workload_counts_every_delta_once()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        using var device = new MemoryBlockDevice(8 * 1024 * 1024, "replay.img");
        IReadOnlyDictionary<BucketDataType, DeviceUsage> expected;
        using (var fs = BasaltFileSystem.Format(device, Small, Manual))
        {
            // Commits without a flush share journal entries; write-back in between puts the
            // accounting leaf on disk holding some of an entry's deltas and not the rest.
            for (var i = 0; i < 150; i++)
            {
                var data = new byte[random.Next(1, 5) * 4096];
                random.NextBytes(data);
                fs.Data.Write((ulong)(1 + random.Next(4)), random.Next(8) * 4096L, data);
                if (random.Next(6) == 0)
                    fs.Data.Punch((ulong)(1 + random.Next(4)), random.Next(4) * 4096L, random.Next(1, 6) * 4096L);
                if (i % 5 == 3)
                    fs.Btrees.WriteBack(null);
            }
            fs.Sync();
            expected = fs.Space.Usage(0);
            fs.Close(sync: false);
        }
        using var again = BasaltFileSystem.Mount(device, Manual);
        var recovered = again.Space.Usage(0);
        foreach (var type in BucketDataTypes.All)
            Assert.True(expected[type] == recovered[type], $"{type.ToText()}: before the crash {expected[type].ToText()}, after replay {recovered[type].ToText()}");
        Assert.True(SpaceChecks.Run(again, repair: false, out var findings), string.Join("\n", findings.Select(f => f.ToString())));
        Assert.Empty(findings);
    }
}
