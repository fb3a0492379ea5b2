// Filesystem-level crash consistency (CrashMonkey/Ace-style, on the recording device): a short
// sequence of file operations runs on a small file set (two directories, two files each, data and
// an xattr), recorded write by write; after each operation the live tree is captured as text
// (every path with its inode, type, mode, link count, size, mtime, a hash of its bytes, symlink
// target and xattrs). A crash state must mount, recover, and show exactly the capture after some
// operation k, with k at least the operations an fsync, fdatasync or sync had made durable before
// the crash point and at most the operations begun before it: each operation is atomic and the
// recovered state is a prefix of the history (docs/crash-guarantees.md).
using System.IO.Hashing;
using System.Text;
using Basalt.Alloc;
using Basalt.Devices;
using Basalt.Fs;
using Basalt.Journal;
using Basalt.Superblocks;

namespace Basalt.Tests.Crash;

internal enum FileOpKind
{
    Creat,
    Mkdir,
    Write,
    Overwrite,
    Grow,
    Fallocate,
    Link,
    Unlink,
    Rename,
    Exchange,
    Symlink,
    SetXattr,
    RemoveXattr,
    Truncate,
    Fsync,
    Fdatasync,
    Sync,
    UnlinkOpen,
    Reflink,
}

internal sealed record FileCrashRecording(
    byte[] BaseImage,
    WriteLog Log,
    IReadOnlyList<string> Captures,
    IReadOnlyList<int> OpBegins,
    IReadOnlyList<(int LogCount, int Ops)> Durable,
    IReadOnlyList<string> OpTexts)
{
    /// <summary>
    /// Operations an fsync/sync had made durable at crash point <paramref name="point"/>: a mark
    /// taken when the log held <c>count</c> writes binds crash points after it (crash point
    /// <c>count</c> itself also stands for the moment before the flush that made them durable).
    /// </summary>
    public int LowerBound(int point)
    {
        var lower = 0;
        foreach (var (count, ops) in Durable)
        {
            if (count < point)
                lower = Math.Max(lower, ops);
        }
        return lower;
    }

    /// <summary>
    /// Operations begun by the crash point: an operation that begins when the log holds
    /// <paramref name="point"/> writes has issued none of its own, yet may have completed without any.
    /// </summary>
    public int UpperBound(int point) => OpBegins.Count(b => b <= point);

    public string Sequence => string.Join(", ", OpTexts);
}

internal static class FileCrashWorkload
{
    internal static readonly FormatOptions Geometry = new()
    {
        BlockSize = 4096,
        BucketSize = 16 * 1024,
        NodeSize = 4096,
        Uuid = new Guid("7a3e1b5c-9d2f-4e8a-b6c1-0f4d2e9a8b73"),
    };

    private const long DeviceSize = 2 * 1024 * 1024;

    internal static MountOptions Mount(bool readOnly = false) => new()
    {
        ReadOnly = readOnly,
        Atime = AtimeMode.Noatime,
        Journal = new JournalOptions { Manual = true },
        Space = new SpaceOptions { BackgroundWorker = false },
    };

    private static readonly Lazy<byte[]> s_base = new(BuildBase);

    /// <summary>Two directories with two files each, one with an xattr, cleanly unmounted.</summary>
    private static byte[] BuildBase()
    {
        using var device = new MemoryBlockDevice(DeviceSize, "base.img");
        using (var fs = BasaltFileSystem.Format(device, Geometry, Mount()))
        {
            var f = fs.Files;
            var random = new Random(1);
            foreach (var dirName in new[] { "A", "B" })
            {
                var dir = f.Mkdir(FsPositions.RootIno, Encoding.UTF8.GetBytes(dirName), 0x1ED);
                foreach (var (name, size) in new[] { ("foo", dirName == "A" ? 8192 : 20_000), ("bar", dirName == "A" ? 3000 : 0) })
                {
                    var file = f.Create(dir.Ino, Encoding.UTF8.GetBytes(name), 0x1A4);
                    var data = new byte[size];
                    random.NextBytes(data);
                    f.Write(file.Ino, 0, data);
                }
            }
            f.SetXattr(f.ResolvePath("/A/foo").Ino, "user.base"u8, "kept"u8);
            fs.Sync();
        }
        return device.Contents.ToArray();
    }

    public static FileCrashRecording Record(IReadOnlyList<FileOpKind> ops, int seed, FilesDebugFault fault = FilesDebugFault.None)
    {
        var baseImage = s_base.Value;
        using var memory = new MemoryBlockDevice(baseImage, "crash.img");
        using var recorder = new RecordingBlockDevice(memory);
        var log = recorder.Log;
        var captures = new List<string>();
        var begins = new List<int>();
        var durable = new List<(int, int)>();
        var texts = new List<string>();
        var random = new Random(seed);
        var fs = BasaltFileSystem.Mount(recorder, Mount());
        fs.Files.DebugFault = fault;
        try
        {
            captures.Add(Capture(fs.Files));
            for (var i = 0; i < ops.Count; i++)
            {
                begins.Add(log.Count);
                var (text, persistence) = Apply(fs, ops[i], random);
                texts.Add(text);
                captures.Add(Capture(fs.Files));
                if (persistence)
                    durable.Add((log.Count, i + 1));
                // Some of the journal and write-back work a background thread would do between operations.
                switch (random.Next(4))
                {
                    case 0:
                        fs.Journal.Step(flush: false);
                        break;
                    case 1:
                        fs.Btrees.WriteBack(null, maxNodes: 1 + random.Next(4));
                        break;
                }
            }
            fs.Dispose();
            durable.Add((log.Count, ops.Count));
        }
        catch
        {
            fs.Close(sync: false);
            throw;
        }
        return new FileCrashRecording(baseImage, log, captures, begins, durable, texts);
    }

    private static (string Text, bool Persistence) Apply(BasaltFileSystem fs, FileOpKind kind, Random random)
    {
        var f = fs.Files;
        var files = Paths(f, FileType.Regular);
        var dirs = Paths(f, FileType.Directory).Where(p => p != "/lost+found").ToList();
        string Pick(List<string> list) => list[random.Next(list.Count)];
        byte[] Bytes(int n)
        {
            var b = new byte[n];
            random.NextBytes(b);
            return b;
        }
        ulong Ino(string path) => f.ResolvePath(path, followLast: false).Ino;
        (ulong Dir, byte[] Name) Parent(string path)
        {
            var (parent, name) = f.ResolveParent(Encoding.UTF8.GetBytes(path));
            return (parent.Ino, name);
        }
        string Join(string dir, string name) => dir == "/" ? "/" + name : dir + "/" + name;
        var suffix = random.Next(1000);
        if (files.Count == 0 && kind is not (FileOpKind.Creat or FileOpKind.Mkdir or FileOpKind.Symlink or FileOpKind.Sync))
            kind = FileOpKind.Creat;
        switch (kind)
        {
            case FileOpKind.Creat:
            {
                var path = Join(Pick(dirs), $"new{suffix}");
                var (dir, name) = Parent(path);
                var file = f.Create(dir, name, 0x1A4);
                if (random.Next(2) == 0)
                    f.Write(file.Ino, 0, Bytes(1 + random.Next(6000)));
                return ($"creat {path}", false);
            }
            case FileOpKind.Mkdir:
            {
                var path = Join(Pick(dirs), $"dir{suffix}");
                var (dir, name) = Parent(path);
                f.Mkdir(dir, name, 0x1ED);
                return ($"mkdir {path}", false);
            }
            case FileOpKind.Write:
            {
                var path = Pick(files);
                var ino = Ino(path);
                var n = 1 + random.Next(12_000);
                f.Write(ino, (long)f.GetAttr(ino).Size, Bytes(n));
                return ($"append {n} to {path}", false);
            }
            case FileOpKind.Overwrite:
            {
                var path = Pick(files);
                var ino = Ino(path);
                var size = (int)f.GetAttr(ino).Size;
                var offset = random.Next(Math.Max(1, size));
                var n = 1 + random.Next(8000);
                f.Write(ino, offset, Bytes(n));
                return ($"overwrite {n} at {offset} of {path}", false);
            }
            case FileOpKind.Grow:
            {
                var path = Pick(files);
                var ino = Ino(path);
                var size = (long)f.GetAttr(ino).Size + 1 + random.Next(64 * 1024);
                f.Truncate(ino, size);
                return ($"grow {path} to {size}", false);
            }
            case FileOpKind.Fallocate:
            {
                var path = Pick(files);
                var ino = Ino(path);
                var size = (int)f.GetAttr(ino).Size;
                var flags = random.Next(4) switch
                {
                    0 => FallocateFlags.None,
                    1 => FallocateFlags.KeepSize,
                    2 => FallocateFlags.PunchHole | FallocateFlags.KeepSize,
                    _ => FallocateFlags.ZeroRange,
                };
                // Whole sectors: each such fallocate of a small file is one transaction.
                var offset = random.Next(size + 4096) / 512 * 512;
                var length = (1 + random.Next(80)) * 512;
                f.Fallocate(ino, flags, offset, length);
                return ($"fallocate {flags} {offset}+{length} {path}", false);
            }
            case FileOpKind.Reflink:
            {
                // A range small enough for one batch: the reflink is one transaction, atomic.
                var from = Pick(files);
                var to = Pick(files);
                var src = Ino(from);
                var dst = Ino(to);
                var srcSize = (long)f.GetAttr(src).Size;
                var dstSize = (long)f.GetAttr(dst).Size;
                var srcOffset = random.Next((int)(srcSize / 512) + 1) * 512L;
                var dstOffset = src == dst ? (srcSize + 511) / 512 * 512 : random.Next((int)((dstSize + 511) / 512) + 1) * 512L;
                var length = srcSize - srcOffset;
                if (length % 512 != 0 && dstOffset + length < dstSize)
                    length = length / 512 * 512; // a tail may only be shared to the destination's end
                if (length == 0)
                    return Apply(fs, FileOpKind.Sync, random);
                f.Reflink(src, srcOffset, dst, dstOffset, length);
                return ($"reflink {from} {srcOffset}+{length} to {to} at {dstOffset}", false);
            }
            case FileOpKind.Truncate:
            {
                var path = Pick(files);
                var ino = Ino(path);
                var size = random.Next((int)f.GetAttr(ino).Size + 1);
                f.Truncate(ino, size);
                return ($"truncate {path} to {size}", false);
            }
            case FileOpKind.Link:
            {
                var path = Pick(files);
                var to = Join(Pick(dirs), $"link{suffix}");
                var (dir, name) = Parent(to);
                f.Link(Ino(path), dir, name);
                return ($"link {path} {to}", false);
            }
            case FileOpKind.Unlink:
            case FileOpKind.UnlinkOpen:
            {
                var path = Pick(files);
                var (dir, name) = Parent(path);
                var ino = Ino(path);
                if (kind == FileOpKind.UnlinkOpen)
                    f.Open(ino);
                f.Unlink(dir, name);
                return ($"{(kind == FileOpKind.UnlinkOpen ? "unlink (open)" : "unlink")} {path}", false);
            }
            case FileOpKind.Rename:
            {
                var candidates = files.Concat(dirs.Where(d => d != "/")).ToList();
                var path = Pick(candidates);
                var isDir = dirs.Contains(path);
                var targetDirs = dirs.Where(d => !isDir || (d != path && !d.StartsWith(path + "/", StringComparison.Ordinal))).ToList();
                string to;
                if (!isDir && random.Next(2) == 0 && files.Count > 1)
                    to = Pick(files.Where(p => p != path).ToList()); // over an existing file
                else
                    to = Join(Pick(targetDirs), $"ren{suffix}");
                var (fromDir, fromName) = Parent(path);
                var (toDir, toName) = Parent(to);
                f.Rename(fromDir, fromName, toDir, toName);
                return ($"rename {path} {to}", false);
            }
            case FileOpKind.Exchange:
            {
                string a, b;
                if (files.Count >= 2 && random.Next(3) > 0)
                {
                    a = Pick(files);
                    b = Pick(files.Where(p => p != a).ToList());
                }
                else
                {
                    (a, b) = ("/A", "/B");
                    if (!dirs.Contains(a) || !dirs.Contains(b))
                        return Apply(fs, FileOpKind.Sync, random);
                }
                var (aDir, aName) = Parent(a);
                var (bDir, bName) = Parent(b);
                f.Rename(aDir, aName, bDir, bName, RenameFlags.Exchange);
                return ($"exchange {a} {b}", false);
            }
            case FileOpKind.Symlink:
            {
                var path = Join(Pick(dirs), $"sym{suffix}");
                var (dir, name) = Parent(path);
                f.Symlink(dir, name, Encoding.UTF8.GetBytes($"../target/{suffix}"));
                return ($"symlink {path}", false);
            }
            case FileOpKind.SetXattr:
            {
                var path = Pick(files.Concat(dirs).ToList());
                var name = $"user.x{random.Next(3)}";
                f.SetXattr(Ino(path), Encoding.UTF8.GetBytes(name), Bytes(random.Next(200)));
                return ($"setxattr {path} {name}", false);
            }
            case FileOpKind.RemoveXattr:
            {
                foreach (var path in files.Concat(dirs))
                {
                    var names = f.ListXattrs(Ino(path));
                    if (names.Count > 0)
                    {
                        f.RemoveXattr(Ino(path), names[0]);
                        return ($"removexattr {path} {Encoding.UTF8.GetString(names[0])}", false);
                    }
                }
                return Apply(fs, FileOpKind.SetXattr, random);
            }
            case FileOpKind.Fsync:
            case FileOpKind.Fdatasync:
            {
                var path = Pick(files);
                f.Fsync(Ino(path));
                return ($"{(kind == FileOpKind.Fsync ? "fsync" : "fdatasync")} {path}", true);
            }
            case FileOpKind.Sync:
                fs.Sync();
                return ("sync", true);
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    private static List<string> Paths(Files f, FileType type)
    {
        var list = new List<string>();
        void Walk(ulong dir, string path)
        {
            if (type == FileType.Directory)
                list.Add(path);
            foreach (var e in f.ReadDir(dir, 0, int.MaxValue))
            {
                if (Names.IsDot(e.Name) || Names.IsDotDot(e.Name))
                    continue;
                var child = (path == "/" ? "/" : path + "/") + Encoding.UTF8.GetString(e.Name);
                if (e.Type == FileType.Directory)
                    Walk(e.Ino, child);
                else if (e.Type == type)
                    list.Add(child);
            }
        }
        Walk(FsPositions.RootIno, "/");
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    /// <summary>The whole tree as text: what a crash state must match exactly.</summary>
    public static string Capture(Files f)
    {
        var sb = new StringBuilder();
        void Walk(ulong ino, string path)
        {
            var a = f.GetAttr(ino);
            var i = a.Inode;
            sb.Append(path).Append(' ').Append(ino).Append(' ').Append(a.Type).Append(' ')
                .Append(Convert.ToString(i.Mode, 8)).Append(" nlink ").Append(i.Nlink).Append(" size ").Append(i.Size)
                .Append(" mtime ").Append(i.MtimeNs);
            if (a.Type == FileType.Regular)
            {
                var data = new byte[a.Size];
                f.Read(ino, 0, data);
                sb.Append(" data ").Append(XxHash64.HashToUInt64(data).ToString("x16", System.Globalization.CultureInfo.InvariantCulture));
            }
            else if (a.Type == FileType.Symlink)
            {
                sb.Append(" -> ").Append(Encoding.UTF8.GetString(f.ReadLink(ino)));
            }
            foreach (var name in f.ListXattrs(ino).Select(Encoding.UTF8.GetString).Order(StringComparer.Ordinal))
            {
                sb.Append(" xattr ").Append(name).Append('=')
                    .Append(XxHash64.HashToUInt64(f.GetXattr(ino, Encoding.UTF8.GetBytes(name))).ToString("x16", System.Globalization.CultureInfo.InvariantCulture));
            }
            sb.Append('\n');
            if (a.Type != FileType.Directory)
                return;
            var entries = f.ReadDir(ino, 0, int.MaxValue)
                .Where(e => !Names.IsDot(e.Name) && !Names.IsDotDot(e.Name))
                .OrderBy(e => Encoding.UTF8.GetString(e.Name), StringComparer.Ordinal);
            foreach (var e in entries)
                Walk(e.Ino, (path == "/" ? "/" : path + "/") + Encoding.UTF8.GetString(e.Name));
        }
        Walk(FsPositions.RootIno, "/");
        return sb.ToString();
    }
}
