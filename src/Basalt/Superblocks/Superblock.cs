// The superblock: the per-device record that says what the filesystem is (uuid, label,
// versions, features), how the device is cut up (block, node and bucket sizes; the member
// table with each device's buckets and the node area reserved at format; journal bucket
// ranges), where the btrees start (roots), whether it was shut down cleanly, which fsck errors
// it has seen, and where its own copies are (layout).
//
// This type is the in-memory model: an immutable record, changed with `with` or the With…
// helpers, encoded and decoded by SuperblockCodec, read and written by SuperblockIo. The layer
// depends only on Format and Devices; the btree builds its BtreeGeometry from it.
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Basalt.Format;

namespace Basalt.Superblocks;

/// <summary>A contiguous run of buckets [Start, Start + Count).</summary>
public readonly record struct BucketRange(ulong Start, ulong Count)
{
    public ulong End => Start + Count;

    public bool Overlaps(BucketRange other) => Start < other.End && other.Start < End;

    public string ToText() => Count == 0 ? "none" : $"buckets {Start}..{End - 1} ({Count})";
}

/// <summary>One device of the filesystem and its geometry.</summary>
public sealed record Member
{
    public required Guid DeviceUuid { get; init; }

    /// <summary>Buckets [0, Nbuckets) of <see cref="BucketSize"/> bytes exist; bucket i starts at byte i * BucketSize.</summary>
    public required ulong Nbuckets { get; init; }

    public required int BucketSize { get; init; }

    /// <summary>Buckets below this hold the start superblock area and are never allocated.</summary>
    public required uint FirstBucket { get; init; }

    /// <summary>Buckets reserved at format for btree nodes.</summary>
    public required BucketRange NodeArea { get; init; }

    public MemberState State { get; init; } = MemberState.ReadWrite;

    public MemberFlags Flags { get; init; }

    /// <summary>Regions of the node-region map: 64, of 2^<see cref="NodeRegionShift"/> buckets each.</summary>
    public const int NodeRegions = 64;

    /// <summary>Node-region map regions are 2^shift buckets: the smallest shift that covers every bucket in 64 regions.</summary>
    public byte NodeRegionShift { get; init; }

    /// <summary>Bit i set: region i (buckets [i &lt;&lt; shift, (i + 1) &lt;&lt; shift)) has ever held btree nodes; the node scan reads only those.</summary>
    public ulong NodeRegionMap { get; init; }

    /// <summary>The smallest region shift that covers <paramref name="nbuckets"/> buckets in 64 regions.</summary>
    public static byte RegionShiftFor(ulong nbuckets)
    {
        byte shift = 0;
        while (nbuckets > 0 && ((nbuckets - 1) >> shift) >= NodeRegions)
            shift++;
        return shift;
    }

    /// <summary>The map bits of the regions buckets [<paramref name="start"/>, <paramref name="end"/>) touch.</summary>
    public ulong NodeRegionBits(ulong start, ulong end) => NodeRegionBits(NodeRegionShift, start, end);

    /// <summary>The map bits, for regions of 2^<paramref name="shift"/> buckets, that buckets [<paramref name="start"/>, <paramref name="end"/>) touch.</summary>
    public static ulong NodeRegionBits(byte shift, ulong start, ulong end)
    {
        ulong bits = 0;
        if (end <= start || shift >= 64)
            return 0;
        for (var r = start >> shift; r <= (end - 1) >> shift && r < NodeRegions; r++)
            bits |= 1UL << (int)r;
        return bits;
    }

    /// <summary>The bucket ranges of the regions set in the map, adjacent ones merged, clipped to the buckets.</summary>
    public IReadOnlyList<BucketRange> NodeRegionRanges()
    {
        var list = new List<BucketRange>();
        for (var r = 0; r < NodeRegions; r++)
        {
            if ((NodeRegionMap & (1UL << r)) == 0)
                continue;
            var start = Math.Max((ulong)r << NodeRegionShift, FirstBucket);
            var end = Math.Min((ulong)(r + 1) << NodeRegionShift, Nbuckets);
            if (end <= start)
                continue;
            if (list.Count > 0 && list[^1].End == start)
                list[^1] = new BucketRange(list[^1].Start, list[^1].Count + (end - start));
            else
                list.Add(new BucketRange(start, end - start));
        }
        return list;
    }

    /// <summary>First byte past the last bucket.</summary>
    public long BucketsEnd => checked((long)Nbuckets * BucketSize);

    public long NodeAreaOffset => checked((long)NodeArea.Start * BucketSize);

    public long NodeAreaLength => checked((long)NodeArea.Count * BucketSize);

    public string ToText() =>
        $"uuid {SuperblockText.Uuid(DeviceUuid)} state {State} bucket size {SuperblockText.Size(BucketSize)} " +
        $"buckets {FirstBucket}..{Nbuckets - 1} (first {FirstBucket}, nbuckets {Nbuckets}) node area {NodeArea.ToText()} node regions {string.Join(",", NodeRegionRanges().Select(r => r.ToText()))}" +
        $"{((Flags & MemberFlags.Discard) != 0 ? " discard" : " nodiscard")}{((Flags & MemberFlags.AllocInitialized) != 0 ? "" : " alloc-uninitialized")}";
}

/// <summary>
/// Data of the clean section. <paramref name="JournalSeq"/> is the checkpoint: the superblock's
/// roots hold every journal commit up to it, so recovery replays only later entries. It is kept
/// current whether or not the filesystem is clean.
/// </summary>
public sealed record CleanInfo(DateTimeOffset LastMount, DateTimeOffset LastUnmount, ulong JournalSeq)
{
    public static CleanInfo Empty { get; } = new(DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, 0);
}

/// <summary>A persisted fsck error counter.</summary>
public readonly record struct ErrorCounter(FsckErrorId Id, ulong Count, DateTimeOffset LastTime)
{
    public string ToText() =>
        $"{(FsckCatalogue.TryGet((ushort)Id, out var info) ? info!.Name : $"error{(ushort)Id}")} ({(ushort)Id}): {Count}, last {SuperblockText.Time(LastTime)}";
}

/// <summary>A section this build does not understand, kept byte for byte when the superblock is rewritten.</summary>
public sealed record UnknownSection(uint Type, byte[] Payload);

public sealed record Superblock
{
    public required Guid Uuid { get; init; }

    /// <summary>User-visible uuid; null means "same as <see cref="Uuid"/>" (stored as zeroes).</summary>
    public Guid? UserUuid { get; init; }

    /// <summary>Up to 32 bytes of UTF-8.</summary>
    public string Label { get; init; } = "";

    public ushort Version { get; init; } = FormatVersion.Current;

    public ushort VersionMin { get; init; } = FormatVersion.Min;

    /// <summary>Incremented on every write; the copy with the highest seq wins.</summary>
    public ulong Seq { get; init; }

    public DateTimeOffset WriteTime { get; init; } = DateTimeOffset.UnixEpoch;

    public SuperblockFlags Flags { get; init; }

    public ulong IncompatFeatures { get; init; }

    public ulong CompatFeatures { get; init; }

    /// <summary>Checksum type of the superblock itself.</summary>
    public ChecksumType SuperblockChecksumType { get; init; } = ChecksumType.Crc32C;

    /// <summary>Checksum type for btree nodes and journal entries.</summary>
    public ChecksumType MetadataChecksumType { get; init; } = ChecksumType.Crc32C;

    /// <summary>Checksum type of newly written data extents (each extent records its own).</summary>
    public ChecksumType DataChecksumType { get; init; } = ChecksumType.Crc32C;

    public required int BlockSize { get; init; }

    public required int NodeSize { get; init; }

    /// <summary>Device size in bytes the geometry was computed for.</summary>
    public required long DeviceSize { get; init; }

    /// <summary>This device's index in <see cref="Members"/>.</summary>
    public byte DeviceIndex { get; init; }

    public required IReadOnlyList<Member> Members { get; init; }

    /// <summary>Journal bucket ranges on this device, in ring order.</summary>
    public IReadOnlyList<BucketRange> JournalBuckets { get; init; } = [];

    /// <summary>Journal seqs written but never flushed before a crash (sorted, disjoint): never replayed.</summary>
    public IReadOnlyList<SeqRange> JournalBlacklist { get; init; } = [];

    /// <summary>Btree roots, sorted by btree id; a btree without an entry is empty.</summary>
    public IReadOnlyList<BtreeRoot> Roots { get; init; } = [];

    public CleanInfo CleanInfo { get; init; } = CleanInfo.Empty;

    /// <summary>Error counters sorted by id.</summary>
    public IReadOnlyList<ErrorCounter> ErrorCounters { get; init; } = [];

    /// <summary>Byte offsets of the copies, ascending (the layout section).</summary>
    public required IReadOnlyList<long> CopyOffsets { get; init; }

    /// <summary>Sections of unknown type, rewritten unchanged after the known ones.</summary>
    public IReadOnlyList<UnknownSection> UnknownSections { get; init; } = [];

    /// <summary>
    /// crc32c of each 512-byte sector of the encoded copy this superblock replaced on disk (sector 0
    /// with its csum and offset fields read as zero, so every copy of one version gives the same
    /// list); empty when it replaced none (format). <see cref="SuperblockIo.Write(Devices.IBlockDevice, Superblock, IReadOnlyList{uint}, DateTimeOffset)"/>
    /// sets it; <see cref="InterruptedWrite"/> uses it to tell a copy torn by a crash from a damaged one.
    /// </summary>
    public IReadOnlyList<uint> PreviousSectors { get; init; } = [];

    // ---- Derived -------------------------------------------------------------------------

    public Member Member => Members[DeviceIndex];

    public int BucketSize => Member.BucketSize;

    public BucketRange NodeArea => Member.NodeArea;

    public long NodeAreaOffset => Member.NodeAreaOffset;

    public long NodeAreaLength => Member.NodeAreaLength;

    public bool IsClean => (Flags & SuperblockFlags.Clean) != 0;

    /// <summary>The byte ranges the node-region map names, the journal buckets cut out: what the node scan reads.</summary>
    public IReadOnlyList<(long Offset, long Length)> NodeRegionBytes()
    {
        var ranges = new List<(long Offset, long Length)>();
        foreach (var region in Member.NodeRegionRanges())
        {
            var start = region.Start;
            while (start < region.End)
            {
                // The next journal range starting at or after `start` within the region splits it.
                var end = region.End;
                var skipTo = start;
                foreach (var j in JournalBuckets)
                {
                    if (j.Start <= start && j.End > start)
                        skipTo = Math.Max(skipTo, j.End);
                    else if (j.Start > start && j.Start < end)
                        end = j.Start;
                }
                if (skipTo > start)
                {
                    start = Math.Min(skipTo, region.End);
                    continue;
                }
                ranges.Add(((long)start * BucketSize, (long)(end - start) * BucketSize));
                start = end;
            }
        }
        return ranges;
    }


    /// <summary>Magic of every btree node: uuid bytes 0..7 as a little-endian u64, xor "BSLTNODE".</summary>
    public ulong NodeMagic => NodeMagicFor(Uuid);

    public const ulong NodeMagicXor = 0x45444F4E544C5342UL;

    public static ulong NodeMagicFor(Guid uuid)
    {
        Span<byte> bytes = stackalloc byte[16];
        SuperblockText.WriteUuid(uuid, bytes);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes) ^ NodeMagicXor;
    }

    public BtreeRoot? RootOf(BtreeId btree)
    {
        foreach (var r in Roots)
        {
            if (r.Btree == btree)
                return r;
        }
        return null;
    }

    // ---- Updates -------------------------------------------------------------------------

    /// <summary>Sets, replaces (root != null) or removes (null) the root of one btree, keeping the list sorted.</summary>
    public Superblock WithRoot(BtreeId btree, BtreeRoot? root)
    {
        if (root is not null && root.Btree != btree)
            throw new ArgumentException($"root is for {root.Btree.ToText()}, not {btree.ToText()}", nameof(root));
        var roots = Roots.Where(r => r.Btree != btree).ToList();
        if (root is not null)
            roots.Add(root);
        roots.Sort((a, b) => ((byte)a.Btree).CompareTo((byte)b.Btree));
        return this with { Roots = roots };
    }

    /// <summary>Adds <paramref name="count"/> occurrences of an error at <paramref name="when"/>.</summary>
    public Superblock WithErrorCounted(FsckErrorId id, DateTimeOffset when, ulong count = 1)
    {
        var list = ErrorCounters.ToList();
        var i = list.FindIndex(e => e.Id == id);
        if (i >= 0)
            list[i] = new ErrorCounter(id, list[i].Count + count, when > list[i].LastTime ? when : list[i].LastTime);
        else
            list.Add(new ErrorCounter(id, count, when));
        list.Sort((a, b) => ((ushort)a.Id).CompareTo((ushort)b.Id));
        return this with { ErrorCounters = list };
    }

    public Superblock WithFlags(SuperblockFlags set, SuperblockFlags clear = SuperblockFlags.None) =>
        this with { Flags = (Flags | set) & ~clear };

    // ---- Printing ------------------------------------------------------------------------

    /// <summary>Multi-line description for show-super and test failures.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        void Line(string name, string value) => sb.Append(CultureInfo.InvariantCulture, $"{name,-24}{value}\n");
        Line("uuid:", SuperblockText.Uuid(Uuid));
        Line("user uuid:", UserUuid is { } u ? SuperblockText.Uuid(u) : "(same as uuid)");
        Line("label:", Label.Length == 0 ? "(none)" : Label);
        Line("version:", $"{Version} (min {VersionMin})");
        Line("seq:", Seq.ToString(CultureInfo.InvariantCulture));
        Line("write time:", SuperblockText.Time(WriteTime));
        Line("flags:", Flags == SuperblockFlags.None ? "none" : Flags.ToString());
        Line("incompat features:", SuperblockFeatures.Describe(IncompatFeatures, incompat: true));
        Line("compat features:", SuperblockFeatures.Describe(CompatFeatures, incompat: false));
        Line("superblock checksum:", SuperblockChecksumType.ToText());
        Line("metadata checksum:", MetadataChecksumType.ToText());
        Line("data checksum:", DataChecksumType.ToText());
        Line("device size:", SuperblockText.Size(DeviceSize));
        Line("block size:", SuperblockText.Size(BlockSize));
        Line("btree node size:", SuperblockText.Size(NodeSize));
        Line("bucket size:", SuperblockText.Size(BucketSize));
        Line("node magic:", $"{NodeMagic:x16}");
        Line("device index:", DeviceIndex.ToString(CultureInfo.InvariantCulture));
        Line("members:", Members.Count.ToString(CultureInfo.InvariantCulture));
        for (var i = 0; i < Members.Count; i++)
            Line($"  member {i}:", Members[i].ToText());
        Line("journal:", JournalBuckets.Count == 0 ? "none" : string.Join(", ", JournalBuckets.Select(r => r.ToText())));
        Line("journal blacklist:", JournalBlacklist.Count == 0 ? "none" : string.Join(", ", JournalBlacklist.Select(r => r.ToText())));
        Line("superblock copies:", "at bytes " + string.Join(", ", CopyOffsets.Select(o => o.ToString(CultureInfo.InvariantCulture))));
        // A superblock never mounted holds its format time in the unmount field.
        var times = CleanInfo.LastMount != DateTimeOffset.UnixEpoch
            ? $"last mount {SuperblockText.Time(CleanInfo.LastMount)}, last unmount {SuperblockText.Time(CleanInfo.LastUnmount)}"
            : CleanInfo.LastUnmount == DateTimeOffset.UnixEpoch ? "last mount never" : $"last mount never (formatted {SuperblockText.Time(CleanInfo.LastUnmount)})";
        Line("clean:", $"{(IsClean ? "yes" : "no")}; {times}, checkpoint journal seq {CleanInfo.JournalSeq}");
        Line("btree roots:", Roots.Count == 0 ? "none" : Roots.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var r in Roots)
            Line("  " + r.Btree.ToText() + ":", $"level {r.Level} {r.Ptr.ToText()}");
        Line("error counters:", ErrorCounters.Count == 0 ? "none" : ErrorCounters.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var e in ErrorCounters)
            Line("", e.ToText());
        Line("previous version:", PreviousSectors.Count == 0 ? "none (written by format)" :
            $"{PreviousSectors.Count * FormatLimits.SectorSize} bytes, crc32c of each 512: " +
            string.Join(" ", PreviousSectors.Take(8).Select(c => c.ToString("x8", CultureInfo.InvariantCulture))) +
            (PreviousSectors.Count > 8 ? " …" : ""));
        foreach (var s in UnknownSections)
            Line("unknown section:", $"type {s.Type}, {s.Payload.Length} bytes (kept)");
        return sb.ToString();
    }

    public override string ToString() => $"superblock {SuperblockText.Uuid(Uuid)} seq {Seq}";
}

/// <summary>Formatting helpers shared by the superblock printers and messages.</summary>
internal static class SuperblockText
{
    /// <summary>Uuids are stored in RFC 4122 byte order (the order they print in).</summary>
    public static void WriteUuid(Guid uuid, Span<byte> destination) =>
        uuid.TryWriteBytes(destination, bigEndian: true, out _);

    public static Guid ReadUuid(ReadOnlySpan<byte> source) => new(source[..16], bigEndian: true);

    public static string Uuid(Guid uuid) => uuid.ToString("D", CultureInfo.InvariantCulture);

    public static string Time(DateTimeOffset t) =>
        t == DateTimeOffset.UnixEpoch ? "never" : t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Size(long bytes)
    {
        if (bytes >= 1L << 30 && bytes % (1L << 30) == 0)
            return $"{bytes >> 30} GiB";
        if (bytes >= 1L << 20 && bytes % (1L << 20) == 0)
            return $"{bytes >> 20} MiB";
        if (bytes >= 1L << 10 && bytes % (1L << 10) == 0)
            return $"{bytes >> 10} KiB";
        return $"{bytes} B";
    }

    /// <summary>Nanoseconds since the epoch, saturating outside the i64 range (years 1677..2262).</summary>
    public static long ToUnixNanos(DateTimeOffset t)
    {
        var ticks = (t - DateTimeOffset.UnixEpoch).Ticks;
        return ticks > long.MaxValue / 100 ? long.MaxValue : ticks < long.MinValue / 100 ? long.MinValue : ticks * 100;
    }

    public static DateTimeOffset FromUnixNanos(long nanos)
    {
        // Any i64 decodes; clamp to what DateTimeOffset holds so corrupt values never throw.
        var ticks = nanos / 100;
        var max = (DateTimeOffset.MaxValue - DateTimeOffset.UnixEpoch).Ticks;
        var min = (DateTimeOffset.MinValue - DateTimeOffset.UnixEpoch).Ticks;
        return DateTimeOffset.UnixEpoch.AddTicks(Math.Clamp(ticks, min, max));
    }
}
