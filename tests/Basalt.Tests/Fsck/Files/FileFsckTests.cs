using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Fsck.Files;
using Basalt.Fsck.Space;
using Basalt.Tests.Fs;
using Basalt.Tests.Fsck.Space;
using static Basalt.Tests.Fsck.FindingsText;

namespace Basalt.Tests.Fsck.Files;

/// <summary>One test per error id of the file passes: plant the damage, then -n reports exactly it and changes nothing, -y repairs it, and a second run is clean.</summary>
public sealed class FileFsckTests
{
    private const ulong Root = FsPositions.RootIno;
    private const ulong Missing = 999;

    private static byte[] B(string s) => FilesTests.B(s);

    /// <summary>
    /// /dir (with /dir/file, 10000 bytes and xattr user.a, and /dir/sub), /link (a second name of
    /// /dir/file) and /plain (6000 bytes); clean by FileChecks. Then <paramref name="damage"/>.
    /// </summary>
    private static MemoryBlockDevice Image(Action<BasaltFileSystem, Tree>? damage = null, bool files = true)
    {
        var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, FilesTests.Geometry, SpaceFsckTests.Quiet);
        var f = fs.Files;
        var tree = new Tree();
        if (files)
        {
            tree.Dir = f.Mkdir(Root, B("dir"), 0x1ED).Ino;
            tree.File = f.Create(tree.Dir, B("file"), 0x1A4).Ino;
            f.Write(tree.File, 0, SpaceFsckTests.Bytes(10000, 1));
            f.SetXattr(tree.File, B("user.a"), B("value"));
            f.Link(tree.File, Root, B("link"));
            tree.Sub = f.Mkdir(tree.Dir, B("sub"), 0x1ED).Ino;
            tree.Plain = f.Create(Root, B("plain"), 0x1A4).Ino;
            f.Write(tree.Plain, 0, SpaceFsckTests.Bytes(6000, 2));
        }
        Assert.True(FileChecks.Run(fs, repair: false, out var findings), Text(findings));
        damage?.Invoke(fs, tree);
        return device;
    }

    private sealed class Tree
    {
        public ulong Dir;
        public ulong File;
        public ulong Sub;
        public ulong Plain;
    }

    /// <summary>-n finds exactly <paramref name="expected"/> and changes nothing; -y finds the same and repairs; then all is clean.</summary>
    private static void AssertRepaired(MemoryBlockDevice device, params FsckErrorId[] expected)
    {
        var before = device.Contents.ToArray();
        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(before.AsSpan().SequenceEqual(device.Contents), "a check-only run changed the image");
        Assert.True(expected.Order().SequenceEqual(check.Findings.Select(f => f.Id).Order()), Text(check.Findings));
        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        Assert.True(expected.Order().SequenceEqual(repair.Findings.Select(f => f.Id).Order()), Text(repair.Findings));
        Assert.All(repair.Findings, f => Assert.True(f.Corrected, f.ToText()));
        var again = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(again.Findings.Count == 0, Text(again.Findings));
    }

    private static InodeValue Inode(BasaltFileSystem fs, ulong ino)
    {
        Assert.True(fs.Btrees[BtreeId.Inodes].TryGet(FsPositions.Inode(ino), out var value));
        Assert.True(InodeValue.TryRead(value, out var inode, out var problem), problem);
        return inode;
    }

    private static void Edit(BasaltFileSystem fs, ulong ino, Func<InodeValue, InodeValue> edit)
    {
        var inode = edit(Inode(fs, ino));
        fs.Transact(t => t.Set(BtreeId.Inodes, new Bkey(FsPositions.Inode(ino), KeyType.Inode), inode.ToBytes()));
    }

    /// <summary>The slot of <paramref name="name"/> in <paramref name="dir"/>.</summary>
    private static ulong SlotOf(BasaltFileSystem fs, ulong dir, string name) =>
        fs.Transact(t => FileCheckRun.FindName(t, dir, Inode(fs, dir).HashSeed, B(name)) is { Found: true } p ? p.Slot : throw new InvalidOperationException(name));

    private static void Unname(BasaltFileSystem fs, ulong dir, string name)
    {
        var slot = SlotOf(fs, dir, name);
        fs.Transact(t => FileCheckRun.RemoveDirent(t, dir, slot));
    }

    private static ulong Name(BasaltFileSystem fs, ulong dir, string name, ulong target, FileType type) =>
        fs.Transact(t => FileCheckRun.AddName(t, dir, Inode(fs, dir).HashSeed, B(name), target, type, out _));

    private static void SetDirent(BasaltFileSystem fs, ulong dir, ulong slot, DirentValue dirent) =>
        fs.Transact(t => t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(dir, slot), KeyType.Dirent), dirent.ToBytes()));

    // ---- clean images ---------------------------------------------------------------------------

    [Fact]
    public void A_clean_image_has_no_findings() => AssertRepaired(Image());

    [Fact]
    public void An_image_never_mounted_writable_has_no_root_and_no_finding()
    {
        var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using (BasaltFileSystem.Format(device, FilesTests.Geometry, new MountOptions { Space = new Basalt.Alloc.SpaceOptions { BackgroundWorker = false }, FileMaintenance = false }))
        {
        }
        AssertRepaired(device);
    }

    // ---- check_inodes ---------------------------------------------------------------------------

    [Fact]
    public void Inode_missing_under_extents_and_names_is_rebuilt()
    {
        ulong plain = 0;
        var device = Image((fs, tree) =>
        {
            plain = tree.Plain;
            fs.Transact(t => t.Delete(BtreeId.Inodes, FsPositions.Inode(tree.Plain)));
        });
        AssertRepaired(device, FsckErrorId.InodeMissing);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var attr = m.Files.Lookup(Root, B("plain"));
        Assert.Equal(plain, attr.Ino);
        Assert.Equal(FileType.Regular, attr.Type);
        Assert.Equal(1u, attr.Nlink);
        Assert.Equal(6144ul, attr.Size);
        var data = new byte[6000];
        m.Files.Read(plain, 0, data);
        Assert.Equal(SpaceFsckTests.Bytes(6000, 2), data);
    }

    [Fact]
    public void Many_lost_inodes_are_rebuilt_in_one_round_of_the_dirents()
    {
        // A lost inodes leaf takes many inodes at once. Each rebuilt inode needs the dirents that
        // name it; one walk of every dirent per inode would make the pass quadratic. Rebuilds go
        // in rounds of --max-mem / 64 inodes, one dirent walk each.
        const int Files = 60;
        var lost = new List<(string Name, ulong Ino, int Bytes)>();
        var device = Image((fs, tree) =>
        {
            for (var i = 0; i < Files; i++)
            {
                var name = $"lost-{i:D2}";
                var ino = fs.Files.Create(i % 2 == 0 ? Root : tree.Dir, B(name), 0x1A4).Ino;
                var bytes = 512 * (1 + (i % 3));
                fs.Files.Write(ino, 0, SpaceFsckTests.Bytes(bytes, (byte)i));
                lost.Add((name, ino, bytes));
            }
            fs.Transact(t =>
            {
                foreach (var (_, ino, _) in lost)
                    t.Delete(BtreeId.Inodes, FsPositions.Inode(ino));
            });
        });
        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.Equal(1, check.Counters["check_inodes: rounds of rebuilt inodes"]);
        AssertRepaired(device, Enumerable.Repeat(FsckErrorId.InodeMissing, Files).ToArray());
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var dir = m.Files.Lookup(Root, B("dir")).Ino;
        for (var i = 0; i < Files; i++)
        {
            var (name, ino, bytes) = lost[i];
            var attr = m.Files.Lookup(i % 2 == 0 ? Root : dir, B(name));
            Assert.Equal(ino, attr.Ino);
            Assert.Equal(FileType.Regular, attr.Type);
            Assert.Equal((ulong)bytes, attr.Size);
            var data = new byte[bytes];
            m.Files.Read(ino, 0, data);
            Assert.Equal(SpaceFsckTests.Bytes(bytes, (byte)i), data);
        }
    }

    [Fact]
    public void Lost_inodes_are_rebuilt_in_rounds_bounded_by_max_mem()
    {
        const int Files = 150;
        var device = Image((fs, tree) =>
        {
            var inos = new List<ulong>();
            for (var i = 0; i < Files; i++)
            {
                var ino = fs.Files.Create(Root, B($"f{i}"), 0x1A4).Ino;
                fs.Files.Write(ino, 0, SpaceFsckTests.Bytes(512, (byte)i));
                inos.Add(ino);
            }
            fs.Transact(t =>
            {
                foreach (var ino in inos)
                    t.Delete(BtreeId.Inodes, FsPositions.Inode(ino));
            });
        });
        var plenty = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.Equal(Files, plenty.Findings.Count(f => f.Id == FsckErrorId.InodeMissing));
        Assert.Equal(1, plenty.Counters["check_inodes: rounds of rebuilt inodes"]);
        // 4096 bytes (the smallest budget) hold 64 inodes a round: three rounds, the same findings.
        var small = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes, MaxMem = 4096 });
        Assert.Equal(Files, small.Findings.Count(f => f.Id == FsckErrorId.InodeMissing && f.Corrected));
        Assert.Equal(3, small.Counters["check_inodes: rounds of rebuilt inodes"]);
        Assert.Empty(Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly }).Findings);
    }

    [Fact]
    public void Inode_unlinked_not_orphan_goes_on_the_orphan_list_and_mount_deletes_it()
    {
        ulong plain = 0;
        var device = Image((fs, tree) =>
        {
            plain = tree.Plain;
            Unname(fs, Root, "plain");
            Edit(fs, tree.Plain, i => i with { Nlink = 0 });
        });
        AssertRepaired(device, FsckErrorId.InodeUnlinkedNotOrphan);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.False(m.Files.TryGetAttr(plain, out _));
    }

    [Fact]
    public void Orphan_key_of_a_linked_inode_is_dropped() =>
        AssertRepaired(Image((fs, tree) => fs.Transact(t => t.Set(BtreeId.Orphans, new Bkey(FsPositions.Orphan(tree.Plain), KeyType.Set), []))),
            FsckErrorId.OrphanKeyBad);

    [Fact]
    public void Truncate_interrupted_is_finished()
    {
        ulong plain = 0;
        var device = Image((fs, tree) =>
        {
            plain = tree.Plain;
            fs.Transact(t => t.Set(BtreeId.LoggedOps, new Bkey(FsPositions.Truncate(tree.Plain), KeyType.LoggedOpTruncate), new TruncateIntent(1000).ToBytes()));
            Edit(fs, tree.Plain, i => i with { Size = 1000 });
        });
        AssertRepaired(device, FsckErrorId.TruncateInterrupted);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(2ul, m.Files.GetAttr(plain).Inode.Sectors);
        Assert.False(m.Btrees[BtreeId.LoggedOps].TryGet(FsPositions.Truncate(plain), out _));
    }

    [Fact]
    public void Truncate_intent_of_a_missing_inode_is_dropped() =>
        AssertRepaired(Image((fs, _) => fs.Transact(t => t.Set(BtreeId.LoggedOps, new Bkey(FsPositions.Truncate(Missing), KeyType.LoggedOpTruncate),
            new TruncateIntent(0).ToBytes()))), FsckErrorId.TruncateIntentBad);

    // ---- check_extents --------------------------------------------------------------------------

    [Fact]
    public void Extent_to_missing_inode_is_deleted_when_the_rebuild_is_declined()
    {
        var device = Image((fs, _) =>
        {
            fs.Data.Write(Missing, 0, SpaceFsckTests.Bytes(4096, 3));
            Name(fs, Root, "ghost", Missing, FileType.Regular);
        });
        var options = new FsckOptions
        {
            Mode = FsckMode.Ask,
            Ask = f => f.Id == FsckErrorId.InodeMissing ? FsckAnswer.No : FsckAnswer.Yes,
        };
        var report = Basalt.Fsck.Fsck.Run(device, options);
        Assert.Equal([FsckErrorId.InodeMissing, FsckErrorId.ExtentToMissingInode, FsckErrorId.DirentToMissingInode], report.Findings.Select(f => f.Id).ToArray());
        var again = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(again.Findings.Count == 0, Text(again.Findings));
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.True(SpaceChecks.Run(fs, repair: false, out var findings), Text(findings));
        Assert.False(fs.Btrees[BtreeId.Extents].Iterate(new Bpos(Missing, 0, 0), new Bpos(Missing, ulong.MaxValue, uint.MaxValue)).MoveNext());
    }

    [Fact]
    public void Extents_of_a_number_nothing_names_are_the_data_layer_and_no_finding()
    {
        var device = Image((fs, _) => fs.Data.Write(Missing, 0, SpaceFsckTests.Bytes(4096, 3)));
        AssertRepaired(device);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.True(fs.Btrees[BtreeId.Extents].Iterate(new Bpos(Missing, 0, 0), new Bpos(Missing, ulong.MaxValue, uint.MaxValue)).MoveNext());
    }

    [Fact]
    public void Inode_missing_under_dirents_is_rebuilt_as_a_directory()
    {
        ulong dir = 0;
        var device = Image((fs, tree) =>
        {
            dir = tree.Dir;
            fs.Transact(t => t.Delete(BtreeId.Inodes, FsPositions.Inode(tree.Dir)));
        });
        // A new hash seed: the directory's two entries are moved to the slots it hashes them to.
        AssertRepaired(device, FsckErrorId.InodeMissing, FsckErrorId.DirentBadHash, FsckErrorId.DirentBadHash);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.True(fs.Files.Lookup(Root, B("dir")).IsDirectory);
        Assert.Equal(3u, fs.Files.GetAttr(dir).Nlink);
        Assert.True(fs.Files.Lookup(dir, B("sub")).IsDirectory);
        Assert.Equal(10000ul, fs.Files.ResolvePath("/dir/file").Size);
    }

    [Fact]
    public void Extent_in_a_directory_is_deleted() =>
        AssertRepaired(Image((fs, tree) => fs.Data.Write(tree.Dir, 0, SpaceFsckTests.Bytes(4096, 3))), FsckErrorId.ExtentInNonFile);

    [Fact]
    public void Extent_past_end_of_file_raises_the_size_and_keeps_the_data()
    {
        ulong plain = 0;
        var device = Image((fs, tree) =>
        {
            plain = tree.Plain;
            Edit(fs, tree.Plain, i => i with { Size = 1000 });
        });
        AssertRepaired(device, FsckErrorId.ExtentPastEndOfFile);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var attr = m.Files.GetAttr(plain);
        Assert.Equal(6144ul, attr.Size); // 6000 bytes end in sector 12
        Assert.Equal(12ul, attr.Inode.Sectors);
        var data = new byte[6000];
        m.Files.Read(plain, 0, data);
        Assert.Equal(SpaceFsckTests.Bytes(6000, 2), data);
    }

    [Fact]
    public void Inode_sectors_wrong_is_set_from_the_extents() =>
        AssertRepaired(Image((fs, tree) => Edit(fs, tree.Plain, i => i with { Sectors = i.Sectors + 5 })), FsckErrorId.InodeSectorsWrong);

    /// <summary>Deletes every data key of <paramref name="ino"/> as a lost node would: no trigger runs (backpointers, bucket counts and the inode's sector count stay).</summary>
    private static void LoseKeys(BasaltFileSystem fs, ulong ino)
    {
        var keys = fs.Data.Map(ino, 0, ulong.MaxValue - 2).Select(k => k.Key.Pos).ToList();
        Assert.NotEmpty(keys);
        fs.Transact(t =>
        {
            foreach (var pos in keys)
                t.DeleteWithoutTrigger(BtreeId.Extents, pos);
        });
    }

    private static void AssertReadFails(BasaltFileSystem fs, ulong ino, int length)
    {
        var e = Assert.Throws<Basalt.Diagnostics.BasaltException>(() => fs.Files.Read(ino, 0, new byte[length]));
        Assert.Equal(Basalt.Diagnostics.ErrorClass.Io, e.Class);
        Assert.Contains("data lost", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Extent_data_lost_with_its_key_reads_as_an_io_error_not_zeros()
    {
        ulong plain = 0, file = 0;
        var device = Image((fs, tree) =>
        {
            (plain, file) = (tree.Plain, tree.File);
            LoseKeys(fs, tree.Plain);
        });
        // The backpointer names the lost extent (check_backpointers_to_extents); the bucket's
        // count and the inode's sector count are recounted.
        AssertRepaired(device, FsckErrorId.AllocKeyDirtySectorsWrong, FsckErrorId.ExtentDataLost, FsckErrorId.InodeSectorsWrong);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(6000ul, m.Files.GetAttr(plain).Size);
        AssertReadFails(m, plain, 6000);
        var other = new byte[10000];
        m.Files.Read(file, 0, other);
        Assert.Equal(SpaceFsckTests.Bytes(10000, 1), other);
    }

    [Fact]
    public void Inline_data_lost_with_its_key_reads_as_an_io_error_not_zeros()
    {
        ulong small = 0;
        var device = Image((fs, tree) =>
        {
            small = fs.Files.Create(Root, B("small"), 0x1A4).Ino;
            fs.Files.Write(small, 0, SpaceFsckTests.Bytes(700, 4));
            LoseKeys(fs, small);
        });
        // Inline data has no backpointer: check_extents finds the holes adding up to the count.
        AssertRepaired(device, FsckErrorId.ExtentDataLost, FsckErrorId.InodeSectorsWrong);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        AssertReadFails(m, small, 700);
    }

    [Fact]
    public void Holes_of_a_sparse_file_are_not_taken_for_lost_data()
    {
        var device = Image((fs, tree) =>
        {
            var sparse = fs.Files.Create(Root, B("sparse"), 0x1A4).Ino;
            fs.Files.Write(sparse, 1 << 20, SpaceFsckTests.Bytes(5000, 5));
            Edit(fs, sparse, i => i with { Sectors = i.Sectors + 3 });
        });
        // The count is 3 sectors over, the holes far more: only the count is repaired.
        AssertRepaired(device, FsckErrorId.InodeSectorsWrong);
    }

    // ---- symlinks -------------------------------------------------------------------------------

    [Fact]
    public void Symlink_whose_target_is_lost_is_deleted_with_its_name()
    {
        var device = Image((fs, tree) =>
        {
            var link = fs.Files.Symlink(Root, B("sl"), B("dir/file")).Ino;
            LoseKeys(fs, link);
        });
        AssertRepaired(device, FsckErrorId.SymlinkTargetBad, FsckErrorId.DirentToMissingInode);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.False(m.Files.TryLookup(Root, B("sl"), out _));
    }

    [Fact]
    public void Symlink_target_with_a_nul_byte_is_deleted()
    {
        var device = Image((fs, tree) =>
        {
            var link = fs.Files.Symlink(Root, B("sl"), B("dir/file")).Ino;
            Edit(fs, link, i => i with { Size = 12 }); // the target now runs into the zeros after it
        });
        AssertRepaired(device, FsckErrorId.SymlinkTargetBad, FsckErrorId.DirentToMissingInode);
    }

    [Fact]
    public void Symlink_inode_rebuilt_from_its_data_ends_its_target_at_the_first_nul()
    {
        ulong link = 0;
        var device = Image((fs, tree) =>
        {
            link = fs.Files.Symlink(Root, B("sl"), B("dir/file")).Ino;
            fs.Transact(t => t.Delete(BtreeId.Inodes, FsPositions.Inode(link)));
        });
        AssertRepaired(device, FsckErrorId.InodeMissing);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(FileType.Symlink, m.Files.GetAttr(link).Type);
        Assert.Equal(B("dir/file"), m.Files.ReadLink(link));
    }

    // ---- check_dirents --------------------------------------------------------------------------

    [Fact]
    public void Dirent_to_missing_inode_is_deleted()
    {
        var device = Image((fs, _) => Name(fs, Root, "ghost", Missing, FileType.Regular));
        AssertRepaired(device, FsckErrorId.DirentToMissingInode);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.False(m.Files.TryLookup(Root, B("ghost"), out _));
    }

    [Fact]
    public void Dirent_wrong_type_takes_the_inode_type() =>
        AssertRepaired(Image((fs, tree) =>
        {
            var slot = SlotOf(fs, tree.Dir, "file");
            SetDirent(fs, tree.Dir, slot, new DirentValue(tree.File, FileType.Symlink, B("file")));
        }), FsckErrorId.DirentWrongType);

    [Fact]
    public void Dirent_bad_hash_is_moved_to_its_slot_with_the_backref()
    {
        ulong sub = 0, dir = 0;
        var device = Image((fs, tree) =>
        {
            (sub, dir) = (tree.Sub, tree.Dir);
            var slot = SlotOf(fs, tree.Dir, "sub");
            var bad = slot + 1000;
            fs.Transact(t =>
            {
                t.Set(BtreeId.Dirents, new Bkey(FsPositions.Slot(tree.Dir, bad), KeyType.Dirent), new DirentValue(tree.Sub, FileType.Directory, B("sub")).ToBytes());
                FileCheckRun.RemoveDirent(t, tree.Dir, slot);
            });
            Edit(fs, tree.Sub, i => i with { DirSlot = bad });
        });
        AssertRepaired(device, FsckErrorId.DirentBadHash);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(sub, m.Files.Lookup(dir, B("sub")).Ino);
    }

    [Fact]
    public void Dirent_duplicate_name_of_another_inode_is_renamed()
    {
        ulong plain = 0, dir = 0;
        var device = Image((fs, tree) =>
        {
            (plain, dir) = (tree.Plain, tree.Dir);
            var slot = SlotOf(fs, tree.Dir, "file") + 1;
            while (fs.Btrees[BtreeId.Dirents].TryGet(FsPositions.Slot(tree.Dir, slot), out _))
                slot++;
            SetDirent(fs, tree.Dir, slot, new DirentValue(tree.Plain, FileType.Regular, B("file")));
            Edit(fs, tree.Plain, i => i with { Nlink = 2 });
        });
        AssertRepaired(device, FsckErrorId.DirentDuplicateName);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(plain, m.Files.Lookup(dir, B($"file.dup-{plain}")).Ino);
    }

    [Fact]
    public void Dirent_in_a_regular_file_is_deleted() =>
        AssertRepaired(Image((fs, tree) => SetDirent(fs, tree.Plain, 5, new DirentValue(tree.File, FileType.Regular, B("inside")))),
            FsckErrorId.DirentInNonDirectory);

    // ---- check_xattrs ---------------------------------------------------------------------------

    [Fact]
    public void Xattr_of_missing_inode_is_deleted() =>
        AssertRepaired(Image((fs, _) => fs.Transact(t => t.Set(BtreeId.Xattrs, new Bkey(FsPositions.Slot(Missing, 5), KeyType.Xattr),
            new XattrValue(XattrNamespace.User, B("x"), B("y")).ToBytes()))), FsckErrorId.XattrToMissingInode);

    [Fact]
    public void Xattr_bad_hash_is_moved_to_its_slot()
    {
        ulong file = 0;
        var device = Image((fs, tree) =>
        {
            file = tree.File;
            var it = fs.Btrees[BtreeId.Xattrs].Iterate(FsPositions.Slot(tree.File, 0), FsPositions.Slot(tree.File, ulong.MaxValue));
            Assert.True(it.MoveNext());
            var (pos, value) = (it.Key.Pos, it.Value.ToArray());
            fs.Transact(t =>
            {
                t.Delete(BtreeId.Xattrs, pos);
                t.Set(BtreeId.Xattrs, new Bkey(FsPositions.Slot(tree.File, pos.Offset + 1000), KeyType.Xattr), value);
            });
        });
        AssertRepaired(device, FsckErrorId.XattrBadHash);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(B("value"), m.Files.GetXattr(file, B("user.a")));
    }

    // ---- check_root -----------------------------------------------------------------------------

    [Fact]
    public void Root_missing_is_recreated_with_lost_found()
    {
        // lost+found's name lives in the root, so the fresh root has to name it again too.
        var device = Image((fs, _) =>
        {
            Unname(fs, Root, "lost+found");
            fs.Transact(t => t.Delete(BtreeId.Inodes, FsPositions.Inode(Root)));
        }, files: false);
        AssertRepaired(device, FsckErrorId.RootMissing, FsckErrorId.LostFoundMissing);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(FsPositions.LostAndFoundIno, m.Files.Lookup(Root, B("lost+found")).Ino);
        Assert.Equal(3u, m.Files.GetAttr(Root).Nlink);
    }

    [Fact]
    public void Root_inode_lost_with_its_names_left_is_rebuilt_from_them()
    {
        Tree tree = new();
        var device = Image((fs, t) =>
        {
            tree = t;
            fs.Transact(x => x.Delete(BtreeId.Inodes, FsPositions.Inode(Root)));
        });
        // A rebuilt directory has a new hash seed: its four names move to the slots they hash to.
        AssertRepaired(device, FsckErrorId.InodeMissing, FsckErrorId.DirentBadHash, FsckErrorId.DirentBadHash,
            FsckErrorId.DirentBadHash, FsckErrorId.DirentBadHash);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var root = m.Files.GetAttr(Root);
        Assert.Equal(0x1EDu, root.Mode & FileModes.PermissionMask);
        Assert.Equal(4u, root.Nlink);
        Assert.Equal(10000ul, m.Files.ResolvePath("/dir/file").Size);
        Assert.Equal(tree.File, m.Files.ResolvePath("/link").Ino);
        Assert.Equal(6000ul, m.Files.ResolvePath("/plain").Size);
        Assert.Equal(FsPositions.LostAndFoundIno, m.Files.ResolvePath("/lost+found").Ino);
    }

    [Fact]
    public void Lost_found_missing_is_recreated()
    {
        var device = Image((fs, _) =>
        {
            Unname(fs, Root, "lost+found");
            Edit(fs, Root, i => i with { Nlink = i.Nlink - 1 });
            fs.Transact(t => t.Delete(BtreeId.Inodes, FsPositions.Inode(FsPositions.LostAndFoundIno)));
        });
        AssertRepaired(device, FsckErrorId.LostFoundMissing);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.True(m.Files.Lookup(Root, B("lost+found")).IsDirectory);
    }

    // ---- check_directory_structure --------------------------------------------------------------

    [Fact]
    public void Directory_unreachable_is_reattached_in_lost_found()
    {
        ulong sub = 0;
        var device = Image((fs, tree) =>
        {
            sub = tree.Sub;
            Unname(fs, tree.Dir, "sub");
            Edit(fs, tree.Dir, i => i with { Nlink = i.Nlink - 1 });
        });
        AssertRepaired(device, FsckErrorId.DirectoryUnreachable);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var found = m.Files.Lookup(FsPositions.LostAndFoundIno, B($"#{sub}"));
        Assert.Equal(sub, found.Ino);
        Assert.Equal(FsPositions.LostAndFoundIno, found.Inode.Dir);
    }

    [Fact]
    public void Directory_multiple_links_keep_the_backref_one()
    {
        ulong sub = 0, dir = 0;
        var device = Image((fs, tree) =>
        {
            (sub, dir) = (tree.Sub, tree.Dir);
            Name(fs, Root, "sub2", tree.Sub, FileType.Directory);
            Edit(fs, Root, i => i with { Nlink = i.Nlink + 1 });
        });
        AssertRepaired(device, FsckErrorId.DirectoryMultipleLinks);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.False(m.Files.TryLookup(Root, B("sub2"), out _));
        Assert.Equal(sub, m.Files.Lookup(dir, B("sub")).Ino);
    }

    [Fact]
    public void Directory_backref_wrong_is_set_to_its_dirent() =>
        AssertRepaired(Image((fs, tree) => Edit(fs, tree.Sub, i => i with { DirSlot = 12345 })), FsckErrorId.DirectoryBackrefWrong);

    [Fact]
    public void Directory_loop_is_cut_and_reattached()
    {
        ulong dir = 0;
        var device = Image((fs, tree) =>
        {
            dir = tree.Dir;
            Unname(fs, Root, "dir");
            Edit(fs, Root, i => i with { Nlink = i.Nlink - 1 });
            var slot = Name(fs, tree.Sub, "up", tree.Dir, FileType.Directory);
            Edit(fs, tree.Sub, i => i with { Nlink = i.Nlink + 1 });
            Edit(fs, tree.Dir, i => i with { Dir = tree.Sub, DirSlot = slot });
        });
        AssertRepaired(device, FsckErrorId.DirectoryLoop);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(dir, m.Files.Lookup(FsPositions.LostAndFoundIno, B($"#{dir}")).Ino);
    }

    // ---- check_nlinks ---------------------------------------------------------------------------

    [Fact]
    public void Inode_nlink_wrong_is_set_to_the_names() =>
        AssertRepaired(Image((fs, tree) => Edit(fs, tree.Plain, i => i with { Nlink = 3 })), FsckErrorId.InodeNlinkWrong);

    [Fact]
    public void Directory_nlink_wrong_is_set_to_its_subdirectories() =>
        AssertRepaired(Image((fs, tree) => Edit(fs, tree.Dir, i => i with { Nlink = 7 })), FsckErrorId.InodeNlinkWrong);

    [Fact]
    public void Inode_unreachable_is_reattached_in_lost_found_with_its_data()
    {
        ulong plain = 0;
        var device = Image((fs, tree) =>
        {
            plain = tree.Plain;
            Unname(fs, Root, "plain");
        });
        AssertRepaired(device, FsckErrorId.InodeUnreachable);
        using var m = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var found = m.Files.Lookup(FsPositions.LostAndFoundIno, B($"#{plain}"));
        Assert.Equal(6000ul, found.Size);
        Assert.Equal(1u, found.Nlink);
    }

    [Fact]
    public void Nlinks_counted_in_several_rounds_under_a_small_memory_budget()
    {
        var device = Image((fs, tree) =>
        {
            for (var i = 0; i < 200; i++)
                fs.Files.Create(Root, B($"f{i}"), 0x1A4);
            Edit(fs, tree.Plain, i => i with { Nlink = 3 });
        });
        var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes, MaxMem = 4096 });
        Assert.Equal([FsckErrorId.InodeNlinkWrong], report.Findings.Select(f => f.Id).ToArray());
        Assert.Equal(2, report.Counters["check_nlinks rounds"]);
        using var fs2 = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.True(FileChecks.Run(fs2, repair: false, out var findings, maxMem: 4096), Text(findings));
    }
}
