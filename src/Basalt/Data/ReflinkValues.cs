// Reflink: data shared by several files. A shared run moves out of the extents btree into the
// reflink btree as an indirect extent (reflink_v: a refcount, then an ordinary extent value),
// placed in a flat reflink address space (position (0, end, 0), size = sectors). Each file range
// that shares it becomes a reflink pointer (reflink_p) in the extents btree naming where its
// first sector lies in that space.
//
// A pointer also records the whole range it took its references on (front and back pads around
// its live range): trimming or splitting a pointer keeps that range, and copygc may split an
// indirect extent into pieces, so the pieces a pointer let go of are always the pieces it took.
// The refcount of an indirect extent is the number of pointers whose padded range overlaps it.
// Layout in docs/format.md ("Reflink values").
using System.Buffers.Binary;
using System.Globalization;
using Basalt.Format;

namespace Basalt.Data;

/// <summary>The value of a reflink_p key (16 bytes): where its live range starts in reflink space, and its pads.</summary>
public readonly record struct ReflinkPointer(ulong Idx, uint FrontPad, uint BackPad)
{
    public const int SizeOf = 16;

    /// <summary>The padded range [start, end) in reflink space of a pointer key of <paramref name="size"/> sectors.</summary>
    public (ulong Start, ulong End) Padded(uint size) => (Idx - FrontPad, Idx + size + BackPad);

    /// <summary>The pointer to the piece [<paramref name="from"/>, <paramref name="to"/>) (file sectors) of a pointer key covering [keyStart, keyEnd): same padded range.</summary>
    public ReflinkPointer Piece(ulong keyStart, ulong keyEnd, ulong from, ulong to) =>
        new(Idx + (from - keyStart), checked(FrontPad + (uint)(from - keyStart)), checked(BackPad + (uint)(keyEnd - to)));

    public byte[] ToBytes()
    {
        var b = new byte[SizeOf];
        Write(b);
        return b;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Idx);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], FrontPad);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], BackPad);
    }

    public static bool TryRead(ReadOnlySpan<byte> value, out ReflinkPointer pointer, out string? problem)
    {
        pointer = default;
        if (value.Length != SizeOf)
        {
            problem = $"reflink pointer of {value.Length} bytes (expected {SizeOf})";
            return false;
        }
        pointer = new ReflinkPointer(BinaryPrimitives.ReadUInt64LittleEndian(value),
            BinaryPrimitives.ReadUInt32LittleEndian(value[8..]), BinaryPrimitives.ReadUInt32LittleEndian(value[12..]));
        problem = null;
        return true;
    }

    /// <summary>Checks the pointer against its key's size: the padded range must lie inside reflink space.</summary>
    public string? CheckAgainstKey(uint keySize)
    {
        if (keySize == 0)
            return "reflink pointer of size 0";
        if (Idx < FrontPad)
            return string.Create(CultureInfo.InvariantCulture, $"reflink pointer idx {Idx} below its front pad {FrontPad}");
        if (Idx < ReflinkSpace.FirstSector || Idx + keySize + (ulong)BackPad > ReflinkSpace.EndSector || Idx + keySize + (ulong)BackPad < Idx)
            return string.Create(CultureInfo.InvariantCulture, $"reflink pointer range {Idx}+{keySize} (back pad {BackPad}) outside reflink space");
        return null;
    }

    public string ToText() => string.Create(CultureInfo.InvariantCulture,
        $"-> reflink {Idx} (refs from {Idx - FrontPad}, {BackPad} past its end)");
}

/// <summary>The value of a reflink_v key: a refcount (8 bytes), then an extent value.</summary>
public static class ReflinkIndirect
{
    public const int RefcountOffset = 0;
    public const int ExtentOffset = 8;

    public static byte[] ToBytes(ulong refcount, ExtentValue extent)
    {
        var b = new byte[ExtentOffset + extent.EncodedSize];
        BinaryPrimitives.WriteUInt64LittleEndian(b, refcount);
        extent.Write(b.AsSpan(ExtentOffset));
        return b;
    }

    /// <summary>The same value with another refcount.</summary>
    public static byte[] WithRefcount(ReadOnlySpan<byte> value, ulong refcount)
    {
        var b = value.ToArray();
        BinaryPrimitives.WriteUInt64LittleEndian(b, refcount);
        return b;
    }

    public static ulong Refcount(ReadOnlySpan<byte> value) => BinaryPrimitives.ReadUInt64LittleEndian(value);

    /// <summary>The extent part of the value (what the space checks read pointers from).</summary>
    public static ReadOnlySpan<byte> ExtentBytes(ReadOnlySpan<byte> value) => value.Length >= ExtentOffset ? value[ExtentOffset..] : [];

    public static bool TryRead(ReadOnlySpan<byte> value, out ulong refcount, out ExtentValue extent, out string? problem)
    {
        refcount = 0;
        extent = null!;
        if (value.Length < ExtentOffset)
        {
            problem = $"indirect extent of {value.Length} bytes (expected a refcount and an extent)";
            return false;
        }
        refcount = BinaryPrimitives.ReadUInt64LittleEndian(value);
        return ExtentValue.TryRead(value[ExtentOffset..], out extent, out problem);
    }

    public static string ToText(ReadOnlySpan<byte> value) =>
        TryRead(value, out var refcount, out var extent, out var problem)
            ? string.Create(CultureInfo.InvariantCulture, $"refcount {refcount} {extent.ToText()}")
            : $"invalid indirect extent: {problem}";
}

/// <summary>Positions in the reflink btree: one flat address space of sectors, keys indexed by their end.</summary>
public static class ReflinkSpace
{
    /// <summary>Sector 0 is never used, so a pointer's idx is never 0.</summary>
    public const ulong FirstSector = 1;

    /// <summary>The end of reflink space (positions stay below the largest offset).</summary>
    public const ulong EndSector = ulong.MaxValue - 1;

    public static Bpos EndPos(ulong endSector) => new(0, endSector, 0);

    /// <summary>The first position whose key may overlap sector <paramref name="sector"/> and after.</summary>
    public static Bpos FirstOverlapping(ulong sector) => EndPos(sector + 1);

    public static Bpos Last => EndPos(EndSector);
}
