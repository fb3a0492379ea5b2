// Records the node allocator's slot events for tests (which slots were allocated, in order).
// The mount chains it with the write-once checker.
using Basalt.Devices;

namespace Basalt.TestKit;

public sealed class BtreeNodeSpaceLog : INodeSpaceObserver
{
    private readonly List<long> _allocations = [];
    private readonly object _gate = new();

    /// <summary>Every slot offset allocated through this log, in order (mount-time registrations included).</summary>
    public IReadOnlyList<long> Allocations
    {
        get
        {
            lock (_gate)
                return _allocations.ToArray();
        }
    }

    public void NodeAllocated(long offset, int length)
    {
        lock (_gate)
            _allocations.Add(offset);
    }

    public void NodeWritten(long offset, int writtenBytes)
    {
    }

    public void NodeFreed(long offset)
    {
    }
}
