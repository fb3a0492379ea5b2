// The writing file commands: mkdir, rm, mv, cp, ln, touch. Each success is checked again through
// fs.Files after a fresh mount; each error is one line naming the path, with its exit code.
using Basalt.Fs;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class FileChangeCommandTests
{
    private static BasaltFileSystem ReadOnly(string image) => BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true });

    private static bool Exists(BasaltFileSystem fs, string path) =>
        fs.Files.TryResolvePath(Names.FromText(path), followLast: false, out _, out _);

    [Fact]
    public void Mkdir_creates_directories_with_parents_and_mode()
    {
        using var dir = new TempDirectory("cli-mkdir");
        var image = CliImages.Formatted(dir);
        Assert.Equal("", CliRunner.Succeeds("mkdir", image, "/a", "/b").Out);
        CliRunner.Succeeds("mkdir", "-p", "-m", "700", image, "/a/x/y/z");
        CliRunner.Succeeds("mkdir", "-p", image, "/a/x"); // exists: no error with -p
        using var fs = ReadOnly(image);
        var z = fs.Files.ResolvePath("/a/x/y/z");
        Assert.True(z.IsDirectory);
        Assert.Equal(0x1C0u, z.Mode & FileModes.PermissionMask);
        Assert.Equal(0x1EDu, fs.Files.ResolvePath("/a/x").Mode & FileModes.PermissionMask);
        Assert.Equal(3u, fs.Files.ResolvePath("/a").Nlink);
        Assert.True(fs.Files.ResolvePath("/b").IsDirectory);
    }

    [Fact]
    public void Mkdir_errors_name_the_path_with_strerror_words()
    {
        using var dir = new TempDirectory("cli-mkdir");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", image, "/a");
        CliRunner.Succeeds("touch", image, "/f");
        CliRunner.Fails(1, ["mkdir", image, "/x/y"], "basalt mkdir: '/x/y': No such file or directory");
        CliRunner.Fails(1, ["mkdir", image, "/a"], "basalt mkdir: '/a': File exists");
        CliRunner.Fails(1, ["mkdir", image, "/"], "basalt mkdir: '/': File exists");
        CliRunner.Fails(1, ["mkdir", image, "/f/g"], "basalt mkdir: '/f/g': Not a directory");
        CliRunner.Fails(1, ["mkdir", "-p", image, "/f/g"], "basalt mkdir: '/f': Not a directory");
        var longName = "/" + new string('n', 256);
        CliRunner.Fails(1, ["mkdir", image, longName], $"basalt mkdir: '{longName}': File name too long (a name is at most 255 bytes)");
        CliRunner.Fails(16, ["mkdir", "-m", "9", image, "/m"], "--mode: '9' is not an octal mode");
    }

    [Fact]
    public void A_second_writer_is_refused_while_the_image_is_in_use()
    {
        using var dir = new TempDirectory("cli-mkdir");
        var image = CliImages.Formatted(dir);
        using (BasaltFileSystem.Mount(image, new MountOptions()))
            CliRunner.Fails(1, ["mkdir", image, "/a"], $"in use (pid {Environment.ProcessId})");
        CliRunner.Succeeds("mkdir", image, "/a");
    }

    [Fact]
    public void Rm_removes_files_and_with_r_whole_trees()
    {
        using var dir = new TempDirectory("cli-rm");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", "-p", image, "/t/a/b", "/t/c", "/keep");
        CliRunner.Succeeds("touch", image, "/t/a/b/f", "/t/g", "/f");
        CliRunner.Succeeds("ln", "-s", image, "/keep", "/t/link");
        FileReadCommandTests.WriteFile(image, "/t/a/data", CliImages.DataOf(40, 100_000));
        CliRunner.Succeeds("rm", image, "/f");
        CliRunner.Succeeds("rm", "-r", image, "/t");
        CliRunner.Succeeds("rm", "-f", image, "/nope", "/nope/deeper");
        using var fs = ReadOnly(image);
        Assert.False(Exists(fs, "/t"));
        Assert.False(Exists(fs, "/f"));
        Assert.True(Exists(fs, "/keep")); // the symlink went, not its target
        Assert.Equal(3, fs.Files.Stats().Inodes); // root, lost+found and /keep: nothing left over
        Assert.Empty(fs.Files.Orphans());
    }

    [Fact]
    public void Rm_refuses_the_root_a_directory_without_r_and_missing_paths()
    {
        using var dir = new TempDirectory("cli-rm");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", image, "/d");
        CliRunner.Fails(1, ["rm", "-r", image, "/"], "basalt rm: '/': refusing to remove the root directory");
        CliRunner.Fails(1, ["rm", "-rf", image, "//"], "refusing to remove the root directory");
        CliRunner.Fails(1, ["rm", image, "/d/.."], "basalt rm: '/d/..': refusing to remove '.' or '..'");
        CliRunner.Fails(1, ["rm", image, "/d"], "basalt rm: '/d': Is a directory (use -r to remove a directory)");
        CliRunner.Fails(1, ["rm", image, "/nope"], "basalt rm: '/nope': No such file or directory");
        using var fs = ReadOnly(image);
        Assert.True(Exists(fs, "/d"));
    }

    [Fact]
    public void Mv_renames_moves_into_a_directory_and_exchanges()
    {
        using var dir = new TempDirectory("cli-mv");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", image, "/d", "/e");
        CliRunner.Succeeds("touch", image, "/a", "/b", "/c");
        CliRunner.Succeeds("mv", image, "/a", "/a2");
        CliRunner.Succeeds("mv", image, "/b", "/c", "/d");
        CliRunner.Succeeds("mv", image, "/e", "/d");
        ulong a2, dc;
        using (var fs = ReadOnly(image))
        {
            Assert.False(Exists(fs, "/a"));
            a2 = fs.Files.ResolvePath("/a2").Ino;
            dc = fs.Files.ResolvePath("/d/c").Ino;
            Assert.True(Exists(fs, "/d/b"));
            Assert.True(fs.Files.ResolvePath("/d/e").IsDirectory);
            Assert.Equal(3u, fs.Files.ResolvePath("/d").Nlink);
        }
        CliRunner.Succeeds("mv", "--exchange", image, "/a2", "/d/c");
        using (var fs = ReadOnly(image))
        {
            Assert.Equal(dc, fs.Files.ResolvePath("/a2").Ino);
            Assert.Equal(a2, fs.Files.ResolvePath("/d/c").Ino);
        }
    }

    [Fact]
    public void Mv_errors_no_clobber_own_subtree_not_empty_and_usage()
    {
        using var dir = new TempDirectory("cli-mv");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", "-p", image, "/a/b", "/full/x");
        CliRunner.Succeeds("touch", image, "/f", "/g");
        CliRunner.Fails(1, ["mv", "--no-clobber", image, "/f", "/g"], "basalt mv: '/f' -> '/g': File exists");
        CliRunner.Fails(1, ["mv", image, "/a", "/a/b"], "basalt mv: '/a' -> '/a/b/a': Invalid argument (a directory cannot move into its own subtree)");
        CliRunner.Fails(1, ["mv", "-T", image, "/a", "/full"], "basalt mv: '/a' -> '/full': Directory not empty");
        CliRunner.Fails(1, ["mv", image, "/nope", "/a"], "basalt mv: '/nope': No such file or directory");
        CliRunner.Fails(1, ["mv", image, "/f", "/g", "/f2"], "basalt mv: '/f2': Not a directory");
        CliRunner.Fails(16, ["mv", "--exchange", image, "/f", "/g", "/a"], "--exchange takes exactly two paths, not 3");
        CliRunner.Fails(16, ["mv", image, "/f"], "DEST is missing");
        using var fs = ReadOnly(image);
        Assert.True(Exists(fs, "/f") && Exists(fs, "/g") && Exists(fs, "/a/b"));
    }

    [Fact]
    public void Cp_of_a_sparse_file_keeps_its_holes_and_its_bytes()
    {
        using var dir = new TempDirectory("cli-cp");
        var image = CliImages.Formatted(dir);
        var head = CliImages.DataOf(50, 4096);
        var middle = CliImages.DataOf(51, 1000);
        FileReadCommandTests.WriteFile(image, "/sparse", head);
        FileReadCommandTests.WriteFile(image, "/sparse", middle, offset: 2 << 20);
        using (var fs = BasaltFileSystem.Mount(image, new MountOptions()))
            fs.Files.Truncate(fs.Files.ResolvePath("/sparse").Ino, 3 << 20);
        CliRunner.Succeeds("cp", "--reflink=never", image, "/sparse", "/copy");
        using var ro = ReadOnly(image);
        var src = ro.Files.ResolvePath("/sparse");
        var copy = ro.Files.ResolvePath("/copy");
        Assert.Equal(3ul << 20, copy.Size);
        Assert.Equal(src.Inode.Sectors, copy.Inode.Sectors);
        Assert.InRange(copy.Inode.Sectors, 8ul, 16ul); // 4096 + 1000 bytes of data, not 3 MiB
        var a = new byte[3 << 20];
        var b = new byte[3 << 20];
        ro.Files.Read(src.Ino, 0, a);
        ro.Files.Read(copy.Ino, 0, b);
        Assert.True(a.AsSpan().SequenceEqual(b));
    }

    [Fact]
    public void Cp_r_copies_trees_symlinks_as_symlinks_and_a_keeps_mode_times_and_user_xattrs()
    {
        using var dir = new TempDirectory("cli-cp");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", "-p", image, "/src/sub", "/dst");
        FileReadCommandTests.WriteFile(image, "/src/sub/f", CliImages.DataOf(60, 3000));
        CliRunner.Succeeds("ln", "-s", image, "sub/f", "/src/link");
        using (var fs = BasaltFileSystem.Mount(image, new MountOptions()))
        {
            var f = fs.Files.ResolvePath("/src/sub/f").Ino;
            fs.Files.SetAttr(f, new SetAttrRequest(Mode: 0x1C0, Uid: 7, Gid: 8, AtimeNs: 1_000_000_123, MtimeNs: 2_000_000_456));
            fs.Files.SetXattr(f, "user.note"u8, "kept"u8);
        }
        CliRunner.Succeeds("cp", "-r", image, "/src", "/plain");
        CliRunner.Succeeds("cp", "-a", image, "/src", "/dst");
        using var ro = ReadOnly(image);
        var original = ro.Files.ResolvePath("/src/sub/f");
        var plain = ro.Files.ResolvePath("/plain/sub/f");
        var archived = ro.Files.ResolvePath("/dst/src/sub/f");
        Assert.Equal(FileType.Symlink, ro.Files.ResolvePath("/plain/link", followLast: false).Type);
        Assert.Equal("sub/f"u8.ToArray(), ro.Files.ReadLink(ro.Files.ResolvePath("/dst/src/link", followLast: false).Ino));
        var bytes = new byte[3000];
        ro.Files.Read(archived.Ino, 0, bytes);
        Assert.Equal(CliImages.DataOf(60, 3000), bytes);
        Assert.Equal(0x1C0u, plain.Mode & FileModes.PermissionMask); // permissions always
        Assert.Equal(0u, plain.Inode.Uid);
        Assert.NotEqual(original.Inode.MtimeNs, plain.Inode.MtimeNs);
        Assert.Equal((7u, 8u), (archived.Inode.Uid, archived.Inode.Gid));
        Assert.Equal((original.Inode.AtimeNs, original.Inode.MtimeNs), (archived.Inode.AtimeNs, archived.Inode.MtimeNs));
        Assert.Equal("kept"u8.ToArray(), ro.Files.GetXattr(archived.Ino, "user.note"u8));
        Assert.False(ro.Files.TryGetXattr(plain.Ino, "user.note"u8, out _));
    }

    [Fact]
    public void Cp_a_keeps_hard_links_among_the_copied_names_and_r_makes_separate_files()
    {
        using var dir = new TempDirectory("cli-cp");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", "-p", image, "/src/d", "/other", "/dst");
        FileReadCommandTests.WriteFile(image, "/src/a", CliImages.DataOf(61, 5000));
        FileReadCommandTests.WriteFile(image, "/other/solo", CliImages.DataOf(62, 100));
        CliRunner.Succeeds("ln", image, "/src/a", "/src/b");
        CliRunner.Succeeds("ln", image, "/src/a", "/src/d/c");
        CliRunner.Succeeds("ln", image, "/src/a", "/outside"); // a name the copy does not take
        CliRunner.Succeeds("ln", image, "/other/solo", "/other/solo2");
        CliRunner.Succeeds("cp", "-a", image, "/src", "/other", "/dst");
        CliRunner.Succeeds("cp", "-r", image, "/src", "/plain");

        using (var ro = ReadOnly(image))
        {
            var a = ro.Files.ResolvePath("/dst/src/a");
            Assert.Equal(a.Ino, ro.Files.ResolvePath("/dst/src/b").Ino);
            Assert.Equal(a.Ino, ro.Files.ResolvePath("/dst/src/d/c").Ino);
            Assert.Equal(3u, a.Nlink);
            Assert.NotEqual(ro.Files.ResolvePath("/src/a").Ino, a.Ino);
            var bytes = new byte[5000];
            ro.Files.Read(a.Ino, 0, bytes);
            Assert.Equal(CliImages.DataOf(61, 5000), bytes);
            // Links among the names of every SRC: the second operand's pair stays a pair too.
            var solo = ro.Files.ResolvePath("/dst/other/solo");
            Assert.Equal(solo.Ino, ro.Files.ResolvePath("/dst/other/solo2").Ino);
            Assert.NotEqual(ro.Files.ResolvePath("/other/solo").Ino, solo.Ino);
            var plainA = ro.Files.ResolvePath("/plain/a");
            Assert.NotEqual(plainA.Ino, ro.Files.ResolvePath("/plain/b").Ino);
            Assert.Equal(1u, plainA.Nlink);
        }
        CliRunner.Succeeds("fsck", "-n", image);
    }

    [Fact]
    public void Cp_errors_bad_reflink_directory_without_r_and_into_itself()
    {
        using var dir = new TempDirectory("cli-cp");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", "-p", image, "/d/e");
        CliRunner.Succeeds("touch", image, "/f");
        CliRunner.Fails(16, ["cp", "--reflink=sometimes", image, "/f", "/g"], "--reflink: 'sometimes' is not one of never, auto, always");
        CliRunner.Fails(1, ["cp", image, "/d", "/d2"], "basalt cp: '/d': Is a directory (use -r to copy a directory)");
        CliRunner.Fails(1, ["cp", "-r", image, "/d", "/d/e"], "basalt cp: '/d' -> '/d/e/d': Invalid argument (cannot copy a directory into itself)");
        CliRunner.Fails(1, ["cp", image, "/nope", "/g"], "basalt cp: '/nope': No such file or directory");
        using var fs = ReadOnly(image);
        Assert.False(Exists(fs, "/g"));
        Assert.False(Exists(fs, "/d2"));
    }

    [Fact]
    public void Ln_makes_hard_links_and_symlinks_and_refuses_a_hard_link_to_a_directory()
    {
        using var dir = new TempDirectory("cli-ln");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", image, "/d");
        CliRunner.Succeeds("touch", image, "/f");
        CliRunner.Succeeds("ln", image, "/f", "/hard");
        CliRunner.Succeeds("ln", image, "/f", "/d");
        CliRunner.Succeeds("ln", "-s", image, "../f", "/d/sym");
        CliRunner.Fails(1, ["ln", image, "/d", "/dlink"], "basalt ln: '/d' -> '/dlink': Operation not permitted (no hard links to directories)");
        CliRunner.Fails(1, ["ln", "-s", image, "x", "/hard"], "basalt ln: '/hard': File exists");
        using var fs = ReadOnly(image);
        var f = fs.Files.ResolvePath("/f");
        Assert.Equal(3u, f.Nlink);
        Assert.Equal(f.Ino, fs.Files.ResolvePath("/hard").Ino);
        Assert.Equal(f.Ino, fs.Files.ResolvePath("/d/f").Ino);
        Assert.Equal(f.Ino, fs.Files.ResolvePath("/d/sym").Ino);
        Assert.Equal("../f"u8.ToArray(), fs.Files.ReadLink(fs.Files.ResolvePath("/d/sym", followLast: false).Ino));
    }

    [Fact]
    public void Touch_creates_empty_files_and_updates_times()
    {
        using var dir = new TempDirectory("cli-touch");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("touch", image, "/f");
        long before;
        using (var fs = BasaltFileSystem.Mount(image, new MountOptions()))
        {
            var f = fs.Files.ResolvePath("/f");
            Assert.Equal((0ul, 0x1A4u), (f.Size, f.Mode & FileModes.PermissionMask));
            fs.Files.SetAttr(f.Ino, new SetAttrRequest(MtimeNs: 5));
            before = fs.Files.GetAttr(f.Ino).Inode.MtimeNs;
        }
        CliRunner.Succeeds("touch", "-c", image, "/f", "/not-created");
        using var ro = ReadOnly(image);
        Assert.True(ro.Files.ResolvePath("/f").Inode.MtimeNs > before);
        Assert.False(Exists(ro, "/not-created"));
    }

    [Fact]
    public void Cp_shares_the_data_of_256_MiB_allocating_no_bucket_and_never_copies_it()
    {
        using var dir = new TempDirectory("cli-cp-reflink");
        var image = dir.File("fs.img");
        CliRunner.Succeeds("format", "--size", "1G", "--bucket-size", "1M", image);
        var chunk = CliImages.DataOf(60, 1 << 20);
        using (var fs = BasaltFileSystem.Mount(image, new MountOptions()))
        {
            var file = fs.Files.Create(FsPositions.RootIno, "big"u8, 0x1A4);
            for (var i = 0; i < 256; i++)
            {
                chunk[0] = (byte)i;
                fs.Files.Write(file.Ino, (long)i << 20, chunk);
            }
        }
        var before = Df(image);
        CliRunner.Succeeds("cp", "--reflink", image, "/big", "/shared");
        CliRunner.Succeeds("cp", image, "/big", "/auto");
        var after = Df(image);
        Assert.Equal(before.Free, after.Free);
        Assert.Equal(before.User, after.User);
        CliRunner.Succeeds("cp", "--reflink=never", image, "/big", "/copied");
        Assert.True(Df(image).User >= after.User + (256L << 20), "--reflink=never writes the bytes again");

        using var ro = ReadOnly(image);
        var big = ro.Files.ResolvePath("/big");
        var a = new byte[1 << 20];
        var b = new byte[1 << 20];
        foreach (var copy in new[] { "/shared", "/auto", "/copied" })
        {
            var c = ro.Files.ResolvePath(copy);
            Assert.Equal(big.Size, c.Size);
            Assert.Equal(big.Inode.Sectors, c.Inode.Sectors);
            foreach (var at in new long[] { 0, 77L << 20, 255L << 20 })
            {
                ro.Files.Read(big.Ino, at, a);
                ro.Files.Read(c.Ino, at, b);
                Assert.Equal(a, b);
            }
        }
    }

    private static (long Free, long User) Df(string image)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(CliRunner.Succeeds("df", "--json", image).Out);
        var device = doc.RootElement.GetProperty("devices")[0];
        return (device.GetProperty("buckets").GetProperty("free").GetInt64(), device.GetProperty("bytes").GetProperty("user").GetInt64());
    }
}
