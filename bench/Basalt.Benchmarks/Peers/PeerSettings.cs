// What a peer run is told from outside, read once from the environment so that the same values
// reach the benchmarks whether they run in-process (bench/peers.sh) or under BenchmarkDotNet's
// own process per case:
//   BASALT_BENCH_DIR    where the stores are created (default: the temp directory). Durable
//                       commits measure this filesystem's fdatasync: never point it at tmpfs.
//   BASALT_BENCH_PEERS  comma-separated peer names to run (default: every peer in PeerCatalog).
//   BASALT_BENCH_KEYS   keys loaded by the load and read benchmarks (default 1,000,000).
namespace Basalt.Benchmarks.Peers;

public static class PeerSettings
{
    public const int DefaultKeys = 1_000_000;

    public static string BaseDirectory { get; } =
        Environment.GetEnvironmentVariable("BASALT_BENCH_DIR") is { Length: > 0 } dir ? dir : Path.GetTempPath();

    public static int Keys { get; } =
        int.TryParse(Environment.GetEnvironmentVariable("BASALT_BENCH_KEYS"), out var keys) && keys > 0 ? keys : DefaultKeys;

    /// <summary>The peer names asked for, or null for all.</summary>
    public static IReadOnlySet<string>? Peers { get; } =
        Environment.GetEnvironmentVariable("BASALT_BENCH_PEERS") is { Length: > 0 } list
            ? new HashSet<string>(list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                StringComparer.OrdinalIgnoreCase)
            : null;

    /// <summary>A new empty directory for one peer instance under <see cref="BaseDirectory"/>.</summary>
    public static string NewStoreDirectory(string peer)
    {
        var dir = Path.Combine(BaseDirectory, $"basalt-peers-{Environment.ProcessId}-{peer}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}
