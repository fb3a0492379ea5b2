// The allocation and backpointer passes of fsck (check_allocations … check_backpointers_to_extents),
// bound to the run's mounted filesystem and reporter, and a public entry point that runs all
// seven against a mounted filesystem (tests call it after every workload).
//
// Each pass recomputes from the extents and the alloc keys as the earlier passes left them, so in
// a repairing run (and on the overlay of a check-only run) the later passes see the repaired state.
using Basalt.Format;
using Basalt.Fs;

namespace Basalt.Fsck.Space;

public static class SpaceChecks
{
    /// <summary>The memory budget of the bounded passes by default: a quarter of RAM, at most 1 GiB.</summary>
    public static long DefaultMaxMem =>
        Math.Clamp(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4, 1L << 20, 1L << 30);

    private static readonly (FsckPassId Id, Action<SpaceCheckRun> Run)[] s_passes =
    [
        (FsckPassId.CheckAllocations, CheckAllocations.Run),
        (FsckPassId.CheckAllocInfo, CheckAllocInfo.Run),
        (FsckPassId.CheckLrus, CheckAllocInfo.CheckLrus),
        (FsckPassId.GcGens, CheckAllocInfo.GcGens),
        (FsckPassId.CheckBtreeBackpointers, CheckBackpointers.CheckBtreeBackpointers),
        (FsckPassId.CheckExtentsToBackpointers, CheckBackpointers.CheckExtentsToBackpointers),
        (FsckPassId.CheckBackpointersToExtents, CheckBackpointers.CheckBackpointersToExtents),
    ];

    /// <summary>
    /// Runs the seven space passes on a mounted, writable filesystem. With <paramref name="repair"/>
    /// false nothing is written and every finding is reported as not fixed; with it true every
    /// repair is applied through transactions. Returns true when nothing was found. The discard
    /// worker is paused while the passes run; nothing else may change the filesystem meanwhile.
    /// </summary>
    public static bool Run(BasaltFileSystem fs, bool repair, out IReadOnlyList<FsckFinding> findings, long? maxMem = null)
    {
        ArgumentNullException.ThrowIfNull(fs);
        using var paused = fs.Space.PauseBackground();
        var reporter = new CollectingReporter(repair);
        var run = new SpaceCheckRun(fs, reporter, maxMem ?? DefaultMaxMem, new SpaceCheckState());
        foreach (var (id, pass) in s_passes)
        {
            reporter.CurrentPass = id;
            pass(run);
        }
        findings = reporter.Findings;
        return findings.Count == 0;
    }

    private static void RunPass(FsckContext context, Action<SpaceCheckRun> pass)
    {
        var fs = context.FileSystem;
        context.SpaceState ??= new SpaceCheckState();
        pass(new SpaceCheckRun(fs, context.Reporter, context.Options.MaxMem, context.SpaceState));
    }

    internal static void CheckAllocationsPass(FsckContext context) => RunPass(context, CheckAllocations.Run);

    internal static void CheckAllocInfoPass(FsckContext context) => RunPass(context, CheckAllocInfo.Run);

    internal static void CheckLrusPass(FsckContext context) => RunPass(context, CheckAllocInfo.CheckLrus);

    internal static void GcGensPass(FsckContext context) => RunPass(context, CheckAllocInfo.GcGens);

    internal static void CheckBtreeBackpointersPass(FsckContext context) => RunPass(context, CheckBackpointers.CheckBtreeBackpointers);

    internal static void CheckExtentsToBackpointersPass(FsckContext context) => RunPass(context, CheckBackpointers.CheckExtentsToBackpointers);

    internal static void CheckBackpointersToExtentsPass(FsckContext context) => RunPass(context, CheckBackpointers.CheckBackpointersToExtents);
}
