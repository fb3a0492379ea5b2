// Repairs of the space and file passes, queued and committed a few dozen per transaction: small
// enough that a batch (with the triggers its updates run) always fits one journal entry.
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Transactions;

namespace Basalt.Fsck;

internal sealed class RepairBatch(BasaltFileSystem fs, IFsckReporter reporter)
{
    private const int RepairsPerTransaction = 32;

    private readonly List<Action<Transaction>> _pending = [];

    /// <summary>Queues a repair; a full batch commits at once.</summary>
    public void Add(Action<Transaction> update)
    {
        _pending.Add(update);
        if (_pending.Count >= RepairsPerTransaction)
            Flush();
    }

    /// <summary>Commits the queued repairs (before any repair that runs its own transactions).</summary>
    public void Flush()
    {
        if (_pending.Count == 0)
            return;
        var batch = _pending.ToArray();
        _pending.Clear();
        try
        {
            fs.Transact(t =>
            {
                foreach (var update in batch)
                    update(t);
            });
        }
        catch (BasaltException ex) when (ex.Class == ErrorClass.NoSpace && !fs.Btrees.IsEmergencyReadOnly)
        {
            // A repair that needs more room than a full filesystem's reserves give is left as a
            // finding of its own; the passes go on (the transaction changed nothing).
            reporter.Report(FsckErrorId.RepairNoSpace, fs.Device.Name, $"{batch.Length} repairs not applied: {ex.Message}");
        }
    }
}
