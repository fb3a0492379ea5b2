// Btree engine throughput on a file-backed device (FileBlockDevice in a temp directory) with a
// warm cache: 256 KiB nodes, 4 KiB blocks, 100-byte values in the Test btree, one million keys
// loaded and synced in setup. Insert benchmarks keep growing the tree; a Sync after each
// iteration (not measured) keeps dirty memory bounded. Results are per key (OperationsPerInvoke).
using BenchmarkDotNet.Attributes;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;

namespace Basalt.Benchmarks;

[MemoryDiagnoser]
[ShortRunJob]
public class BtreeBenchmarks
{
    private const int Preloaded = 1_000_000;
    private const int Batch = 100_000;
    private const int NodeSize = 256 * 1024;

    private readonly byte[] _value = new byte[100];
    private readonly byte[] _buffer = new byte[256];
    private string _directory = "";
    private FileBlockDevice? _device;
    private BtreeEngine? _engine;
    private Btree.Btree? _tree;
    private ulong[] _randomKeys = [];
    private ulong[] _lookupKeys = [];
    private ulong _nextSequential;
    private int _randomCursor;

    private sealed class NullCommitter : IRootCommitter
    {
        public void CommitRoots(IReadOnlyList<BtreeRoot> roots)
        {
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), $"basalt-bench-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_directory);
        var geometry = new BtreeGeometry
        {
            NodeSize = NodeSize,
            BlockSize = 4096,
            NodeAreaOffset = 1024 * 1024,
            NodeAreaLength = 8192L * NodeSize,
            NodeMagic = 0x45444F4E544C5342UL,
        };
        _device = FileBlockDevice.Create(Path.Combine(_directory, "image"), geometry.NodeAreaOffset + geometry.NodeAreaLength);
        _engine = BtreeEngine.Open(_device, geometry, [], new BtreeEngineOptions
        {
            CacheBudgetBytes = 4L * 1024 * 1024 * 1024,
            Random = new Random(1),
        }, new NullCommitter());
        _tree = _engine[BtreeId.Test];
        var rng = new Random(42);
        rng.NextBytes(_value);
        for (ulong i = 0; i < Preloaded; i++)
            _tree.Insert(new Bpos(1, i * 2), _value);
        _nextSequential = Preloaded * 2;
        _engine.Sync();
        _randomKeys = new ulong[Batch * 64];
        for (var i = 0; i < _randomKeys.Length; i++)
            _randomKeys[i] = (ulong)rng.NextInt64(0, Preloaded * 4L) | 1;
        _lookupKeys = new ulong[Batch];
        for (var i = 0; i < _lookupKeys.Length; i++)
            _lookupKeys[i] = (ulong)rng.Next(Preloaded) * 2;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _engine?.Dispose();
        _device?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [IterationCleanup(Targets = [nameof(SequentialInsert), nameof(RandomInsert)])]
    public void SyncAfterInserts() => _engine!.Sync();

    [Benchmark(OperationsPerInvoke = Batch)]
    public void SequentialInsert()
    {
        var tree = _tree!;
        var next = _nextSequential;
        for (var i = 0; i < Batch; i++)
            tree.Insert(new Bpos(1, next++), _value);
        _nextSequential = next;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public void RandomInsert()
    {
        var tree = _tree!;
        var keys = _randomKeys;
        var at = _randomCursor;
        for (var i = 0; i < Batch; i++)
        {
            tree.Insert(new Bpos(2, keys[at]), _value);
            at = at + 1 == keys.Length ? 0 : at + 1;
        }
        _randomCursor = at;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int PointLookup()
    {
        var tree = _tree!;
        var found = 0;
        foreach (var k in _lookupKeys)
        {
            if (tree.TryGet(new Bpos(1, k), _buffer, out _))
                found++;
        }
        return found;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public long RangeScan()
    {
        var it = _tree!.Iterate(new Bpos(1, 1000), Bpos.Max);
        long sum = 0;
        for (var i = 0; i < Batch && it.MoveNext(); i++)
            sum += it.Value.Length;
        return sum;
    }
}
