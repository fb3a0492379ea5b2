// The filesystem passes of fsck (check_inodes … check_nlinks, DESIGN §2 invariant 8, digest §6.4,
// and check_reflink, invariant 7), bound to the run's mounted filesystem and reporter, and a
// public entry point that runs all eight against a mounted filesystem (tests call it after every
// file workload). check_reflink runs first, before the space passes in a whole fsck run: the
// others edit reflink pointers through their trigger, which needs the refcounts it repairs.
//
// The passes run in the catalogue's order and each relies on the ones before it having run:
// check_dirents trusts that every inode decodes or was reported, check_directory_structure that
// every dirent names an existing inode of its type and that the root and lost+found exist,
// check_nlinks that every directory is named exactly once. A repair therefore never has to be
// undone by a later pass, and a second run after a repairing one finds nothing (invariant 10).
//
// The filesystem is mounted with FileMaintenance off, so no orphan is deleted and no truncate
// finished behind the passes: check_inodes reports an interrupted truncate and finishes it, and
// orphan keys are checked, not consumed.
using Basalt.Format;
using Basalt.Fs;

namespace Basalt.Fsck.Files;

public static class FileChecks
{
    private static readonly (FsckPassId Id, Action<FileCheckRun> Run)[] s_passes =
    [
        (FsckPassId.CheckReflink, CheckReflink.Run),
        (FsckPassId.CheckInodes, CheckInodes.Run),
        (FsckPassId.CheckExtents, CheckExtents.Run),
        (FsckPassId.CheckDirents, CheckHashed.CheckDirents),
        (FsckPassId.CheckXattrs, CheckHashed.CheckXattrs),
        (FsckPassId.CheckRoot, CheckNamespace.CheckRoot),
        (FsckPassId.CheckDirectoryStructure, CheckNamespace.CheckDirectoryStructure),
        (FsckPassId.CheckNlinks, CheckNamespace.CheckNlinks),
    ];

    /// <summary>
    /// Runs the eight file passes (check_reflink first, as in a whole fsck run) on a mounted, writable filesystem. With <paramref name="repair"/>
    /// false nothing is written and every finding is reported as not fixed (later passes then see
    /// the unrepaired state and may report what follows from it); with it true every repair is
    /// applied. Returns true when nothing was found. Nothing else may change the filesystem
    /// meanwhile (open handles included: an unlinked open file is fine, its orphan key holds it).
    /// </summary>
    public static bool Run(BasaltFileSystem fs, bool repair, out IReadOnlyList<FsckFinding> findings, long? maxMem = null)
    {
        ArgumentNullException.ThrowIfNull(fs);
        var reporter = new CollectingReporter(repair);
        var run = new FileCheckRun(fs, reporter, maxMem ?? Space.SpaceChecks.DefaultMaxMem, new FileCheckState());
        foreach (var (id, pass) in s_passes)
        {
            reporter.CurrentPass = id;
            pass(run);
            run.Flush();
        }
        findings = reporter.Findings;
        return findings.Count == 0;
    }

    private static void RunPass(FsckContext context, Action<FileCheckRun> pass)
    {
        context.FileState ??= new FileCheckState();
        var run = new FileCheckRun(context.FileSystem, context.Reporter, context.Options.MaxMem, context.FileState);
        pass(run);
        run.Flush();
    }

    internal static void CheckReflinkPass(FsckContext context) => RunPass(context, CheckReflink.Run);

    internal static void CheckInodesPass(FsckContext context) => RunPass(context, CheckInodes.Run);

    internal static void CheckExtentsPass(FsckContext context) => RunPass(context, CheckExtents.Run);

    internal static void CheckDirentsPass(FsckContext context) => RunPass(context, CheckHashed.CheckDirents);

    internal static void CheckXattrsPass(FsckContext context) => RunPass(context, CheckHashed.CheckXattrs);

    internal static void CheckRootPass(FsckContext context) => RunPass(context, CheckNamespace.CheckRoot);

    internal static void CheckDirectoryStructurePass(FsckContext context) => RunPass(context, CheckNamespace.CheckDirectoryStructure);

    internal static void CheckNlinksPass(FsckContext context) => RunPass(context, CheckNamespace.CheckNlinks);
}
