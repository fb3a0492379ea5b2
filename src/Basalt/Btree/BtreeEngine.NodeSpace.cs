// Node space as the allocation layer sees it: the buckets claimed for btree nodes, how many
// slots are free in them, claiming one more and taking back the ones that emptied. The claim of
// a bucket is committed (its alloc key says btree) before the engine may hand out its slots, so
// every pointer to a node in it commits after the claim, in journal order.
namespace Basalt.Btree;

/// <summary>A bucket of node space: its slots in use (pending frees included) and whether format reserved it (the node area).</summary>
public readonly record struct NodeBucket(ulong Bucket, int SlotsUsed, bool NodeArea);

public sealed partial class BtreeEngine
{
    /// <summary>Node slots free now (pending frees are not among them); read without the lock, so only a hint while writers run.</summary>
    public int NodeSlotsAvailable => _allocator.Available;

    /// <summary>
    /// Free node slots a commit must leave for the structure changes and the checkpoint it may
    /// cause (the reserve every commit checks, for the deepest btree); read without the lock, a hint.
    /// </summary>
    public int NodeSlotsReserve => ReserveFor(MaxRootLevel());

    /// <summary>Node slots per bucket.</summary>
    public int NodeSlotsPerBucket => _allocator.SlotsPerUnit;

    /// <summary>
    /// Adds bucket <paramref name="bucket"/> to node space once its claim has committed (at mount:
    /// the buckets whose alloc key says btree). False when it is node space already or cannot
    /// hold nodes.
    /// </summary>
    public bool ClaimNodeBucket(ulong bucket)
    {
        lock (_writerGate)
        {
            _lock.EnterWriteLock();
            try
            {
                return _allocator.Claim(bucket);
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
    }

    /// <summary>
    /// Takes up to <paramref name="max"/> buckets that hold no node (and no free waiting for a
    /// flush) out of node space, keeping at least <paramref name="keepFree"/> free slots; the
    /// caller commits their release. The node area is never taken.
    /// </summary>
    public IReadOnlyList<ulong> TakeEmptyNodeBuckets(int keepFree, int max)
    {
        lock (_writerGate)
        {
            _lock.EnterWriteLock();
            try
            {
                return _allocator.TakeEmpty(keepFree, max);
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
    }

    /// <summary>True when bucket <paramref name="bucket"/> is node space (claimed, or holding a node the mount found reachable).</summary>
    public bool IsNodeBucket(ulong bucket)
    {
        _lock.EnterReadLock();
        try
        {
            return _allocator.IsClaimed(bucket);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private volatile bool _nodeSpaceUnknown;

    /// <summary>
    /// The mount could not read which buckets were claimed for nodes (the alloc btree is
    /// damaged): from now on every bucket that can hold nodes counts as node space for the scan.
    /// </summary>
    public void MarkNodeSpaceUnknown() => _nodeSpaceUnknown = true;

    /// <summary>
    /// Null when node space is not fully known (every node the scan finds is a candidate); else
    /// whether a byte offset lies in node space: the node area, a claimed bucket, or one a
    /// reachable node lives in.
    /// </summary>
    internal Func<long, bool>? InNodeSpace => _nodeSpaceUnknown || _geometry.BucketSize == 0 ? null : InNodeSpaceNow;

    private bool InNodeSpaceNow(long offset)
    {
        _lock.EnterReadLock();
        try
        {
            return _allocator.Contains(offset);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>The buckets of node space, ascending.</summary>
    public IReadOnlyList<NodeBucket> NodeBuckets()
    {
        _lock.EnterReadLock();
        try
        {
            return _allocator.Units().Select(u => new NodeBucket(u.Bucket, u.Used, u.Fixed)).ToList();
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }
}
