// Names: lookup, path resolution, creating and removing entries, links, rename, readdir.
using System.Runtime.CompilerServices;
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Transactions;

namespace Basalt.Fs;

public sealed partial class Files
{
    private const int MaxSymlinkFollows = 40;

    private static Func<byte[], bool> NameIs(byte[] name) => value => DirentValue.NameOf(value).SequenceEqual(name);

    private static ProbeResult FindDirent(RangeReader read, ulong dir, in InodeValue dirInode, byte[] name) =>
        HashedSlots.Find(read, dir, Names.SlotOf(dirInode.HashSeed, name), KeyType.Dirent, NameIs(name));

    private static DirentValue DecodeDirent(ulong dir, byte[] value)
    {
        if (!DirentValue.TryRead(value, out var dirent, out var problem))
            BasaltException.Throw(ErrorCode.IoError, $"a dirent of directory {dir} is damaged ({problem}); run fsck");
        return dirent;
    }

    // ---- Lookup ---------------------------------------------------------------------------------

    /// <summary>Looks <paramref name="name"/> up in directory <paramref name="dir"/> ("." and ".." included).</summary>
    [SkipLocalsInit] // the buffer is read only where a lookup copied a value into it
    public bool TryLookup(ulong dir, ReadOnlySpan<byte> name, out InodeAttr attr)
    {
        var cache = _dentries;
        var cacheable = cache is not null && DentryCache.Holds(name) && !Names.IsDot(name) && !Names.IsDotDot(name);
        ulong hash = 0;
        long stamp = 0;
        if (cacheable)
        {
            hash = DentryCache.Hash(dir, name);
            // A cached name needs only its target's inode; a target gone (damage) takes the long way.
            if (cache!.TryGet(hash, dir, name, out var cached) && TryGetInode(cached, out var inode))
            {
                attr = new InodeAttr(cached, inode);
                return true;
            }
            stamp = cache.Stamp;
        }
        Span<byte> buffer = stackalloc byte[LookupOp.BufferSize];
        var op = new LookupOp(Inodes, _engine[BtreeId.Dirents], dir, name, buffer);
        (var outcome, attr) = _engine.Run<LookupOp, (LookupOutcome, InodeAttr)>(ref op, LockMode.Read);
        switch (outcome)
        {
            case LookupOutcome.Found:
                if (cacheable)
                {
                    BeforeLookupCaches?.Invoke();
                    cache!.Add(stamp, hash, dir, name, attr.Ino);
                }
                return true;
            case LookupOutcome.NoDirectory:
                BasaltException.Throw(ErrorCode.FileNotFound, $"directory {dir} does not exist");
                break;
            case LookupOutcome.NotDirectory:
                BasaltException.Throw(ErrorCode.NotDirectory, $"inode {dir} is not a directory");
                break;
            case LookupOutcome.NameTooLong:
                BasaltException.Throw(ErrorCode.NameTooLong, $"name of {name.Length} bytes (at most {Names.MaxLength})");
                break;
        }
        return false;
    }

    /// <summary>A name that now exists, as the kernel instantiates a dentry on create: looked up next, it is a cache hit.</summary>
    private void Cache(long stamp, ulong dir, byte[] name, ulong ino) =>
        _dentries?.Add(stamp, DentryCache.Hash(dir, name), dir, name, ino);

    /// <summary>Tests: runs after a lookup found a name in the btrees and before it caches it.</summary>
    internal Action? BeforeLookupCaches { get; set; }

    private enum LookupOutcome : byte
    {
        Found,
        /// <summary>No such name (or a name no entry can have).</summary>
        Absent,
        NoDirectory,
        NotDirectory,
        NameTooLong,
    }

    /// <summary>
    /// A lookup as one engine operation: the directory's inode (its hash seed, and whether it is a
    /// live directory), the probe of the name's slots and the target's inode are read under one hold
    /// of the engine's read lock, so they are one version of the namespace (a concurrent rename or
    /// rmdir is seen wholly or not at all), and the lock is taken once instead of three times. A node
    /// miss restarts the whole lookup. Values are copied into the caller's stack buffer: nothing is
    /// allocated.
    /// </summary>
    private ref struct LookupOp(Btree.Btree inodes, Btree.Btree dirents, ulong dir, ReadOnlySpan<byte> name, Span<byte> buffer)
        : IEngineOp<(LookupOutcome Outcome, InodeAttr Attr)>
    {
        /// <summary>Holds any dirent value with a valid name, and an inode.</summary>
        public const int BufferSize = DirentValue.HeaderSize + Names.MaxLength;

        private readonly ReadOnlySpan<byte> _name = name;
        private readonly Span<byte> _buffer = buffer;

        public readonly bool TryRun(BtreeEngine engine, out (LookupOutcome Outcome, InodeAttr Attr) result, out Restart restart)
        {
            result = (LookupOutcome.Absent, default);
            restart = default;
            var read = ReadInodeValue(engine, dir, out var dirInode, out var miss);
            if (read == PointRead.Found && dirInode.Nlink != 0)
            {
                if (!dirInode.IsDirectory)
                {
                    result.Outcome = LookupOutcome.NotDirectory;
                    return true;
                }
                if (Names.IsDot(_name))
                {
                    result = (LookupOutcome.Found, new InodeAttr(dir, dirInode));
                    return true;
                }
                if (_name.Length > Names.MaxLength)
                {
                    result.Outcome = LookupOutcome.NameTooLong;
                    return true;
                }
                ulong target;
                if (Names.IsDotDot(_name))
                {
                    target = dir == FsPositions.RootIno ? dir : dirInode.Dir;
                }
                else
                {
                    if (Names.Check(_name) is not null)
                        return true;
                    read = ProbeTarget(engine, dirInode.HashSeed, out target, out miss);
                }
                if (read == PointRead.Found)
                {
                    read = ReadInodeValue(engine, target, out var inode, out miss);
                    if (read == PointRead.Found)
                        result = (LookupOutcome.Found, new InodeAttr(target, inode));
                }
            }
            else if (read != PointRead.Miss)
            {
                result.Outcome = LookupOutcome.NoDirectory;
            }
            if (read != PointRead.Miss)
                return true;
            restart = Restart.ForMiss(miss);
            return false;
        }

        private readonly PointRead ReadInodeValue(BtreeEngine engine, ulong ino, out InodeValue inode, out NodeMiss miss)
        {
            inode = default;
            var read = engine.ReadPoint(inodes, FsPositions.Inode(ino), _buffer, out _, out var length, out miss);
            if (read != PointRead.Found)
                return read;
            if (length > InodeValue.SizeOf)
                BasaltException.Throw(ErrorCode.IoError, $"inode {ino} is damaged (inode value of {length} bytes, expected {InodeValue.SizeOf}); run fsck");
            Decode(ino, _buffer[..length], out inode);
            return read;
        }

        /// <summary>
        /// The probe: one point read per slot of the chain from the name's hash (most names sit at
        /// their hash slot), each name compared in the buffer.
        /// </summary>
        private readonly PointRead ProbeTarget(BtreeEngine engine, ulong hashSeed, out ulong target, out NodeMiss miss)
        {
            target = 0;
            for (var slot = Names.SlotOf(hashSeed, _name); ; slot++)
            {
                var read = engine.ReadPoint(dirents, FsPositions.Slot(dir, slot), _buffer, out var key, out var length, out miss);
                if (read != PointRead.Found)
                    return read;
                if (key.Type == KeyType.Dirent)
                {
                    // A value longer than the buffer holds no valid name: it matches nothing, as a malformed one.
                    if (length <= _buffer.Length && DirentValue.NameOf(_buffer[..length]).SequenceEqual(_name))
                    {
                        if (!DirentValue.TryReadTarget(_buffer[..length], out target, out _, out var problem))
                            BasaltException.Throw(ErrorCode.IoError, $"a dirent of directory {dir} is damaged ({problem}); run fsck");
                        return PointRead.Found;
                    }
                }
                else if (key.Type != KeyType.HashWhiteout)
                {
                    return PointRead.Absent;
                }
            }
        }
    }

    public InodeAttr Lookup(ulong dir, ReadOnlySpan<byte> name) =>
        TryLookup(dir, name, out var attr) ? attr
            : throw new BasaltException(ErrorCode.FileNotFound, $"'{Names.ToText(name)}' does not exist in directory {dir}");

    /// <summary>
    /// Resolves an absolute path (bytes, '/'-separated; empty components and "." skipped; ".."
    /// goes up; symlinks followed, the last component only when <paramref name="followLast"/>).
    /// </summary>
    public InodeAttr ResolvePath(ReadOnlySpan<byte> path, bool followLast = true)
    {
        if (!TryResolvePath(path, followLast, out var attr, out var error))
            throw error!;
        return attr;
    }

    public InodeAttr ResolvePath(string path, bool followLast = true) => ResolvePath(Names.FromText(path), followLast);

    public bool TryResolvePath(ReadOnlySpan<byte> path, bool followLast, out InodeAttr attr, out BasaltException? error)
    {
        var follows = 0;
        var current = GetAttr(FsPositions.RootIno);
        var remaining = new Queue<byte[]>(Split(path));
        attr = default;
        error = null;
        var walked = new List<byte>();
        while (remaining.Count > 0)
        {
            var component = remaining.Dequeue();
            if (!current.IsDirectory)
            {
                error = new BasaltException(ErrorCode.NotDirectory, $"'{Names.ToText(walked.ToArray())}' is not a directory");
                return false;
            }
            if (!TryLookup(current.Ino, component, out var next))
            {
                walked.Add((byte)'/');
                walked.AddRange(component);
                error = new BasaltException(ErrorCode.FileNotFound, $"'{Names.ToText(walked.ToArray())}' does not exist");
                return false;
            }
            walked.Add((byte)'/');
            walked.AddRange(component);
            if (next.Type == FileType.Symlink && (remaining.Count > 0 || followLast))
            {
                if (++follows > MaxSymlinkFollows)
                {
                    error = new BasaltException(ErrorCode.SymlinkLoop, $"'{Names.ToText(walked.ToArray())}': too many levels of symbolic links");
                    return false;
                }
                var target = ReadLink(next.Ino);
                var rest = remaining.ToList();
                remaining = new Queue<byte[]>(Split(target).Concat(rest));
                if (target.Length > 0 && target[0] == (byte)'/')
                    current = GetAttr(FsPositions.RootIno);
                continue;
            }
            current = next;
        }
        attr = current;
        return true;
    }

    private static List<byte[]> Split(ReadOnlySpan<byte> path)
    {
        var parts = new List<byte[]>();
        foreach (var range in path.Split((byte)'/'))
        {
            var part = path[range];
            if (part.IsEmpty || Names.IsDot(part))
                continue;
            parts.Add(part.ToArray());
        }
        return parts;
    }

    /// <summary>The parent directory and last name of a path (for create, unlink, rename by path).</summary>
    public (InodeAttr Parent, byte[] Name) ResolveParent(ReadOnlySpan<byte> path)
    {
        var parts = Split(path);
        if (parts.Count == 0 || Names.IsDotDot(parts[^1]))
            BasaltException.Throw(ErrorCode.InvalidArgument, $"'{Names.ToText(path)}' names no entry");
        var last = path.TrimEnd((byte)'/');
        var cut = last.LastIndexOf((byte)'/');
        var parent = ResolvePath(cut <= 0 ? "/"u8 : last[..cut]);
        if (!parent.IsDirectory)
            BasaltException.Throw(ErrorCode.NotDirectory, $"'{Names.ToText(last[..Math.Max(cut, 0)])}' is not a directory");
        return (parent, parts[^1]);
    }

    // ---- Creating entries -----------------------------------------------------------------------

    /// <summary>Creates a regular file.</summary>
    public InodeAttr Create(ulong dir, ReadOnlySpan<byte> name, uint permissions, uint uid = 0, uint gid = 0) =>
        MakeNode(dir, name, FileModes.ModeOf(FileType.Regular, permissions), 0, uid, gid);

    public InodeAttr Mkdir(ulong dir, ReadOnlySpan<byte> name, uint permissions, uint uid = 0, uint gid = 0) =>
        MakeNode(dir, name, FileModes.ModeOf(FileType.Directory, permissions), 0, uid, gid);

    /// <summary>Creates a node of any type but a symlink: <paramref name="mode"/> holds the type bits (S_IFIFO, S_IFCHR…).</summary>
    public InodeAttr Mknod(ulong dir, ReadOnlySpan<byte> name, uint mode, ulong rdev, uint uid = 0, uint gid = 0)
    {
        var type = FileModes.TypeOf(mode);
        if (type == FileType.Unknown)
            mode |= FileModes.ModeOf(FileType.Regular, 0);
        if (type == FileType.Symlink || !FileModes.IsValidType(FileModes.TypeOf(mode)))
            BasaltException.Throw(ErrorCode.InvalidArgument, $"mknod of mode {Convert.ToString(mode, 8)}");
        return MakeNode(dir, name, mode, rdev, uid, gid);
    }

    private InodeAttr MakeNode(ulong dir, ReadOnlySpan<byte> name, uint mode, ulong rdev, uint uid, uint gid)
    {
        Names.Validate(name);
        var nameBytes = name.ToArray();
        var ino = AllocateIno();
        var stamp = _dentries?.Stamp ?? 0;
        var inode = Writer.Transact(t => AddEntry(t, dir, nameBytes, ino, mode, rdev, uid, gid, Now()));
        CountInodes(+1);
        Cache(stamp, dir, nameBytes, ino);
        return new InodeAttr(ino, inode);
    }

    /// <summary>In a transaction: a new inode and its dirent in <paramref name="dir"/>.</summary>
    private InodeValue AddEntry(Transaction t, ulong dir, byte[] name, ulong ino, uint mode, ulong rdev, uint uid, uint gid, long now)
    {
        var parent = ReadDirectory(t, dir);
        var probe = FindDirent(HashedSlots.Of(t, BtreeId.Dirents), dir, parent, name);
        if (probe.Found)
            BasaltException.Throw(ErrorCode.Exists, $"'{Names.ToText(name)}' already exists");
        var inode = NewInode(mode, uid, gid, now, dir, probe.Slot);
        inode.Rdev = rdev;
        if (inode.IsDirectory)
        {
            if (parent.Nlink >= uint.MaxValue - 1)
                BasaltException.Throw(ErrorCode.TooManyLinks, $"directory {dir} has too many subdirectories");
            parent.Nlink++;
        }
        parent.MtimeNs = parent.CtimeNs = now;
        PutInode(t, ino, inode);
        PutInode(t, dir, parent);
        t.SetOwned(BtreeId.Dirents, new Bkey(FsPositions.Slot(dir, probe.Slot), KeyType.Dirent),
            new DirentValue(ino, inode.Type, name).ToBytes());
        return inode;
    }

    /// <summary>Creates a symlink to <paramref name="target"/> (bytes, at most 4095): its inode, name and target commit together.</summary>
    public InodeAttr Symlink(ulong dir, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, uint uid = 0, uint gid = 0)
    {
        Names.Validate(name);
        if (target.IsEmpty || target.Contains((byte)0))
            BasaltException.Throw(ErrorCode.InvalidArgument, "a symlink target is not empty and holds no NUL");
        if (target.Length > MaxSymlinkTarget)
            BasaltException.Throw(ErrorCode.NameTooLong, $"symlink target of {target.Length} bytes (at most {MaxSymlinkTarget})");
        var nameBytes = name.ToArray();
        if (TryLookup(dir, nameBytes, out _))
            BasaltException.Throw(ErrorCode.Exists, $"'{Names.ToText(nameBytes)}' already exists");
        var ino = AllocateIno();
        var now = Now();
        var length = (ulong)target.Length;
        InodeValue created = default;
        Action<Transaction, ulong> add = (t, _) =>
        {
            created = AddEntry(t, dir, nameBytes, ino, FileModes.ModeOf(FileType.Symlink, 0x1FF), 0, uid, gid, now);
            created.Size = length;
            PutInode(t, ino, created);
        };
        if (!_data.TryWriteInline(ino, 0, target, default, add, out _))
            _data.Write(ino, 0, target, default, add);
        CountInodes(+1);
        return GetAttr(ino);
    }

    /// <summary>The target of a symlink.</summary>
    public byte[] ReadLink(ulong ino)
    {
        var attr = GetAttr(ino);
        if (attr.Type != FileType.Symlink)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"inode {ino} is not a symlink");
        var target = new byte[Math.Min(attr.Size, MaxSymlinkTarget)];
        _data.Read(ino, 0, target);
        return target;
    }

    /// <summary>Adds a hard link to <paramref name="ino"/> (not a directory) as <paramref name="name"/> in <paramref name="dir"/>.</summary>
    public InodeAttr Link(ulong ino, ulong dir, ReadOnlySpan<byte> name)
    {
        Names.Validate(name);
        var nameBytes = name.ToArray();
        var now = Now();
        var stamp = _dentries?.Stamp ?? 0;
        var inode = Writer.Transact(t =>
        {
            var target = ReadInode(t, ino);
            if (target.IsDirectory)
                BasaltException.Throw(ErrorCode.NotPermitted, $"inode {ino} is a directory: no hard links to directories");
            if (target.Nlink == 0)
                BasaltException.Throw(ErrorCode.FileNotFound, $"inode {ino} has been removed");
            if (target.Nlink >= uint.MaxValue - 1)
                BasaltException.Throw(ErrorCode.TooManyLinks, $"inode {ino} has too many links");
            var parent = ReadDirectory(t, dir);
            var probe = FindDirent(HashedSlots.Of(t, BtreeId.Dirents), dir, parent, nameBytes);
            if (probe.Found)
                BasaltException.Throw(ErrorCode.Exists, $"'{Names.ToText(nameBytes)}' already exists");
            target.Nlink++;
            target.CtimeNs = now;
            parent.MtimeNs = parent.CtimeNs = now;
            PutInode(t, ino, target);
            PutInode(t, dir, parent);
            t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(dir, probe.Slot), KeyType.Dirent),
                new DirentValue(ino, target.Type, nameBytes).ToBytes());
            return target;
        });
        Cache(stamp, dir, nameBytes, ino);
        return new InodeAttr(ino, inode);
    }

    // ---- Removing entries -----------------------------------------------------------------------

    /// <summary>Removes a name of a non-directory; the inode goes with its last link (or its last open handle).</summary>
    public void Unlink(ulong dir, ReadOnlySpan<byte> name) => Remove(dir, name, directory: false);

    /// <summary>Removes an empty directory.</summary>
    public void Rmdir(ulong dir, ReadOnlySpan<byte> name) => Remove(dir, name, directory: true);

    private void Remove(ulong dir, ReadOnlySpan<byte> name, bool directory)
    {
        if (Names.IsDot(name))
            BasaltException.Throw(ErrorCode.InvalidArgument, "cannot remove '.'");
        if (Names.IsDotDot(name))
            BasaltException.Throw(ErrorCode.NotEmpty, "cannot remove '..'");
        var nameBytes = name.ToArray();
        var now = Now();
        (ulong Ino, LinkDrop Dropped) removed;
        try
        {
            removed = Writer.Transact(t => RemoveIn(t, dir, nameBytes, directory, now));
        }
        finally
        {
            _dentries?.Drop(dir, nameBytes);
        }
        AfterDrop(removed.Ino, removed.Dropped);
    }

    private (ulong Ino, LinkDrop Dropped) RemoveIn(Transaction t, ulong dir, byte[] nameBytes, bool directory, long now)
    {
        var parent = ReadDirectory(t, dir);
        var probe = FindDirent(HashedSlots.Of(t, BtreeId.Dirents), dir, parent, nameBytes);
        if (!probe.Found)
            BasaltException.Throw(ErrorCode.FileNotFound, $"'{Names.ToText(nameBytes)}' does not exist");
        var dirent = DecodeDirent(dir, probe.Value);
        var inode = ReadInode(t, dirent.Target);
        if (directory && !inode.IsDirectory)
            BasaltException.Throw(ErrorCode.NotDirectory, $"'{Names.ToText(nameBytes)}' is not a directory");
        if (!directory && inode.IsDirectory)
            BasaltException.Throw(ErrorCode.IsDirectory, $"'{Names.ToText(nameBytes)}' is a directory");
        if (directory)
            RequireEmpty(t, dirent.Target, nameBytes);
        HashedSlots.Remove(t, BtreeId.Dirents, dir, probe.Slot);
        parent.MtimeNs = parent.CtimeNs = now;
        if (directory)
            parent.Nlink--;
        PutInode(t, dir, parent);
        return (dirent.Target, DropLink(t, dirent.Target, inode, now));
    }

    /// <summary>What became of an inode that lost a link (DropLink), acted on after the commit.</summary>
    private enum LinkDrop
    {
        /// <summary>It keeps other links.</summary>
        Kept,
        /// <summary>It was deleted in the transaction.</summary>
        Deleted,
        /// <summary>It went on the orphan list: evict it unless it is open.</summary>
        Orphaned,
    }

    private void AfterDrop(ulong ino, LinkDrop dropped)
    {
        if (dropped == LinkDrop.Deleted)
            CountInodes(-1);
        else if (dropped == LinkDrop.Orphaned && !IsOpen(ino))
            Evict(ino);
    }

    private static void RequireEmpty(Transaction t, ulong dir, byte[] name)
    {
        foreach (var (key, _) in t.Range(BtreeId.Dirents, FsPositions.Slot(dir, 0), FsPositions.Slot(dir, ulong.MaxValue), 16))
        {
            if (key.Type == KeyType.Dirent)
                BasaltException.Throw(ErrorCode.NotEmpty, $"directory '{Names.ToText(name)}' is not empty");
        }
    }

    /// <summary>
    /// In a transaction: one link of <paramref name="ino"/> is gone. A directory or an empty
    /// inode with nothing else left is deleted at once; an inode with data or many xattrs goes on
    /// the orphan list (evicted after the commit unless open).
    /// </summary>
    private LinkDrop DropLink(Transaction t, ulong ino, InodeValue inode, long now)
    {
        inode.CtimeNs = now;
        inode.Nlink = inode.IsDirectory ? 0 : inode.Nlink - 1;
        if (inode.Nlink > 0)
        {
            PutInode(t, ino, inode);
            return LinkDrop.Kept;
        }
        var xattrs = t.Range(BtreeId.Xattrs, FsPositions.Slot(ino, 0), FsPositions.Slot(ino, ulong.MaxValue), 9);
        if (inode.IsDirectory || (inode.Sectors == 0 && xattrs.Count <= 8 && !IsOpen(ino)))
        {
            // Nothing left that needs batches: the inode goes now (a directory's leftover hash whiteouts with it).
            foreach (var (key, _) in xattrs)
                t.Delete(BtreeId.Xattrs, key.Pos);
            if (inode.IsDirectory)
            {
                foreach (var (key, _) in t.Range(BtreeId.Dirents, FsPositions.Slot(ino, 0), FsPositions.Slot(ino, ulong.MaxValue), 64))
                    t.Delete(BtreeId.Dirents, key.Pos);
            }
            t.Delete(BtreeId.Inodes, FsPositions.Inode(ino));
            t.Delete(BtreeId.LoggedOps, FsPositions.Truncate(ino));
            return LinkDrop.Deleted;
        }
        PutInode(t, ino, inode);
        t.Set(BtreeId.Orphans, new Bkey(FsPositions.Orphan(ino), KeyType.Set), []);
        return LinkDrop.Orphaned;
    }

    // ---- Rename ---------------------------------------------------------------------------------

    /// <summary>
    /// Renames <paramref name="oldName"/> in <paramref name="oldDir"/> to <paramref name="newName"/>
    /// in <paramref name="newDir"/> atomically, replacing an existing target of a compatible type
    /// (an empty directory by a directory, a non-directory by a non-directory) unless
    /// <see cref="RenameFlags.NoReplace"/>; <see cref="RenameFlags.Exchange"/> swaps the two. A
    /// directory cannot move into its own subtree (EINVAL).
    /// </summary>
    public void Rename(ulong oldDir, ReadOnlySpan<byte> oldName, ulong newDir, ReadOnlySpan<byte> newName, RenameFlags flags = RenameFlags.None)
    {
        if ((flags & RenameFlags.NoReplace) != 0 && (flags & RenameFlags.Exchange) != 0)
            BasaltException.Throw(ErrorCode.InvalidArgument, "rename: NoReplace and Exchange together");
        if (Names.IsDot(oldName) || Names.IsDotDot(oldName) || Names.IsDot(newName) || Names.IsDotDot(newName))
            BasaltException.Throw(ErrorCode.Busy, "rename of '.' or '..'");
        Names.Validate(newName);
        var from = oldName.ToArray();
        var to = newName.ToArray();
        var now = Now();
        (ulong Replaced, LinkDrop Dropped) renamed;
        try
        {
            if (DebugFault == FilesDebugFault.RenameInTwoTransactions && flags == RenameFlags.None && !TryLookup(newDir, to, out _))
            {
                RenameInTwoTransactions(oldDir, from, newDir, to);
                return;
            }
            renamed = Writer.Transact(t => RenameIn(t, oldDir, from, newDir, to, flags, now));
        }
        finally
        {
            _dentries?.Drop(oldDir, from);
            _dentries?.Drop(newDir, to);
        }
        AfterDrop(renamed.Replaced, renamed.Dropped);
    }

    /// <summary>The must-fail checks' broken rename: both names are durable for a moment.</summary>
    private void RenameInTwoTransactions(ulong oldDir, byte[] from, ulong newDir, byte[] to)
    {
        var target = Lookup(oldDir, from);
        Writer.Transact(t =>
        {
            var parent = ReadDirectory(t, newDir);
            var probe = FindDirent(HashedSlots.Of(t, BtreeId.Dirents), newDir, parent, to);
            t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(newDir, probe.Slot), KeyType.Dirent),
                new DirentValue(target.Ino, target.Type, to).ToBytes());
        });
        _journal.WaitDurable(_journal.CommittedSeq);
        Writer.Transact(t =>
        {
            var parent = ReadDirectory(t, oldDir);
            var probe = FindDirent(HashedSlots.Of(t, BtreeId.Dirents), oldDir, parent, from);
            HashedSlots.Remove(t, BtreeId.Dirents, oldDir, probe.Slot);
        });
    }

    private (ulong Replaced, LinkDrop Dropped) RenameIn(Transaction t, ulong oldDir, byte[] from, ulong newDir, byte[] to, RenameFlags flags, long now)
    {
        var inodes = new InodeEdits(t);
        var oldParent = inodes.Directory(oldDir);
        var src = FindDirent(HashedSlots.Of(t, BtreeId.Dirents), oldDir, oldParent, from);
        if (!src.Found)
            BasaltException.Throw(ErrorCode.FileNotFound, $"'{Names.ToText(from)}' does not exist");
        var srcDirent = DecodeDirent(oldDir, src.Value);
        var newParent = inodes.Directory(newDir);
        var dst = FindDirent(HashedSlots.Of(t, BtreeId.Dirents), newDir, newParent, to);
        var exchange = (flags & RenameFlags.Exchange) != 0;
        if (dst.Found && (flags & RenameFlags.NoReplace) != 0)
            BasaltException.Throw(ErrorCode.Exists, $"'{Names.ToText(to)}' already exists");
        if (!dst.Found && exchange)
            BasaltException.Throw(ErrorCode.FileNotFound, $"'{Names.ToText(to)}' does not exist");
        var dstDirent = dst.Found ? DecodeDirent(newDir, dst.Value) : default;
        if (dst.Found && dstDirent.Target == srcDirent.Target)
            return (0, LinkDrop.Kept); // two names of one inode: nothing to do (POSIX)
        var srcIsDir = srcDirent.Type == FileType.Directory;
        if (srcIsDir && oldDir != newDir)
            RefuseIntoOwnSubtree(inodes, srcDirent.Target, newDir);
        if (exchange && dstDirent.Type == FileType.Directory && oldDir != newDir)
            RefuseIntoOwnSubtree(inodes, dstDirent.Target, oldDir);
        var srcInode = inodes.Get(srcDirent.Target);
        if (exchange)
        {
            var dstInode = inodes.Get(dstDirent.Target);
            t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(oldDir, src.Slot), KeyType.Dirent),
                new DirentValue(dstDirent.Target, dstDirent.Type, from).ToBytes());
            t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(newDir, dst.Slot), KeyType.Dirent),
                new DirentValue(srcDirent.Target, srcDirent.Type, to).ToBytes());
            srcInode.Dir = newDir;
            srcInode.DirSlot = dst.Slot;
            srcInode.CtimeNs = now;
            dstInode.Dir = oldDir;
            dstInode.DirSlot = src.Slot;
            dstInode.CtimeNs = now;
            inodes.Put(srcDirent.Target, srcInode);
            inodes.Put(dstDirent.Target, dstInode);
            if (oldDir != newDir && srcIsDir != (dstDirent.Type == FileType.Directory))
            {
                var delta = srcIsDir ? 1 : -1;
                inodes.Update(oldDir, (ref InodeValue d) => d.Nlink = (uint)(d.Nlink - delta));
                inodes.Update(newDir, (ref InodeValue d) => d.Nlink = (uint)(d.Nlink + delta));
            }
            TouchParents(inodes, oldDir, newDir, now);
            inodes.Commit();
            return (0, LinkDrop.Kept);
        }
        var dropped = LinkDrop.Kept;
        if (dst.Found)
        {
            var dstInode = inodes.Get(dstDirent.Target);
            if (srcIsDir && !dstInode.IsDirectory)
                BasaltException.Throw(ErrorCode.NotDirectory, $"'{Names.ToText(to)}' is not a directory");
            if (!srcIsDir && dstInode.IsDirectory)
                BasaltException.Throw(ErrorCode.IsDirectory, $"'{Names.ToText(to)}' is a directory");
            if (dstInode.IsDirectory)
            {
                RequireEmpty(t, dstDirent.Target, to);
                inodes.Update(newDir, (ref InodeValue d) => d.Nlink--);
            }
            inodes.Forget(dstDirent.Target);
            inodes.Commit();
            dropped = DropLink(t, dstDirent.Target, dstInode, now);
            inodes = new InodeEdits(t);
            srcInode = inodes.Get(srcDirent.Target);
        }
        // The new name first: removing the old one looks at the slot after it.
        t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(newDir, dst.Slot), KeyType.Dirent),
            new DirentValue(srcDirent.Target, srcDirent.Type, to).ToBytes());
        HashedSlots.Remove(t, BtreeId.Dirents, oldDir, src.Slot);
        srcInode.Dir = newDir;
        srcInode.DirSlot = dst.Slot;
        srcInode.CtimeNs = now;
        inodes.Put(srcDirent.Target, srcInode);
        if (srcIsDir && oldDir != newDir)
        {
            inodes.Update(oldDir, (ref InodeValue d) => d.Nlink--);
            inodes.Update(newDir, (ref InodeValue d) => d.Nlink++);
        }
        TouchParents(inodes, oldDir, newDir, now);
        inodes.Commit();
        return (dstDirent.Target, dropped);
    }

    private static void TouchParents(InodeEdits inodes, ulong oldDir, ulong newDir, long now)
    {
        inodes.Update(oldDir, (ref InodeValue d) => d.MtimeNs = d.CtimeNs = now);
        inodes.Update(newDir, (ref InodeValue d) => d.MtimeNs = d.CtimeNs = now);
    }

    /// <summary>EINVAL when <paramref name="into"/> is <paramref name="dir"/> or below it (walking up through each directory's parent).</summary>
    private static void RefuseIntoOwnSubtree(InodeEdits inodes, ulong dir, ulong into)
    {
        var at = into;
        for (var depth = 0; depth < 65536; depth++)
        {
            if (at == dir)
                BasaltException.Throw(ErrorCode.InvalidArgument, $"cannot move directory {dir} into its own subtree");
            if (at == FsPositions.RootIno)
                return;
            var next = inodes.Get(at).Dir;
            if (next == 0 || next == at)
                return;
            at = next;
        }
        BasaltException.Throw(ErrorCode.IoError, $"directory {into} has no path to the root (a loop of parents); run fsck");
    }

    // ---- readdir --------------------------------------------------------------------------------

    /// <summary>
    /// Up to <paramref name="max"/> entries of directory <paramref name="dir"/> after cookie
    /// <paramref name="cookie"/> (0 to start): ".", "..", then the names in slot order. Cookies
    /// stay valid across changes to the directory.
    /// </summary>
    public List<DirEntry> ReadDir(ulong dir, long cookie, int max = 1024)
    {
        var inode = GetAttr(dir).Inode;
        if (!inode.IsDirectory)
            BasaltException.Throw(ErrorCode.NotDirectory, $"inode {dir} is not a directory");
        var list = new List<DirEntry>();
        if (cookie < 1 && list.Count < max)
            list.Add(new DirEntry("."u8.ToArray(), dir, FileType.Directory, 1));
        if (cookie < 2 && list.Count < max)
            list.Add(new DirEntry(".."u8.ToArray(), dir == FsPositions.RootIno ? dir : inode.Dir, FileType.Directory, 2));
        if (list.Count >= max)
            return list;
        var from = (ulong)Math.Max(cookie, (long)FsPositions.FirstNameSlot);
        var it = _engine[BtreeId.Dirents].Iterate(FsPositions.Slot(dir, from), FsPositions.Slot(dir, ulong.MaxValue));
        while (list.Count < max && it.MoveNext())
        {
            if (it.Key.Type != KeyType.Dirent)
                continue;
            var dirent = DecodeDirent(dir, it.Value.ToArray());
            list.Add(new DirEntry(dirent.Name, dirent.Target, dirent.Type, (long)it.Key.Pos.Offset + 1));
        }
        return list;
    }

    /// <summary>The inodes a transaction reads and changes, each read once and written once.</summary>
    private sealed class InodeEdits(Transaction t)
    {
        private readonly Dictionary<ulong, InodeValue> _inodes = [];
        private readonly HashSet<ulong> _dirty = [];

        public delegate void Edit(ref InodeValue inode);

        public InodeValue Get(ulong ino)
        {
            if (!_inodes.TryGetValue(ino, out var inode))
                _inodes[ino] = inode = ReadInode(t, ino);
            return inode;
        }

        public InodeValue Directory(ulong ino)
        {
            if (_inodes.TryGetValue(ino, out var inode))
                return inode;
            return _inodes[ino] = ReadDirectory(t, ino);
        }

        public void Put(ulong ino, in InodeValue inode)
        {
            _inodes[ino] = inode;
            _dirty.Add(ino);
        }

        public void Update(ulong ino, Edit edit)
        {
            var inode = Get(ino);
            edit(ref inode);
            Put(ino, inode);
        }

        public void Forget(ulong ino)
        {
            _inodes.Remove(ino);
            _dirty.Remove(ino);
        }

        public void Commit()
        {
            foreach (var ino in _dirty)
                PutInode(t, ino, _inodes[ino]);
            _dirty.Clear();
        }
    }
}
