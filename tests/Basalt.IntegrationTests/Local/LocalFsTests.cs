// The local-filesystem layer against the real filesystem of the temp directory (ext4 or tmpfs in
// CI): names as bytes, statx fields, links, special files, times, holes, xattrs and the errors.
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text;
using Basalt.Cli.Local;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Local;

[SupportedOSPlatform("linux")]
public sealed class LocalFsTests : IDisposable
{
    private static readonly byte[] s_nonUtf8 = [0x66, 0xff, 0x6f]; // "f", an invalid byte, "o"
    private readonly TempDirectory _temp = new("local");
    private readonly LocalFd _dir;

    public LocalFsTests() => _dir = LocalFs.OpenDirectory(LocalFd.CurrentDirectory, Bytes(_temp.Path));

    public void Dispose()
    {
        _dir.Dispose();
        _temp.Dispose();
    }

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static List<LocalDirEntry> List(LocalFd dir) => [.. LocalFs.ReadDirectory(dir)];

    [Fact]
    public void StructLayouts_MatchLinuxX64()
    {
        Assert.Equal(256, Marshal.SizeOf<LocalLibC.StatxBuffer>());
        Assert.Equal(16, Marshal.SizeOf<LocalLibC.StatxTimestamp>());
        Assert.Equal(16, Marshal.SizeOf<LocalLibC.Timespec>());
        Assert.Equal(112, (int)Marshal.OffsetOf<LocalLibC.StatxBuffer>(nameof(LocalLibC.StatxBuffer.Mtime)));
        Assert.Equal(136, (int)Marshal.OffsetOf<LocalLibC.StatxBuffer>(nameof(LocalLibC.StatxBuffer.DevMajor)));
    }

    [Fact]
    public void NonUtf8Name_IsCreatedListedStatedAndRemovedAsBytes()
    {
        using (var file = LocalFs.CreateFile(_dir, s_nonUtf8, 0b110_100_000))
            LocalFs.WriteAt(file, "hello"u8, 0);

        var entry = Assert.Single(List(_dir));
        Assert.Equal(s_nonUtf8, entry.Name);
        Assert.Equal(LocalFileType.Regular, entry.FileType);
        var stat = LocalFs.Stat(_dir, s_nonUtf8);
        Assert.Equal(LocalFileType.Regular, stat.Type);
        Assert.Equal(0b110_100_000u, stat.Permissions);
        Assert.Equal(5, stat.Size);
        Assert.Equal(1u, stat.Nlink);
        Assert.Equal(entry.Ino, stat.Ino);
        Assert.NotEqual(0ul, stat.Dev);

        // .NET sees the name only through replacement characters: it cannot open it.
        var dotnetName = Path.GetFileName(Assert.Single(Directory.GetFiles(_temp.Path)));
        Assert.Equal("f\uFFFDo", dotnetName);
        Assert.False(File.Exists(Path.Combine(_temp.Path, dotnetName)));

        // The display form names the byte, and typing that form back gives the same bytes.
        var text = NameText.ToText(entry.Name);
        Assert.Equal(@"f\xffo", text);
        Assert.True(NameText.TryParseArgument(text, out var typed, out var problem), problem);
        Assert.Equal(s_nonUtf8, typed);
        using (var reopened = LocalFs.OpenRead(_dir, typed))
        {
            var buffer = new byte[16];
            Assert.Equal(5, LocalFs.ReadAt(reopened, buffer, 0));
            Assert.Equal("hello"u8.ToArray(), buffer[..5]);
            Assert.Equal(stat.Ino, LocalFs.Stat(reopened).Ino);
        }

        LocalFs.Remove(_dir, s_nonUtf8);
        Assert.Empty(List(_dir));
        Assert.Equal(Errno.ENOENT, Assert.Throws<LocalFsException>(() => LocalFs.Stat(_dir, s_nonUtf8)).Errno);
    }

    [Fact]
    public void ReadDirectory_ListsEveryEntryAcrossManyBuffers_AndNestedPathsJoin()
    {
        // 700 entries of ~90-byte records need several getdents64 calls of the 32 KiB buffer.
        var expected = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 700; i++)
        {
            var name = $"entry-{i:D4}-{new string('n', 60)}";
            expected.Add(name);
            LocalFs.CreateNode(_dir, Bytes(name), LocalFs.ModeFifo | 0b110_000_000);
        }
        LocalFs.CreateDirectory(_dir, "sub"u8, 0b111_101_101);
        expected.Add("sub");

        var entries = List(_dir);
        Assert.Equal(expected.Count, entries.Count);
        Assert.True(expected.SetEquals(entries.Select(e => Encoding.UTF8.GetString(e.Name))));
        Assert.Equal(LocalFileType.Directory, entries.Single(e => e.Name.AsSpan().SequenceEqual("sub"u8)).FileType);
        Assert.All(entries.Where(e => e.Name.Length > 3), e => Assert.Equal(LocalFileType.Fifo, e.FileType));
        Assert.Equal(entries.Count, List(_dir).Count); // a second enumeration starts over

        using var sub = LocalFs.OpenDirectory(_dir, "sub"u8);
        Assert.Equal($"{_temp.Path}/sub", Encoding.UTF8.GetString(sub.Path));
        Assert.Empty(List(sub));
        Assert.Equal(LocalFileType.Directory, LocalFs.Stat(sub).Type);
    }

    [SkippableFact]
    public void DataRanges_ReportTheTwoBlocksAroundAOneMebibyteHole()
    {
        const int Block = 4096;
        const long Hole = 1024 * 1024;
        var first = Enumerable.Repeat((byte)0xA1, Block).ToArray();
        var second = Enumerable.Repeat((byte)0xB2, Block).ToArray();
        using var file = LocalFs.Open(_dir, "sparse"u8, LocalLibC.ORdWr | LocalLibC.OCreat | LocalLibC.OExcl, 0b110_000_000);
        LocalFs.WriteAt(file, first, 0);
        LocalFs.WriteAt(file, second, Block + Hole);
        LocalFs.DataSync(file);

        var ranges = LocalFs.DataRanges(file).ToList();
        Skip.If(ranges.Count == 1, $"the temp directory's filesystem does not report holes (one range {ranges[0]})");
        Assert.Equal([(0L, (long)Block), (Block + Hole, (long)Block)], ranges);

        var back = new byte[Block];
        Assert.Equal(Block, LocalFs.ReadAt(file, back, Block + Hole));
        Assert.Equal(second, back);
        Assert.Equal(Block, LocalFs.ReadAt(file, back, Block));
        Assert.All(back, b => Assert.Equal(0, b));

        // A size grown by truncate is a hole too: the ranges do not change.
        LocalFs.Truncate(file, (2 * Block) + (3 * Hole));
        Assert.Equal((2 * Block) + (3 * Hole), LocalFs.Stat(file).Size);
        Assert.Equal(ranges, LocalFs.DataRanges(file).ToList());
    }

    [Fact]
    public void DataRanges_OfADenseFileIsOneRangeAndOfAnEmptyFileNone()
    {
        var data = new byte[10_000];
        new Random(7).NextBytes(data);
        using var file = LocalFs.CreateFile(_dir, "dense"u8, 0b110_000_000);
        Assert.Empty(LocalFs.DataRanges(file));
        LocalFs.WriteAt(file, data, 0);
        Assert.Equal([(0L, (long)data.Length)], LocalFs.DataRanges(file).ToList());
    }

    [Fact]
    public void ReadAndWrite_RoundTripAtOffsets_AndTruncateShrinks()
    {
        var data = new byte[(3 * 1024 * 1024) + 17];
        new Random(11).NextBytes(data);
        using (var file = LocalFs.CreateFile(_dir, "data"u8, 0b110_000_000))
        {
            LocalFs.WriteAt(file, data, 100);
            LocalFs.Sync(file);
        }
        using var read = LocalFs.Open(_dir, "data"u8, LocalLibC.ORdWr);
        Assert.Equal(data.Length + 100, LocalFs.Stat(read).Size);
        var back = new byte[data.Length];
        var total = 0;
        while (total < back.Length)
        {
            var n = LocalFs.ReadAt(read, back.AsSpan(total), 100 + total);
            Assert.True(n > 0);
            total += n;
        }
        Assert.Equal(data, back);
        Assert.Equal(0, LocalFs.ReadAt(read, back, data.Length + 100));
        LocalFs.Truncate(read, 50);
        Assert.Equal(50, LocalFs.Stat(read).Size);
        Assert.Equal(50, LocalFs.ReadAt(read, back, 0));
        Assert.All(back[..50], b => Assert.Equal(0, b));
    }

    [Fact]
    public void Symlink_TargetBytesRoundTrip_WhateverTheirLength()
    {
        byte[] shortTarget = [.. "../t"u8, 0xfe, 0x01, .. "rget/"u8, 0xc3];
        var longTarget = Enumerable.Range(0, 1500).Select(i => (byte)('a' + (i % 26))).ToArray(); // beyond the first 256-byte read
        LocalFs.CreateSymlink(_dir, s_nonUtf8, shortTarget);
        LocalFs.CreateSymlink(_dir, "long"u8, longTarget);

        Assert.Equal(shortTarget, LocalFs.ReadLink(_dir, s_nonUtf8));
        Assert.Equal(longTarget, LocalFs.ReadLink(_dir, "long"u8));
        var stat = LocalFs.Stat(_dir, s_nonUtf8); // the link itself, not its (missing) target
        Assert.Equal(LocalFileType.Symlink, stat.Type);
        Assert.Equal(shortTarget.Length, stat.Size);
        Assert.Equal(LocalFileType.Symlink, List(_dir).First(e => e.Name.AsSpan().SequenceEqual(s_nonUtf8)).FileType);

        // O_NOFOLLOW: opening the link fails rather than reaching whatever it points to.
        using (LocalFs.CreateFile(_dir, "real"u8, 0b110_000_000))
        {
        }
        LocalFs.CreateSymlink(_dir, "to-real"u8, "real"u8);
        Assert.Equal(Errno.ELOOP, Assert.Throws<LocalFsException>(() => LocalFs.OpenRead(_dir, "to-real"u8)).Errno);
        Assert.Equal(Errno.ENOTDIR, Assert.Throws<LocalFsException>(() => LocalFs.OpenDirectory(_dir, "to-real"u8)).Errno);
        using var path = LocalFs.OpenPath(_dir, "to-real"u8);
        Assert.Equal(LocalFileType.Symlink, LocalFs.Stat(path).Type);
    }

    [Fact]
    public void HardLink_SharesDevAndIno_WithNlinkTwo()
    {
        using (LocalFs.CreateFile(_dir, "one"u8, 0b110_000_000))
        {
        }
        using (LocalFs.CreateFile(_dir, "other"u8, 0b110_000_000))
        {
        }
        LocalFs.CreateDirectory(_dir, "d"u8, 0b111_000_000);
        using var sub = LocalFs.OpenDirectory(_dir, "d"u8);
        LocalFs.CreateHardLink(_dir, "one"u8, sub, s_nonUtf8);

        var one = LocalFs.Stat(_dir, "one"u8);
        var two = LocalFs.Stat(sub, s_nonUtf8);
        var other = LocalFs.Stat(_dir, "other"u8);
        Assert.Equal((one.Dev, one.Ino), (two.Dev, two.Ino));
        Assert.Equal(2u, one.Nlink);
        Assert.Equal(2u, two.Nlink);
        Assert.Equal(one.Dev, other.Dev);
        Assert.NotEqual(one.Ino, other.Ino);
        Assert.Equal(1u, other.Nlink);

        // A symlink is linked itself, not followed.
        LocalFs.CreateSymlink(_dir, "link"u8, "one"u8);
        LocalFs.CreateHardLink(_dir, "link"u8, _dir, "link2"u8);
        Assert.Equal(LocalFileType.Symlink, LocalFs.Stat(_dir, "link2"u8).Type);
        Assert.Equal(2u, LocalFs.Stat(_dir, "link"u8).Nlink);
    }

    [Fact]
    public void FifoAndSocket_AreCreatedAndStatedAsSuch()
    {
        LocalFs.CreateFifo(_dir, s_nonUtf8, 0b110_100_000);
        LocalFs.CreateNode(_dir, "sock"u8, LocalFs.ModeSocket | 0b111_000_000);

        var fifo = LocalFs.Stat(_dir, s_nonUtf8);
        Assert.Equal(LocalFileType.Fifo, fifo.Type);
        Assert.Equal(0x1000u | 0b110_100_000, fifo.Mode);
        Assert.Equal(LocalFileType.Socket, LocalFs.Stat(_dir, "sock"u8).Type);
        Assert.Equal(LocalFileType.Fifo, List(_dir).First(e => e.Name.AsSpan().SequenceEqual(s_nonUtf8)).FileType);
        Assert.Equal(LocalFileType.Socket, List(_dir).First(e => e.Name.AsSpan().SequenceEqual("sock"u8)).FileType);

        // O_NONBLOCK: opening a FIFO to read does not wait for a writer.
        using var fd = LocalFs.OpenRead(_dir, s_nonUtf8);
        Assert.Equal(LocalFileType.Fifo, LocalFs.Stat(fd).Type);
    }

    [SkippableFact]
    public void Devices_KeepTheirMajorAndMinor()
    {
        var devNull = LocalFs.Stat(LocalFd.CurrentDirectory, "/dev/null"u8);
        Assert.Equal(LocalFileType.CharDevice, devNull.Type);
        Assert.Equal((1u, 3u), (LocalFs.Major(devNull.Rdev), LocalFs.Minor(devNull.Rdev)));
        Assert.Equal(0x103ul, devNull.Rdev);

        var large = LocalFs.MakeDev(0x12345, 0x6789a);
        Assert.Equal((0x12345u, 0x6789au), (LocalFs.Major(large), LocalFs.Minor(large)));
        try
        {
            LocalFs.CreateNode(_dir, "blk"u8, LocalFs.ModeBlockDevice | 0b110_000_000, LocalFs.MakeDev(259, 70000));
        }
        catch (LocalFsException e) when (e.Errno == Errno.EPERM)
        {
            Skip.If(true, "creating device nodes needs CAP_MKNOD");
        }
        var blk = LocalFs.Stat(_dir, "blk"u8);
        Assert.Equal(LocalFileType.BlockDevice, blk.Type);
        Assert.Equal((259u, 70000u), (LocalFs.Major(blk.Rdev), LocalFs.Minor(blk.Rdev)));
    }

    [Fact]
    public void SetTimes_ThenStat_GivesTheSameNanoseconds_OnTheSymlinkItself()
    {
        using (LocalFs.CreateFile(_dir, "target"u8, 0b110_000_000))
        {
        }
        LocalFs.CreateSymlink(_dir, "link"u8, "target"u8);
        var targetBefore = LocalFs.Stat(_dir, "target"u8);

        const long Atime = 1_234_567_890_123_456_789;
        const long Mtime = -1_500_000_001; // before the epoch, with nanoseconds
        LocalFs.SetTimes(_dir, "target"u8, Atime, Mtime);
        LocalFs.SetTimes(_dir, "link"u8, Mtime, Atime);

        var target = LocalFs.Stat(_dir, "target"u8);
        var link = LocalFs.Stat(_dir, "link"u8);
        Assert.Equal((Atime, Mtime), (target.AtimeNs, target.MtimeNs));
        Assert.Equal((Mtime, Atime), (link.AtimeNs, link.MtimeNs));
        Assert.True(target.CtimeNs >= targetBefore.CtimeNs);
        if (target.HasBtime)
            Assert.Equal(targetBefore.BtimeNs, target.BtimeNs);
    }

    [Fact]
    public void ModeAndOwner_AreSet_WithoutFollowingSymlinks()
    {
        using (var file = LocalFs.CreateFile(_dir, "f"u8, 0b110_000_000))
        {
            LocalFs.SetMode(file, 0b111_101_000 | 0x800); // set-user-id kept through fchmod
            Assert.Equal(0x800u | 0b111_101_000, LocalFs.Stat(file).Permissions);
        }
        LocalFs.SetMode(_dir, "f"u8, 0b100_000_000);
        Assert.Equal(0b100_000_000u, LocalFs.Stat(_dir, "f"u8).Permissions);

        LocalFs.CreateSymlink(_dir, "link"u8, "f"u8);
        Assert.Equal(Errno.EOPNOTSUPP, Assert.Throws<LocalFsException>(() => LocalFs.SetMode(_dir, "link"u8, 0b111_111_111)).Errno);
        Assert.Equal(0b100_000_000u, LocalFs.Stat(_dir, "f"u8).Permissions);

        var me = LocalFs.Stat(_dir, "f"u8);
        LocalFs.SetOwner(_dir, "link"u8, me.Uid, me.Gid); // allowed for any owner: to itself
        Assert.Equal((me.Uid, me.Gid), (LocalFs.Stat(_dir, "link"u8).Uid, LocalFs.Stat(_dir, "link"u8).Gid));
    }

    [SkippableFact]
    public void UserXattrs_AreSetListedReadAndRemoved()
    {
        using (LocalFs.CreateFile(_dir, s_nonUtf8, 0b110_000_000))
        {
        }
        byte[] value = [0, 1, 0xff, .. "text"u8, 0];
        var large = Enumerable.Range(0, 3000).Select(i => (byte)(i * 7)).ToArray();
        byte[] oddName = [.. "user.b"u8, 0xfe];
        try
        {
            LocalFs.SetXattr(_dir, s_nonUtf8, "user.basalt"u8, value);
        }
        catch (LocalFsException e) when (e.Errno == Errno.EOPNOTSUPP)
        {
            Skip.If(true, $"the temp directory's filesystem has no user.* extended attributes: {e.Message}");
        }
        LocalFs.SetXattr(_dir, s_nonUtf8, oddName, large);
        LocalFs.SetXattr(_dir, s_nonUtf8, "user.empty"u8, []);

        var names = LocalFs.ListXattrs(_dir, s_nonUtf8).Where(n => n.AsSpan().StartsWith("user."u8)).Select(n => NameText.ToText(n)).Order(StringComparer.Ordinal);
        Assert.Equal([@"user.b\xfe", "user.basalt", "user.empty"], names);
        Assert.Equal(value, LocalFs.GetXattr(_dir, s_nonUtf8, "user.basalt"u8));
        Assert.Equal(large, LocalFs.GetXattr(_dir, s_nonUtf8, oddName));
        Assert.Empty(LocalFs.GetXattr(_dir, s_nonUtf8, "user.empty"u8));

        LocalFs.SetXattr(_dir, s_nonUtf8, "user.basalt"u8, "replaced"u8);
        Assert.Equal("replaced"u8.ToArray(), LocalFs.GetXattr(_dir, s_nonUtf8, "user.basalt"u8));
        LocalFs.RemoveXattr(_dir, s_nonUtf8, "user.basalt"u8);
        Assert.DoesNotContain(LocalFs.ListXattrs(_dir, s_nonUtf8), n => n.AsSpan().SequenceEqual("user.basalt"u8));
        var missing = Assert.Throws<LocalFsException>(() => LocalFs.GetXattr(_dir, s_nonUtf8, "user.basalt"u8));
        Assert.Equal(Errno.ENODATA, missing.Errno);
        Assert.Equal($"cannot read extended attribute 'user.basalt' of '{_temp.Path}/f\\xffo': No data available", missing.Message);

        // The attributes belong to the file the directory descriptor holds, not to a path:
        // from a second directory the same name is another file.
        LocalFs.CreateDirectory(_dir, "d"u8, 0b111_000_000);
        using var sub = LocalFs.OpenDirectory(_dir, "d"u8);
        using (LocalFs.CreateFile(sub, s_nonUtf8, 0b110_000_000))
        {
        }
        Assert.DoesNotContain(LocalFs.ListXattrs(sub, s_nonUtf8), n => n.AsSpan().StartsWith("user."u8));
    }

    [Fact]
    public void Errors_CarryTheErrnoAndTheEscapedPath()
    {
        byte[] missingName = [.. "mi"u8, 0xff, .. "ss\\ing"u8];
        var e = Assert.Throws<LocalFsException>(() => LocalFs.OpenRead(_dir, missingName));
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Equal((int)Errno.ENOENT, e.HResult);
        Assert.Equal([.. Bytes(_temp.Path), (byte)'/', .. missingName], e.Path);
        Assert.Equal($"cannot open '{_temp.Path}/mi\\xffss\\x5cing': No such file or directory", e.Message);
        Assert.IsAssignableFrom<IOException>(e);

        LocalFs.CreateDirectory(_dir, "d"u8, 0b111_000_000);
        using (LocalFs.CreateFile(_dir, "d/f"u8, 0b110_000_000))
        {
        }
        Assert.Equal(Errno.EEXIST, Assert.Throws<LocalFsException>(() => LocalFs.CreateDirectory(_dir, "d"u8, 0b111_000_000)).Errno);
        Assert.Equal(Errno.ENOTEMPTY, Assert.Throws<LocalFsException>(() => LocalFs.RemoveDirectory(_dir, "d"u8)).Errno);
        Assert.Equal(Errno.EISDIR, Assert.Throws<LocalFsException>(() => LocalFs.Remove(_dir, "d"u8)).Errno);
        Assert.Equal(Errno.ENOTDIR, Assert.Throws<LocalFsException>(() => LocalFs.OpenDirectory(_dir, "d/f"u8)).Errno);
        Assert.Equal(Errno.EINVAL, Assert.Throws<LocalFsException>(() => LocalFs.ReadLink(_dir, "d/f"u8)).Errno);
        Assert.Equal(Errno.ENAMETOOLONG, Assert.Throws<LocalFsException>(() => LocalFs.Stat(_dir, Enumerable.Repeat((byte)'n', 300).ToArray())).Errno);

        var nul = Assert.Throws<LocalFsException>(() => LocalFs.CreateDirectory(_dir, "a\0b"u8, 0b111_000_000));
        Assert.Equal(Errno.EINVAL, nul.Errno);
        Assert.Contains(@"a\x00b': Invalid argument", nul.Message, StringComparison.Ordinal);

        var link = Assert.Throws<LocalFsException>(() => LocalFs.CreateSymlink(_dir, "d"u8, "t\x01"u8));
        Assert.Equal($"cannot create symlink '{_temp.Path}/d' to 't\\x01': File exists", link.Message);

        // The CLI prints the message as it is.
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var context = new Basalt.Cli.CliContext(stdout, stderr, Basalt.Cli.CliTerminal.None) { CommandName = "basalt put" };
        Assert.NotEqual(0, context.Fail(e, fsckCodes: false));
        Assert.Equal($"basalt put: {e.Message}", stderr.ToString().TrimEnd());
    }
}
