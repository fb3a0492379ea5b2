// check_dirents and check_xattrs: the hashed btrees (values that do not decode never get here:
// node reads drop them, bkey_value_invalid). Both walk their btree in order beside the
// inodes btree (the owner of a run of keys is found by a forward-only cursor, never a lookup) and
// track the run of occupied slots the walk is in: an entry at slot S whose name hashes to H is
// reachable by probing exactly when H <= S and every slot from H to S is occupied, that is, when
// H lies in the current run at or before S. Names are remembered only within a run, because two
// entries of one name that a probe can both reach sit in the same run.
//
// Repairs that move an entry (to the slot its hash probes to, or to a new name) are applied after
// the walk leaves the owner, so the walk never meets an entry twice; deletions leave hash
// whiteouts where a chain runs through them (HashedSlots.Remove), so no repair breaks another
// entry's chain. A dirent's move carries its target's parent backref with it.
using System.Text;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Transactions;

namespace Basalt.Fsck.Files;

internal static class CheckHashed
{
    public static void CheckDirents(FileCheckRun run)
    {
        SalvageDirents(run);
        var owners = new OwnerCursor(run);
        var it = new Walk(run.Tree(BtreeId.Dirents));
        while (it.Valid)
        {
            var dir = it.Key.Pos.Inode;
            var state = owners.Seek(dir, out var owner);
            if (state == OwnerState.Undecodable)
            {
                it.SkipOwner(dir);
                continue;
            }
            if (state == OwnerState.Missing || !owner.IsDirectory)
            {
                DropAll(run, it, BtreeId.Dirents, FsckErrorId.DirentInNonDirectory, dir,
                    state == OwnerState.Missing ? $"inode {dir} does not exist" : $"inode {dir} is a {FileModes.ToText(owner.Type)}");
                continue;
            }
            CheckDirectory(run, it, dir, owner.HashSeed);
        }
        run.Flush();
    }

    /// <summary>Probing distance within which a salvaged name's slot must lie from its hash.</summary>
    private const ulong SalvageProbeLimit = 64;

    /// <summary>
    /// The salvages' proof of a name: hashed with its directory's <paramref name="seed"/>, it leads
    /// to at most <see cref="SalvageProbeLimit"/> slots before <paramref name="slot"/>. A changed byte
    /// of the name, the slot or the seed breaks it.
    /// </summary>
    internal static bool HashLeadsNear(ulong seed, ReadOnlySpan<byte> name, ulong slot)
    {
        var hash = Names.SlotOf(seed, name);
        return hash <= slot && slot - hash <= SalvageProbeLimit;
    }

    /// <summary>
    /// dirent_salvaged: names that dirents leaves lost to a bset that failed its checksum are
    /// written back when the dropped bytes prove them. The bytes are not checksummed any more, so
    /// each name needs two independent proofs: its name hashes (with its directory's seed) to at
    /// most <see cref="SalvageProbeLimit"/> slots before its own, which a changed byte of the name
    /// or of the position would break; and its target inode records exactly this directory and
    /// slot as its parent and has the dirent's type, which a changed target would break. Keys of
    /// later records replace earlier ones at a position (a deletion removes it); a slot that holds
    /// a key now is left alone. Only a file's first name is recorded in its inode, so other hard
    /// links stay lost (check_nlinks counts what remains).
    /// </summary>
    private static void SalvageDirents(FileCheckRun run)
    {
        if (run.State.DroppedDirents.Count == 0)
            return;
        var latest = Btree.DroppedRecords.LatestKeys(run.State.DroppedDirents);
        run.State.DroppedDirents.Clear();
        var dirents = run.Tree(BtreeId.Dirents);
        foreach (var (pos, (key, value)) in latest)
        {
            if (key.Type != KeyType.Dirent || !DirentValue.TryRead(value, out var dirent, out _))
                continue;
            if (dirents.TryGet(pos, out _))
                continue; // the slot is taken: what holds it now is newer than the dropped bytes
            var dir = pos.Inode;
            var slot = pos.Offset;
            if (!run.TryReadInode(dir, out var directory) || !directory.IsDirectory)
                continue;
            if (!HashLeadsNear(directory.HashSeed, dirent.Name, slot))
                continue;
            if (!run.TryReadInode(dirent.Target, out var target) || target.Type != dirent.Type || target.Dir != dir || target.DirSlot != slot)
                continue;
            if (run.FileSystem.Files.TryLookup(dir, dirent.Name, out _))
                continue;
            if (run.Reporter.Report(FsckErrorId.DirentSalvaged, run.Where(BtreeId.Dirents, pos),
                    $"{dirent.ToText()}: lost with a bset that failed its checksum, proven by its hash and its inode's parent backref"))
            {
                var bytes = value;
                run.Repair(t => t.Set(BtreeId.Dirents, new Bkey(pos, KeyType.Dirent), bytes));
            }
        }
        run.Flush();
    }

    private static void CheckDirectory(FileCheckRun run, Walk it, ulong dir, ulong seed)
    {
        var slots = new RunTracker();
        var moves = new List<(ulong Slot, DirentValue Dirent, bool Duplicate)>();
        while (it.Valid && it.Key.Pos.Inode == dir)
        {
            var key = it.Key;
            var slot = key.Pos.Offset;
            slots.Add(slot);
            if (key.Type == KeyType.HashWhiteout)
            {
                it.Next();
                continue;
            }
            // Node reads drop values that do not decode; anything else here only occupies its slot.
            if (key.Type != KeyType.Dirent || !DirentValue.TryRead(it.Value, out var dirent, out _))
            {
                it.Next();
                continue;
            }
            it.Next();
            var where = run.Where(BtreeId.Dirents, key.Pos);
            if (!run.Tree(BtreeId.Inodes).TryGet(FsPositions.Inode(dirent.Target), out var targetValue))
            {
                if (run.Reporter.Report(FsckErrorId.DirentToMissingInode, where, $"{dirent.ToText()}: inode {dirent.Target} does not exist"))
                    run.Repair(t => FileCheckRun.RemoveDirent(t, dir, slot));
                continue;
            }
            if (InodeValue.TryRead(targetValue, out var target, out _) && target.Type != dirent.Type)
            {
                var fixedDirent = dirent with { Type = target.Type };
                if (run.Reporter.Report(FsckErrorId.DirentWrongType, where, $"{dirent.ToText()}: inode {dirent.Target} is a {FileModes.ToText(target.Type)}"))
                {
                    dirent = fixedDirent;
                    run.Repair(t => t.Set(BtreeId.Dirents, new Bkey(key.Pos, KeyType.Dirent), fixedDirent.ToBytes()));
                }
            }
            var hash = Names.SlotOf(seed, dirent.Name);
            if (!slots.Reaches(hash, slot))
            {
                if (run.Reporter.Report(FsckErrorId.DirentBadHash, where, $"{dirent.ToText()} hashes to slot {hash}, which a probe does not lead here from"))
                    moves.Add((slot, dirent, false));
                continue;
            }
            if (slots.Seen(dirent.Name, dirent.Target) is { } first
                && run.Reporter.Report(FsckErrorId.DirentDuplicateName, where,
                    $"{dirent.ToText()}: the name is also at slot {first.Slot} (-> {first.Target})"))
            {
                moves.Add((slot, dirent, true));
            }
        }
        if (moves.Count == 0)
            return;
        run.Flush();
        foreach (var (slot, dirent, duplicate) in moves)
            run.Repair(t => MoveDirent(t, dir, seed, slot, dirent, duplicate));
        run.Flush();
    }

    /// <summary>
    /// In a transaction: takes the dirent at <paramref name="slot"/> out and names its target again
    /// where a probe finds it: under its own name when that is free, else (another entry of that
    /// name is reachable) not at all when that entry names the same inode, and under NAME.dup-INO
    /// when it names another.
    /// </summary>
    private static void MoveDirent(Transaction t, ulong dir, ulong seed, ulong slot, DirentValue dirent, bool duplicate)
    {
        if (!t.TryGet(BtreeId.Dirents, FsPositions.Slot(dir, slot), out var key, out var current) || key.Type != KeyType.Dirent
            || !current.AsSpan().SequenceEqual(dirent.ToBytes()))
        {
            return;
        }
        var probe = FileCheckRun.FindName(t, dir, seed, dirent.Name);
        ulong? newSlot = null;
        if (!duplicate && !probe.Found)
        {
            t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(dir, probe.Slot), KeyType.Dirent), dirent.ToBytes());
            newSlot = probe.Slot;
        }
        else if (!probe.Found || !DirentValue.TryRead(probe.Value, out var other, out _) || other.Target != dirent.Target)
        {
            var name = FileCheckRun.WithSuffix(dirent.Name, ".dup-" + dirent.Target.ToString(System.Globalization.CultureInfo.InvariantCulture));
            newSlot = FileCheckRun.AddName(t, dir, seed, name, dirent.Target, dirent.Type, out _);
        }
        // The old entry goes after the new one is in: removing looks at the slot after it.
        FileCheckRun.RemoveDirent(t, dir, slot);
        if (newSlot is { } moved && FileCheckRun.TryReadInode(t, dirent.Target, out var target) && target.Dir == dir && target.DirSlot == slot)
        {
            target.DirSlot = moved;
            FileCheckRun.PutInode(t, dirent.Target, target);
        }
    }

    public static void CheckXattrs(FileCheckRun run)
    {
        var owners = new OwnerCursor(run);
        var it = new Walk(run.Tree(BtreeId.Xattrs));
        while (it.Valid)
        {
            var ino = it.Key.Pos.Inode;
            var state = owners.Seek(ino, out var owner);
            if (state == OwnerState.Undecodable)
            {
                it.SkipOwner(ino);
                continue;
            }
            if (state == OwnerState.Missing)
            {
                DropAll(run, it, BtreeId.Xattrs, FsckErrorId.XattrToMissingInode, ino, $"inode {ino} does not exist");
                continue;
            }
            CheckXattrsOf(run, it, ino, owner.HashSeed);
        }
        run.Flush();
    }

    private static void CheckXattrsOf(FileCheckRun run, Walk it, ulong ino, ulong seed)
    {
        var slots = new RunTracker();
        var moves = new List<(ulong Slot, XattrValue Xattr)>();
        while (it.Valid && it.Key.Pos.Inode == ino)
        {
            var key = it.Key;
            var slot = key.Pos.Offset;
            slots.Add(slot);
            if (key.Type == KeyType.HashWhiteout)
            {
                it.Next();
                continue;
            }
            if (key.Type != KeyType.Xattr || !XattrValue.TryRead(it.Value, out var xattr, out _))
            {
                it.Next();
                continue;
            }
            it.Next();
            var hash = Names.SlotOf(seed, xattr.Namespace, xattr.Name);
            if (!slots.Reaches(hash, slot)
                && run.Reporter.Report(FsckErrorId.XattrBadHash, run.Where(BtreeId.Xattrs, key.Pos),
                    $"{xattr.ToText()} hashes to slot {hash}, which a probe does not lead here from"))
            {
                moves.Add((slot, xattr));
            }
        }
        if (moves.Count == 0)
            return;
        run.Flush();
        foreach (var (slot, xattr) in moves)
            run.Repair(t => MoveXattr(t, ino, seed, slot, xattr));
        run.Flush();
    }

    /// <summary>In a transaction: moves an xattr to the slot a probe finds for it (dropping it when a reachable one of that name exists).</summary>
    private static void MoveXattr(Transaction t, ulong ino, ulong seed, ulong slot, XattrValue xattr)
    {
        if (!t.TryGet(BtreeId.Xattrs, FsPositions.Slot(ino, slot), out var key, out _) || key.Type != KeyType.Xattr)
            return;
        var probe = HashedSlots.Find(HashedSlots.Of(t, BtreeId.Xattrs), ino, Names.SlotOf(seed, xattr.Namespace, xattr.Name), KeyType.Xattr,
            value => XattrValue.TryReadName(value, out var ns, out var name) && ns == xattr.Namespace && name.SequenceEqual(xattr.Name));
        if (!probe.Found)
            t.Set(BtreeId.Xattrs, new Bkey(FsPositions.Slot(ino, probe.Slot), KeyType.Xattr), xattr.ToBytes());
        HashedSlots.Remove(t, BtreeId.Xattrs, ino, slot);
    }

    /// <summary>Reports the keys of an owner that cannot hold them once, and deletes them all (whiteouts included).</summary>
    private static void DropAll(FileCheckRun run, Walk it, BtreeId btree, FsckErrorId id, ulong owner, string why)
    {
        var first = it.Key.Pos;
        long count = 0;
        var repair = false;
        while (it.Valid && it.Key.Pos.Inode == owner)
        {
            if (count++ == 0)
                repair = run.Reporter.Report(id, run.Where(btree, first), $"{why}, yet keys live under it");
            if (repair)
            {
                var pos = it.Key.Pos;
                run.Repair(t => t.Delete(btree, pos));
            }
            it.Next();
        }
    }

    private enum OwnerState
    {
        Missing,
        Undecodable,
        Found,
    }

    /// <summary>The inodes btree read forward only, for owners that come in ascending order.</summary>
    private sealed class OwnerCursor(FileCheckRun run)
    {
        private readonly Btree.BtreeIterator _it = run.Tree(BtreeId.Inodes).Iterate(FsPositions.Inode(0), FsPositions.Inode(ulong.MaxValue));
        private bool _valid = true;
        private bool _started;

        public OwnerState Seek(ulong ino, out InodeValue inode)
        {
            inode = default;
            if (!_started)
            {
                _started = true;
                _valid = _it.MoveNext();
            }
            while (_valid && _it.Key.Pos.Offset < ino)
                _valid = _it.MoveNext();
            if (!_valid || _it.Key.Pos.Offset != ino)
                return OwnerState.Missing;
            return _it.Key.Type == KeyType.Inode && InodeValue.TryRead(_it.Value, out inode, out _) ? OwnerState.Found : OwnerState.Undecodable;
        }
    }

    /// <summary>A hashed btree walked in order, deletion markers skipped.</summary>
    private sealed class Walk
    {
        private readonly Btree.BtreeIterator _it;

        public Walk(Btree.Btree tree)
        {
            _it = tree.Iterate(Bpos.Min, Bpos.Max);
            Next();
        }

        public bool Valid { get; private set; }

        public Bkey Key => _it.Key;

        public ReadOnlySpan<byte> Value => _it.Value;

        public void Next()
        {
            do
                Valid = _it.MoveNext();
            while (Valid && _it.Key.IsDeletion);
        }

        public void SkipOwner(ulong owner)
        {
            while (Valid && _it.Key.Pos.Inode == owner)
                Next();
        }
    }

    /// <summary>The run of consecutive occupied slots the walk is in, and the names seen in it.</summary>
    private sealed class RunTracker
    {
        private readonly Dictionary<string, (ulong Slot, ulong Target)> _names = new(StringComparer.Ordinal);
        private ulong _start;
        private ulong _last;
        private bool _any;

        public void Add(ulong slot)
        {
            if (!_any || slot != _last + 1)
            {
                _start = slot;
                _names.Clear();
            }
            _any = true;
            _last = slot;
        }

        /// <summary>True when a probe from <paramref name="hash"/> passes only occupied slots to <paramref name="slot"/>.</summary>
        public bool Reaches(ulong hash, ulong slot) => hash >= _start && hash <= slot;

        /// <summary>The first entry of this name in the run, or null (and the name is remembered).</summary>
        public (ulong Slot, ulong Target)? Seen(byte[] name, ulong target)
        {
            var text = Encoding.Latin1.GetString(name);
            if (_names.TryGetValue(text, out var first))
                return first;
            _names[text] = (_last, target);
            return null;
        }
    }
}
