// check_root, check_directory_structure and check_nlinks: the namespace as a whole.
//
// check_root runs only once the inodes btree holds a key: an image never mounted writable has no
// root yet, and that is not a finding. check_directory_structure holds one small record per
// directory (its backref, the dirent naming it and a walk state) — directories are few next to
// files, and the walk up from every directory to the root needs them all at hand; each directory
// is walked once (a state per record), so loops and unreachable subtrees cost linear time.
// check_nlinks counts the dirents naming each inode in bounded rounds over inode ranges: a round
// takes as many inodes as --max-mem allows (about 24 bytes each) and walks every dirent once, so a
// filesystem whose inodes fit runs one round, a huge one several (as the backpointer passes do).
using System.Buffers.Binary;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Transactions;

namespace Basalt.Fsck.Files;

internal static class CheckNamespace
{
    private static readonly byte[] s_lostFoundName = "lost+found"u8.ToArray();

    // ---- check_root -----------------------------------------------------------------------------

    public static void CheckRoot(FileCheckRun run)
    {
        var inodes = run.Tree(BtreeId.Inodes);
        if (!inodes.Iterate(FsPositions.Inode(0), FsPositions.Inode(ulong.MaxValue)).MoveNext())
            return;
        InodeValue root = default;
        var hasRoot = inodes.TryGet(FsPositions.Inode(FsPositions.RootIno), out var rootValue);
        if (hasRoot && !InodeValue.TryRead(rootValue, out root, out _))
            return; // check_inodes reported it and was told to leave it
        if (!hasRoot || !root.IsDirectory)
        {
            if (!run.Reporter.Report(FsckErrorId.RootMissing, run.WhereInode(FsPositions.RootIno),
                    hasRoot ? $"the root is a {FileModes.ToText(root.Type)}" : "the root directory does not exist"))
            {
                return;
            }
            var fresh = run.NewInode(FsPositions.RootIno, FileModes.ModeOf(FileType.Directory, 0x1ED), 2, FsPositions.RootIno, 0);
            run.FileSystem.Transact(t => FileCheckRun.PutInode(t, FsPositions.RootIno, fresh));
            root = fresh;
        }

        var hasLostFound = inodes.TryGet(FsPositions.Inode(FsPositions.LostAndFoundIno), out var lfValue);
        InodeValue lostFound = default;
        if (hasLostFound && !InodeValue.TryRead(lfValue, out lostFound, out _))
            return;
        string? problem = null;
        if (!hasLostFound)
            problem = "inode 2 does not exist";
        else if (!lostFound.IsDirectory)
            problem = $"inode 2 is a {FileModes.ToText(lostFound.Type)}";
        else
        {
            var probe = HashedSlots.Find(HashedSlots.Of(run.Tree(BtreeId.Dirents)), FsPositions.RootIno, Names.SlotOf(root.HashSeed, s_lostFoundName),
                KeyType.Dirent, value => DirentValue.NameOf(value).SequenceEqual(s_lostFoundName));
            if (!probe.Found)
                problem = "the root has no entry lost+found";
            else if (!DirentValue.TryRead(probe.Value, out var named, out _) || named.Target != FsPositions.LostAndFoundIno)
                problem = "the root's lost+found names another inode";
        }
        if (problem is null || !run.Reporter.Report(FsckErrorId.LostFoundMissing, run.WhereInode(FsPositions.LostAndFoundIno), problem))
            return;
        run.FileSystem.Transact(t => NameLostFound(run, t));
    }

    private static void NameLostFound(FileCheckRun run, Transaction t)
    {
        if (!FileCheckRun.TryReadInode(t, FsPositions.RootIno, out var root))
            return;
        if (!FileCheckRun.TryReadInode(t, FsPositions.LostAndFoundIno, out var lostFound) || !lostFound.IsDirectory)
            lostFound = run.NewInode(FsPositions.LostAndFoundIno, FileModes.ModeOf(FileType.Directory, 0x1C0), 2, FsPositions.RootIno, 0);
        var probe = FileCheckRun.FindName(t, FsPositions.RootIno, root.HashSeed, s_lostFoundName);
        var entry = new DirentValue(FsPositions.LostAndFoundIno, FileType.Directory, s_lostFoundName).ToBytes();
        var wasSubdir = probe.Found && DirentValue.TryRead(probe.Value, out var old, out _) && old.Type == FileType.Directory;
        t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(FsPositions.RootIno, probe.Slot), KeyType.Dirent), entry);
        if (!wasSubdir)
        {
            root.Nlink++;
            FileCheckRun.PutInode(t, FsPositions.RootIno, root);
        }
        lostFound.Dir = FsPositions.RootIno;
        lostFound.DirSlot = probe.Slot;
        FileCheckRun.PutInode(t, FsPositions.LostAndFoundIno, lostFound);
    }

    // ---- check_directory_structure --------------------------------------------------------------

    private sealed class DirNode
    {
        public ulong Dir;
        public ulong DirSlot;
        public ulong Parent;
        public ulong ParentSlot;
        public int Links;
        public byte State; // 0 not walked, 1 on the current walk, 2 known to reach the root

        public bool NamedAt(ulong dir, ulong slot) => Dir == dir && DirSlot == slot;
    }

    public static void CheckDirectoryStructure(FileCheckRun run)
    {
        var dirs = new Dictionary<ulong, DirNode>();
        var inodes = run.Tree(BtreeId.Inodes).Iterate(FsPositions.Inode(0), FsPositions.Inode(ulong.MaxValue));
        while (inodes.MoveNext())
        {
            if (inodes.Key.Type == KeyType.Inode && InodeValue.TryRead(inodes.Value, out var inode, out _) && inode.IsDirectory)
                dirs[inodes.Key.Pos.Offset] = new DirNode { Dir = inode.Dir, DirSlot = inode.DirSlot };
        }
        if (!dirs.ContainsKey(FsPositions.RootIno))
            return; // no root (an image never mounted, or its repair declined)

        // Who names each directory; more than one name is kept aside.
        var extra = new SortedDictionary<ulong, List<(ulong Dir, ulong Slot)>>();
        var dirents = run.Tree(BtreeId.Dirents).Iterate(Bpos.Min, Bpos.Max);
        while (dirents.MoveNext())
        {
            if (dirents.Key.Type != KeyType.Dirent || !TryReadHeader(dirents.Value, out var target, out var type) || type != FileType.Directory
                || !dirs.TryGetValue(target, out var node))
            {
                continue;
            }
            var at = (dirents.Key.Pos.Inode, dirents.Key.Pos.Offset);
            if (target != FsPositions.RootIno && node.Links++ == 0)
            {
                (node.Parent, node.ParentSlot) = at;
                continue;
            }
            if (!extra.TryGetValue(target, out var list))
                extra[target] = list = [];
            list.Add(at);
        }

        foreach (var (target, list) in extra)
        {
            var node = dirs[target];
            var names = new List<(ulong Dir, ulong Slot)>();
            if (node.Links > 0)
                names.Add((node.Parent, node.ParentSlot));
            names.AddRange(list);
            (ulong Dir, ulong Slot)? keep = target == FsPositions.RootIno ? null
                : names.Any(n => node.NamedAt(n.Dir, n.Slot)) ? names.First(n => node.NamedAt(n.Dir, n.Slot)) : names[0];
            var drop = names.Where(n => n != keep).ToList();
            var text = string.Join(", ", drop.Select(n => $"{n.Dir}:{n.Slot}"));
            if (!run.Reporter.Report(FsckErrorId.DirectoryMultipleLinks, run.WhereInode(target),
                    target == FsPositions.RootIno ? $"the root is named by dirents at {text}" : $"directory {target} is also named by dirents at {text}"))
            {
                continue;
            }
            foreach (var (dir, slot) in drop)
                run.Repair(t => DropSubdirName(t, dir, slot));
            if (keep is { } k)
                (node.Parent, node.ParentSlot, node.Links) = (k.Dir, k.Slot, 1);
        }

        foreach (var (ino, node) in dirs)
        {
            if (ino == FsPositions.RootIno || node.Links == 0 || node.NamedAt(node.Parent, node.ParentSlot))
                continue;
            if (!run.Reporter.Report(FsckErrorId.DirectoryBackrefWrong, run.WhereInode(ino),
                    $"directory {ino} records parent {node.Dir}:{node.DirSlot}, but the dirent naming it is {node.Parent}:{node.ParentSlot}"))
            {
                continue;
            }
            var (parent, slot) = (node.Parent, node.ParentSlot);
            run.Repair(t =>
            {
                if (!FileCheckRun.TryReadInode(t, ino, out var inode))
                    return;
                inode.Dir = parent;
                inode.DirSlot = slot;
                FileCheckRun.PutInode(t, ino, inode);
            });
            (node.Dir, node.DirSlot) = (parent, slot);
        }
        run.Flush();

        // Walk up from every directory: a walk ends at the root or at a directory already known to
        // reach it; one that ends at an unnamed directory or comes back on itself is reattached.
        var path = new List<DirNode>();
        foreach (var ino in dirs.Keys.Order())
        {
            var at = ino;
            path.Clear();
            while (at != FsPositions.RootIno)
            {
                var node = dirs[at];
                if (node.State == 2)
                    break;
                if (node.State == 1)
                {
                    if (run.Reporter.Report(FsckErrorId.DirectoryLoop, run.WhereInode(at),
                            $"following parents from directory {at} leads back to it (through {string.Join(" -> ", path.Select(p => p.Parent))})"))
                    {
                        var (parent, slot) = (node.Parent, node.ParentSlot);
                        var cut = at;
                        run.Repair(t =>
                        {
                            DropSubdirName(t, parent, slot);
                            ReattachDirectory(t, cut);
                        });
                    }
                    break;
                }
                node.State = 1;
                path.Add(node);
                if (node.Links == 0)
                {
                    if (at != FsPositions.LostAndFoundIno
                        && run.Reporter.Report(FsckErrorId.DirectoryUnreachable, run.WhereInode(at), $"directory {at} is named by no dirent"))
                    {
                        var lost = at;
                        run.Repair(t => ReattachDirectory(t, lost));
                    }
                    break;
                }
                if (!dirs.ContainsKey(node.Parent))
                    break; // named in an inode that does not decode: left as it is
                at = node.Parent;
            }
            foreach (var node in path)
                node.State = 2;
        }
    }

    /// <summary>In a transaction: removes a dirent naming a subdirectory, and the subdirectory from its directory's link count.</summary>
    private static void DropSubdirName(Transaction t, ulong dir, ulong slot)
    {
        FileCheckRun.RemoveDirent(t, dir, slot);
        if (FileCheckRun.TryReadInode(t, dir, out var parent) && parent.Nlink > 2)
        {
            parent.Nlink--;
            FileCheckRun.PutInode(t, dir, parent);
        }
    }

    private static void ReattachDirectory(Transaction t, ulong ino)
    {
        if (FileCheckRun.TryReadInode(t, ino, out var inode) && FileCheckRun.Reattach(t, ino, ref inode))
            FileCheckRun.PutInode(t, ino, inode);
    }

    /// <summary>Target and type of an encoded dirent without decoding its name (false when it cannot be a dirent).</summary>
    private static bool TryReadHeader(ReadOnlySpan<byte> value, out ulong target, out FileType type)
    {
        target = 0;
        type = FileType.Unknown;
        if (value.Length < DirentValue.HeaderSize + 1 || value.Length != DirentValue.HeaderSize + value[9])
            return false;
        target = BinaryPrimitives.ReadUInt64LittleEndian(value);
        type = (FileType)value[8];
        return true;
    }

    // ---- check_nlinks ---------------------------------------------------------------------------

    /// <summary>Bytes a round holds per inode: number, link count, dirents counted, kind.</summary>
    private const int BytesPerInode = 24;

    public static void CheckNlinks(FileCheckRun run)
    {
        var budget = (int)Math.Clamp(run.MaxMem / BytesPerInode, 16, int.MaxValue / 2);
        var inos = new List<ulong>();
        var nlinks = new List<uint>();
        var isDir = new List<bool>();
        ulong from = 0;
        var more = true;
        while (more)
        {
            inos.Clear();
            nlinks.Clear();
            isDir.Clear();
            more = false;
            var it = run.Tree(BtreeId.Inodes).Iterate(FsPositions.Inode(from), FsPositions.Inode(ulong.MaxValue));
            while (it.MoveNext())
            {
                if (inos.Count == budget)
                {
                    more = true;
                    break;
                }
                if (it.Key.Type != KeyType.Inode || !InodeValue.TryRead(it.Value, out var inode, out _))
                    continue;
                inos.Add(it.Key.Pos.Offset);
                nlinks.Add(inode.Nlink);
                isDir.Add(inode.IsDirectory);
            }
            if (inos.Count == 0)
                break;
            run.Reporter.Count("check_nlinks rounds");
            var counts = CountNames(run, inos, isDir);
            for (var i = 0; i < inos.Count; i++)
                Compare(run, inos[i], nlinks[i], isDir[i], counts[i]);
            run.Flush();
            from = inos[^1] + 1;
        }
    }

    /// <summary>One walk of every dirent: for each inode of the round, the dirents naming it (a directory: its subdirectories).</summary>
    private static uint[] CountNames(FileCheckRun run, List<ulong> inos, List<bool> isDir)
    {
        var counts = new uint[inos.Count];
        var lo = inos[0];
        var hi = inos[^1];
        var it = run.Tree(BtreeId.Dirents).Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            if (it.Key.Type != KeyType.Dirent || !TryReadHeader(it.Value, out var target, out var type))
                continue;
            if (type == FileType.Directory)
            {
                var dir = it.Key.Pos.Inode;
                if (dir >= lo && dir <= hi && inos.BinarySearch(dir) is var d and >= 0 && isDir[d])
                    counts[d]++;
            }
            else if (target >= lo && target <= hi && inos.BinarySearch(target) is var f and >= 0 && !isDir[f])
            {
                counts[f]++;
            }
        }
        return counts;
    }

    private static void Compare(FileCheckRun run, ulong ino, uint nlink, bool directory, uint names)
    {
        if (directory)
        {
            var expected = 2 + names;
            if (nlink != expected && run.Reporter.Report(FsckErrorId.InodeNlinkWrong, run.WhereInode(ino),
                    $"directory {ino} has link count {nlink}, 2 + its {names} subdirectories make {expected}"))
            {
                run.Repair(t => SetNlink(t, ino, expected));
            }
            return;
        }
        if (names == 0)
        {
            // No links and no names: unlinked (on the orphan list, or reported by check_inodes).
            if (nlink == 0 || run.Tree(BtreeId.Orphans).TryGet(FsPositions.Orphan(ino), out _))
                return;
            if (run.Reporter.Report(FsckErrorId.InodeUnreachable, run.WhereInode(ino), $"inode {ino} has link count {nlink} but no dirent names it"))
            {
                run.Repair(t =>
                {
                    if (!FileCheckRun.TryReadInode(t, ino, out var inode) || !FileCheckRun.Reattach(t, ino, ref inode))
                        return;
                    inode.Nlink = 1;
                    FileCheckRun.PutInode(t, ino, inode);
                });
            }
            return;
        }
        if (nlink != names && run.Reporter.Report(FsckErrorId.InodeNlinkWrong, run.WhereInode(ino),
                $"inode {ino} has link count {nlink}, {names} dirents name it"))
        {
            run.Repair(t =>
            {
                SetNlink(t, ino, names);
                t.Delete(BtreeId.Orphans, FsPositions.Orphan(ino));
            });
        }
    }

    private static void SetNlink(Transaction t, ulong ino, uint nlink)
    {
        if (!FileCheckRun.TryReadInode(t, ino, out var inode))
            return;
        inode.Nlink = nlink;
        FileCheckRun.PutInode(t, ino, inode);
    }
}
