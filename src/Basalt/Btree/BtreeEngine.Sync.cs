// Sync: the durability path until the journal exists.
//   1. Capture (write lock): level by level from the leaves, every dirty node's unwritten run
//      becomes its in-flight run, its new sectors_written is computed and written into its
//      parent's pointer (which dirties the parent, maybe restructures it) up to the roots.
//   2. I/O (no lock): write level 0 images, Flush, level 1, Flush, ..., then commit the roots.
//      New nodes get their whole first record; written nodes get one appended bset.
//   3. Fold (write lock): in-flight runs join the merged runs; slots freed before this Sync
//      began become reusable.
// A crash before step 2's root commit leaves the old roots, whose nodes are intact: nothing
// below any node's committed sectors_written was touched and no slot they use was reused.
using System.Buffers;
using Basalt.Btree.Node;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

public sealed partial class BtreeEngine
{
    private readonly record struct NodeImage(BtreeNode Node, bool First, NodeHeader Header, KeyRun Keys, int SectorOffset, int Bytes);

    /// <summary>
    /// Makes every change made before the call durable: dirty nodes bottom-up with a flush per
    /// level, then the roots through the committer. Syncs are serialised; readers and writers run
    /// during the I/O. An I/O failure puts the engine into emergency read-only.
    /// </summary>
    public void Sync()
    {
        lock (_syncGate)
        {
            List<NodeImage>[] levels;
            IReadOnlyList<BtreeRoot> roots;
            long syncNumber;
            bool rootsChanged;
            _lock.EnterWriteLock();
            try
            {
                ThrowIfReadOnly();
                if (_allocator.Available < SyncReserve())
                {
                    BasaltException.Throw(ErrorCode.BtreeNodeSpaceFull,
                        $"node space full: sync needs up to {SyncReserve()} free node slots for parent rewrites, {_allocator.Available} free");
                }
                syncNumber = ++_syncsStarted;
                try
                {
                    levels = Capture();
                }
                catch (Exception ex) when (ex is BasaltException or InvalidOperationException)
                {
                    // A capture that stopped half way leaves nodes in flight that will never be
                    // written: nothing more may be persisted from this state.
                    EnterEmergency(ex);
                    ThrowEmergency(ex);
                    throw;
                }
                roots = CurrentRoots();
                rootsChanged = !SameRoots(roots, _committedRoots);
            }
            finally
            {
                _lock.ExitWriteLock();
            }

            if (levels.Any(l => l.Count > 0) || rootsChanged)
                WriteAndCommit(levels, roots);

            _lock.EnterWriteLock();
            try
            {
                foreach (var level in levels)
                {
                    foreach (var image in level)
                    {
                        var node = image.Node;
                        node.DurableSectors = image.SectorOffset + (image.Bytes / FormatLimits.SectorSize);
                        node.FoldInFlight();
                        node.Version++;
                    }
                }
                Volatile.Write(ref _committedRoots, roots);
                _allocator.ReleaseFreedBefore(syncNumber);
                _syncs++;
                Evict();
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
    }

    private List<NodeImage>[] Capture()
    {
        var levels = new List<NodeImage>[FormatLimits.MaxBtreeDepth];
        _inCapture = true;
        try
        {
            for (var level = 0; level < FormatLimits.MaxBtreeDepth; level++)
            {
                levels[level] = [];
                var nodes = _dirty.Where(n => n.Level == level).OrderBy(n => n.Offset).ToList();
                foreach (var node in nodes)
                {
                    if (node.IsFreed || !node.IsDirty)
                        continue;
                    if (CaptureNode(node) is { } image)
                        levels[level].Add(image);
                }
            }
        }
        finally
        {
            _inCapture = false;
        }
        return levels;
    }

    private NodeImage? CaptureNode(BtreeNode node)
    {
        if (node.InFlight is not null)
            throw new InvalidOperationException($"{node.ToText()}: captured twice in one sync");
        if (IsOrphaned(node))
        {
            FreeNode(node);
            return null;
        }
        node.IsDirty = false;
        node.Version++;
        _dirty.Remove(node);
        var block = _geometry.BlockSize;
        NodeImage image;
        if (!node.HasFirstRecord)
        {
            var keys = node.CollectLive();
            node.ResetUnwritten();
            node.Merged = KeyRun.Empty;
            node.InFlight = keys;
            var bytes = BtreeNodeWriter.FirstRecordSize(keys.EncodedBytes, block);
            node.WrittenSectors = bytes / FormatLimits.SectorSize;
            var header = new NodeHeader(node.Seq, node.Generation, node.Btree, node.Level, node.MinKey, node.MaxKey);
            image = new NodeImage(node, First: true, header, keys, 0, bytes);
        }
        else
        {
            if (node.Unwritten.Count == 0)
                return null;
            var keys = node.Unwritten.TakeAll();
            node.InFlight = keys;
            var bytes = BtreeNodeWriter.AppendRecordSize(keys.EncodedBytes, block);
            var sectorOffset = node.WrittenSectors;
            if ((sectorOffset * FormatLimits.SectorSize) + bytes > _geometry.NodeSize)
                throw new InvalidOperationException($"{node.ToText()}: append of {bytes} bytes does not fit");
            node.WrittenSectors += bytes / FormatLimits.SectorSize;
            image = new NodeImage(node, First: false, default, keys, sectorOffset, bytes);
        }
        var tree = _trees[(int)node.Btree]!;
        if (tree.RootNode != node)
        {
            InsertKeyCached(tree, (byte)(node.Level + 1), new Bkey(node.MaxKey, KeyType.BtreePtr),
                node.MakePtr(_geometry.Device).ToBytes());
        }
        return image;
    }

    private IReadOnlyList<BtreeRoot> CurrentRoots()
    {
        var roots = new List<BtreeRoot>();
        foreach (var tree in _trees)
        {
            if (tree is null)
                continue;
            if (tree.RootNode is { } root)
                roots.Add(new BtreeRoot(tree.Id, root.Level, root.MakePtr(_geometry.Device)));
            else if (tree.PendingRoot is { } pending)
                roots.Add(pending);
        }
        return roots;
    }

    private static bool SameRoots(IReadOnlyList<BtreeRoot> a, IReadOnlyList<BtreeRoot> b)
    {
        if (a.Count != b.Count)
            return false;
        for (var i = 0; i < a.Count; i++)
        {
            var x = a[i];
            var y = b.FirstOrDefault(r => r.Btree == x.Btree);
            if (y is null || x.Level != y.Level || x.Ptr.Seq != y.Ptr.Seq || x.Ptr.SectorsWritten != y.Ptr.SectorsWritten ||
                x.Ptr.Ptrs.Count == 0 || y.Ptr.Ptrs.Count == 0 || x.Ptr.Ptrs[0] != y.Ptr.Ptrs[0])
                return false;
        }
        return true;
    }

    private void WriteAndCommit(List<NodeImage>[] levels, IReadOnlyList<BtreeRoot> roots)
    {
        // Bsets carry the format this build writes: a superblock may name a newer version (its
        // version_min lets this build mount it), and a bset stamped with that would be unreadable here.
        var version = Math.Min(_geometry.Version, FormatVersion.Current);
        var options = new BsetWriteOptions(_geometry.BlockSize, _geometry.ChecksumType, (ushort)version, JournalSeq: 0);
        var buffer = ArrayPool<byte>.Shared.Rent(_geometry.NodeSize);
        try
        {
            if (_options.DebugFaults.WriteParentBeforeChildren) _committer.CommitRoots(roots);
            foreach (var level in _options.DebugFaults.WriteParentBeforeChildren ? Enumerable.Reverse(levels) : levels)
            {
                if (level.Count == 0)
                    continue;
                foreach (var image in level)
                {
                    var node = image.Node;
                    var span = buffer.AsSpan(0, image.Bytes);
                    var written = image.First
                        ? BtreeNodeWriter.WriteFirst(span, _geometry.NodeMagic, image.Header, image.Keys, options)
                        : BtreeNodeWriter.WriteAppend(span, node.Seq, image.SectorOffset, image.Keys, options);
                    if (written != image.Bytes)
                        throw new InvalidOperationException($"{node.ToText()}: encoded {written} bytes, expected {image.Bytes}");
                    var at = node.Offset + (image.SectorOffset * 512L);
                    _device.Write(at, span);
                    _options.NodeSpaceObserver?.NodeWritten(node.Offset, (image.SectorOffset * FormatLimits.SectorSize) + image.Bytes);
                    Interlocked.Increment(ref _nodeWrites);
                    Interlocked.Add(ref _nodeBytesWritten, image.Bytes);
                }
                if (!_options.DebugFaults.SkipLevelFlush) _device.Flush();
            }
            _committer.CommitRoots(roots);
        }
        catch (Exception ex) when (ex is BasaltException or IOException)
        {
            EnterEmergency(ex);
            ThrowEmergency(ex);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
