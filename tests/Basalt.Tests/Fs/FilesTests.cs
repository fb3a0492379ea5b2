using System.Text;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.Tests.Fs;

public sealed class FilesTests
{
    internal static readonly FormatOptions Geometry = new()
    {
        BlockSize = 4096,
        BucketSize = 64 * 1024,
        NodeSize = 4096,
        Uuid = new Guid("5d1f0c9e-2b7a-4c3e-9a61-7f2e8d4b1c05"),
    };

    internal static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static ErrorCode CodeOf(Action action)
    {
        var e = Assert.Throws<BasaltException>(action);
        return e.Code;
    }

    [Fact]
    public void Format_creates_the_root_and_lost_found()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using (var fs = BasaltFileSystem.Format(device, Geometry))
        {
            var root = fs.Files.GetAttr(FsPositions.RootIno);
            Assert.Equal(FileType.Directory, root.Type);
            Assert.Equal(3u, root.Nlink);
            var lf = fs.Files.Lookup(FsPositions.RootIno, B("lost+found"));
            Assert.Equal(FsPositions.LostAndFoundIno, lf.Ino);
            Assert.Equal(0x1C0u, lf.Mode & FileModes.PermissionMask);
            var names = fs.Files.ReadDir(FsPositions.RootIno, 0).Select(e => Encoding.UTF8.GetString(e.Name)).ToArray();
            Assert.Equal([".", "..", "lost+found"], names);
        }
        using (var fs = BasaltFileSystem.Mount(device, new MountOptions()))
            Assert.Equal(2, fs.Files.Stats().Inodes);
    }

    [Fact]
    public void Names_are_bytes_and_errors_map_to_errno()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, Geometry);
        var f = fs.Files;
        byte[] odd = [0x66, 0xFF, 0x6F, 0x0A];
        var file = f.Create(FsPositions.RootIno, odd, 0x1A4);
        Assert.Equal(file.Ino, f.Lookup(FsPositions.RootIno, odd).Ino);
        Assert.Equal("f\\xffo\\x0a", Names.ToText(odd));
        Assert.Equal(odd, Names.FromText(Names.ToText(odd)));
        Assert.Equal(Errno.EEXIST, Errno.Of(CodeOf(() => f.Create(FsPositions.RootIno, odd, 0x1A4))));
        Assert.Equal(Errno.ENAMETOOLONG, Errno.Of(CodeOf(() => f.Create(FsPositions.RootIno, new byte[256], 0x1A4))));
        Assert.Equal(Errno.EINVAL, Errno.Of(CodeOf(() => f.Create(FsPositions.RootIno, B("a/b"), 0x1A4))));
        Assert.Equal(Errno.ENOENT, Errno.Of(CodeOf(() => f.Unlink(FsPositions.RootIno, B("missing")))));
        Assert.Equal(Errno.ENOTDIR, Errno.Of(CodeOf(() => f.Create(file.Ino, B("x"), 0x1A4))));
        Assert.Equal(Errno.EISDIR, Errno.Of(CodeOf(() => f.Unlink(FsPositions.RootIno, B("lost+found")))));
        Assert.Equal(Errno.ENOTDIR, Errno.Of(CodeOf(() => f.Rmdir(FsPositions.RootIno, odd))));
        var dir = f.Mkdir(FsPositions.RootIno, B("d"), 0x1ED);
        f.Create(dir.Ino, B("inner"), 0x1A4);
        Assert.Equal(Errno.ENOTEMPTY, Errno.Of(CodeOf(() => f.Rmdir(FsPositions.RootIno, B("d")))));
        Assert.Equal(Errno.EPERM, Errno.Of(CodeOf(() => f.Link(dir.Ino, FsPositions.RootIno, B("dirlink")))));
        Assert.Equal(Errno.EOPNOTSUPP, Errno.Of(CodeOf(() => f.SetXattr(file.Ino, B("system.x"), B("v")))));
        Assert.Equal(Errno.ENODATA, Errno.Of(CodeOf(() => f.GetXattr(file.Ino, B("user.none")))));
        Assert.Equal(Errno.EISDIR, Errno.Of(CodeOf(() => f.Write(dir.Ino, 0, B("x")))));
    }

    [Fact]
    public void Rename_replaces_exchanges_and_refuses_a_directory_into_its_own_subtree()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, Geometry);
        var f = fs.Files;
        const ulong root = FsPositions.RootIno;
        var a = f.Mkdir(root, B("a"), 0x1ED);
        var b = f.Mkdir(a.Ino, B("b"), 0x1ED);
        var x = f.Create(root, B("x"), 0x1A4);
        var y = f.Create(root, B("y"), 0x1A4);
        f.Write(y.Ino, 0, B("old y"));
        Assert.Equal(Errno.EINVAL, Errno.Of(CodeOf(() => f.Rename(root, B("a"), b.Ino, B("a2")))));
        Assert.Equal(Errno.EINVAL, Errno.Of(CodeOf(() => f.Rename(root, B("a"), a.Ino, B("self")))));
        Assert.Equal(Errno.EEXIST, Errno.Of(CodeOf(() => f.Rename(root, B("x"), root, B("y"), RenameFlags.NoReplace))));
        Assert.Equal(Errno.EISDIR, Errno.Of(CodeOf(() => f.Rename(root, B("x"), root, B("a")))));
        Assert.Equal(Errno.ENOTDIR, Errno.Of(CodeOf(() => f.Rename(root, B("a"), root, B("x")))));

        // Replace: y's old inode goes; x now answers to y.
        f.Rename(root, B("x"), root, B("y"));
        Assert.False(f.TryLookup(root, B("x"), out _));
        Assert.Equal(x.Ino, f.Lookup(root, B("y")).Ino);
        Assert.False(f.TryGetAttr(y.Ino, out _));
        Assert.Empty(f.Orphans());

        // Exchange a directory and a file across directories: link counts follow the directory.
        var rootLinks = f.GetAttr(root).Nlink;
        var aLinks = f.GetAttr(a.Ino).Nlink;
        f.Rename(root, B("y"), a.Ino, B("b"), RenameFlags.Exchange);
        Assert.Equal(x.Ino, f.Lookup(a.Ino, B("b")).Ino);
        Assert.Equal(b.Ino, f.Lookup(root, B("y")).Ino);
        Assert.Equal(rootLinks + 1, f.GetAttr(root).Nlink);
        Assert.Equal(aLinks - 1, f.GetAttr(a.Ino).Nlink);
        Assert.Equal(root, f.Lookup(b.Ino, B("..")).Ino);

        // A directory replaces an empty directory.
        f.Mkdir(root, B("empty"), 0x1ED);
        var linksBefore = f.GetAttr(root).Nlink;
        f.Rename(root, B("y"), root, B("empty"));
        Assert.Equal(b.Ino, f.Lookup(root, B("empty")).Ino);
        Assert.Equal(linksBefore - 1, f.GetAttr(root).Nlink);
    }

    [Fact]
    public void Symlinks_hard_links_special_files_and_paths()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using (var fs = BasaltFileSystem.Format(device, Geometry))
        {
            var f = fs.Files;
            const ulong root = FsPositions.RootIno;
            var d = f.Mkdir(root, B("dir"), 0x1ED);
            var file = f.Create(d.Ino, B("file"), 0x1A4);
            f.Write(file.Ino, 0, B("hello"));
            f.Symlink(root, B("rel"), B("dir/file"));
            f.Symlink(root, B("abs"), B("/dir"));
            f.Symlink(root, B("loop"), B("loop"));
            f.Link(file.Ino, root, B("hard"));
            f.Mknod(root, B("fifo"), FileModes.ModeOf(FileType.Fifo, 0x1A4), 0);
            f.Mknod(root, B("chr"), FileModes.ModeOf(FileType.CharDevice, 0x1A4), (5UL << 32) | 1);
            Assert.Equal(file.Ino, f.ResolvePath("/rel").Ino);
            Assert.Equal(file.Ino, f.ResolvePath("/abs/file").Ino);
            Assert.Equal(FileType.Symlink, f.ResolvePath("/rel", followLast: false).Type);
            Assert.Equal(Errno.ELOOP, Errno.Of(Assert.Throws<BasaltException>(() => f.ResolvePath("/loop")).Code));
            Assert.Equal(2u, f.GetAttr(file.Ino).Nlink);
        }
        using (var fs = BasaltFileSystem.Mount(device, new MountOptions()))
        {
            var f = fs.Files;
            Assert.Equal("dir/file", Encoding.UTF8.GetString(f.ReadLink(f.ResolvePath("/rel", followLast: false).Ino)));
            var buffer = new byte[16];
            Assert.Equal(5, f.Read(f.ResolvePath("/hard").Ino, 0, buffer));
            Assert.Equal("hello", Encoding.UTF8.GetString(buffer, 0, 5));
            Assert.Equal(FileType.Fifo, f.ResolvePath("/fifo").Type);
            Assert.Equal((5UL << 32) | 1, f.ResolvePath("/chr").Inode.Rdev);
            f.Unlink(FsPositions.RootIno, B("hard"));
            Assert.Equal(1u, f.ResolvePath("/dir/file").Nlink);
        }
    }

    [Fact]
    public void Sparse_files_truncate_both_ways_and_count_their_sectors()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, Geometry);
        var f = fs.Files;
        var file = f.Create(FsPositions.RootIno, B("sparse"), 0x1A4);
        f.Truncate(file.Ino, 1L << 40);
        Assert.Equal(1UL << 40, f.GetAttr(file.Ino).Size);
        Assert.Equal(0UL, f.GetAttr(file.Ino).Inode.Sectors);
        f.Write(file.Ino, (1L << 39) + 100, new byte[5000]);
        Assert.Equal(10UL, f.GetAttr(file.Ino).Inode.Sectors);
        var data = new byte[10_000];
        new Random(5).NextBytes(data);
        f.Write(file.Ino, 0, data);
        f.Truncate(file.Ino, 3000);
        Assert.Equal(6UL, f.GetAttr(file.Ino).Inode.Sectors);
        f.Truncate(file.Ino, 8000);
        var back = new byte[9000];
        Assert.Equal(8000, f.Read(file.Ino, 0, back));
        Assert.True(back.AsSpan(0, 3000).SequenceEqual(data.AsSpan(0, 3000)));
        Assert.True(back.AsSpan(3000, 5000).IndexOfAnyExcept((byte)0) < 0, "bytes past a truncate read as zeros after growing again");
        Assert.Empty(fs.Btrees[BtreeId.LoggedOps].Iterate(Bpos.Min, Bpos.Max).Collect());
    }

    [Fact]
    public void Fallocate_allocates_keeps_size_punches_and_zeroes_ranges()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, Geometry);
        var f = fs.Files;
        var file = f.Create(FsPositions.RootIno, B("f"), 0x1A4);
        var data = new byte[8192];
        new Random(3).NextBytes(data);
        f.Write(file.Ino, 4096, data);                                  // sectors 8..24
        f.Fallocate(file.Ino, FallocateFlags.None, 0, 16384);             // holes 0..8 and 24..32 reserved
        Assert.Equal(16384UL, f.GetAttr(file.Ino).Size);
        Assert.Equal(32UL, f.GetAttr(file.Ino).Inode.Sectors);
        var back = new byte[16384];
        f.Read(file.Ino, 0, back);
        Assert.True(back.AsSpan(0, 4096).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(back.AsSpan(4096, 8192).SequenceEqual(data), "fallocate over data keeps the data");

        f.Fallocate(file.Ino, FallocateFlags.KeepSize, 16384, 1 << 20);   // past the end: size stays
        Assert.Equal(16384UL, f.GetAttr(file.Ino).Size);
        Assert.Equal(32UL + 2048, f.GetAttr(file.Ino).Inode.Sectors);

        Assert.Equal(Errno.EOPNOTSUPP, Errno.Of(CodeOf(() => f.Fallocate(file.Ino, FallocateFlags.PunchHole, 0, 512))));
        f.Fallocate(file.Ino, FallocateFlags.PunchHole | FallocateFlags.KeepSize, 5000, 4000);
        f.Read(file.Ino, 0, back);
        Assert.True(back.AsSpan(5000, 4000).IndexOfAnyExcept((byte)0) < 0, "a punched range reads as zeros");
        Assert.True(back.AsSpan(4096, 904).SequenceEqual(data.AsSpan(0, 904)));
        Assert.True(back.AsSpan(9000, 3288).SequenceEqual(data.AsSpan(4904, 3288)));
        var punched = f.GetAttr(file.Ino).Inode.Sectors;
        Assert.True(punched < 32UL + 2048, "punching whole sectors frees them");

        f.Fallocate(file.Ino, FallocateFlags.ZeroRange, 10_000, 100_000);
        Assert.Equal(110_000UL, f.GetAttr(file.Ino).Size);
        back = new byte[110_000];
        f.Read(file.Ino, 0, back);
        Assert.True(back.AsSpan(10_000).IndexOfAnyExcept((byte)0) < 0, "a zeroed range reads as zeros");
        Assert.True(back.AsSpan(9000, 1000).SequenceEqual(data.AsSpan(4904, 1000)));
        SpaceChecksClean(fs);
    }

    [Fact]
    public void Punching_part_of_a_sector_of_a_reservation_past_the_end_writes_no_data()
    {
        // Regression (files model seed 1500774621): the partial sector of a punch over a
        // keep-size reservation was zeroed with a data write, leaving data past the end of file.
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, Geometry);
        var f = fs.Files;
        var file = f.Create(FsPositions.RootIno, B("f"), 0x1A4);
        f.Fallocate(file.Ino, FallocateFlags.KeepSize, 0, 32768);
        f.Fallocate(file.Ino, FallocateFlags.PunchHole | FallocateFlags.KeepSize, 1000, 5000);
        f.Fallocate(file.Ino, FallocateFlags.ZeroRange | FallocateFlags.KeepSize, 9000, 100);
        Assert.DoesNotContain(fs.Data.Map(file.Ino, 0, ulong.MaxValue), e => e.Key.Type == KeyType.Extent);
        Basalt.Fsck.Files.FileChecks.Run(fs, repair: false, out var findings);
        Assert.True(findings.Count == 0, string.Join("; ", findings.Select(x => x.ToString())));
    }

    private static void SpaceChecksClean(BasaltFileSystem fs)
    {
        Basalt.Fsck.Space.SpaceChecks.Run(fs, repair: false, out var findings);
        Assert.True(findings.Count == 0, string.Join("; ", findings.Select(x => x.ToString())));
    }

    [Fact]
    public void An_interrupted_truncate_and_an_unlinked_open_file_are_finished_at_mount()
    {
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        ulong truncated, opened;
        var data = new byte[200_000];
        new Random(9).NextBytes(data);
        using (var fs = BasaltFileSystem.Format(device, Geometry))
        {
            var f = fs.Files;
            truncated = f.Create(FsPositions.RootIno, B("t"), 0x1A4).Ino;
            f.Write(truncated, 0, data);
            opened = f.Create(FsPositions.RootIno, B("o"), 0x1A4).Ino;
            f.Write(opened, 0, data);
            f.Open(opened);
            f.Unlink(FsPositions.RootIno, B("o"));
            Assert.Equal([opened], f.Orphans());
            var buffer = new byte[10];
            Assert.Equal(10, f.Read(opened, 0, buffer)); // still readable while open
            // The first transaction of a truncate, as a crash would leave it.
            fs.Transact(t =>
            {
                t.Set(BtreeId.LoggedOps, new Bkey(FsPositions.Truncate(truncated), KeyType.LoggedOpTruncate), new TruncateIntent(1000).ToBytes());
                t.TryGet(BtreeId.Inodes, FsPositions.Inode(truncated), out var value);
                InodeValue.TryRead(value, out var inode, out _);
                inode.Size = 1000;
                t.Set(BtreeId.Inodes, new Bkey(FsPositions.Inode(truncated), KeyType.Inode), inode.ToBytes());
            });
            fs.Sync();
            fs.Close(sync: false);
        }
        using (var fs = BasaltFileSystem.Mount(device, new MountOptions()))
        {
            var f = fs.Files;
            Assert.Empty(f.Orphans());
            Assert.False(f.TryGetAttr(opened, out _));
            Assert.Empty(fs.Data.Map(opened, 0, ulong.MaxValue));
            Assert.Equal(2UL, f.GetAttr(truncated).Inode.Sectors);
            Assert.Empty(fs.Data.Map(truncated, 2, ulong.MaxValue));
            Assert.Empty(fs.Btrees[BtreeId.LoggedOps].Iterate(Bpos.Min, Bpos.Max).Collect());
            var back = new byte[1000];
            Assert.Equal(1000, f.Read(truncated, 0, back));
            Assert.True(back.AsSpan().SequenceEqual(data.AsSpan(0, 1000)));
        }
    }

    [Fact]
    public void Lookup_probes_past_colliding_names_and_whiteouts()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        Names.CollideForTests = 1; // two slots: every other name probes past the first ones
        try
        {
            using var fs = BasaltFileSystem.Format(device, Geometry);
            var f = fs.Files;
            var root = FsPositions.RootIno;
            var inos = Enumerable.Range(0, 6).Select(i => f.Create(root, B($"n{i}"), 0x1A4).Ino).ToArray();
            f.Unlink(root, B("n0"));
            f.Unlink(root, B("n2"));
            Assert.False(f.TryLookup(root, B("n0"), out _));
            Assert.False(f.TryLookup(root, B("n2"), out _));
            Assert.False(f.TryLookup(root, B("missing"), out _));
            foreach (var i in new[] { 1, 3, 4, 5 })
            {
                Assert.True(f.TryLookup(root, B($"n{i}"), out var attr));
                Assert.Equal(inos[i], attr.Ino);
                Assert.Equal(FileType.Regular, attr.Type);
            }
        }
        finally
        {
            Names.CollideForTests = 0;
        }
    }

    [Fact]
    public void Lookup_reports_a_removed_directory_a_non_directory_and_a_long_name()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, Geometry);
        var f = fs.Files;
        var root = FsPositions.RootIno;
        var dir = f.Mkdir(root, B("d"), 0x1ED).Ino;
        var file = f.Create(dir, B("f"), 0x1A4).Ino;
        Assert.Equal(dir, f.Lookup(dir, B(".")).Ino);
        Assert.Equal(root, f.Lookup(dir, B("..")).Ino);
        Assert.Equal(root, f.Lookup(root, B("..")).Ino);
        Assert.Equal(file, f.Lookup(dir, B("f")).Ino);
        Assert.False(f.TryLookup(dir, B("a/b"), out _));
        Assert.Equal(ErrorCode.NameTooLong, CodeOf(() => f.TryLookup(dir, new byte[Names.MaxLength + 1], out _)));
        Assert.Equal(ErrorCode.NotDirectory, CodeOf(() => f.TryLookup(file, B("x"), out _)));
        Assert.Equal(ErrorCode.NotDirectory, CodeOf(() => f.TryLookup(file, B("."), out _)));
        Assert.Equal(ErrorCode.FileNotFound, CodeOf(() => f.TryLookup(987_654, B("x"), out _)));
        f.Unlink(dir, B("f"));
        f.Rmdir(root, B("d"));
        Assert.Equal(ErrorCode.FileNotFound, CodeOf(() => f.TryLookup(dir, B("f"), out _)));
        Assert.Equal(ErrorCode.FileNotFound, CodeOf(() => f.TryLookup(dir, B("."), out _)));
        Assert.Equal(ErrorCode.FileNotFound, CodeOf(() => f.TryLookup(dir, B(".."), out _)));
    }

    /// <summary>
    /// A lookup is one engine operation over three reads: with a cache far smaller than the tree
    /// and random injected restarts, any of them may stop it, and the restarted lookup must give
    /// the same answer.
    /// </summary>
    [Fact]
    public void Lookup_restarts_on_node_misses_and_injected_restarts()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        var injection = new RestartInjection(seed: 11, probability: 0.2);
        var mount = new MountOptions { Engine = new BtreeEngineOptions { CacheBudgetBytes = 8 * 4096, RestartInjection = injection } };
        using var fs = BasaltFileSystem.Format(device, Geometry, mount);
        var f = fs.Files;
        var dir = f.Mkdir(FsPositions.RootIno, B("d"), 0x1ED).Ino;
        var inos = new Dictionary<string, ulong>();
        for (var i = 0; i < 600; i++)
            inos[$"file-{i}"] = f.Create(dir, B($"file-{i}"), 0x1A4).Ino;
        var before = injection.Injected;
        foreach (var (name, ino) in inos)
        {
            Assert.True(f.TryLookup(dir, B(name), out var attr), name);
            Assert.Equal(ino, attr.Ino);
            Assert.Equal(FileType.Regular, attr.Type);
            Assert.False(f.TryLookup(dir, B(name + "-missing"), out _));
        }
        Assert.True(injection.Injected > before, "no restart was injected into the lookups");
    }

    [Fact]
    public void Lookup_and_GetAttr_allocate_nothing()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, Geometry);
        var f = fs.Files;
        var dir = f.Mkdir(FsPositions.RootIno, B("d"), 0x1ED).Ino;
        var names = Enumerable.Range(0, 200).Select(i => B($"file-{i}")).ToArray();
        foreach (var name in names)
            f.Create(dir, name, 0x1A4);
        var missing = B("missing");
        // Once every node on the way is cached, a lookup is lookups into stack buffers.
        foreach (var name in names)
            f.GetAttr(f.Lookup(dir, name).Ino);
        Assert.False(f.TryLookup(dir, missing, out _));
        var before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var name in names)
            f.GetAttr(f.Lookup(dir, name).Ino);
        f.TryLookup(dir, missing, out _);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Xattrs_set_replace_list_and_remove_with_colliding_names()
    {
        using var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        Names.CollideForTests = 3;
        try
        {
            using var fs = BasaltFileSystem.Format(device, Geometry);
            var f = fs.Files;
            var file = f.Create(FsPositions.RootIno, B("x"), 0x1A4);
            for (var i = 0; i < 20; i++)
                f.SetXattr(file.Ino, B($"user.k{i}"), B($"v{i}"));
            Assert.Equal(Errno.EEXIST, Errno.Of(CodeOf(() => f.SetXattr(file.Ino, B("user.k3"), B("z"), XattrSetMode.Create))));
            Assert.Equal(Errno.ENODATA, Errno.Of(CodeOf(() => f.SetXattr(file.Ino, B("user.none"), B("z"), XattrSetMode.Replace))));
            f.SetXattr(file.Ino, B("user.k3"), B("replaced"), XattrSetMode.Replace);
            for (var i = 0; i < 20; i += 2)
                f.RemoveXattr(file.Ino, B($"user.k{i}"));
            var names = f.ListXattrs(file.Ino).Select(Encoding.UTF8.GetString).Order().ToArray();
            Assert.Equal(Enumerable.Range(0, 20).Where(i => i % 2 == 1).Select(i => $"user.k{i}").Order().ToArray(), names);
            Assert.Equal("replaced", Encoding.UTF8.GetString(f.GetXattr(file.Ino, B("user.k3"))));
            for (var i = 1; i < 20; i += 2)
                Assert.Equal(i == 3 ? "replaced" : $"v{i}", Encoding.UTF8.GetString(f.GetXattr(file.Ino, B($"user.k{i}"))));
        }
        finally
        {
            Names.CollideForTests = 0;
        }
    }
}

internal static class IteratorTestExtensions
{
    public static List<Bkey> Collect(this Basalt.Btree.BtreeIterator it)
    {
        var keys = new List<Bkey>();
        while (it.MoveNext())
            keys.Add(it.Key);
        return keys;
    }
}
