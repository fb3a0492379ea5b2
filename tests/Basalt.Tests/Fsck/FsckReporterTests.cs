using Basalt.Format;
using Basalt.Fsck;

namespace Basalt.Tests.Fsck;

public sealed class FsckReporterTests
{
    // One id of each policy.
    private const FsckErrorId AutomaticId = FsckErrorId.BsetBadChecksum;
    private const FsckErrorId WithYesId = FsckErrorId.BtreeNodeUnreadable;
    private const FsckErrorId NeverId = FsckErrorId.SbMemberInvalid;

    [Theory]
    [InlineData(FsckMode.Yes, true, true, false)]
    [InlineData(FsckMode.Preen, true, false, false)]
    [InlineData(FsckMode.CheckOnly, true, true, false)]
    public void Report_asks_for_the_repair_by_mode_and_policy(FsckMode mode, bool automatic, bool withYes, bool never)
    {
        Assert.Equal(RepairPolicy.Automatic, FsckCatalogue.Get(AutomaticId).Policy);
        Assert.Equal(RepairPolicy.WithYes, FsckCatalogue.Get(WithYesId).Policy);
        Assert.Equal(RepairPolicy.Never, FsckCatalogue.Get(NeverId).Policy);

        var reporter = new FsckReporter(new FsckOptions { Mode = mode });
        Assert.Equal(automatic, reporter.Report(AutomaticId, "here", "a"));
        Assert.Equal(withYes, reporter.Report(WithYesId, "here", "b"));
        Assert.Equal(never, reporter.Report(NeverId, "here", "c"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(100)]
    public void Lost_keys_are_all_counted_and_named_up_to_the_cap(int cap)
    {
        var reporter = new FsckReporter(new FsckOptions { Mode = FsckMode.Yes, MaxLostKeys = cap });
        for (ulong i = 0; i < 10; i++)
            reporter.KeyLost(BtreeId.Test, new Bpos(1, i));
        Assert.Equal(10, reporter.LostKeyCount);
        Assert.Equal(Math.Min(cap, 10), reporter.LostKeys.Count);
        Assert.Equal(Enumerable.Range(0, Math.Min(cap, 10)).Select(i => (BtreeId.Test, new Bpos(1, (ulong)i))), reporter.LostKeys);
    }

    [Fact]
    public void CheckOnly_repairs_where_yes_does_but_counts_nothing_as_corrected()
    {
        var yes = Run(FsckMode.Yes);
        var no = Run(FsckMode.CheckOnly);
        Assert.Equal(yes.Select(f => (f.Id, f.Where, f.Detail)), no.Select(f => (f.Id, f.Where, f.Detail)));
        Assert.Equal(2, yes.Count(f => f.Corrected));
        Assert.DoesNotContain(no, f => f.Corrected);
        Assert.Equal(2, no.Count(f => f.Outcome == FsckOutcome.WouldFix));
        Assert.Contains("not fixing", no[0].ToText(), StringComparison.Ordinal);
        Assert.EndsWith(", fixing", yes[0].ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Ask_answers_per_finding_and_all_answers_stick_per_id()
    {
        var answers = new Queue<FsckAnswer>([FsckAnswer.No, FsckAnswer.YesToAll, FsckAnswer.NoToAll]);
        var asked = 0;
        var reporter = new FsckReporter(new FsckOptions
        {
            Mode = FsckMode.Ask,
            Ask = _ => { asked++; return answers.Dequeue(); },
        });
        Assert.False(reporter.Report(AutomaticId, "n1", "x"));  // No
        Assert.True(reporter.Report(AutomaticId, "n2", "x"));   // YesToAll
        Assert.True(reporter.Report(AutomaticId, "n3", "x"));   // remembered
        Assert.False(reporter.Report(WithYesId, "n4", "x"));    // NoToAll
        Assert.False(reporter.Report(WithYesId, "n5", "x"));    // remembered
        Assert.False(reporter.Report(NeverId, "n6", "x"));      // never asked
        Assert.Equal(3, asked);
        Assert.Equal(3, reporter.CountsById[AutomaticId]);
        Assert.Equal(2, reporter.CountsById[WithYesId]);
        Assert.Equal(1, reporter.CountsById[NeverId]);
    }

    [Fact]
    public void Report_exit_code_combines_corrected_and_uncorrected_bits()
    {
        Assert.Equal(0, ReportOf(FsckMode.Yes).ExitCode);
        Assert.Equal(1, ReportOf(FsckMode.Yes, AutomaticId).ExitCode);
        Assert.Equal(4, ReportOf(FsckMode.CheckOnly, AutomaticId).ExitCode);
        Assert.Equal(5, ReportOf(FsckMode.Yes, AutomaticId, NeverId).ExitCode);
        Assert.Equal(5, ReportOf(FsckMode.Preen, AutomaticId, WithYesId).ExitCode);
    }

    [Fact]
    public void Count_accumulates_normal_events_without_findings()
    {
        var reporter = new FsckReporter(new FsckOptions { Mode = FsckMode.Yes });
        reporter.Count("bset beyond sectors_written");
        reporter.Count("bset beyond sectors_written", 2);
        Assert.Equal(3, reporter.Counters["bset beyond sectors_written"]);
        Assert.Equal(0, reporter.FindingCount);
    }

    private static IReadOnlyList<FsckFinding> Run(FsckMode mode)
    {
        var reporter = new FsckReporter(new FsckOptions { Mode = mode });
        reporter.Report(AutomaticId, "btree test level 0 node 4096", "bad csum");
        reporter.Report(WithYesId, "btree test level 1 node 8192", "unreadable");
        reporter.Report(NeverId, "superblock", "members");
        return reporter.Findings;
    }

    private static FsckReport ReportOf(FsckMode mode, params FsckErrorId[] ids)
    {
        var reporter = new FsckReporter(new FsckOptions { Mode = mode });
        foreach (var id in ids)
            reporter.Report(id, "w", "d");
        return new FsckReport
        {
            Device = "memory",
            Mode = mode,
            Findings = reporter.Findings,
            CountsById = reporter.CountsById,
            Counters = reporter.Counters,
            Passes = FsckCatalogue.Passes,
        };
    }
}
