// How each peer benchmark's time per operation becomes the rate the tables quote. Benchmarks whose
// one operation covers the whole data set (a load, a full scan) count its keys.
namespace Basalt.Benchmarks.Peers;

public readonly record struct PeerRate(string Title, string Unit, double OperationsPerMeasured, int Order)
{
    /// <summary>Rate from a time per measured operation in nanoseconds.</summary>
    public double PerSecond(double nanoseconds) => OperationsPerMeasured * 1e9 / nanoseconds;
}

public static class PeerRates
{
    public static PeerRate Of(string benchmark) => benchmark switch
    {
        nameof(PeerCommitBenchmarks.DurableCommit1Thread) => new("durable commit, 1 thread", "commits/s", 1, 0),
        nameof(PeerCommitBenchmarks.DurableCommit8Threads) => new("durable commit, 8 threads", "commits/s", 1, 1),
        nameof(PeerLoadBenchmarks.RandomInsert) => new($"random insert {PeerSettings.Keys:N0}, batches of {PeerLoadBenchmarks.BatchSize}", "keys/s", PeerSettings.Keys, 2),
        nameof(PeerReadBenchmarks.PointLookup) => new("point lookup", "lookups/s", 1, 3),
        nameof(PeerReadBenchmarks.FullScan) => new("ordered scan, all keys", "keys/s", PeerSettings.Keys, 4),
        nameof(PeerReadBenchmarks.RangeScan100) => new($"seek + scan {PeerReadBenchmarks.ScanLength} keys", "scans/s", 1, 5),
        _ => new(benchmark, "ops/s", 1, 99),
    };
}
