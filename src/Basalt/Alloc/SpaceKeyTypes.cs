// The key types of the allocation layer (alloc, set, bucket_gens, accounting): validators,
// printers and the alloc trigger, registered in the btree's key-type table at start-up (DESIGN
// §1: the btree never references this layer). The data layer registers extents and backpointers.
using System.Globalization;
using Basalt.Btree;
using Basalt.Format;

namespace Basalt.Alloc;

public static class SpaceKeyTypes
{
    private static readonly Lazy<bool> s_registration = new(() =>
    {
        KeyTypeTable.Register(KeyType.Alloc, new KeyTypeBehaviour(ValidateAlloc, PrintAlloc, SpaceTriggers.AllocTrigger));
        KeyTypeTable.Register(KeyType.Set, new KeyTypeBehaviour(KeyTypeTable.ValidateEmpty, _ => ""));
        KeyTypeTable.Register(KeyType.BucketGens, new KeyTypeBehaviour(ValidateBucketGens, BucketGensValue.ToText));
        KeyTypeTable.Register(KeyType.Accounting, new KeyTypeBehaviour(ValidateAccounting, PrintAccounting));
        KeyTypeTable.Register(KeyType.AccountingDelta,
            new KeyTypeBehaviour(ValidateAccountingDelta, PrintAccountingDelta, Accumulator: AccountingDeltas.Instance));
        return true;
    });

    /// <summary>Registers the behaviour of every space key type (once).</summary>
    public static void Register() => _ = s_registration.Value;

    private static bool ValidateAlloc(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        if (!AllocValue.TryRead(value, out var a, out problem))
            return false;
        if (context.Key.Pos.Inode > byte.MaxValue || context.Key.Pos.Snapshot != 0)
        {
            problem = $"alloc key at {context.Key.Pos.ToText()}: the inode field must be a device index";
            return false;
        }
        problem = a.Inconsistency();
        return problem is null;
    }

    private static string PrintAlloc(ReadOnlySpan<byte> value) =>
        AllocValue.TryRead(value, out var a, out var problem) ? a.ToText() : $"invalid alloc value: {problem}";

    private static bool ValidateBucketGens(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem) =>
        BucketGensValue.TryValidate(value, out problem);

    private static bool ValidateAccounting(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem) =>
        ValidateCounters(context, value, delta: false, out problem);

    private static bool ValidateAccountingDelta(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem) =>
        ValidateCounters(context, value, delta: true, out problem);

    /// <summary>An accounting total or delta: its position names a known counter, its value reads.</summary>
    private static bool ValidateCounters(in KeyValueContext context, ReadOnlySpan<byte> value, bool delta, out string? problem)
    {
        if (!DeviceUsage.TryReadPosition(context.Key.Pos, out _, out _))
        {
            problem = $"{context.Key.Type.ToText()} key at {context.Key.Pos.ToText()} names no known counter";
            return false;
        }
        return delta ? DeviceUsage.TryReadDelta(value, out _, out problem) : DeviceUsage.TryRead(value, out _, out problem);
    }

    private static string PrintAccounting(ReadOnlySpan<byte> value) =>
        DeviceUsage.TryRead(value, out var u, out var problem)
            ? $"{u.ToText()} folded at {DeviceUsage.FoldedVersionOf(value).ToText()}"
            : $"invalid accounting value: {problem}";

    private static string PrintAccountingDelta(ReadOnlySpan<byte> value) =>
        DeviceUsage.TryReadDelta(value, out var d, out var problem)
            ? string.Create(CultureInfo.InvariantCulture, $"buckets {d.Buckets:+#;-#;0} sectors {d.Sectors:+#;-#;0} fragmented {d.Fragmented:+#;-#;0}")
            : $"invalid accounting delta: {problem}";
}
