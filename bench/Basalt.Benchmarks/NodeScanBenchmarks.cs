// The node scan (check_topology's brute-force search for btree nodes) against a plain sequential
// read of the same region in the same chunks. Target (docs/topology.md): the scan takes at most
// 1.4× a cold sequential read. The region (NodeScanRegion) is a file whose every slot holds a
// full, valid leaf (the worst case: every slot is validated); both methods read it through
// FileBlockDevice. The file stays in the page cache between iterations, so the ratio measures
// what the scan adds on top of the read (magic test, validation, version choice), the part a
// cold read does not hide; the `scan` command (ScanMeasurement) measures the same two cold.
using BenchmarkDotNet.Attributes;

namespace Basalt.Benchmarks;

[MemoryDiagnoser]
[ShortRunJob]
[Config(typeof(ThroughputConfig))]
public class NodeScanBenchmarks
{
    private const int Slots = 4096;
    private const long Region = (long)NodeScanRegion.NodeSize * Slots;

    private string _dir = "";
    private NodeScanRegion? _region;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("basalt-scan-bench").FullName;
        _region = NodeScanRegion.Create(Path.Combine(_dir, "nodes.img"), Slots);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _region?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true)]
    [BytesPerOperation(Region)]
    public long SequentialRead() => _region!.SequentialRead();

    [Benchmark]
    [BytesPerOperation(Region)]
    public int Scan() => _region!.ScanNodes().Nodes.Count;
}
