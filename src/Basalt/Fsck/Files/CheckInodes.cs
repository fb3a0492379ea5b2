// check_inodes: every inode number the filesystem refers to has an inode; an inode with no links
// is on the orphan list and every orphan key names an inode without links; truncate intents are
// finished.
//
// Three ordered walks (inodes merged with the inode numbers extents and dirents live under,
// orphans, truncate intents) with a point lookup only where one walk needs the other. Memory: the
// repairs queued for the next batch, the numbers that hold extents but no inode, at most
// --max-mem / 16 of them before one walk of the dirents tells which a name claims, and the missing
// inodes to rebuild, at most --max-mem / 64 of them before one walk of the dirents tells what
// names each. Node reads drop
// an inode value that does not decode (bkey_value_invalid); what it owned is not deleted with it
// (losing a file is worse than losing its attributes): the inode is rebuilt from what still
// describes it — its dirents, its extents and the dirents naming it. Extents under a number no
// name claims are the data layer's, used on its own (the demo and the data tests write raw inode
// numbers): counted, not reported.
using Basalt.Format;
using Basalt.Fs;

namespace Basalt.Fsck.Files;

internal static class CheckInodes
{
    public static void Run(FileCheckRun run)
    {
        SalvageInodes(run);
        CheckValues(run);
        run.Flush();
        CheckOrphans(run);
        run.Flush();
        CheckTruncates(run);
    }

    /// <summary>
    /// inode_salvaged: inodes an inodes leaf lost to a bset that failed its checksum are written
    /// back when the dropped bytes prove them, before anything is rebuilt. The bytes are not
    /// checksummed any more, so each inode needs proofs from other btrees: the dirent its parent
    /// backref names must name it with its type (which a changed inode number, type or backref
    /// breaks), and a directory's hash seed must lead to the slot of an entry under it when it has
    /// any. No dirent names the root: its seed must lead to its first entry. A file's size must end
    /// in the last sector of its data. What the proofs do not cover (mode bits, owner, times) is
    /// taken as stored: a rebuilt inode would not know it at all.
    /// </summary>
    private static void SalvageInodes(FileCheckRun run)
    {
        if (run.State.DroppedInodes.Count == 0)
            return;
        var latest = Btree.DroppedRecords.LatestKeys(run.State.DroppedInodes);
        run.State.DroppedInodes.Clear();
        var inodes = run.Tree(BtreeId.Inodes);
        var dirents = run.Tree(BtreeId.Dirents);
        foreach (var (pos, (key, value)) in latest)
        {
            var ino = pos.Offset;
            if (key.Type != KeyType.Inode || pos != FsPositions.Inode(ino) || ino < FsPositions.RootIno ||
                !InodeValue.TryRead(value, out var inode, out _) || inodes.TryGet(pos, out _))
            {
                continue;
            }
            if (ino == FsPositions.RootIno)
            {
                // No dirent names the root: its own entries must prove it.
                if (!inode.IsDirectory || !SeedLeadsToEntries(dirents, ino, inode.HashSeed, emptyProves: false))
                    continue;
            }
            else if (!dirents.TryGet(FsPositions.Slot(inode.Dir, inode.DirSlot), out var named) ||
                !DirentValue.TryRead(named, out var dirent, out _) || dirent.Target != ino || dirent.Type != inode.Type ||
                (inode.IsDirectory && !SeedLeadsToEntries(dirents, ino, inode.HashSeed, emptyProves: true)) ||
                (!inode.IsDirectory && !SizeEndsInLastDataSector(run, ino, inode.Size)))
            {
                continue;
            }
            if (run.Reporter.Report(FsckErrorId.InodeSalvaged, run.WhereInode(ino),
                    $"{inode.ToText()}: lost with a bset that failed its checksum, proven by the dirent its backref names"))
            {
                var bytes = value;
                run.Repair(t => t.Set(BtreeId.Inodes, new Bkey(pos, KeyType.Inode), bytes));
            }
        }
        run.Flush();
    }

    /// <summary>
    /// A salvaged file's size must end inside the last sector its data keys reach (0 with no data
    /// key): a changed size would make reads return zeros past the data or stop short of it. A
    /// file with a hole after its data (truncated up) fails this too and is rebuilt instead
    /// (inode_missing), with its size at the end of its data.
    /// </summary>
    private static bool SizeEndsInLastDataSector(FileCheckRun run, ulong ino, ulong size) =>
        (size + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize == DataOf(run, ino).End;

    /// <summary>What a file's keys hold: the sectors they count, and the end (in sectors) of the last key that is not a reservation.</summary>
    private static (ulong Sectors, ulong End) DataOf(FileCheckRun run, ulong ino)
    {
        var extents = run.Tree(BtreeId.Extents).Iterate(new Bpos(ino, 0, 0), new Bpos(ino, ulong.MaxValue, uint.MaxValue));
        ulong sectors = 0, end = 0;
        while (extents.MoveNext())
        {
            if (extents.Key.IsDeletion)
                continue;
            if (extents.Key.Type.CountsSectors())
                sectors += extents.Key.Size;
            if (extents.Key.Type != KeyType.Reservation)
                end = extents.Key.Pos.Offset;
        }
        return (sectors, end);
    }

    /// <summary>
    /// True when the directory's first entry's name hashes with <paramref name="seed"/> to near the
    /// entry's slot (CheckHashed.HashLeadsNear); a directory without entries gives <paramref name="emptyProves"/>.
    /// </summary>
    private static bool SeedLeadsToEntries(Btree.Btree dirents, ulong dir, ulong seed, bool emptyProves)
    {
        var it = dirents.Iterate(FsPositions.Slot(dir, 0), FsPositions.Slot(dir, ulong.MaxValue));
        while (it.MoveNext())
        {
            if (it.Key.Type != KeyType.Dirent || !DirentValue.TryRead(it.Value, out var entry, out _))
                continue;
            return CheckHashed.HashLeadsNear(seed, entry.Name, it.Key.Pos.Offset);
        }
        return emptyProves;
    }

    private static void CheckValues(FileCheckRun run)
    {
        var extents = new OwnerStream(run.Tree(BtreeId.Extents));
        var dirents = new OwnerStream(run.Tree(BtreeId.Dirents));
        var unowned = new List<ulong>();
        var missing = new MissingInodes(run);
        var it = run.Tree(BtreeId.Inodes).Iterate(FsPositions.Inode(0), FsPositions.Inode(ulong.MaxValue));
        while (it.MoveNext())
        {
            var ino = it.Key.Pos.Offset;
            FindMissing(run, extents, dirents, ino, unowned, missing);
            if (!InodeValue.TryRead(it.Value, out var inode, out _))
                continue; // node reads drop what does not decode
            // Directories never wait on the orphan list (their last link deletes them at once): one
            // with no links left is check_directory_structure's.
            if (inode.Nlink == 0 && !inode.IsDirectory
                && !run.Tree(BtreeId.Orphans).TryGet(FsPositions.Orphan(ino), out _)
                && run.Reporter.Report(FsckErrorId.InodeUnlinkedNotOrphan, run.WhereInode(ino), $"{inode.ToText()} has no links and no orphan key"))
            {
                run.Repair(t => t.Set(BtreeId.Orphans, new Bkey(FsPositions.Orphan(ino), KeyType.Set), []));
            }
        }
        FindMissing(run, extents, dirents, ulong.MaxValue, unowned, missing);
        ClaimUnowned(run, unowned, missing);
        missing.Flush();
    }

    /// <summary>
    /// The inode numbers below <paramref name="next"/> (the next inode that exists) that keys live
    /// under: dirents make a lost directory, rebuilt now; extents alone go to
    /// <paramref name="unowned"/>, for one walk of the dirents to tell whether a name claims them.
    /// </summary>
    private static void FindMissing(FileCheckRun run, OwnerStream extents, OwnerStream dirents, ulong next, List<ulong> unowned, MissingInodes missing)
    {
        while (true)
        {
            var owner = Math.Min(extents.Owner, dirents.Owner);
            if (owner >= next)
                break;
            var directory = dirents.Owner == owner;
            extents.SkipPast(owner);
            dirents.SkipPast(owner);
            if (owner == 0)
                continue; // inode 0 is never a file: check_extents and check_dirents report what lives there
            if (directory)
            {
                missing.Add(owner, "dirents live under it");
            }
            else
            {
                unowned.Add(owner);
                if (unowned.Count >= run.MaxMem / 16)
                    ClaimUnowned(run, unowned, missing);
            }
        }
        if (next != ulong.MaxValue)
        {
            extents.SkipPast(next);
            dirents.SkipPast(next);
        }
    }

    /// <summary>
    /// Rebuilds the inodes of the numbers in <paramref name="unowned"/> that a dirent names. The
    /// others hold extents of the data layer used on its own (the demo, data tests: numbers no
    /// name refers to), which are counted, not reported.
    /// </summary>
    private static void ClaimUnowned(FileCheckRun run, List<ulong> unowned, MissingInodes missing)
    {
        if (unowned.Count == 0)
            return;
        var claimed = new HashSet<ulong>();
        var wanted = new HashSet<ulong>(unowned);
        var it = run.Tree(BtreeId.Dirents).Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            if (it.Key.Type == KeyType.Dirent && it.Value.Length >= DirentValue.HeaderSize
                && wanted.Contains(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(it.Value)))
            {
                claimed.Add(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(it.Value));
            }
        }
        foreach (var ino in unowned)
        {
            if (claimed.Contains(ino))
                missing.Add(ino, "a dirent names it and extents live under it");
            else
                run.Reporter.Count("extents of inode numbers no inode or dirent claims (data layer)");
        }
        unowned.Clear();
    }

    /// <summary>
    /// The missing inodes found so far, reported and rebuilt in rounds: each round takes one walk of
    /// every dirent to learn what names each of its inodes (a walk per inode would make a lost
    /// inodes btree cost dirents × inodes). A round holds at most --max-mem / 64 inodes.
    /// </summary>
    private sealed class MissingInodes(FileCheckRun run)
    {
        private readonly List<(ulong Ino, string Why)> _queue = [];

        public void Add(ulong ino, string why)
        {
            _queue.Add((ino, why));
            if (_queue.Count >= Math.Max(1, run.MaxMem / 64))
                Flush();
        }

        public void Flush()
        {
            if (_queue.Count == 0)
                return;
            run.Reporter.Count("check_inodes: rounds of rebuilt inodes");
            var names = new Dictionary<ulong, NamedBy>(_queue.Count);
            foreach (var (ino, _) in _queue)
                names[ino] = default;
            var all = run.Tree(BtreeId.Dirents).Iterate(Bpos.Min, Bpos.Max);
            while (all.MoveNext())
            {
                if (all.Key.Type != KeyType.Dirent || !DirentValue.TryRead(all.Value, out var d, out _) ||
                    !names.TryGetValue(d.Target, out var seen))
                {
                    continue;
                }
                names[d.Target] = new NamedBy(seen.Names + 1, all.Key.Pos.Inode, all.Key.Pos.Offset, d.Type);
            }
            foreach (var (ino, why) in _queue)
            {
                if (run.Reporter.Report(FsckErrorId.InodeMissing, run.WhereInode(ino), $"inode {ino} does not exist, yet {why}"))
                {
                    var rebuilt = Rebuild(run, ino, names[ino]);
                    run.Repair(t => FileCheckRun.PutInode(t, ino, rebuilt));
                }
                else
                {
                    run.State.Declined.Add(ino);
                }
            }
            _queue.Clear();
        }
    }

    /// <summary>The dirents naming an inode: how many, and the directory, slot and file type of the last one.</summary>
    private readonly record struct NamedBy(uint Names, ulong Dir, ulong Slot, FileType Type);

    /// <summary>The distinct inode numbers a btree keyed by (inode, …) holds keys under, ascending (one seek per number).</summary>
    private sealed class OwnerStream
    {
        private readonly Btree.BtreeIterator _it;

        public OwnerStream(Btree.Btree tree)
        {
            _it = tree.Iterate(Bpos.Min, Bpos.Max);
            Advance();
        }

        /// <summary>The current inode number; ulong.MaxValue at the end.</summary>
        public ulong Owner { get; private set; }

        public void SkipPast(ulong ino)
        {
            if (Owner > ino || ino == ulong.MaxValue)
                return;
            _it.Seek(new Bpos(ino + 1, 0, 0));
            Advance();
        }

        private void Advance()
        {
            while (_it.MoveNext())
            {
                if (_it.Key.IsDeletion || _it.Key.Type == KeyType.HashWhiteout)
                    continue;
                Owner = _it.Key.Pos.Inode;
                return;
            }
            Owner = ulong.MaxValue;
        }
    }

    /// <summary>A fresh inode standing in for the lost one at <paramref name="ino"/>, which the dirents in <paramref name="namedBy"/> name.</summary>
    private static InodeValue Rebuild(FileCheckRun run, ulong ino, NamedBy namedBy)
    {
        var dirents = run.Tree(BtreeId.Dirents);
        var isDirectory = false;
        ulong subdirs = 0;
        var own = dirents.Iterate(FsPositions.Slot(ino, 0), FsPositions.Slot(ino, ulong.MaxValue));
        while (own.MoveNext())
        {
            if (own.Key.Type != KeyType.Dirent)
                continue;
            isDirectory = true;
            if (DirentValue.TryRead(own.Value, out var sub, out _) && sub.Type == FileType.Directory)
                subdirs++;
        }

        // The dirents naming it: its type, link count and parent.
        var names = namedBy.Names;
        var (dir, dirSlot) = (namedBy.Dir, namedBy.Slot);
        var namedAs = names == 0 ? FileType.Unknown : namedBy.Type;

        var type = isDirectory ? FileType.Directory : namedAs != FileType.Unknown ? namedAs : FileType.Regular;
        var permissions = type switch
        {
            FileType.Directory when ino == FsPositions.RootIno => 0x1EDu,
            FileType.Directory => 0x1C0u,
            FileType.Symlink => 0x1FFu,
            _ => 0x180u,
        };
        if (ino == FsPositions.RootIno)
            (dir, dirSlot) = (FsPositions.RootIno, 0); // the root is its own parent
        var inode = run.NewInode(ino, FileModes.ModeOf(type, permissions), 0, dir, dirSlot);
        inode.Nlink = type == FileType.Directory ? (uint)(2 + subdirs) : Math.Max(names, 1u);
        if (type != FileType.Directory)
        {
            var (sectors, end) = DataOf(run, ino);
            inode.Sectors += sectors;
            inode.Size = end * FormatLimits.SectorSize;
            if (type == FileType.Symlink)
                inode.Size = SymlinkLength(run, ino, inode.Size);
        }
        return inode;
    }

    /// <summary>
    /// A rebuilt symlink's size: its data holds the target and then zeros up to a whole sector,
    /// and a target holds no NUL byte, so the target ends at the first NUL. Data that cannot be
    /// read keeps the extents' length (check_extents then reports the target).
    /// </summary>
    private static ulong SymlinkLength(FileCheckRun run, ulong ino, ulong dataBytes)
    {
        var data = new byte[Math.Min(dataBytes, (ulong)Basalt.Fs.Files.MaxSymlinkTarget)];
        try
        {
            run.FileSystem.Data.Read(ino, 0, data);
        }
        catch (Diagnostics.BasaltException)
        {
            return dataBytes;
        }
        var nul = Array.IndexOf(data, (byte)0);
        return nul >= 0 ? (ulong)nul : (ulong)data.Length;
    }

    private static void CheckOrphans(FileCheckRun run)
    {
        var it = run.Tree(BtreeId.Orphans).Iterate(FsPositions.Orphan(0), FsPositions.Orphan(ulong.MaxValue));
        while (it.MoveNext())
        {
            var pos = it.Key.Pos;
            var ino = pos.Offset;
            string? why = null;
            if (!run.Tree(BtreeId.Inodes).TryGet(FsPositions.Inode(ino), out var value))
                why = "no inode";
            else if (!InodeValue.TryRead(value, out var inode, out _))
                continue; // check_inodes rebuilt it (or was told not to): its links are check_nlinks' business
            else if (inode.IsDirectory)
                why = "a directory";
            else if (inode.Nlink > 0)
                why = $"an inode with {inode.Nlink} links";
            if (why is not null && run.Reporter.Report(FsckErrorId.OrphanKeyBad, run.Where(BtreeId.Orphans, pos), $"orphan key of inode {ino}, which is {why}"))
                run.Repair(t => t.Delete(BtreeId.Orphans, pos));
        }
    }

    private static void CheckTruncates(FileCheckRun run)
    {
        var pending = new List<(ulong Ino, ulong Size)>();
        var it = run.Tree(BtreeId.LoggedOps).Iterate(FsPositions.Truncate(0), FsPositions.Truncate(ulong.MaxValue));
        while (it.MoveNext())
        {
            var key = it.Key;
            if (key.Type != KeyType.LoggedOpTruncate || key.Pos.Snapshot != 0)
                continue;
            var ino = key.Pos.Offset;
            string? bad = null;
            if (!TruncateIntent.TryRead(it.Value, out var intent, out var problem))
                bad = problem;
            else if (!run.TryReadInode(ino, out var inode))
                bad = $"inode {ino} does not exist or does not decode";
            else if (inode.Type != FileType.Regular)
                bad = $"inode {ino} is a {FileModes.ToText(inode.Type)}";
            if (bad is not null)
            {
                if (run.Reporter.Report(FsckErrorId.TruncateIntentBad, run.Where(BtreeId.LoggedOps, key.Pos), $"truncate intent: {bad}"))
                    run.Repair(t => t.Delete(BtreeId.LoggedOps, key.Pos));
                continue;
            }
            if (run.Reporter.Report(FsckErrorId.TruncateInterrupted, run.WhereInode(ino), $"truncate to {intent.NewSize} bytes was interrupted"))
                pending.Add((ino, intent.NewSize));
        }
        run.Flush();
        // Each cut takes its own transactions (ExtentStore.Punch): after the walk.
        foreach (var (ino, size) in pending)
            run.FileSystem.Files.CutExtents(ino, size);
    }
}
