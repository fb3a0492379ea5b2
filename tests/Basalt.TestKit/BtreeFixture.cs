// A filesystem on a tiny in-memory geometry (4 KiB nodes, 512 B blocks by default) to force deep
// trees, with the journal in its deterministic step mode (no threads: entries are written when a
// commit waits for a flush, when the journal needs room, or when a test steps it), the
// write-once checker on every node write, and the remounts tests need: Remount() is a crash
// (nothing more is written; the next mount replays the journal), CleanRemount() a clean unmount.
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Journal;
using Basalt.Superblocks;
using Basalt.Transactions;

namespace Basalt.TestKit;

public sealed class BtreeFixture : IDisposable
{
    public const int DefaultBucketSize = 64 * 1024;

    private readonly int _bucketSize;

    public BtreeFixture(int nodeSize = 4096, int blockSize = 512, int slots = 8192, long cacheBudget = 256L * 1024 * 1024,
        int seed = 1, Func<IBlockDevice, IBlockDevice>? decorate = null, int journalBuckets = 32, int bucketSize = DefaultBucketSize,
        JournalOptions? journal = null, int dataBuckets = SuperblockGeometry.MinUsableBuckets)
    {
        _bucketSize = Math.Max(bucketSize, nodeSize);
        var nodeAreaBuckets = Math.Max(16, (int)(((long)slots * nodeSize) / _bucketSize));
        var firstBucket = SuperblockGeometry.FirstBucketFor(_bucketSize);
        var buckets = firstBucket + (long)journalBuckets + nodeAreaBuckets + Math.Max(dataBuckets, SuperblockGeometry.MinUsableBuckets);
        var size = (((buckets * _bucketSize) + 65535) / 65536 * 65536) + (2 * 65536);
        Memory = new MemoryBlockDevice(size);
        Base = decorate is null ? Memory : decorate(Memory);
        CacheBudget = cacheBudget;
        Random = new Random(seed);
        JournalOptions = journal ?? new JournalOptions { Manual = true };
        FormatOptions = new FormatOptions
        {
            BlockSize = blockSize,
            NodeSize = nodeSize,
            BucketSize = _bucketSize,
            JournalBuckets = (ulong)journalBuckets,
            NodeAreaBuckets = (ulong)nodeAreaBuckets,
            Uuid = new Guid(0x11223344, 0x5566, 0x7788, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, (byte)seed),
            Time = DateTimeOffset.UnixEpoch.AddDays(20_000),
        };
        SuperblockIo.Format(Base, FormatOptions);
        Fs = MountFs();
    }

    public FormatOptions FormatOptions { get; }

    public MemoryBlockDevice Memory { get; }

    /// <summary>Memory under the test's decorators.</summary>
    public IBlockDevice Base { get; }

    public JournalOptions JournalOptions { get; set; }

    /// <summary>Allocation options of the next (re)mount: no background discard worker, so step mode stays deterministic (tests run discards themselves).</summary>
    public Basalt.Alloc.SpaceOptions SpaceOptions { get; set; } = new() { BackgroundWorker = false };

    public BasaltFileSystem Fs { get; private set; }

    public BtreeGeometry Geometry => Fs.Geometry;

    /// <summary>The write-once checker of the current mount: every node write goes through it.</summary>
    public WriteOnceCheckingDevice Checker => Fs.WriteOnceChecker!;

    /// <summary>The current mount's slot event log.</summary>
    public BtreeNodeSpaceLog NodeSpace { get; private set; } = null!;

    public long CacheBudget { get; set; }

    /// <summary>Passed to the engine at the next (re)mount.</summary>
    public NodeReadObserver? ReadObserver { get; set; }

    /// <summary>Random restart injection, passed to the engine at the next (re)mount.</summary>
    public RestartInjection? RestartInjection { get; set; }

    /// <summary>Debug-only ordering bugs for the next (re)mount.</summary>
    internal BtreeDebugFaults? DebugFaults { get; set; }

    public Random Random { get; }

    public BtreeEngine Engine => Fs.Btrees;

    public JournalWriter Journal => Fs.Journal;

    public Basalt.Btree.Btree Test => Engine[BtreeId.Test];

    /// <summary>Makes every commit so far durable (a journal flush).</summary>
    public void Sync() => Fs.Sync();

    /// <summary>Writes every dirty node and commits the roots through the superblock.</summary>
    public void Checkpoint() => Fs.Checkpoint();

    /// <summary>Writes back every dirty node through the journal (rounds until none is left), then flushes.</summary>
    public void WriteBackAll()
    {
        for (var round = 0; round < 64 && Engine.DirtyNodeCount > 0; round++)
        {
            if (Engine.WriteBack(null).JournalFull)
            {
                Checkpoint();
                break;
            }
        }
        Sync();
    }

    /// <summary>A crash: the mount is dropped without writing anything more, then mounted again (journal replay).</summary>
    public void Remount()
    {
        Fs.Close(sync: false);
        Fs = MountFs();
    }

    /// <summary>A clean unmount (journal flushed, nodes written, superblock clean), then a mount.</summary>
    public void CleanRemount()
    {
        Fs.Close(sync: true);
        Fs = MountFs();
    }

    /// <summary>One transaction inserting a key; returns the journal seq of its commit.</summary>
    public ulong Insert(Bpos pos, byte[] value)
    {
        Fs.Transactor.Transact(t =>
        {
            t.Set(BtreeId.Test, pos, value);
            return true;
        }, CommitOptions.Default, out var result);
        return result.Seq;
    }

    private BasaltFileSystem MountFs()
    {
        NodeSpace = new BtreeNodeSpaceLog();
        var engine = new BtreeEngineOptions
        {
            CacheBudgetBytes = CacheBudget,
            NodeSpaceObserver = NodeSpace,
            NodeReadObserver = ReadObserver,
            Random = new Random(Random.Next()),
            RestartInjection = RestartInjection,
        };
        if (DebugFaults is { } faults)
            engine = engine with { DebugFaults = faults };
        return BasaltFileSystem.Mount(Base, new MountOptions
        {
            Engine = engine,
            Journal = JournalOptions,
            CheckWriteOnce = true,
            Space = SpaceOptions,
            // A btree fixture, not a filesystem: no root directory appears in its btrees.
            FileMaintenance = false,
        });
    }

    /// <summary>Key i of the test btree.</summary>
    public static Bpos Pos(long i) => new((ulong)(i / 1000), (ulong)(i % 1000));

    public void Dispose() => Fs.Close(sync: false);
}
