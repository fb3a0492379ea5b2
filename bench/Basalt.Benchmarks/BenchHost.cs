// What the console measurements need from the machine: the load average to quote beside their
// numbers, and a cold page cache: the whole cache dropped when the process may (root:
// /proc/sys/vm/drop_caches after a sync), else the measured files' own pages dropped with
// posix_fadvise(POSIX_FADV_DONTNEED). Neither reaches a cache below the guest (a virtual disk's
// host page cache), so "cold" here means cold in this kernel.
using System.Globalization;
using System.Runtime.InteropServices;
using Basalt.Benchmarks.Peers;
using Microsoft.Win32.SafeHandles;

namespace Basalt.Benchmarks;

internal static partial class BenchHost
{
    /// <summary>A byte count with an optional K, M or G suffix (powers of 1024); false unless positive.</summary>
    internal static bool TryParseSize(string text, out long bytes)
    {
        var shift = char.ToUpperInvariant(text[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, _ => 0 };
        var digits = shift == 0 ? text : text[..^1];
        var ok = long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out bytes);
        bytes <<= shift;
        return ok && bytes > 0;
    }

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

    /// <summary>
    /// Makes the next reads of <paramref name="paths"/> cold: <see cref="DropCaches()"/> when
    /// <paramref name="canDropCaches"/>, else each existing file's pages written back and dropped
    /// (<see cref="EvictFromPageCache"/>).
    /// </summary>
    public static void DropCaches(bool canDropCaches, IEnumerable<string> paths)
    {
        if (canDropCaches)
        {
            DropCaches();
            return;
        }
        foreach (var path in paths)
        {
            if (File.Exists(path))
                EvictFromPageCache(path);
        }
    }

    /// <summary>How <see cref="DropCaches(bool, IEnumerable{string})"/> makes reads cold, for the tables; <paramref name="files"/> names the files.</summary>
    public static string DropCachesMethod(bool canDropCaches, string files) => canDropCaches
        ? "sync; echo 3 > /proc/sys/vm/drop_caches"
        : $"posix_fadvise(POSIX_FADV_DONTNEED) on {files}";

    /// <summary>
    /// Drops one file's cached pages without root. Dirty pages are not dropped, hence the
    /// fdatasync first. The pages go whichever descriptor cached them: the cache is the file's.
    /// </summary>
    public static void EvictFromPageCache(string path)
    {
        var fd = Open(path, 0x80000 /* O_RDONLY | O_CLOEXEC */, 0);
        if (fd < 0)
            throw new IOException($"{path}: open failed (errno {Marshal.GetLastPInvokeError()})");
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        RawDevicePeer.FdataSync(handle);
        var rc = Fadvise(handle, 0, 0, 4 /* POSIX_FADV_DONTNEED */);
        if (rc != 0)
            throw new IOException($"{path}: posix_fadvise failed (error {rc})");
    }

    [LibraryImport("libc", EntryPoint = "sync")]
    private static partial void Sync();

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, uint mode);

    /// <summary>posix_fadvise returns the error number (it does not set errno).</summary>
    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int Fadvise(SafeFileHandle fd, long offset, long length, int advice);
}
