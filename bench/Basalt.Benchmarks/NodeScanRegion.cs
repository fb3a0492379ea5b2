// The node scan's measured region, shared by NodeScanBenchmarks (warm, BenchmarkDotNet) and the
// `scan` command (cold and warm, ScanMeasurement): a file whose every 16 KiB slot holds a full,
// valid leaf, the scan's worst case (every slot is a candidate and is validated), opened
// read-only through FileBlockDevice. Both measure the same two operations on it: a plain
// sequential read in the scan's chunks, and NodeScan.Run as check_topology calls it.
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Format;

namespace Basalt.Benchmarks;

internal sealed class NodeScanRegion : IDisposable
{
    public const int NodeSize = 16 * 1024;
    public const int BlockSize = 4096;
    private const ulong Magic = 0x45444F4E544C5342UL ^ 0x1122334455667788UL;

    private readonly FileBlockDevice _device;
    private readonly byte[] _chunk = new byte[NodeScan.ChunkBytes];

    private NodeScanRegion(string path, FileBlockDevice device, BtreeGeometry geometry)
    {
        Path = path;
        _device = device;
        Geometry = geometry;
    }

    public string Path { get; }

    public BtreeGeometry Geometry { get; }

    public long Length => Geometry.NodeAreaLength;

    public int Slots => (int)(Length / NodeSize);

    /// <summary>
    /// Writes <paramref name="slots"/> leaves (each as full as 100-byte values allow, a distinct
    /// range per slot) to a new file at <paramref name="path"/>, opens it read-only and checks
    /// that it scans as one chosen node per slot.
    /// </summary>
    public static NodeScanRegion Create(string path, int slots)
    {
        var length = (long)NodeSize * slots;
        var geometry = new BtreeGeometry
        {
            NodeSize = NodeSize,
            BlockSize = BlockSize,
            NodeAreaOffset = 0,
            NodeAreaLength = length,
            NodeMagic = Magic,
        };
        using (var create = FileBlockDevice.Create(path, length, overwrite: true))
        {
            var slot = new byte[NodeSize];
            var value = new byte[100];
            new Random(42).NextBytes(value);
            var options = new BsetWriteOptions(BlockSize, ChecksumType.Crc32C, FormatVersion.Current, 1);
            var perKey = BkeyFormat.EncodedSize(value.Length);
            var keys = (NodeSize - BtreeNodeFormat.FirstKeysOffset) / perKey;
            for (var s = 0; s < slots; s++)
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
        var region = new NodeScanRegion(path, FileBlockDevice.Open(path, readOnly: true), geometry);
        if (region.ScanNodes().Nodes.Count(n => n.Status == ScannedNodeStatus.Chosen) != slots)
        {
            region.Dispose();
            throw new InvalidOperationException("benchmark region does not scan as one chosen node per slot");
        }
        return region;
    }

    /// <summary>The region read front to back in the scan's chunks (NodeScan.ChunkBytes, whole nodes); returns a byte of each chunk so the reads are used.</summary>
    public long SequentialRead()
    {
        long sum = 0;
        for (long at = 0; at < Length; at += _chunk.Length)
        {
            var length = (int)Math.Min(_chunk.Length, Length - at);
            _device.Read(at, _chunk.AsSpan(0, length));
            sum += _chunk[length - 1];
        }
        return sum;
    }

    /// <summary>The node scan of the region, as check_topology runs it (no journal blacklist).</summary>
    public NodeScan ScanNodes() => NodeScan.Run(_device, Geometry, null, CancellationToken.None);

    public void Dispose() => _device.Dispose();
}
