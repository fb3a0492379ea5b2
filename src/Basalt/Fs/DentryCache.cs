// The lookup cache: names resolved before, (directory, name) → inode number, so that a lookup of
// a name seen recently reads only the target's inode instead of the directory's inode and the
// probe of the name's slots as well. This is what the kernel's dcache does above a mounted
// filesystem; the library keeps its own so that stat by path through the C# API is as fast.
//
// Bounded: an array of sets of four entries, chosen by a hash of the directory and the name; a
// new entry takes a free way of its set, or else replaces the way its hash prefers. The array
// starts at 256 entries on first use and doubles (keeping what it holds) whenever a new entry
// would evict another, until it reaches the capacity: a mount that looks up little costs little,
// which matters where thousands of mounts come and go (the crash suites). Reads take no lock: an
// entry is immutable and a slot changes with one reference write, so a reader sees a whole entry
// or none (a reader racing an insertion or a growth may miss an entry that is there, and then
// looks the name up in the btrees, which is always right; a reader still in the old array after a
// growth overlaps the operations that followed it, and may be ordered before them).
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
    private const int FirstSets = 64;

    private readonly int _maxSets;
    private readonly Lock _gate = new();
    private Table? _table;
    private long _stamp;

    /// <param name="entries">How many names it holds at most (rounded up to a power of two, at least one set).</param>
    public DentryCache(int entries)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(entries);
        _maxSets = (int)Math.Min(BitOperations.RoundUpToPowerOf2((uint)Math.Max(entries / Ways, 1)), 1u << 24);
    }

    /// <summary>The number of names it can hold.</summary>
    public int Capacity => _maxSets * Ways;

    /// <summary>The number of names its array holds now (0 before first use).</summary>
    internal int Allocated => Volatile.Read(ref _table)?.Slots.Length ?? 0;

    /// <summary>Read before looking a name up in the btrees; handed back to <see cref="Add"/>.</summary>
    public long Stamp => Volatile.Read(ref _stamp);

    public static ulong Hash(ulong dir, ReadOnlySpan<byte> name) => XxHash3.HashToUInt64(name, unchecked((long)dir));

    public bool TryGet(ulong hash, ulong dir, ReadOnlySpan<byte> name, out ulong ino)
    {
        ino = 0;
        if (Volatile.Read(ref _table) is not { } table)
            return false;
        var first = table.SetOf(hash);
        for (var i = 0; i < Ways; i++)
        {
            if (Volatile.Read(ref table.Hashes[first + i]) != hash)
                continue;
            var entry = Volatile.Read(ref table.Slots[first + i]);
            if (entry is not null && entry.Matches(hash, dir, name))
            {
                ino = entry.Ino;
                return true;
            }
        }
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
        lock (_gate)
        {
            if (_stamp != stamp)
                return;
            var table = _table;
            if (table is null)
                Volatile.Write(ref _table, table = new Table(Math.Min(FirstSets, _maxSets)));
            while (table.Sets < _maxSets && !table.HasRoom(hash, dir, name))
                Volatile.Write(ref _table, table = table.Grown());
            table.Place(entry, hash, dir, name);
        }
    }

    /// <summary>Forgets <paramref name="name"/> in <paramref name="dir"/>: called after a transaction that removed or retargeted it.</summary>
    public void Drop(ulong dir, ReadOnlySpan<byte> name)
    {
        var hash = Hash(dir, name);
        lock (_gate)
        {
            _stamp++;
            if (_table is not { } table)
                return;
            var first = table.SetOf(hash);
            for (var i = 0; i < Ways; i++)
            {
                if (table.Slots[first + i] is { } e && e.Matches(hash, dir, name))
                    table.Set(first + i, null);
            }
        }
    }

    /// <summary>The sets: entries, and each slot's hash beside it so that a probe compares four hashes in one cache line and follows only a match (the entry's own check decides; a torn pair is only a miss).</summary>
    private sealed class Table(int sets)
    {
        public readonly Entry?[] Slots = new Entry?[sets * Ways];
        public readonly ulong[] Hashes = new ulong[sets * Ways];

        public int Sets { get; } = sets;


        public int SetOf(ulong hash) => (int)(hash & (ulong)(Sets - 1)) * Ways;

        /// <summary>Whether the name's set holds it or has a free way: else placing it evicts another.</summary>
        public bool HasRoom(ulong hash, ulong dir, ReadOnlySpan<byte> name)
        {
            var first = SetOf(hash);
            for (var i = 0; i < Ways; i++)
            {
                if (Slots[first + i] is not { } e || e.Matches(hash, dir, name))
                    return true;
            }
            return false;
        }

        /// <summary>
        /// Puts an entry in its set: where its name already is (a lookup racing this one added it),
        /// else in a free way, else in the way its hash prefers, so that a set holding more names
        /// than ways keeps most of them under a cyclic scan, where evicting the oldest would miss
        /// every one.
        /// </summary>
        public void Place(Entry entry, ulong hash, ulong dir, ReadOnlySpan<byte> name)
        {
            var first = SetOf(hash);
            var at = -1;
            for (var i = 0; i < Ways && at < 0; i++)
            {
                if (Slots[first + i] is { } e && e.Matches(hash, dir, name))
                    at = i;
            }
            for (var i = 0; i < Ways && at < 0; i++)
            {
                if (Slots[first + i] is null)
                    at = i;
            }
            if (at < 0)
                at = (int)(hash >> 60) & (Ways - 1);
            Set(first + at, entry);
        }

        /// <summary>A table of twice the sets holding every entry of this one (readers keep using this one until the swap).</summary>
        public Table Grown()
        {
            var grown = new Table(Sets * 2);
            foreach (var entry in Slots)
            {
                if (entry is not null)
                    grown.Place(entry, entry.Hash, entry.Dir, entry.Name);
            }
            return grown;
        }

        public void Set(int slot, Entry? entry)
        {
            Volatile.Write(ref Slots[slot], entry);
            Volatile.Write(ref Hashes[slot], entry?.Hash ?? 0);
        }
    }

    private sealed class Entry(ulong hash, ulong dir, byte[] name, ulong ino)
    {
        public ulong Hash { get; } = hash;

        public ulong Dir { get; } = dir;

        public byte[] Name { get; } = name;

        public ulong Ino { get; } = ino;

        public bool Matches(ulong h, ulong d, ReadOnlySpan<byte> n) => Hash == h && Dir == d && n.SequenceEqual(Name);
    }
}
