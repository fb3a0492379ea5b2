// KeyRunIndex: the in-memory search structure of an immutable KeyRun (never on disk; bcachefs
// builds one per written bset, digest §3.9). Point lookups on a warm cache are bound by memory
// latency: a binary search over 40-byte entries waits for a cache miss on nearly every probe. The
// index searches compact key prefixes instead and waits for the entries once:
//
//   - Prefix: the run's keys (all but the first and last, which in an interior node are often far
//     away, like Bpos.Max) share the leading bits of the 160-bit Bpos (inode, offset, snapshot)
//     where the second and the second-to-last key agree. The prefix of a position with those
//     leading bits is the next 64 bits; a position below (above) them gets 0 (ulong.MaxValue). So
//     the prefix is monotone (k1 <= k2 implies p(k1) <= p(k2)) and usually distinct per key.
//   - Samples: level 0 holds the prefix of every Fanout-th key; level k + 1 holds every Fanout-th
//     element of level k, up to a top level of at most 8 * Fanout elements. All levels share one
//     array, top first, so a search follows no reference beyond the run's own fields and that
//     array. A search counts the elements below the target in the whole top level (independent
//     loads, one memory round trip) and then in one Fanout-wide segment per lower level (128
//     bytes, two vector compares). A full 256 KiB leaf has only the top level.
//   - Window: the samples bound the answer to Fanout entries. Their cache lines are prefetched
//     together, then a binary search over the full keys finds it (so equal prefixes are handled
//     exactly), waiting for memory once. When the run's values are in key order (every run built
//     by KeyRunBuilder), the array also keeps each sample's value offset and a point lookup
//     prefetches the window's values in the same round trip.
//
// The index is a struct held inline by its KeyRun, built once with the run and never changed; it is
// read under the engine's read lock by any number of threads. It costs about 0.75 byte per key.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>The prefix search structure of one immutable run (see the file comment).</summary>
internal readonly struct KeyRunIndex
{
    /// <summary>Elements per segment: a level-k+1 element samples every Fanout-th level-k element.</summary>
    public const int Fanout = 16;

    /// <summary>Runs shorter than this are binary searched directly (a few probes, little to gain).</summary>
    public const int MinimumCount = 64;

    /// <summary>Most elements in the top level, which is counted whole (a full 256 KiB leaf has fewer samples).</summary>
    private const int TopLimit = 8 * Fanout;

    /// <summary>Levels an index may have: Fanout^MaxLevels keys is far beyond any node.</summary>
    private const int MaxLevels = 8;

    private const int CacheLine = 64;

    /// <summary>Bytes fetched past the start of the window's last value (it may be the answer).</summary>
    private const int ValueLookahead = 2 * CacheLine;

    /// <summary>Largest value range a lookup prefetches.</summary>
    private const int ValuePrefetchLimit = 32 * CacheLine;

    /// <summary>All levels, top first, each padded with ulong.MaxValue to whole segments; null: no index.</summary>
    private readonly ulong[]? _prefixes;
    private readonly LevelStarts _starts;
    private readonly int _levels;

    /// <summary>Padded length of the top level (at most TopLimit elements, at the start of _prefixes).</summary>
    private readonly int _topLength;
    private readonly int _count;
    private readonly int _shift;
    private readonly Bpos _first;
    private readonly Bpos _last;

    /// <summary>
    /// Where (in _prefixes, as 32-bit ints after the levels) the arena offset of the value of every
    /// sampled entry is kept, plus the end of the last value, when values are stored in key order
    /// (runs built by KeyRunBuilder); -1 otherwise. Lets a point lookup fetch the values of its
    /// window while it is still searching for the key. Sharing the array keeps a node read's
    /// allocations to the run and one index array.
    /// </summary>
    private readonly int _valueStartsAt;

    /// <summary>The smallest and largest positions whose leading _shift bits are the run's common ones.</summary>
    private readonly Bpos _low;
    private readonly Bpos _high;

    [InlineArray(MaxLevels)]
    private struct LevelStarts
    {
        private int _element;
    }

    private KeyRunIndex(KeyEntry[] entries, int count)
    {
        _count = count;
        _first = entries[0].Key.Pos;
        _last = entries[count - 1].Key.Pos;
        var a = entries[1].Key.Pos;
        var b = entries[count - 2].Key.Pos;
        _shift = CommonLeadingBits(a, b);
        _low = Mask(a, _shift, ones: false);
        _high = Mask(a, _shift, ones: true);

        Span<int> sizes = stackalloc int[MaxLevels];
        var levels = 0;
        var samples = (count + Fanout - 1) / Fanout;
        var n = samples;
        var total = 0;
        while (true)
        {
            sizes[levels++] = n;
            total += Padded(n);
            if (n <= TopLimit)
                break;
            n = (n + Fanout - 1) / Fanout;
        }
        _levels = levels;
        _topLength = Padded(sizes[levels - 1]);
        var ordered = ValuesInKeyOrder(entries, count);
        _valueStartsAt = ordered ? total : -1;
        var prefixes = new ulong[ordered ? total + ((samples + 2) / 2) : total];
        // Top level first: level k starts after the padded sizes of the levels above it.
        var at = 0;
        for (var k = levels - 1; k >= 0; k--)
        {
            _starts[k] = at;
            at += Padded(sizes[k]);
        }
        var level0 = prefixes.AsSpan(_starts[0], Padded(samples));
        for (var i = 0; i < samples; i++)
            level0[i] = PrefixOf(entries[i * Fanout].Key.Pos);
        level0[samples..].Fill(ulong.MaxValue);
        for (var k = 1; k < levels; k++)
        {
            var below = prefixes.AsSpan(_starts[k - 1]);
            var level = prefixes.AsSpan(_starts[k], Padded(sizes[k]));
            for (var i = 0; i < sizes[k]; i++)
                level[i] = below[i * Fanout];
            level[sizes[k]..].Fill(ulong.MaxValue);
        }
        if (ordered)
        {
            var starts = MemoryMarshal.Cast<ulong, int>(prefixes.AsSpan(total));
            for (var j = 0; j < samples; j++)
                starts[j] = entries[j * Fanout].ValueOffset;
            starts[samples] = entries[count - 1].ValueOffset + entries[count - 1].ValueLength;
        }
        _prefixes = prefixes;
    }

    private static bool ValuesInKeyOrder(KeyEntry[] entries, int count)
    {
        for (var i = 1; i < count; i++)
        {
            if (entries[i].ValueOffset < entries[i - 1].ValueOffset + entries[i - 1].ValueLength)
                return false;
        }
        return true;
    }

    /// <summary>The index of a run, or an empty one (IsEmpty) when the run is too short to need one.</summary>
    public static KeyRunIndex Build(KeyEntry[] entries, int count) => count < MinimumCount ? default : new KeyRunIndex(entries, count);

    public bool IsEmpty => _prefixes is null;

    /// <summary>Bytes of the prefix array.</summary>
    public long Bytes => (_prefixes?.Length ?? 0) * (long)sizeof(ulong);

    /// <summary>
    /// Index of the first entry with Pos &gt;= pos (Count if none). <paramref name="entries"/> is the
    /// indexed run; a non-null <paramref name="arena"/> (its value arena) also prefetches the values
    /// the answer may have, for a lookup that is about to read one.
    /// </summary>
    public int LowerBound(KeyEntry[] entries, Bpos pos, byte[]? arena = null)
    {
        if (pos.CompareTo(_first) <= 0)
            return 0;
        if (pos.CompareTo(_last) > 0)
            return _count;
        var prefixes = _prefixes!;
        // Sample j - 1 (entry (j - 1) * Fanout) has a prefix below pos's, so it is below pos; sample j
        // has a prefix >= pos's, so the answer is in the window up to entry j * Fanout unless
        // prefixes tie, which the check after the window search catches.
        var j = PrefixLowerBound(PrefixOf(pos));
        var lo = j == 0 ? 0 : ((j - 1) * Fanout) + 1;
        var hi = Math.Min(j * Fanout, _count);
        PrefetchWindow(entries, lo, hi);
        if (arena is not null && _valueStartsAt >= 0)
            PrefetchValues(arena, MemoryMarshal.Cast<ulong, int>(prefixes.AsSpan(_valueStartsAt)), j);
        var i = BinarySearch(entries, lo, hi, pos);
        if (i < hi || hi == _count || entries[hi].Key.Pos.CompareTo(pos) >= 0)
            return i;
        // Equal prefixes past the window (keys that differ only below the prefix window).
        return BinarySearch(entries, hi + 1, _count, pos);
    }

    /// <summary>Values of the window's entries: from sample j - 1's value to just past sample j's start.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchValues(byte[] arena, ReadOnlySpan<int> starts, int j)
    {
        if (!Sse.IsSupported || (uint)j >= (uint)starts.Length)
            return;
        var from = j == 0 ? 0 : starts[j - 1];
        var to = Math.Min(starts[j] + ValueLookahead, arena.Length);
        // Windows of large values are not worth it: their copy dominates the lookup anyway.
        if (from >= to || to - from > ValuePrefetchLimit)
            return;
        var start = (byte*)Unsafe.AsPointer(ref arena[from]);
        var end = start + (to - from);
        for (var line = start; line < end; line += CacheLine)
            Sse.Prefetch0(line);
        Sse.Prefetch0(end - 1);
    }

    private static int BinarySearch(KeyEntry[] entries, int lo, int hi, Bpos pos) => EntrySearch.LowerBound(entries, lo, hi, pos);

    /// <summary>
    /// Asks for every cache line of entries [lo, hi) at once: the binary search that follows then
    /// waits for memory about once instead of once per probe.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchWindow(KeyEntry[] entries, int lo, int hi)
    {
        if (!Sse.IsSupported || lo >= hi || (uint)hi > (uint)entries.Length)
            return;
        // Only a hint: a stale address (the array moved) costs nothing but a useless fetch.
        var start = (byte*)Unsafe.AsPointer(ref entries[lo]);
        var end = start + ((hi - lo) * sizeof(KeyEntry));
        for (var line = start; line < end; line += CacheLine)
            Sse.Prefetch0(line);
        Sse.Prefetch0(end - 1);
    }

    /// <summary>Index of the first sample (level-0 prefix) &gt;= p.</summary>
    private int PrefixLowerBound(ulong p)
    {
        var prefixes = _prefixes!;
        // The whole top level is counted: its segments have no dependence on each other, so their
        // cache lines are fetched together, where one more level would cost a round trip.
        var j = 0;
        for (var start = 0; start < _topLength; start += Fanout)
            j += CountBelow(prefixes, start, p);
        for (var k = _levels - 2; k >= 0; k--)
        {
            // Level k+1 element j - 1 is level k element (j - 1) * Fanout, below p; element j (if
            // any) is not: the answer at level k lies in segment j - 1.
            if (j == 0)
                return 0;
            var start = (j - 1) * Fanout;
            j = start + CountBelow(prefixes, _starts[k] + start, p);
        }
        return j;
    }

    /// <summary>How many of the Fanout prefixes at [start..] are below p (padding is ulong.MaxValue, never below).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int CountBelow(ulong[] prefixes, int start, ulong p)
    {
        if ((uint)(start + Fanout) > (uint)prefixes.Length)
            ThrowCorrupt();
        ref var at = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(prefixes), start);
        if (Vector512.IsHardwareAccelerated)
        {
            var target = Vector512.Create(p);
            var lo = Vector512.LessThan(Vector512.LoadUnsafe(ref at), target).ExtractMostSignificantBits();
            var hi = Vector512.LessThan(Vector512.LoadUnsafe(ref at, 8), target).ExtractMostSignificantBits();
            return BitOperations.PopCount(lo | (hi << 8));
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var target = Vector256.Create(p);
            var mask = 0u;
            for (nuint v = 0; v < Fanout / 4; v++)
                mask |= Vector256.LessThan(Vector256.LoadUnsafe(ref at, v * 4), target).ExtractMostSignificantBits() << (int)(v * 4);
            return BitOperations.PopCount(mask);
        }
        var n = 0;
        for (var i = 0; i < Fanout; i++)
            n += Unsafe.Add(ref at, i) < p ? 1 : 0;
        return n;
    }

    private static void ThrowCorrupt() => throw new InvalidOperationException("key run index segment out of range");

    private static int Padded(int n) => (n + Fanout - 1) / Fanout * Fanout;

    /// <summary>The prefix of a position: 0 below the run's common leading bits, ulong.MaxValue above them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong PrefixOf(Bpos pos)
    {
        if (pos.CompareTo(_low) < 0)
            return 0;
        if (pos.CompareTo(_high) > 0)
            return ulong.MaxValue;
        return Window(pos, _shift);
    }

    /// <summary>Number of leading bits (of the 160-bit inode:offset:snapshot value) on which a and b agree.</summary>
    internal static int CommonLeadingBits(Bpos a, Bpos b)
    {
        if (a.Inode != b.Inode)
            return BitOperations.LeadingZeroCount(a.Inode ^ b.Inode);
        if (a.Offset != b.Offset)
            return 64 + BitOperations.LeadingZeroCount(a.Offset ^ b.Offset);
        if (a.Snapshot != b.Snapshot)
            return 128 + BitOperations.LeadingZeroCount(a.Snapshot ^ b.Snapshot);
        return 160;
    }

    /// <summary>pos with every bit after its first <paramref name="shift"/> bits cleared (or set).</summary>
    internal static Bpos Mask(Bpos pos, int shift, bool ones)
    {
        static ulong Keep64(ulong word, int bits, bool ones)
        {
            if (bits >= 64)
                return word;
            if (bits <= 0)
                return ones ? ulong.MaxValue : 0;
            var low = ulong.MaxValue >> bits;
            return ones ? word | low : word & ~low;
        }
        static uint Keep32(uint word, int bits, bool ones)
        {
            if (bits >= 32)
                return word;
            if (bits <= 0)
                return ones ? uint.MaxValue : 0;
            var low = uint.MaxValue >> bits;
            return ones ? word | low : word & ~low;
        }
        return new Bpos(Keep64(pos.Inode, shift, ones), Keep64(pos.Offset, shift - 64, ones), Keep32(pos.Snapshot, shift - 128, ones));
    }

    /// <summary>The 64 bits of the position that follow its first <paramref name="shift"/> bits (zero-filled past the end).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Window(Bpos pos, int shift)
    {
        // The position as three 64-bit words, most significant first: inode, offset, snapshot << 32.
        var w1 = pos.Offset;
        var w2 = (ulong)pos.Snapshot << 32;
        var bit = shift & 63;
        switch (shift >> 6)
        {
            case 0:
                return bit == 0 ? pos.Inode : (pos.Inode << bit) | (w1 >> (64 - bit));
            case 1:
                return bit == 0 ? w1 : (w1 << bit) | (w2 >> (64 - bit));
            case 2:
                return w2 << bit;
            default:
                return 0;
        }
    }
}
