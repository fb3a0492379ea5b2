// Encodes a Superblock into one copy's bytes and decodes and validates a copy's bytes.
// Decoding never throws on bad input: every length read from disk is bounded before it is
// used, and the outcome is a CopyStatus with a reason. Checks run in this order: magic,
// checksum type, total size, checksum (nothing else is parsed before it matches), versions,
// incompatible features, then the header fields and each section (docs/format.md
// "Validation").
using System.Buffers.Binary;
using System.Text;
using Basalt.Diagnostics;
using Basalt.Format;
using static Basalt.Superblocks.SuperblockFormat;

namespace Basalt.Superblocks;

/// <summary>What reading one copy found.</summary>
public enum CopyStatus
{
    /// <summary>Valid and the newest (highest seq) copy.</summary>
    Good,
    /// <summary>An I/O error, or the copy lies (partly) past the end of the device.</summary>
    Unreadable,
    /// <summary>No Basalt superblock magic at the copy's offset.</summary>
    BadMagic,
    /// <summary>The magic is there but the checksum does not match.</summary>
    BadChecksum,
    /// <summary>The checksum matches but a field fails validation.</summary>
    Invalid,
    /// <summary>Valid, but written by a format version or with features this build cannot use.</summary>
    Unsupported,
    /// <summary>Valid but older than the newest good copy.</summary>
    Stale,
    /// <summary>Valid with the winner's seq, but its content differs from the winner's (beyond offset and checksum).</summary>
    Differs,
}

public static class CopyStatusText
{
    public static string ToText(this CopyStatus status) => status switch
    {
        CopyStatus.Good => "good",
        CopyStatus.Unreadable => "unreadable",
        CopyStatus.BadMagic => "bad magic",
        CopyStatus.BadChecksum => "bad checksum",
        CopyStatus.Invalid => "invalid",
        CopyStatus.Unsupported => "unsupported",
        CopyStatus.Stale => "stale",
        CopyStatus.Differs => "differs",
        _ => $"status {(int)status}",
    };
}

/// <summary>Result of decoding one copy: the status, the superblock when the checksum matched, and why.</summary>
/// <remarks>
/// <see cref="Refusal"/> is the error an Unsupported copy is refused with. <see cref="Body"/> holds a
/// Good copy's encoded bytes <c>[0, total_bytes)</c>, so copies with the same seq can be compared byte
/// for byte (<see cref="SuperblockCodec.FirstContentDifference"/>); it is empty otherwise.
/// </remarks>
public sealed record DecodedCopy(CopyStatus Status, Superblock? Superblock, ulong? Seq, string Detail, ErrorCode? Refusal = null)
{
    public ReadOnlyMemory<byte> Body { get; init; }
}

public static class SuperblockCodec
{
    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // ---- Encode --------------------------------------------------------------------------

    /// <summary>Size in bytes of <paramref name="sb"/> encoded (a multiple of 8).</summary>
    public static int EncodedSize(Superblock sb)
    {
        long size = HeaderSize;
        size += SectionHeaderSize + Pad8(PreviousSectorsHeaderSize + (PreviousSectorEntrySize * sb.PreviousSectors.Count));
        size += SectionHeaderSize + MembersHeaderSize + (MemberEntrySize * (long)sb.Members.Count);
        size += SectionHeaderSize + JournalHeaderSize + (JournalRangeSize * (long)sb.JournalBuckets.Count);
        size += SectionHeaderSize + RootsHeaderSize;
        foreach (var r in sb.Roots)
            size += RootEntryHeaderSize + Pad8(r.Ptr.EncodedSize);
        size += SectionHeaderSize + CleanPayloadSize;
        if (sb.JournalBlacklist.Count > 0)
            size += SectionHeaderSize + BlacklistHeaderSize + (BlacklistRangeSize * (long)sb.JournalBlacklist.Count);
        size += SectionHeaderSize + ErrorsHeaderSize + (ErrorEntrySize * (long)sb.ErrorCounters.Count);
        size += SectionHeaderSize + LayoutHeaderSize + (8L * sb.CopyOffsets.Count);
        foreach (var s in sb.UnknownSections)
            size += SectionHeaderSize + Pad8(s.Payload.Length);
        return size > int.MaxValue ? int.MaxValue : (int)size;
    }

    /// <summary>
    /// Encodes the copy written at <paramref name="copyOffset"/>, padded with zeroes to a whole
    /// number of sectors. Throws when the superblock does not fit in <see cref="SuperblockFormat.CopySize"/>.
    /// </summary>
    public static byte[] Encode(Superblock sb, long copyOffset)
    {
        var total = EncodedSize(sb);
        if (total > CopySize)
            throw new ArgumentException($"superblock of {total} bytes does not fit the {CopySize}-byte copy area", nameof(sb));
        var buffer = new byte[(total + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize * FormatLimits.SectorSize];
        var b = buffer.AsSpan();

        Magic.CopyTo(b[MagicOffset..]);
        b[ChecksumTypeOffset] = (byte)sb.SuperblockChecksumType;
        b[MetadataChecksumOffset] = (byte)sb.MetadataChecksumType;
        b[DataChecksumOffset] = (byte)sb.DataChecksumType;
        BinaryPrimitives.WriteUInt16LittleEndian(b[VersionOffset..], sb.Version);
        BinaryPrimitives.WriteUInt16LittleEndian(b[VersionMinOffset..], sb.VersionMin);
        b[DeviceIndexOffset] = sb.DeviceIndex;
        BinaryPrimitives.WriteUInt32LittleEndian(b[TotalBytesOffset..], (uint)total);
        SuperblockText.WriteUuid(sb.Uuid, b[UuidOffset..]);
        if (sb.UserUuid is { } user)
            SuperblockText.WriteUuid(user, b[UserUuidOffset..]);
        var labelBytes = Encoding.UTF8.GetBytes(sb.Label);
        if (labelBytes.Length > LabelSize)
            throw new ArgumentException($"label \"{sb.Label}\" is {labelBytes.Length} bytes of UTF-8; at most {LabelSize}", nameof(sb));
        labelBytes.CopyTo(b[LabelOffset..]);
        BinaryPrimitives.WriteUInt64LittleEndian(b[SeqOffset..], sb.Seq);
        BinaryPrimitives.WriteUInt64LittleEndian(b[CopyOffsetOffset..], (ulong)copyOffset);
        BinaryPrimitives.WriteInt64LittleEndian(b[WriteTimeOffset..], SuperblockText.ToUnixNanos(sb.WriteTime));
        BinaryPrimitives.WriteUInt64LittleEndian(b[FlagsOffset..], (ulong)sb.Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(b[IncompatOffset..], sb.IncompatFeatures);
        BinaryPrimitives.WriteUInt64LittleEndian(b[CompatOffset..], sb.CompatFeatures);
        BinaryPrimitives.WriteUInt32LittleEndian(b[BlockSizeOffset..], (uint)sb.BlockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b[NodeSizeOffset..], (uint)sb.NodeSize);
        BinaryPrimitives.WriteUInt64LittleEndian(b[DeviceSizeOffset..], (ulong)sb.DeviceSize);

        var at = HeaderSize;

        // Previous sectors: first, so that sector 0 of every copy holds its count and first entries
        // (InterruptedWrite reads them from a copy torn after its first sector).
        var s = BeginSection(b, ref at, SectionType.PreviousSectors, PreviousSectorsHeaderSize + (PreviousSectorEntrySize * sb.PreviousSectors.Count));
        BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)sb.PreviousSectors.Count);
        for (var i = 0; i < sb.PreviousSectors.Count; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(s[(PreviousSectorsHeaderSize + (i * PreviousSectorEntrySize))..], sb.PreviousSectors[i]);

        // Members
        s = BeginSection(b, ref at, SectionType.Members, MembersHeaderSize + (MemberEntrySize * sb.Members.Count));
        BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)sb.Members.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], MemberEntrySize);
        for (var i = 0; i < sb.Members.Count; i++)
        {
            var m = sb.Members[i];
            var e = s[(MembersHeaderSize + (i * MemberEntrySize))..];
            SuperblockText.WriteUuid(m.DeviceUuid, e[MemberUuidOffset..]);
            BinaryPrimitives.WriteUInt64LittleEndian(e[MemberNbucketsOffset..], m.Nbuckets);
            BinaryPrimitives.WriteUInt32LittleEndian(e[MemberBucketSizeOffset..], (uint)m.BucketSize);
            BinaryPrimitives.WriteUInt32LittleEndian(e[MemberFirstBucketOffset..], m.FirstBucket);
            BinaryPrimitives.WriteUInt64LittleEndian(e[MemberNodeAreaFirstOffset..], m.NodeArea.Start);
            BinaryPrimitives.WriteUInt64LittleEndian(e[MemberNodeAreaCountOffset..], m.NodeArea.Count);
            e[MemberStateOffset] = (byte)m.State;
            e[MemberFlagsOffset] = (byte)m.Flags;
            e[MemberNodeRegionShiftOffset] = m.NodeRegionShift;
            BinaryPrimitives.WriteUInt64LittleEndian(e[MemberNodeRegionMapOffset..], m.NodeRegionMap);
        }

        // Journal
        s = BeginSection(b, ref at, SectionType.Journal, JournalHeaderSize + (JournalRangeSize * sb.JournalBuckets.Count));
        BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)sb.JournalBuckets.Count);
        for (var i = 0; i < sb.JournalBuckets.Count; i++)
        {
            var e = s[(JournalHeaderSize + (i * JournalRangeSize))..];
            BinaryPrimitives.WriteUInt64LittleEndian(e, sb.JournalBuckets[i].Start);
            BinaryPrimitives.WriteUInt64LittleEndian(e[8..], sb.JournalBuckets[i].Count);
        }

        // Btree roots
        var rootsBytes = RootsHeaderSize;
        foreach (var r in sb.Roots)
            rootsBytes += RootEntryHeaderSize + Pad8(r.Ptr.EncodedSize);
        s = BeginSection(b, ref at, SectionType.BtreeRoots, rootsBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)sb.Roots.Count);
        var ro = RootsHeaderSize;
        foreach (var r in sb.Roots)
        {
            s[ro] = (byte)r.Btree;
            s[ro + 1] = r.Level;
            BinaryPrimitives.WriteUInt16LittleEndian(s[(ro + 2)..], (ushort)r.Ptr.EncodedSize);
            r.Ptr.Write(s[(ro + RootEntryHeaderSize)..]);
            ro += RootEntryHeaderSize + Pad8(r.Ptr.EncodedSize);
        }

        // Clean
        s = BeginSection(b, ref at, SectionType.Clean, CleanPayloadSize);
        BinaryPrimitives.WriteInt64LittleEndian(s, SuperblockText.ToUnixNanos(sb.CleanInfo.LastMount));
        BinaryPrimitives.WriteInt64LittleEndian(s[8..], SuperblockText.ToUnixNanos(sb.CleanInfo.LastUnmount));
        BinaryPrimitives.WriteUInt64LittleEndian(s[16..], sb.CleanInfo.JournalSeq);

        // Journal blacklist (only when it holds ranges)
        if (sb.JournalBlacklist.Count > 0)
        {
            s = BeginSection(b, ref at, SectionType.JournalBlacklist, BlacklistHeaderSize + (BlacklistRangeSize * sb.JournalBlacklist.Count));
            BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)sb.JournalBlacklist.Count);
            for (var i = 0; i < sb.JournalBlacklist.Count; i++)
            {
                var e = s[(BlacklistHeaderSize + (i * BlacklistRangeSize))..];
                BinaryPrimitives.WriteUInt64LittleEndian(e, sb.JournalBlacklist[i].First);
                BinaryPrimitives.WriteUInt64LittleEndian(e[8..], sb.JournalBlacklist[i].Last);
            }
        }

        // Error counters
        s = BeginSection(b, ref at, SectionType.ErrorCounters, ErrorsHeaderSize + (ErrorEntrySize * sb.ErrorCounters.Count));
        BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)sb.ErrorCounters.Count);
        for (var i = 0; i < sb.ErrorCounters.Count; i++)
        {
            var e = s[(ErrorsHeaderSize + (i * ErrorEntrySize))..];
            BinaryPrimitives.WriteUInt16LittleEndian(e, (ushort)sb.ErrorCounters[i].Id);
            BinaryPrimitives.WriteUInt64LittleEndian(e[8..], sb.ErrorCounters[i].Count);
            BinaryPrimitives.WriteInt64LittleEndian(e[16..], SuperblockText.ToUnixNanos(sb.ErrorCounters[i].LastTime));
        }

        // Layout
        s = BeginSection(b, ref at, SectionType.Layout, LayoutHeaderSize + (8 * sb.CopyOffsets.Count));
        BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)sb.CopyOffsets.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], CopySize);
        for (var i = 0; i < sb.CopyOffsets.Count; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(s[(LayoutHeaderSize + (8 * i))..], (ulong)sb.CopyOffsets[i]);

        foreach (var u in sb.UnknownSections)
        {
            s = BeginSection(b, ref at, (SectionType)u.Type, u.Payload.Length);
            u.Payload.CopyTo(s);
        }

        if (at != total)
            throw new InvalidOperationException($"superblock encoder wrote {at} bytes, sized {total}");

        var checksum = Checksums.Compute(sb.SuperblockChecksumType, b[ChecksummedFrom..total]);
        BinaryPrimitives.WriteUInt64LittleEndian(b[ChecksumOffset..], checksum);
        return buffer;
    }

    private static Span<byte> BeginSection(Span<byte> b, ref int at, SectionType type, int payloadBytes)
    {
        var bytes = SectionHeaderSize + Pad8(payloadBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(b[at..], (uint)bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(b[(at + 4)..], (uint)type);
        var payload = b.Slice(at + SectionHeaderSize, payloadBytes);
        at += bytes;
        return payload;
    }

    private static int Pad8(int n) => (n + 7) & ~7;

    // ---- Sector checksums ----------------------------------------------------------------------

    /// <summary>
    /// crc32c of each 512-byte sector of an encoded copy, zero-padded to whole sectors (the bytes
    /// the encoder writes): what <see cref="Superblock.PreviousSectors"/> records of the version a
    /// write replaces. Sector 0 is summed with its csum and offset fields read as zero, the only
    /// bytes in which the copies of one version differ. crc32c whatever the superblock's own
    /// checksum type: it only has to tell a sector's old bytes from anything else.
    /// </summary>
    public static uint[] SectorChecksums(ReadOnlySpan<byte> encoded)
    {
        var sectors = (encoded.Length + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize;
        var sums = new uint[sectors];
        Span<byte> sector = stackalloc byte[FormatLimits.SectorSize];
        for (var i = 0; i < sectors; i++)
        {
            var start = i * FormatLimits.SectorSize;
            var part = encoded[start..Math.Min(encoded.Length, start + FormatLimits.SectorSize)];
            sector.Clear();
            part.CopyTo(sector);
            sums[i] = SectorChecksum(sector, i);
        }
        return sums;
    }

    /// <summary>crc32c of one whole sector of a copy, the way <see cref="SectorChecksums(ReadOnlySpan{byte})"/> sums sector <paramref name="index"/>.</summary>
    public static uint SectorChecksum(ReadOnlySpan<byte> sector, int index)
    {
        if (sector.Length != FormatLimits.SectorSize)
            throw new ArgumentException($"a sector is {FormatLimits.SectorSize} bytes, not {sector.Length}", nameof(sector));
        if (index != 0)
            return Crc32C.Compute(sector);
        Span<byte> first = stackalloc byte[FormatLimits.SectorSize];
        sector.CopyTo(first);
        first.Slice(ChecksumOffset, 8).Clear();
        first.Slice(CopyOffsetOffset, 8).Clear();
        return Crc32C.Compute(first);
    }

    /// <summary>The sector checksums of <paramref name="sb"/> as the encoder writes it (any copy: they agree).</summary>
    public static uint[] SectorChecksums(Superblock sb)
    {
        ArgumentNullException.ThrowIfNull(sb);
        return SectorChecksums(Encode(sb, sb.CopyOffsets.Count > 0 ? sb.CopyOffsets[0] : FirstCopyOffset));
    }

    // ---- Decode --------------------------------------------------------------------------

    /// <summary>
    /// Decodes and validates the copy in <paramref name="copy"/> (the bytes read at
    /// <paramref name="readOffset"/>; at most <see cref="SuperblockFormat.CopySize"/> are looked at).
    /// Never throws for any input.
    /// </summary>
    public static DecodedCopy Decode(ReadOnlySpan<byte> copy, long readOffset)
    {
        if (copy.Length < HeaderSize)
            return new(CopyStatus.Unreadable, null, null, $"only {copy.Length} bytes available, the header needs {HeaderSize}");
        if (!copy.Slice(MagicOffset, 16).SequenceEqual(Magic))
            return new(CopyStatus.BadMagic, null, null, "no Basalt superblock magic");

        var csumType = copy[ChecksumTypeOffset];
        if (!Checksums.IsKnown(csumType))
            return new(CopyStatus.Invalid, null, null, $"unknown superblock checksum type {csumType}");
        if (csumType == (byte)ChecksumType.None)
            return new(CopyStatus.Invalid, null, null, "superblock checksum type is none");

        var total = BinaryPrimitives.ReadUInt32LittleEndian(copy[TotalBytesOffset..]);
        if (total < HeaderSize || total % 8 != 0 || total > CopySize)
            return new(CopyStatus.Invalid, null, null, $"total size {total} bytes (must be a multiple of 8 in [{HeaderSize}, {CopySize}])");
        if (total > copy.Length)
            return new(CopyStatus.Unreadable, null, null, $"total size {total} bytes runs past the {copy.Length} bytes readable at this copy");

        var body = copy[..(int)total];
        var stored = BinaryPrimitives.ReadUInt64LittleEndian(body[ChecksumOffset..]);
        var computed = Checksums.Compute((ChecksumType)csumType, body[ChecksummedFrom..]);
        if (stored != computed)
            return new(CopyStatus.BadChecksum, null, null, $"checksum {stored:x16} stored, {computed:x16} computed ({((ChecksumType)csumType).ToText()})");

        var seq = BinaryPrimitives.ReadUInt64LittleEndian(body[SeqOffset..]);
        var version = BinaryPrimitives.ReadUInt16LittleEndian(body[VersionOffset..]);
        var versionMin = BinaryPrimitives.ReadUInt16LittleEndian(body[VersionMinOffset..]);
        if (version < versionMin)
            return new(CopyStatus.Invalid, null, seq, $"version {version} is older than version_min {versionMin}");
        if (versionMin > FormatVersion.Current)
        {
            return new(CopyStatus.Unsupported, null, seq,
                $"version_min {versionMin} (version {version}) is newer than this build supports: versions {FormatVersion.Min}..{FormatVersion.Current}",
                ErrorCode.UnsupportedVersion);
        }
        if (versionMin < FormatVersion.Min)
        {
            return new(CopyStatus.Unsupported, null, seq,
                $"may hold format version {versionMin} structures; this build supports versions {FormatVersion.Min}..{FormatVersion.Current}",
                ErrorCode.UnsupportedVersion);
        }
        var incompat = BinaryPrimitives.ReadUInt64LittleEndian(body[IncompatOffset..]);
        var unknown = incompat & ~SuperblockFeatures.SupportedIncompat;
        if (unknown != 0)
        {
            return new(CopyStatus.Unsupported, null, seq,
                $"incompatible feature {SuperblockFeatures.Describe(unknown, incompat: true)} is not supported by this build",
                ErrorCode.UnsupportedFeature);
        }

        var problem = TryParse(body, readOffset, out var sb);
        if (problem is not null)
            return new(CopyStatus.Invalid, null, seq, problem);
        problem = Validate(sb!);
        if (problem is not null)
            return new(CopyStatus.Invalid, null, seq, problem);
        return new(CopyStatus.Good, sb, seq, "ok") { Body = body.ToArray() };
    }

    /// <summary>
    /// The first byte offset at which two encoded copies differ in content, or -1 when they hold the
    /// same superblock. The checksum and the per-copy <c>offset</c> field are not content: every copy
    /// of one superblock differs there and nowhere else.
    /// </summary>
    public static int FirstContentDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var length = Math.Min(a.Length, b.Length);
        var at = ChecksummedFrom;
        while (at < length)
        {
            if (at == CopyOffsetOffset)
            {
                at += 8;
                continue;
            }
            var end = at < CopyOffsetOffset ? Math.Min(CopyOffsetOffset, length) : length;
            var diff = a[at..end].CommonPrefixLength(b[at..end]);
            if (at + diff < end)
                return at + diff;
            at = end;
        }
        return a.Length == b.Length ? -1 : length;
    }

    private static string? TryParse(ReadOnlySpan<byte> b, long readOffset, out Superblock? result)
    {
        result = null;
        var copyOffset = BinaryPrimitives.ReadUInt64LittleEndian(b[CopyOffsetOffset..]);
        if (copyOffset != (ulong)readOffset)
            return $"copy records offset {copyOffset} but was read at {readOffset}";

        var uuid = SuperblockText.ReadUuid(b[UuidOffset..]);
        if (uuid == Guid.Empty)
            return "filesystem uuid is zero";
        var userUuid = SuperblockText.ReadUuid(b[UserUuidOffset..]);

        var labelField = b.Slice(LabelOffset, LabelSize);
        var labelEnd = labelField.IndexOf((byte)0);
        var labelBytes = labelEnd < 0 ? labelField : labelField[..labelEnd];
        if (labelEnd >= 0 && labelField[labelEnd..].ContainsAnyExcept((byte)0))
            return "label has bytes after its terminating NUL";
        string label;
        try
        {
            label = s_strictUtf8.GetString(labelBytes);
        }
        catch (DecoderFallbackException)
        {
            return "label is not valid UTF-8";
        }

        var metaCsum = b[MetadataChecksumOffset];
        if (!Checksums.IsKnown(metaCsum) || metaCsum == (byte)ChecksumType.None)
            return $"metadata checksum type {metaCsum} is not a usable checksum type";
        var dataCsum = b[DataChecksumOffset];
        if (!Checksums.IsKnown(dataCsum))
            return $"data checksum type {dataCsum} is not a known checksum type";

        var deviceSize = BinaryPrimitives.ReadUInt64LittleEndian(b[DeviceSizeOffset..]);
        if (deviceSize > long.MaxValue || deviceSize % FormatLimits.SectorSize != 0)
            return $"device size {deviceSize} is not a sector multiple that fits in 63 bits";

        Member[]? members = null;
        BucketRange[] journal = [];
        SeqRange[] blacklist = [];
        BtreeRoot[] roots = [];
        CleanInfo clean = CleanInfo.Empty;
        ErrorCounter[] errors = [];
        long[]? layout = null;
        uint[] previous = [];
        var unknown = new List<UnknownSection>();
        var seen = new HashSet<uint>();

        var at = HeaderSize;
        while (at < b.Length)
        {
            if (b.Length - at < SectionHeaderSize)
                return $"{b.Length - at} stray bytes at offset {at} where a section header should be";
            var bytes = BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);
            var type = BinaryPrimitives.ReadUInt32LittleEndian(b[(at + 4)..]);
            if (bytes < SectionHeaderSize || bytes % 8 != 0 || bytes > (uint)(b.Length - at))
                return $"section at offset {at} (type {type}) has length {bytes}; it must be a multiple of 8 within the superblock";
            var payload = b.Slice(at + SectionHeaderSize, (int)bytes - SectionHeaderSize);
            var isKnown = Enum.IsDefined((SectionType)type);
            if (isKnown && !seen.Add(type))
                return $"section {(SectionType)type} appears twice";
            string? p = (SectionType)type switch
            {
                SectionType.Members => ParseMembers(payload, out members),
                SectionType.Journal => ParseJournal(payload, out journal),
                SectionType.BtreeRoots => ParseRoots(payload, out roots),
                SectionType.Clean => ParseClean(payload, out clean),
                SectionType.ErrorCounters => ParseErrors(payload, out errors),
                SectionType.Layout => ParseLayout(payload, out layout),
                SectionType.JournalBlacklist => ParseBlacklist(payload, out blacklist),
                SectionType.PreviousSectors => ParsePreviousSectors(payload, out previous),
                _ => null,
            };
            if (p is not null)
                return $"{SectionName((SectionType)type)} section: {p}";
            if (!isKnown)
                unknown.Add(new UnknownSection(type, payload.ToArray()));
            at += (int)bytes;
        }
        if (members is null)
            return "no members section";
        if (layout is null)
            return "no layout section";
        if (Array.IndexOf(layout, readOffset) < 0)
            return $"the layout section does not list this copy's offset {readOffset}";

        var deviceIndex = b[DeviceIndexOffset];
        if (deviceIndex >= members.Length)
            return $"device index {deviceIndex} but only {members.Length} members";

        result = new Superblock
        {
            Uuid = uuid,
            UserUuid = userUuid == Guid.Empty ? null : userUuid,
            Label = label,
            Version = BinaryPrimitives.ReadUInt16LittleEndian(b[VersionOffset..]),
            VersionMin = BinaryPrimitives.ReadUInt16LittleEndian(b[VersionMinOffset..]),
            Seq = BinaryPrimitives.ReadUInt64LittleEndian(b[SeqOffset..]),
            WriteTime = SuperblockText.FromUnixNanos(BinaryPrimitives.ReadInt64LittleEndian(b[WriteTimeOffset..])),
            Flags = (SuperblockFlags)BinaryPrimitives.ReadUInt64LittleEndian(b[FlagsOffset..]),
            IncompatFeatures = BinaryPrimitives.ReadUInt64LittleEndian(b[IncompatOffset..]),
            CompatFeatures = BinaryPrimitives.ReadUInt64LittleEndian(b[CompatOffset..]),
            SuperblockChecksumType = (ChecksumType)b[ChecksumTypeOffset],
            MetadataChecksumType = (ChecksumType)metaCsum,
            DataChecksumType = dataCsum == 0 ? ChecksumType.Crc32C : (ChecksumType)dataCsum,
            BlockSize = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(b[BlockSizeOffset..]), int.MaxValue),
            NodeSize = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(b[NodeSizeOffset..]), int.MaxValue),
            DeviceSize = (long)deviceSize,
            DeviceIndex = deviceIndex,
            Members = members,
            JournalBuckets = journal,
            JournalBlacklist = blacklist,
            Roots = roots,
            CleanInfo = clean,
            ErrorCounters = errors,
            CopyOffsets = layout,
            UnknownSections = unknown,
            PreviousSectors = previous,
        };
        return null;
    }

    private static string SectionName(SectionType type) => type switch
    {
        SectionType.Members => "members",
        SectionType.Journal => "journal",
        SectionType.BtreeRoots => "btree_roots",
        SectionType.Clean => "clean",
        SectionType.ErrorCounters => "error_counters",
        SectionType.Layout => "layout",
        SectionType.JournalBlacklist => "journal_blacklist",
        SectionType.PreviousSectors => "previous_sectors",
        _ => $"type {(uint)type}",
    };

    private static string? ParseMembers(ReadOnlySpan<byte> p, out Member[]? members)
    {
        members = null;
        if (p.Length < MembersHeaderSize)
            return "shorter than its header";
        var count = BinaryPrimitives.ReadUInt32LittleEndian(p);
        var entryBytes = BinaryPrimitives.ReadUInt32LittleEndian(p[4..]);
        if (count == 0 || count > MaxMembers)
            return $"{count} members (1..{MaxMembers} allowed)";
        if (entryBytes < MemberEntrySize || entryBytes > 4096 || entryBytes % 8 != 0)
            return $"member entries of {entryBytes} bytes (a multiple of 8, {MemberEntrySize}..4096)";
        if ((long)count * entryBytes > p.Length - MembersHeaderSize)
            return $"{count} members of {entryBytes} bytes do not fit in {p.Length - MembersHeaderSize} bytes";
        var list = new Member[count];
        for (var i = 0; i < count; i++)
        {
            var e = p.Slice(MembersHeaderSize + (i * (int)entryBytes), (int)entryBytes);
            var bucketSize = BinaryPrimitives.ReadUInt32LittleEndian(e[MemberBucketSizeOffset..]);
            if (bucketSize > int.MaxValue)
                return $"member {i}: bucket size {bucketSize} is too large";
            var state = e[MemberStateOffset];
            if (!Enum.IsDefined((MemberState)state))
                return $"member {i}: unknown state {state}";
            var flags = e[MemberFlagsOffset];
            if ((flags & ~(byte)(MemberFlags.AllocInitialized | MemberFlags.Discard)) != 0)
                return $"member {i}: unknown flags 0x{flags:x2}";
            list[i] = new Member
            {
                DeviceUuid = SuperblockText.ReadUuid(e[MemberUuidOffset..]),
                Nbuckets = BinaryPrimitives.ReadUInt64LittleEndian(e[MemberNbucketsOffset..]),
                BucketSize = (int)bucketSize,
                FirstBucket = BinaryPrimitives.ReadUInt32LittleEndian(e[MemberFirstBucketOffset..]),
                NodeArea = new BucketRange(
                    BinaryPrimitives.ReadUInt64LittleEndian(e[MemberNodeAreaFirstOffset..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(e[MemberNodeAreaCountOffset..])),
                State = (MemberState)state,
                Flags = (MemberFlags)flags,
                NodeRegionShift = e[MemberNodeRegionShiftOffset],
                NodeRegionMap = BinaryPrimitives.ReadUInt64LittleEndian(e[MemberNodeRegionMapOffset..]),
            };
        }
        members = list;
        return null;
    }

    private static string? ParseJournal(ReadOnlySpan<byte> p, out BucketRange[] ranges)
    {
        ranges = [];
        if (p.Length < JournalHeaderSize)
            return "shorter than its header";
        var count = BinaryPrimitives.ReadUInt32LittleEndian(p);
        if (count > MaxJournalRanges)
            return $"{count} ranges (at most {MaxJournalRanges})";
        if ((long)count * JournalRangeSize > p.Length - JournalHeaderSize)
            return $"{count} ranges do not fit in {p.Length - JournalHeaderSize} bytes";
        var list = new BucketRange[count];
        for (var i = 0; i < count; i++)
        {
            var e = p[(JournalHeaderSize + (i * JournalRangeSize))..];
            list[i] = new BucketRange(BinaryPrimitives.ReadUInt64LittleEndian(e), BinaryPrimitives.ReadUInt64LittleEndian(e[8..]));
        }
        ranges = list;
        return null;
    }

    private static string? ParseBlacklist(ReadOnlySpan<byte> p, out SeqRange[] ranges)
    {
        ranges = [];
        if (p.Length < BlacklistHeaderSize)
            return "shorter than its header";
        var count = BinaryPrimitives.ReadUInt32LittleEndian(p);
        if (count > MaxBlacklistRanges)
            return $"{count} ranges (at most {MaxBlacklistRanges})";
        if ((long)count * BlacklistRangeSize > p.Length - BlacklistHeaderSize)
            return $"{count} ranges do not fit in {p.Length - BlacklistHeaderSize} bytes";
        var list = new SeqRange[count];
        for (var i = 0; i < count; i++)
        {
            var e = p[(BlacklistHeaderSize + (i * BlacklistRangeSize))..];
            list[i] = new SeqRange(BinaryPrimitives.ReadUInt64LittleEndian(e), BinaryPrimitives.ReadUInt64LittleEndian(e[8..]));
            if (list[i].First > list[i].Last || (i > 0 && list[i].First <= list[i - 1].Last))
                return $"range {i} ({list[i].First}..{list[i].Last}) is empty, unsorted or overlaps the one before";
        }
        ranges = list;
        return null;
    }

    private static string? ParsePreviousSectors(ReadOnlySpan<byte> p, out uint[] sums)
    {
        sums = [];
        if (p.Length < PreviousSectorsHeaderSize)
            return "shorter than its header";
        var count = BinaryPrimitives.ReadUInt32LittleEndian(p);
        if (count > MaxPreviousSectors)
            return $"{count} sector checksums (a copy has at most {MaxPreviousSectors} sectors)";
        if ((long)count * PreviousSectorEntrySize > p.Length - PreviousSectorsHeaderSize)
            return $"{count} sector checksums do not fit in {p.Length - PreviousSectorsHeaderSize} bytes";
        var list = new uint[count];
        for (var i = 0; i < count; i++)
            list[i] = BinaryPrimitives.ReadUInt32LittleEndian(p[(PreviousSectorsHeaderSize + (i * PreviousSectorEntrySize))..]);
        sums = list;
        return null;
    }

    private static string? ParseRoots(ReadOnlySpan<byte> p, out BtreeRoot[] roots)
    {
        roots = [];
        if (p.Length < RootsHeaderSize)
            return "shorter than its header";
        var count = BinaryPrimitives.ReadUInt32LittleEndian(p);
        if (count > BtreeIds.MaxId + 1)
            return $"{count} roots (at most {BtreeIds.MaxId + 1})";
        var list = new BtreeRoot[count];
        var at = RootsHeaderSize;
        for (var i = 0; i < count; i++)
        {
            if (p.Length - at < RootEntryHeaderSize)
                return $"root {i} runs past the end of the section";
            var btree = p[at];
            var level = p[at + 1];
            var valueBytes = BinaryPrimitives.ReadUInt16LittleEndian(p[(at + 2)..]);
            if (Pad8(valueBytes) > p.Length - at - RootEntryHeaderSize)
                return $"root {i}: value of {valueBytes} bytes runs past the end of the section";
            if (btree > BtreeIds.MaxId)
                return $"root {i}: btree id {btree} (at most {BtreeIds.MaxId})";
            if (i > 0 && btree <= (byte)list[i - 1].Btree)
                return $"root {i}: btree id {btree} is not after {(byte)list[i - 1].Btree} (roots are sorted, one per btree)";
            if (level > FormatLimits.MaxBtreeLevel)
                return $"root of {((BtreeId)btree).ToText()}: level {level} (at most {FormatLimits.MaxBtreeLevel})";
            if (!BtreePtrValue.TryRead(p.Slice(at + RootEntryHeaderSize, valueBytes), out var ptr, out var why))
                return $"root of {((BtreeId)btree).ToText()}: {why}";
            list[i] = new BtreeRoot((BtreeId)btree, level, ptr);
            at += RootEntryHeaderSize + Pad8(valueBytes);
        }
        roots = list;
        return null;
    }

    private static string? ParseClean(ReadOnlySpan<byte> p, out CleanInfo clean)
    {
        clean = CleanInfo.Empty;
        if (p.Length < CleanPayloadSize)
            return $"{p.Length} bytes, needs {CleanPayloadSize}";
        clean = new CleanInfo(
            SuperblockText.FromUnixNanos(BinaryPrimitives.ReadInt64LittleEndian(p)),
            SuperblockText.FromUnixNanos(BinaryPrimitives.ReadInt64LittleEndian(p[8..])),
            BinaryPrimitives.ReadUInt64LittleEndian(p[16..]));
        return null;
    }

    private static string? ParseErrors(ReadOnlySpan<byte> p, out ErrorCounter[] errors)
    {
        errors = [];
        if (p.Length < ErrorsHeaderSize)
            return "shorter than its header";
        var count = BinaryPrimitives.ReadUInt32LittleEndian(p);
        if (count > ushort.MaxValue)
            return $"{count} counters";
        if ((long)count * ErrorEntrySize > p.Length - ErrorsHeaderSize)
            return $"{count} counters do not fit in {p.Length - ErrorsHeaderSize} bytes";
        var list = new ErrorCounter[count];
        for (var i = 0; i < count; i++)
        {
            var e = p[(ErrorsHeaderSize + (i * ErrorEntrySize))..];
            var id = BinaryPrimitives.ReadUInt16LittleEndian(e);
            // An id this build does not know comes from a newer build: kept, printed by number.
            if (i > 0 && id <= (ushort)list[i - 1].Id)
                return $"counter {i}: error id {id} is not after {(ushort)list[i - 1].Id} (counters are sorted by id)";
            list[i] = new ErrorCounter((FsckErrorId)id, BinaryPrimitives.ReadUInt64LittleEndian(e[8..]),
                SuperblockText.FromUnixNanos(BinaryPrimitives.ReadInt64LittleEndian(e[16..])));
        }
        errors = list;
        return null;
    }

    private static string? ParseLayout(ReadOnlySpan<byte> p, out long[]? offsets)
    {
        offsets = null;
        if (p.Length < LayoutHeaderSize)
            return "shorter than its header";
        var count = BinaryPrimitives.ReadUInt32LittleEndian(p);
        var copySize = BinaryPrimitives.ReadUInt32LittleEndian(p[4..]);
        if (count < 2 || count > MaxCopies)
            return $"{count} copies (2..{MaxCopies} allowed)";
        if (copySize != CopySize)
            return $"copy size {copySize} (this version uses {CopySize})";
        if (count * 8L > p.Length - LayoutHeaderSize)
            return $"{count} copy offsets do not fit in {p.Length - LayoutHeaderSize} bytes";
        var list = new long[count];
        for (var i = 0; i < count; i++)
        {
            var o = BinaryPrimitives.ReadUInt64LittleEndian(p[(LayoutHeaderSize + (8 * i))..]);
            if (o > long.MaxValue - CopySize || o % FormatLimits.SectorSize != 0 || o < FirstCopyOffset)
                return $"copy {i} at offset {o} (sector aligned, at least {FirstCopyOffset})";
            if (i > 0 && (long)o < list[i - 1] + CopySize)
                return $"copy {i} at offset {o} overlaps copy {i - 1} at {list[i - 1]}";
            list[i] = (long)o;
        }
        offsets = list;
        return null;
    }

    // ---- Validation of a parsed superblock --------------------------------------------------

    /// <summary>Checks the rules of docs/format.md "Validation"; returns the first problem or null.</summary>
    public static string? Validate(Superblock sb)
    {
        if (sb.Uuid == Guid.Empty)
            return "filesystem uuid is zero";
        if (!IsPow2InRange(sb.BlockSize, SuperblockGeometry.MinBlockSize, SuperblockGeometry.MaxBlockSize))
            return $"block size {sb.BlockSize} is not a power of two in [{SuperblockGeometry.MinBlockSize}, {SuperblockGeometry.MaxBlockSize}]";
        if (!IsPow2InRange(sb.NodeSize, SuperblockGeometry.MinNodeSize, SuperblockGeometry.MaxNodeSize))
            return $"btree node size {sb.NodeSize} is not a power of two in [{SuperblockGeometry.MinNodeSize}, {SuperblockGeometry.MaxNodeSize}]";
        if (sb.NodeSize < sb.BlockSize)
            return $"btree node size {sb.NodeSize} is smaller than the block size {sb.BlockSize}";
        if (sb.DeviceIndex >= sb.Members.Count)
            return $"device index {sb.DeviceIndex} but only {sb.Members.Count} members";

        for (var i = 0; i < sb.Members.Count; i++)
        {
            var problem = ValidateMember(sb, sb.Members[i], i == sb.DeviceIndex);
            if (problem is not null)
                return $"member {i}: {problem}";
        }

        var me = sb.Member;
        if (sb.JournalBuckets.Count == 0)
            return "no journal buckets";
        for (var i = 0; i < sb.JournalBuckets.Count; i++)
        {
            var r = sb.JournalBuckets[i];
            if (r.Count == 0 || r.Start < me.FirstBucket || r.Start >= me.Nbuckets || r.Count > me.Nbuckets - r.Start)
                return $"journal range {i} ({r.Start}+{r.Count}) is empty or outside buckets {me.FirstBucket}..{me.Nbuckets - 1}";
            if (i > 0 && r.Start < sb.JournalBuckets[i - 1].End)
                return $"journal range {i} ({r.Start}+{r.Count}) overlaps or precedes range {i - 1}";
            if (r.Overlaps(me.NodeArea))
                return $"journal range {i} ({r.Start}+{r.Count}) overlaps the node area ({me.NodeArea.ToText()})";
        }

        // Layout: every copy inside the device, none overlapping allocatable buckets, and the last
        // copy where the device size puts it (a damaged size no longer matches the layout).
        var endCopy = SuperblockGeometry.EndCopyOffset(sb.DeviceSize);
        if (endCopy >= StartAreaEnd && !sb.CopyOffsets.Contains(endCopy))
            return $"device size {sb.DeviceSize} puts the last superblock copy at byte {endCopy}, which the layout does not list";
        foreach (var o in sb.CopyOffsets)
        {
            if (o + CopySize > sb.DeviceSize)
                return $"superblock copy at {o} runs past the device size {sb.DeviceSize}";
            var firstByte = (long)me.FirstBucket * me.BucketSize;
            var endByte = (long)me.Nbuckets * me.BucketSize;
            if (o < endByte && o + CopySize > firstByte)
                return $"superblock copy at {o} overlaps allocatable buckets {me.FirstBucket}..{me.Nbuckets - 1}";
        }

        foreach (var r in sb.Roots)
        {
            if (r.Ptr.SectorsWritten == 0 || r.Ptr.SectorsWritten > sb.NodeSize / FormatLimits.SectorSize)
                return $"root of {r.Btree.ToText()}: sectors_written {r.Ptr.SectorsWritten} (1..{sb.NodeSize / FormatLimits.SectorSize})";
            foreach (var ptr in r.Ptr.Ptrs)
            {
                if (ptr.Device >= sb.Members.Count)
                    return $"root of {r.Btree.ToText()}: device {ptr.Device} is not a member";
                var m = sb.Members[ptr.Device];
                var deviceBytes = (ulong)m.Nbuckets * (ulong)m.BucketSize;
                if (ptr.OffsetSectors > deviceBytes / FormatLimits.SectorSize || (ptr.OffsetSectors * FormatLimits.SectorSize) + (ulong)sb.NodeSize > deviceBytes)
                    return $"root of {r.Btree.ToText()}: node at byte {(UInt128)ptr.OffsetSectors * FormatLimits.SectorSize} is outside device {ptr.Device}";
            }
        }

        if (Encoding.UTF8.GetByteCount(sb.Label) > LabelSize)
            return $"label is longer than {LabelSize} bytes";
        if (sb.CopyOffsets.Count < 2)
            return "fewer than two superblock copies";
        return null;
    }

    private static string? ValidateMember(Superblock sb, Member m, bool isThisDevice)
    {
        if (m.DeviceUuid == Guid.Empty)
            return "device uuid is zero";
        if (!IsPow2InRange(m.BucketSize, SuperblockGeometry.MinBucketSize, SuperblockGeometry.MaxBucketSize))
            return $"bucket size {m.BucketSize} is not a power of two in [{SuperblockGeometry.MinBucketSize}, {SuperblockGeometry.MaxBucketSize}]";
        if (m.BucketSize < sb.NodeSize)
            return $"bucket size {m.BucketSize} is smaller than the btree node size {sb.NodeSize}";
        if (m.Nbuckets > (ulong)(long.MaxValue / m.BucketSize))
            return $"{m.Nbuckets} buckets is too many";
        if (m.FirstBucket >= m.Nbuckets || m.Nbuckets - m.FirstBucket < SuperblockGeometry.MinUsableBuckets)
            return $"buckets {m.FirstBucket}..{m.Nbuckets} leave fewer than {SuperblockGeometry.MinUsableBuckets} usable";
        if (isThisDevice)
        {
            if ((long)m.Nbuckets * m.BucketSize > sb.DeviceSize)
                return $"{m.Nbuckets} buckets of {m.BucketSize} bytes exceed the device size {sb.DeviceSize}";
            if ((long)m.FirstBucket * m.BucketSize < StartAreaEnd)
                return $"first bucket {m.FirstBucket} overlaps the superblock area [0, {StartAreaEnd})";
        }
        if (m.NodeArea.Count == 0 || m.NodeArea.Start < m.FirstBucket || m.NodeArea.Start >= m.Nbuckets ||
            m.NodeArea.Count > m.Nbuckets - m.NodeArea.Start)
            return $"node area {m.NodeArea.Start}+{m.NodeArea.Count} is empty or outside buckets {m.FirstBucket}..{m.Nbuckets - 1}";
        if (m.NodeRegionShift >= 64 || ((m.Nbuckets - 1) >> m.NodeRegionShift) >= Member.NodeRegions)
            return $"node-region shift {m.NodeRegionShift} does not cover {m.Nbuckets} buckets in {Member.NodeRegions} regions";
        var areaBits = m.NodeRegionBits(m.NodeArea.Start, m.NodeArea.End);
        if ((m.NodeRegionMap & areaBits) != areaBits)
            return $"node-region map 0x{m.NodeRegionMap:x16} does not include the node area {m.NodeArea.ToText()}";
        if ((m.NodeRegionMap & ~m.NodeRegionBits(0, m.Nbuckets)) != 0)
            return $"node-region map 0x{m.NodeRegionMap:x16} names regions past bucket {m.Nbuckets - 1}";
        return null;
    }

    private static bool IsPow2InRange(long value, long min, long max) =>
        value >= min && value <= max && (value & (value - 1)) == 0;
}
