// The reporter of the check helpers tests call after a workload (SpaceChecks.Run, FileChecks.Run):
// it collects every finding and tells the pass to repair exactly when the caller asked for repairs.
using Basalt.Format;

namespace Basalt.Fsck;

/// <summary>Collects findings; repairs exactly when asked to.</summary>
internal sealed class CollectingReporter(bool repair) : IFsckReporter
{
    private readonly List<FsckFinding> _findings = [];

    public FsckPassId? CurrentPass { get; set; }

    public IReadOnlyList<FsckFinding> Findings => _findings;

    public bool Report(FsckErrorId id, string where, string detail)
    {
        _findings.Add(new FsckFinding(id, CurrentPass, where, detail, repair ? FsckOutcome.Fixed : FsckOutcome.NotFixed));
        return repair;
    }

    public void Count(string what, long amount = 1)
    {
    }
}
