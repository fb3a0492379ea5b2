// What the file passes share while one fsck run (or one FileChecks.Run) goes through them: the
// mounted filesystem, the reporter, the memory budget, repairs batched into transactions, and the
// few namespace edits several passes make (a name added to a directory at the slot a probe finds,
// an inode reattached in lost+found). Every edit goes through a transaction, so the extent trigger
// keeps allocation, backpointers and sector counts consistent with what the repairs delete.
using Basalt.Format;
using Basalt.Fs;
using Basalt.Transactions;

namespace Basalt.Fsck.Files;

/// <summary>What the file passes hand to each other during one run.</summary>
internal sealed class FileCheckState
{
    /// <summary>Inode numbers whose rebuild (inode_missing) was declined: their extents are check_extents' to delete.</summary>
    internal HashSet<ulong> Declined { get; } = [];

    /// <summary>Raw records dirents leaves lost to a bset that failed its checksum (check_btree_nodes), for check_dirents to salvage names from.</summary>
    internal List<Basalt.Btree.DroppedRecords> DroppedDirents { get; } = [];

    /// <summary>Raw records inodes leaves lost the same way, for check_inodes to salvage inodes from.</summary>
    internal List<Basalt.Btree.DroppedRecords> DroppedInodes { get; } = [];

    private long _droppedBytes;

    /// <summary>
    /// Keeps the dropped records of a dirents or inodes leaf while the total stays within
    /// <paramref name="limit"/> bytes (beyond it, what they held is left lost).
    /// </summary>
    internal void AddDropped(Basalt.Btree.DroppedRecords records, long limit)
    {
        var list = records.Btree switch
        {
            BtreeId.Dirents => DroppedDirents,
            BtreeId.Inodes => DroppedInodes,
            _ => null,
        };
        if (list is null || _droppedBytes + records.Bytes.Length > limit)
            return;
        _droppedBytes += records.Bytes.Length;
        list.Add(records);
    }
}

internal sealed class FileCheckRun
{
    private readonly RepairBatch _repairs;

    public FileCheckRun(BasaltFileSystem fs, IFsckReporter reporter, long maxMem, FileCheckState state)
    {
        State = state;
        FileSystem = fs;
        _repairs = new RepairBatch(fs, reporter);
        Reporter = reporter;
        MaxMem = Math.Max(maxMem, 4096);
        DeviceName = fs.Device.Name;
    }

    public BasaltFileSystem FileSystem { get; }

    public IFsckReporter Reporter { get; }

    public long MaxMem { get; }

    public FileCheckState State { get; }

    public string DeviceName { get; }

    public Btree.Btree Tree(BtreeId btree) => FileSystem.Btrees[btree];

    public string Where(BtreeId btree, Bpos pos) => $"{DeviceName}: btree {btree.ToText()} {pos.ToText()}";

    public string WhereInode(ulong ino) => $"{DeviceName}: inode {ino}";

    public long Now() => FileSystem.Files.Clock();

    /// <summary>Queues a repair; repairs commit in batches (and at <see cref="Flush"/>).</summary>
    public void Repair(Action<Transaction> update) => _repairs.Add(update);

    /// <summary>Commits the queued repairs (before any repair that runs its own transactions).</summary>
    public void Flush() => _repairs.Flush();

    /// <summary>The inode at <paramref name="ino"/> as committed; false when absent or undecodable.</summary>
    public bool TryReadInode(ulong ino, out InodeValue inode)
    {
        inode = default;
        return Tree(BtreeId.Inodes).TryGet(FsPositions.Inode(ino), out var value) && InodeValue.TryRead(value, out inode, out _);
    }

    public static bool TryReadInode(Transaction t, ulong ino, out InodeValue inode)
    {
        inode = default;
        return t.TryGet(BtreeId.Inodes, FsPositions.Inode(ino), out var value) && InodeValue.TryRead(value, out inode, out _);
    }

    public static void PutInode(Transaction t, ulong ino, in InodeValue inode) =>
        t.Set(BtreeId.Inodes, new Bkey(FsPositions.Inode(ino), KeyType.Inode), inode.ToBytes());

    /// <summary>
    /// A fresh inode <paramref name="ino"/> of <paramref name="mode"/> (no links, no data) at the
    /// current time. Its generation and hash seed come from its number, not from a random source, so
    /// a check-only run and a repairing run place the names under it in the same slots and report
    /// the same findings.
    /// </summary>
    public InodeValue NewInode(ulong ino, uint mode, uint nlink, ulong dir, ulong dirSlot)
    {
        Span<byte> number = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(number, ino);
        var seed = System.IO.Hashing.XxHash64.HashToUInt64(number, seed: 0x62617361_6c74_6673);
        return InodeValue.Create(mode, 0, 0, Now(), dir, dirSlot) with { Nlink = nlink, HashSeed = seed, Generation = (uint)(seed >> 32) };
    }

    private static Func<byte[], bool> NameIs(byte[] name) => value => DirentValue.NameOf(value).SequenceEqual(name);

    /// <summary>Where <paramref name="name"/> is or would go in <paramref name="dir"/> (hash seed <paramref name="seed"/>), as the transaction sees it.</summary>
    public static ProbeResult FindName(Transaction t, ulong dir, ulong seed, byte[] name) =>
        HashedSlots.Find(HashedSlots.Of(t, BtreeId.Dirents), dir, Names.SlotOf(seed, name), KeyType.Dirent, NameIs(name));

    /// <summary>
    /// Adds a dirent for <paramref name="target"/> in <paramref name="dir"/> under
    /// <paramref name="name"/>, or under NAME.1, NAME.2 … when that is taken; returns the slot.
    /// </summary>
    public static ulong AddName(Transaction t, ulong dir, ulong seed, byte[] name, ulong target, FileType type, out byte[] used)
    {
        used = name;
        for (var n = 1; ; n++)
        {
            var probe = FindName(t, dir, seed, used);
            if (!probe.Found)
            {
                t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(dir, probe.Slot), KeyType.Dirent), new DirentValue(target, type, used).ToBytes());
                return probe.Slot;
            }
            used = WithSuffix(name, "." + n.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary><paramref name="name"/> with <paramref name="suffix"/>, the name cut so the whole fits <see cref="Names.MaxLength"/>.</summary>
    public static byte[] WithSuffix(byte[] name, string suffix)
    {
        var tail = System.Text.Encoding.ASCII.GetBytes(suffix);
        var keep = Math.Min(name.Length, Names.MaxLength - tail.Length);
        return [.. name.AsSpan(0, keep), .. tail];
    }

    /// <summary>The name fsck gives an inode it reattaches in lost+found: #INO.</summary>
    public static byte[] LostName(ulong ino) => System.Text.Encoding.ASCII.GetBytes("#" + ino.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>
    /// In a transaction: names <paramref name="ino"/> in lost+found under #INO (a directory also
    /// raises lost+found's link count and gets it as parent). The inode's link count is left to the
    /// caller. False when lost+found is not a usable directory (its repair was declined).
    /// </summary>
    public static bool Reattach(Transaction t, ulong ino, ref InodeValue inode)
    {
        if (!TryReadInode(t, FsPositions.LostAndFoundIno, out var lostFound) || !lostFound.IsDirectory)
            return false;
        var slot = AddName(t, FsPositions.LostAndFoundIno, lostFound.HashSeed, LostName(ino), ino, inode.Type, out _);
        inode.Dir = FsPositions.LostAndFoundIno;
        inode.DirSlot = slot;
        if (inode.IsDirectory)
        {
            lostFound.Nlink++;
            PutInode(t, FsPositions.LostAndFoundIno, lostFound);
        }
        return true;
    }

    /// <summary>In a transaction: removes the dirent at <paramref name="slot"/> of <paramref name="dir"/>, keeping probe chains.</summary>
    public static void RemoveDirent(Transaction t, ulong dir, ulong slot) => HashedSlots.Remove(t, BtreeId.Dirents, dir, slot);
}
