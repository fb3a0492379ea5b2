// The fsck driver: runs the passes of FsckCatalogue.Passes in order against one device, with one
// FsckReporter deciding every repair (DESIGN §6, digest §11).
//
// Check-only runs (-n, or no flag without a terminal) open the image read-only and put a
// copy-on-write overlay on top: every pass then runs exactly the code path a repairing run
// takes, its writes land in the overlay, and the image does not change by one byte. That is
// why -n reports precisely what -y repairs.
//
// A repairing run persists the counters of what it found into the superblock's error table and
// sets or clears the HasErrors flag, so the history survives and `show-super` can print it.
//
// A device shorter than the size its superblock records (a truncated image) is checked, not
// refused: it is wrapped in a TruncatedDevice that presents the recorded size and fails reads of
// the missing tail as I/O errors, under the overlay of a check-only run. check_superblock reports
// the truncation and repairs it by extending the image (in memory only in a check-only run, so
// every later pass sees the zeroed tail -y would leave). When it cannot be repaired (a block
// device, or the repair declined) the run holds every later repair: an overlay goes on top and
// the findings are reported as held, because a repair could write into the missing tail.
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Alloc;
using Basalt.Fs;
using Basalt.Fsck.Files;
using Basalt.Fsck.Space;
using Basalt.Superblocks;

namespace Basalt.Fsck;

/// <summary>What a pass gets: the device (an overlay in check-only runs), the reporter, and the mounted filesystem.</summary>
public sealed class FsckContext
{
    private BasaltFileSystem? _fs;
    private OverlayBlockDevice? _holdOverlay;

    internal FsckContext(IBlockDevice device, FsckReporter reporter, FsckOptions options, TruncatedDevice? truncation = null)
    {
        Device = device;
        Reporter = reporter;
        Options = options;
        Truncation = truncation;
    }

    /// <summary>
    /// The device passes read and repair (a copy-on-write overlay in check-only runs, and once
    /// repairs are held).
    /// </summary>
    public IBlockDevice Device { get; private set; }

    /// <summary>The device below <see cref="Device"/> when it is shorter than its superblock records; null otherwise.</summary>
    public TruncatedDevice? Truncation { get; }

    /// <summary>True once <see cref="HoldRepairs"/> was called.</summary>
    public bool RepairsHeld => _holdOverlay is not null;

    /// <summary>
    /// From now on nothing reaches the device: passes write to an overlay and every finding with a
    /// repair is reported as held. Only before the filesystem is mounted (check_superblock).
    /// </summary>
    public void HoldRepairs()
    {
        if (_fs is not null)
            throw new InvalidOperationException("repairs can only be held before the filesystem is mounted");
        if (_holdOverlay is not null)
            return;
        _holdOverlay = new OverlayBlockDevice(Device, ownsBase: false) { DisplayName = Device.Name };
        Device = _holdOverlay;
        Reporter.HoldRepairs();
    }

    internal void ReleaseHold() => _holdOverlay?.Dispose();

    public FsckReporter Reporter { get; }

    public FsckOptions Options { get; }

    /// <summary>The superblock as check_superblock first found it (before any repair).</summary>
    public SuperblockReadResult? InitialSuperblockRead { get; internal set; }

    /// <summary>The superblock read by check_superblock (after its repairs).</summary>
    public SuperblockReadResult? SuperblockRead { get; internal set; }

    /// <summary>
    /// The filesystem, mounted read-write on <see cref="Device"/> on first use (after
    /// check_superblock): the journal is read and verified even on a clean image, and keys a
    /// damaged btree keeps from replaying are set aside for after topology repair.
    /// </summary>
    public BasaltFileSystem FileSystem => _fs ??= BasaltFileSystem.Mount(Device, new MountOptions
    {
        Verify = true,
        TolerateReplayFailures = true,
        CheckWriteOnce = Options.CheckWriteOnce,
        Journal = Options.Journal,
        // fsck owns the device: no discard worker changes buckets behind the passes.
        Space = new SpaceOptions { BackgroundWorker = false },
        // Nothing is created or finished behind the passes either: the file passes find and repair it.
        FileMaintenance = false,
        // The passes change dirents in their own transactions: no cached name may outlive them.
        LookupCacheEntries = 0,
        // The passes walk whole btrees several times: a node cache as large as the memory fsck may
        // use keeps them from reading every node again on each walk.
        Engine = new Basalt.Btree.BtreeEngineOptions
        {
            CacheBudgetBytes = Math.Max(new Basalt.Btree.BtreeEngineOptions().CacheBudgetBytes, Options.MaxMem),
            KeepSlotsHoldingNodes = InvalidRoots.Count > 0,
        },
    });

    /// <summary>
    /// Superblock roots check_superblock found invalid (dropped or not, as answered), with the
    /// problem: check_topology rebuilds those btrees from the node scan.
    /// </summary>
    internal Dictionary<BtreeId, (BtreeRoot Root, string Problem)> InvalidRoots { get; } = [];

    /// <summary>What the space passes hand to each other during this run.</summary>
    internal SpaceCheckState? SpaceState { get; set; }

    /// <summary>What the file passes hand to each other during this run.</summary>
    internal FileCheckState? FileState { get; set; }

    internal BasaltFileSystem? MountedFileSystem => _fs;
}

/// <summary>One entry of the ordered pass table: the catalogue's permanent pass and its implementation.</summary>
public sealed record FsckPass(FsckPassInfo Info, Action<FsckContext> Run);

public static class Fsck
{
    /// <summary>
    /// The implementations of <see cref="FsckCatalogue.Passes"/>, in the catalogue's order. Passes
    /// live beside their subsystem; this table only names them.
    /// </summary>
    public static IReadOnlyList<FsckPass> Passes { get; } = BuildPasses();

    private static FsckPass[] BuildPasses()
    {
        var implementations = new Dictionary<FsckPassId, Action<FsckContext>>
        {
            [FsckPassId.CheckSuperblock] = CheckSuperblock.Run,
            [FsckPassId.CheckJournal] = FsckBtreePasses.CheckJournal,
            [FsckPassId.CheckTopology] = FsckBtreePasses.CheckTopology,
            [FsckPassId.CheckBtreeNodes] = FsckBtreePasses.CheckBtreeNodes,
            [FsckPassId.CheckAllocations] = SpaceChecks.CheckAllocationsPass,
            [FsckPassId.CheckAllocInfo] = SpaceChecks.CheckAllocInfoPass,
            [FsckPassId.CheckLrus] = SpaceChecks.CheckLrusPass,
            [FsckPassId.GcGens] = SpaceChecks.GcGensPass,
            [FsckPassId.CheckBtreeBackpointers] = SpaceChecks.CheckBtreeBackpointersPass,
            [FsckPassId.CheckExtentsToBackpointers] = SpaceChecks.CheckExtentsToBackpointersPass,
            [FsckPassId.CheckBackpointersToExtents] = SpaceChecks.CheckBackpointersToExtentsPass,
            [FsckPassId.CheckInodes] = FileChecks.CheckInodesPass,
            [FsckPassId.CheckExtents] = FileChecks.CheckExtentsPass,
            [FsckPassId.CheckDirents] = FileChecks.CheckDirentsPass,
            [FsckPassId.CheckXattrs] = FileChecks.CheckXattrsPass,
            [FsckPassId.CheckRoot] = FileChecks.CheckRootPass,
            [FsckPassId.CheckDirectoryStructure] = FileChecks.CheckDirectoryStructurePass,
            [FsckPassId.CheckNlinks] = FileChecks.CheckNlinksPass,
            [FsckPassId.CheckReflink] = FileChecks.CheckReflinkPass,
        };
        return [.. FsckCatalogue.Passes.Select(p => new FsckPass(p, implementations[p.Id]))];
    }

    /// <summary>
    /// Checks the image at <paramref name="imagePath"/>. Check-only modes open it read-only (a
    /// shared lock); repairing modes open it for writing (an exclusive lock: "in use (pid N)").
    /// </summary>
    public static FsckReport Run(string imagePath, FsckOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var device = FileBlockDevice.Open(imagePath, readOnly: !options.Writes);
        return Run(device, options);
    }

    /// <summary>Checks <paramref name="device"/>; in check-only mode nothing is written to it.</summary>
    public static FsckReport Run(IBlockDevice device, FsckOptions options)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Writes && device.IsReadOnly)
        {
            throw new BasaltException(ErrorCode.ReadOnlyDevice,
                $"{device.Name}: cannot repair: the device is open read-only (use -n to check only)");
        }

        // A device shorter than its superblock records is checked through a view of the recorded size.
        using var truncation = DeviceTruncation.Detect(device);
        IBlockDevice source = truncation ?? device;
        // Findings name the image, not "image (overlay)": -n must print what -y prints.
        using var overlay = options.Writes ? null : new OverlayBlockDevice(source, ownsBase: false) { DisplayName = device.Name };
        IBlockDevice target = overlay ?? source;
        var reporter = new FsckReporter(options);
        var context = new FsckContext(target, reporter, options, truncation);
        var persisted = false;
        var completed = false;
        try
        {
            foreach (var pass in Passes)
            {
                options.Cancellation.ThrowIfCancellationRequested();
                reporter.CurrentPass = pass.Info.Id;
                options.OnPassStarted?.Invoke(pass.Info);
                var before = reporter.FindingCount;
                try
                {
                    pass.Run(context);
                }
                catch (BasaltException e) when (e.Class == ErrorClass.Usage)
                {
                    // The options were checked before the first pass: an invalid argument inside one
                    // is the pass's own failure (an operational error), never the user's usage error.
                    throw new BasaltException(ErrorCode.InvariantViolated, $"{pass.Info.Name}: {e.Message}", e);
                }
                options.OnPassFinished?.Invoke(pass.Info, reporter.FindingCount - before);
            }
            // Journal keys a damaged btree kept from replaying: retried now that topology is repaired.
            reporter.CurrentPass = FsckPassId.CheckJournal;
            FsckBtreePasses.RetryUnreplayed(context);
            reporter.CurrentPass = null;

            if (options.Writes)
            {
                var fs = context.FileSystem;
                fs.Checkpoint();
                var left = reporter.Findings.Any(f => !f.Corrected);
                persisted = fs.RecordErrors(reporter.CountsById,
                    set: left ? SuperblockFlags.HasErrors : SuperblockFlags.None,
                    clear: left ? SuperblockFlags.None : SuperblockFlags.HasErrors | SuperblockFlags.HasTopologyErrors)
                    && !context.RepairsHeld;
            }
            completed = true;
        }
        finally
        {
            try
            {
                context.MountedFileSystem?.Close(sync: completed);
            }
            finally
            {
                context.ReleaseHold();
            }
        }

        return new FsckReport
        {
            Device = device.Name,
            Mode = options.Mode,
            ImplicitCheckOnly = options.ImplicitCheckOnly,
            Findings = reporter.Findings,
            CountsById = reporter.CountsById,
            Counters = reporter.Counters,
            Passes = [.. Passes.Select(p => p.Info)],
            SuperblockNote = context.InitialSuperblockRead is { } read ? MountNote.For(read) : null,
            CountersPersisted = persisted,
            LostKeys = reporter.LostKeys,
            LostKeyCount = reporter.LostKeyCount,
        };
    }
}
