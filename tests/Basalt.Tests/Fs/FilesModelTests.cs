using System.Text;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Fs;
using Basalt.Fsck.Space;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Fs;

/// <summary>
/// Random file operations against an in-memory model of the tree, with remounts and crashes:
/// every name, type, link count, size, byte, symlink target and xattr is compared after each
/// phase, errors must be the model's (as errno), a crash (every write since the last device flush
/// lost) after a sync and a tail of operations recovers the tree after some operation of that
/// tail, and the space and file checks find nothing at the end.
/// </summary>
public sealed class FilesModelTests(ITestOutputHelper output)
{
    private sealed class Node
    {
        public FileType Type;
        public byte[] Data = [];
        public readonly SortedDictionary<string, ulong> Children = new(StringComparer.Ordinal);
        public readonly SortedDictionary<string, byte[]> Xattrs = new(StringComparer.Ordinal);
        public ulong Parent;
    }

    private static readonly byte[][] s_namePool =
    [
        "a"u8.ToArray(), "b"u8.ToArray(), "c"u8.ToArray(), "dir"u8.ToArray(), "file.txt"u8.ToArray(), [0x66, 0xFF, 0x6F],
        "ünï"u8.ToArray(), Enumerable.Repeat((byte)'x', 255).ToArray(), "e"u8.ToArray(), "f"u8.ToArray(),
    ];

    private static string Key(byte[] name) => Convert.ToHexString(name);

    private static byte[] NameOf(string key) => Convert.FromHexString(key);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Random_operations_match_the_model_across_remounts(bool collide)
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        using var device = new VolatileCacheDevice(64 * 1024 * 1024);
        var model = new Dictionary<ulong, Node>
        {
            [FsPositions.RootIno] = new() { Type = FileType.Directory, Parent = FsPositions.RootIno },
            [FsPositions.LostAndFoundIno] = new() { Type = FileType.Directory, Parent = FsPositions.RootIno },
        };
        model[FsPositions.RootIno].Children[Key("lost+found"u8.ToArray())] = FsPositions.LostAndFoundIno;
        Names.CollideForTests = collide ? 7UL : 0;
        try
        {
            var fs = BasaltFileSystem.Format(device, FilesTests.Geometry);
            try
            {
                for (var phase = 0; phase < 4; phase++)
                {
                    for (var op = 0; op < 250; op++)
                        Step(fs.Files, model, random, $"seed {seed} phase {phase} op {op}");
                    Verify(fs.Files, model, $"seed {seed} after phase {phase}");
                    if (phase % 2 == 1)
                    {
                        fs = CrashAfterATail(fs, device, model, random, $"seed {seed} crash after phase {phase}", out var tail, out var kept);
                        output.WriteLine($"crash after phase {phase}: {kept} of a tail of {tail} operations survived");
                        continue;
                    }
                    fs.Dispose();
                    fs = BasaltFileSystem.Mount(device, new MountOptions());
                    Verify(fs.Files, model, $"seed {seed} after remount {phase}");
                }
                Assert.Empty(fs.Files.Orphans());
                SpaceChecks.Run(fs, repair: false, out var findings);
                Assert.True(findings.Count == 0, $"seed {seed}: " + string.Join("; ", findings.Select(f => f.ToString())));
                Basalt.Fsck.Files.FileChecks.Run(fs, repair: false, out findings);
                Assert.True(findings.Count == 0, $"seed {seed}: " + string.Join("; ", findings.Select(f => f.ToString())));
            }
            finally
            {
                fs.Dispose();
            }
        }
        finally
        {
            Names.CollideForTests = 0;
        }
    }

    /// <summary>
    /// Syncs, runs a tail of up to 15 operations with an fsync somewhere in it, then crashes (every
    /// write since the last device flush is lost) and mounts again: the tree must be the model's
    /// after some operation of the tail, at least the last one the fsync covered (background
    /// journal flushes may have made more durable).
    /// The model then continues from what was recovered.
    /// </summary>
    private static BasaltFileSystem CrashAfterATail(BasaltFileSystem fs, VolatileCacheDevice device, Dictionary<ulong, Node> model, Random random,
        string where, out int tail, out int k)
    {
        fs.Sync();
        var states = new List<string> { Fingerprint(model) };
        tail = random.Next(16);
        var fsyncAfter = random.Next(tail + 1); // an fsync after this many tail operations makes them durable
        for (var i = 0; i <= tail; i++)
        {
            if (i == fsyncAfter)
                fs.Files.Fsync(FsPositions.RootIno);
            if (i == tail)
                break;
            Step(fs.Files, model, random, $"{where}, tail op {i}");
            states.Add(Fingerprint(model));
        }
        device.Crash();
        fs.Close(sync: false);
        device.Recover();
        fs = BasaltFileSystem.Mount(device, new MountOptions());
        Assert.True(fs.Files.StartProblem is null, $"{where}: {fs.Files.StartProblem}");
        var recovered = Load(fs.Files);
        k = states.LastIndexOf(Fingerprint(recovered)); // operations that changed nothing (errors) leave equal states: the latest is the bound that counts
        Assert.True(k >= 0, $"{where}: the recovered tree is none of the {states.Count} states of the tail\nrecovered:\n{Fingerprint(recovered)}\nsynced:\n{states[0]}");
        Assert.True(k >= fsyncAfter, $"{where}: {k} tail operations survived, but an fsync after {fsyncAfter} of them returned\nrecovered:\n{Fingerprint(recovered)}\nfsynced:\n{states[fsyncAfter]}");
        model.Clear();
        foreach (var (ino, node) in recovered)
            model[ino] = node;
        Verify(fs.Files, model, $"{where}: after recovery to tail op {k}");
        return fs;
    }

    /// <summary>The tree as text: every inode reachable from the root with its type, link count, bytes (hashed), xattrs and names.</summary>
    private static string Fingerprint(Dictionary<ulong, Node> model)
    {
        var sb = new StringBuilder();
        foreach (var (ino, node) in model.OrderBy(kv => kv.Key))
        {
            var links = node.Type == FileType.Directory
                ? 2 + node.Children.Values.Count(c => model[c].Type == FileType.Directory)
                : model.Values.Sum(n => n.Children.Values.Count(c => c == ino));
            sb.Append(ino).Append(' ').Append(node.Type).Append(" nlink ").Append(links).Append(" parent ").Append(node.Type == FileType.Directory ? node.Parent : 0)
                .Append(" data ").Append(node.Data.Length).Append(':').Append(Convert.ToHexString(System.IO.Hashing.XxHash64.Hash(node.Data)));
            foreach (var (name, value) in node.Xattrs)
                sb.Append(' ').Append(name).Append('=').Append(Convert.ToHexString(System.IO.Hashing.XxHash64.Hash(value)));
            foreach (var (name, child) in node.Children)
                sb.Append(' ').Append(name).Append("->").Append(child);
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>The model of what a mounted filesystem holds: every inode reachable from the root.</summary>
    private static Dictionary<ulong, Node> Load(Files f)
    {
        var model = new Dictionary<ulong, Node>();
        var pending = new Queue<(ulong Ino, ulong Parent)>();
        pending.Enqueue((FsPositions.RootIno, FsPositions.RootIno));
        while (pending.TryDequeue(out var item))
        {
            if (model.ContainsKey(item.Ino))
                continue;
            var attr = f.GetAttr(item.Ino);
            var node = new Node { Type = attr.Type, Parent = item.Parent };
            model[item.Ino] = node;
            foreach (var xname in f.ListXattrs(item.Ino))
                node.Xattrs[Encoding.UTF8.GetString(xname)] = f.GetXattr(item.Ino, xname);
            switch (attr.Type)
            {
                case FileType.Regular:
                    node.Data = new byte[attr.Size];
                    f.Read(item.Ino, 0, node.Data);
                    break;
                case FileType.Symlink:
                    node.Data = f.ReadLink(item.Ino);
                    break;
                case FileType.Directory:
                    foreach (var e in f.ReadDir(item.Ino, 0))
                    {
                        if (Names.IsDot(e.Name) || Names.IsDotDot(e.Name))
                            continue;
                        node.Children[Key(e.Name)] = e.Ino;
                        pending.Enqueue((e.Ino, item.Ino));
                    }
                    break;
            }
        }
        return model;
    }

    /// <summary>
    /// A device with a volatile write cache: writes land in the cache and reach the platter only
    /// when a flush covers them. A crash loses what no flush covered; recovery reads the platter.
    /// </summary>
    private sealed class VolatileCacheDevice(long size) : IBlockDevice
    {
        private readonly object _lock = new();
        private readonly byte[] _platter = new byte[size];
        private readonly byte[] _live = new byte[size];
        private readonly List<(long Offset, int Length)> _unflushed = [];
        private bool _crashed;

        public string Name => "volatile.img";

        public long Size => size;

        public bool IsReadOnly => false;

        public void Read(long offset, Span<byte> buffer)
        {
            lock (_lock)
                _live.AsSpan((int)offset, buffer.Length).CopyTo(buffer);
        }

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            lock (_lock)
            {
                if (_crashed)
                    return; // the machine is down: nothing more reaches the device
                data.CopyTo(_live.AsSpan((int)offset));
                _unflushed.Add((offset, data.Length));
            }
        }

        public void Flush()
        {
            lock (_lock)
            {
                if (_crashed)
                    return;
                foreach (var (offset, length) in _unflushed)
                    _live.AsSpan((int)offset, length).CopyTo(_platter.AsSpan((int)offset));
                _unflushed.Clear();
            }
        }

        public void Discard(long offset, long length)
        {
        }

        /// <summary>Power lost: from now on writes and flushes go nowhere.</summary>
        public void Crash()
        {
            lock (_lock)
                _crashed = true;
        }

        /// <summary>Power back: the device holds what reached the platter.</summary>
        public void Recover()
        {
            lock (_lock)
            {
                _platter.CopyTo(_live, 0);
                _unflushed.Clear();
                _crashed = false;
            }
        }

        public void Dispose()
        {
        }
    }

    private static void Step(Files f, Dictionary<ulong, Node> model, Random random, string where)
    {
        var dirs = model.Where(kv => kv.Value.Type == FileType.Directory).Select(kv => kv.Key).OrderBy(x => x).ToList();
        var files = model.Where(kv => kv.Value.Type == FileType.Regular).Select(kv => kv.Key).OrderBy(x => x).ToList();
        var dir = dirs[random.Next(dirs.Count)];
        var name = s_namePool[random.Next(s_namePool.Length)];
        var d = model[dir];
        var exists = d.Children.TryGetValue(Key(name), out var existing);
        switch (random.Next(15))
        {
            case 0 or 1:
            {
                var expected = exists ? Errno.EEXIST : 0;
                var ino = Expect(where, "create", expected, () => f.Create(dir, name, 0x1A4).Ino);
                if (expected == 0)
                {
                    model[ino] = new Node { Type = FileType.Regular, Parent = dir };
                    d.Children[Key(name)] = ino;
                }
                break;
            }
            case 2:
            {
                var expected = exists ? Errno.EEXIST : 0;
                var ino = Expect(where, "mkdir", expected, () => f.Mkdir(dir, name, 0x1ED).Ino);
                if (expected == 0)
                {
                    model[ino] = new Node { Type = FileType.Directory, Parent = dir };
                    d.Children[Key(name)] = ino;
                }
                break;
            }
            case 3 or 4 when files.Count > 0:
            {
                var ino = files[random.Next(files.Count)];
                // A third of the writes stay within the first 1.1 KiB: small files, kept inline up to the limit.
                var small = random.Next(3) == 0;
                var data = new byte[1 + random.Next(small ? 1100 : random.Next(3) == 0 ? 200_000 : 9000)];
                random.NextBytes(data);
                var offset = random.Next(small ? 1100 : 300_000);
                f.Write(ino, offset, data);
                var node = model[ino];
                if (node.Data.Length < offset + data.Length)
                    Array.Resize(ref node.Data, offset + data.Length);
                data.CopyTo(node.Data, offset);
                break;
            }
            case 5 when files.Count > 0:
            {
                var ino = files[random.Next(files.Count)];
                var size = random.Next(3) switch
                {
                    0 => 0,
                    1 => random.Next(1200),
                    _ => random.Next(400_000),
                };
                f.Truncate(ino, size);
                Array.Resize(ref model[ino].Data, size);
                break;
            }
            case 6:
            {
                var expected = !exists ? Errno.ENOENT : model[existing].Type == FileType.Directory ? Errno.EISDIR : 0;
                Expect(where, "unlink", expected, () => { f.Unlink(dir, name); return 0UL; });
                if (expected == 0)
                    RemoveName(model, dir, name);
                break;
            }
            case 7:
            {
                var expected = !exists ? Errno.ENOENT : model[existing].Type != FileType.Directory ? Errno.ENOTDIR
                    : model[existing].Children.Count > 0 ? Errno.ENOTEMPTY : 0;
                if (exists && existing == FsPositions.LostAndFoundIno)
                    break;
                Expect(where, "rmdir", expected, () => { f.Rmdir(dir, name); return 0UL; });
                if (expected == 0)
                    RemoveName(model, dir, name);
                break;
            }
            case 8 or 9:
            {
                var toDir = dirs[random.Next(dirs.Count)];
                var toName = s_namePool[random.Next(s_namePool.Length)];
                var flags = random.Next(4) switch { 0 => RenameFlags.NoReplace, 1 => RenameFlags.Exchange, _ => RenameFlags.None };
                if ((exists && existing == FsPositions.LostAndFoundIno)
                    || (model[toDir].Children.TryGetValue(Key(toName), out var target) && target == FsPositions.LostAndFoundIno))
                {
                    break;
                }
                var expected = ExpectedRename(model, dir, name, toDir, toName, flags);
                Expect(where, $"rename {flags}", expected, () => { f.Rename(dir, name, toDir, toName, flags); return 0UL; });
                if (expected == 0)
                    ApplyRename(model, dir, name, toDir, toName, flags);
                break;
            }
            case 10 when files.Count > 0:
            {
                var ino = files[random.Next(files.Count)];
                var expected = exists ? Errno.EEXIST : 0;
                Expect(where, "link", expected, () => f.Link(ino, dir, name).Ino);
                if (expected == 0)
                    d.Children[Key(name)] = ino;
                break;
            }
            case 11:
            {
                var target = Encoding.UTF8.GetBytes($"target/{random.Next(1000)}/" + new string('t', random.Next(300)));
                var expected = exists ? Errno.EEXIST : 0;
                var ino = Expect(where, "symlink", expected, () => f.Symlink(dir, name, target).Ino);
                if (expected == 0)
                {
                    model[ino] = new Node { Type = FileType.Symlink, Data = target, Parent = dir };
                    d.Children[Key(name)] = ino;
                }
                break;
            }
            case 13 when files.Count > 0:
            {
                var ino = files[random.Next(files.Count)];
                var node = model[ino];
                var flags = random.Next(4) switch
                {
                    0 => FallocateFlags.None,
                    1 => FallocateFlags.KeepSize,
                    2 => FallocateFlags.PunchHole | FallocateFlags.KeepSize,
                    _ => FallocateFlags.ZeroRange,
                };
                var offset = random.Next(node.Data.Length + 20_000);
                var length = 1 + random.Next(random.Next(3) == 0 ? 300_000 : 20_000);
                f.Fallocate(ino, flags, offset, length);
                var end = offset + length;
                var keep = (flags & FallocateFlags.KeepSize) != 0;
                if (!keep && end > node.Data.Length)
                    Array.Resize(ref node.Data, end);
                if ((flags & (FallocateFlags.PunchHole | FallocateFlags.ZeroRange)) != 0 && offset < node.Data.Length)
                    Array.Clear(node.Data, offset, Math.Min(length, node.Data.Length - offset));
                break;
            }
            case 14 when files.Count > 0:
            {
                var src = files[random.Next(files.Count)];
                var dst = random.Next(4) == 0 ? src : files[random.Next(files.Count)];
                Reflink(f, model, random, src, dst, where);
                break;
            }
            case 12:
            {
                var all = model.Keys.OrderBy(x => x).ToList();
                var ino = all[random.Next(all.Count)];
                var xname = $"user.x{random.Next(6)}";
                var node = model[ino];
                if (random.Next(3) == 0)
                {
                    var expected = node.Xattrs.ContainsKey(xname) ? 0 : Errno.ENODATA;
                    Expect(where, "removexattr", expected, () => { f.RemoveXattr(ino, Encoding.UTF8.GetBytes(xname)); return 0UL; });
                    node.Xattrs.Remove(xname);
                }
                else
                {
                    var value = new byte[random.Next(300)];
                    random.NextBytes(value);
                    f.SetXattr(ino, Encoding.UTF8.GetBytes(xname), value);
                    node.Xattrs[xname] = value;
                }
                break;
            }
        }
    }

    /// <summary>A reflink of a random range (or of the whole file), with the errno the rules give.</summary>
    private static void Reflink(Files f, Dictionary<ulong, Node> model, Random random, ulong src, ulong dst, string where)
    {
        var from = model[src].Data;
        var to = model[dst].Data;
        var clone = src != dst && random.Next(4) == 0;
        long srcOffset = clone ? 0 : random.Next(from.Length / 512 + 2) * 512L;
        long dstOffset = clone ? 0 : random.Next(Math.Max(from.Length, to.Length) / 512 + 2) * 512L;
        long length = clone ? 0 : random.Next(3) switch
        {
            0 => 0,
            1 => Math.Max(0, from.Length - srcOffset),
            _ => random.Next(1, 300) * 512L,
        };
        var expected = 0;
        var effective = length == 0 ? from.Length - srcOffset : length;
        if (srcOffset > from.Length || srcOffset + effective > from.Length)
            expected = Errno.EINVAL;
        else if (effective % 512 != 0 && dstOffset + effective < to.Length)
            expected = Errno.EINVAL;
        else if (src == dst && effective > 0 && srcOffset < dstOffset + effective && dstOffset < srcOffset + effective)
            expected = Errno.EINVAL;
        if (clone)
            Expect(where, $"clone {src} -> {dst}", expected, () => { f.CloneFile(src, dst); return 0UL; });
        else
            Expect(where, $"reflink {src}@{srcOffset} -> {dst}@{dstOffset} +{length}", expected, () => { f.Reflink(src, srcOffset, dst, dstOffset, length); return 0UL; });
        if (expected != 0 || effective <= 0)
            return;
        var piece = from.AsSpan((int)srcOffset, (int)effective).ToArray();
        var node = model[dst];
        if (node.Data.Length < dstOffset + effective)
            Array.Resize(ref node.Data, (int)(dstOffset + effective));
        piece.CopyTo(node.Data, (int)dstOffset);
    }

    private static ulong Expect(string where, string op, int expectedErrno, Func<ulong> action)
    {
        try
        {
            var result = action();
            Assert.True(expectedErrno == 0, $"{where}: {op} succeeded, the model expected errno {expectedErrno}");
            return result;
        }
        catch (BasaltException e)
        {
            Assert.True(Errno.Of(e.Code) == expectedErrno, $"{where}: {op} failed with {e.Code} ({e.Message}), the model expected errno {expectedErrno}");
            return 0;
        }
    }

    private static void RemoveName(Dictionary<ulong, Node> model, ulong dir, byte[] name)
    {
        var ino = model[dir].Children[Key(name)];
        model[dir].Children.Remove(Key(name));
        if (!IsLinked(model, ino))
            model.Remove(ino);
    }

    private static bool IsLinked(Dictionary<ulong, Node> model, ulong ino) => model.Values.Any(n => n.Children.ContainsValue(ino));

    private static bool IsUnder(Dictionary<ulong, Node> model, ulong ino, ulong dir)
    {
        for (var at = ino; ; at = model[at].Parent)
        {
            if (at == dir)
                return true;
            if (at == FsPositions.RootIno)
                return false;
        }
    }

    private static int ExpectedRename(Dictionary<ulong, Node> model, ulong fromDir, byte[] from, ulong toDir, byte[] to, RenameFlags flags)
    {
        if (!model[fromDir].Children.TryGetValue(Key(from), out var src))
            return Errno.ENOENT;
        var dstExists = model[toDir].Children.TryGetValue(Key(to), out var dst);
        if (dstExists && flags == RenameFlags.NoReplace)
            return Errno.EEXIST;
        if (!dstExists && flags == RenameFlags.Exchange)
            return Errno.ENOENT;
        if (dstExists && dst == src)
            return 0;
        var srcDir = model[src].Type == FileType.Directory;
        if (srcDir && fromDir != toDir && IsUnder(model, toDir, src))
            return Errno.EINVAL;
        if (flags == RenameFlags.Exchange)
            return dstExists && model[dst].Type == FileType.Directory && fromDir != toDir && IsUnder(model, fromDir, dst) ? Errno.EINVAL : 0;
        if (dstExists)
        {
            var dstDir = model[dst].Type == FileType.Directory;
            if (srcDir && !dstDir)
                return Errno.ENOTDIR;
            if (!srcDir && dstDir)
                return Errno.EISDIR;
            if (dstDir && model[dst].Children.Count > 0)
                return Errno.ENOTEMPTY;
        }
        return 0;
    }

    private static void ApplyRename(Dictionary<ulong, Node> model, ulong fromDir, byte[] from, ulong toDir, byte[] to, RenameFlags flags)
    {
        var src = model[fromDir].Children[Key(from)];
        var dstExists = model[toDir].Children.TryGetValue(Key(to), out var dst);
        if (dstExists && dst == src)
            return;
        if (flags == RenameFlags.Exchange)
        {
            model[fromDir].Children[Key(from)] = dst;
            model[toDir].Children[Key(to)] = src;
            if (model[src].Type == FileType.Directory)
                model[src].Parent = toDir;
            if (model[dst].Type == FileType.Directory)
                model[dst].Parent = fromDir;
            return;
        }
        model[fromDir].Children.Remove(Key(from));
        model[toDir].Children[Key(to)] = src;
        if (model[src].Type == FileType.Directory)
            model[src].Parent = toDir;
        if (dstExists && !IsLinked(model, dst))
            model.Remove(dst);
    }

    private static void Verify(Files f, Dictionary<ulong, Node> model, string where)
    {
        foreach (var (ino, node) in model)
        {
            var attr = f.GetAttr(ino);
            Assert.True(attr.Type == node.Type, $"{where}: inode {ino} is a {attr.Type}, the model says {node.Type}");
            var links = node.Type == FileType.Directory
                ? 2 + node.Children.Values.Count(c => model[c].Type == FileType.Directory)
                : model.Values.Sum(n => n.Children.Values.Count(c => c == ino));
            Assert.True(attr.Nlink == links, $"{where}: inode {ino} has nlink {attr.Nlink}, the model counts {links}");
            if (node.Type == FileType.Directory)
            {
                var listed = new SortedDictionary<string, ulong>(StringComparer.Ordinal);
                long cookie = 0;
                while (true)
                {
                    var batch = f.ReadDir(ino, cookie, 3);
                    if (batch.Count == 0)
                        break;
                    foreach (var e in batch)
                    {
                        if (!Names.IsDot(e.Name) && !Names.IsDotDot(e.Name))
                        {
                            Assert.True(listed.TryAdd(Key(e.Name), e.Ino), $"{where}: readdir of {ino} lists {Names.ToText(e.Name)} twice");
                            Assert.Equal(model[e.Ino].Type, e.Type);
                        }
                        else if (Names.IsDotDot(e.Name))
                        {
                            Assert.True(e.Ino == node.Parent, $"{where}: '..' of {ino} is {e.Ino}, the model says {node.Parent}");
                        }
                        cookie = e.Next;
                    }
                }
                Assert.True(node.Children.SequenceEqual(listed),
                    $"{where}: directory {ino} lists [{string.Join(", ", listed.Keys.Select(k => Names.ToText(NameOf(k))))}], the model [{string.Join(", ", node.Children.Keys.Select(k => Names.ToText(NameOf(k))))}]");
                foreach (var (key, child) in node.Children)
                    Assert.Equal(child, f.Lookup(ino, NameOf(key)).Ino);
            }
            else if (node.Type == FileType.Regular)
            {
                Assert.True(attr.Size == (ulong)node.Data.Length, $"{where}: inode {ino} has size {attr.Size}, the model {node.Data.Length}");
                var back = new byte[node.Data.Length + 10];
                var n = f.Read(ino, 0, back);
                Assert.Equal(node.Data.Length, n);
                var diff = back.AsSpan(0, n).CommonPrefixLength(node.Data);
                Assert.True(diff == n, $"{where}: inode {ino} differs from the model at byte {diff}");
            }
            else if (node.Type == FileType.Symlink)
            {
                Assert.Equal(node.Data, f.ReadLink(ino));
            }
            var xattrs = f.ListXattrs(ino).Select(Encoding.UTF8.GetString).Order(StringComparer.Ordinal).ToArray();
            Assert.True(node.Xattrs.Keys.SequenceEqual(xattrs), $"{where}: inode {ino} has xattrs [{string.Join(", ", xattrs)}], the model [{string.Join(", ", node.Xattrs.Keys)}]");
            foreach (var (xname, value) in node.Xattrs)
                Assert.Equal(value, f.GetXattr(ino, Encoding.UTF8.GetBytes(xname)));
        }
        Assert.Equal(model.Count, f.Stats().Inodes);
    }
}
