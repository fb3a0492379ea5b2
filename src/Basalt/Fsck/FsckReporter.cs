// The fsck decision procedure (digest §11.2, simplified): every detection is counted per error
// id, then the repair is decided from the run's mode and the id's repair policy.
//
//   policy      -y     -p     ask                -n (check only)
//   Automatic   fix    fix    prompt             repair on the overlay, report "not fixing"
//   WithYes     fix    leave  prompt             repair on the overlay, report "not fixing"
//   Never       leave  leave  leave              leave
//
// In check-only mode Report returns true exactly where -y would, so the passes run the very
// code path -y runs; the device underneath is a copy-on-write overlay, which is what makes the
// findings of -n and -y identical by construction while the image stays untouched.
//
// Held repairs (HoldRepairs): once a run knows it must not write (the device is shorter than the
// filesystem and was not extended), every later finding with a repair is Held in every mode: the
// repair runs on an overlay exactly as in a check-only run, and nothing is asked.
using Basalt.Format;

namespace Basalt.Fsck;

public sealed class FsckReporter : IFsckReporter
{
    private readonly FsckOptions _options;
    private readonly Lock _lock = new();
    private readonly List<FsckFinding> _findings = [];
    private readonly Dictionary<FsckErrorId, long> _countsById = [];
    private readonly Dictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly Dictionary<FsckErrorId, bool> _answerForAll = [];
    private readonly List<(BtreeId Btree, Bpos Pos)> _lostKeys = [];
    private long _lostKeyCount;

    public FsckReporter(FsckOptions options)
    {
        if (options.Mode == FsckMode.Ask && options.Ask is null)
            throw new ArgumentException("ask mode needs a prompt callback", nameof(options));
        _options = options;
    }

    /// <summary>The pass whose findings are being reported now (set by the driver).</summary>
    public FsckPassId? CurrentPass { get; set; }

    /// <summary>True once <see cref="HoldRepairs"/> was called: later repairs run on an overlay only.</summary>
    public bool RepairsHeld { get; private set; }

    /// <summary>From now on every finding with a repair is <see cref="FsckOutcome.Held"/> (the caller writes to an overlay).</summary>
    public void HoldRepairs()
    {
        lock (_lock)
            RepairsHeld = true;
    }

    public IReadOnlyList<FsckFinding> Findings
    {
        get
        {
            lock (_lock)
                return [.. _findings];
        }
    }

    public IReadOnlyDictionary<FsckErrorId, long> CountsById
    {
        get
        {
            lock (_lock)
                return new Dictionary<FsckErrorId, long>(_countsById);
        }
    }

    public IReadOnlyDictionary<string, long> Counters
    {
        get
        {
            lock (_lock)
                return new Dictionary<string, long>(_counters, StringComparer.Ordinal);
        }
    }

    public int FindingCount
    {
        get
        {
            lock (_lock)
                return _findings.Count;
        }
    }

    public bool Report(FsckErrorId id, string where, string detail)
    {
        _options.Cancellation.ThrowIfCancellationRequested();
        var info = FsckCatalogue.Get(id);
        FsckFinding finding;
        lock (_lock)
        {
            _countsById[id] = _countsById.GetValueOrDefault(id) + 1;
            var outcome = Decide(info, where, detail);
            finding = new FsckFinding(id, CurrentPass, where, detail, outcome);
            _findings.Add(finding);
        }
        _options.OnFinding?.Invoke(finding);
        return finding.Outcome is FsckOutcome.Fixed or FsckOutcome.WouldFix or FsckOutcome.Held;
    }

    /// <summary>Keys repairs lost, by name, up to <see cref="FsckOptions.MaxLostKeys"/>.</summary>
    public IReadOnlyList<(BtreeId Btree, Bpos Pos)> LostKeys
    {
        get
        {
            lock (_lock)
                return [.. _lostKeys];
        }
    }

    /// <summary>Every key repairs lost that a pass could name (more than <see cref="LostKeys"/> holds when capped).</summary>
    public long LostKeyCount
    {
        get
        {
            lock (_lock)
                return _lostKeyCount;
        }
    }

    public void KeyLost(BtreeId btree, Bpos pos)
    {
        lock (_lock)
        {
            _lostKeyCount++;
            if (_lostKeys.Count < _options.MaxLostKeys)
                _lostKeys.Add((btree, pos));
        }
    }

    public void Count(string what, long amount = 1)
    {
        lock (_lock)
            _counters[what] = _counters.GetValueOrDefault(what) + amount;
    }

    private FsckOutcome Decide(FsckErrorInfo info, string where, string detail)
    {
        if (info.Policy == RepairPolicy.Never)
            return FsckOutcome.NoRepair;
        if (RepairsHeld)
            return FsckOutcome.Held;
        switch (_options.Mode)
        {
            case FsckMode.CheckOnly:
                return FsckOutcome.WouldFix;
            case FsckMode.Yes:
                return FsckOutcome.Fixed;
            case FsckMode.Preen:
                return info.Policy == RepairPolicy.Automatic ? FsckOutcome.Fixed : FsckOutcome.NotFixed;
            default:
                if (_answerForAll.TryGetValue(info.Id, out var all))
                    return all ? FsckOutcome.Fixed : FsckOutcome.NotFixed;
                // The prompt sees the finding as it would be if fixed; the answer decides.
                var answer = _options.Ask!(new FsckFinding(info.Id, CurrentPass, where, detail, FsckOutcome.Fixed));
                if (answer is FsckAnswer.YesToAll or FsckAnswer.NoToAll)
                    _answerForAll[info.Id] = answer == FsckAnswer.YesToAll;
                return answer is FsckAnswer.Yes or FsckAnswer.YesToAll ? FsckOutcome.Fixed : FsckOutcome.NotFixed;
        }
    }
}
