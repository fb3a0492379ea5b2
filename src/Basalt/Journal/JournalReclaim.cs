// Journal reclaim: writes dirty btree nodes back so the journal entries they pin can be reused.
//
// It runs when the journal passes half full (writing the nodes that pin the older half), on a
// timer (nodes pinning commits older than WriteBackAge), and on demand: a commit that found no
// room (JournalFull) or no node slot (NodeSpace) waits here with no lock held. Each write-back
// round journals the pointer updates of the nodes it wrote, from the journal's reserve; if even
// the reserve has no room, or rounds stop making progress, reclaim checkpoints instead (every
// node written, roots into the superblock), which needs no journal space at all.
//
// In the deterministic step mode there is no thread: a waiting committer runs the rounds itself.
using System.Diagnostics;
using Basalt.Btree;
using Basalt.Diagnostics;

namespace Basalt.Journal;

public sealed class JournalReclaim : IRestartHandler, IDisposable
{
    private const int MaxWaits = 10_000;

    /// <summary>The journal's fill from which reclaim writes back the nodes pinning its older half.</summary>
    private const double HalfFull = 0.5;

    private readonly JournalWriter _journal;
    private readonly BtreeEngine _engine;
    private readonly Action _checkpoint;
    private readonly JournalOptions _options;
    private readonly EmergencyState _emergency;
    private readonly object _lock = new();
    private readonly Queue<(TimeSpan At, ulong Seq)> _samples = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private Thread? _thread;
    private bool _kicked;
    private bool _stopping;
    private long _rounds;
    private long _checkpoints;
    private long _progress;

    /// <param name="checkpoint">Writes every node and commits the roots through the superblock (the mount glue's checkpoint).</param>
    public JournalReclaim(JournalWriter journal, BtreeEngine engine, Action checkpoint, JournalOptions options, EmergencyState emergency)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.WriteBackRoundNodes, 1);
        _journal = journal;
        _engine = engine;
        _checkpoint = checkpoint;
        _options = options;
        _emergency = emergency;
        _journal.SpaceWanted += Flushed;
    }

    /// <summary>Write-back rounds run so far.</summary>
    public long Rounds => Interlocked.Read(ref _rounds);

    /// <summary>Checkpoints reclaim fell back to.</summary>
    public long Checkpoints => Interlocked.Read(ref _checkpoints);

    public void Start()
    {
        if (_options.Manual || _thread is not null)
            return;
        _thread = new Thread(Loop) { IsBackground = true, Name = "basalt journal reclaim" };
        _thread.Start();
    }

    public void Stop()
    {
        lock (_lock)
        {
            _stopping = true;
            Monitor.PulseAll(_lock);
        }
        _thread?.Join();
        _thread = null;
    }

    public void Dispose() => Stop();

    /// <summary>Asks the reclaim thread to look now.</summary>
    public void Kick()
    {
        lock (_lock)
        {
            _kicked = true;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>
    /// After a flush entry: the thread looks now only when the journal is half full. Below that it
    /// would find nothing to do but age-based write-back, which its timer covers, and a wake-up
    /// per flush costs every fsync a context switch.
    /// </summary>
    private void Flushed()
    {
        if (_journal.Fill >= HalfFull)
            Kick();
    }

    private void Loop()
    {
        while (true)
        {
            lock (_lock)
            {
                if (!_kicked && !_stopping)
                    Monitor.Wait(_lock, _options.ReclaimInterval);
                if (_stopping)
                    return;
                _kicked = false;
            }
            if (_emergency.IsSet)
                return;
            try
            {
                Sample();
                if (TargetFor(out var target))
                    RunRounds(target, maxRounds: 8);
            }
            catch (BasaltException) when (_emergency.IsSet)
            {
                return;
            }
        }
    }

    private void Sample()
    {
        var now = _clock.Elapsed;
        _samples.Enqueue((now, _journal.CommittedSeq));
        while (_samples.Count > 2 && now - _samples.Peek().At > _options.WriteBackAge + _options.WriteBackAge)
            _samples.Dequeue();
    }

    /// <summary>What to write back now: the older half of the journal when it is half full, or what is older than WriteBackAge.</summary>
    private bool TargetFor(out ulong target)
    {
        target = 0;
        var oldest = _journal.OldestPin;
        if (oldest == 0)
            return false;
        if (_journal.Fill >= HalfFull)
        {
            var committed = _journal.CommittedSeq;
            target = oldest + ((committed - oldest) / 2);
            return true;
        }
        var cutoff = _clock.Elapsed - _options.WriteBackAge;
        foreach (var (at, seq) in _samples)
        {
            if (at <= cutoff)
                target = seq;
        }
        return target >= oldest;
    }

    /// <summary>
    /// Runs write-back rounds for pins up to <paramref name="target"/> until they are gone or a round
    /// makes no progress; then flushes the journal so the new last_seq (and freed slots) count.
    /// Falls back to a checkpoint when the journal cannot take reclaim's own updates.
    /// </summary>
    private void RunRounds(ulong target, int maxRounds)
    {
        for (var round = 0; round < maxRounds; round++)
        {
            var oldest = _journal.OldestPin;
            if (oldest == 0 || oldest > target)
                break;
            var result = _engine.WriteBack(target, _options.WriteBackRoundNodes);
            Interlocked.Increment(ref _rounds);
            if (result.JournalFull)
            {
                Checkpoint();
                return;
            }
            if (result.NodesWritten == 0 && _journal.OldestPin == oldest)
                break;
            Interlocked.Increment(ref _progress);
        }
        _journal.WaitDurable(_journal.CommittedSeq);
    }

    private void Checkpoint()
    {
        _checkpoint();
        Interlocked.Increment(ref _checkpoints);
    }

    // ---- Restart handling (called by committers with no engine lock held) ---------------------

    public bool WaitForJournalSpace(int attempt)
    {
        _emergency.ThrowIfSet();
        if (attempt >= MaxWaits)
            return false;
        _journal.WaitForWriter();
        if (_options.Manual || attempt > 0)
        {
            // Write back everything that pins the oldest part of the journal; when nothing moves,
            // everything (a checkpoint if even that does not free room).
            var oldest = _journal.OldestPin;
            if (oldest != 0)
            {
                var before = Interlocked.Read(ref _progress);
                RunRounds(oldest + ((_journal.CommittedSeq - oldest) / 2), maxRounds: 16);
                if (Interlocked.Read(ref _progress) == before && attempt > 2)
                    Checkpoint();
            }
            else
            {
                _journal.WaitDurable(_journal.CommittedSeq);
                if (attempt > 2)
                    Checkpoint();
            }
        }
        else
        {
            Kick();
        }
        return true;
    }

    /// <summary>
    /// Claims buckets for node space until <c>slotsNeeded</c> slots are free (the allocation
    /// layer sets it; null on an engine without buckets): true when it did.
    /// </summary>
    public Func<int, bool>? GrowNodeSpace { get; set; }

    public bool WaitForNodeSpace(int attempt, int slotsNeeded)
    {
        _emergency.ThrowIfSet();
        if (GrowNodeSpace is { } grow && grow(slotsNeeded))
            return true;
        if (attempt >= 3)
            return false;
        // Freed slots become reusable once the entries that freed them are durable; pending
        // interior updates free slots once their new nodes are written.
        _engine.WriteBack(null, _options.WriteBackRoundNodes);
        _journal.WaitDurable(_journal.CommittedSeq);
        if (attempt == 2)
            Checkpoint();
        return true;
    }
}
