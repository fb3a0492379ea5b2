// The filesystem layer (DESIGN §1 layer 11): inodes, directories, links, symlinks, special files,
// file data, xattrs, orphans and resumable truncates on top of the btrees and the extent store.
//
// Every operation that changes the namespace is one transaction: the dirents, the inodes whose
// link counts or times change, and the orphan key of an inode losing its last link commit
// together, so a crash shows each operation whole or not at all. File data follows the extent
// store's rule (g): the data is written first, then the extents and the inode's size commit in
// one transaction per batch; a large write may keep a prefix after a crash, and the size never
// covers data that is not there.
//
// Work that does not fit one transaction is made resumable by a key written in its first
// transaction: an inode that loses its last link is put on the orphan list, and its extents and
// xattrs are removed in batches before the inode and the orphan key go (at once, or when its
// last open handle is released, or at the next mount); a truncate that cuts extents writes a
// truncate intent with the new size, which the last batch deletes; a reflink of more than one
// batch writes a reflink intent with its progress (Files.Reflink.cs). Mount finishes all three.
//
// Reads (stat, lookup, readdir, read) go straight to the btrees without the writer gate; writes
// are serialised by it. Errors are BasaltExceptions whose codes map one to one onto errno
// (Errno.Of); names are bytes.
using System.Runtime.CompilerServices;
using Basalt.Alloc;
using Basalt.Btree;
using Basalt.Data;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Transactions;

namespace Basalt.Fs;

/// <summary>When reads update an inode's access time.</summary>
public enum AtimeMode
{
    /// <summary>Only when the access time is not newer than the modification or change time, or is a day old (Linux's default).</summary>
    Relatime,
    /// <summary>Never.</summary>
    Noatime,
    /// <summary>On every read.</summary>
    Strictatime,
}

/// <summary>An inode as stat(2) reports it.</summary>
public readonly record struct InodeAttr(ulong Ino, InodeValue Inode)
{
    public FileType Type => Inode.Type;

    public uint Mode => Inode.Mode;

    public ulong Size => Inode.Size;

    public uint Nlink => Inode.Nlink;

    public bool IsDirectory => Inode.IsDirectory;
}

/// <summary>One readdir entry; <paramref name="Next"/> is the cookie that resumes after it.</summary>
public readonly record struct DirEntry(byte[] Name, ulong Ino, FileType Type, long Next);

/// <summary>Changes of a setattr; null leaves a field alone. <see cref="Now"/> as a time sets the current time.</summary>
public readonly record struct SetAttrRequest(uint? Mode = null, uint? Uid = null, uint? Gid = null, long? Size = null,
    long? AtimeNs = null, long? MtimeNs = null)
{
    public const long Now = long.MaxValue;
}

/// <summary>Deliberate file-layer bugs the crash suite must catch.</summary>
internal enum FilesDebugFault
{
    None,
    /// <summary>Fsync returns without making anything durable.</summary>
    FsyncWithoutFlush,
    /// <summary>A rename to a new name commits the new name, makes it durable, then removes the old one in a second transaction.</summary>
    RenameInTwoTransactions,
}

/// <summary>fallocate(2) modes (FALLOC_FL_* numbers).</summary>
[Flags]
public enum FallocateFlags
{
    None = 0,
    KeepSize = 0x01,
    PunchHole = 0x02,
    ZeroRange = 0x10,
}

/// <summary>How <see cref="Files.Rename"/> treats an existing target.</summary>
[Flags]
public enum RenameFlags
{
    None = 0,
    /// <summary>Fail with EEXIST when the target exists (RENAME_NOREPLACE).</summary>
    NoReplace = 1,
    /// <summary>Swap source and target, which must both exist (RENAME_EXCHANGE).</summary>
    Exchange = 2,
}

/// <summary>How <see cref="Files.SetXattr"/> treats an existing or missing attribute.</summary>
public enum XattrSetMode
{
    /// <summary>Create or replace.</summary>
    Any,
    /// <summary>Fail with EEXIST when it exists (XATTR_CREATE).</summary>
    Create,
    /// <summary>Fail with ENODATA when it does not (XATTR_REPLACE).</summary>
    Replace,
}

/// <summary>The filesystem's statfs numbers.</summary>
public readonly record struct FsStats(long BlockSize, long TotalBytes, long FreeBytes, long AvailableBytes, long Inodes, long MaxNameLength);

public sealed partial class Files : IInodeSectors
{
    private const long MaxFileSize = long.MaxValue / 4;
    public const int MaxSymlinkTarget = 4095;
    private const long DayNs = 86_400L * 1_000_000_000;

    private readonly BtreeEngine _engine;
    private readonly Transactor? _transactor;
    private readonly ExtentStore _data;
    private readonly JournalWriter _journal;
    private readonly Func<FsStats> _spaceStats;
    private readonly SpaceManager _space;
    private readonly DentryCache? _dentries;
    private readonly object _openLock = new();
    private readonly Dictionary<ulong, int> _open = [];
    // The next free inode number, found on first use (0 until then): a mount reads nothing of the
    // inodes btree up front, so fsck can mount before topology repair has made it readable.
    private long _nextIno;
    private readonly object _inoLock = new();
    private long _inodeCount = -1;

    internal Files(BtreeEngine engine, Transactor? transactor, ExtentStore data, SpaceManager space, JournalWriter journal, AtimeMode atime,
        Func<FsStats> spaceStats, int lookupCacheEntries = 0)
    {
        FsKeyTypes.Register();
        _engine = engine;
        _transactor = transactor;
        _data = data;
        _journal = journal;
        _space = space;
        _spaceStats = spaceStats;
        Atime = atime;
        if (lookupCacheEntries > 0)
            _dentries = new DentryCache(lookupCacheEntries);
        engine.SetService<IInodeSectors>(this);
    }

    public AtimeMode Atime { get; }

    /// <summary>The current time in nanoseconds since the epoch (tests may replace the clock).</summary>
    internal Func<long> Clock { get; set; } = () => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;

    private Transactor Writer =>
        _transactor ?? throw new BasaltException(ErrorCode.ReadOnlyDevice, "the filesystem is mounted read-only");

    private Btree.Btree Inodes => _engine[BtreeId.Inodes];

    /// <summary>A fresh inode number.</summary>
    private ulong AllocateIno()
    {
        if (Interlocked.Read(ref _nextIno) == 0)
        {
            lock (_inoLock)
            {
                if (Interlocked.Read(ref _nextIno) == 0)
                    Interlocked.Exchange(ref _nextIno, (long)NextFreeIno());
            }
        }
        return (ulong)Interlocked.Increment(ref _nextIno) - 1;
    }

    private ulong NextFreeIno()
    {
        var it = Inodes.Iterate(FsPositions.Inode(0), FsPositions.Inode(ulong.MaxValue), reverse: true);
        var last = it.MoveNext() ? it.Key.Pos.Offset : 0;
        return Math.Max(last + 1, FsPositions.FirstUserIno);
    }

    // ---- Mount: root, orphans, truncates --------------------------------------------------------

    /// <summary>
    /// On a writable mount with maintenance on: creates the root directory and lost+found when the
    /// filesystem has none (its first mount), then finishes the deletions and truncates a crash
    /// interrupted.
    /// </summary>
    internal void Start(bool maintenance)
    {
        if (_transactor is null || !maintenance)
            return;
        try
        {
            if (!Inodes.TryGet(FsPositions.Inode(FsPositions.RootIno), out _))
                CreateRoot();
            FinishReflinks();
            FinishTruncates();
            FinishOrphans();
        }
        catch (BasaltException e) when (e.Class is ErrorClass.Corruption or ErrorClass.Io)
        {
            // A damaged btree does not keep the filesystem from mounting: the work waits for fsck.
            StartProblem = e.Message;
        }
    }

    /// <summary>Why the mount-time work (root, orphans, truncates) stopped, or null when it finished.</summary>
    public string? StartProblem { get; private set; }

    /// <summary>Creates the root directory with lost+found in it (first mount; fsck's repair of a missing root builds on it).</summary>
    internal void CreateRoot()
    {
        var now = Clock();
        Writer.Transact(t =>
        {
            var root = NewInode(FileModes.ModeOf(FileType.Directory, 0x1ED), 0, 0, now, FsPositions.RootIno, 0);
            root.Nlink = 3;
            var lostFound = NewInode(FileModes.ModeOf(FileType.Directory, 0x1C0), 0, 0, now, FsPositions.RootIno, 0);
            var name = "lost+found"u8.ToArray();
            var slot = HashedSlots.Find(HashedSlots.Of(t, BtreeId.Dirents), FsPositions.RootIno,
                Names.SlotOf(root.HashSeed, name), KeyType.Dirent, _ => false).Slot;
            lostFound.DirSlot = slot;
            t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(FsPositions.RootIno, slot), KeyType.Dirent),
                new DirentValue(FsPositions.LostAndFoundIno, FileType.Directory, name).ToBytes());
            PutInode(t, FsPositions.RootIno, root);
            PutInode(t, FsPositions.LostAndFoundIno, lostFound);
        }, CommitOptions.Durable);
        Interlocked.Exchange(ref _inodeCount, -1);
    }

    /// <summary>Finishes the truncates whose intent is still recorded (fsck's repair, and mount's).</summary>
    internal void FinishTruncates()
    {
        var it = _engine[BtreeId.LoggedOps].Iterate(FsPositions.Truncate(0), FsPositions.Truncate(ulong.MaxValue));
        var pending = new List<(ulong Ino, ulong Size)>();
        while (it.MoveNext())
        {
            if (it.Key.Type == KeyType.LoggedOpTruncate && TruncateIntent.TryRead(it.Value, out var intent, out _))
                pending.Add((it.Key.Pos.Offset, intent.NewSize));
        }
        foreach (var (ino, size) in pending)
            CutExtents(ino, size);
    }

    /// <summary>Deletes the orphans that are linked nowhere and drops the orphan keys of linked inodes.</summary>
    internal void FinishOrphans()
    {
        var it = _engine[BtreeId.Orphans].Iterate(FsPositions.Orphan(0), FsPositions.Orphan(ulong.MaxValue));
        var orphans = new List<ulong>();
        while (it.MoveNext())
            orphans.Add(it.Key.Pos.Offset);
        foreach (var ino in orphans)
        {
            if (TryGetInode(ino, out var inode) && inode.Nlink == 0)
            {
                Evict(ino);
            }
            else
            {
                Writer.Transact(t => t.Delete(BtreeId.Orphans, FsPositions.Orphan(ino)));
            }
        }
    }

    /// <summary>Inodes on the orphan list (linked nowhere; open, or with a deletion still to finish).</summary>
    public IReadOnlyList<ulong> Orphans()
    {
        var it = _engine[BtreeId.Orphans].Iterate(FsPositions.Orphan(0), FsPositions.Orphan(ulong.MaxValue));
        var list = new List<ulong>();
        while (it.MoveNext())
            list.Add(it.Key.Pos.Offset);
        return list;
    }

    // ---- Inodes ---------------------------------------------------------------------------------

    private static InodeValue NewInode(uint mode, uint uid, uint gid, long now, ulong dir, ulong dirSlot) =>
        InodeValue.Create(mode, uid, gid, now, dir, dirSlot);

    /// <summary>Reads an inode outside any transaction, through a stack buffer: one lookup, nothing allocated.</summary>
    [SkipLocalsInit] // the buffer is read only where the lookup copied the value into it
    private bool TryGetInode(ulong ino, out InodeValue inode)
    {
        inode = default;
        Span<byte> value = stackalloc byte[InodeValue.SizeOf];
        if (!Inodes.TryGet(FsPositions.Inode(ino), value, out var length))
            return false;
        if (length > value.Length)
            BasaltException.Throw(ErrorCode.IoError, $"inode {ino} is damaged (inode value of {length} bytes, expected {InodeValue.SizeOf}); run fsck");
        return Decode(ino, value[..length], out inode);
    }

    private static bool Decode(ulong ino, ReadOnlySpan<byte> value, out InodeValue inode)
    {
        if (!InodeValue.TryRead(value, out inode, out var problem))
            BasaltException.Throw(ErrorCode.IoError, $"inode {ino} is damaged ({problem}); run fsck");
        return true;
    }

    private static bool TryReadInode(Transaction t, ulong ino, out InodeValue inode)
    {
        inode = default;
        return t.TryGet(BtreeId.Inodes, FsPositions.Inode(ino), out var value) && Decode(ino, value, out inode);
    }

    private static InodeValue ReadInode(Transaction t, ulong ino) =>
        TryReadInode(t, ino, out var inode) ? inode : throw new BasaltException(ErrorCode.FileNotFound, $"inode {ino} does not exist");

    private static void PutInode(Transaction t, ulong ino, in InodeValue inode) =>
        t.SetOwned(BtreeId.Inodes, new Bkey(FsPositions.Inode(ino), KeyType.Inode), inode.ToBytes());

    private static InodeValue ReadDirectory(Transaction t, ulong ino)
    {
        var dir = ReadInode(t, ino);
        if (!dir.IsDirectory)
            BasaltException.Throw(ErrorCode.NotDirectory, $"inode {ino} is not a directory");
        if (dir.Nlink == 0)
            BasaltException.Throw(ErrorCode.FileNotFound, $"directory {ino} has been removed");
        return dir;
    }

    /// <summary>The attributes of <paramref name="ino"/> (ENOENT when it does not exist).</summary>
    public InodeAttr GetAttr(ulong ino) =>
        TryGetInode(ino, out var inode) ? new InodeAttr(ino, inode) : throw new BasaltException(ErrorCode.FileNotFound, $"inode {ino} does not exist");

    public bool TryGetAttr(ulong ino, out InodeAttr attr)
    {
        attr = default;
        if (!TryGetInode(ino, out var inode))
            return false;
        attr = new InodeAttr(ino, inode);
        return true;
    }

    /// <summary>Keeps an inode's sector count (st_blocks) as its extents change: called by the extent trigger.</summary>
    void IInodeSectors.Add(ITriggerTransaction t, ulong ino, long sectors)
    {
        if (!t.TryGet(BtreeId.Inodes, FsPositions.Inode(ino), out var key, out var value) || key.Type != KeyType.Inode
            || !InodeValue.TryRead(value, out var inode, out _) || inode.IsDirectory)
        {
            return;
        }
        inode.Sectors = (ulong)Math.Max(0, (long)inode.Sectors + sectors);
        t.Set(BtreeId.Inodes, key, inode.ToBytes());
    }

    /// <summary>statfs: space from the allocator, the number of inodes in use.</summary>
    public FsStats Stats()
    {
        var stats = _spaceStats();
        var count = Interlocked.Read(ref _inodeCount);
        if (count < 0)
        {
            count = 0;
            var it = Inodes.Iterate(FsPositions.Inode(0), FsPositions.Inode(ulong.MaxValue));
            while (it.MoveNext())
                count++;
            Interlocked.Exchange(ref _inodeCount, count);
        }
        return stats with { Inodes = count };
    }

    private void CountInodes(int delta)
    {
        if (Interlocked.Read(ref _inodeCount) >= 0)
            Interlocked.Add(ref _inodeCount, delta);
    }

    // ---- Open handles ---------------------------------------------------------------------------

    /// <summary>Counts an open handle: an inode unlinked while open stays (on the orphan list) until its last release.</summary>
    public void Open(ulong ino)
    {
        lock (_openLock)
        {
            if (!TryGetInode(ino, out var inode) || (inode.Nlink == 0 && !_open.ContainsKey(ino)))
                BasaltException.Throw(ErrorCode.FileNotFound, $"inode {ino} does not exist");
            _open[ino] = _open.GetValueOrDefault(ino) + 1;
        }
    }

    /// <summary>Drops an open handle; the last one of an unlinked inode deletes it.</summary>
    public void Release(ulong ino)
    {
        lock (_openLock)
        {
            if (!_open.TryGetValue(ino, out var count))
                return;
            if (count > 1)
            {
                _open[ino] = count - 1;
                return;
            }
            _open.Remove(ino);
        }
        if (_transactor is not null && TryGetInode(ino, out var inode) && inode.Nlink == 0)
            Evict(ino);
    }

    private bool IsOpen(ulong ino)
    {
        lock (_openLock)
            return _open.ContainsKey(ino);
    }

    /// <summary>Deletes an inode linked nowhere: its extents in batches, then its xattrs, inode and orphan key.</summary>
    private void Evict(ulong ino)
    {
        _data.DeleteAll(ino);
        var done = false;
        while (!done)
        {
            done = Writer.Transact(t =>
            {
                var xattrs = t.Range(BtreeId.Xattrs, FsPositions.Slot(ino, 0), FsPositions.Slot(ino, ulong.MaxValue), 64);
                foreach (var (key, _) in xattrs)
                    t.Delete(BtreeId.Xattrs, key.Pos);
                if (xattrs.Count == 64)
                    return false;
                t.Delete(BtreeId.Inodes, FsPositions.Inode(ino));
                t.Delete(BtreeId.Orphans, FsPositions.Orphan(ino));
                t.Delete(BtreeId.LoggedOps, FsPositions.Truncate(ino));
                return true;
            });
        }
        CountInodes(-1);
    }

    // ---- Durability -----------------------------------------------------------------------------

    /// <summary>Makes every change made so far (data, metadata and the names leading to it) durable.</summary>
    public void Fsync(ulong ino)
    {
        if (_transactor is null || DebugFault == FilesDebugFault.FsyncWithoutFlush)
            return;
        _journal.WaitDurable(_journal.CommittedSeq);
    }

    /// <summary>A deliberate bug for the crash suite's must-fail checks (never set outside tests).</summary>
    internal FilesDebugFault DebugFault { get; set; }

    private long Now() => Clock();

    private static long Resolve(long time, long now) => time == SetAttrRequest.Now ? now : time;
}
