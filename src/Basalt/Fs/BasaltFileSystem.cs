// The mounted filesystem: the object every front end (CLI, fsck, later the POSIX file API and
// FUSE) starts from. A thin facade: mounting and unmounting are the recovery layer's (MountCore),
// commits are the transaction layer's (Transact), the btrees are the engine's.
//
// Durability: a commit is durable once the journal has flushed it: Transact with
// CommitOptions.Durable, or Sync() after any commits, waits for that; other commits become durable
// within the journal's flush delay (1 s by default). Dispose unmounts cleanly (journal flushed,
// every node written, superblock marked clean); Close(sync: false) writes nothing more, exactly
// as a crash would leave the device, and the next mount replays the journal. A read-only mount,
// or one in emergency read-only after a failed write, writes nothing on Dispose.
//
// The POSIX file API arrives in a later milestone as further partial files of this class
// (BasaltFileSystem.Files.cs, …) on top of transactions.
using Basalt.Alloc;
using Basalt.Btree;
using Basalt.Data;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Recovery;
using Basalt.Superblocks;
using Basalt.Transactions;

namespace Basalt.Fs;

public sealed class MountOptions
{
    /// <summary>
    /// Mount without writing to the device. Opening by path then opens the image read-only; the
    /// engine runs on a copy-on-write overlay, so journal replay and in-memory repairs never reach
    /// the image.
    /// </summary>
    public bool ReadOnly { get; init; }

    /// <summary>Engine tuning (node cache budget, checks); defaults when null.</summary>
    public BtreeEngineOptions? Engine { get; init; }

    /// <summary>Journal tuning (flush delay, step mode); defaults when null.</summary>
    public JournalOptions? Journal { get; init; }

    /// <summary>Read the journal of a clean filesystem too and check the clean section against it.</summary>
    public bool Verify { get; init; }

    /// <summary>Allocation tuning (discard override, background worker); defaults when null.</summary>
    public SpaceOptions? Space { get; init; }

    /// <summary>Set aside journal keys a damaged btree keeps from replaying instead of failing the mount (fsck).</summary>
    public bool TolerateReplayFailures { get; init; }

    /// <summary>When reads update access times (relatime by default; the crash suites use noatime).</summary>
    public AtimeMode Atime { get; init; }

    /// <summary>
    /// The largest file whose data is kept inline, in its extent key, rather than in a bucket
    /// (bytes; 0 turns inline data off; at most 4 KiB, the default). A small file written and
    /// fsynced then costs one journal write and one flush.
    /// </summary>
    public int InlineDataBytes { get; init; } = InlineData.MaxBytes;

    /// <summary>
    /// How many resolved names the lookup cache keeps, (directory, name) → inode, so that a
    /// repeated lookup reads only the target's inode (0 turns it off). Each name held costs 64
    /// bytes: the default, 262,144 names, is 16 MB when full; it starts small and grows as names
    /// are added. Names longer than 32 bytes are not cached. Names are dropped from it as they are
    /// removed or renamed.
    /// </summary>
    public int LookupCacheEntries { get; init; } = 1 << 18;

    /// <summary>
    /// At a writable mount, create the root directory and lost+found when the filesystem has none
    /// yet (its first mount) and finish the deletions of orphaned inodes and interrupted truncates
    /// (on by default; fsck turns it off so its passes see what a crash or damage left).
    /// </summary>
    public bool FileMaintenance { get; init; } = true;

    /// <summary>
    /// Route every node write through a <see cref="WriteOnceCheckingDevice"/> that fails any write
    /// below a live node's durable prefix. Off by default; the test suites turn it on.
    /// </summary>
    public bool CheckWriteOnce { get; init; }

    /// <summary>For tests: handed the replay overlay once the interior keys are replayed, before the leaf keys are.</summary>
    internal Action<ReplayOverlay>? BeforeLeafReplay { get; init; }

    internal RecoveryOptions ToRecovery() => new()
    {
        BeforeLeafReplay = BeforeLeafReplay,
        ReadOnly = ReadOnly,
        Engine = Engine ?? new BtreeEngineOptions(),
        Journal = Journal ?? new JournalOptions(),
        Verify = Verify,
        TolerateReplayFailures = TolerateReplayFailures,
        CheckWriteOnce = CheckWriteOnce,
    };
}

public sealed partial class BasaltFileSystem : IDisposable
{
    private readonly MountCore _core;
    private readonly IBlockDevice? _ownedDevice;
    private bool _disposed;

    private BasaltFileSystem(IBlockDevice device, IBlockDevice? ownedDevice, SuperblockReadResult read, MountOptions options)
    {
        if (device.Size < read.Superblock.DeviceSize)
            throw new BasaltException(ErrorCode.ShortDevice, TruncatedDevice.RefusalText(device, read.Superblock.DeviceSize));
        _ownedDevice = ownedDevice;
        SuperblockRead = read;
        Geometry = MountCore.GeometryOf(read.Superblock);
        _core = MountCore.Open(device, read, options.ToRecovery());
        try
        {
            Space = SpaceManager.Open(_core.Engine, _core.Transactor, _core.Journal, _core.Device, _core.Superblocks, options.Space);
            // A commit short of node slots first claims buckets for node space.
            if (_core.Reclaim is { } reclaim && !Space.ReadOnly)
                reclaim.GrowNodeSpace = Space.GrowNodeSpace;
            Data = new ExtentStore(_core.Engine, _core.Transactor, _core.Device, Space, _core.Superblocks.Current.DataChecksumType,
                _core.Journal.MaxCommitBytes) { InlineLimit = options.InlineDataBytes };
            Files = new Files(_core.Engine, _core.Transactor, Data, Space, _core.Journal, options.Atime, SpaceStats, options.LookupCacheEntries);
            Files.Start(options.FileMaintenance);
        }
        catch
        {
            Space?.Dispose();
            _core.Close(clean: false);
            throw;
        }
    }

    static BasaltFileSystem() => FsKeyTypes.Register();

    /// <summary>Files and directories: the POSIX-like API (inodes, names, data, xattrs).</summary>
    public Files Files { get; }

    private FsStats SpaceStats()
    {
        long size = 0, free = 0;
        foreach (var dev in Space.Layout.Devices)
        {
            size += (long)dev.DataBuckets * dev.BucketSectors * FormatLimits.SectorSize;
            free += Space.ReadOnly ? 0 : (long)Space.Usage(dev.Index)[BucketDataType.Free].Buckets * dev.BucketSectors * FormatLimits.SectorSize;
        }
        var available = Space.ReadOnly ? 0 : Math.Max(0, Space.AvailableSectors()) * FormatLimits.SectorSize;
        return new FsStats(Superblock.BlockSize, size, free, available, 0, Names.MaxLength);
    }

    /// <summary>Buckets: gens, open buckets, reservations, discards, copygc.</summary>
    public SpaceManager Space { get; }

    /// <summary>File data as checksummed extents.</summary>
    public ExtentStore Data { get; }

    /// <summary>
    /// Set when a read-only mount found the device shorter than its superblock records: the view
    /// that presents the recorded size and fails reads of the missing tail (null otherwise).
    /// </summary>
    public TruncatedDevice? Truncation { get; private init; }

    /// <summary>The device the filesystem reads and writes (an overlay for read-only mounts by path).</summary>
    public IBlockDevice Device => _core.Device;

    /// <summary>The write-once checker every node write goes through, when <see cref="MountOptions.CheckWriteOnce"/> is on.</summary>
    internal WriteOnceCheckingDevice? WriteOnceChecker => _core.WriteOnceChecker;

    /// <summary>The superblock as last read or written.</summary>
    public Superblock Superblock => _core.Superblocks.Current;

    /// <summary>What mount found at every superblock copy and which copy it used.</summary>
    public SuperblockReadResult SuperblockRead { get; }

    /// <summary>What recovery found in the journal and replayed.</summary>
    public RecoveryReport Recovery => _core.Report;

    public BtreeGeometry Geometry { get; }

    /// <summary>The btrees: <c>fs.Btrees[BtreeId.Test]</c>.</summary>
    public BtreeEngine Btrees => _core.Engine;

    public JournalWriter Journal => _core.Journal;

    /// <summary>Journal reclaim (null on a read-only mount).</summary>
    public JournalReclaim? Reclaim => _core.Reclaim;

    /// <summary>Emergency read-only state shared by every writer of this mount.</summary>
    public EmergencyState Emergency => _core.Emergency;

    public bool ReadOnly => _core.ReadOnly;

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
        // Read-only: whatever recovery writes stays in an overlay the filesystem owns. A truncated
        // device is read through a view of its recorded size (the missing tail unreadable).
        // Errors name the image the user gave, not the overlay.
        var truncation = DeviceTruncation.Detect(device, out var read);
        var overlay = new OverlayBlockDevice(truncation ?? device, ownsBase: truncation is not null) { DisplayName = device.Name };
        try
        {
            return new BasaltFileSystem(overlay, overlay, ReadThrough(overlay, truncation, read), options) { Truncation = truncation };
        }
        catch
        {
            overlay.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the image at <paramref name="path"/> (locked: a second writer gets "in use (pid N)")
    /// and mounts it. A read-only mount opens the file read-only under a copy-on-write overlay; a
    /// truncated image is then read through a <see cref="TruncatedDevice"/> (see <see cref="Truncation"/>),
    /// while a writable mount refuses it (ShortDevice: fsck repairs it).
    /// </summary>
    public static BasaltFileSystem Mount(string path, MountOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var file = FileBlockDevice.Open(path, readOnly: options.ReadOnly);
        IBlockDevice device = file;
        TruncatedDevice? truncation = null;
        try
        {
            SuperblockReadResult? read = null;
            if (options.ReadOnly)
            {
                truncation = DeviceTruncation.Detect(file, out read, ownsDevice: true);
                device = new OverlayBlockDevice(truncation ?? (IBlockDevice)file, ownsBase: true) { DisplayName = file.Name };
            }
            return new BasaltFileSystem(device, device, ReadThrough(device, truncation, read), options) { Truncation = truncation };
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The superblock a read-only mount uses: the one read while looking for a truncation when the
    /// device is whole (the overlay holds the same bytes), else read again through the overlay
    /// (copies in a missing tail then read as the mount sees them; a failed read fails again, naming the image).
    /// </summary>
    private static SuperblockReadResult ReadThrough(IBlockDevice overlay, TruncatedDevice? truncation, SuperblockReadResult? read) =>
        truncation is null && read is not null ? read : SuperblockIo.Read(overlay);

    /// <summary>The btree geometry a superblock describes: node area of this device's member, magic, checksum, versions.</summary>
    public static BtreeGeometry GeometryOf(Superblock sb) => MountCore.GeometryOf(sb);

    // ---- Transactions ------------------------------------------------------------------------

    /// <summary>Runs <paramref name="body"/> as one transaction (restarted as needed) and commits it as one journal entry.</summary>
    public T Transact<T>(Func<Transaction, T> body, CommitOptions options = default) => Transactor.Transact(body, options);

    public void Transact(Action<Transaction> body, CommitOptions options = default) => Transactor.Transact(body, options);

    /// <summary>The transaction runner (absent on a read-only mount).</summary>
    public Transactor Transactor =>
        _core.Transactor ?? throw new BasaltException(ErrorCode.ReadOnlyDevice, $"{Device.Name}: the filesystem is mounted read-only");

    /// <summary>Makes every commit made so far durable (a journal flush; commits arriving meanwhile share it).</summary>
    public void Sync()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (ReadOnly)
            return;
        Journal.WaitDurable(Journal.CommittedSeq);
    }

    /// <summary>Writes every dirty node and records the roots in the superblock (the journal is then empty of needed entries).</summary>
    public void Checkpoint()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _core.Checkpoint(clean: false);
    }

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
        var changed = false;
        _core.Superblocks.Update(current =>
        {
            var sb = current.WithFlags(set, clear);
            foreach (var (id, count) in counts.OrderBy(kv => kv.Key))
            {
                if (count > 0)
                    sb = sb.WithErrorCounted(id, time, (ulong)count);
            }
            if (sb.Flags == current.Flags && sb.ErrorCounters.SequenceEqual(current.ErrorCounters))
                return current;
            changed = true;
            return sb;
        });
        return changed;
    }

    /// <summary>Unmounts cleanly when writable and healthy (see the file comment), then releases the device if owned.</summary>
    public void Dispose() => Close(sync: true);

    /// <summary>
    /// Releases the filesystem; with <paramref name="sync"/> false nothing more is written (what a
    /// crash would leave; what fsck does after a failed pass, so half-applied repairs are not committed).
    /// </summary>
    public void Close(bool sync)
    {
        if (_disposed)
            return;
        try
        {
            if (_core.Reclaim is { } reclaim)
                reclaim.GrowNodeSpace = null;
            Space?.Dispose();
            _core.Close(clean: sync);
        }
        finally
        {
            _disposed = true;
            _ownedDevice?.Dispose();
        }
    }
}
