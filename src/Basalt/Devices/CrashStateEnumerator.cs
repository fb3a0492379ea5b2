// Crash states of a write log (DESIGN §5). A crash at crash point p happens after writes
// 0..p-1 were issued and before write p. Every write of an epoch whose flush completed before
// the crash is durable; of the current epoch's writes issued before p (indices D..p-1) any
// subset may have reached the media, and the last of them may be torn at sector granularity.
// Per crash point the enumerator produces:
//   - the ordered prefixes D..D+k for k = 0..n (n = p - D),
//   - each drop-one subset (all current writes but one),
//   - N seeded random subsets,
//   - torn variants of the last issued write (its first t sectors, 0 < t < its sectors) on top of
//     all the writes before it,
// and drops duplicates by content hash: xxhash64 over the final bytes of every sector the current
// epoch touches, with the durable state mixed in. Overlapping writes of one subset are applied in
// issue order. A flush that completes exactly at the crash point is not counted as completed (a
// crash right after it gives the full prefix, which every crash point produces anyway).
using System.Buffers;
using System.Buffers.Binary;
using Basalt.Format;

namespace Basalt.Devices;

public enum CrashStateKind
{
    Prefix,
    DropOne,
    RandomSubset,
    Torn,
}

public sealed record CrashStateOptions
{
    /// <summary>Random subsets per crash point.</summary>
    public int RandomSubsets { get; init; } = 8;

    /// <summary>At most this many torn sizes of the last write per crash point (the first and last sector always).</summary>
    public int MaxTornVariants { get; init; } = 4;

    public bool Prefixes { get; init; } = true;
    public bool DropOne { get; init; } = true;
    public bool Torn { get; init; } = true;

    /// <summary>Seed of the random subsets and torn sizes (the crash point is mixed in).</summary>
    public int Seed { get; init; }
}

/// <summary>One state a crash could leave on the device.</summary>
public sealed class CrashState
{
    private readonly WriteLog _log;

    internal CrashState(WriteLog log, int crashPoint, int durableCount, CrashStateKind kind, int[] applied,
        int tornWrite, int tornSectors, ulong contentHash)
    {
        _log = log;
        CrashPoint = crashPoint;
        DurableCount = durableCount;
        Kind = kind;
        Applied = applied;
        TornWrite = tornWrite;
        TornSectors = tornSectors;
        ContentHash = contentHash;
    }

    public int CrashPoint { get; }

    /// <summary>Writes 0..DurableCount-1 (all earlier epochs) are in the state.</summary>
    public int DurableCount { get; }

    public CrashStateKind Kind { get; }

    /// <summary>Indices of current-epoch writes applied in full, ascending.</summary>
    public IReadOnlyList<int> Applied { get; }

    /// <summary>Index of the torn write, or -1.</summary>
    public int TornWrite { get; }

    /// <summary>Sectors of the torn write that reached the device.</summary>
    public int TornSectors { get; }

    public ulong ContentHash { get; }

    /// <summary>True when write <paramref name="index"/> (or its torn prefix) is part of the state.</summary>
    public bool Contains(int index) => index < DurableCount || TornWrite == index || ((int[])Applied).AsSpan().BinarySearch(index) >= 0;

    /// <summary>Applies the state's writes to <paramref name="device"/>, which must hold the base image.</summary>
    public void ApplyTo(IBlockDevice device)
    {
        var writes = _log.Writes;
        for (var i = 0; i < DurableCount; i++)
            Apply(device, writes[i], writes[i].Sectors);
        foreach (var i in Applied)
            Apply(device, writes[i], writes[i].Sectors);
        if (TornWrite >= 0)
            Apply(device, writes[TornWrite], TornSectors);
    }

    /// <summary>The state as an overlay over <paramref name="baseImage"/> (which is never written).</summary>
    public OverlayBlockDevice Materialise(IBlockDevice baseImage, long memoryThreshold = OverlayBlockDevice.DefaultMemoryThreshold)
    {
        var overlay = new OverlayBlockDevice(baseImage, memoryThreshold);
        ApplyTo(overlay);
        return overlay;
    }

    /// <summary>The state as an in-memory copy of <paramref name="baseImage"/> with the writes applied.</summary>
    public MemoryBlockDevice MaterialiseInMemory(ReadOnlySpan<byte> baseImage)
    {
        var device = new MemoryBlockDevice(baseImage, $"crash state {CrashPoint}/{Kind}");
        ApplyTo(device);
        return device;
    }

    private static void Apply(IBlockDevice device, RecordedWrite write, int sectors)
    {
        var length = (long)sectors * FormatLimits.SectorSize;
        if (write.Data is null)
            device.Discard(write.Offset, length);
        else
            device.Write(write.Offset, write.Data.AsSpan(0, (int)length));
    }

    public override string ToString()
    {
        var torn = TornWrite >= 0 ? $" + torn #{TornWrite} ({TornSectors} sectors)" : "";
        return $"crash point {CrashPoint}: {Kind}, durable {DurableCount}, applied [{string.Join(",", Applied)}]{torn}, hash {ContentHash:x16}";
    }
}

public sealed class CrashStateEnumerator
{
    private const int Sector = FormatLimits.SectorSize;

    private readonly WriteLog _log;
    private readonly CrashStateOptions _options;

    // Durable content per sector (index of the last durable write covering it) for _durableFor.
    private readonly Dictionary<long, int> _durableWriter = [];
    private int _durableFor;

    public CrashStateEnumerator(WriteLog log, CrashStateOptions? options = null)
    {
        _log = log;
        _options = options ?? new CrashStateOptions();
    }

    /// <summary>Every crash point of the log: 0 .. Count (after the last write).</summary>
    public IEnumerable<int> CrashPoints => Enumerable.Range(0, _log.Count + 1);

    /// <summary>States found again (same content) and dropped, over all calls.</summary>
    public int DuplicatesDropped { get; private set; }

    /// <summary>The distinct states of one crash point.</summary>
    public IReadOnlyList<CrashState> StatesAt(int crashPoint)
    {
        var seen = new HashSet<ulong>();
        var states = new List<CrashState>();
        foreach (var state in CandidatesAt(crashPoint))
        {
            if (seen.Add(state.ContentHash))
                states.Add(state);
            else
                DuplicatesDropped++;
        }
        return states;
    }

    /// <summary>The distinct states of every crash point, deduplicated across crash points.</summary>
    public IEnumerable<CrashState> AllStates()
    {
        var seen = new HashSet<ulong>();
        foreach (var point in CrashPoints)
        {
            foreach (var state in CandidatesAt(point))
            {
                if (seen.Add(state.ContentHash))
                    yield return state;
                else
                    DuplicatesDropped++;
            }
        }
    }

    /// <summary>Every candidate state of one crash point, duplicates included, in generation order.</summary>
    public IEnumerable<CrashState> CandidatesAt(int crashPoint)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(crashPoint);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(crashPoint, _log.Count);
        var durable = _log.DurableCount(crashPoint);
        var n = crashPoint - durable;
        var epochEnd = EpochEnd(durable);
        var all = Enumerable.Range(durable, n).ToArray();
        var seed = unchecked((_options.Seed * 1_000_003) ^ crashPoint);
        var random = new Random(seed);

        if (_options.Prefixes || n == 0)
        {
            for (var k = 0; k <= n; k++)
                yield return Make(crashPoint, durable, epochEnd, CrashStateKind.Prefix, all[..k], -1, 0);
        }
        if (_options.DropOne && n > 0)
        {
            for (var drop = 0; drop < n; drop++)
                yield return Make(crashPoint, durable, epochEnd, CrashStateKind.DropOne, [.. all[..drop], .. all[(drop + 1)..]], -1, 0);
        }
        if (n > 1)
        {
            for (var r = 0; r < _options.RandomSubsets; r++)
            {
                var subset = all.Where(_ => random.Next(2) == 1).ToArray();
                yield return Make(crashPoint, durable, epochEnd, CrashStateKind.RandomSubset, subset, -1, 0);
            }
        }
        if (_options.Torn && n > 0)
        {
            var last = _log.Writes[crashPoint - 1];
            foreach (var t in TornSizes(last.Sectors, random))
                yield return Make(crashPoint, durable, epochEnd, CrashStateKind.Torn, all[..^1], last.Index, t);
        }
    }

    /// <summary>Torn sizes 1..sectors-1: all of them if few, else 1, sectors-1 and seeded others.</summary>
    private List<int> TornSizes(int sectors, Random random)
    {
        var sizes = new List<int>();
        if (sectors < 2 || _options.MaxTornVariants <= 0)
            return sizes;
        if (sectors - 1 <= _options.MaxTornVariants)
        {
            for (var t = 1; t < sectors; t++)
                sizes.Add(t);
            return sizes;
        }
        var set = new SortedSet<int> { 1, sectors - 1 };
        while (set.Count < _options.MaxTornVariants)
            set.Add(1 + random.Next(sectors - 1));
        sizes.AddRange(set);
        return sizes;
    }

    private int EpochEnd(int durable)
    {
        foreach (var f in _log.Flushes)
        {
            if (f > durable)
                return f;
        }
        return _log.Count;
    }

    private CrashState Make(int crashPoint, int durable, int epochEnd, CrashStateKind kind, int[] applied, int torn, int tornSectors) =>
        new(_log, crashPoint, durable, kind, applied, torn, tornSectors, Hash(durable, epochEnd, applied, torn, tornSectors));

    /// <summary>
    /// xxhash64 of the state's bytes over every sector the epoch (writes durable..epochEnd-1) touches,
    /// each sector's content given by its last writer in the state (a durable write, or the base).
    /// </summary>
    private ulong Hash(int durable, int epochEnd, int[] applied, int torn, int tornSectors)
    {
        var writes = _log.Writes;
        PrepareDurable(durable);

        // Final writer of each touched sector: start from the durable writer, then apply the subset in order.
        var final = new SortedDictionary<long, (int Write, int Sector)>();
        for (var i = durable; i < epochEnd; i++)
        {
            var w = writes[i];
            for (var s = 0; s < w.Sectors; s++)
            {
                var sector = (w.Offset / Sector) + s;
                if (!final.ContainsKey(sector))
                    final[sector] = DurableSource(sector);
            }
        }
        foreach (var i in applied)
            Cover(final, writes[i], writes[i].Sectors);
        if (torn >= 0)
            Cover(final, writes[torn], tornSectors);

        var buffer = ArrayPool<byte>.Shared.Rent((final.Count * 16) + 8);
        try
        {
            var span = buffer.AsSpan(0, (final.Count * 16) + 8);
            BinaryPrimitives.WriteInt64LittleEndian(span, durable);
            var at = 8;
            foreach (var (sector, source) in final)
            {
                BinaryPrimitives.WriteInt64LittleEndian(span[at..], sector);
                BinaryPrimitives.WriteUInt64LittleEndian(span[(at + 8)..], SectorHash(source));
                at += 16;
            }
            return System.IO.Hashing.XxHash64.HashToUInt64(span);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void Cover(SortedDictionary<long, (int Write, int Sector)> final, RecordedWrite write, int sectors)
    {
        for (var s = 0; s < sectors; s++)
            final[(write.Offset / Sector) + s] = (write.Index, s);
    }

    private ulong SectorHash((int Write, int Sector) source)
    {
        if (source.Write < 0)
            return 0; // the base image's sector: the same in every state
        var w = _log.Writes[source.Write];
        if (w.Data is null)
            return 1; // discarded: zeroes (or old data; the model treats it as zeroes)
        return System.IO.Hashing.XxHash64.HashToUInt64(w.Data.AsSpan(source.Sector * Sector, Sector), seed: 2);
    }

    private (int Write, int Sector) DurableSource(long sector) =>
        _durableWriter.TryGetValue(sector, out var w) ? (w, (int)(sector - (_log.Writes[w].Offset / Sector))) : (-1, 0);

    private void PrepareDurable(int durable)
    {
        if (durable < _durableFor)
        {
            _durableWriter.Clear();
            _durableFor = 0;
        }
        for (var i = _durableFor; i < durable; i++)
        {
            var w = _log.Writes[i];
            for (var s = 0; s < w.Sectors; s++)
                _durableWriter[(w.Offset / Sector) + s] = i;
        }
        _durableFor = durable;
    }
}
