// check_extents: every extent belongs to an existing regular file or symlink and lies within its
// size; each inode's sector count (st_blocks) equals the sum of its data extents (extents,
// inline data, reservations and reflink pointers: a shared range counts in every file that holds it).
// A reflink pointer is an extent for every check here: it has an owner and may not reach past
// the end of the file (the cut keeps the range it took its references on, ExtentEdits.Piece).
//
// One ordered merge of the inodes btree with the extents btree (both ordered by inode number):
// per inode only a running sum is kept. Deletions go through transactions, so the extent trigger
// frees the space and the backpointers; cutting a file past its size is ExtentStore.Punch, as a
// truncate does, and the sector count is compared again after it.
using Basalt.Format;
using Basalt.Fs;

namespace Basalt.Fsck.Files;

internal static class CheckExtents
{
    public static void Run(FileCheckRun run)
    {
        var extents = new ExtentCursor(run);
        var inodes = run.Tree(BtreeId.Inodes).Iterate(FsPositions.Inode(0), FsPositions.Inode(ulong.MaxValue));
        while (inodes.MoveNext())
        {
            var ino = inodes.Key.Pos.Offset;
            extents.SkipMissing(ino);
            if (inodes.Key.Type != KeyType.Inode || !InodeValue.TryRead(inodes.Value, out var inode, out _))
            {
                extents.Skip(ino); // check_inodes reported it; its extents wait for the rebuilt inode
                continue;
            }
            CheckInode(run, extents, ino, inode);
        }
        extents.SkipMissing(ulong.MaxValue);
    }

    private static void CheckInode(FileCheckRun run, ExtentCursor extents, ulong ino, InodeValue inode)
    {
        var holdsData = inode.Type is FileType.Regular or FileType.Symlink;
        var endSector = (inode.Size + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize;
        ulong sectors = 0;
        var reportedNonFile = false;
        Bkey? pastEnd = null;
        while (extents.At(ino))
        {
            var key = extents.Key;
            if (!holdsData)
            {
                if (!reportedNonFile)
                {
                    reportedNonFile = true;
                    if (!run.Reporter.Report(FsckErrorId.ExtentInNonFile, run.Where(BtreeId.Extents, key.Pos),
                            $"{key.ToText()} belongs to inode {ino}, a {FileModes.ToText(inode.Type)}"))
                    {
                        extents.Skip(ino);
                        return;
                    }
                }
                var pos = key.Pos;
                run.Repair(t => t.Delete(BtreeId.Extents, pos));
                extents.Next();
                continue;
            }
            if (key.Type.CountsSectors())
                sectors += key.Size;
            if (key.Type != KeyType.Reservation && key.Pos.Offset > endSector)
                pastEnd ??= key;
            extents.Next();
        }
        if (!holdsData)
        {
            if (reportedNonFile)
                return; // the trigger takes the deleted extents off its sector count
            sectors = 0;
            if (inode.IsDirectory)
                return; // the trigger keeps no sector count for directories
        }

        if (pastEnd is { } past && !run.Tree(BtreeId.LoggedOps).TryGet(FsPositions.Truncate(ino), out _)
            && run.Reporter.Report(FsckErrorId.ExtentPastEndOfFile, run.Where(BtreeId.Extents, past.Pos),
                $"{past.ToText()} of inode {ino} ends past its size {inode.Size} (sector {endSector})"))
        {
            run.Flush();
            run.FileSystem.Data.Punch(ino, (long)inode.Size, (long.MaxValue / FormatLimits.SectorSize * FormatLimits.SectorSize) - (long)inode.Size);
            // The cut changed both the extents and (through the trigger) the count: compare afresh.
            sectors = SumSectors(run, ino);
            if (!run.TryReadInode(ino, out inode))
                return;
        }

        if (inode.Sectors != sectors
            && run.Reporter.Report(FsckErrorId.InodeSectorsWrong, run.WhereInode(ino), $"sector count {inode.Sectors}, its extents hold {sectors}"))
        {
            run.Repair(t =>
            {
                if (!FileCheckRun.TryReadInode(t, ino, out var current))
                    return;
                current.Sectors = sectors;
                FileCheckRun.PutInode(t, ino, current);
            });
        }
    }

    private static ulong SumSectors(FileCheckRun run, ulong ino)
    {
        ulong sum = 0;
        var it = run.Tree(BtreeId.Extents).Iterate(new Bpos(ino, 0, 0), new Bpos(ino, ulong.MaxValue, uint.MaxValue));
        while (it.MoveNext())
        {
            if (it.Key.Type.CountsSectors())
                sum += it.Key.Size;
        }
        return sum;
    }

    /// <summary>The extents btree walked in order beside the inodes; reports the extents of inode numbers with no inode.</summary>
    private sealed class ExtentCursor
    {
        private readonly FileCheckRun _run;
        private readonly Btree.BtreeIterator _it;
        private bool _valid;

        public ExtentCursor(FileCheckRun run)
        {
            _run = run;
            _it = run.Tree(BtreeId.Extents).Iterate(Bpos.Min, Bpos.Max);
            Next();
        }

        public Bkey Key => _it.Key;

        public void Next()
        {
            do
                _valid = _it.MoveNext();
            while (_valid && _it.Key.IsDeletion);
        }

        public bool At(ulong ino) => _valid && _it.Key.Pos.Inode == ino;

        /// <summary>Passes the extents of one inode without looking at them.</summary>
        public void Skip(ulong ino)
        {
            while (At(ino))
                Next();
        }

        /// <summary>
        /// Passes the extents of every inode number below <paramref name="ino"/> (none has an
        /// inode): those of a number whose rebuild was declined are deleted when the reporter
        /// agrees; the others are the data layer's, used on its own.
        /// </summary>
        public void SkipMissing(ulong ino)
        {
            while (_valid && _it.Key.Pos.Inode < ino)
            {
                var owner = _it.Key.Pos.Inode;
                if (!_run.State.Declined.Contains(owner))
                {
                    Skip(owner);
                    continue;
                }
                var first = _it.Key;
                var repair = _run.Reporter.Report(FsckErrorId.ExtentToMissingInode, _run.Where(BtreeId.Extents, first.Pos),
                    $"{first.ToText()}: inode {owner} does not exist");
                while (At(owner))
                {
                    var pos = _it.Key.Pos;
                    if (repair)
                        _run.Repair(t => t.Delete(BtreeId.Extents, pos));
                    Next();
                }
            }
        }
    }
}
