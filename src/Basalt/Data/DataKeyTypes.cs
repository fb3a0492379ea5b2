// The key types of the data and backpointer layers (extent, error, backpointer): validators,
// printers and the extent trigger, registered in the btree's key-type table at start-up.
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
        KeyTypeTable.Register(KeyType.Error, new KeyTypeBehaviour(KeyTypeTable.ValidateEmpty, _ => "data lost: reads fail"));
        KeyTypeTable.Register(KeyType.Reservation, new KeyTypeBehaviour(KeyTypeTable.ValidateEmpty, _ => "allocated, unwritten: reads as zeros",
            ExtentTriggers.ExtentTrigger));
        KeyTypeTable.Register(KeyType.Backpointer, new KeyTypeBehaviour(ValidateBackpointer, PrintBackpointer));
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

    private static bool ValidateExtent(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        if (!ExtentValue.TryRead(value, out var e, out problem))
            return false;
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
