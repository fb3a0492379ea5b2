// The superblock of a mounted filesystem: the current copy in memory and the one way to change
// it on disk. Every change is a whole-superblock write (every copy, flushed, in layout order,
// SuperblockIo.Write) made under one lock, so the journal (blacklist, checkpoints), recovery
// (dirty at mount, clean at unmount) and fsck (error counters) never interleave their writes. A
// failed write puts the filesystem into emergency read-only. A read-only mount changes only the
// copy in memory.
using Basalt.Devices;
using Basalt.Diagnostics;

namespace Basalt.Superblocks;

public sealed class SuperblockStore
{
    private readonly IBlockDevice _device;
    private readonly EmergencyState _emergency;
    private readonly Lock _lock = new();
    private Superblock _current;

    public SuperblockStore(IBlockDevice device, Superblock current, EmergencyState emergency, bool readOnly)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(emergency);
        _device = device;
        _current = current;
        _emergency = emergency;
        ReadOnly = readOnly;
    }

    /// <summary>The superblock as last read or written.</summary>
    public Superblock Current
    {
        get
        {
            lock (_lock)
                return _current;
        }
    }

    /// <summary>Changes are kept in memory only (a read-only mount).</summary>
    public bool ReadOnly { get; }

    /// <summary>Superblock writes made through this store.</summary>
    public int Writes { get; private set; }

    /// <summary>
    /// Applies <paramref name="change"/> and writes the result (every copy, flushed); returns what
    /// was written. Nothing is written when the change leaves the superblock as it was.
    /// </summary>
    public Superblock Update(Func<Superblock, Superblock> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_lock)
        {
            var next = change(_current);
            if (ReferenceEquals(next, _current))
                return _current;
            if (ReadOnly)
                return _current = next;
            _emergency.ThrowIfSet();
            try
            {
                _current = SuperblockIo.Write(_device, next);
                Writes++;
                return _current;
            }
            catch (BasaltException ex) when (ex.Class == ErrorClass.Io)
            {
                _emergency.EnterAndThrow(new BasaltException(ErrorCode.IoError, $"{_device.Name}: superblock write failed: {ex.Message}", ex));
                throw;
            }
        }
    }
}
