using Basalt.Btree;

namespace Basalt.Tests.Btree;

/// <summary>
/// The node allocator's Avoid: slots holding nodes a damaged tree may need are handed out only
/// when no other slot is free, and never make the node space fuller than it is.
/// </summary>
public sealed class NodeAllocatorTests
{
    private static NodeAllocator Allocator(int slots) => new(new BtreeGeometry
    {
        NodeSize = 4096,
        BlockSize = 512,
        NodeAreaOffset = 65536,
        NodeAreaLength = slots * 4096L,
        NodeMagic = 1,
    }, observer: null);

    [Fact]
    public void Avoided_slots_are_allocated_last_and_still_allocated()
    {
        var a = Allocator(8);
        var avoided = new[] { 65536L, 65536 + (3 * 4096L), 65536 + (4 * 4096L) };
        foreach (var offset in avoided)
            a.Avoid(offset);

        var first = Enumerable.Range(0, 5).Select(_ => a.Allocate()).ToList();
        Assert.Empty(first.Intersect(avoided));
        var rest = Enumerable.Range(0, 3).Select(_ => a.Allocate()).ToList();
        Assert.Equal(avoided.Order(), rest.Order());
        Assert.Equal(0, a.Available);
    }

    [Fact]
    public void Without_avoided_slots_allocation_is_unchanged()
    {
        var a = Allocator(4);
        Assert.Equal([65536L, 65536 + 4096L, 65536 + 8192L, 65536 + 12288L], Enumerable.Range(0, 4).Select(_ => a.Allocate()));
    }
}
