// The per-key-type behaviour table (DESIGN §1). The btree layer owns it and registers the types
// it understands itself (BtreePtr, Deleted, Cookie); higher layers register theirs (extents,
// inodes, alloc…, and the transaction layer's triggers) at start-up, so the btree validates,
// prints and triggers without referencing them. Every type of the KeyType enum has an entry
// (CheckComplete, run at mount): a type whose subsystem this build does not have yet is reserved
// (read and passed through untouched, never written). Lookups are lock-free reads of an immutable
// array; registration replaces it.
using System.Globalization;
using Basalt.Btree.Node;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>Where a value is being validated: enough for a type to check its value in context.</summary>
/// <param name="NodeSize">Node size in bytes (bounds a child pointer's sectors_written).</param>
/// <param name="DeviceSize">Device size in bytes, 0 when unknown.</param>
public readonly record struct KeyValueContext(BtreeId Btree, byte Level, Bkey Key, int NodeSize, long DeviceSize);

/// <summary>Validates a value: returns false with a one-line reason when it is malformed.</summary>
public delegate bool KeyValueValidator(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem);

/// <summary>Prints a value for errors, <c>list</c> and test failures.</summary>
public delegate string KeyValuePrinter(ReadOnlySpan<byte> value);

/// <summary>One version of a key in a transaction's (old, new) pair: absent when Type is Deleted.</summary>
public readonly record struct KeyVersion(Bkey Key, ReadOnlyMemory<byte> Value)
{
    public bool Exists => Key.Type != KeyType.Deleted;
}

/// <summary>What a trigger may do inside the transaction that runs it: read (its own updates included) and update.</summary>
public interface ITriggerTransaction
{
    bool TryGet(BtreeId btree, Bpos pos, out Bkey key, out byte[] value);

    void Set(BtreeId btree, in Bkey key, ReadOnlySpan<byte> value);

    void Delete(BtreeId btree, Bpos pos);

    /// <summary>
    /// Adds a journal-only delta (a type with an <see cref="IKeyAccumulator"/>) at the key's
    /// position; deltas the transaction adds at one position combine into one.
    /// </summary>
    void AddDelta(BtreeId btree, in Bkey key, ReadOnlySpan<byte> delta);

    /// <summary>The keys in [start, end] as the transaction sees them, ascending, at most <paramref name="limit"/>.</summary>
    List<(Bkey Key, byte[] Value)> Range(BtreeId btree, Bpos start, Bpos end, int limit = int.MaxValue);

    /// <summary>A per-mount service a higher layer registered with the engine (null when none is).</summary>
    T? GetService<T>() where T : class;
}

/// <summary>
/// Runs at commit on the coalesced (old, new) pair of one position whose old or new key has this
/// type; may add updates to the transaction (never at a position whose own trigger already ran).
/// </summary>
public delegate void KeyTrigger(ITriggerTransaction transaction, BtreeId btree, in KeyVersion oldKey, in KeyVersion newKey);

/// <summary>
/// Where a delta stands in the commit history: the journal seq of its commit and, because one
/// journal entry holds several commits, its place (from 1) among the deltas at its position that
/// entry holds. Ordered by seq, then ordinal.
/// </summary>
public readonly record struct DeltaVersion(ulong Seq, uint Ordinal) : IComparable<DeltaVersion>
{
    public int CompareTo(DeltaVersion other) => Seq != other.Seq ? Seq.CompareTo(other.Seq) : Ordinal.CompareTo(other.Ordinal);

    public static bool operator >=(DeltaVersion a, DeltaVersion b) => a.CompareTo(b) >= 0;
    public static bool operator <=(DeltaVersion a, DeltaVersion b) => a.CompareTo(b) <= 0;
    public static bool operator >(DeltaVersion a, DeltaVersion b) => a.CompareTo(b) > 0;
    public static bool operator <(DeltaVersion a, DeltaVersion b) => a.CompareTo(b) < 0;

    public string ToText() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"seq {Seq}.{Ordinal}");

    /// <summary>The version of the next delta committed at <paramref name="seq"/> over a total folded at this one.</summary>
    public DeltaVersion Next(ulong seq) => new(seq, Seq == seq ? Ordinal + 1 : 1);
}

/// <summary>
/// How a journal-only delta type is applied: the commit that journals a delta, and a replay of
/// it, fold it into the total its btree holds at the same position, a key of
/// <see cref="TotalType"/> whose value records the version of the newest delta folded in. A
/// replayed delta whose version the total already holds is skipped, so a delta counts once
/// however often the journal is replayed over a node written after it.
/// </summary>
public interface IKeyAccumulator
{
    /// <summary>The type of the totals in the nodes.</summary>
    KeyType TotalType { get; }

    /// <summary>Value bytes of a total and of a delta (equal: a commit sizes node space by what it journals).</summary>
    int ValueBytes { get; }

    /// <summary>The version of the newest delta folded into <paramref name="total"/> (zero: none).</summary>
    DeltaVersion FoldedVersion(ReadOnlySpan<byte> total);

    /// <summary>
    /// Writes <paramref name="total"/> (empty when the position holds none) plus
    /// <paramref name="delta"/>, folded at <paramref name="version"/>, into <paramref name="result"/>.
    /// </summary>
    void Fold(ReadOnlySpan<byte> total, ReadOnlySpan<byte> delta, DeltaVersion version, Span<byte> result);

    /// <summary>Writes the delta that has the effect of <paramref name="a"/> and then <paramref name="b"/> into <paramref name="result"/>.</summary>
    void Combine(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> result);
}

public static class KeyAccumulators
{
    /// <summary>
    /// The replay rule, for the engine's replay and for reads that show what replay will leave:
    /// folds a replayed <paramref name="delta"/> of <paramref name="version"/> into
    /// <paramref name="total"/> (empty: none), or returns false when the total already holds it.
    /// </summary>
    public static bool TryFoldReplayed(this IKeyAccumulator accumulator, ReadOnlySpan<byte> total, ReadOnlySpan<byte> delta,
        DeltaVersion version, Span<byte> result)
    {
        if (!total.IsEmpty && accumulator.FoldedVersion(total) >= version)
            return false;
        accumulator.Fold(total, delta, version, result);
        return true;
    }
}

/// <summary>The behaviour of one key type.</summary>
/// <param name="Writable">False for types this build reserves but does not write yet (reads pass them through).</param>
/// <param name="Accumulator">For a journal-only delta type: how it folds into its total.</param>
public sealed record KeyTypeBehaviour(KeyValueValidator Validate, KeyValuePrinter ToText, KeyTrigger? Trigger = null, bool Writable = true,
    IKeyAccumulator? Accumulator = null);

public static class KeyTypeTable
{
    private static readonly object s_registerLock = new();
    private static KeyTypeBehaviour?[] s_table = BuildInitial();

    private static KeyTypeBehaviour?[] BuildInitial()
    {
        var table = new KeyTypeBehaviour?[256];
        table[(int)KeyType.Deleted] = new KeyTypeBehaviour(ValidateEmpty, _ => "");
        table[(int)KeyType.Cookie] = new KeyTypeBehaviour(ValidateCookie, PrintCookie);
        table[(int)KeyType.BtreePtr] = new KeyTypeBehaviour(ValidateBtreePtr, PrintBtreePtr);
        // Types whose subsystems this build does not have: read and passed through, never written.
        var reserved = new KeyTypeBehaviour(PassThrough, PrintLength, Trigger: null, Writable: false);
        foreach (var type in new[]
                 {
                     KeyType.Whiteout, KeyType.Error, KeyType.HashWhiteout, KeyType.Extent, KeyType.Reservation, KeyType.Inode,
                     KeyType.Dirent, KeyType.Xattr, KeyType.Alloc, KeyType.ReflinkP, KeyType.ReflinkV, KeyType.InlineData,
                     KeyType.Set, KeyType.Backpointer, KeyType.BucketGens, KeyType.LoggedOpTruncate, KeyType.LoggedOpFinsert,
                     KeyType.LoggedOpReflink,
                     KeyType.Accounting, KeyType.AccountingDelta,
                 })
        {
            table[(int)type] = reserved;
        }
        return table;
    }

    /// <summary>
    /// Every key type of the KeyType enum has an entry (the start-up check: a build that adds a
    /// type without its behaviour fails at mount, not on a user's data).
    /// </summary>
    public static void CheckComplete()
    {
        var table = Volatile.Read(ref s_table);
        var missing = Enum.GetValues<KeyType>().Where(t => table[(int)t] is null).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"key types without a behaviour table entry: {string.Join(", ", missing.Select(t => t.ToText()))}");
    }

    /// <summary>The behaviour of <paramref name="type"/>, null for a number no entry was registered for.</summary>
    public static KeyTypeBehaviour? Get(KeyType type) => Volatile.Read(ref s_table)[(int)type];

    /// <summary>The accumulator of a journal-only delta type, null for every other type.</summary>
    public static IKeyAccumulator? AccumulatorOf(KeyType type) => Volatile.Read(ref s_table)[(int)type]?.Accumulator;

    /// <summary>
    /// True when some key type <paramref name="btree"/> may hold has a trigger: only then does a
    /// transaction need a position's committed key to run triggers on (inodes and dirents, say, need none).
    /// </summary>
    public static bool AnyTrigger(BtreeId btree)
    {
        var table = Volatile.Read(ref s_table);
        if (!BtreeIds.IsKnown((byte)btree))
            return true;
        foreach (var type in BtreeIds.Describe(btree).AllowedTypes)
        {
            if (table[(int)type]?.Trigger is not null)
                return true;
        }
        return false;
    }

    private static bool PassThrough(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        problem = null;
        return true;
    }

    /// <summary>Registers (or replaces) the behaviour of a key type. Called by higher layers at start-up.</summary>
    public static void Register(KeyType type, KeyTypeBehaviour behaviour)
    {
        ArgumentNullException.ThrowIfNull(behaviour);
        lock (s_registerLock)
        {
            var next = (KeyTypeBehaviour?[])s_table.Clone();
            next[(int)type] = behaviour;
            Volatile.Write(ref s_table, next);
        }
    }

    /// <summary>Removes the entry of <paramref name="type"/>: tests only, to show that a build missing one cannot mount.</summary>
    internal static void Unregister(KeyType type)
    {
        lock (s_registerLock)
        {
            var next = (KeyTypeBehaviour?[])s_table.Clone();
            next[(int)type] = null;
            Volatile.Write(ref s_table, next);
        }
    }

    public static bool IsRegistered(KeyType type) => Volatile.Read(ref s_table)[(int)type] is not null;

    /// <summary>Validates a value with its type's validator; unregistered types always pass.</summary>
    public static bool ValidateValue(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        var behaviour = Volatile.Read(ref s_table)[(int)context.Key.Type];
        if (behaviour is null)
        {
            problem = null;
            return true;
        }
        return behaviour.Validate(in context, value, out problem);
    }

    /// <summary>Prints a value with its type's printer; unregistered types print their length.</summary>
    public static string ToText(KeyType type, ReadOnlySpan<byte> value)
    {
        var behaviour = Volatile.Read(ref s_table)[(int)type];
        return behaviour is null ? PrintLength(value) : behaviour.ToText(value);
    }

    /// <summary>Prints a key and its value: <c>POS [len SIZE] TYPE: VALUE</c>.</summary>
    public static string ToText(in Bkey key, ReadOnlySpan<byte> value)
    {
        var text = ToText(key.Type, value);
        return text.Length == 0 ? key.ToText() : $"{key.ToText()}: {text}";
    }

    private static string PrintLength(ReadOnlySpan<byte> value) =>
        string.Create(CultureInfo.InvariantCulture, $"{value.Length} bytes");

    /// <summary>The validator of key types whose value is always empty (deleted, set, error, …).</summary>
    public static bool ValidateEmpty(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        problem = value.IsEmpty ? null : $"{context.Key.Type.ToText()} key with a {value.Length}-byte value (must be empty)";
        return problem is null;
    }

    private static bool ValidateCookie(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        var max = BtreeNodeFormat.MaxValueBytes(context.NodeSize);
        problem = value.Length <= max ? null : $"cookie value of {value.Length} bytes (at most {max})";
        return problem is null;
    }

    private static string PrintCookie(ReadOnlySpan<byte> value)
    {
        const int Shown = 16;
        var hex = Convert.ToHexStringLower(value[..Math.Min(value.Length, Shown)]);
        return value.Length <= Shown
            ? string.Create(CultureInfo.InvariantCulture, $"{value.Length} bytes {hex}")
            : string.Create(CultureInfo.InvariantCulture, $"{value.Length} bytes {hex}…");
    }

    // A child pointer must parse, name between 1 and node-size sectors written, and point inside
    // the device when its size is known. Parsing allocates; pointers live only in interior nodes
    // and roots, a small fraction of all keys.
    private static bool ValidateBtreePtr(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        if (!BtreePtrValue.TryRead(value, out var ptr, out problem))
            return false;
        var nodeSectors = context.NodeSize / FormatLimits.SectorSize;
        if (ptr.SectorsWritten == 0 || ptr.SectorsWritten > nodeSectors)
        {
            problem = $"btree pointer with sectors_written {ptr.SectorsWritten} (node has {nodeSectors} sectors)";
            return false;
        }
        if (ptr.Seq == 0)
        {
            problem = "btree pointer with seq 0";
            return false;
        }
        if (context.DeviceSize > 0)
        {
            foreach (var p in ptr.Ptrs)
            {
                var end = (decimal)p.OffsetSectors * FormatLimits.SectorSize + context.NodeSize;
                if (end > context.DeviceSize)
                {
                    problem = $"btree pointer {p.ToText()} reaches past the end of the device ({context.DeviceSize} bytes)";
                    return false;
                }
            }
        }
        return true;
    }

    private static string PrintBtreePtr(ReadOnlySpan<byte> value) =>
        BtreePtrValue.TryRead(value, out var ptr, out var problem) ? ptr.ToText() : $"invalid btree pointer: {problem}";
}
