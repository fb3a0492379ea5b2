// What the peer benchmarks record besides times, for the peer table: each peer's settings line and
// its store size on disk. Statics, so they reach the table only when the benchmarks run in the
// same process (the peer jobs are in-process); under another toolchain the table just lacks them.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Basalt.Benchmarks.Peers;

public readonly record struct StoreSize(string When, long AllocatedBytes, long ApparentBytes);

public static class PeerReport
{
    private static readonly ConcurrentDictionary<string, string> s_settings = new();
    private static readonly ConcurrentDictionary<string, StoreSize> s_sizes = new();

    public static IReadOnlyDictionary<string, string> Settings => s_settings;

    public static IReadOnlyDictionary<string, StoreSize> Sizes => s_sizes;

    public static void RecordSettings(IDurableCommitter peer) => s_settings[peer.Name] = peer.Settings;

    /// <summary>Records the allocated and apparent size of the peer's directory (du -sB1, with and without --apparent-size).</summary>
    public static void RecordSize(IDurableCommitter peer, string when) =>
        s_sizes[peer.Name] = new StoreSize(when, DiskUsage(peer.Directory, apparent: false), DiskUsage(peer.Directory, apparent: true));

    /// <summary>Disposes the peer, then deletes its directory.</summary>
    public static void DisposeAndDelete(IDurableCommitter? peer)
    {
        if (peer is null)
            return;
        var directory = peer.Directory;
        peer.Dispose();
        Directory.Delete(directory, recursive: true);
    }

    private static long DiskUsage(string directory, bool apparent)
    {
        var start = new ProcessStartInfo("du") { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-sB1");
        if (apparent)
            start.ArgumentList.Add("--apparent-size");
        start.ArgumentList.Add(directory);
        using var du = Process.Start(start) ?? throw new InvalidOperationException("cannot start du");
        var output = du.StandardOutput.ReadToEnd();
        du.WaitForExit();
        var first = output.Split('\t', 2)[0];
        return long.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) ? bytes : -1;
    }
}
