// The journal's throughput without flushes, and recovery after a crash with a full journal.
//
// JournalCommitBenchmarks: transactions committed through the journal with no flush requested,
// on a 4 GiB image file (256 KiB nodes, 4 KiB blocks, 32 MiB journal: 128 buckets of 256 KiB),
// the journal writer and reclaim running as their own threads exactly as a mount starts them,
// and no checkpoint between iterations: every iteration commits far more than the journal holds,
// so reclaim's write-back rounds, pins and bucket reuse are inside the measurement. Two shapes,
// as the journal goals name them: single-key transactions on random keys (1,600,000 of them, then
// overwrites of the same), and 100-key transactions on sequential keys (wrapping around after
// 2,000,000, then overwrites in order). Results are per transaction and per key (OperationsPerInvoke).
//
// JournalReplayBenchmarks: a 16 GiB image (128 MiB journal) is filled with 100-key transactions
// while write-back is held back (manual journal steps, no reclaim), until the journal is nearly
// full, then closed as a crash leaves it (no write-back, no clean shutdown). Each iteration
// mounts it read-only: read and validate the journal, sort and dedup its keys, replay onto the
// overlay. Mounting read-only changes no byte, so every iteration recovers the same crash. The
// page cache is warm (the image was just written); the cold figure comes from
// `bench/replay.sh`, which drops caches before each mount.
using BenchmarkDotNet.Attributes;
using Basalt.Btree;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Journal;
using Basalt.Superblocks;

namespace Basalt.Benchmarks;

[MemoryDiagnoser]
[ShortRunJob]
public class JournalCommitBenchmarks
{
    private const int SingleKeyCommits = 200_000;
    private const int BatchCommits = 5_000;
    private const int KeysPerBatch = 100;
    private const int NodeSize = 256 * 1024;

    // The keys wrap around within these ranges (overwrites from then on), so however many
    // invocations the run makes the tree stays within the image's node area.
    private const ulong SequentialKeys = 2_000_000;

    private readonly byte[] _value = new byte[100];
    private string _directory = "";
    private BasaltFileSystem? _fs;
    private ulong[] _randomKeys = [];
    private int _randomCursor;
    private ulong _nextSequential;

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), $"basalt-bench-journal-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_directory);
        _fs = BasaltFileSystem.Format(Path.Combine(_directory, "image"), 4L * 1024 * 1024 * 1024,
            new FormatOptions { NodeSize = NodeSize, BucketSize = NodeSize, BlockSize = 4096 },
            new MountOptions { Engine = new BtreeEngineOptions { CacheBudgetBytes = 2L * 1024 * 1024 * 1024, Random = new Random(1) } });
        var rng = new Random(42);
        rng.NextBytes(_value);
        _randomKeys = new ulong[SingleKeyCommits * 8];
        for (var i = 0; i < _randomKeys.Length; i++)
            _randomKeys[i] = (ulong)rng.NextInt64(); // 1,600,000 random keys, then the same again
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_fs is { } fs)
        {
            var stats = fs.Journal.Stats;
            Console.WriteLine($"// journal: {stats.ToText()}");
            Console.WriteLine($"// engine: {fs.Btrees.Stats.ToText()}");
            fs.Dispose();
        }
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>One key per transaction, random positions, no flush.</summary>
    [Benchmark(OperationsPerInvoke = SingleKeyCommits)]
    public void SingleKeyNoFlush()
    {
        var fs = _fs!;
        var keys = _randomKeys;
        var at = _randomCursor;
        var value = _value;
        for (var i = 0; i < SingleKeyCommits; i++)
        {
            var pos = new Bpos(3, keys[at]);
            fs.Transact(t => t.Set(BtreeId.Test, pos, value));
            at = at + 1 == keys.Length ? 0 : at + 1;
        }
        _randomCursor = at;
    }

    /// <summary>100 sequential keys per transaction, no flush; per key.</summary>
    [Benchmark(OperationsPerInvoke = BatchCommits * KeysPerBatch)]
    public void HundredKeysNoFlush()
    {
        var fs = _fs!;
        var value = _value;
        var next = _nextSequential;
        for (var i = 0; i < BatchCommits; i++)
        {
            var first = next;
            fs.Transact(t =>
            {
                for (var k = 0UL; k < KeysPerBatch; k++)
                    t.Set(BtreeId.Test, new Bpos(4, first + k), value);
            });
            next = next + KeysPerBatch >= SequentialKeys ? 0 : next + KeysPerBatch;
        }
        _nextSequential = next;
    }
}

[MemoryDiagnoser]
[ShortRunJob]
public class JournalReplayBenchmarks
{
    private const int NodeSize = 256 * 1024;
    private const int KeysPerTransaction = 100;

    private string _directory = "";
    private string _image = "";

    /// <summary>Keys the last mount replayed (printed at cleanup with the journal's extent).</summary>
    private int _keysReplayed;
    private string _recovery = "";

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), $"basalt-bench-replay-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_directory);
        _image = Path.Combine(_directory, "image");
        var (transactions, stats) = CrashWithFullJournal(_image);
        Console.WriteLine($"// crashed image: 16 GiB, {transactions} transactions of {KeysPerTransaction} keys committed; journal {stats.ToText()}");
    }

    /// <summary>
    /// Formats a 16 GiB image and commits 100-key transactions of random keys until the journal is
    /// nearly full, stepping the journal writer by hand so nothing is written back, then closes it
    /// as a crash would. Returns the transactions committed and the journal's final stats.
    /// </summary>
    public static (long Transactions, JournalStats Stats) CrashWithFullJournal(string path)
    {
        var fs = BasaltFileSystem.Format(path, 16L * 1024 * 1024 * 1024,
            new FormatOptions { NodeSize = NodeSize, BucketSize = NodeSize, BlockSize = 4096 },
            new MountOptions
            {
                Engine = new BtreeEngineOptions { CacheBudgetBytes = 4L * 1024 * 1024 * 1024, Random = new Random(1) },
                Journal = new JournalOptions { Manual = true },
            });
        var rng = new Random(7);
        var value = new byte[100];
        rng.NextBytes(value);
        long transactions = 0;
        try
        {
            while (true)
            {
                var stats = fs.Journal.Stats;
                // Stop four buckets short of the reserve ordinary commits leave free (an eighth of
                // the ring): past it, a commit in step mode runs write-back rounds itself.
                if (stats.BucketsInUse >= stats.Buckets - (stats.Buckets / 8) - 4)
                    break;
                fs.Transact(t =>
                {
                    for (var k = 0; k < KeysPerTransaction; k++)
                        t.Set(BtreeId.Test, new Bpos(5, (ulong)rng.NextInt64()), value);
                });
                transactions++;
                // Every closed entry written at once: the writer's queue never fills.
                while (fs.Journal.Step(flush: transactions % 256 == 0))
                {
                }
            }
            while (fs.Journal.Step(flush: true))
            {
            }
            if (fs.Btrees.Stats.WriteBackRounds != 0)
                throw new InvalidOperationException($"write-back ran while the journal was being filled: {fs.Btrees.Stats.ToText()}; journal {fs.Journal.Stats.ToText()}");
            return (transactions, fs.Journal.Stats);
        }
        finally
        {
            fs.Close(sync: false);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Console.WriteLine($"// last mount: {_recovery}; {_keysReplayed} keys replayed");
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>A read-only mount of the crashed image: journal read, sorted, replayed in memory.</summary>
    [Benchmark]
    public int MountAfterCrash()
    {
        using var fs = BasaltFileSystem.Mount(_image, new MountOptions
        {
            ReadOnly = true,
            Engine = new BtreeEngineOptions { CacheBudgetBytes = 4L * 1024 * 1024 * 1024 },
        });
        _keysReplayed = fs.Recovery.KeysReplayed;
        var r = fs.Recovery;
        _recovery = $"{r.ToText()}; scan {r.ScanElapsed.TotalMilliseconds:F0} ms ({r.JournalBytesRead >> 20} MiB), " +
                    $"plan {r.PlanElapsed.TotalMilliseconds:F0} ms, replay {r.ReplayElapsed.TotalMilliseconds:F0} ms, mount {r.Elapsed.TotalMilliseconds:F0} ms";
        return _keysReplayed;
    }
}
