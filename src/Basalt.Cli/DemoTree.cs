// The demo's sample tree: a local directory made from a seed, and the model of it the demo checks
// the image against. Two parts, copied by separate `basalt put` children: part A (a/) is copied to
// the end and unmounted cleanly, so every byte of it is synced; part B (b/) is the copy the demo
// kills, larger files so that the kill lands mid-copy. Part A holds one of each kind the copy
// keeps: small and medium files, a sparse file, a symlink, a hard link, an xattr (when the local
// filesystem takes user xattrs), nested directories with varied modes.
//
// What the demo may expect of a killed copy: names appear atomically (a name is there with its
// inode or not at all) and a file's data is written in order with its size in the same
// transaction, so every file of B in the image is complete or a prefix of its contents.
using System.Text;
using Basalt.Cli.Local;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;

namespace Basalt.Cli;

internal enum DemoEntryKind : byte
{
    Directory,
    File,
    Symlink,
    HardLink,
}

/// <summary>
/// One entry of the sample tree. <paramref name="Path"/> is relative ("a/d1/f0003") and is also the
/// image path below "/"; <paramref name="Data"/> is a file's whole contents (zeros in its holes) or a
/// symlink's target; <paramref name="LinkOf"/> the path a hard link shares its inode with.
/// </summary>
internal sealed record DemoEntry(string Path, DemoEntryKind Kind, uint Permissions, byte[] Data, string? LinkOf = null)
{
    public string Parent => Path[..Math.Max(0, Path.LastIndexOf('/'))];

    public string Name => Path[(Path.LastIndexOf('/') + 1)..];

    public bool IsFileData => Kind is DemoEntryKind.File or DemoEntryKind.HardLink;
}

/// <summary>How the entries of a part stand in the image.</summary>
internal sealed record DemoPartState(int Complete, int Partial, int Absent, List<string> Problems);

internal sealed class DemoTree
{
    public const string XattrName = "user.basalt.demo";
    private const int SparseHole = 3 << 20;
    private static readonly uint[] s_fileModes = [0b110_100_100, 0b110_000_000, 0b110_100_000, 0b111_101_101];

    private DemoTree(string root) => Root = root;

    /// <summary>The local directory holding a/ and b/.</summary>
    public string Root { get; }

    public List<DemoEntry> A { get; } = [];

    public List<DemoEntry> B { get; } = [];

    /// <summary>The xattr set on the first file of A, or null when the local filesystem refused it.</summary>
    public (string Path, byte[] Value)? Xattr { get; private set; }

    public string? XattrRefused { get; private set; }

    public long Bytes(List<DemoEntry> part) => part.Where(e => e.Kind == DemoEntryKind.File).Sum(e => (long)e.Data.Length);

    public int Count(List<DemoEntry> part, DemoEntryKind kind) => part.Count(e => e.Kind == kind);

    /// <summary>Makes the tree under <paramref name="root"/>: <paramref name="files"/> regular files in all, two fifths in A.</summary>
    public static DemoTree Generate(string root, int files, int seed)
    {
        var tree = new DemoTree(root);
        var random = new Random(seed);
        var filesA = Math.Max(8, files * 2 / 5);
        tree.AddPart(tree.A, "a", filesA, random, small: true);
        tree.AddPart(tree.B, "b", files - filesA, random, small: false);

        var first = tree.A.First(e => e.Kind == DemoEntryKind.File);
        var sparse = new byte[SparseHole + 65536];
        random.NextBytes(sparse.AsSpan(0, 65536));
        random.NextBytes(sparse.AsSpan(SparseHole));
        tree.A.Add(new DemoEntry("a/sparse.img", DemoEntryKind.File, 0b110_100_100, sparse));
        tree.A.Add(new DemoEntry("a/latest", DemoEntryKind.Symlink, 0b111_111_111, Encoding.UTF8.GetBytes(first.Path[2..])));
        tree.A.Add(new DemoEntry("a/d1/hard-link", DemoEntryKind.HardLink, first.Permissions, first.Data, first.Path));
        tree.Write();
        return tree;
    }

    private void AddPart(List<DemoEntry> part, string top, int files, Random random, bool small)
    {
        var directories = new List<string> { top };
        for (var d = 0; d < 4; d++)
        {
            directories.Add($"{top}/d{d}");
            for (var e = 0; e < 2; e++)
                directories.Add($"{top}/d{d}/e{e}");
        }
        foreach (var dir in directories)
            part.Add(new DemoEntry(dir, DemoEntryKind.Directory, random.Next(4) == 0 ? 0b111_101_000u : 0b111_101_101u, []));
        for (var i = 0; i < files; i++)
        {
            // A: mostly small files, one in five medium; B: medium files, so that its copy takes a while.
            var size = small
                ? (random.Next(5) == 0 ? 16384 + random.Next(180_000) : random.Next(8192))
                : 32768 + random.Next(224_000);
            var data = new byte[size];
            random.NextBytes(data);
            var dir = directories[1 + random.Next(directories.Count - 1)];
            part.Add(new DemoEntry($"{dir}/f{i:D4}", DemoEntryKind.File, s_fileModes[random.Next(s_fileModes.Length)], data));
        }
    }

    private string Local(string path) => System.IO.Path.Combine(Root, path);

    private static byte[] Bytes(string path) => Encoding.UTF8.GetBytes(path);

    private void Write()
    {
        foreach (var e in A.Concat(B))
        {
            var local = Local(e.Path);
            switch (e.Kind)
            {
                case DemoEntryKind.Directory:
                    Directory.CreateDirectory(local);
                    break;
                case DemoEntryKind.File when e.Path == "a/sparse.img":
                    using (var fd = LocalFs.CreateFile(LocalFd.CurrentDirectory, Bytes(local), e.Permissions))
                    {
                        LocalFs.WriteAt(fd, e.Data.AsSpan(0, 65536), 0);
                        LocalFs.WriteAt(fd, e.Data.AsSpan(SparseHole), SparseHole);
                    }
                    break;
                case DemoEntryKind.File:
                    File.WriteAllBytes(local, e.Data);
                    break;
                case DemoEntryKind.Symlink:
                    LocalFs.CreateSymlink(LocalFd.CurrentDirectory, Bytes(local), e.Data);
                    break;
                case DemoEntryKind.HardLink:
                    LocalFs.CreateHardLink(LocalFd.CurrentDirectory, Bytes(Local(e.LinkOf!)), LocalFd.CurrentDirectory, Bytes(local));
                    break;
            }
        }
        // Modes last, deepest first: a directory without write permission still takes its entries.
        foreach (var e in A.Concat(B).Where(e => e.Kind is DemoEntryKind.File or DemoEntryKind.Directory).Reverse())
            LocalFs.SetMode(LocalFd.CurrentDirectory, Bytes(Local(e.Path)), e.Permissions);

        var first = A.First(e => e.Kind == DemoEntryKind.File);
        var value = Encoding.UTF8.GetBytes($"{first.Path}: {first.Data.Length} bytes");
        try
        {
            LocalFs.SetXattr(LocalFd.CurrentDirectory, Bytes(Local(first.Path)), Encoding.UTF8.GetBytes(XattrName), value);
            Xattr = (first.Path, value);
        }
        catch (LocalFsException e)
        {
            XattrRefused = CliContext.OneLine(e.Message);
        }
    }

    /// <summary>Gives every directory owner write permission again, so the tree can be deleted.</summary>
    public void Delete()
    {
        foreach (var e in A.Concat(B).Where(e => e.Kind == DemoEntryKind.Directory))
            LocalFs.SetMode(LocalFd.CurrentDirectory, Bytes(Local(e.Path)), 0b111_101_101);
        Directory.Delete(Root, recursive: true);
    }

    /// <summary>The inode of every path of A in the image (followed for nothing), and its dirent's position.</summary>
    public static Dictionary<string, (ulong Ino, Bpos Dirent)> Inodes(Files files, List<DemoEntry> part)
    {
        var map = new Dictionary<string, (ulong Ino, Bpos Dirent)>();
        foreach (var dir in part.Where(e => e.Kind == DemoEntryKind.Directory).Select(e => e.Path).Prepend(""))
        {
            var ino = dir.Length == 0 ? FsPositions.RootIno : map.TryGetValue(dir, out var d) ? d.Ino : 0;
            if (ino == 0)
                continue;
            foreach (var entry in ReadDir(files, ino))
            {
                var path = dir.Length == 0 ? Encoding.UTF8.GetString(entry.Name) : $"{dir}/{Encoding.UTF8.GetString(entry.Name)}";
                map[path] = (entry.Ino, FsPositions.Slot(ino, (ulong)(entry.Next - 1)));
            }
        }
        return map;
    }

    /// <summary>The names of a directory, without "." and "..".</summary>
    public static List<DirEntry> ReadDir(Files files, ulong dir)
    {
        var all = new List<DirEntry>();
        long cookie = 0;
        while (true)
        {
            var batch = files.ReadDir(dir, cookie);
            if (batch.Count == 0)
                return all;
            all.AddRange(batch.Where(e => !e.Name.AsSpan().SequenceEqual("."u8) && !e.Name.AsSpan().SequenceEqual(".."u8)));
            cookie = batch[^1].Next;
        }
    }

    /// <summary>
    /// Checks a part that was synced: every entry at its path with its type, mode, size, contents,
    /// symlink target, link structure and xattr, and every directory holding exactly its names.
    /// </summary>
    public List<string> VerifySynced(Files files, List<DemoEntry> part)
    {
        var problems = new List<string>();
        var inodes = new Dictionary<string, ulong>();
        foreach (var e in part)
        {
            if (!files.TryResolvePath(Bytes("/" + e.Path), followLast: false, out var attr, out var error))
            {
                problems.Add($"/{e.Path}: missing ({error?.Message})");
                continue;
            }
            inodes[e.Path] = attr.Ino;
            if (Check(files, e, attr) is { } problem)
                problems.Add($"/{e.Path}: {problem}");
            if (e.Kind == DemoEntryKind.Directory)
            {
                var expected = part.Where(c => c.Parent == e.Path).Select(c => c.Name).Order(StringComparer.Ordinal);
                var actual = ReadDir(files, attr.Ino).Select(c => Encoding.UTF8.GetString(c.Name)).Order(StringComparer.Ordinal);
                if (!expected.SequenceEqual(actual))
                    problems.Add($"/{e.Path}: holds other names than the local directory");
            }
            if (e.Kind == DemoEntryKind.HardLink && (!inodes.TryGetValue(e.LinkOf!, out var other) || other != attr.Ino || attr.Nlink != 2))
                problems.Add($"/{e.Path}: not a second link of /{e.LinkOf} (inode {attr.Ino}, {attr.Nlink} links)");
            if (Xattr is { } x && x.Path == e.Path && (!files.TryGetXattr(attr.Ino, Bytes(XattrName), out var value) || !value.AsSpan().SequenceEqual(x.Value)))
                problems.Add($"/{e.Path}: xattr {XattrName} missing or different");
        }
        return problems;
    }

    /// <summary>What is wrong with <paramref name="attr"/> as the copy of <paramref name="e"/>, or null.</summary>
    public static string? Check(Files files, DemoEntry e, InodeAttr attr)
    {
        switch (e.Kind)
        {
            case DemoEntryKind.Directory:
                return !attr.IsDirectory ? $"a {attr.Type}, not a directory"
                    : (attr.Mode & 0xFFF) != e.Permissions ? $"mode {Convert.ToString(attr.Mode & 0xFFF, 8)}, not {Convert.ToString(e.Permissions, 8)}"
                    : null;
            case DemoEntryKind.Symlink:
                return attr.Type != FileType.Symlink ? $"a {attr.Type}, not a symlink"
                    : !files.ReadLink(attr.Ino).AsSpan().SequenceEqual(e.Data) ? "another symlink target"
                    : null;
            default:
                if (attr.Type != FileType.Regular)
                    return $"a {attr.Type}, not a regular file";
                if ((attr.Mode & 0xFFF) != e.Permissions)
                    return $"mode {Convert.ToString(attr.Mode & 0xFFF, 8)}, not {Convert.ToString(e.Permissions, 8)}";
                if ((long)attr.Size != e.Data.Length)
                    return $"{attr.Size} bytes, not {e.Data.Length}";
                return ReadsAs(files, attr.Ino, e.Data) ? null : "other contents";
        }
    }

    /// <summary>True when the file holds exactly <paramref name="expected"/> (its size is checked by the caller).</summary>
    public static bool ReadsAs(Files files, ulong ino, ReadOnlySpan<byte> expected)
    {
        var buffer = new byte[Math.Min(1 << 20, Math.Max(1, expected.Length))];
        for (var at = 0; at < expected.Length;)
        {
            var read = files.Read(ino, at, buffer.AsSpan(0, Math.Min(buffer.Length, expected.Length - at)));
            if (read <= 0 || !buffer.AsSpan(0, read).SequenceEqual(expected.Slice(at, read)))
                return false;
            at += read;
        }
        return true;
    }

    /// <summary>
    /// Checks a part whose copy was killed: each entry is complete, a prefix of itself (a file no
    /// larger than the original whose bytes are the original's first ones; a directory whose names
    /// are all names of the part) or absent; any other state is a problem.
    /// </summary>
    public DemoPartState VerifyPrefix(Files files, List<DemoEntry> part)
    {
        int complete = 0, partial = 0, absent = 0;
        var problems = new List<string>();
        foreach (var e in part.Where(e => e.Kind == DemoEntryKind.File))
        {
            if (!files.TryResolvePath(Bytes("/" + e.Path), followLast: false, out var attr, out _))
            {
                absent++;
                continue;
            }
            if (attr.Type != FileType.Regular || (long)attr.Size > e.Data.Length)
            {
                problems.Add($"/{e.Path}: {attr.Type} of {attr.Size} bytes, the original has {e.Data.Length}");
                continue;
            }
            if (!ReadsAs(files, attr.Ino, e.Data.AsSpan(0, (int)attr.Size)))
            {
                problems.Add($"/{e.Path}: its {attr.Size} bytes are not the original's first {attr.Size}");
                continue;
            }
            if ((long)attr.Size == e.Data.Length)
                complete++;
            else
                partial++;
        }
        foreach (var dir in part.Where(e => e.Kind == DemoEntryKind.Directory))
        {
            if (!files.TryResolvePath(Bytes("/" + dir.Path), followLast: false, out var attr, out _))
                continue;
            if (!attr.IsDirectory)
            {
                problems.Add($"/{dir.Path}: a {attr.Type}, not a directory");
                continue;
            }
            var known = part.Where(c => c.Parent == dir.Path).Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var name in ReadDir(files, attr.Ino).Select(c => Encoding.UTF8.GetString(c.Name)).Where(n => !known.Contains(n)))
                problems.Add($"/{dir.Path}/{name}: a name the local tree does not have");
        }
        return new DemoPartState(complete, partial, absent, problems);
    }

    /// <summary>Every inode below lost+found, with the path it has there.</summary>
    public static Dictionary<ulong, string> LostAndFound(Files files)
    {
        var found = new Dictionary<ulong, string>();
        if (!files.TryResolvePath("/lost+found"u8, followLast: false, out var lf, out _) || !lf.IsDirectory)
            return found;
        var pending = new Stack<(ulong Ino, string Path)>([(lf.Ino, "/lost+found")]);
        while (pending.TryPop(out var dir))
        {
            foreach (var entry in ReadDir(files, dir.Ino))
            {
                var path = $"{dir.Path}/{Encoding.UTF8.GetString(entry.Name)}";
                if (found.TryAdd(entry.Ino, path) && entry.Type == FileType.Directory)
                    pending.Push((entry.Ino, path));
            }
        }
        return found;
    }
}
