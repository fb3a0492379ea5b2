// Bpos: a position in a btree, the triple (inode, offset, snapshot) compared as one
// 160-bit unsigned integer with the inode most significant. Every btree orders its keys
// by Bpos. On disk a Bpos is 20 bytes: inode (u64), offset (u64), snapshot (u32), little-endian.
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace Basalt.Format;

public readonly struct Bpos : IEquatable<Bpos>, IComparable<Bpos>
{
    /// <summary>Size of a Bpos on disk in bytes.</summary>
    public const int SizeOf = 20;

    public const int InodeOffset = 0;
    public const int OffsetOffset = 8;
    public const int SnapshotOffset = 16;

    public static readonly Bpos Min = new(0, 0, 0);

    /// <summary>The largest position, with a full snapshot field. Roots cover [Min, Max].</summary>
    public static readonly Bpos Max = new(ulong.MaxValue, ulong.MaxValue, uint.MaxValue);

    public ulong Inode { get; }
    public ulong Offset { get; }
    public uint Snapshot { get; }

    public Bpos(ulong inode, ulong offset, uint snapshot = 0)
    {
        Inode = inode;
        Offset = offset;
        Snapshot = snapshot;
    }

    public bool IsMin => Inode == 0 && Offset == 0 && Snapshot == 0;
    public bool IsMax => Inode == ulong.MaxValue && Offset == ulong.MaxValue && Snapshot == uint.MaxValue;

    /// <summary>The next position in the 160-bit order. Throws at <see cref="Max"/>.</summary>
    public Bpos Successor()
    {
        if (Snapshot != uint.MaxValue)
            return new Bpos(Inode, Offset, Snapshot + 1);
        if (Offset != ulong.MaxValue)
            return new Bpos(Inode, Offset + 1, 0);
        if (Inode != ulong.MaxValue)
            return new Bpos(Inode + 1, 0, 0);
        throw new InvalidOperationException("Bpos.Max has no successor");
    }

    /// <summary>The previous position in the 160-bit order. Throws at <see cref="Min"/>.</summary>
    public Bpos Predecessor()
    {
        if (Snapshot != 0)
            return new Bpos(Inode, Offset, Snapshot - 1);
        if (Offset != 0)
            return new Bpos(Inode, Offset - 1, uint.MaxValue);
        if (Inode != 0)
            return new Bpos(Inode - 1, ulong.MaxValue, uint.MaxValue);
        throw new InvalidOperationException("Bpos.Min has no predecessor");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int CompareTo(Bpos other)
    {
        if (Inode != other.Inode)
            return Inode < other.Inode ? -1 : 1;
        if (Offset != other.Offset)
            return Offset < other.Offset ? -1 : 1;
        if (Snapshot != other.Snapshot)
            return Snapshot < other.Snapshot ? -1 : 1;
        return 0;
    }

    /// <summary>
    /// a &lt; b computed without branches. A search's comparisons go either way at random, so the
    /// branches of <see cref="CompareTo"/> would be mispredicted about every other probe; this form
    /// feeds a conditional move instead.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsBelow(in Bpos a, in Bpos b) =>
        (a.Inode < b.Inode) | ((a.Inode == b.Inode) & ((a.Offset < b.Offset) | ((a.Offset == b.Offset) & (a.Snapshot < b.Snapshot))));

    public bool Equals(Bpos other) => Inode == other.Inode && Offset == other.Offset && Snapshot == other.Snapshot;
    public override bool Equals(object? obj) => obj is Bpos other && Equals(other);
    public override int GetHashCode() => HashCode.Combine(Inode, Offset, Snapshot);

    public static bool operator ==(Bpos a, Bpos b) => a.Equals(b);
    public static bool operator !=(Bpos a, Bpos b) => !a.Equals(b);
    public static bool operator <(Bpos a, Bpos b) => a.CompareTo(b) < 0;
    public static bool operator >(Bpos a, Bpos b) => a.CompareTo(b) > 0;
    public static bool operator <=(Bpos a, Bpos b) => a.CompareTo(b) <= 0;
    public static bool operator >=(Bpos a, Bpos b) => a.CompareTo(b) >= 0;

    public static Bpos Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(source[InodeOffset..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[OffsetOffset..]),
        BinaryPrimitives.ReadUInt32LittleEndian(source[SnapshotOffset..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination[InodeOffset..], Inode);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[OffsetOffset..], Offset);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[SnapshotOffset..], Snapshot);
    }

    /// <summary>Prints as INODE:OFFSET:SNAPSHOT, or "min"/"max" for the two ends.</summary>
    public string ToText()
    {
        if (IsMin)
            return "min";
        if (IsMax)
            return "max";
        return string.Create(CultureInfo.InvariantCulture, $"{Inode}:{Offset}:{Snapshot}");
    }

    public override string ToString() => ToText();

    /// <summary>Parses INODE:OFFSET[:SNAPSHOT], "min" or "max". A missing snapshot is 0.</summary>
    public static bool TryParse(string? text, out Bpos pos)
    {
        pos = default;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        text = text.Trim();
        if (text.Equals("min", StringComparison.OrdinalIgnoreCase))
        {
            pos = Min;
            return true;
        }
        if (text.Equals("max", StringComparison.OrdinalIgnoreCase))
        {
            pos = Max;
            return true;
        }
        var parts = text.Split(':');
        if (parts.Length is < 2 or > 3)
            return false;
        if (!ulong.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var inode) ||
            !ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
            return false;
        uint snapshot = 0;
        if (parts.Length == 3 && !uint.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out snapshot))
            return false;
        pos = new Bpos(inode, offset, snapshot);
        return true;
    }
}
