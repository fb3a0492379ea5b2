// The alloc key: the allocation state of one bucket, at position (device, bucket) of the alloc
// btree. Everything in it except gen, oldest_gen, the flags and io times is derived state: the
// sector counts are the sums of the pointers into the bucket, and the data type follows from the
// counters (DeriveType). A bucket without an alloc key is free with gen 0. Layout in
// docs/format.md ("Alloc value").
using System.Buffers.Binary;
using System.Globalization;
using Basalt.Format;

namespace Basalt.Alloc;

/// <summary>What a bucket holds. Permanent on-disk numbers.</summary>
public enum BucketDataType : byte
{
    Free = 0,
    Superblock = 1,
    Journal = 2,
    Btree = 3,
    User = 4,
    Cached = 5,
    /// <summary>Reserved for erasure coding.</summary>
    Parity = 6,
    /// <summary>Reserved for erasure coding.</summary>
    Stripe = 7,
    /// <summary>Empty, but gen has run too far ahead of oldest_gen: gc_gens must run before reuse.</summary>
    NeedGcGens = 8,
    /// <summary>Empty, awaiting invalidation (gen + 1) and discard.</summary>
    NeedDiscard = 9,
}

[Flags]
public enum AllocFlags : uint
{
    None = 0,
    /// <summary>The bucket held data since it was last discarded: when it empties it goes to need_discard.</summary>
    NeedDiscard = 1,
    /// <summary>The bucket held data since its gen was last incremented.</summary>
    NeedIncGen = 2,
}

public static class BucketDataTypes
{
    /// <summary>Every data type in number order (for tables and df).</summary>
    public static IReadOnlyList<BucketDataType> All { get; } =
    [
        BucketDataType.Free, BucketDataType.Superblock, BucketDataType.Journal, BucketDataType.Btree, BucketDataType.User,
        BucketDataType.Cached, BucketDataType.Parity, BucketDataType.Stripe, BucketDataType.NeedGcGens, BucketDataType.NeedDiscard,
    ];

    public static bool IsKnown(byte type) => type <= (byte)BucketDataType.NeedDiscard;

    /// <summary>Free, need_discard and need_gc_gens: the bucket holds nothing live.</summary>
    public static bool IsEmpty(this BucketDataType type) =>
        type is BucketDataType.Free or BucketDataType.NeedDiscard or BucketDataType.NeedGcGens;

    public static string ToText(this BucketDataType type) => type switch
    {
        BucketDataType.Free => "free",
        BucketDataType.Superblock => "sb",
        BucketDataType.Journal => "journal",
        BucketDataType.Btree => "btree",
        BucketDataType.User => "user",
        BucketDataType.Cached => "cached",
        BucketDataType.Parity => "parity",
        BucketDataType.Stripe => "stripe",
        BucketDataType.NeedGcGens => "need_gc_gens",
        BucketDataType.NeedDiscard => "need_discard",
        _ => $"type{(byte)type}",
    };

    public static bool TryParse(string? text, out BucketDataType type)
    {
        foreach (var t in All)
        {
            if (string.Equals(t.ToText(), text, StringComparison.OrdinalIgnoreCase))
            {
                type = t;
                return true;
            }
        }
        type = default;
        return false;
    }
}

/// <summary>Bucket generations: 8 bits, compared modulo 256.</summary>
public static class Gens
{
    /// <summary>A bucket whose gen is this far ahead of its oldest_gen is not reused until gc_gens runs.</summary>
    public const int GcGenMax = 96;

    /// <summary>(a - b) as a signed 8-bit number: positive when a is after b.</summary>
    public static int Compare(byte a, byte b) => (sbyte)(byte)(a - b);

    /// <summary>How far <paramref name="bucketGen"/> is after <paramref name="ptrGen"/> (0 when not after).</summary>
    public static int After(byte bucketGen, byte ptrGen) => Math.Max(Compare(bucketGen, ptrGen), 0);

    /// <summary>A pointer is stale when its bucket's gen has moved past the pointer's.</summary>
    public static bool IsStale(byte bucketGen, byte ptrGen) => Compare(bucketGen, ptrGen) > 0;
}

/// <summary>The value of an alloc key (64 bytes).</summary>
public record struct AllocValue
{
    public const int Size = 64;

    public const int Reserved0Offset = 0;       // u64, zero
    public const int FlagsOffset = 8;           // u32
    public const int GenOffset = 12;            // u8
    public const int OldestGenOffset = 13;      // u8
    public const int DataTypeOffset = 14;       // u8
    public const int StripeRedundancyOffset = 15; // u8, reserved: zero
    public const int DirtySectorsOffset = 16;   // u32
    public const int CachedSectorsOffset = 20;  // u32
    public const int ReadTimeOffset = 24;       // u64
    public const int WriteTimeOffset = 32;      // u64
    public const int StripeOffset = 40;         // u32, reserved: zero
    public const int Reserved1Offset = 44;      // u32, zero
    public const int FragmentationLruOffset = 48; // u64
    public const int StripeSectorsOffset = 56;  // u32, reserved: zero
    public const int Reserved2Offset = 60;      // u32, zero

    public AllocFlags Flags;
    public byte Gen;
    public byte OldestGen;
    public BucketDataType DataType;
    public uint DirtySectors;
    public uint CachedSectors;
    /// <summary>Unix time in nanoseconds of the last read of cached data (cached buckets).</summary>
    public ulong ReadTime;
    /// <summary>Unix time in nanoseconds of the last write into the bucket.</summary>
    public ulong WriteTime;
    /// <summary>The bucket's place in the fragmentation LRU (0 when copygc has nothing to gain from it).</summary>
    public ulong FragmentationLru;

    /// <summary>The state of a bucket that has no alloc key.</summary>
    public static AllocValue Empty => default;

    public readonly bool IsEmptyState => DirtySectors == 0 && CachedSectors == 0;

    /// <summary>
    /// The data type the counters imply: <paramref name="dataType"/> (what was written: sb, journal,
    /// btree, user) while dirty sectors remain; cached while only cached sectors remain; then
    /// need_discard, need_gc_gens or free.
    /// </summary>
    public readonly BucketDataType DeriveType(BucketDataType dataType)
    {
        if (DirtySectors > 0)
            return dataType;
        if (CachedSectors > 0)
            return BucketDataType.Cached;
        if ((Flags & AllocFlags.NeedDiscard) != 0)
            return BucketDataType.NeedDiscard;
        if ((byte)(Gen - OldestGen) >= Gens.GcGenMax)
            return BucketDataType.NeedGcGens;
        return BucketDataType.Free;
    }

    /// <summary>
    /// Fragmentation index: for a bucket of user data that is partly empty, its live share scaled
    /// to 2^31 (emptiest first); 0 otherwise.
    /// </summary>
    public static ulong FragmentationIndex(BucketDataType type, uint dirtySectors, uint bucketSectors)
    {
        if (type != BucketDataType.User || dirtySectors == 0 || dirtySectors >= bucketSectors)
            return 0;
        return Math.Max(1, ((ulong)dirtySectors << 31) / bucketSectors);
    }

    public readonly void Write(Span<byte> destination)
    {
        var d = destination[..Size];
        d.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(d[FlagsOffset..], (uint)Flags);
        d[GenOffset] = Gen;
        d[OldestGenOffset] = OldestGen;
        d[DataTypeOffset] = (byte)DataType;
        BinaryPrimitives.WriteUInt32LittleEndian(d[DirtySectorsOffset..], DirtySectors);
        BinaryPrimitives.WriteUInt32LittleEndian(d[CachedSectorsOffset..], CachedSectors);
        BinaryPrimitives.WriteUInt64LittleEndian(d[ReadTimeOffset..], ReadTime);
        BinaryPrimitives.WriteUInt64LittleEndian(d[WriteTimeOffset..], WriteTime);
        BinaryPrimitives.WriteUInt64LittleEndian(d[FragmentationLruOffset..], FragmentationLru);
    }

    public readonly byte[] ToArray()
    {
        var bytes = new byte[Size];
        Write(bytes);
        return bytes;
    }

    /// <summary>Reads an alloc value; false with a reason when it is malformed.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out AllocValue value, out string? problem)
    {
        value = default;
        if (source.Length != Size)
        {
            problem = $"alloc value of {source.Length} bytes (must be {Size})";
            return false;
        }
        if (!BucketDataTypes.IsKnown(source[DataTypeOffset]))
        {
            problem = $"alloc value with unknown data type {source[DataTypeOffset]}";
            return false;
        }
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(source[FlagsOffset..]);
        if ((flags & ~(uint)(AllocFlags.NeedDiscard | AllocFlags.NeedIncGen)) != 0)
        {
            problem = string.Create(CultureInfo.InvariantCulture, $"alloc value with unknown flags 0x{flags:x}");
            return false;
        }
        if (source[StripeRedundancyOffset] != 0 || BinaryPrimitives.ReadUInt32LittleEndian(source[StripeOffset..]) != 0 ||
            BinaryPrimitives.ReadUInt32LittleEndian(source[StripeSectorsOffset..]) != 0 ||
            BinaryPrimitives.ReadUInt32LittleEndian(source[Reserved1Offset..]) != 0 ||
            BinaryPrimitives.ReadUInt64LittleEndian(source[Reserved0Offset..]) != 0 ||
            BinaryPrimitives.ReadUInt32LittleEndian(source[Reserved2Offset..]) != 0)
        {
            problem = "alloc value with non-zero reserved fields";
            return false;
        }
        value = new AllocValue
        {
            Flags = (AllocFlags)flags,
            Gen = source[GenOffset],
            OldestGen = source[OldestGenOffset],
            DataType = (BucketDataType)source[DataTypeOffset],
            DirtySectors = BinaryPrimitives.ReadUInt32LittleEndian(source[DirtySectorsOffset..]),
            CachedSectors = BinaryPrimitives.ReadUInt32LittleEndian(source[CachedSectorsOffset..]),
            ReadTime = BinaryPrimitives.ReadUInt64LittleEndian(source[ReadTimeOffset..]),
            WriteTime = BinaryPrimitives.ReadUInt64LittleEndian(source[WriteTimeOffset..]),
            FragmentationLru = BinaryPrimitives.ReadUInt64LittleEndian(source[FragmentationLruOffset..]),
        };
        problem = null;
        return true;
    }

    public static AllocValue Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var v, out var problem) ? v : throw new FormatException(problem);

    /// <summary>Checks that the stored data type is the one the counters imply (and that empty types carry no sectors).</summary>
    public readonly string? Inconsistency()
    {
        if (DataType.IsEmpty() || DataType == BucketDataType.Cached)
        {
            var derived = DeriveType(BucketDataType.User);
            if (derived != DataType)
                return $"data type {DataType.ToText()} but the counters say {derived.ToText()}";
            return null;
        }
        if (DirtySectors == 0)
            return $"data type {DataType.ToText()} with no dirty sectors";
        return null;
    }

    public readonly string ToText() => string.Create(CultureInfo.InvariantCulture,
        $"gen {Gen} oldest_gen {OldestGen} {DataType.ToText()} dirty {DirtySectors} cached {CachedSectors}" +
        $"{((Flags & AllocFlags.NeedDiscard) != 0 ? " need_discard" : "")}{((Flags & AllocFlags.NeedIncGen) != 0 ? " need_inc_gen" : "")}" +
        $"{(FragmentationLru != 0 ? $" frag {FragmentationLru}" : "")}");
}
