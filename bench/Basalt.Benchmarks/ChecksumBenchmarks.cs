// Checksums over a 256 KiB node: crc32c (the default, on the CPU's crc32 instruction), crc64 and
// xxhash64. Target (bench/README.md): crc32c several GB/s.
using BenchmarkDotNet.Attributes;
using Basalt.Format;

namespace Basalt.Benchmarks;

[MemoryDiagnoser]
[ShortRunJob]
[Config(typeof(ThroughputConfig))]
public class ChecksumBenchmarks
{
    private const int Bytes = 256 * 1024;
    private readonly byte[] _data = new byte[Bytes];

    [GlobalSetup]
    public void Setup() => new Random(7).NextBytes(_data);

    [Benchmark(Baseline = true)]
    [BytesPerOperation(Bytes)]
    public uint Crc32C256K() => Crc32C.Compute(_data);

    [Benchmark]
    [BytesPerOperation(Bytes)]
    public ulong Crc64256K() => System.IO.Hashing.Crc64.HashToUInt64(_data);

    [Benchmark]
    [BytesPerOperation(Bytes)]
    public ulong XxHash64256K() => System.IO.Hashing.XxHash64.HashToUInt64(_data);
}
