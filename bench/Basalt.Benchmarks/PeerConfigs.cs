// Jobs of the peer benchmarks. All run in-process (InProcessEmitToolchain): one process holds every
// peer in turn, no per-case build, and the sizes and settings each case records reach the peer
// table. Iteration counts are small on purpose (2 cores, one run under ~10 minutes); the table
// quotes medians, and bench/README.md says why these jobs give stable enough numbers.
using Basalt.Benchmarks.Peers;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Perfolizer.Horology;

namespace Basalt.Benchmarks;

public static class PeerJobs
{
    private static readonly InProcessEmitToolchain s_inProcess = new(TimeSpan.FromMinutes(30), logOutput: true);

    /// <summary>Steady-state operations (commits, lookups, scans): pilot-sized iterations of ~0.5 s.</summary>
    public static Job Steady(int warmups, int iterations) => Job.Default
        .WithToolchain(s_inProcess)
        .WithLaunchCount(1)
        .WithWarmupCount(warmups)
        .WithIterationCount(iterations)
        .WithIterationTime(TimeInterval.FromMilliseconds(500))
        .WithUnrollFactor(1)
        .WithId("peers");

    /// <summary>One whole load per iteration, each from an empty store.</summary>
    public static Job Load(int warmups, int iterations) => Job.Default
        .WithToolchain(s_inProcess)
        .WithStrategy(RunStrategy.Monitoring)
        .WithLaunchCount(1)
        .WithWarmupCount(warmups)
        .WithIterationCount(iterations)
        .WithInvocationCount(1)
        .WithUnrollFactor(1)
        .WithId("peers-load");
}

public sealed class PeerCommitConfig : ManualConfig
{
    public PeerCommitConfig()
    {
        AddJob(PeerJobs.Steady(warmups: 2, iterations: 5));
        AddColumn(new PeerRateColumn());
    }
}

public sealed class PeerLoadConfig : ManualConfig
{
    public PeerLoadConfig()
    {
        AddJob(PeerJobs.Load(warmups: 1, iterations: 3));
        AddColumn(new PeerRateColumn());
    }
}

public sealed class PeerReadConfig : ManualConfig
{
    public PeerReadConfig()
    {
        AddJob(PeerJobs.Steady(warmups: 2, iterations: 5));
        AddColumn(new PeerRateColumn());
    }
}

/// <summary>The rate the peer table quotes (commits/s, keys/s, …) from the median time per operation.</summary>
public sealed class PeerRateColumn : IColumn
{
    public string Id => nameof(PeerRateColumn);
    public string ColumnName => "Rate (median)";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Operations per second from the median time per operation (unit per benchmark, see PeerRates)";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var median = summary[benchmarkCase]?.ResultStatistics?.Median;
        if (median is not > 0)
            return "-";
        var rate = PeerRates.Of(benchmarkCase.Descriptor.WorkloadMethod.Name);
        return $"{rate.PerSecond(median.Value):N0} {rate.Unit}";
    }

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
