// A btree engine on a tiny in-memory geometry (4 KiB nodes, 512 B blocks by default) to force
// deep trees, with an in-memory root committer, the write-once checker (WriteOnceCheckingDevice,
// a fresh one per mount) wired in, and Remount(): drop the engine without syncing and reopen from
// the device and the committed roots.
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;

namespace Basalt.TestKit;

/// <summary>Keeps the committed roots in memory, as the superblock would on disk.</summary>
public sealed class MemoryRootCommitter : IRootCommitter
{
    private IReadOnlyList<BtreeRoot> _roots = [];

    public IReadOnlyList<BtreeRoot> Roots => Volatile.Read(ref _roots);

    public int Commits { get; private set; }

    /// <summary>Runs before each commit; a test throws from it to simulate a failed superblock write.</summary>
    public Action? BeforeCommit { get; set; }

    public void CommitRoots(IReadOnlyList<BtreeRoot> roots)
    {
        BeforeCommit?.Invoke();
        Volatile.Write(ref _roots, roots.ToArray());
        Commits++;
    }
}

public sealed class BtreeFixture : IDisposable
{
    public const long NodeAreaOffset = 64 * 1024;

    public BtreeFixture(int nodeSize = 4096, int blockSize = 512, int slots = 8192, long cacheBudget = 256L * 1024 * 1024,
        int seed = 1, Func<IBlockDevice, IBlockDevice>? decorate = null)
    {
        Geometry = new BtreeGeometry
        {
            NodeSize = nodeSize,
            BlockSize = blockSize,
            NodeAreaOffset = NodeAreaOffset,
            NodeAreaLength = (long)slots * nodeSize,
            NodeMagic = 0x45444F4E544C5342UL ^ 0x1122334455667788UL,
        };
        Memory = new MemoryBlockDevice(NodeAreaOffset + Geometry.NodeAreaLength + (64 * 1024));
        Base = decorate is null ? Memory : decorate(Memory);
        CacheBudget = cacheBudget;
        Random = new Random(seed);
        Checker = new WriteOnceCheckingDevice(Base);
        NodeSpace = new BtreeNodeSpaceLog(Checker);
        Engine = Open();
    }

    public BtreeGeometry Geometry { get; }
    public MemoryBlockDevice Memory { get; }
    /// <summary>Memory under the test's decorators.</summary>
    public IBlockDevice Base { get; }

    /// <summary>The write-once checker of the current mount: the device the engine writes through.</summary>
    public WriteOnceCheckingDevice Checker { get; private set; }

    /// <summary>The current mount's slot event log (forwards to <see cref="Checker"/>).</summary>
    public BtreeNodeSpaceLog NodeSpace { get; private set; }

    public MemoryRootCommitter Committer { get; } = new();
    public long CacheBudget { get; set; }

    /// <summary>Passed to the engine at the next (re)mount.</summary>
    public NodeReadObserver? ReadObserver { get; set; }

    /// <summary>Random restart injection, passed to the engine at the next (re)mount.</summary>
    public RestartInjection? RestartInjection { get; set; }
    public Random Random { get; }
    public BtreeEngine Engine { get; private set; }
    public Basalt.Btree.Btree Test => Engine[BtreeId.Test];

    public BtreeEngineOptions Options => new()
    {
        CacheBudgetBytes = CacheBudget,
        NodeSpaceObserver = NodeSpace,
        NodeReadObserver = ReadObserver,
        Random = new Random(Random.Next()),
        RestartInjection = RestartInjection,
    };

    /// <summary>Drops the engine (no sync: unsynced changes are lost as in a crash) and reopens it.</summary>
    public void Remount()
    {
        Engine.Dispose();
        Checker = new WriteOnceCheckingDevice(Base);
        NodeSpace = new BtreeNodeSpaceLog(Checker);
        Engine = Open();
    }

    private BtreeEngine Open() => BtreeEngine.Open(Checker, Geometry, Committer.Roots, Options, Committer);

    /// <summary>Key i of the test btree.</summary>
    public static Bpos Pos(long i) => new((ulong)(i / 1000), (ulong)(i % 1000));

    public void Dispose() => Engine.Dispose();
}
