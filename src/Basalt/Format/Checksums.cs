// Checksums used by the format. crc32c is the default for metadata and data; xxhash64 and
// crc64 are options. All are computed over byte spans in one call; the checksum type of an
// on-disk object is stored beside it, and a checksum field is always 8 bytes wide (a 32-bit
// checksum is stored zero-extended).
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Basalt.Format;

public enum ChecksumType : byte
{
    /// <summary>No checksum (never used for metadata).</summary>
    None = 0,
    /// <summary>CRC-32C (Castagnoli), init and final xor all-ones. The default.</summary>
    Crc32C = 1,
    /// <summary>CRC-64/XZ (ECMA-182 polynomial, reflected), init and final xor all-ones.</summary>
    Crc64 = 2,
    /// <summary>xxHash64 with seed 0.</summary>
    XxHash64 = 3,
}

public static class Checksums
{
    public static bool IsKnown(byte type) => type <= (byte)ChecksumType.XxHash64;

    public static string ToText(this ChecksumType type) => type switch
    {
        ChecksumType.None => "none",
        ChecksumType.Crc32C => "crc32c",
        ChecksumType.Crc64 => "crc64",
        ChecksumType.XxHash64 => "xxhash64",
        _ => $"unknown({(byte)type})",
    };

    public static bool TryParse(string? text, out ChecksumType type)
    {
        foreach (var t in new[] { ChecksumType.None, ChecksumType.Crc32C, ChecksumType.Crc64, ChecksumType.XxHash64 })
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

    /// <summary>Computes the checksum of <paramref name="data"/> zero-extended to 64 bits.</summary>
    public static ulong Compute(ChecksumType type, ReadOnlySpan<byte> data) => type switch
    {
        ChecksumType.None => 0,
        ChecksumType.Crc32C => Crc32C.Compute(data),
        ChecksumType.Crc64 => Crc64.Compute(data),
        ChecksumType.XxHash64 => XxHash64.Compute(data),
        _ => throw new ArgumentOutOfRangeException(nameof(type), $"unknown checksum type {(byte)type}"),
    };
}

/// <summary>CRC-32C on the CPU's crc32 instruction (BitOperations.Crc32C), 8 bytes per step.</summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFF_FFFFu, data);

    /// <summary>Continues a raw (not inverted) crc over more data.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        ref var start = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data);
        var length = data.Length;
        var i = 0;
        for (; i + 32 <= length; i += 32)
        {
            crc = BitOperations.Crc32C(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)));
            crc = BitOperations.Crc32C(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i + 8)));
            crc = BitOperations.Crc32C(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i + 16)));
            crc = BitOperations.Crc32C(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i + 24)));
        }
        for (; i + 8 <= length; i += 8)
            crc = BitOperations.Crc32C(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)));
        for (; i < length; i++)
            crc = BitOperations.Crc32C(crc, Unsafe.Add(ref start, i));
        return crc;
    }
}

/// <summary>CRC-64/XZ, table driven (slicing by one byte).</summary>
public static class Crc64
{
    private const ulong ReflectedPolynomial = 0xC96C_5795_D787_0F42UL;
    private static readonly ulong[] s_table = BuildTable();

    private static ulong[] BuildTable()
    {
        var table = new ulong[256];
        for (var i = 0; i < 256; i++)
        {
            var crc = (ulong)i;
            for (var bit = 0; bit < 8; bit++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ ReflectedPolynomial : crc >> 1;
            table[i] = crc;
        }
        return table;
    }

    public static ulong Compute(ReadOnlySpan<byte> data)
    {
        var crc = ulong.MaxValue;
        var table = s_table;
        foreach (var b in data)
            crc = table[(byte)(crc ^ b)] ^ (crc >> 8);
        return ~crc;
    }
}

/// <summary>xxHash64 (seed 0 unless given).</summary>
public static class XxHash64
{
    private const ulong Prime1 = 0x9E37_79B1_85EB_CA87UL;
    private const ulong Prime2 = 0xC2B2_AE3D_27D4_EB4FUL;
    private const ulong Prime3 = 0x1656_67B1_9E37_79F9UL;
    private const ulong Prime4 = 0x85EB_CA77_C2B2_AE63UL;
    private const ulong Prime5 = 0x27D4_EB2F_1656_67C5UL;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Round(ulong acc, ulong input) => BitOperations.RotateLeft(acc + input * Prime2, 31) * Prime1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong MergeRound(ulong acc, ulong value) => ((acc ^ Round(0, value)) * Prime1) + Prime4;

    public static ulong Compute(ReadOnlySpan<byte> data, ulong seed = 0)
    {
        var length = data.Length;
        var p = 0;
        ulong hash;
        if (length >= 32)
        {
            var v1 = seed + Prime1 + Prime2;
            var v2 = seed + Prime2;
            var v3 = seed;
            var v4 = seed - Prime1;
            for (; p + 32 <= length; p += 32)
            {
                v1 = Round(v1, BinaryPrimitives.ReadUInt64LittleEndian(data[p..]));
                v2 = Round(v2, BinaryPrimitives.ReadUInt64LittleEndian(data[(p + 8)..]));
                v3 = Round(v3, BinaryPrimitives.ReadUInt64LittleEndian(data[(p + 16)..]));
                v4 = Round(v4, BinaryPrimitives.ReadUInt64LittleEndian(data[(p + 24)..]));
            }
            hash = BitOperations.RotateLeft(v1, 1) + BitOperations.RotateLeft(v2, 7) +
                   BitOperations.RotateLeft(v3, 12) + BitOperations.RotateLeft(v4, 18);
            hash = MergeRound(hash, v1);
            hash = MergeRound(hash, v2);
            hash = MergeRound(hash, v3);
            hash = MergeRound(hash, v4);
        }
        else
        {
            hash = seed + Prime5;
        }
        hash += (ulong)length;
        for (; p + 8 <= length; p += 8)
        {
            hash ^= Round(0, BinaryPrimitives.ReadUInt64LittleEndian(data[p..]));
            hash = (BitOperations.RotateLeft(hash, 27) * Prime1) + Prime4;
        }
        if (p + 4 <= length)
        {
            hash ^= BinaryPrimitives.ReadUInt32LittleEndian(data[p..]) * Prime1;
            hash = (BitOperations.RotateLeft(hash, 23) * Prime2) + Prime3;
            p += 4;
        }
        for (; p < length; p++)
        {
            hash ^= data[p] * Prime5;
            hash = BitOperations.RotateLeft(hash, 11) * Prime1;
        }
        hash ^= hash >> 33;
        hash *= Prime2;
        hash ^= hash >> 29;
        hash *= Prime3;
        hash ^= hash >> 32;
        return hash;
    }
}
