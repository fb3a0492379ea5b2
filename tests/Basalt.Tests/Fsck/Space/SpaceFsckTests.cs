using Basalt.Alloc;
using Basalt.Backpointers;
using Basalt.Data;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Fsck.Space;
using Basalt.Tests.Data;
using static Basalt.Tests.Fsck.FindingsText;

namespace Basalt.Tests.Fsck.Space;

/// <summary>One test per error id of the space passes: craft the damage, then -n reports exactly it, -y repairs it, and a second run is clean.</summary>
public sealed class SpaceFsckTests
{
    private const ulong File = 100;

    internal static MountOptions Quiet => new() { Space = new SpaceOptions { BackgroundWorker = false } };

    /// <summary>A filesystem with one 32 KiB extent of inode 1 in one partly full user bucket.</summary>
    internal static MemoryBlockDevice Image(Action<BasaltFileSystem>? damage = null, ExtentTriggerFault fault = ExtentTriggerFault.None)
    {
        var device = new MemoryBlockDevice(16 * 1024 * 1024, "mem.img");
        using var fs = BasaltFileSystem.Format(device, ExtentStoreTests.Geometry, Quiet);
        ExtentTriggers.Fault = fault;
        try
        {
            fs.Data.Write(File, 0, Bytes(32 * 1024, 1));
        }
        finally
        {
            ExtentTriggers.Fault = ExtentTriggerFault.None;
        }
        Assert.True(SpaceChecks.Run(fs, repair: false, out var findings) || fault != ExtentTriggerFault.None, Text(findings));
        damage?.Invoke(fs);
        return device;
    }

    internal static byte[] Bytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>-n finds exactly <paramref name="expected"/> and changes nothing; -y finds the same and repairs; then all is clean.</summary>
    internal static void AssertRepaired(MemoryBlockDevice device, params FsckErrorId[] expected)
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
        using var fs = BasaltFileSystem.Mount(device, Quiet);
        Assert.True(SpaceChecks.Run(fs, repair: false, out var findings), Text(findings));
    }

    internal static (Bkey Key, ExtentValue Value) FirstExtent(BasaltFileSystem fs)
    {
        var it = fs.Btrees[BtreeId.Extents].Iterate(Bpos.Min, Bpos.Max);
        Assert.True(it.MoveNext());
        Assert.True(ExtentValue.TryRead(it.Value, out var e, out _));
        return (it.Key, e);
    }

    internal static BucketRef UserBucket(BasaltFileSystem fs)
    {
        var p = FirstExtent(fs).Value.Ptrs[0];
        return new BucketRef(p.Device, fs.Space.Layout[p.Device].BucketOf(p.OffsetSectors));
    }

    internal static AllocValue ReadAlloc(BasaltFileSystem fs, BucketRef b) =>
        fs.Btrees[BtreeId.Alloc].TryGet(SpacePositions.Bucket(b), out var v) ? AllocValue.Read(v) : fs.Space.Layout[b.Device].DefaultAlloc(b.Bucket);

    internal static void SetAlloc(BasaltFileSystem fs, BucketRef b, AllocValue a) =>
        fs.Transact(t => t.Set(BtreeId.Alloc, new Bkey(SpacePositions.Bucket(b), KeyType.Alloc), a.ToArray()));

    /// <summary>A free data bucket far from the ones in use.</summary>
    internal static ulong FreeBucket(BasaltFileSystem fs) => fs.Space.Layout[0].Nbuckets - 20;

    private static void WriteUnchecked(BasaltFileSystem fs, ulong inode, DevicePtr ptr)
    {
        var value = new ExtentValue { ChecksumType = ChecksumType.Crc32C, CoveredSectors = 8, Window = 0, Checksum = 0, Ptrs = [ptr] };
        ExtentTriggers.Fault = ExtentTriggerFault.Disabled;
        try
        {
            fs.Transact(t => t.Set(BtreeId.Extents, new Bkey(new Bpos(inode, 8, uint.MaxValue), KeyType.Extent, 8), value.ToBytes()));
        }
        finally
        {
            ExtentTriggers.Fault = ExtentTriggerFault.None;
        }
    }

    [Fact]
    public void A_clean_image_has_no_findings() => AssertRepaired(Image());

    [Fact]
    public void Ptr_to_invalid_device_is_dropped_into_an_error_extent()
    {
        var device = Image(fs => WriteUnchecked(fs, 7, new DevicePtr(5, FreeBucket(fs) * 128, 0)));
        AssertRepaired(device, FsckErrorId.PtrToInvalidDevice);
        using var fs = BasaltFileSystem.Mount(device, Quiet);
        Assert.True(fs.Btrees[BtreeId.Extents].Iterate(new Bpos(7, 0), new Bpos(7, ulong.MaxValue, uint.MaxValue)) is var it && it.MoveNext());
        Assert.Equal(KeyType.Error, it.Key.Type);
    }

    [Fact]
    public void Ptr_to_invalid_bucket_is_dropped_and_the_node_area_bucket_left_in_its_layout_state() =>
        AssertRepaired(Image(fs => WriteUnchecked(fs, 7, new DevicePtr(0, fs.Space.Layout[0].NodeArea.Start * 128, 0))),
            FsckErrorId.PtrToInvalidBucket);

    [Fact]
    public void Ptr_gen_newer_than_bucket_gen_raises_the_bucket_gen() =>
        AssertRepaired(Image(fs =>
        {
            var b = UserBucket(fs);
            var a = ReadAlloc(fs, b);
            a.Gen--;
            SetAlloc(fs, b, a);
        }), FsckErrorId.PtrGenNewerThanBucketGen);

    [Fact]
    public void Stale_dirty_ptr_is_dropped() =>
        AssertRepaired(Image(fs => WriteUnchecked(fs, 7, new DevicePtr(0, FreeBucket(fs) * 128, 255))), FsckErrorId.StaleDirtyPtr);

    [Fact]
    public void Ptr_bucket_data_type_mismatch_rewrites_the_alloc_key() =>
        AssertRepaired(Image(fs =>
        {
            var b = UserBucket(fs);
            var a = ReadAlloc(fs, b);
            a.DataType = BucketDataType.Btree;
            SetAlloc(fs, b, a);
        }), FsckErrorId.PtrBucketDataTypeMismatch);

    [Fact]
    public void Alloc_key_data_type_wrong_on_a_journal_bucket() =>
        AssertRepaired(Image(fs =>
        {
            var dev = fs.Space.Layout[0];
            SetAlloc(fs, new BucketRef(0, dev.Journal[0].Start), new AllocValue { DataType = BucketDataType.User, DirtySectors = dev.BucketSectors });
        }), FsckErrorId.AllocKeyDataTypeWrong);

    [Fact]
    public void Alloc_key_gen_wrong_when_bucket_gens_is_ahead_of_a_missing_alloc_key() =>
        AssertRepaired(Image(fs =>
        {
            var b = FreeBucket(fs);
            var group = new BucketRef(0, b);
            var gens = fs.Btrees[BtreeId.BucketGens].TryGet(SpacePositions.BucketGens(group), out var v) ? v : new byte[256];
            gens[b % 256] = 5;
            fs.Transact(t => t.Set(BtreeId.BucketGens, new Bkey(SpacePositions.BucketGens(group), KeyType.BucketGens), gens));
        }), FsckErrorId.AllocKeyGenWrong);

    [Fact]
    public void Alloc_key_dirty_sectors_wrong_from_a_trigger_that_miscounts() =>
        AssertRepaired(Image(fault: ExtentTriggerFault.MiscountSectors), FsckErrorId.AllocKeyDirtySectorsWrong);

    [Fact]
    public void Alloc_key_cached_sectors_wrong() =>
        AssertRepaired(Image(fs =>
        {
            var b = UserBucket(fs);
            var a = ReadAlloc(fs, b);
            a.CachedSectors = 8;
            SetAlloc(fs, b, a);
        }), FsckErrorId.AllocKeyCachedSectorsWrong);

    [Fact]
    public void Alloc_key_fragmentation_lru_wrong() =>
        AssertRepaired(Image(fs =>
        {
            var b = UserBucket(fs);
            var a = ReadAlloc(fs, b);
            a.FragmentationLru += 1000;
            SetAlloc(fs, b, a);
        }), FsckErrorId.AllocKeyFragmentationLruWrong);

    [Fact]
    public void Alloc_key_to_invalid_bucket_is_deleted() =>
        AssertRepaired(Image(fs => SetAlloc(fs, new BucketRef(0, fs.Space.Layout[0].Nbuckets + 3), AllocValue.Empty)),
            FsckErrorId.AllocKeyToInvalidBucket);

    /// <summary>
    /// A key of a device the filesystem does not have (damage to a key's position, checksum
    /// intact): deleting it must not run into the alloc trigger, which knows no such device.
    /// </summary>
    [Fact]
    public void Alloc_key_of_a_device_that_does_not_exist_is_deleted() =>
        AssertRepaired(Image(fs => fs.Transact(t => t.SetWithoutTrigger(BtreeId.Alloc,
                new Bkey(SpacePositions.Bucket(new BucketRef(4, 55)), KeyType.Alloc), AllocValue.Empty.ToArray()))),
            FsckErrorId.AllocKeyToInvalidBucket);

    [Fact]
    public void Accounting_mismatch_is_rewritten() =>
        AssertRepaired(Image(fs => fs.Transact(t => t.Set(BtreeId.Accounting,
            new Bkey(DeviceUsage.Position(0, BucketDataType.User), KeyType.Accounting), new DeviceUsage(9, 9, 9).ToArray()))),
            FsckErrorId.AccountingMismatch);

    [Fact]
    public void Freespace_key_wrong_rewrites_the_runs() =>
        AssertRepaired(Image(fs =>
        {
            var it = fs.Btrees[BtreeId.Freespace].Iterate(Bpos.Min, Bpos.Max);
            Assert.True(it.MoveNext());
            var pos = it.Key.Pos;
            fs.Transact(t => t.Delete(BtreeId.Freespace, pos));
        }), FsckErrorId.FreespaceKeyWrong);

    [Fact]
    public void Need_discard_key_wrong_is_deleted() =>
        AssertRepaired(Image(fs => fs.Transact(t => t.Set(BtreeId.NeedDiscard, new Bkey(SpacePositions.Bucket(UserBucket(fs)), KeyType.Set), []))),
            FsckErrorId.NeedDiscardKeyWrong);

    [Fact]
    public void Bucket_gens_key_wrong_is_rewritten_from_the_alloc_keys() =>
        AssertRepaired(Image(fs =>
        {
            var b = UserBucket(fs);
            var gens = new byte[256];
            gens[b.Bucket % 256] = 7;
            fs.Transact(t => t.Set(BtreeId.BucketGens, new Bkey(SpacePositions.BucketGens(b), KeyType.BucketGens), gens));
        }), FsckErrorId.BucketGensKeyWrong);

    [Fact]
    public void Lru_entry_bad_is_deleted() =>
        AssertRepaired(Image(fs => fs.Transact(t =>
            t.Set(BtreeId.Lru, new Bkey(SpacePositions.Lru(LruKind.Fragmentation, 12345, UserBucket(fs)), KeyType.Set), []))),
            FsckErrorId.LruEntryBad);

    [Fact]
    public void Alloc_key_to_missing_lru_entry_is_added() =>
        AssertRepaired(Image(fs =>
        {
            var b = UserBucket(fs);
            var a = ReadAlloc(fs, b);
            Assert.NotEqual(0UL, a.FragmentationLru);
            fs.Transact(t => t.Delete(BtreeId.Lru, SpacePositions.Lru(LruKind.Fragmentation, SpacePositions.LruIndex(a.FragmentationLru), b)));
        }), FsckErrorId.AllocKeyToMissingLruEntry);

    [Fact]
    public void Alloc_key_oldest_gen_newer_than_the_gen_is_rewritten() =>
        AssertRepaired(Image(fs =>
        {
            var b = UserBucket(fs);
            var a = ReadAlloc(fs, b);
            a.OldestGen = (byte)(a.Gen + 5);
            SetAlloc(fs, b, a);
        }), FsckErrorId.AllocKeyOldestGenWrong);

    private static void SetBackpointer(BasaltFileSystem fs, Bpos pos, BackpointerValue bp) =>
        fs.Transact(t => t.Set(BtreeId.Backpointers, new Bkey(pos, KeyType.Backpointer), bp.ToArray()));

    [Fact]
    public void Backpointer_to_invalid_bucket_is_deleted() =>
        AssertRepaired(Image(fs => SetBackpointer(fs, BackpointerValue.PositionOf(0, fs.Space.Layout[0].NodeArea.Start * 128, 0),
            new BackpointerValue(BtreeId.Extents, 0, BucketDataType.User, 0, 8, new Bpos(File, 64, uint.MaxValue)))),
            FsckErrorId.BackpointerToInvalidBucket);

    [Fact]
    public void Backpointer_to_empty_bucket_is_deleted() =>
        AssertRepaired(Image(fs => SetBackpointer(fs, BackpointerValue.PositionOf(0, FreeBucket(fs) * 128, 0),
            new BackpointerValue(BtreeId.Extents, 0, BucketDataType.User, 0, 8, new Bpos(File, 64, uint.MaxValue)))),
            FsckErrorId.BackpointerToEmptyBucket);

    [Fact]
    public void Ptr_to_missing_backpointer_from_a_trigger_that_skips_it() =>
        AssertRepaired(Image(fault: ExtentTriggerFault.SkipBackpointer), FsckErrorId.PtrToMissingBackpointer);

    [Fact]
    public void Backpointer_to_missing_ptr_in_a_used_bucket_is_deleted() =>
        AssertRepaired(Image(fs =>
        {
            var (key, e) = FirstExtent(fs);
            var p = e.Ptrs[0];
            SetBackpointer(fs, BackpointerValue.PositionOf(0, p.OffsetSectors + 64, 0),
                new BackpointerValue(BtreeId.Extents, 0, BucketDataType.User, p.Gen, 8, new Bpos(File, 1000, uint.MaxValue)));
        }), FsckErrorId.BackpointerToMissingPtr);

    [Fact]
    public void Backpointer_naming_the_wrong_owner_with_agreeing_sums_is_replaced() =>
        AssertRepaired(Image(fs =>
        {
            var (key, e) = FirstExtent(fs);
            var p = e.Ptrs[0];
            SetBackpointer(fs, BackpointerValue.PositionOf(0, p.OffsetSectors, e.Window),
                new BackpointerValue(BtreeId.Extents, 0, BucketDataType.User, p.Gen, key.Size, new Bpos(99, key.Pos.Offset, uint.MaxValue)));
        }), FsckErrorId.BackpointerToMissingPtr, FsckErrorId.PtrToMissingBackpointer);
}
