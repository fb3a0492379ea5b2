// check_extents: every extent belongs to an existing regular file or symlink and lies within its
// size; each inode's sector count (st_blocks) equals the sum of its data extents (extents,
// inline data, reservations and reflink pointers: a shared range counts in every file that holds it).
// A reflink pointer is an extent for every check here: it has an owner and may not reach past
// the end of the file.
//
// One ordered merge of the inodes btree with the extents btree (both ordered by inode number):
// per inode only a running sum is kept. Deletions go through transactions, so the extent trigger
// frees the space and the backpointers. Data past a file's size is kept: the size is raised over
// it (a size that lags its data is an older inode version a dropped bset brought back).
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
        ulong sectors = 0, errorSectors = 0;
        var holes = new HoleList(endSector);
        var reportedNonFile = false;
        Bkey? pastEnd = null;
        ulong dataEnd = 0;
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
            else if (key.Type == KeyType.Error)
                errorSectors += key.Size;
            if (key.Type != KeyType.Reservation && key.Pos.Offset > endSector)
            {
                pastEnd ??= key;
                dataEnd = Math.Max(dataEnd, key.Pos.Offset);
            }
            holes.Cover(key.Pos.Offset - Math.Min(key.Size, key.Pos.Offset), key.Pos.Offset);
            extents.Next();
        }
        holes.Cover(endSector, endSector);
        if (inode.Type == FileType.Symlink && SymlinkProblem(run, ino, inode.Size) is { } problem
            && run.Reporter.Report(FsckErrorId.SymlinkTargetBad, run.WhereInode(ino), $"symlink target of {inode.Size} bytes: {problem}"))
        {
            run.Flush();
            run.FileSystem.Data.Punch(ino, 0, long.MaxValue / FormatLimits.SectorSize * FormatLimits.SectorSize);
            run.Repair(t => t.Delete(BtreeId.Inodes, FsPositions.Inode(ino)));
            return;
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
                $"{past.ToText()} of inode {ino} ends past its size {inode.Size} (sector {endSector}); its data ends at sector {dataEnd}"))
        {
            // A size that lags the data is what an older version of the inode leaves (a dropped
            // bset brings it back): the data is kept and the size raised to cover it, as e2fsck
            // does; the exact byte length is lost with the newer inode, so it is whole sectors.
            var newSize = dataEnd * FormatLimits.SectorSize;
            run.Repair(t =>
            {
                if (!FileCheckRun.TryReadInode(t, ino, out var current) || current.Size >= newSize)
                    return;
                current.Size = newSize;
                FileCheckRun.PutInode(t, ino, current);
            });
        }

        // The count says the file held more data than its keys do, and the holes inside its size
        // add up to exactly the difference: those holes are data whose keys were lost (inline
        // data has no backpointer that could name it). They read as EIO from now on, not zeros.
        if (pastEnd is null && inode.Type == FileType.Regular && inode.Sectors > sectors + errorSectors && !holes.Overflowed
            && holes.Sectors == inode.Sectors - sectors - errorSectors
            && run.Reporter.Report(FsckErrorId.ExtentDataLost, run.WhereInode(ino),
                $"sector count {inode.Sectors}, its keys hold {sectors + errorSectors}, and its holes ({string.Join(", ", holes.Ranges.Take(4).Select(h => $"{h.From}..{h.To}"))}{(holes.Ranges.Count > 4 ? ", …" : "")}) add up to the difference: their data is lost"))
        {
            foreach (var (from, to) in holes.Ranges)
            {
                var key = new Bkey(Data.ExtentStore.EndPos(ino, to), KeyType.Error, (uint)(to - from));
                run.Repair(t => t.Set(BtreeId.Extents, key, []));
            }
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

    /// <summary>Why a symlink's target cannot be read whole (null when it can).</summary>
    private static string? SymlinkProblem(FileCheckRun run, ulong ino, ulong size)
    {
        if (size == 0 || size > Basalt.Fs.Files.MaxSymlinkTarget)
            return size == 0 ? "empty" : $"longer than {Basalt.Fs.Files.MaxSymlinkTarget} bytes";
        var endSector = (size + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize;
        ulong covered = 0;
        var it = run.Tree(BtreeId.Extents).Iterate(new Bpos(ino, 1, 0), new Bpos(ino, ulong.MaxValue, uint.MaxValue));
        while (covered < endSector && it.MoveNext())
        {
            var key = it.Key;
            if (key.IsDeletion)
                continue;
            var start = key.Pos.Offset - Math.Min(key.Size, key.Pos.Offset);
            if (start > covered)
                return $"sectors {covered}..{start} are a hole";
            if (key.Type == KeyType.Error)
                return $"sectors {start}..{key.Pos.Offset} are lost";
            if (key.Type is not (KeyType.Extent or KeyType.InlineData or KeyType.ReflinkP))
                return $"sectors {start}..{key.Pos.Offset} hold no data ({key.Type.ToText()})";
            covered = Math.Max(covered, key.Pos.Offset);
        }
        if (covered < endSector)
            return $"sectors {covered}..{endSector} are a hole";
        var target = new byte[size];
        try
        {
            run.FileSystem.Data.Read(ino, 0, target);
        }
        catch (Diagnostics.BasaltException e)
        {
            return $"cannot be read ({e.Message})";
        }
        var nul = Array.IndexOf(target, (byte)0);
        return nul >= 0 ? $"a NUL byte at offset {nul}" : null;
    }

    /// <summary>The holes below a file's end sector, from its keys in order (at most a few hundred kept).</summary>
    private sealed class HoleList(ulong endSector)
    {
        private const int Limit = 256;
        private ulong _cursor;

        public List<(ulong From, ulong To)> Ranges { get; } = [];

        public ulong Sectors { get; private set; }

        /// <summary>More holes than are kept: the sum is not known, nothing is filled.</summary>
        public bool Overflowed { get; private set; }

        public void Cover(ulong from, ulong to)
        {
            var gapEnd = Math.Min(from, endSector);
            if (gapEnd > _cursor)
            {
                if (Ranges.Count < Limit)
                    Ranges.Add((_cursor, gapEnd));
                else
                    Overflowed = true;
                Sectors += gapEnd - _cursor;
            }
            _cursor = Math.Max(_cursor, to);
        }
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
