// The node scan (check_topology's brute-force search for btree nodes) against a plain sequential
// read of the same region in the same chunks. Target (docs/topology.md): the scan takes at most
// 1.4× the sequential read. The region is a file whose every slot holds a full, valid leaf (the
// worst case: every slot is validated); both methods read it through FileBlockDevice. The file
// stays in the page cache between iterations, so the ratio measures what the scan adds on top of
// the read (magic test, validation, version choice), the part a cold read does not hide.
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Format;
using BenchmarkDotNet.Attributes;

namespace Basalt.Benchmarks;

[MemoryDiagnoser]
[ShortRunJob]
[Config(typeof(ThroughputConfig))]
public class NodeScanBenchmarks
{
    private const int NodeSize = 16 * 1024;
    private const int BlockSize = 4096;
    private const int Slots = 4096;
    private const long Region = (long)NodeSize * Slots;
    private const ulong Magic = 0x45444F4E544C5342UL ^ 0x1122334455667788UL;

    private string _dir = "";
    private FileBlockDevice? _device;
    private BtreeGeometry _geometry = null!;
    private byte[] _chunk = [];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("basalt-scan-bench").FullName;
        var path = Path.Combine(_dir, "nodes.img");
        _geometry = new BtreeGeometry
        {
            NodeSize = NodeSize,
            BlockSize = BlockSize,
            NodeAreaOffset = 0,
            NodeAreaLength = Region,
            NodeMagic = Magic,
        };
        using (var create = FileBlockDevice.Create(path, Region, overwrite: true))
        {
            var slot = new byte[NodeSize];
            var value = new byte[100];
            new Random(42).NextBytes(value);
            var options = new BsetWriteOptions(BlockSize, ChecksumType.Crc32C, FormatVersion.Current, 1);
            var perKey = BkeyFormat.EncodedSize(value.Length);
            var keys = (NodeSize - BtreeNodeFormat.FirstKeysOffset) / perKey;
            for (var s = 0; s < Slots; s++)
            {
                Array.Clear(slot);
                var builder = new KeyRunBuilder(keys, keys * value.Length);
                for (var k = 0; k < keys; k++)
                    builder.Add(new Bkey(new Bpos((ulong)s + 1, (ulong)k), KeyType.Cookie), value);
                var header = new NodeHeader((ulong)s + 1, 1, BtreeId.Test, 0, new Bpos((ulong)s + 1, 0), new Bpos((ulong)s + 1, ulong.MaxValue, uint.MaxValue));
                BtreeNodeWriter.WriteFirst(slot, Magic, header, builder.Build(), options);
                create.Write((long)s * NodeSize, slot);
            }
            create.Flush();
        }
        _device = FileBlockDevice.Open(path, readOnly: true);
        _chunk = new byte[NodeScan.ChunkBytes];
        if (NodeScan.Run(_device, _geometry, null, CancellationToken.None).Nodes.Count(n => n.Status == ScannedNodeStatus.Chosen) != Slots)
            throw new InvalidOperationException("benchmark region does not scan as one chosen node per slot");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _device?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true)]
    [BytesPerOperation(Region)]
    public long SequentialRead()
    {
        long sum = 0;
        for (long at = 0; at < Region; at += _chunk.Length)
        {
            var length = (int)Math.Min(_chunk.Length, Region - at);
            _device!.Read(at, _chunk.AsSpan(0, length));
            sum += _chunk[length - 1];
        }
        return sum;
    }

    [Benchmark]
    [BytesPerOperation(Region)]
    public int Scan() => NodeScan.Run(_device!, _geometry, null, CancellationToken.None).Nodes.Count;
}
