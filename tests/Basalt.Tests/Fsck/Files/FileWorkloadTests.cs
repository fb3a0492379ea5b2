using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Fsck.Files;
using Basalt.Fsck.Space;
using Basalt.TestKit;
using Basalt.Tests.Fs;
using Basalt.Tests.Fsck.Space;
using Xunit.Abstractions;
using static Basalt.Tests.Fsck.FindingsText;

namespace Basalt.Tests.Fsck.Files;

/// <summary>A random mix of file operations leaves nothing for any fsck pass to find.</summary>
public sealed class FileWorkloadTests(ITestOutputHelper output)
{
    /// <summary>The namespace the workload believes in: directories and the names in each.</summary>
    private sealed class Model
    {
        public readonly List<ulong> Dirs = [FsPositions.RootIno];
        public readonly List<(ulong Dir, byte[] Name)> Files = [];
        public readonly List<ulong> Open = [];
    }

    private static void Step(Basalt.Fs.Files f, Model m, Random random)
    {
        var dir = m.Dirs[random.Next(m.Dirs.Count)];
        var name = FilesTests.B($"n{random.Next(60)}");
        var file = m.Files.Count > 0 ? m.Files[random.Next(m.Files.Count)] : default;
        try
        {
            switch (random.Next(16))
            {
                case 0 or 1:
                    f.Create(dir, name, 0x1A4);
                    m.Files.Add((dir, name));
                    break;
                case 2:
                    m.Dirs.Add(f.Mkdir(dir, name, 0x1ED).Ino);
                    break;
                case 3 when file.Name is not null:
                    f.Link(f.Lookup(file.Dir, file.Name).Ino, dir, name);
                    m.Files.Add((dir, name));
                    break;
                case 4 when file.Name is not null:
                    f.Rename(file.Dir, file.Name, dir, name);
                    m.Files.Remove(file);
                    m.Files.RemoveAll(x => x.Dir == dir && x.Name.AsSpan().SequenceEqual(name));
                    m.Files.Add((dir, name));
                    break;
                case 5 when m.Dirs.Count > 1:
                {
                    // A directory moves (the engine refuses a move into its own subtree).
                    var moving = m.Dirs[1 + random.Next(m.Dirs.Count - 1)];
                    var attr = f.GetAttr(moving);
                    var entry = f.ReadDir(attr.Inode.Dir, 0).First(e => e.Ino == moving && e.Name is not [(byte)'.', ..]);
                    f.Rename(attr.Inode.Dir, entry.Name, dir, name, RenameFlags.NoReplace);
                    break;
                }
                case 6 when file.Name is not null:
                {
                    // Unlinked while open: stays on the orphan list until released.
                    var ino = f.Lookup(file.Dir, file.Name).Ino;
                    f.Open(ino);
                    m.Open.Add(ino);
                    f.Unlink(file.Dir, file.Name);
                    m.Files.Remove(file);
                    break;
                }
                case 7 when file.Name is not null:
                    f.Unlink(file.Dir, file.Name);
                    m.Files.Remove(file);
                    break;
                case 8 or 9 when file.Name is not null:
                {
                    var ino = f.Lookup(file.Dir, file.Name).Ino;
                    if (f.GetAttr(ino).Type == FileType.Regular)
                        f.Write(ino, random.Next(0, 60_000), SpaceFsckTests.Bytes(random.Next(1, 20_000), random.Next()));
                    break;
                }
                case 10 when file.Name is not null:
                {
                    var ino = f.Lookup(file.Dir, file.Name).Ino;
                    if (f.GetAttr(ino).Type == FileType.Regular)
                        f.Truncate(ino, random.Next(0, 70_000));
                    break;
                }
                case 11 when file.Name is not null:
                {
                    var ino = f.Lookup(file.Dir, file.Name).Ino;
                    f.SetXattr(ino, FilesTests.B($"user.x{random.Next(12)}"), SpaceFsckTests.Bytes(random.Next(0, 200), random.Next()));
                    break;
                }
                case 12 when file.Name is not null:
                {
                    var ino = f.Lookup(file.Dir, file.Name).Ino;
                    f.RemoveXattr(ino, FilesTests.B($"user.x{random.Next(12)}"));
                    break;
                }
                case 13:
                    f.Symlink(dir, name, FilesTests.B("/some/where/else"));
                    m.Files.Add((dir, name));
                    break;
                case 14 when m.Open.Count > 0:
                {
                    var ino = m.Open[random.Next(m.Open.Count)];
                    m.Open.Remove(ino);
                    f.Release(ino);
                    break;
                }
                case 15 when m.Dirs.Count > 1:
                {
                    var gone = m.Dirs[1 + random.Next(m.Dirs.Count - 1)];
                    var attr = f.GetAttr(gone);
                    var entry = f.ReadDir(attr.Inode.Dir, 0).First(e => e.Ino == gone && e.Name is not [(byte)'.', ..]);
                    f.Rmdir(attr.Inode.Dir, entry.Name);
                    m.Dirs.Remove(gone);
                    break;
                }
            }
        }
        catch (BasaltException ex) when (ex.Code is ErrorCode.Exists or ErrorCode.NotEmpty or ErrorCode.InvalidArgument
            or ErrorCode.FileNotFound or ErrorCode.NotDirectory or ErrorCode.IsDirectory or ErrorCode.NoData)
        {
            // The model is loose (names may be taken, renamed away, or directories moved under
            // each other): an operation the filesystem refuses changes nothing.
            if (ex.Code == ErrorCode.FileNotFound && file.Name is not null && !f.TryGetAttr(file.Dir, out _))
                m.Files.Remove(file);
        }
    }

    [Theory]
    [InlineData(0ul)]
    [InlineData(3ul)]
    public void Random_file_operations_leave_nothing_for_the_file_passes(ulong collide)
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        using var device = new MemoryBlockDevice(32 * 1024 * 1024, "mem.img");
        Names.CollideForTests = collide; // names collide and probe: chains, whiteouts
        try
        {
            var model = new Model();
            using (var fs = BasaltFileSystem.Format(device, FilesTests.Geometry, SpaceFsckTests.Quiet))
            {
                for (var i = 0; i < LongTests.Scale(600); i++)
                {
                    Step(fs.Files, model, random);
                    if (i % 150 == 149)
                        Assert.True(FileChecks.Run(fs, repair: false, out var found), $"seed {seed}, step {i}:\n{Text(found)}");
                }
                output.WriteLine($"{model.Files.Count} names, {model.Dirs.Count} directories, {model.Open.Count} open, {fs.Files.Orphans().Count} orphans, {fs.Files.Stats().Inodes} inodes");
                // Files still open: unlinked inodes wait on the orphan list, which is no finding.
                Assert.True(FileChecks.Run(fs, repair: false, out var findings), $"seed {seed}:\n{Text(findings)}");
            }
            var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
            Assert.True(report.Findings.Count == 0, $"seed {seed}:\n{Text(report.Findings)}");
        }
        finally
        {
            Names.CollideForTests = 0;
        }
    }
}
