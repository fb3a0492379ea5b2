// The lookup cache: names resolved before, (directory, name) → inode number, so that a lookup of
// a name seen recently reads only the target's inode instead of the directory's inode and the
// probe of the name's slots as well. This is what the kernel's dcache does above a mounted
// filesystem; the library keeps its own so that stat by path through the C# API is as fast.
//
// Bounded and allocation-free: an array of 64-byte slots (hash, directory, inode, the name inline;
// names of at most 32 bytes are cached, longer ones always take the long way) in sets of four,
// chosen by a hash of the directory and the name. A new entry takes a free way of its set, or
// else replaces the way its hash prefers. The array holds no references, so the garbage collector
// never traces or promotes entries. It starts at 256 slots on first use and doubles (keeping what
// it holds) whenever a new entry would evict another, until it reaches the capacity: a mount that
// looks up little costs little, which matters where thousands of mounts come and go (the crash
// suites). Writers hold a lock; readers take none: each slot has a version, odd while a writer
// changes it, and a reader that sees it odd or changed across its read counts a miss (and looks
// the name up in the btrees, which is always right). A reader still in the old array after a
// growth overlaps the operations that followed it, and may be ordered before them.
//
// Never stale: every operation that removes or retargets a name (unlink, rmdir, rename, exchange)
// drops it here after its transaction has committed. A lookup that missed reads the cache's stamp
// before it reads the btrees and adds what it found only if no name was dropped since: a lookup
// that read the btrees before a commit can therefore not add the name that commit removed after
// the drop. Between a commit and its drop a lookup may still return the old target; the operation
// has not returned yet, so the lookup is ordered before it. Creating a name drops nothing (no
// entry caches an absence). fsck changes dirents in its own transactions and mounts without the
// cache.
using System.Diagnostics.CodeAnalysis;
using System.IO.Hashing;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Basalt.Fs;

internal sealed class DentryCache
{
    /// <summary>The longest name cached.</summary>
    public const int MaxNameBytes = 32;

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

    /// <summary>The number of slots its array has now (0 before first use).</summary>
    internal int Allocated => Volatile.Read(ref _table)?.Slots.Length ?? 0;

    /// <summary>Read before looking a name up in the btrees; handed back to <see cref="Add"/>.</summary>
    public long Stamp => Volatile.Read(ref _stamp);

    /// <summary>Whether a name can be cached at all.</summary>
    public static bool Holds(ReadOnlySpan<byte> name) => name.Length is > 0 and <= MaxNameBytes;

    /// <summary>Never 0 (an empty slot's hash).</summary>
    public static ulong Hash(ulong dir, ReadOnlySpan<byte> name) => Math.Max(XxHash3.HashToUInt64(name, unchecked((long)dir)), 1);

    public bool TryGet(ulong hash, ulong dir, ReadOnlySpan<byte> name, out ulong ino)
    {
        ino = 0;
        if (!Holds(name) || Volatile.Read(ref _table) is not { } table)
            return false;
        var first = table.SetOf(hash);
        for (var i = 0; i < Ways; i++)
        {
            ref var slot = ref table.Slots[first + i];
            var version = Volatile.Read(ref slot.Version);
            if ((version & 1) != 0 || Volatile.Read(ref slot.Hash) != hash)
                continue;
            var matches = slot.Matches(hash, dir, name);
            var found = slot.Ino;
            Interlocked.MemoryBarrier(); // the reads above complete before the version is read again
            if (matches && Volatile.Read(ref slot.Version) == version)
            {
                ino = found;
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
        if (!Holds(name) || Stamp != stamp)
            return;
        lock (_gate)
        {
            if (_stamp != stamp)
                return;
            var table = _table;
            if (table is null)
                Volatile.Write(ref _table, table = new Table(Math.Min(FirstSets, _maxSets)));
            while (table.Sets < _maxSets && table.RoomFor(hash, dir, name) < 0)
                Volatile.Write(ref _table, table = table.Grown());
            table.Place(hash, dir, name, ino);
        }
    }

    /// <summary>Forgets <paramref name="name"/> in <paramref name="dir"/>: called after a transaction that removed or retargeted it.</summary>
    public void Drop(ulong dir, ReadOnlySpan<byte> name)
    {
        lock (_gate)
        {
            _stamp++;
            if (!Holds(name) || _table is not { } table)
                return;
            // Place never puts a name in two slots, so there is at most one.
            if (table.SlotOf(Hash(dir, name), dir, name) is var at and >= 0)
                table.Write(at, 0, 0, [], 0);
        }
    }

    /// <summary>The sets of slots. Changed only under the gate.</summary>
    private sealed class Table(int sets)
    {
        public readonly Slot[] Slots = new Slot[sets * Ways];

        public int Sets { get; } = sets;

        public int SetOf(ulong hash) => (int)(hash & (ulong)(Sets - 1)) * Ways;

        /// <summary>
        /// The slot a name goes to without evicting another: where it already is (a lookup racing
        /// this one added it), else a free way of its set; -1 when the set is full of other names.
        /// </summary>
        public int RoomFor(ulong hash, ulong dir, ReadOnlySpan<byte> name)
        {
            if (SlotOf(hash, dir, name) is var at and >= 0)
                return at;
            var first = SetOf(hash);
            for (var i = 0; i < Ways; i++)
            {
                if (Slots[first + i].Hash == 0)
                    return first + i;
            }
            return -1;
        }

        /// <summary>The slot holding the name, or -1.</summary>
        public int SlotOf(ulong hash, ulong dir, ReadOnlySpan<byte> name)
        {
            var first = SetOf(hash);
            for (var i = 0; i < Ways; i++)
            {
                if (Slots[first + i].Matches(hash, dir, name))
                    return first + i;
            }
            return -1;
        }

        /// <summary>
        /// Puts an entry in its set: in its room (<see cref="RoomFor"/>), else in the way its hash
        /// prefers, so that a set holding more names than ways keeps most of them under a cyclic
        /// scan, where evicting the oldest would miss every one.
        /// </summary>
        public void Place(ulong hash, ulong dir, ReadOnlySpan<byte> name, ulong ino)
        {
            var at = RoomFor(hash, dir, name);
            if (at < 0)
                at = SetOf(hash) + ((int)(hash >> 60) & (Ways - 1));
            Write(at, hash, dir, name, ino);
        }

        /// <summary>A table of twice the sets holding every entry of this one (readers keep using this one until the swap).</summary>
        public Table Grown()
        {
            var grown = new Table(Sets * 2);
            foreach (ref readonly var slot in Slots.AsSpan())
            {
                if (slot.Hash != 0)
                    grown.Place(slot.Hash, slot.Dir, slot.NameSpan, slot.Ino);
            }
            return grown;
        }

        /// <summary>Rewrites a slot (hash 0: empties it); readers see its version odd meanwhile.</summary>
        public void Write(int index, ulong hash, ulong dir, ReadOnlySpan<byte> name, ulong ino)
        {
            ref var slot = ref Slots[index];
            Interlocked.Increment(ref slot.Version); // odd, and visible before the fields change
            slot.Hash = hash;
            slot.Dir = dir;
            slot.Ino = ino;
            slot.Length = (byte)name.Length;
            name.CopyTo(slot.Name);
            Volatile.Write(ref slot.Version, slot.Version + 1); // even again, after the fields
        }
    }

    [InlineArray(MaxNameBytes)]
    private struct NameBytes
    {
        private byte _first;
    }

    /// <summary>One entry, 64 bytes: a cache line.</summary>
    private struct Slot
    {
        public int Version;
        public byte Length;
        public ulong Hash;
        public ulong Dir;
        public ulong Ino;
        public NameBytes Name;

        [UnscopedRef]
        public readonly ReadOnlySpan<byte> NameSpan => ((ReadOnlySpan<byte>)Name)[..Math.Min((int)Length, MaxNameBytes)];

        public readonly bool Matches(ulong hash, ulong dir, ReadOnlySpan<byte> name) =>
            Hash == hash && Dir == dir && Length == name.Length && name.SequenceEqual(NameSpan);
    }
}
