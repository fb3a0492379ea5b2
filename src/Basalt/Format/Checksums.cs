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
/// <item>Both at once, for every whole <see cref="HybridBlock"/> of an input (a data run is one or
/// more): the crc32 instruction and the carry-less multiply run on different execution units, and
/// on CPUs where a 256-bit carry-less multiply issues only every other cycle (AMD Zen 3) folding
/// alone is no faster than the chains. Each block's first <see cref="HybridFolded"/> bytes are
/// folded while three chains take the three equal lanes after them, in the same loop; the
/// folded part's register and the first two lanes' are then moved forward over the lanes after
/// them (a carry-less multiply by x^n mod P, reduced by the crc32 instruction) and combined.
/// On Zen 3 this checksums 4 KiB and 64 KiB in about 0.8 of folding's time.</item>
/// </list>
/// The folding and shifting constants are derived from the polynomial when the class is first used.
/// </summary>
public static class Crc32C
{
    /// <summary>Bytes each of the three chains covers per step of the interleaved loop.</summary>
    private const int Lane = 512;

    /// <summary>The shortest input that is folded: one block of each accumulator.</summary>
    internal const int FoldMinimum = 128;

    /// <summary>The CRC-32C polynomial in normal form, x^32 implied.</summary>
    private const uint Polynomial = 0x1EDC6F41;

    /// <summary>The polynomial bit-reflected, as the crc32 instruction's register holds it.</summary>
    private const uint ReflectedPolynomial = 0x82F63B78;

    /// <summary>Bytes of one block checksummed by folding and chains together (a 4 KiB run is one).</summary>
    internal const int HybridBlock = 4096;

    /// <summary>The folded part of a hybrid block: 17 steps of the accumulators.</summary>
    private const int HybridFolded = 17 * FoldMinimum;

    /// <summary>Each chain's lane of a hybrid block: 40 bytes (five steps) per folding step after the first.</summary>
    private const int HybridLane = (HybridBlock - HybridFolded) / 3;

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

    // Multipliers that move a register forward over one, two and three lanes of a hybrid block.
    private static readonly ulong s_shiftLane1 = ShiftMultiplier(HybridLane);
    private static readonly ulong s_shiftLane2 = ShiftMultiplier(2 * HybridLane);
    private static readonly ulong s_shiftLane3 = ShiftMultiplier(3 * HybridLane);

    /// <summary>True where inputs of <see cref="FoldMinimum"/> bytes or more are folded.</summary>
    internal static bool CanFold => Pclmulqdq.V256.IsSupported;

    /// <summary>True where whole <see cref="HybridBlock"/>s are folded and chained together.</summary>
    internal static bool CanFoldAndChain => Pclmulqdq.V256.IsSupported && Sse42.X64.IsSupported;

    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFF_FFFFu, data);

    /// <summary>Continues a raw (not inverted) crc over more data.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        if (data.Length >= HybridBlock && CanFoldAndChain)
            return UpdateHybrid(crc, data);
        return data.Length >= FoldMinimum && CanFold ? UpdateFolded(crc, data) : UpdateChains(crc, data);
    }

    /// <summary>
    /// Every whole <see cref="HybridBlock"/> folded and chained together (see the class comment),
    /// the rest as <see cref="Update"/> does it; the CPU has both instructions.
    /// </summary>
    internal static uint UpdateHybrid(uint crc, ReadOnlySpan<byte> data)
    {
        Debug.Assert(CanFoldAndChain);
        ref var start = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data);
        var i = 0;
        for (; i + HybridBlock <= data.Length; i += HybridBlock)
            crc = UpdateHybridBlock(crc, ref Unsafe.Add(ref start, i));
        var rest = data[i..];
        if (rest.IsEmpty)
            return crc;
        return rest.Length >= FoldMinimum ? UpdateFolded(crc, rest) : UpdateChains(crc, rest);
    }

    /// <summary>One <see cref="HybridBlock"/> at <paramref name="start"/>: the folded part and the three lanes in one loop, then combined.</summary>
    private static uint UpdateHybridBlock(uint crc, ref byte start)
    {
        var a0 = Vector256.LoadUnsafe(ref start).AsUInt64() ^ Vector256.CreateScalar(crc).AsUInt64();
        var a1 = Vector256.LoadUnsafe(ref start, 32).AsUInt64();
        var a2 = Vector256.LoadUnsafe(ref start, 64).AsUInt64();
        var a3 = Vector256.LoadUnsafe(ref start, 96).AsUInt64();
        var k = s_fold1024;
        ref var la = ref Unsafe.Add(ref start, HybridFolded);
        ref var lb = ref Unsafe.Add(ref la, HybridLane);
        ref var lc = ref Unsafe.Add(ref lb, HybridLane);
        uint a = 0, b = 0, c = 0;
        nuint j = 0;
        for (nuint i = FoldMinimum; i < HybridFolded; i += FoldMinimum, j += 40)
        {
            a0 = Fold(a0, k) ^ Vector256.LoadUnsafe(ref start, i).AsUInt64();
            a1 = Fold(a1, k) ^ Vector256.LoadUnsafe(ref start, i + 32).AsUInt64();
            a2 = Fold(a2, k) ^ Vector256.LoadUnsafe(ref start, i + 64).AsUInt64();
            a3 = Fold(a3, k) ^ Vector256.LoadUnsafe(ref start, i + 96).AsUInt64();
            for (nuint s = 0; s < 40; s += 8)
            {
                a = BitOperations.Crc32C(a, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref la, j + s)));
                b = BitOperations.Crc32C(b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref lb, j + s)));
                c = BitOperations.Crc32C(c, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref lc, j + s)));
            }
        }
        var folded = Reduce(a0, a1, a2, a3);
        // The register after the whole block: each part's register moved over the lanes after it (the CRC is linear).
        var moved = MultiplyScalar(folded, s_shiftLane3) ^ MultiplyScalar(a, s_shiftLane2) ^ MultiplyScalar(b, s_shiftLane1);
        return BitOperations.Crc32C(0u, moved) ^ c;
    }

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
        var block = Combine(a0, a1, a2, a3);
        for (; i + 16 <= length; i += 16)
            block = Fold(block, s_fold128) ^ Vector128.LoadUnsafe(ref start, (nuint)i).AsUInt64();
        return UpdateTail(Reduce(block), ref start, i, length);
    }

    /// <summary>The four accumulators folded into one 16-byte block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Combine(Vector256<ulong> a0, Vector256<ulong> a1, Vector256<ulong> a2, Vector256<ulong> a3)
    {
        var both = Fold(a0, s_fold768) ^ Fold(a1, s_fold512) ^ Fold(a2, s_fold256) ^ a3;
        return Fold(both.GetLower(), s_fold128) ^ both.GetUpper();
    }

    /// <summary>The register after the accumulators' data: the CRC of everything folded into them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Reduce(Vector256<ulong> a0, Vector256<ulong> a1, Vector256<ulong> a2, Vector256<ulong> a3) =>
        Reduce(Combine(a0, a1, a2, a3));

    /// <summary>A block's CRC from a zero register is the CRC of everything folded into it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Reduce(Vector128<ulong> block) =>
        BitOperations.Crc32C(BitOperations.Crc32C(0u, block.GetElement(0)), block.GetElement(1));

    /// <summary>
    /// The carry-less product of a register and a <see cref="ShiftMultiplier"/>: the crc32
    /// instruction over it (from a zero register) gives the register moved forward.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong MultiplyScalar(uint crc, ulong multiplier) =>
        Pclmulqdq.CarrylessMultiply(Vector128.CreateScalar((ulong)crc), Vector128.CreateScalar(multiplier), 0x00).ToScalar();

    /// <summary>
    /// The reflected 32-bit x^(8n - 33) mod P. The carry-less product of two reflected 32-bit
    /// values, read as a reflected 64-bit message, is their product times x; the crc32 instruction
    /// over a 64-bit message multiplies it by x^32 (mod P). So a register times this, through the
    /// crc32 instruction, is the register times x^(8n): moved forward over n zero bytes.
    /// </summary>
    private static ulong ShiftMultiplier(int bytes)
    {
        var r = 0x8000_0000u; // x^0, reflected
        for (var i = 0; i < (8 * bytes) - 33; i++)
            r = (r >> 1) ^ ((r & 1) != 0 ? ReflectedPolynomial : 0); // times x
        return r;
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
