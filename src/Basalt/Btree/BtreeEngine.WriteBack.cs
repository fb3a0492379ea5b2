// Write-back: dirty nodes reach the disk here, in two ways.
//
// WriteBack (journal reclaim, a timer, or a caller that needs pins released) runs rounds:
//   1. Capture (writer gate, write lock): the chosen dirty nodes that are not blocked by pending
//      interior edits become in flight; each new sectors_written is put into the parent's pointer
//      in memory as a pending interior edit (the root's, for a root).
//   2. Wait until the journal entries of every captured key are durable (rule a), then write the
//      images with no lock held: a new node its whole first record, a written one an appended bset.
//   3. Fold (writer gate, write lock): in-flight runs join the merged runs, and every pending
//      interior edit whose nodes are now durable is journaled (BtreeEngine.Interior.cs), which
//      releases the written nodes' pins (rule c).
// Checkpoint (mount, clean unmount, fsck) writes every dirty node, one device flush after all of
// them, and then commits all roots and the journal seq they include through the superblock,
// with the writer gate held throughout: nothing needs the journal, so it also rescues a journal
// too full for reclaim's own updates.
using System.Buffers;
using Basalt.Btree.Node;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>What a write-back round did.</summary>
public readonly record struct WriteBackResult(int NodesWritten, long BytesWritten, bool JournalFull)
{
    public static WriteBackResult None => default;
}

public sealed partial class BtreeEngine
{
    private readonly record struct NodeImage(BtreeNode Node, bool First, NodeHeader Header, KeyRun Keys, int SectorOffset, int Bytes, ulong JournalSeq);

    /// <summary>Dirty nodes (written or not), for reclaim's decisions.</summary>
    public int DirtyNodeCount
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return _dirty.Count;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>
    /// One write-back round: writes the dirty nodes that pin journal seqs up to
    /// <paramref name="upToSeq"/> (every dirty node when null), at most <paramref name="maxNodes"/>,
    /// together with the never-written nodes that block them, then journals the interior updates
    /// that became ready. Nodes blocked by pending interior edits wait for a later round.
    /// <see cref="WriteBackResult.JournalFull"/> says the journal had no room for those updates:
    /// the caller checkpoints instead. An I/O failure puts the filesystem into emergency read-only.
    /// </summary>
    public WriteBackResult WriteBack(ulong? upToSeq, int maxNodes = int.MaxValue)
    {
        lock (_writeBackGate)
        {
            List<NodeImage> images;
            ulong maxSeq;
            lock (_writerGate)
            {
                _lock.EnterWriteLock();
                try
                {
                    ThrowIfReadOnly();
                    _allocator.ReleaseFreedUpTo(_journal.DurableSeq);
                    images = CaptureForWriteBack(upToSeq, maxNodes, out maxSeq);
                    if (_options.DebugFaults.CommitPointerBeforeNodeDurable || _options.DebugFaults.CommitRaiseBeforeWrite)
                    {
                        // Debug-only ordering bug (b) or (h): the update naming the nodes is journaled,
                        // and made durable with the entries below, before their writes are issued.
                        CommitReadyInteriorUpdates();
                        maxSeq = Math.Max(maxSeq, _journal.CommittedSeq);
                    }
                }
                finally
                {
                    _lock.ExitWriteLock();
                }
            }
            PreparedFold[]? prepared = null;
            if (images.Count > 0)
            {
                if (!_options.DebugFaults.WriteBeforeJournalDurable)
                    _journal.WaitDurable(maxSeq);
                WriteImages(images, flushAfter: false);
                prepared = PrepareFolds(images);
            }
            lock (_writerGate)
            {
                _lock.EnterWriteLock();
                try
                {
                    Fold(images, prepared);
                    Interlocked.Increment(ref _writeBackRounds);
                    var committed = _emergency.IsSet || CommitReadyInteriorUpdates();
                    Evict();
                    return new WriteBackResult(images.Count, images.Sum(i => (long)i.Bytes), !committed);
                }
                finally
                {
                    _lock.ExitWriteLock();
                }
            }
        }
    }

    private List<NodeImage> CaptureForWriteBack(ulong? upToSeq, int maxNodes, out ulong maxSeq)
    {
        maxSeq = 0;
        var candidates = _dirty
            .Where(n => !n.IsFreed && n.InFlight is null &&
                        (upToSeq is not { } limit || !n.HasFirstRecord || (n.UnwrittenPin != 0 && n.UnwrittenPin <= limit)))
            .ToList();
        if (maxNodes >= candidates.Count)
        {
            // Every candidate: children first, so a parent is captured after the raises of its
            // children this round put into it (and is skipped as blocked until they commit).
            candidates.Sort(static (a, b) => a.Level != b.Level ? a.Level.CompareTo(b.Level) : a.Offset.CompareTo(b.Offset));
        }
        else
        {
            // More than a round takes. Never-written nodes first: the pending interior edits
            // naming them wait for their first write, and the nodes holding those edits cannot be
            // written before the edits commit. Then by oldest pin, what holds last_seq back. Not
            // children first: a child captured this round blocks its parent for the round (its
            // raise is pending inside it), so a parent holding the oldest pin would wait for as long
            // as any of its children stays dirty. Taken by offset, the leaves new splits make
            // (further on in the slot area) were never reached: their parent stayed blocked and its
            // pin held the journal until a checkpoint.
            candidates.Sort(static (a, b) =>
            {
                var c = a.HasFirstRecord.CompareTo(b.HasFirstRecord);
                if (c == 0)
                    c = PinOrder(a).CompareTo(PinOrder(b));
                return c != 0 ? c : a.Offset.CompareTo(b.Offset);
            });
        }
        var images = new List<NodeImage>();
        _inCapture = true;
        try
        {
            foreach (var node in candidates)
            {
                if (images.Count >= maxNodes)
                    break;
                // A child captured just before may have put a pending raise into this node.
                if (node.IsFreed || !node.IsDirty || node.InFlight is not null || IsBlocked(node))
                    continue;
                using var change = OpenChange();
                if (CaptureNode(node) is { } image)
                {
                    images.Add(image);
                    maxSeq = Math.Max(maxSeq, image.JournalSeq);
                }
            }
        }
        catch (Exception ex) when (ex is BasaltException or InvalidOperationException)
        {
            // A capture that stopped half way leaves nodes in flight that will never be written:
            // nothing more may be persisted from this state.
            _emergency.EnterAndThrow(ex);
        }
        finally
        {
            _inCapture = false;
        }
        return images;
    }

    /// <summary>A dirty node's oldest unwritten pin; nodes pinning nothing come last.</summary>
    private static ulong PinOrder(BtreeNode node) => node.UnwrittenPin == 0 ? ulong.MaxValue : node.UnwrittenPin;

    /// <summary>
    /// Makes the node's unwritten keys its in-flight run, computes its new sectors_written and puts
    /// it into the parent's pointer (or the root) as a pending interior edit. Null for an orphan.
    /// </summary>
    private NodeImage? CaptureNode(BtreeNode node)
    {
        if (node.InFlight is not null)
            throw new InvalidOperationException($"{node.ToText()}: captured twice");
        if (IsOrphaned(node))
        {
            FreeNode(node, new PendingPosition(node.Btree, (byte)(node.Level + 1), node.MaxKey));
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
            image = new NodeImage(node, First: true, header, keys, 0, bytes, node.MaxSeq);
        }
        else
        {
            if (node.Unwritten.Count == 0)
            {
                // Nothing to append (a change was undone): the node is clean, its pin has nothing to wait for.
                ReleasePinOfCleanNode(node);
                return null;
            }
            var keys = node.Unwritten.TakeAll();
            node.InFlight = keys;
            var bytes = BtreeNodeWriter.AppendRecordSize(keys.EncodedBytes, block);
            var sectorOffset = node.WrittenSectors;
            if ((sectorOffset * FormatLimits.SectorSize) + bytes > _geometry.NodeSize)
                throw new InvalidOperationException($"{node.ToText()}: append of {bytes} bytes does not fit");
            node.WrittenSectors += bytes / FormatLimits.SectorSize;
            image = new NodeImage(node, First: false, default, keys, sectorOffset, bytes, node.MaxSeq);
        }
        if (node.UnwrittenPin != 0)
        {
            (node.WrittenPins ??= []).Add((node.UnwrittenPin, node.WrittenSectors));
            node.UnwrittenPin = 0;
        }
        var tree = _trees[(int)node.Btree]!;
        if (tree.RootNode == node)
            Record(PendingPosition.Root(node.Btree));
        else
            InsertKeyCached(tree, (byte)(node.Level + 1), new Bkey(node.MaxKey, KeyType.BtreePtr), node.MakePtr(_geometry.Device).ToBytes());
        // The slots the captured edits freed go with the update that names this write.
        ReleaseHeldFrees(node, PointerPosition(node));
        return image;
    }

    private void ReleasePinOfCleanNode(BtreeNode node)
    {
        if (node.UnwrittenPin == 0)
            return;
        _journal.Unpin(node.UnwrittenPin);
        node.UnwrittenPin = 0;
    }

    private void FlushDevice()
    {
        try
        {
            _device.Flush();
        }
        catch (Exception ex) when (ex is BasaltException or IOException)
        {
            _emergency.EnterAndThrow(ex);
        }
    }

    /// <summary>Encodes and writes captured images (no lock held). Failures enter emergency read-only.</summary>
    private void WriteImages(List<NodeImage> images, bool flushAfter)
    {
        // Bsets carry the format this build writes: a superblock may name a newer version (its
        // version_min lets this build mount it), and a bset stamped with that would be unreadable here.
        var version = (ushort)Math.Min(_geometry.Version, FormatVersion.Current);
        var buffer = ArrayPool<byte>.Shared.Rent(_geometry.NodeSize);
        try
        {
            var durable = _journal.DurableSeq;
            foreach (var image in images)
            {
                // Rule (a), asserted: a bset's keys are all in durable journal entries.
                if (image.JournalSeq > durable)
                {
                    throw new BasaltException(ErrorCode.InvariantViolated,
                        $"{image.Node.ToText()}: bset with journal seq {image.JournalSeq} written before the journal is durable past {durable}");
                }
                var node = image.Node;
                var options = new BsetWriteOptions(_geometry.BlockSize, _geometry.ChecksumType, version, image.JournalSeq);
                var span = buffer.AsSpan(0, image.Bytes);
                var written = image.First
                    ? BtreeNodeWriter.WriteFirst(span, _geometry.NodeMagic, image.Header, image.Keys, options)
                    : BtreeNodeWriter.WriteAppend(span, node.Seq, image.SectorOffset, image.Keys, options);
                if (written != image.Bytes)
                    throw new InvalidOperationException($"{node.ToText()}: encoded {written} bytes, expected {image.Bytes}");
                _device.Write(node.Offset + (image.SectorOffset * (long)FormatLimits.SectorSize), span);
                Interlocked.Increment(ref _nodeWrites);
                Interlocked.Add(ref _nodeBytesWritten, image.Bytes);
            }
            if (flushAfter)
                _device.Flush();
        }
        catch (Exception ex) when (ex is BasaltException or IOException)
        {
            _emergency.EnterAndThrow(ex);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Completed writes: in-flight runs join the merged runs and the written sectors are durable.</summary>
    /// <summary>
    /// Merges each written node's in-flight run into its Merged run with no lock held (neither
    /// changes while the node is in flight), so Fold under the engine lock only swaps them in.
    /// </summary>
    private static PreparedFold[] PrepareFolds(List<NodeImage> images)
    {
        var prepared = new PreparedFold[images.Count];
        for (var i = 0; i < images.Count; i++)
        {
            var node = images[i].Node;
            var merged = node.Merged;
            var inFlight = images[i].Keys;
            if (!node.IsFreed)
                prepared[i] = new PreparedFold(merged, inFlight, BtreeNode.MergeRuns(merged, inFlight));
        }
        return prepared;
    }

    private void Fold(List<NodeImage> images, PreparedFold[]? prepared = null)
    {
        for (var i = 0; i < images.Count; i++)
        {
            var image = images[i];
            var node = image.Node;
            if (node.IsFreed)
                continue;
            node.DurableSectors = image.SectorOffset + (image.Bytes / FormatLimits.SectorSize);
            node.FoldInFlight(prepared is null ? default : prepared[i]);
            node.Version++;
            _options.NodeSpaceObserver?.NodeWritten(node.Offset, node.DurableSectors * FormatLimits.SectorSize);
            if (_options.DebugFaults.ReleasePinBeforeParentUpdate)
                ReleaseWrittenPins(node, int.MaxValue); // debug-only ordering bug (c)
        }
    }

    /// <summary>
    /// Writes every dirty node (captured leaves first: a child's capture puts its new
    /// sectors_written into its parent, which is captured after it), flushes the device once (also
    /// when nothing was left to capture: write-back rounds may have written nodes the roots name
    /// since the last flush), then
    /// commits every root and the newest committed journal seq through <paramref name="committer"/>
    /// (the superblock write). One flush is enough: a bset is part of the durable tree only once a
    /// pointer names its sectors, and nothing names the bsets written here before the roots are
    /// committed, after the flush. Afterwards no node is dirty or pinned and no interior edit is
    /// pending. Writers wait for the whole checkpoint; readers do not.
    /// </summary>
    public void Checkpoint(ICheckpointCommitter committer)
    {
        ArgumentNullException.ThrowIfNull(committer);
        lock (_writeBackGate)
        lock (_writerGate)
        {
            ThrowIfReadOnly();
            var seq = _journal.CommittedSeq;
            _journal.WaitDurable(seq);
            var frees = new List<long>();
            var images = new List<NodeImage>();
            _lock.EnterWriteLock();
            try
            {
                for (var level = 0; level < FormatLimits.MaxBtreeDepth; level++)
                    images.AddRange(CaptureLevel(level, frees));
            }
            finally
            {
                _lock.ExitWriteLock();
            }
            // The flush covers these images and every node write-back rounds issued since the last
            // flush entry: the roots may name those too, and until now only the next flush entry's
            // pre-flush was to make them durable. Debug-only ordering bug (e): no flush at all.
            var flush = !_options.DebugFaults.CheckpointBeforeNodesFlushed;
            if (images.Count == 0 && flush)
                FlushDevice();
            if (images.Count > 0)
            {
                WriteImages(images, flushAfter: flush);
                _lock.EnterWriteLock();
                try
                {
                    Fold(images);
                }
                finally
                {
                    _lock.ExitWriteLock();
                }
            }
            IReadOnlyList<BtreeRoot> roots;
            _lock.EnterReadLock();
            try
            {
                roots = CurrentRoots();
            }
            finally
            {
                _lock.ExitReadLock();
            }
            try
            {
                committer.CommitCheckpoint(roots, seq);
            }
            catch (Exception ex) when (ex is BasaltException or IOException)
            {
                _emergency.EnterAndThrow(ex);
            }
            CheckpointCovered(seq);
            _lock.EnterWriteLock();
            try
            {
                FinishCheckpoint(frees);
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
    }

    private List<NodeImage> CaptureLevel(int level, List<long> frees)
    {
        var images = new List<NodeImage>();
        _inCapture = true;
        _checkpointFrees = frees;
        try
        {
            foreach (var node in _dirty.Where(n => n.Level == level).OrderBy(n => n.Offset).ToList())
            {
                if (node.IsFreed || !node.IsDirty)
                    continue;
                using var change = OpenChange();
                if (CaptureNode(node) is { } image)
                    images.Add(image);
            }
        }
        catch (Exception ex) when (ex is BasaltException or InvalidOperationException)
        {
            _emergency.EnterAndThrow(ex);
        }
        finally
        {
            _inCapture = false;
            _checkpointFrees = null;
        }
        return images;
    }

    /// <summary>After the checkpoint's superblock write: every freed slot is reusable, every pin and pending edit is moot.</summary>
    private void FinishCheckpoint(List<long> frees)
    {
        foreach (var offset in frees)
            _allocator.Release(offset);
        foreach (var group in _pendingGroups)
        {
            foreach (var offset in group.Frees)
                _allocator.Release(offset);
        }
        _pendingGroups.Clear();
        _pendingByPosition.Clear();
        _pendingByLevel.Clear();
        _allocator.ReleaseFreedUpTo(ulong.MaxValue);
        foreach (var node in _cache.Nodes)
        {
            DropPins(node);
            // The superblock now names every cached node as it is.
            node.Reachable = true;
            if (node.HeldFrees is { } held)
            {
                foreach (var offset in held)
                    _allocator.Release(offset);
                node.HeldFrees = null;
            }
        }
        Interlocked.Increment(ref _checkpoints);
        Evict();
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
}
