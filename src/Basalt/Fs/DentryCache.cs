// The lookup cache: names resolved before, (directory, name) → inode number, so that a lookup of
// a name seen recently reads only the target's inode instead of the directory's inode and the
// probe of the name's slots as well. This is what the kernel's dcache does above a mounted
// filesystem; the library keeps its own so that stat by path through the C# API is as fast.
//
// Bounded: a fixed array of sets of four entries, chosen by a hash of the directory and the name;
// a new entry takes a free way of its set, or else replaces the way its hash prefers. Reads take no lock: an entry is
// immutable and a slot changes with one reference write, so a reader sees a whole entry or none
// (a reader racing an insertion may miss an entry that is there, and then looks the name up in
// the btrees, which is always right).
//
// Never stale: every operation that removes or retargets a name (unlink, rmdir, rename, exchange)
// drops it here after its transaction has committed. A lookup that missed reads the cache's stamp
// before it reads the btrees and adds what it found only if no name was dropped since: a lookup
// that read the btrees before a commit can therefore not add the name that commit removed after
// the drop. Between a commit and its drop a lookup may still return the old target; the operation
// has not returned yet, so the lookup is ordered before it. Creating a name drops nothing (no
// entry caches an absence). fsck changes dirents in its own transactions and mounts without the
// cache.
using System.IO.Hashing;
using System.Numerics;

namespace Basalt.Fs;

internal sealed class DentryCache
{
    private const int Ways = 4;

    private readonly Entry?[] _slots;
    // Each slot's hash beside it: a probe compares four hashes in one cache line and follows only
    // a match to its entry (the entry's own check decides; a torn pair is only a miss).
    private readonly ulong[] _hashes;
    private readonly ulong _setMask;
    private readonly Lock _gate = new();
    private long _stamp;

    /// <param name="entries">How many names it holds at most (rounded up to a power of two, at least one set).</param>
    public DentryCache(int entries)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(entries);
        var sets = (int)Math.Min(BitOperations.RoundUpToPowerOf2((uint)Math.Max(entries / Ways, 1)), 1u << 24);
        _slots = new Entry?[sets * Ways];
        _hashes = new ulong[sets * Ways];
        _setMask = (ulong)sets - 1;
    }

    /// <summary>The number of names it can hold.</summary>
    public int Capacity => _slots.Length;

    /// <summary>Read before looking a name up in the btrees; handed back to <see cref="Add"/>.</summary>
    public long Stamp => Volatile.Read(ref _stamp);

    public static ulong Hash(ulong dir, ReadOnlySpan<byte> name) => XxHash3.HashToUInt64(name, unchecked((long)dir));

    public bool TryGet(ulong hash, ulong dir, ReadOnlySpan<byte> name, out ulong ino)
    {
        var first = SetOf(hash);
        for (var i = 0; i < Ways; i++)
        {
            if (Volatile.Read(ref _hashes[first + i]) != hash)
                continue;
            var entry = Volatile.Read(ref _slots[first + i]);
            if (entry is not null && entry.Matches(hash, dir, name))
            {
                ino = entry.Ino;
                return true;
            }
        }
        ino = 0;
        return false;
    }

    /// <summary>
    /// Caches <paramref name="name"/> in <paramref name="dir"/> → <paramref name="ino"/>, found by a
    /// lookup that began at <paramref name="stamp"/>; nothing happens if a name was dropped since.
    /// </summary>
    public void Add(long stamp, ulong hash, ulong dir, ReadOnlySpan<byte> name, ulong ino)
    {
        if (Stamp != stamp)
            return;
        var entry = new Entry(hash, dir, name.ToArray(), ino);
        var first = SetOf(hash);
        lock (_gate)
        {
            if (_stamp != stamp)
                return;
            // Where the name already is (a lookup racing this one added it), else a free way, else the
            // way its hash prefers: a set holding more names than ways keeps most of them under a
            // cyclic scan, where evicting the oldest would miss every one.
            var at = -1;
            for (var i = 0; i < Ways && at < 0; i++)
            {
                if (_slots[first + i] is { } e && e.Matches(hash, dir, name))
                    at = i;
            }
            for (var i = 0; i < Ways && at < 0; i++)
            {
                if (_slots[first + i] is null)
                    at = i;
            }
            if (at < 0)
                at = (int)(hash >> 60) & (Ways - 1);
            Set(first + at, entry);
        }
    }

    /// <summary>Forgets <paramref name="name"/> in <paramref name="dir"/>: called after a transaction that removed or retargeted it.</summary>
    public void Drop(ulong dir, ReadOnlySpan<byte> name)
    {
        var hash = Hash(dir, name);
        var first = SetOf(hash);
        lock (_gate)
        {
            _stamp++;
            for (var i = 0; i < Ways; i++)
            {
                if (_slots[first + i] is { } e && e.Matches(hash, dir, name))
                    Set(first + i, null);
            }
        }
    }

    private void Set(int slot, Entry? entry)
    {
        Volatile.Write(ref _slots[slot], entry);
        Volatile.Write(ref _hashes[slot], entry?.Hash ?? 0);
    }

    private int SetOf(ulong hash) => (int)(hash & _setMask) * Ways;

    private sealed class Entry(ulong hash, ulong dir, byte[] name, ulong ino)
    {
        public ulong Hash { get; } = hash;

        public ulong Ino { get; } = ino;

        public bool Matches(ulong h, ulong d, ReadOnlySpan<byte> n) => Hash == h && dir == d && n.SequenceEqual(name);
    }
}
