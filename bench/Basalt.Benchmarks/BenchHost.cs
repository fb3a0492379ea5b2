// What the console measurements need from the machine: the load average to quote beside their
// numbers, and a cold page cache (root only: /proc/sys/vm/drop_caches after a sync).
using System.Globalization;
using System.Runtime.InteropServices;

namespace Basalt.Benchmarks;

internal static partial class BenchHost
{
    private const string DropCachesPath = "/proc/sys/vm/drop_caches";

    /// <summary>The middle value (the upper of the two middle ones for an even count); NaN for none.</summary>
    public static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2];
    }

    /// <summary>The 1, 5 and 15 minute load averages.</summary>
    public static (double, double, double) LoadAverage()
    {
        var parts = File.ReadAllText("/proc/loadavg").Split(' ');
        return (double.Parse(parts[0], CultureInfo.InvariantCulture), double.Parse(parts[1], CultureInfo.InvariantCulture),
            double.Parse(parts[2], CultureInfo.InvariantCulture));
    }

    /// <summary>True when this process may drop the page cache (it tries once, which drops it).</summary>
    public static bool CanDropCaches()
    {
        try
        {
            File.WriteAllText(DropCachesPath, "3\n");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Writes every dirty page back, then drops the page cache (needs root: see <see cref="CanDropCaches"/>).</summary>
    public static void DropCaches()
    {
        Sync();
        File.WriteAllText(DropCachesPath, "3\n");
    }

    [LibraryImport("libc", EntryPoint = "sync")]
    private static partial void Sync();
}
