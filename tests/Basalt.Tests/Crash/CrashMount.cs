// The mount glue the crash suite uses until the filesystem layer exists: the btree roots live in
// the superblock on the recorded device itself, so a crash state carries both the nodes and the
// roots that name them. Mount = SuperblockIo.Read + BtreeEngine.Open with the geometry taken from
// the superblock; commit = SuperblockIo.Write with the new roots (copy 0, flush, copy 1, flush, ...).
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.Tests.Crash;

/// <summary>Commits btree roots by writing the superblock (every copy, a flush after each).</summary>
internal sealed class SuperblockRootCommitter(IBlockDevice device, Superblock superblock, DateTimeOffset writeTime) : IRootCommitter
{
    public Superblock Superblock { get; private set; } = superblock;

    public int Commits { get; private set; }

    public void CommitRoots(IReadOnlyList<BtreeRoot> roots)
    {
        var sorted = roots.OrderBy(r => (byte)r.Btree).ToArray();
        Superblock = SuperblockIo.Write(device, Superblock with { Roots = sorted }, writeTime);
        Commits++;
    }
}

/// <summary>A committer for read-only checks: a crash-state mount never syncs.</summary>
internal sealed class RefusingRootCommitter : IRootCommitter
{
    public void CommitRoots(IReadOnlyList<BtreeRoot> roots) =>
        throw new InvalidOperationException("a crash-state check must not commit roots");
}

internal static class CrashMount
{
    /// <summary>The btree geometry a superblock describes (the mount glue's own rule).</summary>
    public static BtreeGeometry GeometryOf(Superblock sb) => BasaltFileSystem.GeometryOf(sb);

    /// <summary>Reads the superblock and opens the btrees from its roots.</summary>
    public static BtreeEngine Mount(IBlockDevice device, BtreeEngineOptions options, IRootCommitter committer, out Superblock superblock)
    {
        superblock = SuperblockIo.Read(device).Superblock;
        return BtreeEngine.Open(device, GeometryOf(superblock), superblock.Roots, options, committer);
    }
}
