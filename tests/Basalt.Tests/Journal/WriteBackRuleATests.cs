// Rule (a) (docs/format.md): a bset carrying journal seq N is written only after entry N is
// durable. It is enforced by an assertion in the engine's node writer rather than found by the
// crash search: with the debug-only bug that skips the write-back round's wait, the write must be
// refused before it reaches the device, the filesystem goes emergency read-only with that cause,
// and every commit whose flush returned is still recovered.
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.TestKit;
using Basalt.Transactions;

namespace Basalt.Tests.Journal;

public sealed class WriteBackRuleATests
{
    private static Bkey Key(int i) => new(new Bpos(1, (ulong)i), KeyType.Cookie);

    [Fact]
    public void A_bset_written_before_its_journal_entry_is_durable_is_refused_and_nothing_flushed_is_lost()
    {
        using var fx = new BtreeFixture(seed: 7);
        fx.DebugFaults = new BtreeDebugFaults { WriteBeforeJournalDurable = true };
        fx.CleanRemount();
        // Durable commits first: these must survive whatever follows.
        for (var i = 0; i < 20; i++)
            fx.Fs.Transactor.Transact(t => t.Set(BtreeId.Test, Key(i), [1, 2, 3]), CommitOptions.Durable);
        // Then commits the manual journal has not written: their keys are in dirty nodes only.
        for (var i = 20; i < 40; i++)
            fx.Fs.Transactor.Transact(t => t.Set(BtreeId.Test, Key(i), [4, 5, 6]));
        var writesBefore = fx.Engine.Stats.NodeWrites;

        var ex = Assert.Throws<BasaltException>(() => fx.Engine.WriteBack(null));
        Assert.Equal(ErrorCode.EmergencyReadOnly, ex.Code);
        var cause = Assert.IsType<BasaltException>(fx.Engine.EmergencyCause);
        Assert.Equal(ErrorCode.InvariantViolated, cause.Code);
        Assert.Contains("written before the journal is durable", cause.Message, StringComparison.Ordinal);
        Assert.True(fx.Engine.IsEmergencyReadOnly, "the refused write put the filesystem in emergency read-only");
        Assert.Equal(writesBefore, fx.Engine.Stats.NodeWrites);
        var later = Assert.Throws<BasaltException>(() => fx.Fs.Transactor.Transact(t => t.Set(BtreeId.Test, Key(99), [9])));
        Assert.Contains("written before the journal is durable", later.ToString(), StringComparison.Ordinal);

        // A remount without the bug recovers every durable commit.
        fx.DebugFaults = null;
        fx.Remount();
        for (var i = 0; i < 20; i++)
            Assert.True(fx.Test.TryGet(Key(i).Pos, out _), $"durable key {i} lost");
    }
}
