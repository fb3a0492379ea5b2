// Backpointers: for every non-cached pointer, a key in the backpointers btree at a position
// derived from where the pointed-to data lies, naming the key that owns it. The position is
// (device, data start sector << 10 | window offset), so a bucket's backpointers are contiguous
// and ordered by physical offset, and two live pieces of one written run (an extent split by an
// overwrite in its middle) get distinct positions. Layout in docs/format.md ("Backpointers").
using System.Buffers.Binary;
using System.Globalization;
using Basalt.Alloc;
using Basalt.Format;

namespace Basalt.Backpointers;

/// <summary>The value of a backpointer key (32 bytes).</summary>
public readonly record struct BackpointerValue(BtreeId Btree, byte Level, BucketDataType DataType, byte BucketGen, uint Sectors, Bpos Pos)
{
    public const int Size = 32;
    public const int BtreeOffset = 0;       // u8
    public const int LevelOffset = 1;       // u8: 0 = a leaf key owns the data; n = a pointer in a level-n node
    public const int DataTypeOffset = 2;    // u8: btree or user
    public const int BucketGenOffset = 3;   // u8: the bucket's gen when the pointer was made
    public const int SectorsOffset = 4;     // u32: on-disk sectors the pointer is charged
    public const int PosOffset = 8;         // Bpos (20 bytes): the owner's position (an extent's end)
    public const int ReservedOffset = 28;   // u32, zero

    /// <summary>Bits below the data sector in a backpointer position's offset.</summary>
    public const int WindowBits = 10;

    public void Write(Span<byte> destination)
    {
        var d = destination[..Size];
        d.Clear();
        d[BtreeOffset] = (byte)Btree;
        d[LevelOffset] = Level;
        d[DataTypeOffset] = (byte)DataType;
        d[BucketGenOffset] = BucketGen;
        BinaryPrimitives.WriteUInt32LittleEndian(d[SectorsOffset..], Sectors);
        Pos.Write(d[PosOffset..]);
    }

    public byte[] ToArray()
    {
        var bytes = new byte[Size];
        Write(bytes);
        return bytes;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out BackpointerValue value, out string? problem)
    {
        value = default;
        if (source.Length != Size)
        {
            problem = $"backpointer value of {source.Length} bytes (must be {Size})";
            return false;
        }
        if (!BtreeIds.IsKnown(source[BtreeOffset]))
        {
            problem = $"backpointer to unknown btree {source[BtreeOffset]}";
            return false;
        }
        var type = source[DataTypeOffset];
        if (type is not ((byte)BucketDataType.Btree or (byte)BucketDataType.User))
        {
            problem = $"backpointer with data type {((BucketDataType)type).ToText()} (btree or user)";
            return false;
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(source[ReservedOffset..]) != 0)
        {
            problem = "backpointer with reserved bytes set";
            return false;
        }
        var sectors = BinaryPrimitives.ReadUInt32LittleEndian(source[SectorsOffset..]);
        if (sectors == 0)
        {
            problem = "backpointer of 0 sectors";
            return false;
        }
        value = new BackpointerValue((BtreeId)source[BtreeOffset], source[LevelOffset], (BucketDataType)type, source[BucketGenOffset],
            sectors, Bpos.Read(source[PosOffset..]));
        problem = null;
        return true;
    }

    public static BackpointerValue Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var v, out var problem) ? v : throw new FormatException(problem);

    /// <summary>Position of the backpointer of data at <paramref name="sector"/> (a run's start) with live window <paramref name="window"/>.</summary>
    public static Bpos PositionOf(byte device, ulong sector, uint window) => new(device, (sector << WindowBits) | window);

    /// <summary>The data start sector and window a backpointer position names.</summary>
    public static (byte Device, ulong Sector, uint Window) Decode(Bpos pos) =>
        ((byte)pos.Inode, pos.Offset >> WindowBits, (uint)(pos.Offset & ((1UL << WindowBits) - 1)));

    /// <summary>The first backpointer position of <paramref name="bucket"/> (bucket start sector, window 0).</summary>
    public static Bpos BucketStart(BucketRef bucket, int bucketSectors) => PositionOf(bucket.Device, bucket.Bucket * (ulong)bucketSectors, 0);

    public string ToText() => string.Create(CultureInfo.InvariantCulture,
        $"{Btree.ToText()} level {Level} {DataType.ToText()} gen {BucketGen} sectors {Sectors} owner {Pos.ToText()}");
}
