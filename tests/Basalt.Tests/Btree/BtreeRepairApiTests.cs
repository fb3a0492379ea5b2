using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.TestKit;
using static Basalt.Tests.Btree.BtreeTestData;

namespace Basalt.Tests.Btree;

/// <summary>The low-level API fsck's topology repair uses, and how node read failures surface.</summary>
public sealed class BtreeRepairApiTests
{
    private static (BtreeFixture Fx, SortedDictionary<Bpos, byte[]> Model) TwoLevelTree() => Tree(keys: 1500, rootLevel: 1);

    private static (BtreeFixture Fx, SortedDictionary<Bpos, byte[]> Model) ThreeLevelTree() => Tree(keys: 6000, rootLevel: 2);

    /// <summary>A checkpointed tree of <paramref name="keys"/> sequential keys whose root is at least at <paramref name="rootLevel"/>.</summary>
    private static (BtreeFixture Fx, SortedDictionary<Bpos, byte[]> Model) Tree(int keys, byte rootLevel)
    {
        var fx = new BtreeFixture();
        var model = Fill(fx.Test, Enumerable.Range(0, keys).Select(i => (long)i));
        fx.Checkpoint();
        Assert.True(fx.Test.Root!.Level >= rootLevel);
        return (fx, model);
    }

    [Fact]
    public void RewriteNode_replaces_a_node_with_a_fresh_copy_one_generation_newer()
    {
        var (fx, model) = TwoLevelTree();
        using var owner = fx;
        var target = Pointers(fx.Test)[3];
        var generations = new Dictionary<ulong, uint>();
        fx.ReadObserver = (_, level, ptr, result) =>
        {
            if (level == 0)
                generations[ptr.Seq] = result.Header.Generation;
        };
        fx.Remount();
        Assert.True(fx.Test.TryGet(model.Keys.First(k => k >= target.Ptr.MinKey), out _));
        var before = generations[target.Ptr.Seq];
        fx.Test.RewriteNode(0, target.Max);
        var after = Pointers(fx.Test)[3];
        Assert.Equal(target.Max, after.Max);
        Assert.Equal(target.Ptr.MinKey, after.Ptr.MinKey);
        Assert.NotEqual(target.Ptr.Seq, after.Ptr.Seq);
        Assert.NotEqual(target.Ptr.Ptrs[0].OffsetSectors, after.Ptr.Ptrs[0].OffsetSectors);
        fx.Checkpoint();
        fx.Remount();
        foreach (var k in model.Keys.Where(k => k >= after.Ptr.MinKey && k <= after.Max))
        {
            Assert.True(fx.Test.TryGet(k, out var v));
            Assert.Equal(model[k], v);
        }
        Assert.Equal(before + 1, generations[after.Ptr.Seq]);
        BtreeAssertions.AssertContents(fx.Test, model);
    }

    [Fact]
    public void DeleteAtLevel_and_InsertAtLevel_edit_interior_pointers()
    {
        var (fx, model) = TwoLevelTree();
        using var owner = fx;
        var ptrs = Pointers(fx.Test);
        var victim = ptrs[2];
        Assert.True(fx.Test.DeleteAtLevel(1, victim.Max));
        Assert.False(fx.Test.DeleteAtLevel(1, victim.Max));
        // The topology now has a hole: the check must notice.
        Assert.ThrowsAny<Exception>(() => BtreeAssertions.AssertTopology(fx.Test));
        // Keys of the dropped child are no longer reachable; lookups there land in the next child.
        var lost = model.Keys.First(k => k >= victim.Ptr.MinKey && k <= victim.Max);
        Assert.False(fx.Test.TryGet(lost, out _));

        fx.Test.InsertAtLevel(1, new Bkey(victim.Max, KeyType.BtreePtr), victim.Ptr.ToBytes());
        BtreeAssertions.AssertTopology(fx.Test);
        BtreeAssertions.AssertContents(fx.Test, model);
        fx.Checkpoint();
        fx.Remount();
        BtreeAssertions.AssertTopology(fx.Test);
        BtreeAssertions.AssertContents(fx.Test, model);

        var bad = Assert.Throws<BasaltException>(() => fx.Test.InsertAtLevel(1, new Bkey(victim.Max, KeyType.Cookie), [1, 2, 3]));
        Assert.Equal(ErrorCode.InvalidArgument, bad.Code);
    }

    [Fact]
    public void A_pointer_whose_range_moved_reloads_its_cached_child_under_the_write_lock()
    {
        // Repair-style edit: a child's pointer gets a narrower range (RangeUpdated) while the child
        // is cached. Lookups from many threads then descend through it: the stale copy must be
        // replaced by an install under the write lock (the node cache refuses any change made
        // under the read lock), and the cache's interior-node count must stay exact.
        var (fx, model) = ThreeLevelTree();
        using var owner = fx;
        var reads = new System.Collections.Concurrent.ConcurrentDictionary<ulong, int>();
        fx.ReadObserver = (_, level, ptr, _) =>
        {
            if (level == 1)
                reads.AddOrUpdate(ptr.Seq, 1, (_, n) => n + 1);
        };
        fx.Remount();
        var level1 = Pointers(fx.Test, level: 2);
        var (max1, ptr1) = level1[1];
        // Warm the level-1 child, then narrow its range by one key at the low end.
        Assert.True(fx.Test.TryGet(model.Keys.First(k => k >= ptr1.MinKey), out _));
        var keysIn1 = model.Keys.Where(k => k >= ptr1.MinKey && k <= max1).ToList();
        fx.Test.InsertAtLevel(2, new Bkey(max1, KeyType.BtreePtr),
            ptr1.With(minKey: keysIn1[0].Successor(), flags: ptr1.Flags | BtreePtrFlags.RangeUpdated).ToBytes());
        var (interiorBefore, actualBefore) = fx.Engine.CacheInteriorCounts();
        Assert.Equal(actualBefore, interiorBefore);
        var readsBefore = reads[ptr1.Seq];

        var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        var readers = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            try
            {
                foreach (var k in keysIn1.Skip(1 + t).Take(200))
                {
                    Assert.True(fx.Test.TryGet(k, out var v));
                    Assert.Equal(model[k], v);
                }
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        })).ToList();
        readers.ForEach(r => r.Start());
        readers.ForEach(r => r.Join());
        Assert.Empty(errors);
        // The stale interior node was read again through its new pointer and replaced in the cache
        // without drifting the interior-node counter: at most once per reader (readers that miss
        // together each read it before one of them installs it), not once per lookup.
        Assert.InRange(reads[ptr1.Seq] - readsBefore, 1, readers.Count);
        var (interior, actual) = fx.Engine.CacheInteriorCounts();
        Assert.Equal(actual, interior);
    }

    [Fact]
    public void ResetToEmpty_gives_an_empty_btree_that_persists()
    {
        var (fx, _) = TwoLevelTree();
        using var owner = fx;
        fx.Test.ResetToEmpty();
        Assert.Equal(0, fx.Test.Root!.Level);
        Assert.False(fx.Test.Iterate(Bpos.Min, Bpos.Max).MoveNext());
        var model = Fill(fx.Test, Enumerable.Range(0, 10).Select(i => (long)i));
        fx.Checkpoint();
        fx.Remount();
        BtreeAssertions.AssertContents(fx.Test, model);
        // Slots of the old tree are free again after the remount rebuilt the allocator (the other
        // btrees' roots, the allocation info's, keep theirs).
        var others = fx.Fs.Superblock.Roots.Count(r => r.Btree != BtreeId.Test);
        Assert.True(fx.Engine.AllocatorState().Used.Count <= 2 + others);
    }

    [Fact]
    public void A_corrupt_node_read_is_an_error_naming_btree_level_and_node_not_a_crash()
    {
        var (fx, model) = TwoLevelTree();
        using var owner = fx;
        var target = Pointers(fx.Test)[1];
        var offset = (int)target.Ptr.Ptrs[0].OffsetBytes;
        fx.Remount();
        fx.Memory.Contents[offset + 8] ^= 0xFF; // the node magic: not a node of this filesystem
        var inside = model.Keys.First(k => k >= target.Ptr.MinKey && k <= target.Max);
        var e = Assert.Throws<BasaltException>(() => fx.Test.TryGet(inside, out _));
        Assert.True(e.Code is ErrorCode.BtreeNodeCorrupt or ErrorCode.TopologyError, e.Code.ToString());
        Assert.Contains("level 0", e.Message);
        Assert.Contains($"offset {offset}", e.Message);
        Assert.Contains("test", e.Message);
        Assert.Contains("magic", e.Message);
        // Other nodes still read fine, and the failed one keeps failing the same way.
        var elsewhere = model.Keys.Last();
        Assert.True(fx.Test.TryGet(elsewhere, out var v));
        Assert.Equal(model[elsewhere], v);
        Assert.Equal(e.Code, Assert.Throws<BasaltException>(() => fx.Test.Insert(inside, [1])).Code);
    }

    [Fact]
    public void A_bset_checksum_error_without_a_replica_drops_its_keys_and_flags_the_node_for_rewrite()
    {
        var (fx, model) = TwoLevelTree();
        using var owner = fx;
        var target = Pointers(fx.Test)[1];
        var offset = (int)target.Ptr.Ptrs[0].OffsetBytes;
        fx.Remount();
        fx.Memory.Contents[offset + 200] ^= 0xFF; // inside the first bset's keys
        var inside = model.Keys.Where(k => k >= target.Ptr.MinKey && k <= target.Max).ToList();
        Assert.False(fx.Test.TryGet(inside[0], out _));
        Assert.Equal(1, fx.Engine.Stats.NodesNeedingRewrite);
        var elsewhere = model.Keys.Last();
        Assert.True(fx.Test.TryGet(elsewhere, out var v));
        Assert.Equal(model[elsewhere], v);
        // Rewriting the node (what fsck does) persists the surviving state.
        fx.Test.RewriteNode(0, target.Max);
        fx.Checkpoint();
        fx.Remount();
        Assert.False(fx.Test.TryGet(inside[0], out _));
        Assert.Equal(0, fx.Engine.Stats.NodesNeedingRewrite);
        BtreeAssertions.AssertTopology(fx.Test);
    }

    [Fact]
    public void A_node_whose_seq_differs_from_its_pointer_is_reported_not_loaded()
    {
        var (fx, model) = TwoLevelTree();
        using var owner = fx;
        var ptrs = Pointers(fx.Test);
        // Point child 1's pointer at child 2's node: a wrong-node read.
        fx.Test.InsertAtLevel(1, new Bkey(ptrs[1].Max, KeyType.BtreePtr), ptrs[1].Ptr.With(sectorsWritten: ptrs[2].Ptr.SectorsWritten) is var p
            ? new BtreePtrValue { Seq = p.Seq, SectorsWritten = p.SectorsWritten, MinKey = p.MinKey, Ptrs = ptrs[2].Ptr.Ptrs }.ToBytes()
            : []);
        fx.Checkpoint();
        fx.Remount();
        var inside = model.Keys.First(k => k >= ptrs[1].Ptr.MinKey && k <= ptrs[1].Max);
        var e = Assert.Throws<BasaltException>(() => fx.Test.TryGet(inside, out _));
        Assert.True(e.Code is ErrorCode.BtreeNodeCorrupt or ErrorCode.TopologyError, e.Code.ToString());
        Assert.Contains("seq", e.Message);
    }

    [Fact]
    public void Extending_a_child_below_its_nodes_min_moves_the_boundary_with_the_left_sibling()
    {
        // fsck walks an interior node by the range it read; an earlier edit of the same walk may
        // have split it, so a gap repair can extend a child of the upper half below that half's
        // min. The boundary between the halves must follow, or the tree keeps a parent whose last
        // child ends short and one whose first child starts early.
        var (fx, model) = ThreeLevelTree();
        using var owner = fx;
        var upper = Pointers(fx.Test, level: 2);
        var (leftMax, _) = upper[0];
        var (rightMax, rightPtr) = upper[1];
        var leaves = Pointers(fx.Test);
        var lastOfLeft = leaves.Single(p => p.Max == leftMax);
        var firstOfRight = leaves.Single(p => p.Ptr.MinKey == rightPtr.MinKey);

        // The left half's last child is dropped; the right half's first child is extended over its range.
        Assert.True(fx.Test.DeleteAtLevel(1, lastOfLeft.Max));
        var extended = firstOfRight.Ptr.With(minKey: lastOfLeft.Ptr.MinKey, flags: firstOfRight.Ptr.Flags | BtreePtrFlags.RangeUpdated);
        fx.Test.InsertAtLevel(1, new Bkey(firstOfRight.Max, KeyType.BtreePtr), extended.ToBytes());

        var after = Pointers(fx.Test, level: 2);
        Assert.Equal(lastOfLeft.Ptr.MinKey.Predecessor(), after[0].Max);
        Assert.Equal(lastOfLeft.Ptr.MinKey, after[1].Ptr.MinKey);
        Assert.Equal(rightMax, after[1].Max);
        Assert.Equal(upper.Count, after.Count);
        var lost = model.Keys.Where(k => k >= lastOfLeft.Ptr.MinKey && k <= lastOfLeft.Max).ToList();
        Assert.NotEmpty(lost);
        foreach (var k in lost)
            model.Remove(k);
        BtreeAssertions.AssertTopology(fx.Test);
        BtreeAssertions.AssertContents(fx.Test, model);
        fx.Checkpoint();
        fx.Remount();
        BtreeAssertions.AssertTopology(fx.Test);
        BtreeAssertions.AssertContents(fx.Test, model);
    }

    [Fact]
    public void A_device_read_error_names_the_node()
    {
        BtreeFaultDevice? faults = null;
        using var fx = new BtreeFixture(decorate: d => faults = new BtreeFaultDevice(d));
        var model = Fill(fx.Test, Enumerable.Range(0, 1500).Select(i => (long)i));
        fx.Checkpoint();
        fx.Remount();
        faults!.FailReads = true;
        var e = Assert.Throws<BasaltException>(() => fx.Test.TryGet(model.Keys.First(), out _));
        Assert.Equal(ErrorCode.IoError, e.Code);
        Assert.Contains("level 0 node at offset", e.Message);
        faults.FailReads = false;
        Assert.True(fx.Test.TryGet(model.Keys.First(), out _));
    }
}
