// Durable single-key commits, the number the journal exists to raise: one key of 100 bytes per
// commit, the call returning only once it is on stable storage, on 1 thread and on 8 threads
// (each thread committing its own keys, so engines that group concurrent commits can). The raw
// device peer (4 KiB pwrite + fdatasync) is the floor of what this disk allows. Stores start
// empty. One operation is one commit: BenchmarkDotNet's time per operation is 1 / commits per
// second, across all threads for the 8-thread case.
using Basalt.Benchmarks.Peers;
using BenchmarkDotNet.Attributes;

namespace Basalt.Benchmarks;

[MemoryDiagnoser]
[Config(typeof(PeerCommitConfig))]
public class PeerCommitBenchmarks
{
    public const int Threads = 8;
    private const int CommitsPerThread = 32;

    private readonly long[] _next = new long[Threads];
    private IDurableCommitter? _committer;
    private CommitWorkers? _workers;

    public static IEnumerable<string> Peers => PeerCatalog.CommitPeers;

    [ParamsSource(nameof(Peers))]
    public string Peer { get; set; } = PeerCatalog.Reference;

    [GlobalSetup]
    public void Setup()
    {
        _committer = PeerCatalog.OpenCommitter(Peer, PeerSettings.NewStoreDirectory(Peer));
        PeerReport.RecordSettings(_committer);
        _workers = new CommitWorkers(Threads, CommitRun);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _workers?.Dispose();
        PeerReport.DisposeAndDelete(_committer);
    }

    [Benchmark(OperationsPerInvoke = CommitsPerThread)]
    public void DurableCommit1Thread() => CommitRun(0);

    [Benchmark(OperationsPerInvoke = CommitsPerThread * Threads)]
    public void DurableCommit8Threads() => _workers!.RunOnce();

    private void CommitRun(int thread)
    {
        var committer = _committer!;
        var next = _next[thread];
        for (var i = 0; i < CommitsPerThread; i++, next++)
            committer.CommitDurable(new PeerKey((ulong)thread + 1, (ulong)next), PeerData.Value(next));
        _next[thread] = next;
    }
}

/// <summary>
/// Threads that each run one piece of work per <see cref="RunOnce"/>, started together behind a
/// barrier and waited for together, so thread start-up is not measured.
/// </summary>
public sealed class CommitWorkers : IDisposable
{
    private readonly Barrier _barrier;
    private readonly Thread[] _threads;
    private readonly Action<int> _work;
    private volatile bool _stopping;
    private Exception? _failure;

    public CommitWorkers(int count, Action<int> work)
    {
        _work = work;
        _barrier = new Barrier(count + 1);
        _threads = new Thread[count];
        for (var i = 0; i < count; i++)
        {
            var index = i;
            _threads[i] = new Thread(() => Loop(index)) { IsBackground = true, Name = $"peer-commit-{i}" };
            _threads[i].Start();
        }
    }

    public void RunOnce()
    {
        _barrier.SignalAndWait();
        _barrier.SignalAndWait();
        if (_failure is { } failure)
            throw new InvalidOperationException("a committing thread failed", failure);
    }

    public void Dispose()
    {
        _stopping = true;
        _barrier.SignalAndWait();
        foreach (var thread in _threads)
            thread.Join();
        _barrier.Dispose();
    }

    private void Loop(int index)
    {
        while (true)
        {
            _barrier.SignalAndWait();
            if (_stopping)
                return;
            try
            {
                _work(index);
            }
            catch (Exception ex)
            {
                Interlocked.CompareExchange(ref _failure, ex, null);
            }
            _barrier.SignalAndWait();
        }
    }
}
