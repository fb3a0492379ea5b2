// A failed journal write, node write (write-back) or device flush puts the filesystem into
// emergency read-only: the operation that hit it and every later mutation fail with
// EmergencyReadOnly carrying the original I/O error, nothing more is written, and after the disk
// is "replaced" (the same bytes mounted without the fault) every acknowledged commit is there,
// the state is the one after some commit no older than the last acknowledged, and fsck is clean.
using System.Security.Cryptography;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.TestKit;
using Basalt.Transactions;
using Xunit.Abstractions;
using static Basalt.Tests.Transactions.TransactionTestData;

namespace Basalt.Tests.Transactions;

public sealed class WriteErrorTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("journal write")]
    [InlineData("node write")]
    [InlineData("flush")]
    public void A_failed_write_enters_emergency_read_only_with_its_cause_and_loses_no_acknowledged_commit(string failure)
    {
        var seed = TestSeed.Get(output, $"{nameof(A_failed_write_enters_emergency_read_only_with_its_cause_and_loses_no_acknowledged_commit)} {failure}");
        var rng = new Random(seed);
        FaultyBlockDevice? faults = null;
        using var fx = new BtreeFixture(seed: seed, decorate: d => faults = new FaultyBlockDevice(d, seed, ownsInner: false));
        var model = new WorkloadModel();
        var history = new List<WorkloadModel> { model.Clone() };
        var acknowledged = 0;
        var plans = TransactionWorkload.Generate(rng, transactions: 124, keySpace: 250);
        for (var i = 0; i < 120; i++)
        {
            fx.Fs.Transact(t => TransactionWorkload.Run(t, plans[i]), plans[i].Durable ? CommitOptions.Durable : CommitOptions.Default);
            model.Apply(plans[i]);
            history.Add(model.Clone());
            if (plans[i].Durable)
                acknowledged = i + 1;
            if (i % 50 == 49)
            {
                fx.WriteBackAll(); // nodes reach the device too; everything so far is durable
                acknowledged = i + 1;
            }
        }
        if (failure == "node write")
        {
            fx.Sync();
            acknowledged = 120;
        }
        // The commit that meets the fault, had it been recovered (a failed write-back commits nothing:
        // the last commit is then 120).
        if (failure != "node write")
        {
            history.Add(history[^1].Clone());
            history[^1].Apply(plans[120]);
        }

        var sb = fx.Fs.Superblock;
        var ring = fx.Journal.Ring;
        BasaltException failed;
        switch (failure)
        {
            case "journal write":
                for (var b = 0; b < ring.Count; b++)
                    faults!.FailWrites(ring.OffsetOf(b), ring.BucketSize);
                failed = Assert.Throws<BasaltException>(() => fx.Fs.Transact(t => TransactionWorkload.Run(t, plans[120]), CommitOptions.Durable));
                Assert.True(faults!.Counters.WriteErrors > 0);
                break;
            case "node write":
                faults!.FailWrites((long)sb.NodeAreaOffset, (long)sb.NodeAreaLength);
                Assert.True(fx.Engine.DirtyNodeCount > 0);
                failed = Assert.Throws<BasaltException>(() => fx.Engine.WriteBack(null));
                Assert.True(faults.Counters.WriteErrors > 0);
                break;
            default:
                faults!.FailFlushes();
                failed = Assert.Throws<BasaltException>(() => fx.Fs.Transact(t => TransactionWorkload.Run(t, plans[120]), CommitOptions.Durable));
                Assert.True(faults.Counters.FlushErrors > 0);
                break;
        }

        // The failure names the original cause: the device's I/O error.
        Assert.Equal(ErrorCode.EmergencyReadOnly, failed.Code);
        var cause = fx.Fs.Emergency.Cause;
        Assert.NotNull(cause);
        Assert.True(fx.Engine.IsEmergencyReadOnly);
        Assert.Same(cause, failed.InnerException);
        Assert.Contains(CauseChain(failed), e => e is BasaltException { Code: ErrorCode.IoError } && e.Message.Contains("injected", StringComparison.Ordinal));
        Assert.Contains("injected", failed.Message, StringComparison.Ordinal);

        // Every later mutation fails fast with the same cause; reads keep working.
        var mutations = new (string What, Action Run)[]
        {
            ("transaction", () => fx.Fs.Transact(t => TransactionWorkload.Run(t, plans[121]))),
            ("durable transaction", () => fx.Fs.Transact(t => TransactionWorkload.Run(t, plans[122]), CommitOptions.Durable)),
            ("insert", () => fx.Test.Insert(new Bpos(9, 9), [1])),
            ("delete", () => fx.Test.Delete(BtreeFixture.Pos(1))),
            ("delete range", () => fx.Test.DeleteRange(Bpos.Min, Bpos.Max)),
            ("write-back", () => fx.Engine.WriteBack(null)),
            ("checkpoint", fx.Checkpoint),
        };
        foreach (var (what, run) in mutations)
        {
            var e = Assert.Throws<BasaltException>(run);
            Assert.True(e.Code == ErrorCode.EmergencyReadOnly, $"{what}: {e.Code}: {e.Message}");
            Assert.True(ReferenceEquals(cause, e.InnerException), $"{what}: the cause is {e.InnerException?.Message}");
        }
        Assert.True(ReadCounter(fx.Test) >= (ulong)acknowledged);
        Assert.True(fx.Test.TryGet(CounterPos, out _));

        // Nothing more reaches the device, not even at unmount.
        faults!.ClearRules();
        var image = SHA256.HashData(fx.Memory.Contents);
        fx.Fs.Close(sync: true);
        Assert.Equal(image, SHA256.HashData(fx.Memory.Contents));

        // "Replace the disk": the same bytes, no fault. Every acknowledged commit is back.
        fx.Remount();
        var k = (int)ReadCounter(fx.Test);
        output.WriteLine($"{failure}: acknowledged {acknowledged}, recovered {k}, recovery {fx.Fs.Recovery.ToText()}");
        Assert.InRange(k, acknowledged, history.Count - 1);
        Assert.True(history[k].Compare(fx.Test) is null, $"recovered {k}: {history[k].Compare(fx.Test)}");
        Assert.Null(CountedKeys.CheckSummary(fx.Test));
        fx.Fs.Close(sync: false);
        AssertFsckClean(fx.Memory);

        // And the filesystem carries on.
        fx.Remount();
        fx.Fs.Transact(t => TransactionWorkload.Run(t, plans[123]), CommitOptions.Durable);
        Assert.Equal((ulong)k + 1, ReadCounter(fx.Test));
    }
}
