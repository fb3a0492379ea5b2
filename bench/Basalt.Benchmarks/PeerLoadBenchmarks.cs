// Random insert of the data set (1,000,000 keys unless BASALT_BENCH_KEYS says otherwise) into an
// empty store, in non-durable batches of 100 keys, ending with one Sync so that every peer has
// made the whole load durable when the clock stops. One operation is the whole load; the peer
// table reports keys per second. Each iteration starts from a freshly created store.
using Basalt.Benchmarks.Peers;
using BenchmarkDotNet.Attributes;

namespace Basalt.Benchmarks;

[MemoryDiagnoser]
[Config(typeof(PeerLoadConfig))]
public class PeerLoadBenchmarks
{
    public const int BatchSize = 100;

    private PeerKey[] _keys = [];
    private IKvPeer? _peer;

    public static IEnumerable<string> Peers => PeerCatalog.KvPeers;

    [ParamsSource(nameof(Peers))]
    public string Peer { get; set; } = PeerCatalog.Reference;

    [GlobalSetup]
    public void Setup() => _keys = PeerData.RandomKeys(PeerSettings.Keys, PeerLoad.Seed);

    [IterationSetup]
    public void OpenEmpty()
    {
        _peer = PeerCatalog.OpenKv(Peer, PeerSettings.NewStoreDirectory(Peer));
        PeerReport.RecordSettings(_peer);
    }

    [IterationCleanup]
    public void Close()
    {
        PeerReport.RecordSize(_peer!, "after load");
        PeerReport.DisposeAndDelete(_peer);
        _peer = null;
    }

    [Benchmark]
    public void RandomInsert() => PeerLoad.Load(_peer!, _keys);
}

/// <summary>The bulk load shared by the load benchmark and the read benchmarks' setup.</summary>
public static class PeerLoad
{
    public const int Seed = 42;

    public static void Load(IKvPeer peer, PeerKey[] keys)
    {
        for (var at = 0; at < keys.Length; at += PeerLoadBenchmarks.BatchSize)
        {
            var count = Math.Min(PeerLoadBenchmarks.BatchSize, keys.Length - at);
            peer.CommitBatch(keys.AsSpan(at, count), PeerData.Values(at, count));
        }
        peer.Sync();
    }
}
