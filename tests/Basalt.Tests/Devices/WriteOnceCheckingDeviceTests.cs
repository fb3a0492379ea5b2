using Basalt.Devices;
using Basalt.Diagnostics;
using static Basalt.Tests.Devices.DeviceTestData;

namespace Basalt.Tests.Devices;

public sealed class WriteOnceCheckingDeviceTests
{
    private const int Node = 8 * Sector;

    private static WriteOnceCheckingDevice Make() => new(new MemoryBlockDevice(256 * Sector), ownsInner: true);

    [Fact]
    public void Appends_Pass()
    {
        using var device = Make();
        device.NodeAllocated(16 * Sector, Node);
        device.Write(16 * Sector, Pattern(2 * Sector, 1));
        device.NodeWritten(16 * Sector, 2 * Sector);
        device.Write(18 * Sector, Pattern(Sector, 2));
        device.NodeWritten(16 * Sector, 3 * Sector);
        device.Write(19 * Sector, Pattern(5 * Sector, 3)); // fills the slot to its end
        Assert.Equal(3 * Sector, device.WrittenPrefix(16 * Sector));
        Assert.Equal(3, device.CheckedWrites);
    }

    [Fact]
    public void OverwriteOfAWrittenSector_Fails()
    {
        using var device = Make();
        device.NodeAllocated(16 * Sector, Node);
        device.Write(16 * Sector, Pattern(2 * Sector, 1));
        device.NodeWritten(16 * Sector, 2 * Sector);
        var e = Assert.Throws<BasaltException>(() => device.Write(17 * Sector, Pattern(Sector, 2)));
        Assert.Equal(ErrorCode.WriteOnceViolation, e.Code);
        Assert.Contains("slot 8192+4096", e.Message, StringComparison.Ordinal);
        Assert.Contains("prefix 1024", e.Message, StringComparison.Ordinal);
        Assert.Contains("offset 8704", e.Message, StringComparison.Ordinal);
        // Starting before the slot and running into its written part is an overwrite too.
        Assert.Throws<BasaltException>(() => device.Write(15 * Sector, Pattern(2 * Sector, 3)));
        // So is a discard of it.
        Assert.Throws<BasaltException>(() => device.Discard(16 * Sector, Node));
        // The write that failed the check never reached the device.
        var back = new byte[Sector];
        device.Read(17 * Sector, back);
        Assert.Equal(Pattern(2 * Sector, 1).AsSpan(Sector).ToArray(), back);
    }

    [Fact]
    public void FreedThenReallocatedSlot_MayBeWrittenFromZero()
    {
        using var device = Make();
        device.NodeAllocated(16 * Sector, Node);
        device.Write(16 * Sector, Pattern(Node, 1));
        device.NodeWritten(16 * Sector, Node);
        Assert.Throws<BasaltException>(() => device.Write(16 * Sector, Pattern(Sector, 2)));
        device.NodeFreed(16 * Sector);
        device.Write(16 * Sector, Pattern(Sector, 2)); // not live: passes
        device.NodeAllocated(16 * Sector, Node);
        device.Write(16 * Sector, Pattern(Node, 3));
        Assert.Equal(0, device.WrittenPrefix(16 * Sector));
    }

    [Fact]
    public void WritesOutsideSlots_Pass()
    {
        using var device = Make();
        device.NodeAllocated(16 * Sector, Node);
        device.Write(16 * Sector, Pattern(Node, 1));
        device.NodeWritten(16 * Sector, Node);
        device.Write(0, Pattern(16 * Sector, 2));          // ends right at the slot
        device.Write(24 * Sector, Pattern(8 * Sector, 3)); // starts right after it
        device.Write(0, Pattern(Sector, 4));               // rewrites outside slots are fine
        Assert.Equal(1, device.CheckedWrites); // only the node's own write touched a slot
    }

    [Fact]
    public void SlotLifecycleBugs_AreReported()
    {
        using var device = Make();
        device.NodeAllocated(16 * Sector, Node);
        Assert.Equal(ErrorCode.InvariantViolated,
            Assert.Throws<BasaltException>(() => device.NodeAllocated(20 * Sector, Node)).Code); // overlaps a live slot
        Assert.Equal(ErrorCode.InvariantViolated,
            Assert.Throws<BasaltException>(() => device.NodeWritten(40 * Sector, Sector)).Code);
        Assert.Equal(ErrorCode.InvariantViolated,
            Assert.Throws<BasaltException>(() => device.NodeFreed(40 * Sector)).Code);
        device.NodeWritten(16 * Sector, 2 * Sector);
        Assert.Equal(ErrorCode.WriteOnceViolation,
            Assert.Throws<BasaltException>(() => device.NodeWritten(16 * Sector, Sector)).Code); // prefix shrinks
        Assert.Equal(ErrorCode.WriteOnceViolation,
            Assert.Throws<BasaltException>(() => device.NodeWritten(16 * Sector, Node + Sector)).Code); // past the slot
        device.NodeAllocated(24 * Sector, Node); // adjacent is fine
        Assert.Equal(2, device.LiveSlots);
    }

    [Fact]
    public void ManySlots_EachCheckedAgainstItsOwnPrefix()
    {
        using var device = Make();
        for (var i = 0; i < 16; i++)
        {
            device.NodeAllocated(i * Node, Node);
            device.Write(i * Node, Pattern((i % 8) * Sector + Sector, i));
            device.NodeWritten(i * Node, ((i % 8) * Sector) + Sector);
        }
        for (var i = 0; i < 16; i++)
        {
            var prefix = ((i % 8) * Sector) + Sector;
            if (prefix < Node)
                device.Write((i * Node) + prefix, Pattern(Sector, 99));
            Assert.Throws<BasaltException>(() => device.Write((i * Node) + prefix - Sector, Pattern(Sector, 98)));
        }
    }
}
