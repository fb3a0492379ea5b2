using Basalt.Alloc;
using Basalt.Backpointers;
using Basalt.Data;
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

/// <summary>
/// check_reflink and the space checks over indirect extents: one test per error id (the damage
/// planted through transactions, the data of planted indirect extents charged explicitly), then
/// -n reports exactly it, -y repairs it, and a second run is clean; and clean images with shared
/// data give no finding from any pass, with windows forced by a tiny --max-mem.
/// </summary>
public sealed class ReflinkFsckTests
{
    private const ulong Root = FsPositions.RootIno;

    /// <summary>Where in reflink space the first shared file's data goes.</summary>
    private const ulong At = 1000;

    private static byte[] B(string s) => FilesTests.B(s);

    /// <summary>
    /// /a: 3 runs of 4 KiB written apart (so 3 extents, 24 sectors), moved into reflink space at
    /// <see cref="At"/>; /b: one reflink pointer over all of /a's shared range. Clean by every pass.
    /// </summary>
    private static MemoryBlockDevice Image(Action<BasaltFileSystem, Shared>? damage = null)
    {
        var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, FilesTests.Geometry, SpaceFsckTests.Quiet);
        var shared = new Shared
        {
            A = fs.Files.Create(Root, B("a"), 0x1A4).Ino,
            B = fs.Files.Create(Root, B("b"), 0x1A4).Ino,
        };
        for (var i = 0; i < 3; i++)
            fs.Files.Write(shared.A, i * 4096, SpaceFsckTests.Bytes(4096, i + 1));
        shared.Sectors = Share(fs, shared.A, At);
        fs.Files.Truncate(shared.B, (long)shared.Sectors * FormatLimits.SectorSize);
        AddPointer(fs, shared.B, 0, (uint)shared.Sectors, new ReflinkPointer(At, 0, 0));
        AssertClean(fs);
        damage?.Invoke(fs, shared);
        return device;
    }

    private sealed class Shared
    {
        public ulong A;
        public ulong B;
        public ulong Sectors;
    }

    /// <summary>
    /// Moves every extent of <paramref name="ino"/> into reflink space from <paramref name="at"/> on,
    /// as a reflink would: each becomes an indirect extent (charged explicitly: it has no trigger)
    /// and a reflink pointer to it at the extent's place (its trigger takes the reference). Returns
    /// the sectors moved.
    /// </summary>
    private static ulong Share(BasaltFileSystem fs, ulong ino, ulong at)
    {
        var idx = at;
        foreach (var (key, value) in FileKeys(fs, ino).Where(k => k.Key.Type == KeyType.Extent))
        {
            Assert.True(ExtentValue.TryRead(value, out var extent, out var problem), problem);
            var indirect = new Bkey(ReflinkSpace.EndPos(idx + key.Size), KeyType.ReflinkV, key.Size);
            var pointer = new ReflinkPointer(idx, 0, 0).ToBytes();
            // One extent a transaction, the keys before the charge: the extent trigger (run at
            // commit) then updates the bucket the charge wrote before the alloc trigger runs on it.
            fs.Transact(t =>
            {
                t.Set(BtreeId.Reflink, indirect, ReflinkIndirect.ToBytes(0, extent));
                t.Set(BtreeId.Extents, new Bkey(key.Pos, KeyType.ReflinkP, key.Size), pointer);
                ExtentTriggers.ChargeIndirect(t, indirect, extent, +1);
            });
            idx += key.Size;
        }
        return idx - at;
    }

    private static void AddPointer(BasaltFileSystem fs, ulong ino, ulong fileSector, uint size, ReflinkPointer pointer) =>
        fs.Transact(t => t.Set(BtreeId.Extents, new Bkey(ExtentStore.EndPos(ino, fileSector + size), KeyType.ReflinkP, size), pointer.ToBytes()));

    private static List<(Bkey Key, byte[] Value)> Keys(BasaltFileSystem fs, BtreeId btree, Bpos from, Bpos to)
    {
        var result = new List<(Bkey, byte[])>();
        var it = fs.Btrees[btree].Iterate(from, to);
        while (it.MoveNext())
            result.Add((it.Key, it.Value.ToArray()));
        return result;
    }

    private static List<(Bkey Key, byte[] Value)> Indirect(BasaltFileSystem fs) => Keys(fs, BtreeId.Reflink, Bpos.Min, Bpos.Max);

    private static List<(Bkey Key, byte[] Value)> FileKeys(BasaltFileSystem fs, ulong ino) =>
        Keys(fs, BtreeId.Extents, new Bpos(ino, 0, 0), new Bpos(ino, ulong.MaxValue, uint.MaxValue));

    private static void AssertClean(BasaltFileSystem fs, long? maxMem = null)
    {
        Assert.True(FileChecks.Run(fs, repair: false, out var files, maxMem), Text(files));
        Assert.True(SpaceChecks.Run(fs, repair: false, out var space, maxMem), Text(space));
    }

    /// <summary>-n finds exactly <paramref name="expected"/> and changes nothing; -y finds the same and repairs; then all is clean.</summary>
    private static FsckReport AssertRepaired(MemoryBlockDevice device, long? maxMem, params FsckErrorId[] expected)
    {
        var mem = maxMem ?? SpaceChecks.DefaultMaxMem;
        var before = device.Contents.ToArray();
        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly, MaxMem = mem });
        Assert.True(before.AsSpan().SequenceEqual(device.Contents), "a check-only run changed the image");
        Assert.True(expected.Order().SequenceEqual(check.Findings.Select(f => f.Id).Order()), Text(check.Findings));
        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes, MaxMem = mem });
        Assert.True(expected.Order().SequenceEqual(repair.Findings.Select(f => f.Id).Order()), Text(repair.Findings));
        Assert.All(repair.Findings, f => Assert.True(f.Corrected, f.ToText()));
        var again = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly, MaxMem = mem });
        Assert.True(again.Findings.Count == 0, Text(again.Findings));
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        AssertClean(fs, maxMem);
        return repair;
    }

    private static FsckReport AssertRepaired(MemoryBlockDevice device, params FsckErrorId[] expected) => AssertRepaired(device, null, expected);

    // ---- clean images ---------------------------------------------------------------------------

    [Fact]
    public void Shared_data_whose_only_copy_is_in_indirect_extents_is_clean()
    {
        var device = Image((fs, s) =>
        {
            Assert.DoesNotContain(FileKeys(fs, s.A), k => k.Key.Type == KeyType.Extent);
            var refcounts = Indirect(fs).Select(k => ReflinkIndirect.Refcount(k.Value)).ToList();
            Assert.Equal([2UL, 2UL, 2UL], refcounts);
            // Every backpointer of the shared data is owned by the reflink btree.
            var bps = Keys(fs, BtreeId.Backpointers, Bpos.Min, Bpos.Max);
            Assert.Equal(3, bps.Count);
            Assert.All(bps, bp => Assert.True(BackpointerValue.TryRead(bp.Value, out var v, out _) && v.Btree == BtreeId.Reflink));
        });
        AssertRepaired(device);
    }

    /// <summary>
    /// /c: 300 one-sector pointers, each into /a's range with pads of its own: more padded starts
    /// and ends than the smallest budget holds (512 values), so check_reflink counts in windows.
    /// </summary>
    private static void ManyPointers(BasaltFileSystem fs, Shared s)
    {
        var c = fs.Files.Create(Root, B("c"), 0x1A4).Ino;
        fs.Files.Truncate(c, 300 * FormatLimits.SectorSize);
        for (var k = 0UL; k < 300; k += 20)
        {
            fs.Transact(t =>
            {
                for (var i = k; i < k + 20; i++)
                {
                    var offset = i % s.Sectors;
                    var front = (uint)Math.Min(offset, i % 5);
                    var back = (uint)Math.Min(s.Sectors - offset - 1, i % 7);
                    t.Set(BtreeId.Extents, new Bkey(ExtentStore.EndPos(c, i + 1), KeyType.ReflinkP, 1),
                        new ReflinkPointer(At + offset, front, back).ToBytes());
                }
            });
        }
    }

    [Fact]
    public void Many_pointers_with_pads_are_clean_when_a_tiny_max_mem_forces_windows()
    {
        var device = Image((fs, s) =>
        {
            ManyPointers(fs, s);
            AssertClean(fs, maxMem: 4096);
        });
        var report = AssertRepaired(device, maxMem: 4096);
        Assert.True(report.Counters["check_reflink: refcount rounds"] > 1, "the tiny budget did not force windows");
    }

    [Fact]
    public void Refcounts_counted_in_windows_find_each_wrong_one()
    {
        ulong[] truth = [];
        var device = Image((fs, s) =>
        {
            ManyPointers(fs, s);
            var indirect = Indirect(fs);
            truth = [.. indirect.Select(k => ReflinkIndirect.Refcount(k.Value))];
            fs.Transact(t =>
            {
                foreach (var (key, value) in indirect)
                    t.Set(BtreeId.Reflink, key, ReflinkIndirect.WithRefcount(value, ReflinkIndirect.Refcount(value) + 1));
            });
        });
        var report = AssertRepaired(device, 4096, Enumerable.Repeat(FsckErrorId.ReflinkVRefcountWrong, truth.Length).ToArray());
        Assert.True(report.Counters["check_reflink: refcount rounds"] > 1, "the tiny budget did not force windows");
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(truth, Indirect(fs).Select(k => ReflinkIndirect.Refcount(k.Value)));
    }

    // ---- check_reflink --------------------------------------------------------------------------

    [Fact]
    public void Reflink_v_refcount_wrong_is_set_to_the_count()
    {
        var device = Image((fs, s) =>
        {
            var (key, value) = Indirect(fs)[1];
            fs.Transact(t => t.Set(BtreeId.Reflink, key, ReflinkIndirect.WithRefcount(value, 7)));
        });
        AssertRepaired(device, FsckErrorId.ReflinkVRefcountWrong);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal([2UL, 2UL, 2UL], Indirect(fs).Select(k => ReflinkIndirect.Refcount(k.Value)));
    }

    [Fact]
    public void Reflink_v_refcount_too_low_is_raised_before_a_pointer_lets_go()
    {
        ulong a = 0;
        var device = Image((fs, s) =>
        {
            a = s.A;
            var (key, value) = Indirect(fs)[0];
            fs.Transact(t => t.Set(BtreeId.Reflink, key, ReflinkIndirect.WithRefcount(value, 1)));
        });
        AssertRepaired(device, FsckErrorId.ReflinkVRefcountWrong);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        // With the count right, dropping /a's pointers leaves /b's data in place.
        fs.Transact(t =>
        {
            foreach (var (key, _) in FileKeys(fs, a))
                t.Delete(BtreeId.Extents, key.Pos);
        });
        Assert.Equal(3, Indirect(fs).Count);
        AssertClean(fs);
    }

    [Fact]
    public void Reflink_v_unreferenced_is_deleted_and_its_data_released()
    {
        long freeBefore = 0;
        var device = Image((fs, s) =>
        {
            freeBefore = fs.Files.Stats().FreeBytes;
            // Inode 500 (the data layer's, no inode) shares its run; then its pointer goes without its trigger.
            fs.Data.Write(500, 0, SpaceFsckTests.Bytes(4096, 9));
            Share(fs, 500, 5000);
            var pointer = FileKeys(fs, 500).Single().Key.Pos;
            ExtentTriggers.Fault = ExtentTriggerFault.Disabled;
            try
            {
                fs.Transact(t => t.Delete(BtreeId.Extents, pointer));
            }
            finally
            {
                ExtentTriggers.Fault = ExtentTriggerFault.None;
            }
            Assert.Equal(4, Indirect(fs).Count);
        });
        AssertRepaired(device, FsckErrorId.ReflinkVUnreferenced);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(3, Indirect(fs).Count);
        Assert.DoesNotContain(Indirect(fs), k => k.Key.Pos.Offset > 5000);
        Assert.Equal(freeBefore, fs.Files.Stats().FreeBytes);
    }

    [Fact]
    public void Reflink_p_to_missing_reflink_v_keeps_the_covered_parts_and_loses_the_rest()
    {
        ulong a = 0, b = 0;
        var device = Image((fs, s) =>
        {
            (a, b) = (s.A, s.B);
            // The middle indirect extent is lost: its key goes, its data is released.
            var (key, value) = Indirect(fs)[1];
            Assert.True(ReflinkIndirect.TryRead(value, out _, out var extent, out _));
            fs.Transact(t =>
            {
                ExtentTriggers.ChargeIndirect(t, key, extent, -1);
                t.Delete(BtreeId.Reflink, key.Pos);
            });
        });
        // /a's middle pointer and /b's pointer over all three.
        AssertRepaired(device, FsckErrorId.ReflinkPToMissingReflinkV, FsckErrorId.ReflinkPToMissingReflinkV);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal([KeyType.ReflinkP, KeyType.Error, KeyType.ReflinkP], FileKeys(fs, a).Select(k => k.Key.Type));
        var pieces = FileKeys(fs, b);
        Assert.Equal([KeyType.ReflinkP, KeyType.Error, KeyType.ReflinkP], pieces.Select(k => k.Key.Type));
        Assert.All(pieces.Where(p => p.Key.Type == KeyType.ReflinkP), p =>
        {
            Assert.True(ReflinkPointer.TryRead(p.Value, out var pointer, out _));
            Assert.Equal((At, At + 24), pointer.Padded(p.Key.Size)); // the pieces keep the range the pointer took references on
        });
        // The first and last indirect extents: /a's pointer and both pieces of /b's.
        Assert.Equal([3UL, 3UL], Indirect(fs).Select(k => ReflinkIndirect.Refcount(k.Value)));
        // The lost sectors are error keys now: the sector counts are the pointers' alone.
        Assert.Equal(16UL, fs.Files.GetAttr(b).Inode.Sectors);
        Assert.Equal(16UL, fs.Files.GetAttr(a).Inode.Sectors);
    }

    [Fact]
    public void Reflink_p_wholly_missing_becomes_an_error_key()
    {
        var device = Image((fs, s) =>
        {
            foreach (var (key, value) in Indirect(fs))
            {
                Assert.True(ReflinkIndirect.TryRead(value, out _, out var extent, out _));
                fs.Transact(t =>
                {
                    ExtentTriggers.ChargeIndirect(t, key, extent, -1);
                    t.Delete(BtreeId.Reflink, key.Pos);
                });
            }
        });
        AssertRepaired(device, Enumerable.Repeat(FsckErrorId.ReflinkPToMissingReflinkV, 4).ToArray());
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Empty(Indirect(fs));
    }

    // ---- check_extents over reflink pointers ----------------------------------------------------

    [Fact]
    public void Reflink_p_past_end_of_file_raises_the_size_over_the_shared_data()
    {
        ulong b = 0;
        var device = Image((fs, s) =>
        {
            b = s.B;
            // /b's size says 10 sectors; its pointer covers 24.
            Assert.True(fs.Btrees[BtreeId.Inodes].TryGet(FsPositions.Inode(s.B), out var value));
            Assert.True(InodeValue.TryRead(value, out var inode, out _));
            inode.Size = 10 * FormatLimits.SectorSize;
            fs.Transact(t => t.Set(BtreeId.Inodes, new Bkey(FsPositions.Inode(s.B), KeyType.Inode), inode.ToBytes()));
        });
        AssertRepaired(device, FsckErrorId.ExtentPastEndOfFile);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var (key, value) = FileKeys(fs, b).Single();
        Assert.Equal((KeyType.ReflinkP, 24u), (key.Type, key.Size));
        Assert.True(ReflinkPointer.TryRead(value, out var pointer, out _));
        Assert.Equal((At, At + 24), pointer.Padded(key.Size));
        Assert.Equal(24UL, fs.Files.GetAttr(b).Inode.Sectors);
        Assert.Equal(24UL * FormatLimits.SectorSize, fs.Files.GetAttr(b).Size);
    }

    // ---- two owners of the same data ------------------------------------------------------------

    [Fact]
    public void Ptr_duplicate_of_an_older_extent_beside_its_indirect_extent_gives_up_its_range()
    {
        ulong a = 0, b = 0;
        Bkey old = default;
        var device = Image((fs, s) =>
        {
            (a, b) = (s.A, s.B);
            // What a leaf of /a restored from before the reflink holds: its first extent as it was,
            // pointing at the data the first indirect extent owns now (no trigger: a restored node).
            var (indirect, value) = Indirect(fs)[0];
            var (pointerKey, _) = FileKeys(fs, s.A).First(k => k.Key.Type == KeyType.ReflinkP);
            old = new Bkey(pointerKey.Pos, KeyType.Extent, indirect.Size);
            var extent = ReflinkIndirect.ExtentBytes(value).ToArray();
            fs.Transact(t => t.SetWithoutTrigger(BtreeId.Extents, old, extent));
        });
        // The bucket counts the data twice, the indirect extent lost a reference, and the older
        // extent, which its backpointer does not name, is the duplicate.
        AssertRepaired(device, FsckErrorId.ReflinkVRefcountWrong, FsckErrorId.AllocKeyDirtySectorsWrong, FsckErrorId.PtrDuplicate);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var (key, _) = FileKeys(fs, a).First(k => k.Key.Pos == old.Pos);
        Assert.Equal(KeyType.Error, key.Type);
        // /b still reads the shared data in full.
        var data = new byte[4096];
        fs.Files.Read(b, 0, data);
        Assert.Equal(SpaceFsckTests.Bytes(4096, 1), data);
    }

    // ---- space checks over indirect extents -----------------------------------------------------

    [Fact]
    public void Ptr_to_missing_backpointer_of_an_indirect_extent_is_written_with_owner_reflink()
    {
        var device = Image((fs, s) =>
        {
            var bp = Keys(fs, BtreeId.Backpointers, Bpos.Min, Bpos.Max)[0].Key.Pos;
            fs.Transact(t => t.Delete(BtreeId.Backpointers, bp));
        });
        AssertRepaired(device, FsckErrorId.PtrToMissingBackpointer);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        var bps = Keys(fs, BtreeId.Backpointers, Bpos.Min, Bpos.Max);
        Assert.Equal(3, bps.Count);
        Assert.All(bps, bp => Assert.True(BackpointerValue.TryRead(bp.Value, out var v, out _) && v.Btree == BtreeId.Reflink));
    }

    [Fact]
    public void Backpointer_owned_by_reflink_naming_no_indirect_extent_is_deleted() =>
        AssertRepaired(Image((fs, s) =>
        {
            var (key, value) = Keys(fs, BtreeId.Backpointers, Bpos.Min, Bpos.Max)[0];
            Assert.True(BackpointerValue.TryRead(value, out var bp, out _));
            var stray = new BackpointerValue(BtreeId.Reflink, 0, BucketDataType.User, bp.BucketGen, 8, ReflinkSpace.EndPos(90000));
            fs.Transact(t => t.Set(BtreeId.Backpointers, new Bkey(new Bpos(key.Pos.Inode, key.Pos.Offset + (64UL << BackpointerValue.WindowBits)),
                KeyType.Backpointer), stray.ToArray()));
        }), FsckErrorId.BackpointerToMissingPtr);

    [Fact]
    public void Ptr_of_an_indirect_extent_to_an_invalid_device_turns_it_into_an_error_key()
    {
        var device = Image((fs, s) =>
        {
            var bad = new ExtentValue
            {
                ChecksumType = ChecksumType.Crc32C,
                CoveredSectors = 8,
                Ptrs = [new DevicePtr(5, SpaceFsckTests.FreeBucket(fs) * 128, 0)],
            };
            // Never charged: the pointer names no device. A pointer of /b's third sector range shares it.
            fs.Transact(t => t.Set(BtreeId.Reflink, new Bkey(ReflinkSpace.EndPos(8008), KeyType.ReflinkV, 8), ReflinkIndirect.ToBytes(0, bad)));
            fs.Files.Truncate(s.B, (long)(s.Sectors + 8) * FormatLimits.SectorSize);
            AddPointer(fs, s.B, s.Sectors, 8, new ReflinkPointer(8000, 0, 0));
        });
        AssertRepaired(device, FsckErrorId.PtrToInvalidDevice);
        using var fs = BasaltFileSystem.Mount(device, SpaceFsckTests.Quiet);
        Assert.Equal(KeyType.Error, Indirect(fs)[^1].Key.Type);
    }
}
