// The one list of peers: their names, how each is opened, and which benchmarks each takes part in.
// A new implementation (for example Basalt over its transaction API next to the current one) is
// one class implementing IKvPeer, a name constant, an entry in s_kvPeers and a line in OpenKv.
namespace Basalt.Benchmarks.Peers;

public static class PeerCatalog
{
    public const string Raw = "raw";
    public const string RocksDb = "RocksDB";
    public const string Lmdb = "LMDB";
    public const string Basalt = "Basalt";

    /// <summary>The reference every ratio is taken against (with <see cref="Raw"/> for durable commits).</summary>
    public const string Reference = RocksDb;

    private static readonly string[] s_kvPeers = [RocksDb, Lmdb, Basalt];
    private static readonly string[] s_allPeers = [Raw, .. s_kvPeers];

    /// <summary>Peers of the durable-commit benchmarks: the raw device and every key-value peer.</summary>
    public static IEnumerable<string> CommitPeers => Selected(s_allPeers);

    /// <summary>Peers of the load, lookup and scan benchmarks.</summary>
    public static IEnumerable<string> KvPeers => Selected(s_kvPeers);

    public static IDurableCommitter OpenCommitter(string name, string directory) =>
        name == Raw ? RawDevicePeer.Open(directory) : OpenKv(name, directory);

    public static IKvPeer OpenKv(string name, string directory) => name switch
    {
        RocksDb => RocksDbPeer.Open(directory),
        Lmdb => LmdbPeer.Open(directory),
        Basalt => BasaltPeer.Open(directory),
        _ => throw new ArgumentException($"unknown key-value peer '{name}' (known: {string.Join(", ", s_kvPeers)})", nameof(name)),
    };

    private static IEnumerable<string> Selected(string[] names)
    {
        var wanted = PeerSettings.Peers;
        if (wanted is null)
            return names;
        var unknown = wanted.Where(w => !s_allPeers.Contains(w, StringComparer.OrdinalIgnoreCase)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"BASALT_BENCH_PEERS names unknown peers: {string.Join(", ", unknown)}");
        return names.Where(wanted.Contains);
    }
}
