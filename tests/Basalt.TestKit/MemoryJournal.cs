// A journal for engine tests that have no journal area (crafted images): commits get seqs and
// are "durable" at once, pins are counted so a test can see none leak, and checkpoints record the
// roots they commit. Durability comes only from the engine's checkpoint, as fsck uses it.
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.TestKit;

public sealed class MemoryJournal : IBtreeJournal, ICheckpointCommitter
{
    private readonly Dictionary<ulong, int> _pins = [];
    private ulong _seq;

    public ulong DurableSeq => _seq;

    public ulong CommittedSeq => _seq;

    /// <summary>Roots committed by the last checkpoint.</summary>
    public IReadOnlyList<BtreeRoot> Roots { get; private set; } = [];

    public int Checkpoints { get; private set; }

    public int PinCount => _pins.Values.Sum();

    public void WaitDurable(ulong seq)
    {
    }

    public void Pin(ulong seq) => _pins[seq] = _pins.GetValueOrDefault(seq) + 1;

    public void Unpin(ulong seq)
    {
        if (!_pins.TryGetValue(seq, out var n))
            throw new InvalidOperationException($"unpin of {seq}, not pinned");
        if (n == 1)
            _pins.Remove(seq);
        else
            _pins[seq] = n - 1;
    }

    public bool TryCommitInterior(InteriorCommit commit, out ulong seq)
    {
        seq = ++_seq;
        return true;
    }

    public bool IsBlacklisted(ulong seq) => false;

    public void CommitCheckpoint(IReadOnlyList<BtreeRoot> roots, ulong journalSeq)
    {
        Roots = [.. roots];
        Checkpoints++;
    }

    /// <summary>Opens an engine on <paramref name="device"/> with this journal.</summary>
    public BtreeEngine Open(Basalt.Devices.IBlockDevice device, BtreeGeometry geometry, IReadOnlyList<BtreeRoot> roots, BtreeEngineOptions options) =>
        BtreeEngine.Open(device, geometry, roots, options, this, new EmergencyState());
}
