// Reads over the loaded data set (1,000,000 keys unless BASALT_BENCH_KEYS says otherwise, loaded
// as in PeerLoadBenchmarks, then settled: RocksDB flushed and compacted), warm: every peer may
// keep the whole set in memory. Each invocation opens one read session (an LMDB read
// transaction, a RocksDB ReadOptions, Basalt's live tree).
//   PointLookup   100,000 lookups of present keys in random order; one operation is one lookup.
//   FullScan      every key in order from the smallest; one operation is the whole scan.
//   RangeScan100  1,000 scans of 100 keys from random present keys; one operation is one scan.
using Basalt.Benchmarks.Peers;
using BenchmarkDotNet.Attributes;

namespace Basalt.Benchmarks;

[MemoryDiagnoser]
[Config(typeof(PeerReadConfig))]
public class PeerReadBenchmarks
{
    public const int Lookups = 100_000;
    public const int Scans = 1_000;
    public const int ScanLength = 100;

    private readonly byte[] _value = new byte[PeerData.ValueSize * 2];
    private PeerKey[] _lookupKeys = [];
    private PeerKey[] _scanStarts = [];
    private IKvPeer? _peer;
    private int _lookupCursor;
    private int _scanCursor;

    public static IEnumerable<string> Peers => PeerCatalog.KvPeers;

    [ParamsSource(nameof(Peers))]
    public string Peer { get; set; } = PeerCatalog.Reference;

    [GlobalSetup]
    public void Setup()
    {
        var keys = PeerData.RandomKeys(PeerSettings.Keys, PeerLoad.Seed);
        _peer = PeerCatalog.OpenKv(Peer, PeerSettings.NewStoreDirectory(Peer));
        PeerReport.RecordSettings(_peer);
        PeerLoad.Load(_peer, keys);
        _peer.Settle();
        PeerReport.RecordSize(_peer, "after load and settle");
        var rng = new Random(5);
        _lookupKeys = keys.ToArray();
        rng.Shuffle(_lookupKeys);
        _scanStarts = new PeerKey[Scans * 16];
        for (var i = 0; i < _scanStarts.Length; i++)
            _scanStarts[i] = keys[rng.Next(keys.Length)];
    }

    [GlobalCleanup]
    public void Cleanup() => PeerReport.DisposeAndDelete(_peer);

    [Benchmark(OperationsPerInvoke = Lookups)]
    public int PointLookup()
    {
        using var reader = _peer!.OpenReader();
        var keys = _lookupKeys;
        var at = _lookupCursor;
        var found = 0;
        for (var i = 0; i < Lookups; i++)
        {
            if (reader.TryGet(keys[at], _value, out var length) && length == PeerData.ValueSize)
                found++;
            at = at + 1 == keys.Length ? 0 : at + 1;
        }
        _lookupCursor = at;
        return found == Lookups ? found : throw new InvalidOperationException($"{Peer}: {Lookups - found} of {Lookups} present keys not found");
    }

    [Benchmark]
    public long FullScan()
    {
        using var reader = _peer!.OpenReader();
        var visited = reader.Scan(PeerKey.Min, long.MaxValue, out var checksum);
        return visited == _lookupKeys.Length ? checksum : throw new InvalidOperationException($"{Peer}: full scan visited {visited} of {_lookupKeys.Length} keys");
    }

    [Benchmark(OperationsPerInvoke = Scans)]
    public long RangeScan100()
    {
        using var reader = _peer!.OpenReader();
        long sum = 0;
        for (var i = 0; i < Scans; i++)
        {
            sum += reader.Scan(_scanStarts[_scanCursor], ScanLength, out _);
            _scanCursor = _scanCursor + 1 == _scanStarts.Length ? 0 : _scanCursor + 1;
        }
        return sum;
    }
}
