// The two sizes every layer shares: the sector, the unit of device offsets, pointer offsets and
// sectors_written; and the deepest a btree may grow (DESIGN §3). Defined once here; everything
// else (the node header's level limit, the superblock's root level limit, the engine's depth
// check, fsck's walk) derives from these.
namespace Basalt.Format;

public static class FormatLimits
{
    /// <summary>Bytes per sector: the unit of device I/O alignment, pointer offsets and sectors_written.</summary>
    public const int SectorSize = 512;

    /// <summary>log2 of <see cref="SectorSize"/>.</summary>
    public const int SectorShift = 9;

    /// <summary>Most levels a btree may have (DESIGN §3): levels 0 (leaves) to <see cref="MaxBtreeLevel"/>.</summary>
    public const int MaxBtreeDepth = 8;

    /// <summary>Highest level a node, pointer or root may carry.</summary>
    public const int MaxBtreeLevel = MaxBtreeDepth - 1;
}
