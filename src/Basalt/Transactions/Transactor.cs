// Transact(t => …): runs a transaction body until it commits, as one journal entry.
//
// The body runs with the engine's writer gate held, so what it reads cannot change before it
// commits (writers are serialised; readers are not held up). Then the commit: triggers run on the
// coalesced (old, new) pair of every position; with the write lock the engine checks that every
// leaf is cached and node space suffices, the journal appends the updates (its seq order is the
// commit order), and the engine applies them. Any obstacle (a node to read, a full journal, node
// space) is a restart: every lock is dropped, the obstacle removed, and the body run again from
// the start. A commit that asked for a flush then waits for it with no lock held, sharing the
// flush with every commit that arrived meanwhile.
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Journal;

namespace Basalt.Transactions;

/// <summary>How a transaction commits.</summary>
public readonly record struct CommitOptions(bool Flush)
{
    /// <summary>Journaled; durable within the journal's flush delay.</summary>
    public static CommitOptions Default => default;

    /// <summary>Durable when Transact returns.</summary>
    public static CommitOptions Durable => new(Flush: true);
}

/// <summary>
/// Told of every commit, in commit order, right after the engine applied it (the writer gate is
/// still held, so no other commit runs meanwhile): where in-memory side state that follows
/// committed state (bucket gens, open buckets) changes, never before the commit.
/// </summary>
public interface ICommitObserver
{
    void Committed(IReadOnlyList<BtreeUpdate> updates, ulong seq);
}

/// <summary>
/// Keeps node space ahead of the commits (the allocation layer, which claims buckets for btree
/// nodes): asked to grow it, on the committing thread with no lock held, before a transaction
/// when fewer than <see cref="LowWater"/> node slots are free.
/// </summary>
public interface INodeSpaceKeeper
{
    int LowWater { get; }

    /// <summary>Claims buckets until <paramref name="slotsNeeded"/> node slots are free; false when it could not.</summary>
    bool Grow(int slotsNeeded);
}

/// <summary>What a committed transaction got: the journal seq of its entry (0 when it changed nothing).</summary>
public readonly record struct CommitResult(ulong Seq, int Updates);

public sealed class Transactor : IBtreeWritePath
{
    /// <summary>Keys one transaction of a range delete removes.</summary>
    private const int DeleteRangeBatch = 256;

    private readonly BtreeEngine _engine;
    private readonly JournalWriter _journal;
    private readonly EmergencyState _emergency;
    private long _commits;
    private long _restarts;
    private volatile ICommitObserver[] _observers = [];

    static Transactor() => CountedKeys.Register();

    public Transactor(BtreeEngine engine, JournalWriter journal, EmergencyState emergency)
    {
        _engine = engine;
        _journal = journal;
        _emergency = emergency;
        KeyTypeTable.CheckComplete();
        engine.SetWritePath(this);
    }

    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Told after commits that leave node space short (null: nothing claims node space).</summary>
    public INodeSpaceKeeper? NodeSpaceKeeper { get; set; }

    /// <summary>Adds an observer told of every later commit.</summary>
    public void AddCommitObserver(ICommitObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        lock (_engine.WriterGate)
            _observers = [.. _observers, observer];
    }

    public long Restarts => Interlocked.Read(ref _restarts);

    /// <summary>Runs <paramref name="body"/> as one transaction and commits it; returns what the body returned.</summary>
    public T Transact<T>(Func<Transaction, T> body, CommitOptions options = default) => Transact(body, options, out _);

    public void Transact(Action<Transaction> body, CommitOptions options = default) =>
        Transact<bool>(t =>
        {
            body(t);
            return true;
        }, options, out _);

    /// <summary>Runs and commits <paramref name="body"/>; <paramref name="result"/> tells the commit's seq.</summary>
    public T Transact<T>(Func<Transaction, T> body, CommitOptions options, out CommitResult result)
    {
        ArgumentNullException.ThrowIfNull(body);
        // Node space is grown ahead of the commits that need it, before this one runs.
        if (NodeSpaceKeeper is { } keeper && !s_keeping && _engine.NodeSlotsAvailable < keeper.LowWater)
            KeepNodeSpace(keeper);
        // A finished transaction is kept for the next one (its update map keeps its capacity).
        var t = Interlocked.Exchange(ref _spare, null) ?? new Transaction(_engine);
        var outerKeep = BtreeEngine.BeginKeep();
        try
        {
            return Run(t, body, options, out result);
        }
        finally
        {
            _engine.EndKeep(outerKeep);
            // A large one is dropped: clearing its grown update map would cost every later transaction.
            if (t.UpdateCount <= 256)
            {
                t.Reset();
                Interlocked.CompareExchange(ref _spare, t, null);
            }
        }
    }

    private Transaction? _spare;

    private T Run<T>(Transaction t, Func<Transaction, T> body, CommitOptions options, out CommitResult result)
    {
        for (var attempt = 0; ; attempt++)
        {
            Restart restart = default;
            var restarted = false;
            T value = default!;
            ulong seq = 0;
            List<BtreeUpdate>? updates = null;
            List<(BtreeId, Bpos)>? deleted = null;
            _emergency.ThrowIfSet();
            _engine.WriterGate.Enter();
            try
            {
                t.Reset();
                try
                {
                    value = body(t);
                    t.RunTriggers();
                }
                catch (RestartException r)
                {
                    restart = r.Restart;
                    restarted = true;
                }
                if (!restarted && t.UpdateCount > 0)
                {
                    updates = t.ToBtreeUpdates();
                    restarted = !TryCommit(updates, options, out seq, out restart, ref deleted);
                }
            }
            finally
            {
                _engine.WriterGate.Exit();
            }
            if (restarted)
            {
                Interlocked.Increment(ref _restarts);
                _engine.Resolve(restart, attempt);
                continue;
            }
            if (updates is null)
            {
                result = default;
                return value;
            }
            Interlocked.Increment(ref _commits);
            if (deleted is { Count: > 0 })
                _engine.MergeAfterDeletes(deleted);

            if (options.Flush)
                _journal.WaitDurable(seq);
            result = new CommitResult(seq, updates.Count);
            return value;
        }
    }

    [ThreadStatic]
    private static bool s_keeping;

    /// <summary>
    /// Grows node space before a transaction when earlier commits left it short. The claim is a
    /// transaction of its own, run first: a claim's commit does not claim again, and a failure is
    /// left for the commit that needs the slots to meet as a node-space restart.
    /// </summary>
    private static void KeepNodeSpace(INodeSpaceKeeper keeper)
    {
        if (s_keeping)
            return;
        s_keeping = true;
        try
        {
            keeper.Grow(keeper.LowWater);
        }
        catch (BasaltException)
        {
        }
        finally
        {
            s_keeping = false;
        }
    }

    /// <summary>With the writer gate held: prepare, append to the journal, apply. False with a restart.</summary>
    private bool TryCommit(List<BtreeUpdate> updates, CommitOptions options, out ulong seq, out Restart restart, ref List<(BtreeId, Bpos)>? deleted)
    {
        seq = 0;
        _engine.EnterWriteLock();
        try
        {
            if (_engine.Injection is { } injection && injection.Next())
            {
                restart = Restart.For(RestartReason.Injected, "injected");
                return false;
            }
            if (!_engine.TryPrepareCommit(updates, out restart))
                return false;
            if (!_journal.TryCommit(updates, options.Flush, out seq))
            {
                restart = Restart.For(RestartReason.JournalFull,
                    $"the journal is full: {_journal.Stats.BucketsInUse} of {_journal.Stats.Buckets} buckets hold entries still needed");
                return false;
            }
            deleted = [];
            try
            {
                _engine.ApplyCommit(updates, seq, deleted);
            }
            catch (Exception ex) when (ex is BasaltException or InvalidOperationException)
            {
                // The journal holds the commit and memory does not: nothing more may be written.
                _emergency.EnterAndThrow(ex);
            }
        }
        finally
        {
            _engine.ExitWriteLock();
        }
        foreach (var observer in _observers)
            observer.Committed(updates, seq);
        return true;
    }

    // ---- The Btree convenience writes (IBtreeWritePath) ---------------------------------------

    public void Insert(BtreeId btree, in Bkey key, ReadOnlySpan<byte> value)
    {
        var k = key;
        var v = value.ToArray();
        Transact(t => t.Set(btree, k, v));
    }

    public bool Delete(BtreeId btree, Bpos pos) =>
        Transact(t =>
        {
            var existed = t.TryGet(btree, pos, out _);
            if (existed)
                t.Delete(btree, pos);
            return existed;
        });

    public long DeleteRange(BtreeId btree, Bpos start, Bpos end)
    {
        if (start > end)
            return 0;
        long deleted = 0;
        var next = start;
        while (true)
        {
            var from = next;
            var (count, last) = Transact(t =>
            {
                var keys = t.Range(btree, from, end, DeleteRangeBatch);
                foreach (var (key, _) in keys)
                    t.Delete(btree, key.Pos);
                return (keys.Count, keys.Count > 0 ? keys[^1].Key.Pos : end);
            });
            deleted += count;
            if (count < DeleteRangeBatch || last >= end || last.IsMax)
                return deleted;
            next = last.Successor();
        }
    }
}
