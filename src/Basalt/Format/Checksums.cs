// Checksums used by the format. crc32c is the default for metadata and data; xxhash64 and
// crc64 are options. crc32c is ours (BitOperations.Crc32C, the hardware instruction); crc64
// (the ECMA-182 variant) and xxhash64 are System.IO.Hashing's, so each has one implementation. All are computed over byte spans in one call; the checksum type of an
// on-disk object is stored beside it, and a checksum field is always 8 bytes wide (a 32-bit
// checksum is stored zero-extended).
using System.Buffers.Binary;
using System.Diagnostics;
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
/// CRC-32C on the CPU. Two ways, chosen by length and CPU:
/// <list type="bullet">
/// <item>The crc32 instruction (BitOperations.Crc32C), 8 bytes per step. The instruction's
/// latency, not its throughput, bounds one chain of steps, so inputs of at least three lanes are
/// checksummed as three interleaved chains over consecutive lanes, joined with a table that feeds a
/// register a lane of zero bytes (the CRC is linear: crc(r, A‖B) is crc(r, A) shifted over |B| zero
/// bytes, xor crc(0, B)).</item>
/// <item>Folding with 256-bit carry-less multiplies (VPCLMULQDQ), for inputs of at least
/// <see cref="FoldMinimum"/> bytes where the CPU has it: four 256-bit accumulators (eight 16-byte
/// blocks) each move forward over the next 128 bytes as the product of their halves with x^n mod P
/// and take in the block there; the accumulators are then folded into one 16-byte block, which
/// has the CRC of everything before it, and the crc32 instruction reduces that block and the
/// tail. It checksums a 4 KiB run in about 0.6 of the chains' time and 64 KiB in about 0.8.</item>
/// </list>
/// The folding constants are derived from the polynomial when the class is first used.
/// </summary>
public static class Crc32C
{
    /// <summary>Bytes each of the three chains covers per step of the interleaved loop.</summary>
    private const int Lane = 512;

    /// <summary>The shortest input that is folded: one block of each accumulator.</summary>
    internal const int FoldMinimum = 128;

    /// <summary>The CRC-32C polynomial in normal form, x^32 implied.</summary>
    private const uint Polynomial = 0x1EDC6F41;

    /// <summary>Shift[k * 256 + b]: the register b &lt;&lt; 8k after a lane of zero bytes.</summary>
    private static readonly uint[] s_shift = BuildShift();

    // Fold multipliers, each pair (low half, high half) of one 128-bit block repeated for both blocks of
    // a 256-bit register: moving a block forward by n bits multiplies its low half by x^(n+64) and its
    // high half by x^n (mod P).
    private static readonly Vector256<ulong> s_fold1024 = FoldPair256(1024);
    private static readonly Vector256<ulong> s_fold768 = FoldPair256(768);
    private static readonly Vector256<ulong> s_fold512 = FoldPair256(512);
    private static readonly Vector256<ulong> s_fold256 = FoldPair256(256);
    private static readonly Vector128<ulong> s_fold128 = FoldPair128(128);

    /// <summary>True where inputs of <see cref="FoldMinimum"/> bytes or more are folded.</summary>
    internal static bool CanFold => Pclmulqdq.V256.IsSupported;

    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFF_FFFFu, data);

    /// <summary>Continues a raw (not inverted) crc over more data.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data) =>
        data.Length >= FoldMinimum && CanFold ? UpdateFolded(crc, data) : UpdateChains(crc, data);

    /// <summary>The crc32 instruction in three interleaved chains (see the class comment).</summary>
    internal static uint UpdateChains(uint crc, ReadOnlySpan<byte> data)
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
        return UpdateTail(crc, ref start, i, length);
    }

    /// <summary>
    /// Folding (see the class comment); <paramref name="data"/> holds at least
    /// <see cref="FoldMinimum"/> bytes and the CPU has 256-bit carry-less multiplies.
    /// </summary>
    internal static uint UpdateFolded(uint crc, ReadOnlySpan<byte> data)
    {
        Debug.Assert(data.Length >= FoldMinimum && CanFold);
        ref var start = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data);
        var length = data.Length;
        // The register continues the message: it is xored into the first four bytes.
        var a0 = Vector256.LoadUnsafe(ref start).AsUInt64() ^ Vector256.CreateScalar(crc).AsUInt64();
        var a1 = Vector256.LoadUnsafe(ref start, 32).AsUInt64();
        var a2 = Vector256.LoadUnsafe(ref start, 64).AsUInt64();
        var a3 = Vector256.LoadUnsafe(ref start, 96).AsUInt64();
        var i = FoldMinimum;
        var k = s_fold1024;
        for (; i + FoldMinimum <= length; i += FoldMinimum)
        {
            a0 = Fold(a0, k) ^ Vector256.LoadUnsafe(ref start, (nuint)i).AsUInt64();
            a1 = Fold(a1, k) ^ Vector256.LoadUnsafe(ref start, (nuint)i + 32).AsUInt64();
            a2 = Fold(a2, k) ^ Vector256.LoadUnsafe(ref start, (nuint)i + 64).AsUInt64();
            a3 = Fold(a3, k) ^ Vector256.LoadUnsafe(ref start, (nuint)i + 96).AsUInt64();
        }
        var both = Fold(a0, s_fold768) ^ Fold(a1, s_fold512) ^ Fold(a2, s_fold256) ^ a3;
        var block = Fold(both.GetLower(), s_fold128) ^ both.GetUpper();
        for (; i + 16 <= length; i += 16)
            block = Fold(block, s_fold128) ^ Vector128.LoadUnsafe(ref start, (nuint)i).AsUInt64();
        // The block's CRC from a zero register is the CRC of everything folded into it.
        var reduced = BitOperations.Crc32C(BitOperations.Crc32C(0u, block.GetElement(0)), block.GetElement(1));
        return UpdateTail(reduced, ref start, i, length);
    }

    private static uint UpdateTail(uint crc, ref byte start, int i, int length)
    {
        for (; i + 8 <= length; i += 8)
            crc = BitOperations.Crc32C(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)));
        for (; i < length; i++)
            crc = BitOperations.Crc32C(crc, Unsafe.Add(ref start, i));
        return crc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Fold(Vector256<ulong> blocks, Vector256<ulong> k) =>
        Pclmulqdq.V256.CarrylessMultiply(blocks, k, 0x00) ^ Pclmulqdq.V256.CarrylessMultiply(blocks, k, 0x11);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Fold(Vector128<ulong> block, Vector128<ulong> k) =>
        Pclmulqdq.CarrylessMultiply(block, k, 0x00) ^ Pclmulqdq.CarrylessMultiply(block, k, 0x11);

    private static Vector128<ulong> FoldPair128(int bits) => Vector128.Create(FoldMultiplier(bits + 64), FoldMultiplier(bits));

    private static Vector256<ulong> FoldPair256(int bits) => Vector256.Create(FoldPair128(bits), FoldPair128(bits));

    /// <summary>
    /// The bit-reflected 64-bit operand that multiplies a reflected 64-bit half by x^n mod P. The
    /// carry-less product of two reflected operands comes out multiplied by x once more, so the
    /// operand holds x^(n-1) mod P: bit 63 - d is its coefficient of x^d.
    /// </summary>
    private static ulong FoldMultiplier(int n)
    {
        var r = 1u; // x^0
        for (var i = 0; i < n - 1; i++)
            r = (r << 1) ^ ((r & 0x8000_0000u) != 0 ? Polynomial : 0);
        var operand = 0UL;
        for (var d = 0; d < 32; d++)
        {
            if (((r >> d) & 1) != 0)
                operand |= 1UL << (63 - d);
        }
        return operand;
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
