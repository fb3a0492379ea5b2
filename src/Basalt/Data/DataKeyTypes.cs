// The key types of the data and backpointer layers (extent, inline data, error, reservation, backpointer,
// reflink pointer, indirect extent): validators, printers and the extent and reflink pointer
// triggers, registered in the btree's key-type table at start-up.
using Basalt.Alloc;
using Basalt.Backpointers;
using Basalt.Btree;
using Basalt.Format;

namespace Basalt.Data;

public static class DataKeyTypes
{
    private static readonly Lazy<bool> s_registration = new(() =>
    {
        SpaceKeyTypes.Register();
        KeyTypeTable.Register(KeyType.Extent, new KeyTypeBehaviour(ValidateExtent, PrintExtent, ExtentTriggers.ExtentTrigger));
        KeyTypeTable.Register(KeyType.InlineData, new KeyTypeBehaviour(InlineData.Validate, InlineData.ToText, InlineData.Trigger));
        KeyTypeTable.Register(KeyType.Error, new KeyTypeBehaviour(KeyTypeTable.ValidateEmpty, _ => "data lost: reads fail"));
        KeyTypeTable.Register(KeyType.Reservation, new KeyTypeBehaviour(KeyTypeTable.ValidateEmpty, _ => "allocated, unwritten: reads as zeros",
            ExtentTriggers.ExtentTrigger));
        KeyTypeTable.Register(KeyType.Backpointer, new KeyTypeBehaviour(ValidateBackpointer, PrintBackpointer));
        KeyTypeTable.Register(KeyType.ReflinkP, new KeyTypeBehaviour(ValidateReflinkPointer, PrintReflinkPointer, ReflinkTriggers.PointerTrigger));
        // Indirect extents have no trigger: their data is charged by whoever creates, splits or deletes them (ExtentTriggers.ChargeIndirect).
        KeyTypeTable.Register(KeyType.ReflinkV, new KeyTypeBehaviour(ValidateIndirect, ReflinkIndirect.ToText));
        return true;
    });

    /// <summary>Registers the behaviour of every allocation, backpointer and data key type (once).</summary>
    public static void Register() => _ = s_registration.Value;

    private static bool ValidateBackpointer(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        if (!BackpointerValue.TryRead(value, out var bp, out problem))
            return false;
        if (context.Key.Pos.Inode > byte.MaxValue || context.Key.Pos.Snapshot != 0)
        {
            problem = $"backpointer at {context.Key.Pos.ToText()}: the inode field must be a device index";
            return false;
        }
        return true;
    }

    private static string PrintBackpointer(ReadOnlySpan<byte> value) =>
        BackpointerValue.TryRead(value, out var bp, out var problem) ? bp.ToText() : $"invalid backpointer: {problem}";

    private static bool ValidateExtent(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem) =>
        ExtentValue.TryRead(value, out var e, out problem) && ValidateExtent(context, e, out problem);

    private static bool ValidateIndirect(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        if (!ReflinkIndirect.TryRead(value, out _, out var e, out problem) || !ValidateExtent(context, e, out problem))
            return false;
        if (context.Key.Pos.Inode != 0 || context.Key.Pos.Snapshot != 0 || context.Key.Pos.Offset - context.Key.Size < ReflinkSpace.FirstSector)
        {
            problem = $"indirect extent at {context.Key.Pos.ToText()}: reflink space is (0, sector 1 and up, 0)";
            return false;
        }
        return true;
    }

    private static bool ValidateReflinkPointer(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem) =>
        ReflinkPointer.TryRead(value, out var p, out problem) && (problem = p.CheckAgainstKey(context.Key.Size)) is null;

    private static string PrintReflinkPointer(ReadOnlySpan<byte> value) =>
        ReflinkPointer.TryRead(value, out var p, out var problem) ? p.ToText() : $"invalid reflink pointer: {problem}";

    private static bool ValidateExtent(in KeyValueContext context, ExtentValue e, out string? problem)
    {
        problem = e.CheckAgainstKey(context.Key.Size);
        if (problem is not null)
            return false;
        if (context.DeviceSize > 0)
        {
            foreach (var p in e.Ptrs)
            {
                if (((decimal)p.OffsetSectors + e.CoveredSectors) * FormatLimits.SectorSize > context.DeviceSize)
                {
                    problem = $"extent pointer {p.ToText()} reaches past the end of the device ({context.DeviceSize} bytes)";
                    return false;
                }
            }
        }
        return true;
    }

    private static string PrintExtent(ReadOnlySpan<byte> value) =>
        ExtentValue.TryRead(value, out var e, out var problem) ? e.ToText() : $"invalid extent: {problem}";
}
