// Checksums used by the format. crc32c is the default for metadata and data; xxhash64 and
// crc64 are options. crc32c is ours (BitOperations.Crc32C, the hardware instruction); crc64
// (the ECMA-182 variant) and xxhash64 are System.IO.Hashing's, so each has one implementation. All are computed over byte spans in one call; the checksum type of an
// on-disk object is stored beside it, and a checksum field is always 8 bytes wide (a 32-bit
// checksum is stored zero-extended).
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Basalt.Format;

public enum ChecksumType : byte
{
    /// <summary>No checksum (never used for metadata).</summary>
    None = 0,
    /// <summary>CRC-32C (Castagnoli), init and final xor all-ones. The default.</summary>
    Crc32C = 1,
    /// <summary>CRC-64/ECMA-182 (System.IO.Hashing.Crc64): not reflected, init 0, no final xor.</summary>
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
        ChecksumType.Crc64 => System.IO.Hashing.Crc64.HashToUInt64(data),
        ChecksumType.XxHash64 => System.IO.Hashing.XxHash64.HashToUInt64(data),
        _ => throw new ArgumentOutOfRangeException(nameof(type), $"unknown checksum type {(byte)type}"),
    };
}

/// <summary>
/// CRC-32C on the CPU's crc32 instruction (BitOperations.Crc32C), 8 bytes per step. The
/// instruction's latency, not its throughput, bounds one chain of steps, so inputs of at least
/// three lanes are checksummed as three interleaved chains over consecutive lanes, joined with a
/// table that feeds a register a lane of zero bytes (the CRC is linear: crc(r, A‖B) is crc(r, A)
/// shifted over |B| zero bytes, xor crc(0, B)). What is left after the last three whole lanes (up
/// to three lanes less one byte: a tenth of a 16 KiB node's first record, at three times the cost
/// per byte as one chain) is split the same way
/// into three shorter lanes, joined by a carry-less multiply where the CPU has one (the shift over
/// n zero bytes is a multiplication by x^8n mod P), and only the last bytes run as one chain.
/// </summary>
public static class Crc32C
{
    /// <summary>Bytes each of the three chains covers per step of the interleaved loop.</summary>
    private const int Lane = 512;

    /// <summary>Shortest lane of the split tail: below it the two shifts cost more than the chains save.</summary>
    private const int MinTailLane = 32;

    /// <summary>CRC-32C's polynomial, reflected.</summary>
    private const uint Polynomial = 0x82F6_3B78;

    /// <summary>Shift[k * 256 + b]: the register b &lt;&lt; 8k after a lane of zero bytes.</summary>
    private static readonly uint[] s_shift = BuildShift();

    /// <summary>TailShift[n / 8]: x^(8n − 33) mod P for a tail lane of n bytes (<see cref="Shift"/>).</summary>
    private static readonly uint[] s_tailShift = BuildTailShift();

    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFF_FFFFu, data);

    /// <summary>Continues a raw (not inverted) crc over more data.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        ref var start = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data);
        var length = data.Length;
        var i = 0;
        for (; i + (3 * Lane) <= length; i += 3 * Lane)
        {
            uint a = crc, b = 0, c = 0;
            ref var la = ref Unsafe.Add(ref start, i);
            ref var lb = ref Unsafe.Add(ref start, i + Lane);
            ref var lc = ref Unsafe.Add(ref start, i + (2 * Lane));
            for (var j = 0; j < Lane; j += 8)
            {
                a = BitOperations.Crc32C(a, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref la, j)));
                b = BitOperations.Crc32C(b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref lb, j)));
                c = BitOperations.Crc32C(c, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref lc, j)));
            }
            crc = ShiftLane(ShiftLane(a) ^ b) ^ c;
        }
        var tail = (length - i) / 24 * 8;
        if (tail >= MinTailLane && Pclmulqdq.IsSupported)
        {
            uint a = crc, b = 0, c = 0;
            ref var la = ref Unsafe.Add(ref start, i);
            ref var lb = ref Unsafe.Add(ref start, i + tail);
            ref var lc = ref Unsafe.Add(ref start, i + (2 * tail));
            for (var j = 0; j < tail; j += 8)
            {
                a = BitOperations.Crc32C(a, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref la, j)));
                b = BitOperations.Crc32C(b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref lb, j)));
                c = BitOperations.Crc32C(c, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref lc, j)));
            }
            var shift = s_tailShift[tail / 8];
            crc = Shift(Shift(a, shift) ^ b, shift) ^ c;
            i += 3 * tail;
        }
        for (; i + 8 <= length; i += 8)
            crc = BitOperations.Crc32C(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)));
        for (; i < length; i++)
            crc = BitOperations.Crc32C(crc, Unsafe.Add(ref start, i));
        return crc;
    }

    /// <summary>
    /// The register <paramref name="crc"/> after n zero bytes, <paramref name="power"/> being
    /// x^(8n − 33) mod P: the carry-less product is crc · x^(8n − 33) · x (the product of two
    /// reflected 32-bit values lands one bit up), and a crc32 step over it multiplies by x^32 and
    /// reduces.
    /// </summary>
    private static uint Shift(uint crc, uint power) =>
        BitOperations.Crc32C(0u, Pclmulqdq.CarrylessMultiply(Vector128.CreateScalar((ulong)crc), Vector128.CreateScalar((ulong)power), 0).ToScalar());

    /// <summary>x^k mod P as a reflected register (bit 31 is x^0).</summary>
    private static uint PowerOfX(int k)
    {
        var r = 0x8000_0000u;
        for (var j = 0; j < k; j++)
            r = (r & 1) != 0 ? (r >> 1) ^ Polynomial : r >> 1;
        return r;
    }

    /// <summary>Serial reference: one chain, 8 bytes per step (what <see cref="Update"/> must equal).</summary>
    internal static uint UpdateSerial(uint crc, ReadOnlySpan<byte> data)
    {
        var i = 0;
        for (; i + 8 <= data.Length; i += 8)
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        for (; i < data.Length; i++)
            crc = BitOperations.Crc32C(crc, data[i]);
        return crc;
    }

    private static uint ShiftLane(uint crc)
    {
        var table = s_shift;
        return table[crc & 0xFF] ^ table[256 + ((crc >> 8) & 0xFF)] ^ table[512 + ((crc >> 16) & 0xFF)] ^ table[768 + (crc >> 24)];
    }

    private static uint[] BuildTailShift()
    {
        var table = new uint[Lane / 8];
        for (var n = MinTailLane; n < Lane; n += 8)
            table[n / 8] = PowerOfX((8 * n) - 33);
        return table;
    }

    private static uint[] BuildShift()
    {
        var table = new uint[4 * 256];
        for (var k = 0; k < 4; k++)
        {
            for (var b = 0u; b < 256; b++)
            {
                var r = b << (8 * k);
                for (var j = 0; j < Lane; j += 8)
                    r = BitOperations.Crc32C(r, 0UL);
                table[(k * 256) + (int)b] = r;
            }
        }
        return table;
    }
}
