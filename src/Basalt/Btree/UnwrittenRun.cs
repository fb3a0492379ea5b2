// The small mutable run of a cached node: keys inserted since the node was last captured for a
// write, kept sorted, with deletion markers (KeyType.Deleted) for keys that must be whited out
// on disk. Values are appended to an arena; overwritten values become garbage that a compaction
// of the arena reclaims once it outweighs the live values.
using System.Runtime.CompilerServices;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>A read-only view of a sorted run (a KeyRun or an UnwrittenRun) for merge cursors.</summary>
internal readonly struct RunView
{
    public readonly KeyEntry[] Entries;
    public readonly int Count;
    public readonly byte[] Arena;

    /// <summary>The immutable run behind this view when it has a prefix index, else null.</summary>
    private readonly KeyRun? _indexed;

    public RunView(KeyEntry[] entries, int count, byte[] arena, KeyRun? run = null)
    {
        Entries = entries;
        Count = count;
        Arena = arena;
        _indexed = run is { HasIndex: true } ? run : null;
    }

    public static RunView Empty => new([], 0, []);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> ValueOf(int index)
    {
        ref readonly var e = ref Entries[index];
        return Arena.AsSpan(e.ValueOffset, e.ValueLength);
    }

    /// <summary>Index of the first entry with Pos &gt;= pos (Count if none).</summary>
    public int LowerBound(Bpos pos) => LowerBound(pos, prefetchValue: false);

    /// <summary>LowerBound; <paramref name="prefetchValue"/>: the caller is about to read the value found.</summary>
    public int LowerBound(Bpos pos, bool prefetchValue)
    {
        if (_indexed is { } run)
            return run.IndexLowerBound(pos, prefetchValue);
        return EntrySearch.LowerBound(Entries, 0, Count, pos);
    }

    /// <summary>Index of the entry at exactly pos, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Find(Bpos pos, bool prefetchValue = false)
    {
        var i = LowerBound(pos, prefetchValue);
        return i < Count && Entries[i].Key.Pos == pos ? i : -1;
    }
}

internal sealed class UnwrittenRun
{
    private KeyEntry[] _entries = new KeyEntry[8];
    private byte[] _arena = new byte[256];
    private int _count;
    private int _arenaLength;
    private int _liveValueBytes;

    public int Count => _count;

    /// <summary>Encoded bytes of every entry (deletion markers included): the payload of the next bset.</summary>
    public long EncodedBytes { get; private set; }

    public RunView View => new(_entries, _count, _arena);

    public ref readonly KeyEntry this[int index] => ref _entries[index];

    /// <summary>Inserts or replaces the entry at key.Pos.</summary>
    public void Set(in Bkey key, ReadOnlySpan<byte> value)
    {
        var view = View;
        var i = view.LowerBound(key.Pos);
        var replace = i < _count && _entries[i].Key.Pos == key.Pos;
        if (replace)
        {
            EncodedBytes -= _entries[i].EncodedSize;
            _liveValueBytes -= _entries[i].ValueLength;
        }
        var valueOffset = AppendValue(value);
        if (!replace)
        {
            if (_count == _entries.Length)
                Array.Resize(ref _entries, _entries.Length * 2);
            Array.Copy(_entries, i, _entries, i + 1, _count - i);
            _count++;
        }
        _entries[i] = new KeyEntry(key, valueOffset, value.Length);
        EncodedBytes += _entries[i].EncodedSize;
        _liveValueBytes += value.Length;
    }

    /// <summary>Removes the entry at pos if present.</summary>
    public bool Remove(Bpos pos)
    {
        var i = View.Find(pos);
        if (i < 0)
            return false;
        EncodedBytes -= _entries[i].EncodedSize;
        _liveValueBytes -= _entries[i].ValueLength;
        Array.Copy(_entries, i + 1, _entries, i, _count - i - 1);
        _count--;
        _entries[_count] = default;
        return true;
    }

    /// <summary>Moves the contents out as an immutable run and leaves this run empty.</summary>
    public KeyRun TakeAll()
    {
        var run = new KeyRun(_entries, _count, _arena, _arenaLength);
        _entries = new KeyEntry[8];
        _arena = new byte[256];
        _count = 0;
        _arenaLength = 0;
        _liveValueBytes = 0;
        EncodedBytes = 0;
        return run;
    }

    private int AppendValue(ReadOnlySpan<byte> value)
    {
        if (_arenaLength + value.Length > _arena.Length)
        {
            if (_arenaLength - _liveValueBytes > _arena.Length / 2)
                CompactArena();
            if (_arenaLength + value.Length > _arena.Length)
                Array.Resize(ref _arena, Math.Max(_arena.Length * 2, _arenaLength + value.Length));
        }
        var at = _arenaLength;
        value.CopyTo(_arena.AsSpan(at));
        _arenaLength += value.Length;
        return at;
    }

    private void CompactArena()
    {
        var total = 0;
        for (var i = 0; i < _count; i++)
            total += _entries[i].ValueLength;
        var fresh = new byte[Math.Max(256, total * 2)];
        var at = 0;
        for (var i = 0; i < _count; i++)
        {
            ref var e = ref _entries[i];
            _arena.AsSpan(e.ValueOffset, e.ValueLength).CopyTo(fresh.AsSpan(at));
            e = new KeyEntry(e.Key, at, e.ValueLength);
            at += e.ValueLength;
        }
        _arena = fresh;
        _arenaLength = at;
    }
}
