// What mount (and fsck, show-super, list) tell the user about the superblock copies: which copy
// was used and why it was not the primary. Kept apart from BasaltFileSystem so tools that only
// read the superblock can say it without opening the btrees.
using Basalt.Superblocks;

namespace Basalt.Fs;

public static class MountNote
{
    /// <summary>
    /// "mounted from copy 1 at byte 69632 because copy 0 at byte 4096 is damaged (bad checksum) (…)",
    /// "mounted from copy 0 at byte 4096; superblock write of seq 9 interrupted by a crash during copy 2: …"
    /// when the copies are the trace of a superblock write a crash cut short, or null when the primary copy was used and every copy is good.
    /// </summary>
    public static string? For(SuperblockReadResult read)
    {
        ArgumentNullException.ThrowIfNull(read);
        if (read.UsedCopy == 0 && read.AllCopiesGood)
            return null;
        var used = read.Copies.FirstOrDefault(c => c.Index == read.UsedCopy);
        var bad = read.Copies.Where(c => c.Status != CopyStatus.Good)
            .Select(c => $"copy {c.Index} at byte {c.Offset} is {StatusText(c.Status)} ({c.Detail})").ToList();
        var where = used is null ? $"copy {read.UsedCopy}" : $"copy {used.Index} at byte {used.Offset}";
        // Copies a crash tore or left one seq older are not damaged: say what happened instead.
        if (read.InterruptedWrite is { } trace)
            return $"mounted from {where}; {trace.ToText()} (the trace of a crash, not damage)";
        return bad.Count == 0
            ? $"mounted from {where}"
            : $"mounted from {where} because {string.Join("; ", bad)}";
    }

    /// <summary>A copy status in words: "damaged (bad checksum)", "stale".</summary>
    public static string StatusText(CopyStatus status) => status switch
    {
        CopyStatus.Good => "good",
        CopyStatus.Unreadable => "unreadable",
        CopyStatus.BadMagic => "without the Basalt magic",
        CopyStatus.BadChecksum => "damaged (bad checksum)",
        CopyStatus.Invalid => "invalid",
        CopyStatus.Unsupported => "unsupported",
        _ => "stale",
    };
}
