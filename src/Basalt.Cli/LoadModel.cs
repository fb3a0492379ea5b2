// The `debug load` workload's model: where its keys live in the test btree, what transaction i of
// thread t does, and which keys transactions 1..k of a thread leave behind. Everything is a pure
// function of the parameters, the thread and the transaction number, so a run resumes where the
// image's counters say, and --verify recomputes the expected keys without any log of the run.
//
// Layout in the test btree; thread t owns the inodes [t·2^32, (t+1)·2^32):
//   t·2^32 + 1 : 0     thread t's counter: u64 LE, the last transaction of t the image holds,
//                      then u64 LE check = hash(seed, t, transaction)
//   t·2^32 + 2 : s     slot s (0 <= s < keys): the value the last transaction that set s wrote
//   2^64-1 : 1         the parameters (LoadParameters), outside every thread range; 2^64-1 : 0 is
//                      the counted keys' summary, which this workload never writes
//
// Transaction i of thread t touches 1..4 slots picked by a hash of (seed, t, i, j): each is set
// (70 %) to a value that (seed, t, i, slot) alone determine, or deleted (30 %); then the counter
// is set to i. A slot's state after transactions 1..k is the doing of the last of them that
// touched it, so the expected keys come from one pass over 1..k holding only the live slots.
// In the steady state 70 % of the slots are live: a set overwrites 70 % of the time and inserts
// 30 %, and 70 % of the deletes find a key.
using System.Buffers.Binary;
using System.Globalization;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Cli;

/// <summary>What a load was started with; stored in the image at <see cref="LoadModel.ParametersPos"/>.</summary>
internal sealed record LoadParameters(int Seed, int Threads, int ValueBytes, int Keys)
{
    public const int DefaultSeed = 1;
    public const int DefaultThreads = 1;
    public const int DefaultValueBytes = 100;
    public const int DefaultKeys = 10_000;

    public const int MaxThreads = 256;
    public const int MinValueBytes = LoadModel.ValueHeaderBytes;
    public const int MaxKeys = 1 << 24;

    // The stored value: 32 bytes, little-endian.
    public const int SizeOf = 32;
    private const int MagicOffset = 0;    // u64 "BSLTLOAD"
    private const int VersionOffset = 8;  // u32, 1
    private const int SeedOffset = 12;    // i32
    private const int ThreadsOffset = 16; // u32
    private const int ValueBytesOffset = 20; // u32
    private const int KeysOffset = 24;    // u32
    private const int ReservedOffset = 28; // u32, 0
    private const ulong Magic = 0x44414F4C544C5342; // "BSLTLOAD"
    private const uint Version = 1;

    public byte[] Encode()
    {
        var value = new byte[SizeOf];
        BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(MagicOffset), Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(VersionOffset), Version);
        BinaryPrimitives.WriteInt32LittleEndian(value.AsSpan(SeedOffset), Seed);
        BinaryPrimitives.WriteInt32LittleEndian(value.AsSpan(ThreadsOffset), Threads);
        BinaryPrimitives.WriteInt32LittleEndian(value.AsSpan(ValueBytesOffset), ValueBytes);
        BinaryPrimitives.WriteInt32LittleEndian(value.AsSpan(KeysOffset), Keys);
        return value;
    }

    /// <summary>Decodes a stored parameter key; a value that is not one (or out of range) is an error naming what is wrong.</summary>
    public static LoadParameters Decode(ReadOnlySpan<byte> value)
    {
        var where = $"btree test at {LoadModel.ParametersPos.ToText()}";
        if (value.Length != SizeOf || BinaryPrimitives.ReadUInt64LittleEndian(value[MagicOffset..]) != Magic)
        {
            throw new BasaltException(ErrorCode.UnsupportedFeature,
                $"the key in {where} is not load parameters ({value.Length} bytes {Convert.ToHexStringLower(value[..Math.Min(value.Length, 16)])})");
        }
        var version = BinaryPrimitives.ReadUInt32LittleEndian(value[VersionOffset..]);
        if (version != Version)
            throw new BasaltException(ErrorCode.UnsupportedVersion, $"the load parameters in {where} are version {version}; this build knows version {Version}");
        var p = new LoadParameters(
            BinaryPrimitives.ReadInt32LittleEndian(value[SeedOffset..]),
            BinaryPrimitives.ReadInt32LittleEndian(value[ThreadsOffset..]),
            BinaryPrimitives.ReadInt32LittleEndian(value[ValueBytesOffset..]),
            BinaryPrimitives.ReadInt32LittleEndian(value[KeysOffset..]));
        var reserved = BinaryPrimitives.ReadUInt32LittleEndian(value[ReservedOffset..]);
        if (p.Threads is < 1 or > MaxThreads || p.ValueBytes < MinValueBytes || p.ValueBytes > BkeyFormat.MaxValueBytes ||
            p.Keys is < 1 or > MaxKeys || reserved != 0)
        {
            throw new BasaltException(ErrorCode.UnsupportedFeature, $"the load parameters in {where} are out of range: {p.ToText()}");
        }
        return p;
    }

    public string ToText() => string.Create(CultureInfo.InvariantCulture,
        $"seed {Seed}, {Threads} thread{(Threads == 1 ? "" : "s")}, {ValueBytes}-byte values, {Keys} keys per thread");
}

/// <summary>One slot a transaction touches: set it to the transaction's value, or delete it.</summary>
internal readonly record struct LoadOp(int Slot, bool Set);

internal static class LoadModel
{
    /// <summary>Slots one transaction touches at most.</summary>
    public const int MaxOpsPerTransaction = 4;

    /// <summary>A value starts with u64 transaction, u32 thread, u32 slot: a found value says whose it is.</summary>
    public const int ValueHeaderBytes = 16;

    /// <summary>A counter: u64 transaction, u64 check.</summary>
    private const int CounterBytes = 16;

    /// <summary>Where the parameters live: inode 2^64-1, outside every thread's range.</summary>
    public static readonly Bpos ParametersPos = new(ulong.MaxValue, 1);

    public static Bpos CounterPos(int thread) => new(((ulong)thread << 32) + 1, 0);

    public static Bpos SlotPos(int thread, int slot) => new(((ulong)thread << 32) + 2, (ulong)slot);

    /// <summary>The first position of thread <paramref name="thread"/>'s range.</summary>
    public static Bpos RangeStart(int thread) => new((ulong)thread << 32, 0);

    /// <summary>The last position of thread <paramref name="thread"/>'s range (inclusive).</summary>
    public static Bpos RangeEnd(int thread) => new((((ulong)thread + 1) << 32) - 1, ulong.MaxValue, uint.MaxValue);

    /// <summary>The slot <paramref name="pos"/> names in thread <paramref name="thread"/>'s range, or -1.</summary>
    public static int SlotOf(int thread, Bpos pos, int keys) =>
        pos.Inode == ((ulong)thread << 32) + 2 && pos.Snapshot == 0 && pos.Offset < (ulong)keys ? (int)pos.Offset : -1;

    /// <summary>Fills <paramref name="ops"/> with what transaction <paramref name="i"/> of <paramref name="thread"/> does; returns how many.</summary>
    public static int Plan(LoadParameters p, int thread, long i, Span<LoadOp> ops)
    {
        var n = 1 + (int)(Hash(p.Seed, thread, i, ulong.MaxValue) % MaxOpsPerTransaction);
        for (var j = 0; j < n; j++)
        {
            var h = Hash(p.Seed, thread, i, (ulong)j);
            ops[j] = new LoadOp((int)((h >> 8) % (ulong)p.Keys), (h & 0xFF) < 179);
        }
        return n;
    }

    /// <summary>The value transaction <paramref name="i"/> of <paramref name="thread"/> writes to <paramref name="slot"/>.</summary>
    public static byte[] Value(LoadParameters p, int thread, long i, int slot)
    {
        var value = new byte[p.ValueBytes];
        ValueInto(p, thread, i, slot, value);
        return value;
    }

    /// <summary>Writes <see cref="Value"/> into <paramref name="value"/> (<see cref="LoadParameters.ValueBytes"/> long).</summary>
    public static void ValueInto(LoadParameters p, int thread, long i, int slot, Span<byte> value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(value, i);
        BinaryPrimitives.WriteInt32LittleEndian(value[8..], thread);
        BinaryPrimitives.WriteInt32LittleEndian(value[12..], slot);
        var state = Hash(p.Seed, thread, i, 0x5107_0000_0000_0000UL | (uint)slot);
        Span<byte> word = stackalloc byte[8];
        for (var at = ValueHeaderBytes; at < value.Length; at += 8)
        {
            state = Mix(state);
            BinaryPrimitives.WriteUInt64LittleEndian(word, state);
            word[..Math.Min(8, value.Length - at)].CopyTo(value[at..]);
        }
    }

    /// <summary>
    /// Thread <paramref name="thread"/>'s counter at transaction <paramref name="i"/>: u64 LE i, then a
    /// u64 LE check from (seed, thread, i), so a damaged counter is seen as such and never sends
    /// --verify into replaying an absurd number of transactions.
    /// </summary>
    public static byte[] CounterValue(LoadParameters p, int thread, long i)
    {
        var value = new byte[CounterBytes];
        BinaryPrimitives.WriteInt64LittleEndian(value, i);
        BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(8), CounterCheck(p, thread, i));
        return value;
    }

    /// <summary>A counter's transaction number, or false when the value is not a counter of this thread.</summary>
    public static bool TryReadCounter(LoadParameters p, int thread, ReadOnlySpan<byte> value, out long i)
    {
        i = value.Length == CounterBytes ? BinaryPrimitives.ReadInt64LittleEndian(value) : -1;
        return i >= 0 && BinaryPrimitives.ReadUInt64LittleEndian(value[8..]) == CounterCheck(p, thread, i);
    }

    /// <summary>"transaction 57", or what the value holds when it is not a counter of this thread.</summary>
    public static string DescribeCounter(LoadParameters p, int thread, ReadOnlySpan<byte> value) =>
        TryReadCounter(p, thread, value, out var i)
            ? string.Create(CultureInfo.InvariantCulture, $"transaction {i}")
            : $"{DescribeValue(value, -1, -1)}, not a counter of thread {thread.ToString(CultureInfo.InvariantCulture)}";

    private static ulong CounterCheck(LoadParameters p, int thread, long i) => Hash(p.Seed, thread, i, 0xC0C0_0000_0000_0000UL);

    /// <summary>
    /// The live slots after transactions 1..<paramref name="k"/> of <paramref name="thread"/>, each with
    /// the transaction whose value it holds. Memory: one entry per live slot.
    /// </summary>
    public static Dictionary<int, long> ExpectedSlots(LoadParameters p, int thread, long k, CancellationToken cancellation = default)
    {
        var live = new Dictionary<int, long>();
        Span<LoadOp> ops = stackalloc LoadOp[MaxOpsPerTransaction];
        for (long i = 1; i <= k; i++)
        {
            var n = Plan(p, thread, i, ops);
            foreach (var op in ops[..n])
            {
                if (op.Set)
                    live[op.Slot] = i;
                else
                    live.Remove(op.Slot);
            }
            if ((i & 0xFFFF) == 0)
                cancellation.ThrowIfCancellationRequested();
        }
        return live;
    }

    /// <summary>"the value of transaction 57" when a found value carries a header of this thread and slot; else its bytes.</summary>
    public static string DescribeValue(ReadOnlySpan<byte> value, int thread, int slot)
    {
        if (value.Length >= ValueHeaderBytes && BinaryPrimitives.ReadInt32LittleEndian(value[8..]) == thread &&
            BinaryPrimitives.ReadInt32LittleEndian(value[12..]) == slot)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"the {value.Length}-byte value of transaction {BinaryPrimitives.ReadInt64LittleEndian(value)}");
        }
        var shown = Convert.ToHexStringLower(value[..Math.Min(value.Length, 16)]);
        return string.Create(CultureInfo.InvariantCulture, $"{value.Length} bytes {shown}{(value.Length > 16 ? "…" : "")}");
    }

    private static ulong Hash(int seed, int thread, long i, ulong j) =>
        Mix(Mix(Mix(Mix((uint)seed) ^ (ulong)thread) ^ (ulong)i) ^ j);

    // SplitMix64's finaliser: a fixed, platform-independent mix (unlike HashCode, which is seeded per process).
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
