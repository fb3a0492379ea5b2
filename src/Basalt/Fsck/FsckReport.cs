// What an fsck run found and did: every finding with its decision, counts per error id, the
// normal events that were only counted, and the fsck(8) exit code these add up to.
using Basalt.Format;

namespace Basalt.Fsck;

/// <summary>What happened to one finding.</summary>
public enum FsckOutcome
{
    /// <summary>The repair was applied to the image.</summary>
    Fixed,
    /// <summary>Check-only run: the repair ran on the overlay only; -y would apply it.</summary>
    WouldFix,
    /// <summary>A repair exists but was declined (a "no" answer, or -p for a repair that needs -y).</summary>
    NotFixed,
    /// <summary>The catalogue has no repair for this finding.</summary>
    NoRepair,
    /// <summary>
    /// A repair exists but the run holds every repair: the device is shorter than the filesystem
    /// and was not extended, so writing could reach the missing tail. The repair ran on an overlay only.
    /// </summary>
    Held,
}

/// <summary>One reported inconsistency: which, where, what exactly, and the decision.</summary>
public sealed record FsckFinding(
    FsckErrorId Id,
    FsckPassId? Pass,
    string Where,
    string Detail,
    FsckOutcome Outcome)
{
    public FsckErrorInfo Info => FsckCatalogue.Get(Id);

    public string Name => Info.Name;

    public bool Corrected => Outcome == FsckOutcome.Fixed;

    /// <summary>The decision as the finding's line prints it.</summary>
    public string OutcomeText => Outcome switch
    {
        FsckOutcome.Fixed => "fixing",
        FsckOutcome.WouldFix => "not fixing (check only; fsck -y repairs it)",
        FsckOutcome.NotFixed => Info.Policy == RepairPolicy.WithYes ? "not fixing (repair needs -y or a yes)" : "not fixing",
        FsckOutcome.Held => "not fixing (repairs are held: the device is shorter than the filesystem)",
        _ => "not fixing (no repair exists)",
    };

    /// <summary>One line: "name at where: detail, fixing".</summary>
    public string ToText() => $"{Name} at {Where}: {Detail}, {OutcomeText}";

    public override string ToString() => ToText();
}

/// <summary>fsck(8) exit status bits.</summary>
public static class FsckExitCodes
{
    public const int Clean = 0;
    public const int Corrected = 1;
    public const int Uncorrected = 4;
    public const int OperationalError = 8;
    public const int UsageError = 16;
    public const int Cancelled = 32;
}

public sealed class FsckReport
{
    public required string Device { get; init; }

    public required FsckMode Mode { get; init; }

    public bool ImplicitCheckOnly { get; init; }

    public required IReadOnlyList<FsckFinding> Findings { get; init; }

    /// <summary>Findings per error id (every detection, fixed or not).</summary>
    public required IReadOnlyDictionary<FsckErrorId, long> CountsById { get; init; }

    /// <summary>Normal events that are counted but are not errors (e.g. bsets beyond sectors_written).</summary>
    public required IReadOnlyDictionary<string, long> Counters { get; init; }

    /// <summary>The passes that ran, in order.</summary>
    public required IReadOnlyList<FsckPassInfo> Passes { get; init; }

    /// <summary>Which superblock copy the run mounted from, and why, when it was not the primary.</summary>
    public string? SuperblockNote { get; init; }

    /// <summary>True when the error counters were written into the superblock.</summary>
    public bool CountersPersisted { get; init; }

    /// <summary>Keys the repairs lost that a pass could name, up to <see cref="FsckOptions.MaxLostKeys"/>.</summary>
    public IReadOnlyList<(BtreeId Btree, Bpos Pos)> LostKeys { get; init; } = [];

    /// <summary>How many keys the repairs lost that a pass could name (keys under unreadable nodes are not among them).</summary>
    public long LostKeyCount { get; init; }

    public int Corrected => Findings.Count(f => f.Corrected);

    public int Uncorrected => Findings.Count(f => !f.Corrected);

    public bool Clean => Findings.Count == 0;

    public int ExitCode =>
        (Corrected > 0 ? FsckExitCodes.Corrected : 0) | (Uncorrected > 0 ? FsckExitCodes.Uncorrected : 0);
}
