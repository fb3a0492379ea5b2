// The superblock of a mounted filesystem: the current copy in memory and the one way to change
// it on disk. Every change is a whole-superblock write (every copy, flushed, in layout order,
// SuperblockIo.Write) made under one lock, so the journal (blacklist, checkpoints), recovery
// (dirty at mount, clean at unmount) and fsck (error counters) never interleave their writes. A
// failed write puts the filesystem into emergency read-only. A read-only mount changes only the
// copy in memory.
//
// The store also knows the sector checksums of the version on disk (from the copy read at mount,
// then from each write), which every write records as the version it replaces: that is what lets
// a copy torn by a crash during the next write be told from a damaged one (InterruptedWrite).
using Basalt.Devices;
using Basalt.Diagnostics;

namespace Basalt.Superblocks;

public sealed class SuperblockStore
{
    private readonly IBlockDevice _device;
    private readonly EmergencyState _emergency;
    private readonly Lock _lock = new();
    private Superblock _current;
    private IReadOnlyList<uint> _onDisk;

    /// <summary>
    /// A store over <paramref name="current"/>, the superblock on <paramref name="device"/>, whose
    /// encoded copy has the sector checksums <paramref name="onDisk"/> (<see cref="SuperblockReadResult.SectorChecksums"/>).
    /// </summary>
    public SuperblockStore(IBlockDevice device, Superblock current, IReadOnlyList<uint> onDisk, EmergencyState emergency, bool readOnly)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(onDisk);
        ArgumentNullException.ThrowIfNull(emergency);
        _device = device;
        _current = current;
        _onDisk = onDisk;
        _emergency = emergency;
        ReadOnly = readOnly;
    }

    /// <summary>A store over the superblock <paramref name="read"/> found on <paramref name="device"/>.</summary>
    public SuperblockStore(IBlockDevice device, SuperblockReadResult read, EmergencyState emergency, bool readOnly)
        : this(device, (read ?? throw new ArgumentNullException(nameof(read))).Superblock, read.SectorChecksums, emergency, readOnly)
    {
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
    /// Finishes the superblock write a crash interrupted (<see cref="SuperblockReadResult.InterruptedWrite"/>
    /// of <paramref name="read"/>, the read this store was made from): rewrites the copies it left
    /// torn or one seq older from the current superblock, so that every copy holds the version the
    /// next write replaces and records. Nothing is written when there is no such trace (damaged
    /// copies are fsck's to report) or the store is read-only. Returns the copies rewritten.
    /// </summary>
    public int FinishInterruptedWrite(SuperblockReadResult read)
    {
        ArgumentNullException.ThrowIfNull(read);
        if (read.InterruptedWrite is null || ReadOnly)
            return 0;
        lock (_lock)
        {
            if (!ReferenceEquals(read.Superblock, _current))
                throw new InvalidOperationException("the read is not the one this store was made from, or the superblock was written since");
            _emergency.ThrowIfSet();
            try
            {
                return SuperblockIo.FinishInterruptedWrite(_device, read);
            }
            catch (BasaltException ex) when (ex.Class == ErrorClass.Io)
            {
                _emergency.EnterAndThrow(new BasaltException(ErrorCode.IoError, $"{_device.Name}: superblock write failed: {ex.Message}", ex));
                throw;
            }
        }
    }

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
                _current = SuperblockIo.Write(_device, next, _onDisk, DateTimeOffset.UtcNow);
                _onDisk = SuperblockCodec.SectorChecksums(_current);
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
