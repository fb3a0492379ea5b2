// A seeded btree workload recorded for crash testing (DESIGN §5), for the durability model that
// exists before the journal: every "commit" is BtreeEngine.Sync, whose roots the superblock on the
// same device commits.
//
// The device is formatted first (not recorded) and captured as the base image; then the engine
// runs on  WriteOnceCheckingDevice -> [test decorator] -> RecordingBlockDevice -> MemoryBlockDevice
// so the log holds every node and superblock write and every flush completion of the run.
// Transaction k (1..N) applies a few random inserts, overwrites, deletes and range deletes to the
// Test btree and to a model, sets the counter key to k, and Syncs. The model after transaction k is
// snapshot k (snapshot 0 is the empty tree of the freshly formatted device), so a recovered state
// reveals which transaction it holds by its counter key alone.
//
// Growth, shrink and regrowth phases with tiny nodes (1 KiB, 512 B blocks) make splits, root
// splits, compactions, merges and root collapses all happen in a short run.
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Superblocks;

namespace Basalt.Tests.Crash;

internal sealed record BtreeCrashWorkloadOptions
{
    public int Seed { get; init; }

    /// <summary>Transactions, each ending with a Sync.</summary>
    public int Transactions { get; init; } = 48;

    /// <summary>Operations per transaction: 1..this.</summary>
    public int MaxOperations { get; init; } = 48;

    /// <summary>Keys are BtreeCrashWorkload.Pos(0..KeySpace-1).</summary>
    public int KeySpace { get; init; } = 600;

    public int NodeSize { get; init; } = 1024;
    public int BlockSize { get; init; } = 512;
    public int BucketSize { get; init; } = 4096;

    /// <summary>Buckets of node space: small enough that the allocator's cursor wraps during a run.</summary>
    public ulong NodeAreaBuckets { get; init; } = 40;

    public long DeviceSize { get; init; } = 1024 * 1024;

    /// <summary>Wraps the device the engine and the superblock write through (above the recorder).</summary>
    public Func<IBlockDevice, IBlockDevice>? Decorate { get; init; }

    /// <summary>Adjusts the engine's options (debug faults).</summary>
    public Func<BtreeEngineOptions, BtreeEngineOptions>? ConfigureEngine { get; init; }

    /// <summary>Called after every operation with its description (diagnosis: check the tree after each step).</summary>
    public Action<Basalt.Btree.Btree, string>? AfterOperation { get; init; }
}

/// <summary>Sync number <see cref="Number"/> issued log writes [Start, End) and returned at End.</summary>
internal readonly record struct SyncMark(int Number, int Start, int End);

internal sealed class BtreeCrashRecording
{
    public required BtreeCrashWorkloadOptions Options { get; init; }
    public required byte[] BaseImage { get; init; }
    public required WriteLog Log { get; init; }
    public required IReadOnlyList<SyncMark> Syncs { get; init; }

    /// <summary>Snapshot k: the Test btree's keys after transaction k (counter key included).</summary>
    public required IReadOnlyList<SortedDictionary<Bpos, byte[]>> Snapshots { get; init; }

    public required BtreeStats Stats { get; init; }

    /// <summary>Highest tree level seen after any Sync (0 = a single leaf).</summary>
    public required int MaxRootLevel { get; init; }

    /// <summary>
    /// The last Sync that returned before crash point <paramref name="crashPoint"/>: its writes and
    /// flushes all happened before write crashPoint was issued (a Sync whose last flush completes
    /// exactly at the crash point counts as not returned, as the enumerator counts that flush).
    /// </summary>
    public int LowerBound(int crashPoint)
    {
        var k = 0;
        foreach (var s in Syncs)
        {
            if (s.End < crashPoint)
                k = s.Number;
        }
        return k;
    }

    /// <summary>The last Sync that had issued a write before crash point <paramref name="crashPoint"/>.</summary>
    public int UpperBound(int crashPoint)
    {
        var k = 0;
        foreach (var s in Syncs)
        {
            if (s.Start < crashPoint)
                k = s.Number;
        }
        return k;
    }

    public string ToText() =>
        $"{Syncs.Count} syncs, {Log.Count} writes, {Log.Flushes.Count} flushes, tree depth up to {MaxRootLevel + 1}, " +
        $"final keys {Snapshots[^1].Count}; {Stats.ToText()}";
}

internal static class BtreeCrashWorkload
{
    /// <summary>The counter key: its value is the number of the transaction the tree holds.</summary>
    public static readonly Bpos CounterPos = new(0xC0_0000, 0);

    private static readonly DateTimeOffset s_time = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static Bpos Pos(int i) => new((ulong)(i / 100), (ulong)(i % 100));

    public static byte[] CounterValue(int k)
    {
        var value = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(value, k);
        return value;
    }

    public static int ReadCounter(ReadOnlySpan<byte> value) =>
        value.Length == 8 ? checked((int)BinaryPrimitives.ReadInt64LittleEndian(value)) : -1;

    public static BtreeCrashRecording Record(BtreeCrashWorkloadOptions options)
    {
        var memory = new MemoryBlockDevice(options.DeviceSize, "crash workload");
        var superblock = SuperblockIo.Format(memory, new FormatOptions
        {
            BlockSize = options.BlockSize,
            BucketSize = options.BucketSize,
            NodeSize = options.NodeSize,
            NodeAreaBuckets = options.NodeAreaBuckets,
            Uuid = new Guid(0x6261_7361, 0x6c74, 0x4352, 0x41, 0x53, 0x48, 0x53, 0x55, 0x49, 0x54, 0x45),
            DeviceUuid = new Guid(0x6465_7669, 0x6365, 0x3030, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x31),
            Time = s_time,
        });
        var baseImage = memory.Contents.ToArray();

        var recorder = new RecordingBlockDevice(memory);
        var top = options.Decorate?.Invoke(recorder) ?? recorder;
        var checker = new WriteOnceCheckingDevice(top);
        var committer = new SuperblockRootCommitter(checker, superblock, s_time);
        var engineOptions = new BtreeEngineOptions
        {
            CacheBudgetBytes = 64L * 1024 * 1024,
            NodeSpaceObserver = checker,
            Random = new Random(options.Seed),
        };
        engineOptions = options.ConfigureEngine?.Invoke(engineOptions) ?? engineOptions;

        var rng = new Random(options.Seed);
        var model = new SortedDictionary<Bpos, byte[]>();
        var snapshots = new List<SortedDictionary<Bpos, byte[]>> { new() };
        var syncs = new List<SyncMark>();
        var maxLevel = 0;
        using (var engine = CrashMount.Mount(checker, engineOptions, committer, out _))
        {
            var tree = engine[BtreeId.Test];
            for (var k = 1; k <= options.Transactions; k++)
            {
                RunTransaction(tree, model, rng, options, Phase(k, options.Transactions), engine.MaxValueBytes);
                var counter = CounterValue(k);
                tree.Insert(CounterPos, counter);
                model[CounterPos] = counter;
                options.AfterOperation?.Invoke(tree, $"counter {k}");
                snapshots.Add(new SortedDictionary<Bpos, byte[]>(model));

                var start = recorder.Log.Count;
                engine.Sync();
                options.AfterOperation?.Invoke(tree, $"sync {k}");
                syncs.Add(new SyncMark(k, start, recorder.Log.Count));
                maxLevel = Math.Max(maxLevel, tree.Root?.Level ?? 0);
            }
            return new BtreeCrashRecording
            {
                Options = options,
                BaseImage = baseImage,
                Log = recorder.Log,
                Syncs = syncs,
                Snapshots = snapshots,
                Stats = engine.Stats,
                MaxRootLevel = maxLevel,
            };
        }
    }

    private enum WorkloadPhase
    {
        Grow,
        Shrink,
        Regrow,
    }

    private static WorkloadPhase Phase(int k, int transactions) =>
        k <= transactions * 45 / 100 ? WorkloadPhase.Grow : k <= transactions * 75 / 100 ? WorkloadPhase.Shrink : WorkloadPhase.Regrow;

    private static void RunTransaction(Basalt.Btree.Btree tree, SortedDictionary<Bpos, byte[]> model, Random rng,
        BtreeCrashWorkloadOptions options, WorkloadPhase phase, int maxValue)
    {
        var operations = 1 + rng.Next(options.MaxOperations);
        // Weights (out of 100) of insert-new, overwrite, delete; the rest is a range delete.
        var (insert, overwrite, delete) = phase switch
        {
            WorkloadPhase.Grow => (70, 20, 8),
            WorkloadPhase.Shrink => (15, 15, 55),
            _ => (60, 25, 12),
        };
        for (var op = 0; op < operations; op++)
        {
            var r = rng.Next(100);
            var keys = model.Count - (model.ContainsKey(CounterPos) ? 1 : 0);
            string done;
            if (r < insert || keys == 0)
            {
                done = Put(tree, model, Pos(rng.Next(options.KeySpace)), RandomValue(rng, maxValue));
            }
            else if (r < insert + overwrite)
            {
                done = Put(tree, model, model.Keys.ElementAt(rng.Next(keys)), RandomValue(rng, maxValue));
            }
            else if (r < insert + overwrite + delete)
            {
                var pos = model.Keys.ElementAt(rng.Next(keys));
                if (!tree.Delete(pos))
                    throw new InvalidOperationException($"delete of {pos.ToText()} found nothing");
                model.Remove(pos);
                done = $"delete {pos.ToText()}";
            }
            else
            {
                var a = rng.Next(options.KeySpace);
                var b = Math.Min(options.KeySpace - 1, a + rng.Next(phase == WorkloadPhase.Shrink ? options.KeySpace / 3 : 30));
                var (start, end) = (Pos(a), Pos(b));
                var expected = model.Keys.Where(p => p >= start && p <= end).ToList();
                var removed = tree.DeleteRange(start, end);
                if (removed != expected.Count)
                    throw new InvalidOperationException($"range delete {start.ToText()}..{end.ToText()} removed {removed}, model has {expected.Count}");
                foreach (var p in expected)
                    model.Remove(p);
                done = $"delete range {start.ToText()}..{end.ToText()} ({removed} keys)";
            }
            options.AfterOperation?.Invoke(tree, done);
        }
    }

    private static string Put(Basalt.Btree.Btree tree, SortedDictionary<Bpos, byte[]> model, Bpos pos, byte[] value)
    {
        tree.Insert(pos, value);
        model[pos] = value;
        return $"insert {pos.ToText()} ({value.Length} bytes)";
    }

    private static byte[] RandomValue(Random rng, int maxValue)
    {
        var length = rng.Next(16) == 0 ? rng.Next(maxValue + 1) : rng.Next(0, 48);
        var value = new byte[length];
        rng.NextBytes(value);
        return value;
    }
}
