using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using static Basalt.Tests.Fs.FilesTests;

namespace Basalt.Tests.Fs;

/// <summary>The lookup cache (DentryCache): bounded, and never answers with a name that was removed or renamed.</summary>
public sealed class LookupCacheTests
{
    [Fact]
    public void Cache_holds_added_names_drops_them_and_refuses_an_add_that_began_before_a_drop()
    {
        var cache = new DentryCache(64);
        var name = B("file");
        var hash = DentryCache.Hash(7, name);
        cache.Add(cache.Stamp, hash, 7, name, 100);
        Assert.True(cache.TryGet(hash, 7, name, out var ino));
        Assert.Equal(100ul, ino);
        Assert.False(cache.TryGet(DentryCache.Hash(8, name), 8, name, out _)); // another directory
        Assert.False(cache.TryGet(DentryCache.Hash(7, B("filf")), 7, B("filf"), out _));
        var tooLong = new byte[DentryCache.MaxNameBytes + 1];
        cache.Add(cache.Stamp, DentryCache.Hash(7, tooLong), 7, tooLong, 5);
        Assert.False(cache.TryGet(DentryCache.Hash(7, tooLong), 7, tooLong, out _));

        var stamp = cache.Stamp;
        cache.Drop(7, name);
        Assert.False(cache.TryGet(hash, 7, name, out _));
        // A lookup that read the btrees before the drop cannot bring the name back.
        cache.Add(stamp, hash, 7, name, 100);
        Assert.False(cache.TryGet(hash, 7, name, out _));
        cache.Add(cache.Stamp, hash, 7, name, 101);
        Assert.True(cache.TryGet(hash, 7, name, out ino));
        Assert.Equal(101ul, ino);

        // Adding a name twice keeps one entry, with the newer target.
        cache.Add(cache.Stamp, hash, 7, name, 102);
        cache.Drop(7, name);
        Assert.False(cache.TryGet(hash, 7, name, out _));
    }

    [Fact]
    public void Cache_is_bounded_by_its_capacity()
    {
        var cache = new DentryCache(4096);
        Assert.Equal(4096, cache.Capacity);
        Assert.Equal(0, cache.Allocated); // nothing until first use
        var first = B("first");
        cache.Add(cache.Stamp, DentryCache.Hash(1, first), 1, first, 1);
        Assert.Equal(256, cache.Allocated);
        for (var i = 0; i < 10_000; i++)
        {
            var name = B($"n{i}");
            cache.Add(cache.Stamp, DentryCache.Hash(1, name), 1, name, (ulong)i + 10);
        }
        var held = 0;
        for (var i = 0; i < 10_000; i++)
        {
            var name = B($"n{i}");
            if (cache.TryGet(DentryCache.Hash(1, name), 1, name, out var ino))
            {
                Assert.Equal((ulong)i + 10, ino);
                held++;
            }
        }
        Assert.Equal(4096, cache.Allocated); // grown to its capacity, no further
        Assert.InRange(held, 2048, 4096);
        // The name added last is always held.
        var last = B("n9999");
        Assert.True(cache.TryGet(DentryCache.Hash(1, last), 1, last, out _));
    }

    [Fact]
    public void A_cyclic_scan_of_more_names_than_a_set_holds_still_hits_most()
    {
        // One set of four ways, eight names, scanned in the same order twice: evicting the oldest
        // would miss all eight on the second scan.
        var cache = new DentryCache(4);
        var names = Enumerable.Range(0, 8).Select(i => B($"c{i}")).ToArray();
        foreach (var n in names)
            cache.Add(cache.Stamp, DentryCache.Hash(1, n), 1, n, 1);
        var hits = 0;
        foreach (var n in names)
        {
            var hash = DentryCache.Hash(1, n);
            if (cache.TryGet(hash, 1, n, out _))
                hits++;
            else
                cache.Add(cache.Stamp, hash, 1, n, 1);
        }
        Assert.InRange(hits, 1, 4);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(1 << 17)]
    public void Lookups_follow_unlink_rename_exchange_and_rmdir(int entries)
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, Geometry);
        using var mounted = Remount(device, fs, entries);
        var f = mounted.Files;
        var root = FsPositions.RootIno;
        var dir = f.Mkdir(root, B("d"), 0x1ED).Ino;
        var x = f.Create(root, B("x"), 0x1A4).Ino;
        var y = f.Create(dir, B("y"), 0x1A4).Ino;
        for (var i = 0; i < 40; i++)
            f.Create(root, B($"other{i}"), 0x1A4); // crowd a small cache
        // Warm: each name resolved at least once.
        Assert.Equal(x, f.Lookup(root, B("x")).Ino);
        Assert.Equal(y, f.Lookup(dir, B("y")).Ino);

        f.Rename(root, B("x"), dir, B("y"), RenameFlags.Exchange);
        Assert.Equal(y, f.Lookup(root, B("x")).Ino);
        Assert.Equal(x, f.Lookup(dir, B("y")).Ino);

        f.Rename(root, B("x"), dir, B("z"));
        Assert.False(f.TryLookup(root, B("x"), out _));
        Assert.Equal(y, f.Lookup(dir, B("z")).Ino);

        f.Rename(dir, B("z"), dir, B("y")); // over an existing name: y's inode goes
        Assert.Equal(y, f.Lookup(dir, B("y")).Ino);
        Assert.False(f.TryLookup(dir, B("z"), out _));
        Assert.False(f.TryGetAttr(x, out _));

        var again = f.Create(root, B("x"), 0x1A4).Ino;
        Assert.NotEqual(x, again);
        Assert.Equal(again, f.Lookup(root, B("x")).Ino);

        // A name longer than the cache holds takes the long way, and follows the same operations.
        var longName = B(new string('l', 200));
        var longIno = f.Create(root, longName, 0x1A4).Ino;
        Assert.Equal(longIno, f.Lookup(root, longName).Ino);
        f.Rename(root, longName, dir, B("short"));
        Assert.False(f.TryLookup(root, longName, out _));
        Assert.Equal(longIno, f.Lookup(dir, B("short")).Ino);
        f.Rename(dir, B("short"), root, longName);
        Assert.Equal(longIno, f.Lookup(root, longName).Ino);
        Assert.False(f.TryLookup(dir, B("short"), out _));

        f.Unlink(dir, B("y"));
        Assert.False(f.TryLookup(dir, B("y"), out _));
        f.Rmdir(root, B("d"));
        Assert.Equal(Basalt.Diagnostics.ErrorCode.FileNotFound,
            Assert.Throws<Basalt.Diagnostics.BasaltException>(() => f.TryLookup(dir, B("y"), out _)).Code);
    }

    [Fact]
    public void A_lookup_that_found_a_name_before_it_was_unlinked_does_not_cache_it()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, Geometry);
        var f = fs.Files;
        var root = FsPositions.RootIno;
        var ino = f.Create(root, B("kept"), 0x1A4).Ino; // the inode outlives the name
        f.Link(ino, root, B("early"));
        f.Rename(root, B("early"), root, B("late")); // a rename caches nothing: the lookup below reads the btrees
        f.BeforeLookupCaches = () =>
        {
            f.BeforeLookupCaches = null;
            f.Unlink(root, B("late")); // commits between the lookup's read and its caching
        };
        Assert.True(f.TryLookup(root, B("late"), out var attr)); // ordered before the unlink
        Assert.Equal(ino, attr.Ino);
        Assert.Null(f.BeforeLookupCaches);
        Assert.False(f.TryLookup(root, B("late"), out _));
        Assert.Equal(ino, f.Lookup(root, B("kept")).Ino);
    }

    /// <summary>
    /// A writer creates and unlinks names while readers look them up: once an unlink has returned,
    /// no lookup finds the name, although readers keep adding names they found while the unlink ran.
    /// </summary>
    [Fact]
    public async Task A_name_unlinked_is_never_found_by_a_later_lookup_while_lookups_race_the_unlinks()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, Geometry);
        var f = fs.Files;
        var root = FsPositions.RootIno;
        const int rounds = 3_000;
        var names = Enumerable.Range(0, rounds).Select(i => B($"racing-{i}")).ToArray();
        var completed = -1;
        var stale = 0;
        var found = 0;
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            while (Volatile.Read(ref completed) < rounds - 1)
            {
                var done = Volatile.Read(ref completed);
                if (done >= 0 && f.TryLookup(root, names[done], out _))
                    Interlocked.Increment(ref stale);
                // The name the writer works on now: found or not, this lookup may try to cache it.
                if (done + 1 < rounds && f.TryLookup(root, names[done + 1], out _))
                    Interlocked.Increment(ref found);
            }
        })).ToArray();
        var target = f.Create(root, B("target"), 0x1A4).Ino; // every name links to it, so it outlives them
        for (var i = 0; i < rounds; i++)
        {
            f.Link(target, root, names[i]);
            f.Unlink(root, names[i]);
            Volatile.Write(ref completed, i);
        }
        await Task.WhenAll(readers);
        Assert.Equal(0, stale);
        Assert.All(names, n => Assert.False(f.TryLookup(root, n, out _)));
    }

    private static BasaltFileSystem Remount(MemoryBlockDevice device, BasaltFileSystem formatted, int entries)
    {
        formatted.Dispose();
        return BasaltFileSystem.Mount(device, new MountOptions { LookupCacheEntries = entries });
    }
}
