// Btree throughput on a filesystem in an image file (temp directory) with a warm cache: 256 KiB
// nodes, 4 KiB blocks, 100-byte values in the Test btree, one million keys loaded and
// checkpointed in setup. Inserts are single-key transactions through the journal (not flushed);
// a checkpoint after each iteration (not measured) keeps dirty memory bounded. Results are per
// key (OperationsPerInvoke).
using BenchmarkDotNet.Attributes;
using Basalt.Btree;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

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
    private BasaltFileSystem? _fs;
    private Btree.Btree? _tree;
    private ulong[] _randomKeys = [];
    private ulong[] _lookupKeys = [];
    private ulong _nextSequential;
    private int _randomCursor;

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), $"basalt-bench-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_directory);
        _fs = BasaltFileSystem.Format(Path.Combine(_directory, "image"), 4L * 1024 * 1024 * 1024,
            new FormatOptions { NodeSize = NodeSize, BucketSize = NodeSize, BlockSize = 4096 },
            new MountOptions { Engine = new BtreeEngineOptions { CacheBudgetBytes = 4L * 1024 * 1024 * 1024, Random = new Random(1) } });
        _tree = _fs.Btrees[BtreeId.Test];
        var rng = new Random(42);
        rng.NextBytes(_value);
        for (ulong i = 0; i < Preloaded; i++)
            _tree.Insert(new Bpos(1, i * 2), _value);
        _nextSequential = Preloaded * 2;
        _fs.Checkpoint();
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
        _fs?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [IterationCleanup(Targets = [nameof(SequentialInsert), nameof(RandomInsert)])]
    public void SyncAfterInserts() => _fs!.Checkpoint();

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
