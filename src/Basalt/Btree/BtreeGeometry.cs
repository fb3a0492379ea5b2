// What the btree layer needs to know about the filesystem it lives in, taken from the
// superblock at mount: node and block sizes, where node space is, the node magic and the
// checksum and version to stamp on written bsets.
using Basalt.Format;

namespace Basalt.Btree;

public sealed record BtreeGeometry
{
    /// <summary>Bytes per node slot; a multiple of <see cref="BlockSize"/>, at most 1 MiB.</summary>
    public required int NodeSize { get; init; }

    /// <summary>Bytes per block: every bset is padded to it. 512 B to 64 KiB.</summary>
    public required int BlockSize { get; init; }

    /// <summary>Byte offset of the first node slot of the metadata area reserved at format.</summary>
    public required long NodeAreaOffset { get; init; }

    /// <summary>Length in bytes of the metadata area (a multiple of <see cref="NodeSize"/>).</summary>
    public required long NodeAreaLength { get; init; }

    /// <summary>
    /// Bytes per bucket; 0 for an engine on a bare device, whose node space is the node area alone.
    /// With buckets the node area is the part of node space format claimed, and the allocation
    /// layer claims more buckets (<see cref="BtreeEngine.ClaimNodeBucket"/>).
    /// </summary>
    public int BucketSize { get; init; }

    /// <summary>With buckets: buckets below this hold the superblock area and never hold nodes.</summary>
    public ulong FirstBucket { get; init; }

    /// <summary>With buckets: the device's bucket count.</summary>
    public ulong Buckets { get; init; }

    /// <summary>With buckets: [start, end) ranges of buckets that never hold nodes (the journal).</summary>
    public IReadOnlyList<(ulong Start, ulong End)> ReservedBuckets { get; init; } = [];

    /// <summary>
    /// Byte ranges that have ever held btree nodes (the node-region map), which the node scan
    /// reads; null means the node area alone.
    /// </summary>
    public IReadOnlyList<(long Offset, long Length)>? NodeRegions { get; init; }

    /// <summary>The fs-uuid-derived magic every node header carries.</summary>
    public required ulong NodeMagic { get; init; }

    public ChecksumType ChecksumType { get; init; } = ChecksumType.Crc32C;

    /// <summary>Format version stamped on written bsets.</summary>
    public ushort Version { get; init; } = FormatVersion.Current;

    /// <summary>Oldest format version that may exist on disk (superblock version_min).</summary>
    public ushort VersionMin { get; init; } = FormatVersion.Min;

    /// <summary>Device index written into node pointers (one device for now).</summary>
    public byte Device { get; init; }

    public int NodeSectors => NodeSize / FormatLimits.SectorSize;
}
