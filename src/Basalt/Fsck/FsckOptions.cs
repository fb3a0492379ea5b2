// How an fsck run is asked to behave: the repair mode (fsck(8)'s -n/-y/-p or asking), and the
// callbacks through which a front end sees progress, findings and prompts. The library never
// writes to the console itself; the CLI decides between plain text and a terminal UI.
using Basalt.Format;

namespace Basalt.Fsck;

/// <summary>Which findings fsck repairs (fsck(8) flags).</summary>
public enum FsckMode
{
    /// <summary>-n: open the image read-only, run the repairing code path on a copy-on-write overlay, change nothing.</summary>
    CheckOnly,
    /// <summary>-y: repair everything the catalogue can repair (Automatic and WithYes).</summary>
    Yes,
    /// <summary>-p: repair only what the catalogue marks Automatic.</summary>
    Preen,
    /// <summary>No flag on a terminal: ask for every finding that has a repair (y/n/Y/N).</summary>
    Ask,
}

/// <summary>An answer to a repair prompt. The "all" answers apply to every later finding with the same id.</summary>
public enum FsckAnswer
{
    Yes,
    No,
    YesToAll,
    NoToAll,
}

public sealed class FsckOptions
{
    public FsckMode Mode { get; init; } = FsckMode.CheckOnly;

    /// <summary>
    /// True when the check-only mode was chosen because no flag was given and no terminal can
    /// answer prompts; the report says so.
    /// </summary>
    public bool ImplicitCheckOnly { get; init; }

    /// <summary>Asked for each finding in <see cref="FsckMode.Ask"/> mode. Required in that mode.</summary>
    public Func<FsckFinding, FsckAnswer>? Ask { get; init; }

    /// <summary>Called once per finding, after the repair decision was made.</summary>
    public Action<FsckFinding>? OnFinding { get; init; }

    /// <summary>Called when a pass starts.</summary>
    public Action<FsckPassInfo>? OnPassStarted { get; init; }

    /// <summary>Called when a pass ends, with the number of findings it reported.</summary>
    public Action<FsckPassInfo, int>? OnPassFinished { get; init; }

    public CancellationToken Cancellation { get; init; }

    /// <summary>True when the mode may write to the image (everything but check-only).</summary>
    public bool Writes => Mode != FsckMode.CheckOnly;

    /// <summary>Lost keys kept by name in the report (all of them are counted); 0 keeps none.</summary>
    public int MaxLostKeys { get; init; } = 100;

    /// <summary>Route fsck's node writes through the write-once checker (tests).</summary>
    public bool CheckWriteOnce { get; init; }

    /// <summary>
    /// Bytes the bounded passes (the backpointer checks) may use for their tables; when a table
    /// does not fit they take several passes over bucket or keyspace ranges. Default: a quarter of
    /// RAM, at most 1 GiB.
    /// </summary>
    public long MaxMem { get; init; } = Basalt.Fsck.Space.SpaceChecks.DefaultMaxMem;

    /// <summary>Journal tuning for fsck's mount; defaults when null.</summary>
    public Basalt.Journal.JournalOptions? Journal { get; init; }
}
