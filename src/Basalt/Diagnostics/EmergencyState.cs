// Emergency read-only: the one state every writer of a mounted filesystem shares. The first
// failed journal, node or superblock write puts the filesystem here; from then on every
// mutation fails fast with the original cause, and nothing more is written (what is on disk
// stays a consistent state that a later mount recovers).
using System.Diagnostics.CodeAnalysis;

namespace Basalt.Diagnostics;

public sealed class EmergencyState
{
    private Exception? _cause;

    /// <summary>The failure that started emergency read-only, or null while healthy.</summary>
    public Exception? Cause => Volatile.Read(ref _cause);

    public bool IsSet => Volatile.Read(ref _cause) is not null;

    /// <summary>Enters emergency read-only because of <paramref name="cause"/>; the first cause wins.</summary>
    public void Enter(Exception cause)
    {
        ArgumentNullException.ThrowIfNull(cause);
        Interlocked.CompareExchange(ref _cause, cause, null);
    }

    /// <summary>Throws EmergencyReadOnly carrying the original cause when set.</summary>
    public void ThrowIfSet()
    {
        if (Volatile.Read(ref _cause) is { } cause)
            Throw(cause);
    }

    /// <summary>Enters emergency read-only with <paramref name="cause"/> and throws, naming it.</summary>
    [DoesNotReturn]
    public void EnterAndThrow(Exception cause)
    {
        Enter(cause);
        Throw(Cause!);
    }

    [DoesNotReturn]
    private static void Throw(Exception cause) =>
        throw new BasaltException(ErrorCode.EmergencyReadOnly, $"the filesystem is in emergency read-only after: {cause.Message}", cause);
}
