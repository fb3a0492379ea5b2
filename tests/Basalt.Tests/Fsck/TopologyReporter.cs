using Basalt.Format;

namespace Basalt.Tests.Fsck;

/// <summary>An fsck reporter for the btree pass tests: records every finding and answers them all the same way.</summary>
internal sealed class TopologyReporter : IFsckReporter
{
    private readonly bool _repair;

    public TopologyReporter(bool repair) => _repair = repair;

    public List<(FsckErrorId Id, string Where, string Detail)> Findings { get; } = [];
    public Dictionary<string, long> Counts { get; } = [];

    public IReadOnlyList<FsckErrorId> Ids => Findings.Select(f => f.Id).ToList();

    public bool Report(FsckErrorId id, string where, string detail)
    {
        Findings.Add((id, where, detail));
        return _repair;
    }

    /// <summary>Keys the passes reported lost, in order.</summary>
    public List<(BtreeId Btree, Bpos Pos)> Lost { get; } = [];

    public void KeyLost(BtreeId btree, Bpos pos) => Lost.Add((btree, pos));

    public void Count(string what, long amount = 1) =>
        Counts[what] = Counts.GetValueOrDefault(what) + amount;

    public string ToText() => Findings.Count == 0
        ? "(no findings)"
        : string.Join("\n", Findings.Select(f => $"{FsckCatalogue.NameOf(f.Id)} at {f.Where}: {f.Detail}"));
}
