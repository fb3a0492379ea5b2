// Space accounting: counters in the accounting btree, kept by the allocation triggers in the same
// transaction as the change they count, and recomputed by check_allocations. One key per device
// and bucket data type at (kind 1, device << 8 | data type, 0) holds {buckets, sectors, fragmented
// sectors} and the version (journal seq, ordinal in the entry) of the newest change folded in.
//
// Transactions never write the counters: they journal deltas (accounting_delta keys at the same
// positions), and the commit folds each delta into the key (AccountingDeltas). Journal replay
// folds a delta only when its version is newer than the key's, so a delta that a node written
// before the crash already holds is not counted twice.
// Layout in docs/format.md ("Accounting").
using System.Buffers.Binary;
using System.Globalization;
using Basalt.Btree;
using Basalt.Format;

namespace Basalt.Alloc;

public enum AccountingKind : ulong
{
    /// <summary>Per device and bucket data type: buckets, sectors, fragmented sectors.</summary>
    DeviceDataType = 1,
}

/// <summary>The counters of one device and data type.</summary>
public record struct DeviceUsage(long Buckets, long Sectors, long Fragmented)
{
    /// <summary>
    /// Value bytes of a total and of a delta: the three counters, then the folded version (seq u64,
    /// ordinal u32) and a reserved u32, all zero in a delta.
    /// </summary>
    public const int Size = 40;

    /// <summary>A total written before the folded version was recorded: the counters alone (its version reads as zero).</summary>
    public const int LegacySize = 24;

    public static Bpos Position(byte device, BucketDataType type) => new((ulong)AccountingKind.DeviceDataType, ((ulong)device << 8) | (byte)type);

    public static bool TryReadPosition(Bpos pos, out byte device, out BucketDataType type)
    {
        device = (byte)(pos.Offset >> 8);
        type = (BucketDataType)(byte)pos.Offset;
        return pos.Inode == (ulong)AccountingKind.DeviceDataType && pos.Offset <= ushort.MaxValue && pos.Snapshot == 0 &&
               BucketDataTypes.IsKnown((byte)pos.Offset);
    }

    public readonly bool IsZero => Buckets == 0 && Sectors == 0 && Fragmented == 0;

    public readonly DeviceUsage Add(DeviceUsage d) => new(Buckets + d.Buckets, Sectors + d.Sectors, Fragmented + d.Fragmented);

    public readonly DeviceUsage Subtract(DeviceUsage d) => new(Buckets - d.Buckets, Sectors - d.Sectors, Fragmented - d.Fragmented);

    /// <summary>These counters as a value (a total folded at seq 0, or a delta).</summary>
    public readonly byte[] ToArray()
    {
        var bytes = new byte[Size];
        Write(bytes, default);
        return bytes;
    }

    public readonly void Write(Span<byte> destination, DeltaVersion folded)
    {
        BinaryPrimitives.WriteInt64LittleEndian(destination, Buckets);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], Sectors);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], Fragmented);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], folded.Seq);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[32..], folded.Ordinal);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[36..], 0);
    }

    private static DeviceUsage ReadCounters(ReadOnlySpan<byte> value) =>
        new(BinaryPrimitives.ReadInt64LittleEndian(value), BinaryPrimitives.ReadInt64LittleEndian(value[8..]),
            BinaryPrimitives.ReadInt64LittleEndian(value[16..]));

    /// <summary>The version of the newest delta folded into a total (zero for none, and for a legacy value).</summary>
    public static DeltaVersion FoldedVersionOf(ReadOnlySpan<byte> total) =>
        total.Length == Size
            ? new DeltaVersion(BinaryPrimitives.ReadUInt64LittleEndian(total[24..]), BinaryPrimitives.ReadUInt32LittleEndian(total[32..]))
            : default;

    /// <summary>Reads a total (an accounting key's value).</summary>
    public static bool TryRead(ReadOnlySpan<byte> value, out DeviceUsage usage, out string? problem)
    {
        usage = default;
        if (value.Length != Size && value.Length != LegacySize)
        {
            problem = $"accounting value of {value.Length} bytes (must be {Size})";
            return false;
        }
        usage = ReadCounters(value);
        if (usage.Buckets < 0 || usage.Sectors < 0 || usage.Fragmented < 0)
        {
            problem = $"accounting counters below zero ({usage.ToText()})";
            return false;
        }
        if (value.Length == Size && BinaryPrimitives.ReadUInt32LittleEndian(value[36..]) != 0)
        {
            problem = "accounting value with a non-zero reserved field";
            return false;
        }
        problem = null;
        return true;
    }

    /// <summary>Reads a delta (an accounting_delta key's value): counters of either sign, the seq field zero.</summary>
    public static bool TryReadDelta(ReadOnlySpan<byte> value, out DeviceUsage delta, out string? problem)
    {
        delta = default;
        if (value.Length != Size)
        {
            problem = $"accounting delta of {value.Length} bytes (must be {Size})";
            return false;
        }
        if (value[24..].IndexOfAnyExcept((byte)0) >= 0)
        {
            problem = "accounting delta with a non-zero version or reserved field";
            return false;
        }
        delta = ReadCounters(value);
        problem = null;
        return true;
    }

    public readonly string ToText() => string.Create(CultureInfo.InvariantCulture, $"buckets {Buckets} sectors {Sectors} fragmented {Fragmented}");
}

/// <summary>
/// How accounting deltas fold into the accounting keys (the engine calls it at commit and replay).
/// A counter a delta would drive below zero stays at zero: the stored counters were already wrong,
/// and check_allocations repairs them; a user's write is not failed for it.
/// </summary>
public sealed class AccountingDeltas : IKeyAccumulator
{
    public static AccountingDeltas Instance { get; } = new();

    public KeyType TotalType => KeyType.Accounting;

    public int ValueBytes => DeviceUsage.Size;

    public DeltaVersion FoldedVersion(ReadOnlySpan<byte> total) => DeviceUsage.FoldedVersionOf(total);

    public void Fold(ReadOnlySpan<byte> total, ReadOnlySpan<byte> delta, DeltaVersion version, Span<byte> result)
    {
        var current = DeviceUsage.TryRead(total, out var t, out _) ? t : default;
        var change = DeviceUsage.TryReadDelta(delta, out var d, out _) ? d : default;
        var next = current.Add(change);
        next = new DeviceUsage(Math.Max(0, next.Buckets), Math.Max(0, next.Sectors), Math.Max(0, next.Fragmented));
        var folded = DeviceUsage.FoldedVersionOf(total);
        next.Write(result, version > folded ? version : folded);
    }

    public void Combine(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> result)
    {
        var first = DeviceUsage.TryReadDelta(a, out var x, out _) ? x : default;
        var second = DeviceUsage.TryReadDelta(b, out var y, out _) ? y : default;
        first.Add(second).Write(result, default);
    }
}
