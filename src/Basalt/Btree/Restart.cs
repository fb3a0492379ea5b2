// Restarts: every engine operation runs as attempts. An attempt runs under the engine lock and
// either completes or stops with a restart reason, having changed nothing it cannot stand by;
// the driver then drops the lock, removes the reason (reads the missing node, waits for journal
// space or for freed node space) and runs the operation again from the start. No lock is ever
// held across device I/O, and no call site writes its own retry loop.
//
// Reasons other than a node miss are resolved by the layer that owns the resource: the journal
// and transaction layers register a handler (IRestartHandler) at mount. Tests inject restarts at
// random (RestartInjection) to prove that every operation is restartable.
using System.Diagnostics.CodeAnalysis;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>Why an attempt stopped before completing.</summary>
public enum RestartReason
{
    /// <summary>A node the operation needs is not cached: read it with no lock held, then retry.</summary>
    NodeMiss,
    /// <summary>The journal has no room for the commit: wait for reclaim to free some, then retry.</summary>
    JournalFull,
    /// <summary>Node space is short: wait for freed slots to become reusable (a journal flush), then retry.</summary>
    NodeSpace,
    /// <summary>Injected by a test (RestartInjection): nothing to resolve, just retry.</summary>
    Injected,
}

/// <summary>The reason an attempt stopped, with what is needed to resolve it.</summary>
internal readonly struct Restart
{
    private Restart(RestartReason reason, NodeMiss miss, string? detail, int slotsNeeded = 0)
    {
        Reason = reason;
        Miss = miss;
        Detail = detail;
        SlotsNeeded = slotsNeeded;
    }

    public RestartReason Reason { get; }

    /// <summary>For <see cref="RestartReason.NodeMiss"/>: the node to read.</summary>
    public NodeMiss Miss { get; }

    /// <summary>For the resource reasons: what ran short, for the error if waiting does not help.</summary>
    public string? Detail { get; }

    public static Restart ForMiss(in NodeMiss miss) => new(RestartReason.NodeMiss, miss, null);

    /// <summary>For <see cref="RestartReason.NodeSpace"/>: the free node slots the operation needs.</summary>
    public int SlotsNeeded { get; }

    public static Restart For(RestartReason reason, string detail) => new(reason, default, detail);

    public static Restart ForNodeSpace(int slotsNeeded, string detail) => new(RestartReason.NodeSpace, default, detail, slotsNeeded);
}

/// <summary>Thrown inside a transaction body to unwind it for a restart; caught by the driver only.</summary>
internal sealed class RestartException : Exception
{
    public RestartException(Restart restart)
        : base($"transaction restart: {restart.Reason}") => Restart = restart;

    public Restart Restart { get; }
}

/// <summary>
/// Resolves the restart reasons that belong to higher layers: waits until the journal has room, or
/// until freed node slots become reusable. Returns false when waiting cannot help (the caller then
/// fails with the restart's detail).
/// </summary>
public interface IRestartHandler
{
    bool WaitForJournalSpace(int attempt);

    /// <summary>Waits until <paramref name="slotsNeeded"/> node slots may be free (claiming node space, or freed slots becoming reusable).</summary>
    bool WaitForNodeSpace(int attempt, int slotsNeeded);
}

/// <summary>Random restart injection for tests: every attempt restarts with this probability.</summary>
public sealed class RestartInjection
{
    private readonly Random _random;
    private readonly double _probability;
    private readonly Lock _gate = new();
    private long _injected;

    public RestartInjection(int seed, double probability)
    {
        _random = new Random(seed);
        _probability = probability;
    }

    /// <summary>Restarts injected so far.</summary>
    public long Injected => Interlocked.Read(ref _injected);

    internal bool Next()
    {
        lock (_gate)
        {
            if (_random.NextDouble() >= _probability)
                return false;
        }
        Interlocked.Increment(ref _injected);
        return true;
    }
}

/// <summary>
/// One attempt of an engine operation. Implemented by structs so a run allocates nothing; an
/// operation that carries a caller's span (a lookup copying into a buffer) is a ref struct.
/// </summary>
internal interface IEngineOp<T>
{
    /// <summary>Runs under the engine lock; true when complete, false with the reason to restart.</summary>
    bool TryRun(BtreeEngine engine, out T result, out Restart restart);
}

internal enum LockMode
{
    Read,
    Write,
}

public sealed partial class BtreeEngine
{
    /// <summary>Attempts after which a restart loop is a bug, not contention.</summary>
    private const int MaxAttempts = 100_000;

    /// <summary>Runs <paramref name="op"/> until it completes, resolving each restart in between with no lock held.</summary>
    internal T Run<TOp, T>(ref TOp op, LockMode mode)
        where TOp : struct, IEngineOp<T>, allows ref struct
    {
        for (var attempt = 0; ; attempt++)
        {
            T result;
            Restart restart;
            if (mode == LockMode.Write)
                _writerGate.Enter();
            EnterLock(mode);
            try
            {
                if (_options.RestartInjection is { } injection && injection.Next())
                {
                    restart = Restart.For(RestartReason.Injected, "injected");
                    result = default!;
                }
                else if (op.TryRun(this, out result, out restart))
                {
                    return result;
                }
            }
            finally
            {
                ExitLock(mode);
                if (mode == LockMode.Write)
                    _writerGate.Exit();
            }
            Resolve(restart, attempt);
        }
    }

    /// <summary>Removes the reason an attempt stopped (called with no engine lock held).</summary>
    internal void Resolve(in Restart restart, int attempt)
    {
        if (attempt >= MaxAttempts)
        {
            var detail = restart.Reason == RestartReason.NodeMiss
                ? $": {restart.Miss.Tree.Id.ToText()} level {restart.Miss.Level} node ending at {restart.Miss.MaxKey.ToText()}" +
                  (BtreePtrValue.TryRead(restart.Miss.PtrValue, out var ptr, out _) ? $" ({ptr.ToText()})" : "")
                : "";
            throw new InvalidOperationException($"operation restarted {attempt} times (last: {restart.Reason}{detail})");
        }
        switch (restart.Reason)
        {
            case RestartReason.NodeMiss:
                LoadMissing(restart.Miss);
                break;
            case RestartReason.JournalFull:
                if (_restartHandler?.WaitForJournalSpace(attempt) != true)
                    ThrowShort(ErrorCode.JournalFull, restart);
                break;
            case RestartReason.NodeSpace:
                if (_restartHandler?.WaitForNodeSpace(attempt, restart.SlotsNeeded) != true)
                    ThrowShort(ErrorCode.BtreeNodeSpaceFull, restart);
                break;
            case RestartReason.Injected:
                break;
        }
    }

    [DoesNotReturn]
    private static void ThrowShort(ErrorCode code, in Restart restart) =>
        BasaltException.Throw(code, restart.Detail ?? restart.Reason.ToString());

    /// <summary>
    /// Registers the handler of journal and node-space restarts (the journal layer, at mount).
    /// Without one, such a restart fails at once with its detail.
    /// </summary>
    public void SetRestartHandler(IRestartHandler handler) => _restartHandler = handler;

    private void EnterLock(LockMode mode)
    {
        if (mode == LockMode.Write)
            _lock.EnterWriteLock();
        else
            _lock.EnterReadLock();
    }

    private void ExitLock(LockMode mode)
    {
        if (mode == LockMode.Write)
            _lock.ExitWriteLock();
        else
            _lock.ExitReadLock();
    }
}
