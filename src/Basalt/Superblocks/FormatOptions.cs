// What `format` may be told; every null means "choose the default" by the rules of
// SuperblockGeometry (docs/format.md "Geometry chosen by format").
using Basalt.Format;

namespace Basalt.Superblocks;

/// <summary>Options of <see cref="SuperblockIo.Format"/>. Null means "choose the default".</summary>
public sealed record FormatOptions
{
    /// <summary>Bytes per block (512 B..64 KiB, power of two). Default 4096.</summary>
    public int? BlockSize { get; init; }

    /// <summary>Bytes per bucket (4 KiB..16 MiB, power of two). Default from the device size.</summary>
    public int? BucketSize { get; init; }

    /// <summary>Bytes per btree node (1 KiB..1 MiB, power of two, block ≤ node ≤ bucket). Default min(256 KiB, bucket).</summary>
    public int? NodeSize { get; init; }

    public string Label { get; init; } = "";

    /// <summary>Filesystem uuid; a random one when null (tests pass a fixed one).</summary>
    public Guid? Uuid { get; init; }

    /// <summary>Device uuid of member 0; a random one when null.</summary>
    public Guid? DeviceUuid { get; init; }

    /// <summary>User-visible uuid; null means the filesystem uuid.</summary>
    public Guid? UserUuid { get; init; }

    public ChecksumType MetadataChecksumType { get; init; } = ChecksumType.Crc32C;

    /// <summary>Checksum of data extents: crc32c (default), crc64 or xxhash64.</summary>
    public ChecksumType DataChecksumType { get; init; } = ChecksumType.Crc32C;

    /// <summary>Buckets in the node area. Default: a quarter of the buckets after the journal, at least 16.</summary>
    public ulong? NodeAreaBuckets { get; init; }

    /// <summary>Buckets in the journal. Default: about 1/128 of the device, at least 8, at most 512 MiB.</summary>
    public ulong? JournalBuckets { get; init; }

    /// <summary>Discard (punch or BLKDISCARD) freed buckets before reuse. Default on; a mount option can override it.</summary>
    public bool Discard { get; init; } = true;

    /// <summary>
    /// An image file is written with zeroes from end to end instead of left sparse, so the host
    /// filesystem allocates all of it now and no later write has to (a write into a hole makes the
    /// host commit its own metadata at the next flush: a small fsync then costs two journal
    /// commits of the host instead of one). Takes the image's full size on the host and clears the
    /// member flag discard (freed buckets are not punched out again; a mount option can still turn
    /// discards on). A block device has no holes: it is neither written nor changed. Default off.
    /// </summary>
    public bool Preallocate { get; init; }

    /// <summary>Format time; now when null.</summary>
    public DateTimeOffset? Time { get; init; }
}
