// A btree engine on a tiny in-memory geometry (4 KiB nodes, 512 B blocks by default) to force
// deep trees, with an in-memory root committer, the write-once checker wired in, and Remount():
// drop the engine without syncing and reopen from the device and the committed roots.
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
        IBlockDevice device = Memory;
        if (decorate is not null)
            device = decorate(device);
        Checker = new BtreeWriteOnceChecker(device, Geometry.NodeAreaOffset, Geometry.NodeAreaLength, nodeSize);
        Device = Checker;
        CacheBudget = cacheBudget;
        Random = new Random(seed);
        Engine = Open();
    }

    public BtreeGeometry Geometry { get; }
    public MemoryBlockDevice Memory { get; }
    public BtreeWriteOnceChecker Checker { get; }

    /// <summary>The device the engine writes through (checker over any decorators over Memory).</summary>
    public IBlockDevice Device { get; }

    public MemoryRootCommitter Committer { get; } = new();
    public long CacheBudget { get; set; }
    public Random Random { get; }
    public BtreeEngine Engine { get; private set; }
    public Basalt.Btree.Btree Test => Engine[BtreeId.Test];

    public BtreeEngineOptions Options => new()
    {
        CacheBudgetBytes = CacheBudget,
        NodeSpaceObserver = Checker,
        Random = new Random(Random.Next()),
    };

    /// <summary>Drops the engine (no sync: unsynced changes are lost as in a crash) and reopens it.</summary>
    public void Remount()
    {
        Engine.Dispose();
        Checker.Reset();
        Engine = Open();
    }

    private BtreeEngine Open() => BtreeEngine.Open(Device, Geometry, Committer.Roots, Options, Committer);

    /// <summary>Key i of the test btree.</summary>
    public static Bpos Pos(long i) => new((ulong)(i / 1000), (ulong)(i % 1000));

    public void Dispose() => Engine.Dispose();
}
