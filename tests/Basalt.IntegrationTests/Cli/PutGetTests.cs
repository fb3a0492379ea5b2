// basalt put and basalt get through the CLI in process, on real local files (the temp
// directory's filesystem): a round trip compared field by field, the cp -a rules for DEST, the
// errors (each one line, a meaningful exit code, the image clean for fsck afterwards), a device
// that fills up, and cancellation.
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using Basalt.Cli;
using Basalt.Cli.Local;
using Basalt.Fs;
using Basalt.TestKit;
using Xunit.Abstractions;
using Errno = Basalt.Cli.Local.Errno;

namespace Basalt.IntegrationTests.Cli;

[SupportedOSPlatform("linux")]
public sealed class PutGetTests : IDisposable
{
    private static readonly byte[] s_nonUtf8 = [0x66, 0xff, 0x6f];
    private static readonly byte[] s_danglingTarget = [.. "no/such"u8, 0xff, .. "target"u8];
    private const int Block = 4096;
    private const int Hole = 1 << 20;
    private const long Time = 1_234_567_890_123_456_789L;

    private readonly TempDirectory _temp = new("putget");
    private readonly ITestOutputHelper _output;

    public PutGetTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => _temp.Dispose();

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private string Dir(string name)
    {
        var path = _temp.File(name);
        Directory.CreateDirectory(path);
        return path;
    }

    private static void AssertFsckClean(string image)
    {
        var r = CliRunner.Run("fsck", "-n", image);
        Assert.True(r.ExitCode == 0, $"fsck -n is not clean: {r}");
    }

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>
    /// The tree every round trip copies: a file with two hard links (one in a subdirectory), a
    /// symlink to it and a dangling one, a sparse file (a block, a 1 MiB hole, a block), a FIFO, a socket node, an
    /// empty file, an empty directory, a name that is not UTF-8, odd modes and old nanosecond times.
    /// Returns whether user xattrs could be set.
    /// </summary>
    private static bool BuildTree(string root)
    {
        using var top = LocalFs.OpenDirectory(LocalFd.CurrentDirectory, Bytes(root));
        LocalFs.CreateDirectory(top, "tree"u8, 0x1ED);
        using var tree = LocalFs.OpenDirectory(top, "tree"u8);
        using (var f = LocalFs.CreateFile(tree, "data"u8, 0x1A4))
            LocalFs.WriteAt(f, Pattern(10_000, 1), 0);
        LocalFs.CreateDirectory(tree, "sub"u8, 0x1E8);
        using (var sub = LocalFs.OpenDirectory(tree, "sub"u8))
        {
            LocalFs.CreateHardLink(tree, "data"u8, sub, "data-link"u8);
            LocalFs.CreateDirectory(sub, "empty"u8, 0x1C0);
        }
        LocalFs.CreateSymlink(tree, "to-data"u8, "data"u8);
        LocalFs.CreateSymlink(tree, "dangling"u8, s_danglingTarget);
        using (var f = LocalFs.CreateFile(tree, "sparse"u8, 0x180))
        {
            LocalFs.WriteAt(f, Pattern(Block, 2), 0);
            LocalFs.WriteAt(f, Pattern(Block, 3), Block + Hole);
        }
        LocalFs.CreateFifo(tree, "fifo"u8, 0x1B0);
        LocalFs.CreateNode(tree, "socket"u8, LocalFs.ModeSocket | 0x1ED);
        using (LocalFs.CreateFile(tree, "empty"u8, 0x100))
        {
        }
        using (var f = LocalFs.CreateFile(tree, s_nonUtf8, 0x1A4))
            LocalFs.WriteAt(f, "odd name"u8, 0);
        LocalFs.SetMode(tree, "data"u8, 0x9ED); // setuid + 0755, kept as root
        var xattrs = true;
        try
        {
            LocalFs.SetXattr(tree, "data"u8, "user.color"u8, "blue"u8);
            LocalFs.SetXattr(tree, s_nonUtf8, "user.bin"u8, [0, 1, 0xff]);
        }
        catch (LocalFsException e) when (e.Errno is Errno.EOPNOTSUPP)
        {
            xattrs = false;
        }
        var time = Time; // "data" gets atime Time - 1000, mtime Time + 7
        foreach (var name in new[] { "data"u8.ToArray(), "to-data"u8.ToArray(), "sparse"u8.ToArray(), "fifo"u8.ToArray(), s_nonUtf8, "sub"u8.ToArray() })
            LocalFs.SetTimes(tree, name, time - 1000, time += 7);
        LocalFs.SetTimes(top, "tree"u8, time, time + 1);
        return xattrs;
    }

    /// <summary>Everything round trips keep, per path below <paramref name="root"/>, with hard links as groups of the same number.</summary>
    private static List<string> Snapshot(string root)
    {
        var lines = new List<string>();
        var groups = new Dictionary<ulong, int>();
        void Walk(LocalFd dir, byte[] name, string path)
        {
            var st = LocalFs.Stat(dir, name);
            var line = new StringBuilder($"{path} {st.Type} mode {Convert.ToString(st.Mode & 0xFFF, 8)} mtime {st.MtimeNs} uid {st.Uid} gid {st.Gid}");
            if (st.Type != LocalFileType.Directory)
            {
                if (!groups.TryGetValue(st.Ino, out var group))
                    groups[st.Ino] = group = groups.Count;
                line.Append($" links {st.Nlink} group {group}");
            }
            if (st.Type == LocalFileType.Regular)
            {
                using var fd = LocalFs.OpenRead(dir, name);
                var data = new byte[st.Size];
                Assert.Equal((int)st.Size, st.Size == 0 ? 0 : LocalFs.ReadAt(fd, data, 0));
                line.Append($" size {st.Size} sha {Convert.ToHexString(SHA256.HashData(data))[..16]}");
            }
            if (st.Type == LocalFileType.Symlink)
                line.Append($" -> {NameText.ToText(LocalFs.ReadLink(dir, name))}");
            if (st.Type != LocalFileType.Symlink)
            {
                foreach (var x in LocalFs.ListXattrs(dir, name).Where(n => n.AsSpan().StartsWith("user."u8)).OrderBy(n => Convert.ToHexString(n)))
                    line.Append($" {NameText.ToText(x)}={Convert.ToHexString(LocalFs.GetXattr(dir, name, x))}");
            }
            lines.Add(line.ToString());
            if (st.Type == LocalFileType.Directory)
            {
                using var sub = LocalFs.OpenDirectory(dir, name);
                foreach (var e in LocalFs.ReadDirectory(sub).OrderBy(e => Convert.ToHexString(e.Name)))
                    Walk(sub, e.Name, $"{path}/{NameText.ToText(e.Name)}");
            }
        }
        Walk(LocalFd.CurrentDirectory, Bytes(root), ".");
        return lines;
    }

    [Fact]
    public void PutThenGet_KeepsEveryFieldHolesLinksAndNames()
    {
        var image = CliImages.Formatted(_temp);
        var source = Dir("src");
        var xattrs = BuildTree(source);
        if (!xattrs)
            _output.WriteLine("the temp directory's filesystem refuses user.* xattrs: the xattr part of the round trip is not checked");

        var put = CliRunner.Succeeds("put", image, Path.Combine(source, "tree"), "/");
        Assert.Contains("put 9 files, 3 directories", put.Out, StringComparison.Ordinal);
        Assert.Equal("", put.Err);
        AssertFsckClean(image);

        using (var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true }))
        {
            var sparse = fs.Files.ResolvePath("/tree/sparse", followLast: false);
            Assert.Equal((ulong)(Block + Hole + Block), sparse.Size);
            Assert.True(sparse.Inode.Sectors <= 2 * Block / 512, $"the hole took space in the image: {sparse.Inode.Sectors} sectors");
            var data = fs.Files.ResolvePath("/tree/data");
            Assert.Equal((Time - 1000, Time + 7), (data.Inode.AtimeNs, data.Inode.MtimeNs));
            Assert.Equal(data.Ino, fs.Files.ResolvePath("/tree/sub/data-link").Ino);
            Assert.Equal(2u, fs.Files.ResolvePath("/tree/data").Nlink);
            Assert.Equal(FileType.Fifo, fs.Files.ResolvePath("/tree/fifo").Type);
            Assert.Equal(FileType.Socket, fs.Files.ResolvePath("/tree/socket").Type);
            Assert.Equal(s_danglingTarget, fs.Files.ReadLink(fs.Files.ResolvePath("/tree/dangling", followLast: false).Ino));
            Assert.True(fs.Files.TryLookup(fs.Files.ResolvePath("/tree").Ino, s_nonUtf8, out _));
        }

        var back = Dir("back");
        var get = CliRunner.Succeeds("get", image, "/tree", back);
        Assert.Contains("got 9 files, 3 directories", get.Out, StringComparison.Ordinal);
        Assert.Equal("", get.Err);
        var copiedData = LocalFs.Stat(LocalFd.CurrentDirectory, Bytes(Path.Combine(back, "tree", "data")));
        Assert.Equal((Time - 1000, Time + 7), (copiedData.AtimeNs, copiedData.MtimeNs));

        Assert.Equal(Snapshot(Path.Combine(source, "tree")), Snapshot(Path.Combine(back, "tree")));
        using var copied = LocalFs.OpenRead(LocalFd.CurrentDirectory, Bytes(Path.Combine(back, "tree", "sparse")));
        Assert.Equal([(0L, (long)Block), (Block + Hole, Block)], LocalFs.DataRanges(copied).ToList());
        if (xattrs)
            Assert.Equal("blue"u8.ToArray(), LocalFs.GetXattr(LocalFd.CurrentDirectory, Bytes(Path.Combine(back, "tree", "data")), "user.color"u8));
    }

    [SkippableFact]
    public void DeviceNodes_AreCopiedAsRoot()
    {
        Skip.If(LocalLibC.GetEuid() != 0, "only root copies device nodes (a warning otherwise)");
        var image = CliImages.Formatted(_temp);
        var source = Dir("src");
        using (var dir = LocalFs.OpenDirectory(LocalFd.CurrentDirectory, Bytes(source)))
        {
            try
            {
                LocalFs.CreateNode(dir, "null"u8, LocalFs.ModeCharDevice | 0x1B6, LocalFs.MakeDev(1, 3));
            }
            catch (LocalFsException e) when (e.Errno is Errno.EPERM)
            {
                Skip.If(true, $"this container may not create device nodes: {e.Message}");
            }
        }
        CliRunner.Succeeds("put", image, Path.Combine(source, "null"), "/dev-null");
        var back = Dir("back");
        CliRunner.Succeeds("get", image, "/dev-null", back);
        var st = LocalFs.Stat(LocalFd.CurrentDirectory, Bytes(Path.Combine(back, "dev-null")));
        Assert.Equal(LocalFileType.CharDevice, st.Type);
        Assert.Equal((1u, 3u), (LocalFs.Major(st.Rdev), LocalFs.Minor(st.Rdev)));
        var original = LocalFs.Stat(LocalFd.CurrentDirectory, Bytes(Path.Combine(source, "null")));
        Assert.Equal((original.Permissions, original.MtimeNs), (st.Permissions, st.MtimeNs));
    }

    [Fact]
    public void PutFsync_CopiesTheSameTree()
    {
        var image = CliImages.Formatted(_temp);
        var source = Dir("src");
        BuildTree(source);

        var put = CliRunner.Succeeds("put", "--fsync", image, Path.Combine(source, "tree"), "/");
        Assert.Contains("put 9 files, 3 directories", put.Out, StringComparison.Ordinal);
        Assert.Equal("", put.Err);
        AssertFsckClean(image);
        var back = Dir("back");
        CliRunner.Succeeds("get", image, "/tree", back);
        foreach (var file in new[] { "data", "sparse", Path.Combine("sub", "data-link") })
            Assert.Equal(File.ReadAllBytes(Path.Combine(source, "tree", file)), File.ReadAllBytes(Path.Combine(back, "tree", file)));
    }

    [Fact]
    public void Get_of_shared_copies_writes_their_bytes_and_holes()
    {
        var image = CliImages.Formatted(_temp);
        var source = Dir("src");
        BuildTree(source);
        CliRunner.Succeeds("put", image, Path.Combine(source, "tree"), "/");
        CliRunner.Succeeds("cp", "-a", image, "/tree", "/shared");
        AssertFsckClean(image);
        var back = Dir("back");
        CliRunner.Succeeds("get", image, "/shared", back);
        foreach (var file in new[] { "data", "sparse", Path.Combine("sub", "data-link") })
            Assert.Equal(File.ReadAllBytes(Path.Combine(source, "tree", file)), File.ReadAllBytes(Path.Combine(back, "shared", file)));
        using var copied = LocalFs.OpenRead(LocalFd.CurrentDirectory, Bytes(Path.Combine(back, "shared", "sparse")));
        Assert.Equal([(0L, (long)Block), (Block + Hole, Block)], LocalFs.DataRanges(copied).ToList());
    }

    [Fact]
    public void PutFsync_PrintSynced_NamesEachFileOnceItIsDurable()
    {
        var image = CliImages.Formatted(_temp);
        var source = Dir("src");
        BuildTree(source);
        CliRunner.Fails(16, ["put", "--print-synced", image, Path.Combine(source, "tree"), "/"], "--print-synced needs --fsync");
        var put = CliRunner.Succeeds("put", "--fsync", "--print-synced", image, Path.Combine(source, "tree"), "/");
        var synced = put.Out.Split('\n').Where(l => l.StartsWith("synced ", StringComparison.Ordinal)).Select(l => l["synced ".Length..]).ToList();
        Assert.Contains("/tree/sparse", synced);
        Assert.Contains("/tree/to-data", synced);
        // data and sub/data-link are one file: copied (and synced) once, linked the second time.
        Assert.Single(synced, p => p is "/tree/data" or "/tree/sub/data-link");
        Assert.Equal(synced.Count, synced.Distinct().Count());
        Assert.DoesNotContain("/tree/sub", synced); // directories are not files
    }

    [Fact]
    public void NonUtf8Argument_IsCopiedByItsEscapedForm()
    {
        var image = CliImages.Formatted(_temp);
        var source = Dir("src");
        using (var dir = LocalFs.OpenDirectory(LocalFd.CurrentDirectory, Bytes(source)))
        using (var f = LocalFs.CreateFile(dir, s_nonUtf8, 0x1A4))
            LocalFs.WriteAt(f, "x"u8, 0);
        CliRunner.Succeeds("put", image, source + @"/f\xffo", @"/g\xfe");
        using var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true });
        Assert.True(fs.Files.TryLookup(FsPositions.RootIno, [0x67, 0xfe], out var attr));
        Assert.Equal(1ul, attr.Size);
    }

    // ---- cp -a rules for DEST ------------------------------------------------------------------

    private static byte[] ImageFile(string image, string path)
    {
        using var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true });
        var attr = fs.Files.ResolvePath(path);
        var data = new byte[attr.Size];
        fs.Files.Read(attr.Ino, 0, data);
        return data;
    }

    private static bool ImageHas(string image, string path, out InodeAttr attr)
    {
        using var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true });
        return fs.Files.TryResolvePath(Names.FromText(path), followLast: false, out attr, out _);
    }

    [Fact]
    public void Put_FollowsCpDashARulesForDest()
    {
        var image = CliImages.Formatted(_temp);
        var src = Dir("src");
        File.WriteAllText(Path.Combine(src, "one"), "one");
        File.WriteAllText(Path.Combine(src, "two"), "two");
        Directory.CreateDirectory(Path.Combine(src, "d", "inner"));
        File.WriteAllText(Path.Combine(src, "d", "f"), "f");

        // A file into an existing directory keeps its name; onto a missing name takes that name.
        CliRunner.Succeeds("put", image, Path.Combine(src, "one"), "/");
        Assert.Equal("one"u8.ToArray(), ImageFile(image, "/one"));
        CliRunner.Succeeds("put", image, Path.Combine(src, "one"), "/renamed");
        Assert.Equal("one"u8.ToArray(), ImageFile(image, "/renamed"));

        // A file onto an existing file replaces its contents (the inode stays).
        Assert.True(ImageHas(image, "/renamed", out var before));
        CliRunner.Succeeds("put", image, Path.Combine(src, "two"), "/renamed");
        Assert.Equal("two"u8.ToArray(), ImageFile(image, "/renamed"));
        Assert.True(ImageHas(image, "/renamed", out var after));
        Assert.Equal(before.Ino, after.Ino);

        // A directory onto a missing name becomes it; into an existing directory keeps its name; again merges.
        CliRunner.Succeeds("put", image, Path.Combine(src, "d"), "/copy");
        Assert.Equal("f"u8.ToArray(), ImageFile(image, "/copy/f"));
        Assert.True(ImageHas(image, "/copy/inner", out var inner) && inner.IsDirectory);
        CliRunner.Succeeds("put", image, Path.Combine(src, "d"), "/copy");
        Assert.Equal("f"u8.ToArray(), ImageFile(image, "/copy/d/f"));
        File.WriteAllText(Path.Combine(src, "d", "f"), "changed");
        CliRunner.Succeeds("put", image, Path.Combine(src, "d"), "/copy");
        Assert.Equal("changed"u8.ToArray(), ImageFile(image, "/copy/d/f"));

        // Several sources go into an existing directory.
        CliRunner.Succeeds("put", image, Path.Combine(src, "one"), Path.Combine(src, "two"), Path.Combine(src, "d"), "/copy");
        Assert.Equal("two"u8.ToArray(), ImageFile(image, "/copy/two"));

        // A directory onto a non-directory, a non-directory onto a directory: errors.
        CliRunner.Fails(1, ["put", image, Path.Combine(src, "d"), "/one"], "cannot overwrite non-directory '/one' with directory");
        Directory.CreateDirectory(Path.Combine(src, "clash"));
        File.WriteAllText(Path.Combine(src, "clash", "inner"), "file");
        CliRunner.Succeeds("put", image, Path.Combine(src, "d"), "/clash");
        CliRunner.Fails(1, ["put", image, Path.Combine(src, "clash"), "/"], "cannot overwrite directory '/clash/inner' with non-directory");
        AssertFsckClean(image);
    }

    [Fact]
    public void Get_FollowsCpDashARulesForDest()
    {
        var image = CliImages.Formatted(_temp);
        var src = Dir("src");
        Directory.CreateDirectory(Path.Combine(src, "d"));
        File.WriteAllText(Path.Combine(src, "d", "f"), "f");
        File.WriteAllText(Path.Combine(src, "one"), "one");
        CliRunner.Succeeds("put", image, Path.Combine(src, "d"), Path.Combine(src, "one"), "/");

        var out1 = Dir("out");
        CliRunner.Succeeds("get", image, "/one", out1);
        Assert.Equal("one", File.ReadAllText(Path.Combine(out1, "one")));
        CliRunner.Succeeds("get", image, "/one", Path.Combine(out1, "renamed"));
        Assert.Equal("one", File.ReadAllText(Path.Combine(out1, "renamed")));
        File.WriteAllText(Path.Combine(out1, "existing"), "a longer old text");
        CliRunner.Succeeds("get", image, "/one", Path.Combine(out1, "existing"));
        Assert.Equal("one", File.ReadAllText(Path.Combine(out1, "existing")));
        CliRunner.Succeeds("get", image, "/d", Path.Combine(out1, "newdir"));
        Assert.Equal("f", File.ReadAllText(Path.Combine(out1, "newdir", "f")));
        CliRunner.Succeeds("get", image, "/d", "/one", Path.Combine(out1, "newdir"));
        Assert.Equal("f", File.ReadAllText(Path.Combine(out1, "newdir", "d", "f")));
        Assert.Equal("one", File.ReadAllText(Path.Combine(out1, "newdir", "one")));

        CliRunner.Fails(1, ["get", image, "/d", Path.Combine(out1, "one")], "cannot overwrite non-directory", "with directory '/d'");
        CliRunner.Fails(1, ["get", image, "/d", "/one", Path.Combine(out1, "one")], "is not a directory");
        CliRunner.Fails(1, ["get", image, "/d", "/one", Path.Combine(out1, "missing")], "is not a directory");
        CliRunner.Fails(1, ["get", image, "/nothing", out1], "'/nothing' does not exist");
    }

    // ---- errors --------------------------------------------------------------------------------

    [Fact]
    public void Put_Errors_AreOneLineAndLeaveTheImageClean()
    {
        var image = CliImages.Formatted(_temp);
        var src = Dir("src");
        var file = Path.Combine(src, "file");
        File.WriteAllText(file, "data");
        var missing = Path.Combine(src, "missing");

        CliRunner.Fails(1, ["put", image, missing, "/"], "cannot stat", "missing", "No such file or directory");
        CliRunner.Fails(1, ["put", image, file, "/no/such/dir/x"], "'/no' does not exist");
        CliRunner.Fails(1, ["put", image, file, file, "/file-dest"], "target '/file-dest' does not exist");
        CliRunner.Succeeds("put", image, file, "/file-dest");
        CliRunner.Fails(1, ["put", image, file, file, "/file-dest"], "target '/file-dest' is not a directory");
        var longName = "/" + new string('n', 256);
        CliRunner.Fails(1, ["put", image, file, longName], "256 bytes", "too long");
        CliRunner.Fails(16, ["put", image, file], "DEST is missing");
        CliRunner.Fails(16, ["put", image, file, "relative"], "path 'relative' is not absolute");
        CliRunner.Fails(16, ["get", image, "relative", src], "path 'relative' is not absolute");
        CliRunner.Fails(1, ["put", _temp.File("no.img"), file, "/"], "no.img");
        AssertFsckClean(image);
        Assert.Equal("data"u8.ToArray(), ImageFile(image, "/file-dest"));
    }

    [Theory]
    [InlineData("put")]
    [InlineData("get")]
    public void BadImages_AreOneLineWithExit1(string command)
    {
        var src = Dir("src");
        string[] Args(string image) => command == "put" ? ["put", image, src, "/"] : ["get", image, "/", Dir("out")];
        CliRunner.Fails(1, Args(_temp.File("missing.img")), "missing.img", "no such file");
        CliRunner.Fails(1, Args(src), "is a directory");
        var zeros = _temp.File("zeros.img");
        File.WriteAllBytes(zeros, new byte[4 << 20]);
        CliRunner.Fails(1, Args(zeros), "not a Basalt filesystem");

        var image = CliImages.Formatted(_temp);
        using (BasaltFileSystem.Mount(image, new MountOptions()))
            CliRunner.Fails(1, Args(image), "in use");
    }

    [Fact]
    public void Put_DeviceFull_StopsWithOneLineAndKeepsEarlierFiles()
    {
        var image = CliImages.Formatted(_temp);
        var src = Dir("src");
        File.WriteAllBytes(Path.Combine(src, "a"), Pattern(50_000, 4));
        File.WriteAllBytes(Path.Combine(src, "b"), Pattern(70_000, 5));
        File.WriteAllBytes(Path.Combine(src, "big"), Pattern(32 << 20, 6));

        var r = CliRunner.Fails(1, ["put", image, Path.Combine(src, "a"), Path.Combine(src, "b"), Path.Combine(src, "big"), "/"],
            "'/big' is left partial");
        Assert.Contains("put 2 files", r.Out, StringComparison.Ordinal);
        _output.WriteLine(r.Err);
        AssertFsckClean(image);
        Assert.Equal(Pattern(50_000, 4), ImageFile(image, "/a"));
        Assert.Equal(Pattern(70_000, 5), ImageFile(image, "/b"));
    }

    [Fact]
    public void Get_CopiesAroundDataThatCannotBeRead_NamesTheFileAndExits8()
    {
        var image = CliImages.Formatted(_temp);
        var src = Dir("src");
        var big = Pattern(300_000, 7);
        File.WriteAllBytes(Path.Combine(src, "a"), big);
        File.WriteAllBytes(Path.Combine(src, "z"), Pattern(100, 8)); // inline: not a --target data candidate
        CliRunner.Succeeds("put", image, src, "/");
        CliRunner.Succeeds("debug", "corrupt", image, "--target", "data", "--seed", "3");

        var outDir = Dir("out");
        var r = CliRunner.Run("get", image, "/src", outDir);
        Assert.True(r.ExitCode == 8, r.ToString());
        Assert.Single(r.ErrLines);
        Assert.StartsWith("basalt get: '/src/a': Input/output error: ", r.Err, StringComparison.Ordinal);
        Assert.Contains("holds zeros there", r.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        Assert.Contains("got 2 files, 1 directories", r.Out, StringComparison.Ordinal);
        Assert.Contains("1 of them not whole", r.Out, StringComparison.Ordinal);

        // The later file is copied whole; the damaged one has its size, the bytes that could be
        // read, and zeros exactly where the error line says bytes were lost.
        Assert.Equal(Pattern(100, 8), File.ReadAllBytes(Path.Combine(outDir, "src", "z")));
        var copy = File.ReadAllBytes(Path.Combine(outDir, "src", "a"));
        Assert.Equal(big.Length, copy.Length);
        var lost = long.Parse(System.Text.RegularExpressions.Regex.Match(r.Err, @"error: (\d+) bytes cannot be read").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(lost, 1, 65536 + 4096);
        var differing = 0;
        for (var i = 0; i < big.Length; i++)
        {
            if (copy[i] != big[i])
            {
                Assert.Equal(0, copy[i]);
                differing++;
            }
        }
        Assert.InRange(differing, 1, lost);
        AssertFsckClean(image);
    }

    [Fact]
    public void Cancelled_StopsWithExit32AndACleanImage()
    {
        var image = CliImages.Formatted(_temp);
        var src = Dir("src");
        File.WriteAllText(Path.Combine(src, "a"), "a");
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = Program.Run(["put", image, src, "/"], stdout, stderr, CliTerminal.None, cancel.Token);
        Assert.Equal(TreeCopy.CancelledExitCode, code);
        Assert.Equal("basalt put: stopped by cancellation", stderr.ToString().Trim());
        Assert.Contains("before stopping", stdout.ToString(), StringComparison.Ordinal);
        AssertFsckClean(image);
    }
}
