// Bkey: the key header every btree entry carries — position, extent size and value type.
// In memory a key is this fixed-size struct and its value lives in an arena. On disk a key is
// a 32-byte header followed by its value padded to 8 bytes (see BkeyFormat and docs/format.md);
// the codec here is the only code that knows that encoding.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Basalt.Format;

public readonly struct Bkey : IEquatable<Bkey>
{
    public Bpos Pos { get; }
    /// <summary>Extent length in sectors; 0 for non-extent keys.</summary>
    public uint Size { get; }
    public KeyType Type { get; }

    public Bkey(Bpos pos, KeyType type, uint size = 0)
    {
        Pos = pos;
        Type = type;
        Size = size;
    }

    public bool IsDeletion => Type.IsDeletion();

    public bool Equals(Bkey other) => Pos == other.Pos && Size == other.Size && Type == other.Type;
    public override bool Equals(object? obj) => obj is Bkey other && Equals(other);
    public override int GetHashCode() => HashCode.Combine(Pos, Size, Type);
    public static bool operator ==(Bkey a, Bkey b) => a.Equals(b);
    public static bool operator !=(Bkey a, Bkey b) => !a.Equals(b);

    public string ToText() => Size == 0 ? $"{Pos.ToText()} {Type.ToText()}" : $"{Pos.ToText()} len {Size} {Type.ToText()}";
    public override string ToString() => ToText();
}

/// <summary>On-disk key encoding: offsets and sizes of the 32-byte key header.</summary>
public static class BkeyFormat
{
    public const int HeaderSize = 32;

    public const int U64sOffset = 0;        // u16: key + value size in 8-byte words
    public const int TypeOffset = 2;        // u8: KeyType
    public const int ValuePadOffset = 3;    // u8: padding bytes at the end of the value (0..7)
    public const int SizeOffset = 4;        // u32: extent size in sectors
    public const int PosOffset = 8;         // Bpos, 20 bytes
    public const int ReservedOffset = 28;   // u32: reserved, must be zero

    /// <summary>Hard limit of a value's length in bytes (DESIGN §3: at most 64 KiB).</summary>
    public const int MaxValueBytes = 64 * 1024;

    /// <summary>Bytes a key with a value of <paramref name="valueLength"/> bytes takes on disk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int EncodedSize(int valueLength) => HeaderSize + ((valueLength + 7) & ~7);

    /// <summary>Writes header and value; returns the number of bytes written (a multiple of 8).</summary>
    public static int Write(Span<byte> destination, in Bkey key, ReadOnlySpan<byte> value)
    {
        var total = EncodedSize(value.Length);
        if (destination.Length < total)
            throw new ArgumentException("destination too small for key", nameof(destination));
        var header = destination[..HeaderSize];
        BinaryPrimitives.WriteUInt16LittleEndian(header[U64sOffset..], checked((ushort)(total / 8)));
        header[TypeOffset] = (byte)key.Type;
        header[ValuePadOffset] = (byte)(total - HeaderSize - value.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[SizeOffset..], key.Size);
        key.Pos.Write(header[PosOffset..]);
        BinaryPrimitives.WriteUInt32LittleEndian(header[ReservedOffset..], 0);
        value.CopyTo(destination[HeaderSize..]);
        destination[(HeaderSize + value.Length)..total].Clear();
        return total;
    }
}

/// <summary>
/// A zero-copy view of one encoded key. Construct only over at least <see cref="BkeyFormat.HeaderSize"/>
/// bytes; callers check <see cref="TotalBytes"/> against the space left before touching the value.
/// </summary>
public readonly ref struct BkeyView
{
    private readonly ReadOnlySpan<byte> _data;

    public BkeyView(ReadOnlySpan<byte> data) => _data = data;

    public int U64s => BinaryPrimitives.ReadUInt16LittleEndian(_data[BkeyFormat.U64sOffset..]);
    public int TotalBytes => U64s * 8;
    public byte RawType => _data[BkeyFormat.TypeOffset];
    public KeyType Type => (KeyType)RawType;
    public int ValuePad => _data[BkeyFormat.ValuePadOffset];
    public uint Size => BinaryPrimitives.ReadUInt32LittleEndian(_data[BkeyFormat.SizeOffset..]);
    public Bpos Pos => Bpos.Read(_data[BkeyFormat.PosOffset..]);
    public uint Reserved => BinaryPrimitives.ReadUInt32LittleEndian(_data[BkeyFormat.ReservedOffset..]);
    public int ValueLength => TotalBytes - BkeyFormat.HeaderSize - ValuePad;

    /// <summary>True when the header's lengths are self-consistent and fit in <paramref name="available"/> bytes.</summary>
    public bool IsWellFormed(int available) =>
        U64s * 8 >= BkeyFormat.HeaderSize &&
        TotalBytes <= available &&
        ValuePad < 8 &&
        ValueLength >= 0 &&
        ValueLength <= BkeyFormat.MaxValueBytes;

    public Bkey Key => new(Pos, Type, Size);
    public ReadOnlySpan<byte> Value => _data.Slice(BkeyFormat.HeaderSize, ValueLength);
}
