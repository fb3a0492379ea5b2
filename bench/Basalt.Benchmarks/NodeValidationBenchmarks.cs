// Node read: checksum, validate every key and merge the bsets into one run, for a full 256 KiB
// leaf of 100-byte cookie values. Target (bench/README.md): at least 1 GB/s on the clean path.
using System.Reflection;
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Format;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Basalt.Benchmarks;

[MemoryDiagnoser]
[ShortRunJob]
[Config(typeof(ThroughputConfig))]
public class NodeValidationBenchmarks
{
    private const int NodeSize = 256 * 1024;
    private const int BlockSize = 4096;
    private const int ValueBytes = 100;
    private const ulong Magic = 0x45444F4E544C5342UL;
    private const ulong Seq = 0x0123_4567_89ab_cdefUL;

    private byte[] _oneBset = [];
    private byte[] _threeBsets = [];
    private NodeReadContext _oneContext;
    private NodeReadContext _threeContext;

    [GlobalSetup]
    public void Setup()
    {
        (_oneBset, _oneContext) = BuildNode([1.0]);
        (_threeBsets, _threeContext) = BuildNode([0.80, 0.15, 0.05]);
        foreach (var (slot, context) in new[] { (_oneBset, _oneContext), (_threeBsets, _threeContext) })
        {
            var result = BtreeNodeReader.Read(slot, context);
            if (!result.Ok || result.Findings.Count != 0)
                throw new InvalidOperationException("benchmark node does not validate: " + result.ToText());
        }
    }

    /// <summary>A node filled to capacity, its keys spread over bsets in the given proportions (later bsets overwrite every 7th key).</summary>
    private static (byte[] Slot, NodeReadContext Context) BuildNode(double[] shares)
    {
        var slot = new byte[NodeSize];
        var options = new BsetWriteOptions(BlockSize, ChecksumType.Crc32C, FormatVersion.Current, 1);
        var header = new NodeHeader(Seq, 1, BtreeId.Test, 0, Bpos.Min, Bpos.Max);
        var perKey = BkeyFormat.EncodedSize(ValueBytes);
        var capacity = (NodeSize - (shares.Length * BlockSize)) / perKey;
        var value = new byte[ValueBytes];
        new Random(42).NextBytes(value);
        var written = 0;
        ulong inode = 1;
        for (var b = 0; b < shares.Length; b++)
        {
            var builder = new KeyRunBuilder(1024, 1 << 18);
            var n = (int)(capacity * shares[b]);
            for (var i = 0; i < n; i++)
            {
                var pos = b == 0 ? new Bpos(inode++, 0) : new Bpos(1 + ((ulong)i * 7), 0);
                builder.Add(new Bkey(pos, KeyType.Cookie), value);
            }
            var keys = builder.Build();
            written += b == 0
                ? BtreeNodeWriter.WriteFirst(slot, Magic, header, keys, options)
                : BtreeNodeWriter.WriteAppend(slot.AsSpan(written), Seq, written / 512, keys, options);
        }
        var ptr = new BtreePtrValue { Seq = Seq, SectorsWritten = (ushort)(written / 512), MinKey = Bpos.Min, Ptrs = [new DevicePtr(0, 2048, 0)] };
        var context = new NodeReadContext(BtreeId.Test, 0, Bpos.Max, ptr, Magic, NodeSize, BlockSize, FormatVersion.Current, FormatVersion.Min);
        return (slot, context);
    }

    [Benchmark(Baseline = true)]
    [BytesPerOperation(NodeSize)]
    public int ReadFullNodeOneBset() => BtreeNodeReader.Read(_oneBset, _oneContext).Keys.Count;

    [Benchmark]
    [BytesPerOperation(NodeSize)]
    public int ReadInPlaceFullNodeOneBset() => BtreeNodeReader.ReadInPlace(_oneBset, _oneContext).Keys.Count;

    [Benchmark]
    [BytesPerOperation(NodeSize)]
    public int ReadFullNodeThreeBsets() => BtreeNodeReader.Read(_threeBsets, _threeContext).Keys.Count;
}

/// <summary>Bytes one operation of a benchmark processes, for the throughput column.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BytesPerOperationAttribute(long bytes) : Attribute
{
    public long Bytes { get; } = bytes;
}

/// <summary>Adds a MB/s column computed from <see cref="BytesPerOperationAttribute"/> and the mean time.</summary>
public sealed class ThroughputConfig : ManualConfig
{
    public ThroughputConfig() => AddColumn(new ThroughputColumn());
}

public sealed class ThroughputColumn : IColumn
{
    public string Id => nameof(ThroughputColumn);
    public string ColumnName => "MB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Throughput in MB/s (10^6 bytes per second) from the bytes one operation processes";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var bytes = benchmarkCase.Descriptor.WorkloadMethod.GetCustomAttribute<BytesPerOperationAttribute>()?.Bytes;
        var meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (bytes is null || meanNs is null or <= 0)
            return "-";
        return (bytes.Value * 1000.0 / meanNs.Value).ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
    }

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
}
