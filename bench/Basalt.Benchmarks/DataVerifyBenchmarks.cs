// The CPU cost a verified data read adds to the device read, per run of 64 KiB (the largest run
// one checksum covers): the checksum alone (a run read straight into the caller's buffer and
// verified there, ExtentStore's path for whole runs) and checksum + copy (a run read into a
// scratch buffer, verified, and its live window copied out: trimmed extents and partial runs),
// for crc32c (the default) and xxhash64, against the plain 64 KiB copy a raw read costs on top
// of the kernel's. ChecksumBenchmarks covers the same functions over 256 KiB nodes.
using BenchmarkDotNet.Attributes;
using Basalt.Format;

namespace Basalt.Benchmarks;

[MemoryDiagnoser]
[ShortRunJob]
[Config(typeof(ThroughputConfig))]
public class DataVerifyBenchmarks
{
    private const int Run = 64 * 1024;
    private readonly byte[] _run = new byte[Run];
    private readonly byte[] _destination = new byte[Run];
    private ulong _crc32C;
    private ulong _xxHash64;

    [GlobalSetup]
    public void Setup()
    {
        new Random(9).NextBytes(_run);
        _crc32C = Checksums.Compute(ChecksumType.Crc32C, _run);
        _xxHash64 = Checksums.Compute(ChecksumType.XxHash64, _run);
    }

    [Benchmark(Baseline = true)]
    [BytesPerOperation(Run)]
    public void Copy64K() => _run.AsSpan().CopyTo(_destination);

    [Benchmark]
    [BytesPerOperation(Run)]
    public bool Crc32CVerify64K() => Checksums.Compute(ChecksumType.Crc32C, _run) == _crc32C;

    [Benchmark]
    [BytesPerOperation(Run)]
    public bool Crc32CVerifyCopy64K() => VerifyAndCopy(ChecksumType.Crc32C, _crc32C);

    [Benchmark]
    [BytesPerOperation(Run)]
    public bool XxHash64Verify64K() => Checksums.Compute(ChecksumType.XxHash64, _run) == _xxHash64;

    [Benchmark]
    [BytesPerOperation(Run)]
    public bool XxHash64VerifyCopy64K() => VerifyAndCopy(ChecksumType.XxHash64, _xxHash64);

    private bool VerifyAndCopy(ChecksumType type, ulong expected)
    {
        if (Checksums.Compute(type, _run) != expected)
            return false;
        _run.AsSpan().CopyTo(_destination);
        return true;
    }
}
