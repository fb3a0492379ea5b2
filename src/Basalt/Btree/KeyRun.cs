// KeyRun: a sorted run of unpacked keys whose values live in one byte arena. Node reads produce
// one (all bsets merged, newest wins); the in-memory node keeps its merged, in-flight and unwritten
// runs in this shape; node writes serialise one into a bset. Entries are fixed-size structs so
// searching a run touches no values.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>One key of a run: the unpacked key and where its value sits in the run's arena.</summary>
public readonly struct KeyEntry
{
    public readonly Bkey Key;
    public readonly int ValueOffset;
    public readonly int ValueLength;

    public KeyEntry(Bkey key, int valueOffset, int valueLength)
    {
        Key = key;
        ValueOffset = valueOffset;
        ValueLength = valueLength;
    }

    public Bpos Pos => Key.Pos;

    /// <summary>Bytes this key takes when encoded into a bset.</summary>
    public int EncodedSize => BkeyFormat.EncodedSize(ValueLength);
}

/// <summary>Lower-bound search over sorted entries, shared by every run and the index's window.</summary>
internal static class EntrySearch
{
    /// <summary>Ranges longer than this get the next probes' cache lines prefetched.</summary>
    private const int PrefetchAbove = 32;

    /// <summary>
    /// Index of the first entry in [lo, hi) with Pos &gt;= pos (hi if none). Branch-free: the range
    /// halves by a conditional move, so no probe is mispredicted, and in a long range (an unindexed
    /// run of many keys that is not in cache) both possible next probes are prefetched, so each
    /// step's memory wait overlaps the previous one's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LowerBound(KeyEntry[] entries, int lo, int hi, Bpos pos)
    {
        var n = hi - lo;
        if (n <= 0)
            return lo;
        // Invariant: every entry before b is below pos, and the answer is at most b + n.
        var b = lo;
        while (n > 1)
        {
            var half = n >> 1;
            if (n > PrefetchAbove)
                PrefetchProbes(entries, b, half, (n - half) >> 1);
            b += Bpos.IsBelow(entries[b + half].Key.Pos, pos) ? half : 0;
            n -= half;
        }
        return b + (Bpos.IsBelow(entries[b].Key.Pos, pos) ? 1 : 0);
    }

    /// <summary>The next step probes b + next or b + half + next, whichever way this one goes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchProbes(KeyEntry[] entries, int b, int half, int next)
    {
        if (!Sse.IsSupported)
            return;
        Sse.Prefetch0(Unsafe.AsPointer(ref entries[b + next]));
        Sse.Prefetch0(Unsafe.AsPointer(ref entries[b + half + next]));
    }
}

/// <summary>A sorted, immutable-once-built run of keys with their values.</summary>
public sealed class KeyRun
{
    public static readonly KeyRun Empty = new([], 0, [], 0);

    private readonly KeyEntry[] _entries;
    private readonly byte[] _arena;
    private readonly KeyRunIndex _index;

    public KeyRun(KeyEntry[] entries, int count, byte[] arena, int arenaLength)
    {
        _entries = entries;
        Count = count;
        _arena = arena;
        ArenaLength = arenaLength;
        var bytes = 0L;
        for (var i = 0; i < count; i++)
            bytes += entries[i].EncodedSize;
        EncodedBytes = bytes;
        _index = KeyRunIndex.Build(entries, count);
    }

    public int Count { get; }
    public int ArenaLength { get; }

    /// <summary>Sum of the encoded sizes of all keys: the payload a bset of this run would take.</summary>
    public long EncodedBytes { get; }

    public ReadOnlySpan<KeyEntry> Entries => _entries.AsSpan(0, Count);

    /// <summary>The run as the node's merge cursor sees it (no copy).</summary>
    internal RunView View => new(_entries, Count, _arena, this);

    public ref readonly KeyEntry this[int index] => ref _entries[index];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> ValueOf(int index)
    {
        ref readonly var e = ref _entries[index];
        return _arena.AsSpan(e.ValueOffset, e.ValueLength);
    }

    public ReadOnlySpan<byte> ValueOf(in KeyEntry entry) => _arena.AsSpan(entry.ValueOffset, entry.ValueLength);

    /// <summary>Index of the first entry with Pos &gt;= pos (Count if none).</summary>
    public int LowerBound(Bpos pos) => View.LowerBound(pos);

    internal bool HasIndex => !_index.IsEmpty;

    /// <summary>LowerBound through the prefix index (HasIndex must be true).</summary>
    internal int IndexLowerBound(Bpos pos, bool prefetchValue) => _index.LowerBound(_entries, pos, prefetchValue ? _arena : null);
}

/// <summary>Builds a KeyRun by appending keys in ascending order.</summary>
public sealed class KeyRunBuilder
{
    private KeyEntry[] _entries;
    private byte[] _arena;
    private int _count;
    private int _arenaLength;

    public KeyRunBuilder(int capacity = 16, int arenaCapacity = 256)
    {
        _entries = new KeyEntry[Math.Max(capacity, 1)];
        _arena = new byte[Math.Max(arenaCapacity, 16)];
    }

    public int Count => _count;

    public Bpos LastPos => _count == 0 ? throw new InvalidOperationException("empty run") : _entries[_count - 1].Key.Pos;

    /// <summary>Appends a key; it must sort after the previous one.</summary>
    public void Add(in Bkey key, ReadOnlySpan<byte> value)
    {
        if (_count > 0 && _entries[_count - 1].Key.Pos.CompareTo(key.Pos) >= 0)
            throw new InvalidOperationException($"keys out of order: {key.Pos.ToText()} after {_entries[_count - 1].Key.Pos.ToText()}");
        if (_count == _entries.Length)
            Array.Resize(ref _entries, _entries.Length * 2);
        if (_arenaLength + value.Length > _arena.Length)
            Array.Resize(ref _arena, Math.Max(_arena.Length * 2, _arenaLength + value.Length));
        value.CopyTo(_arena.AsSpan(_arenaLength));
        _entries[_count++] = new KeyEntry(key, _arenaLength, value.Length);
        _arenaLength += value.Length;
    }

    public KeyRun Build()
    {
        var run = new KeyRun(_entries, _count, _arena, _arenaLength);
        _entries = new KeyEntry[4];
        _arena = new byte[16];
        _count = 0;
        _arenaLength = 0;
        return run;
    }
}
