// Runs the `debug load` workload (LoadModel) on a mounted filesystem: one OS thread per workload
// thread, each committing its transactions in order through Transact. Every F-th transaction of a
// thread (by number: i % F == 0) commits with a flush; when that flush returns, every earlier
// transaction of the thread is durable too and the thread reports `durable t i`. The last
// transaction of a run is waited for in the same way, so a run that ends normally reports its end.
//
// Running out of space (no node space, a full journal, ENOSPC from the host) is an expected end
// of a load, not a failure of it: the thread that meets it stops, the others stop after their
// current transaction and report it durable, and the result carries the error with what every
// thread committed. Any other failure stops every thread and is rethrown.
//
// Parameters: the first load stores them in the image (one flushed transaction, before any
// thread starts) and needs the threads' ranges empty; later loads read them, and a flag that
// disagrees is a usage error naming the stored value. Each thread resumes after its counter.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;
using Basalt.Btree.Node;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Transactions;

namespace Basalt.Cli;

/// <summary>Parameter flags as given on the command line (null: not given).</summary>
internal sealed record LoadFlags(int? Seed, int? Threads, int? ValueBytes, int? Keys)
{
    /// <summary>Usage error when a given flag disagrees with the parameters stored in <paramref name="image"/>.</summary>
    public void CheckAgainst(LoadParameters stored, string image)
    {
        Check("--seed", Seed, stored.Seed);
        Check("--threads", Threads, stored.Threads);
        Check("--value-bytes", ValueBytes, stored.ValueBytes);
        Check("--keys", Keys, stored.Keys);

        void Check(string option, int? given, int value)
        {
            if (given is { } g && g != value)
            {
                CliContext.Usage(string.Create(CultureInfo.InvariantCulture,
                    $"{option} {g} conflicts with {option} {value} stored in {image} by its first load"));
            }
        }
    }
}

internal sealed record LoadRunOptions
{
    /// <summary>Transactions per thread; null runs until <see cref="Duration"/> has passed.</summary>
    public long? Transactions { get; init; }

    public TimeSpan? Duration { get; init; }

    /// <summary>Every transaction whose number is a multiple of this commits with a flush.</summary>
    public int FlushEvery { get; init; } = 1;

    /// <summary>Stops every thread after its current transaction (the run then ends normally).</summary>
    public CancellationToken Cancellation { get; init; }
}

internal sealed record LoadThreadResult(int Thread, long First, long Last, long Inserts, long Overwrites, long Deletes, long Flushes)
{
    public long Count => Last - First + 1;
}

/// <param name="Full">The out-of-space error (class NoSpace) that ended the run early, or null; the filesystem may be in emergency read-only.</param>
internal sealed record LoadRunResult(IReadOnlyList<LoadThreadResult> Threads, TimeSpan Elapsed, bool Interrupted, BasaltException? Full = null)
{
    public long Transactions => Threads.Sum(t => t.Count);
}

internal static class LoadRunner
{
    /// <summary>
    /// The parameters of the load on <paramref name="fs"/>, without writing anything: read from the
    /// image (<paramref name="stored"/> true), or made from the flags and defaults for a first load.
    /// Every reason to refuse the load is found here: a flag that conflicts with the stored value, a
    /// value size the image's nodes cannot hold, keys already present in the threads' ranges.
    /// </summary>
    public static LoadParameters Resolve(BasaltFileSystem fs, LoadFlags flags, out bool stored)
    {
        var tree = fs.Btrees[BtreeId.Test];
        var image = fs.Device.Name;
        if (tree.TryGet(LoadModel.ParametersPos, out var value))
        {
            var p = LoadParameters.Decode(value);
            flags.CheckAgainst(p, image);
            stored = true;
            return p;
        }
        var fresh = new LoadParameters(
            flags.Seed ?? LoadParameters.DefaultSeed,
            flags.Threads ?? LoadParameters.DefaultThreads,
            flags.ValueBytes ?? LoadParameters.DefaultValueBytes,
            flags.Keys ?? LoadParameters.DefaultKeys);
        var max = BtreeNodeFormat.MaxValueBytes(fs.Superblock.NodeSize);
        if (fresh.ValueBytes > max)
        {
            CliContext.Usage(string.Create(CultureInfo.InvariantCulture,
                $"--value-bytes {fresh.ValueBytes} is more than a key of {image} holds ({max} bytes with {fs.Superblock.NodeSize}-byte nodes)"));
        }
        var it = tree.Iterate(LoadModel.RangeStart(0), LoadModel.RangeEnd(fresh.Threads - 1));
        if (it.MoveNext())
        {
            throw new BasaltException(ErrorCode.ExistingFilesystem,
                $"{image}: btree test already holds keys where the load's threads write (the first at {it.Key.Pos.ToText()}) " +
                $"but no load parameters at {LoadModel.ParametersPos.ToText()}; load needs a test btree without keys below inode {(ulong)fresh.Threads << 32}");
        }
        stored = false;
        return fresh;
    }

    /// <summary>
    /// <see cref="Resolve"/>, then for a first load stores the parameters (one flushed transaction).
    /// <paramref name="created"/> tells whether they were stored now.
    /// </summary>
    public static LoadParameters Prepare(BasaltFileSystem fs, LoadFlags flags, out bool created)
    {
        var p = Resolve(fs, flags, out var stored);
        if (!stored)
            fs.Transact(t => t.Set(BtreeId.Test, LoadModel.ParametersPos, p.Encode()), CommitOptions.Durable);
        created = !stored;
        return p;
    }

    /// <summary>Thread <paramref name="thread"/>'s counter on <paramref name="fs"/>: the last transaction the image holds (0: none).</summary>
    public static long ReadCounter(BasaltFileSystem fs, LoadParameters p, int thread)
    {
        var pos = LoadModel.CounterPos(thread);
        if (!fs.Btrees[BtreeId.Test].TryGet(pos, out var value))
            return 0;
        if (!LoadModel.TryReadCounter(p, thread, value, out var k))
        {
            throw new BasaltException(ErrorCode.UnsupportedFeature,
                $"{fs.Device.Name}: the key at {pos.ToText()} in btree test holds {LoadModel.DescribeCounter(p, thread, value)} (run basalt debug load --verify)");
        }
        return k;
    }

    /// <summary>
    /// Runs every thread from its counter + 1 and returns when all have stopped. <paramref name="durable"/>
    /// is called from the threads, (thread, transaction) in each thread's order, after the flush that
    /// made that transaction durable returned. The first failure of any thread stops the others; an
    /// out-of-space error is returned in <see cref="LoadRunResult.Full"/>, any other is rethrown.
    /// </summary>
    public static LoadRunResult Run(BasaltFileSystem fs, LoadParameters p, LoadRunOptions options, Action<int, long> durable)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.FlushEvery, 1);
        var tallies = new ThreadTally[p.Threads];
        for (var t = 0; t < p.Threads; t++)
            tallies[t] = new ThreadTally(t, ReadCounter(fs, p, t));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(options.Cancellation);
        var clock = Stopwatch.StartNew();
        ExceptionDispatchInfo? failure = null;
        var threads = new Thread[p.Threads];
        for (var t = 0; t < p.Threads; t++)
        {
            var tally = tallies[t];
            threads[t] = new Thread(() =>
            {
                try
                {
                    RunThread(fs, p, tally, options, clock, stop.Token, durable);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, ExceptionDispatchInfo.Capture(e), null);
                    stop.Cancel();
                }
            })
            {
                Name = $"load thread {t}",
                IsBackground = true,
            };
            threads[t].Start();
        }
        foreach (var thread in threads)
            thread.Join();
        var full = OutOfSpace(failure?.SourceException);
        if (full is null)
            failure?.Throw();
        return new LoadRunResult([.. tallies.Select(t => t.ToResult())], clock.Elapsed,
            full is null && options.Cancellation.IsCancellationRequested, full);
    }

    /// <summary>
    /// The out-of-space error behind <paramref name="failure"/>, or null: a NoSpace error itself, or
    /// the cause of an emergency read-only (a write the host refused with ENOSPC).
    /// </summary>
    private static BasaltException? OutOfSpace(Exception? failure) => failure switch
    {
        BasaltException { Class: ErrorClass.NoSpace } full => full,
        BasaltException { Code: ErrorCode.EmergencyReadOnly, InnerException: BasaltException { Class: ErrorClass.NoSpace } full } => full,
        _ => null,
    };

    /// <summary>What one thread has committed so far; kept outside the thread so a run that fails still reports it.</summary>
    private sealed class ThreadTally(int thread, long counter)
    {
        public int Thread { get; } = thread;

        /// <summary>The thread's counter when the run started.</summary>
        public long Counter { get; } = counter;

        public long Last { get; set; } = counter;
        public long Inserts { get; set; }
        public long Overwrites { get; set; }
        public long Deletes { get; set; }
        public long Flushes { get; set; }

        public LoadThreadResult ToResult() => new(Thread, Counter + 1, Last, Inserts, Overwrites, Deletes, Flushes);
    }

    private static void RunThread(BasaltFileSystem fs, LoadParameters p, ThreadTally tally, LoadRunOptions options,
        Stopwatch clock, CancellationToken stop, Action<int, long> durable)
    {
        var ops = new LoadOp[LoadModel.MaxOpsPerTransaction];
        var thread = tally.Thread;
        var counter = tally.Counter;
        ulong lastSeq = 0;
        var lastFlushed = true;
        for (var i = counter + 1; !stop.IsCancellationRequested; i++)
        {
            if (options.Transactions is { } n && i > counter + n)
                break;
            if (options.Duration is { } d && clock.Elapsed >= d)
                break;
            var count = LoadModel.Plan(p, thread, i, ops);
            var flush = i % options.FlushEvery == 0;
            var number = i;
            var (inserted, overwritten, deleted) = fs.Transactor.Transact(t => Apply(t, p, thread, number, ops.AsSpan(0, count)),
                new CommitOptions(flush), out var result);
            tally.Inserts += inserted;
            tally.Overwrites += overwritten;
            tally.Deletes += deleted;
            tally.Last = i;
            lastSeq = result.Seq;
            lastFlushed = flush;
            if (flush)
            {
                tally.Flushes++;
                durable(thread, i);
            }
        }
        if (!lastFlushed)
        {
            fs.Journal.WaitDurable(lastSeq);
            tally.Flushes++;
            durable(thread, tally.Last);
        }
    }

    /// <summary>The body of transaction <paramref name="i"/>: its slot updates and the counter. Pure: it may run again.</summary>
    private static (int Inserts, int Overwrites, int Deletes) Apply(Transaction t, LoadParameters p, int thread, long i, ReadOnlySpan<LoadOp> ops)
    {
        int inserts = 0, overwrites = 0, deletes = 0;
        foreach (var op in ops)
        {
            var pos = LoadModel.SlotPos(thread, op.Slot);
            var exists = t.TryGet(BtreeId.Test, pos, out _);
            if (op.Set)
            {
                t.Set(BtreeId.Test, pos, LoadModel.Value(p, thread, i, op.Slot));
                if (exists)
                    overwrites++;
                else
                    inserts++;
            }
            else if (exists)
            {
                t.Delete(BtreeId.Test, pos);
                deletes++;
            }
        }
        t.Set(BtreeId.Test, LoadModel.CounterPos(thread), LoadModel.CounterValue(p, thread, i));
        return (inserts, overwrites, deletes);
    }
}
