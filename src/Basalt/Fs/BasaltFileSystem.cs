// The mounted filesystem: the glue between a device, its superblock and the btree engine, and the
// object every front end (CLI, fsck, later the POSIX file API and FUSE) starts from.
//
// Mount reads the newest good superblock copy (SuperblockIo.Read falls back to a backup copy and
// reports why), derives the btree geometry from it, and opens the engine with a root committer
// that writes the superblock whenever a btree root changes. This milestone has no journal: the
// superblock write (every copy, flushed) is the commit point of a root swap, and Sync flushes
// the engine's dirty nodes and then the superblock.
//
// Durability of Dispose: a writable, healthy filesystem is synced on Dispose (dirty nodes
// written, roots and error counters committed to the superblock). A read-only mount, or one in
// emergency read-only after a failed write, writes nothing on Dispose.
//
// The POSIX file API arrives in a later milestone as further partial files of this class
// (BasaltFileSystem.Files.cs, …) on top of Btrees.
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Superblocks;

namespace Basalt.Fs;

public sealed class MountOptions
{
    /// <summary>
    /// Mount without writing to the device. Opening by path then opens the image read-only; the
    /// engine runs on a copy-on-write overlay so in-memory repairs never reach the image.
    /// </summary>
    public bool ReadOnly { get; init; }

    /// <summary>Engine tuning (node cache budget, checks); defaults when null.</summary>
    public BtreeEngineOptions? Engine { get; init; }

    /// <summary>
    /// Route every write through a <see cref="WriteOnceCheckingDevice"/> that fails any write below a
    /// live node's sectors_written. Off by default; on when the environment sets
    /// BASALT_CHECK_WRITE_ONCE=1, as the test suites do, so every test that mounts proves the
    /// append-only rule.
    /// </summary>
    public bool CheckWriteOnce { get; init; } = Environment.GetEnvironmentVariable("BASALT_CHECK_WRITE_ONCE") == "1";
}

public sealed partial class BasaltFileSystem : IDisposable
{
    private readonly IBlockDevice _device;
    private readonly IBlockDevice? _ownedDevice;
    private readonly WriteOnceCheckingDevice? _writeOnceChecker;
    private readonly Lock _superblockLock = new();
    private readonly BtreeEngine _engine;
    private Superblock _superblock;
    private bool _disposed;

    private BasaltFileSystem(IBlockDevice device, IBlockDevice? ownedDevice, SuperblockReadResult read, MountOptions options)
    {
        if (device.Size < read.Superblock.DeviceSize)
        {
            throw new BasaltException(ErrorCode.ShortDevice,
                $"{device.Name}: the device is {device.Size} bytes but the filesystem was made for {read.Superblock.DeviceSize} bytes (truncated?)");
        }
        _device = device;
        _ownedDevice = ownedDevice;
        _superblock = read.Superblock;
        SuperblockRead = read;
        ReadOnly = options.ReadOnly;
        Geometry = GeometryOf(read.Superblock);
        var engineOptions = options.Engine ?? new BtreeEngineOptions();
        if (options.CheckWriteOnce && engineOptions.NodeSpaceObserver is null)
        {
            var checker = new WriteOnceCheckingDevice(device);
            _writeOnceChecker = checker;
            _device = checker;
            engineOptions = engineOptions with { NodeSpaceObserver = checker };
        }
        _engine = BtreeEngine.Open(_device, Geometry, read.Superblock.Roots, engineOptions,
            new SuperblockRootCommitter(this));
    }

    /// <summary>The device the filesystem reads and writes (an overlay for read-only mounts by path).</summary>
    public IBlockDevice Device => _device;

    /// <summary>The write-once checker every write goes through, when <see cref="MountOptions.CheckWriteOnce"/> is on.</summary>
    internal WriteOnceCheckingDevice? WriteOnceChecker => _writeOnceChecker;

    /// <summary>The superblock as last read or written.</summary>
    public Superblock Superblock
    {
        get
        {
            lock (_superblockLock)
                return _superblock;
        }
    }

    /// <summary>What mount found at every superblock copy and which copy it used.</summary>
    public SuperblockReadResult SuperblockRead { get; }

    public BtreeGeometry Geometry { get; }

    /// <summary>The btrees: <c>fs.Btrees[BtreeId.Test]</c>.</summary>
    public BtreeEngine Btrees => _engine;

    public bool ReadOnly { get; }

    /// <summary>
    /// "mounted from copy 1 at byte 69632 because copy 0 at byte 4096: bad checksum (…)", or null
    /// when the primary copy was used.
    /// </summary>
    public string? SuperblockNote => MountNote.For(SuperblockRead);

    // ---- Format and mount -----------------------------------------------------------------

    /// <summary>Formats <paramref name="device"/> (every superblock copy, flushed) and mounts it.</summary>
    public static BasaltFileSystem Format(IBlockDevice device, FormatOptions options, MountOptions? mount = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        SuperblockIo.Format(device, options);
        return Mount(device, mount ?? new MountOptions());
    }

    /// <summary>Creates (or overwrites) the image file at <paramref name="path"/> with <paramref name="size"/> bytes, formats and mounts it.</summary>
    public static BasaltFileSystem Format(string path, long size, FormatOptions options, MountOptions? mount = null)
    {
        var device = FileBlockDevice.Create(path, size, overwrite: true);
        try
        {
            SuperblockIo.Format(device, options);
            return new BasaltFileSystem(device, device, SuperblockIo.Read(device), mount ?? new MountOptions());
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>Mounts a filesystem on a device the caller owns (and disposes after the filesystem).</summary>
    public static BasaltFileSystem Mount(IBlockDevice device, MountOptions options)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(options);
        if (!options.ReadOnly && device.IsReadOnly)
            throw new BasaltException(ErrorCode.ReadOnlyDevice, $"{device.Name}: cannot mount read-write: the device is read-only");
        if (!options.ReadOnly)
            return new BasaltFileSystem(device, null, SuperblockIo.Read(device), options);
        // Read-only: whatever the engine writes stays in an overlay the filesystem owns.
        var overlay = new OverlayBlockDevice(device, ownsBase: false);
        try
        {
            return new BasaltFileSystem(overlay, overlay, SuperblockIo.Read(overlay), options);
        }
        catch
        {
            overlay.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the image at <paramref name="path"/> (locked: a second writer gets "in use (pid N)")
    /// and mounts it. A read-only mount opens the file read-only under a copy-on-write overlay.
    /// </summary>
    public static BasaltFileSystem Mount(string path, MountOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var file = FileBlockDevice.Open(path, readOnly: options.ReadOnly);
        IBlockDevice device = options.ReadOnly ? new OverlayBlockDevice(file, ownsBase: true) : file;
        try
        {
            return new BasaltFileSystem(device, device, SuperblockIo.Read(device), options);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>The btree geometry a superblock describes: node area of this device's member, magic, checksum, versions.</summary>
    public static BtreeGeometry GeometryOf(Superblock sb) => new()
    {
        NodeSize = sb.NodeSize,
        BlockSize = sb.BlockSize,
        NodeAreaOffset = sb.NodeAreaOffset,
        NodeAreaLength = sb.NodeAreaLength,
        NodeMagic = sb.NodeMagic,
        ChecksumType = sb.MetadataChecksumType,
        Version = sb.Version,
        VersionMin = sb.VersionMin,
        Device = sb.DeviceIndex,
    };

    // ---- Superblock updates ---------------------------------------------------------------

    /// <summary>
    /// Adds <paramref name="counts"/> to the superblock's persisted error counters, sets and clears
    /// <paramref name="set"/>/<paramref name="clear"/> flags, and writes the superblock (every copy,
    /// flushed) in one write. Returns false, writing nothing, when nothing changes or the mount is
    /// read-only.
    /// </summary>
    public bool RecordErrors(IReadOnlyDictionary<FsckErrorId, long> counts,
        SuperblockFlags set = SuperblockFlags.None, SuperblockFlags clear = SuperblockFlags.None, DateTimeOffset? when = null)
    {
        ArgumentNullException.ThrowIfNull(counts);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (ReadOnly)
            return false;
        var time = when ?? DateTimeOffset.UtcNow;
        lock (_superblockLock)
        {
            var sb = _superblock.WithFlags(set, clear);
            foreach (var (id, count) in counts.OrderBy(kv => kv.Key))
            {
                if (count > 0)
                    sb = sb.WithErrorCounted(id, time, (ulong)count);
            }
            if (sb.Flags == _superblock.Flags && sb.ErrorCounters.SequenceEqual(_superblock.ErrorCounters))
                return false;
            _superblock = SuperblockIo.Write(_device, sb);
            return true;
        }
    }

    private void CommitRoots(IReadOnlyList<BtreeRoot> roots)
    {
        lock (_superblockLock)
        {
            // A read-only mount writes into its overlay: the same code path, nothing reaches the image.
            _superblock = SuperblockIo.Write(_device, _superblock with { Roots = [.. roots.OrderBy(r => r.Btree)] });
        }
    }

    /// <summary>Writes every dirty node, then the superblock with the current roots.</summary>
    public void Sync()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _engine.Sync();
    }

    /// <summary>Syncs when writable and healthy (see the file comment), then releases the device if owned.</summary>
    public void Dispose() => Close(sync: true);

    /// <summary>
    /// Releases the filesystem; with <paramref name="sync"/> false nothing more is written (what
    /// fsck does after a failed pass: half-applied repairs are not committed).
    /// </summary>
    public void Close(bool sync)
    {
        if (_disposed)
            return;
        try
        {
            if (sync && !ReadOnly && !_engine.IsEmergencyReadOnly)
                _engine.Sync();
        }
        finally
        {
            _disposed = true;
            _engine.Dispose();
            _ownedDevice?.Dispose();
        }
    }

    /// <summary>Commits new btree roots by writing the superblock.</summary>
    private sealed class SuperblockRootCommitter(BasaltFileSystem fs) : IRootCommitter
    {
        public void CommitRoots(IReadOnlyList<BtreeRoot> roots) => fs.CommitRoots(roots);
    }
}
