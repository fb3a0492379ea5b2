// Reading, writing and formatting superblocks on a device.
//
// Copies: copy 0 at byte 4096 (bytes [0, 4096) stay zero), copy 1 right after it at 69632,
// copy 2 in the last 64 KiB-aligned 64 KiB of the device; each copy owns 64 KiB. The layout
// section of every copy lists all copy offsets, so a reader finds the end copy even when the
// device has since been truncated or grown.
//
// Read: decode the copies at the two fixed start offsets (and, only when neither is good, the
// end offset derived from the device size); take the layout of the newest good one and read
// every copy it lists. Of the listed good copies, the filesystem is the uuid most of them carry
// (on a tie, the one whose btree roots carry its node magic);
// of its copies the highest seq wins, and among equal seqs the content most copies hold (then the
// lowest offset), so one copy sealed over damaged content is outvoted; every copy of its layout is
// reported with a status. Copies with the winner's seq must hold the winner's bytes apart from the
// per-copy offset field and the checksum: one that does not is reported Differs (fsck rewrites it
// from the winner), because nothing else would ever tell the two apart.
// A checksum-valid copy that needs a newer format or an unknown incompatible feature is refused
// outright rather than skipped for an older copy: falling back would silently ignore the newer
// filesystem state.
//
// Write: seq+1, then copy 0, flush, copy 1, flush, … in layout order, so a torn write damages
// at most one copy and every other copy holds either the old or the new superblock whole. Each
// write records the sector checksums of the version it replaces (the previous_sectors section)
// and zeroes what that version held past the new one's end, so the copy a crash tore can be told
// from a damaged one: InterruptedWrite, run by Read whenever a copy is not good, recognises
// exactly the states a crash leaves, and FinishInterruptedWrite completes such a write in an
// order that a second crash again leaves only such states.
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using static Basalt.Superblocks.SuperblockFormat;

namespace Basalt.Superblocks;

/// <summary>What reading found at one copy.</summary>
public sealed record SuperblockCopyReport(int Index, long Offset, CopyStatus Status, ulong? Seq, string Detail)
{
    /// <summary>The fsck error id for this copy's status, null when Good.</summary>
    public FsckErrorId? FsckError => Status switch
    {
        CopyStatus.Unreadable => FsckErrorId.SbCopyUnreadable,
        CopyStatus.BadMagic => FsckErrorId.SbCopyBadMagic,
        CopyStatus.BadChecksum => FsckErrorId.SbCopyBadChecksum,
        CopyStatus.Invalid or CopyStatus.Unsupported => FsckErrorId.SbCopyInvalid,
        CopyStatus.Stale => FsckErrorId.SbCopyStale,
        CopyStatus.Differs => FsckErrorId.SbCopiesDiffer,
        _ => null,
    };

    public string ToText() =>
        $"copy {Index} at byte {Offset}: {Status.ToText()}" +
        (Seq is { } s ? $" (seq {s})" : "") + (Status == CopyStatus.Good ? "" : $": {Detail}");
}

/// <summary>The superblock read from a device, which copy it came from, and what each copy held.</summary>
public sealed record SuperblockReadResult(Superblock Superblock, int UsedCopy, IReadOnlyList<SuperblockCopyReport> Copies)
{
    public bool AllCopiesGood => Copies.All(c => c.Status == CopyStatus.Good);

    /// <summary>The winning copy's bytes <c>[0, total_bytes)</c> as read.</summary>
    public ReadOnlyMemory<byte> Encoded { get; init; }

    /// <summary>
    /// The sector checksums of the winning copy (<see cref="SuperblockCodec.SectorChecksums(ReadOnlySpan{byte})"/>):
    /// what the next write records as the version it replaces.
    /// </summary>
    public IReadOnlyList<uint> SectorChecksums => SuperblockCodec.SectorChecksums(Encoded.Span);

    /// <summary>The trace of a superblock write cut short by a crash, when that is exactly what the copies show.</summary>
    public InterruptedWrite? InterruptedWrite { get; init; }

    public string ToText() =>
        $"using copy {UsedCopy} (seq {Superblock.Seq})\n" + string.Join("\n", Copies.Select(c => "  " + c.ToText())) +
        (InterruptedWrite is { } trace ? $"\n  {trace.ToText()}" : "");
}

public static class SuperblockIo
{
    /// <summary>Byte offsets format places copies at on a device of <paramref name="deviceSize"/> bytes.</summary>
    public static IReadOnlyList<long> CopyOffsets(long deviceSize) => SuperblockGeometry.CopyOffsets(deviceSize);

    // ---- Read ----------------------------------------------------------------------------

    /// <summary>
    /// Reads the newest good superblock. Throws NotBasalt when no copy has the magic,
    /// SuperblockCorrupt (with each copy's problem) when none is good, UnsupportedVersion or
    /// UnsupportedFeature when the newest valid copy cannot be used by this build.
    /// </summary>
    public static SuperblockReadResult Read(IBlockDevice device)
    {
        var decoded = new SortedDictionary<long, DecodedCopy>
        {
            [FirstCopyOffset] = ReadCopy(device, FirstCopyOffset),
            [SecondCopyOffset] = ReadCopy(device, SecondCopyOffset),
        };
        // The start copies are the anchor: the copy at the size-derived end offset is consulted only
        // when neither is good, because after a shrink, reformat and regrow an old filesystem's end
        // copy may still sit there.
        var anchor = Newest(decoded);
        if (anchor is null)
        {
            var end = SuperblockGeometry.EndCopyOffset(device.Size);
            if (end >= StartAreaEnd)
                decoded[end] = ReadCopy(device, end);
            anchor = Newest(decoded);
        }

        // Read every copy the anchor's layout lists, then those of the winner's layout if it differs.
        var best = anchor;
        for (var round = 0; round < 2 && best?.Superblock is { } current; round++)
        {
            foreach (var offset in current.CopyOffsets)
            {
                if (!decoded.ContainsKey(offset))
                    decoded[offset] = ReadCopy(device, offset);
            }
            best = Winner(device, decoded, current.CopyOffsets, anchor!.Superblock!.Uuid);
        }

        // A copy that verified but needs more than this build has, at or above the newest good seq, is refused.
        var unsupported = decoded.Values
            .Where(d => d.Status == CopyStatus.Unsupported)
            .OrderByDescending(d => d.Seq)
            .FirstOrDefault();
        if (unsupported is not null && (best is null || unsupported.Seq >= best.Seq))
        {
            throw new BasaltException(unsupported.Refusal ?? ErrorCode.UnsupportedVersion,
                $"{device.Name}: {unsupported.Detail}");
        }

        if (best?.Superblock is null)
        {
            var offsets = decoded.Keys.ToList();
            if (device.Size < FirstCopyOffset + HeaderSize)
            {
                throw new BasaltException(ErrorCode.NotBasalt,
                    $"{device.Name}: not a Basalt filesystem: the device is {TruncatedDevice.LengthOf(device)} bytes, too short to hold a superblock (the first copy is at byte {FirstCopyOffset})");
            }
            if (decoded.Values.All(d => d.Status is CopyStatus.BadMagic or CopyStatus.Unreadable))
            {
                var where = offsets.Count switch
                {
                    0 => "(the device is too small to hold one)",
                    1 => $"at byte {offsets[0]}",
                    _ => $"at byte {string.Join(", ", offsets.Take(offsets.Count - 1))} or {offsets[^1]}",
                };
                throw new BasaltException(ErrorCode.NotBasalt, $"{device.Name}: not a Basalt filesystem (no superblock magic {where})");
            }
            var lines = decoded.Select((kv, i) => $"  copy {i} at byte {kv.Key}: {kv.Value.Status.ToText()}: {kv.Value.Detail}");
            throw new BasaltException(ErrorCode.SuperblockCorrupt,
                $"{device.Name}: no good superblock copy\n{string.Join("\n", lines)}");
        }

        var sb = best.Superblock;
        // Report the copies the winning layout lists, in its order; other offsets probed are only noise
        // (e.g. the size-derived end offset of a device that has since changed size).
        var used = -1;
        for (var i = 0; i < sb.CopyOffsets.Count && used < 0; i++)
        {
            if (decoded.TryGetValue(sb.CopyOffsets[i], out var d) && ReferenceEquals(d, best))
                used = i;
        }
        if (used < 0)
            throw new InvalidOperationException("the newest copy is not listed in its own layout");
        var reports = new List<SuperblockCopyReport>();
        for (var i = 0; i < sb.CopyOffsets.Count; i++)
        {
            var offset = sb.CopyOffsets[i];
            if (!decoded.TryGetValue(offset, out var d))
                decoded[offset] = d = ReadCopy(device, offset);
            var status = d.Status;
            var detail = d.Detail;
            if (status == CopyStatus.Good && d.Superblock!.Uuid != sb.Uuid)
            {
                status = CopyStatus.Invalid;
                detail = $"belongs to another filesystem (uuid {SuperblockText.Uuid(d.Superblock.Uuid)})";
            }
            else if (status == CopyStatus.Good && d.Seq < sb.Seq)
            {
                status = CopyStatus.Stale;
                detail = $"seq {d.Seq} is older than the newest copy's seq {sb.Seq}";
            }
            else if (status == CopyStatus.Good && !ReferenceEquals(d, best) &&
                     SuperblockCodec.FirstContentDifference(d.Body.Span, best.Body.Span) is var at and >= 0)
            {
                status = CopyStatus.Differs;
                detail = $"same seq {sb.Seq} as copy {used} at byte {sb.CopyOffsets[used]} but different content " +
                         $"(first difference at byte {at} of the copy, {SuperblockFormat.DescribeOffset(at)})";
            }
            reports.Add(new SuperblockCopyReport(i, offset, status, d.Seq, detail));
        }
        var result = new SuperblockReadResult(sb, used, reports) { Encoded = best.Body };
        return result.AllCopiesGood ? result : result with { InterruptedWrite = InterruptedWrite.Recognise(device, result) };
    }

    /// <summary>
    /// The winning copy among the good ones <paramref name="layout"/> lists. The filesystem is the
    /// uuid most of them carry; on a tie, the uuid whose btree roots on the device carry its node
    /// magic (a copy whose uuid was damaged and resealed names roots that do not), then
    /// <paramref name="anchorUuid"/>, the newest start copy's;
    /// of its copies the highest seq wins (a write cut short leaves the copies before it newer);
    /// among copies with that seq, the content most of them hold, then the lowest offset. A single
    /// copy whose checksum holds over damaged content (a bit flipped before it was sealed, a write
    /// misdirected from another superblock) is outvoted rather than trusted for being first.
    /// </summary>
    private static DecodedCopy? Winner(IBlockDevice device, SortedDictionary<long, DecodedCopy> decoded, IReadOnlyList<long> layout, Guid anchorUuid)
    {
        var good = new List<DecodedCopy>();
        foreach (var offset in layout.Order())
        {
            if (decoded.TryGetValue(offset, out var d) && d.Status == CopyStatus.Good && !good.Contains(d))
                good.Add(d);
        }
        if (good.Count == 0)
            return null;
        var groups = good.GroupBy(d => d.Superblock!.Uuid).ToList();
        var topVotes = groups.Max(g => g.Count());
        var tied = groups.Where(g => g.Count() == topVotes).ToList();
        var uuid = tied.Count == 1
            ? tied[0].Key
            : tied.OrderByDescending(g => g.Max(d => RootsCarryingMagic(device, d.Superblock!)))
                .ThenByDescending(g => g.Key == anchorUuid)
                .First().Key;
        var ofFilesystem = good.Where(d => d.Superblock!.Uuid == uuid).ToList();
        var seq = ofFilesystem.Max(d => d.Seq);
        var newest = ofFilesystem.Where(d => d.Seq == seq).ToList();
        DecodedCopy? best = null;
        var bestVotes = 0;
        foreach (var candidate in newest)   // ascending offsets: the first of equal votes stays
        {
            var votes = newest.Count(o => SuperblockCodec.FirstContentDifference(o.Body.Span, candidate.Body.Span) < 0);
            if (votes > bestVotes)
                (best, bestVotes) = (candidate, votes);
        }
        return best;
    }

    /// <summary>How many of the btree roots <paramref name="sb"/> names start with the node magic of its uuid (unreadable: not counted).</summary>
    private static int RootsCarryingMagic(IBlockDevice device, Superblock sb)
    {
        var magic = Superblock.NodeMagicFor(sb.Uuid);
        Span<byte> sector = stackalloc byte[FormatLimits.SectorSize];
        var count = 0;
        foreach (var root in sb.Roots)
        {
            foreach (var ptr in root.Ptr.Ptrs)
            {
                if (ptr.OffsetSectors > (ulong)(device.Size / FormatLimits.SectorSize) - 1)
                    continue;
                try
                {
                    device.Read(ptr.OffsetBytes, sector);
                }
                catch (BasaltException e) when (e.Class == ErrorClass.Io)
                {
                    continue;
                }
                if (System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(sector[Basalt.Btree.Node.BtreeNodeFormat.NodeMagicOffset..]) == magic)
                {
                    count++;
                    break;
                }
            }
        }
        return count;
    }

    /// <summary>
    /// The good copy with the highest seq; among equal seqs the one at the lowest offset (the
    /// anchor whose layout is read).
    /// </summary>
    private static DecodedCopy? Newest(SortedDictionary<long, DecodedCopy> copies)
    {
        DecodedCopy? best = null;
        foreach (var (_, d) in copies)   // ascending offsets
        {
            if (d.Status == CopyStatus.Good && (best is null || d.Seq > best.Seq))
                best = d;
        }
        return best;
    }

    /// <summary>Reads and decodes the copy at <paramref name="offset"/>; I/O errors and short devices become Unreadable.</summary>
    public static DecodedCopy ReadCopy(IBlockDevice device, long offset)
    {
        if (offset < 0 || offset % FormatLimits.SectorSize != 0)
            return new(CopyStatus.Unreadable, null, null, $"offset {offset} is not sector aligned");
        var available = Math.Min(CopySize, device.Size - offset);
        available -= available % FormatLimits.SectorSize;
        if (available < HeaderSize)
        {
            return new(CopyStatus.Unreadable, null, null,
                $"past the end of the device: the device is {device.Size} bytes, this copy is at byte {offset}");
        }
        var buffer = new byte[available];
        try
        {
            // The header's sector first, then the rest only when the header has the magic and says
            // there is more: a copy is read no further than it extends (a device cut short after a
            // copy's end, or unreadable there, still yields the copy).
            var head = (int)Math.Min(available, FormatLimits.SectorSize);
            device.Read(offset, buffer.AsSpan(0, head));
            if (head < available && buffer.AsSpan(MagicOffset, 16).SequenceEqual(Magic))
            {
                var total = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(TotalBytesOffset));
                var want = (int)Math.Min(available, ((long)total + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize * FormatLimits.SectorSize);
                if (want > head)
                    device.Read(offset + head, buffer.AsSpan(head, want - head));
                return SuperblockCodec.Decode(buffer.AsSpan(0, Math.Max(want, head)), offset);
            }
            return SuperblockCodec.Decode(buffer.AsSpan(0, head), offset);
        }
        catch (BasaltException e) when (e.Class == ErrorClass.Io)
        {
            return new(CopyStatus.Unreadable, null, null, $"I/O error: {e.Message}");
        }
    }

    // ---- Write ---------------------------------------------------------------------------

    /// <summary>
    /// Writes <paramref name="sb"/> over the superblock the device holds now (read first, to record
    /// what the write replaces): see <see cref="Write(IBlockDevice, Superblock, IReadOnlyList{uint}, DateTimeOffset)"/>.
    /// </summary>
    public static Superblock Write(IBlockDevice device, Superblock sb) => Write(device, sb, DateTimeOffset.UtcNow);

    /// <inheritdoc cref="Write(IBlockDevice, Superblock)"/>
    public static Superblock Write(IBlockDevice device, Superblock sb, DateTimeOffset writeTime)
    {
        ArgumentNullException.ThrowIfNull(device);
        return Write(device, sb, SectorsOnDevice(device), writeTime);
    }

    /// <summary>
    /// Writes <paramref name="sb"/> with seq+1, <paramref name="writeTime"/> and
    /// <paramref name="replaces"/> (the sector checksums of the superblock on the device now, which
    /// this write replaces; empty at format) to every copy in layout order, flushing after each, and
    /// returns what was written. A crash can then tear only one copy, and the torn copy's old
    /// sectors are recognisable by those checksums (<see cref="InterruptedWrite"/>).
    /// </summary>
    public static Superblock Write(IBlockDevice device, Superblock sb, IReadOnlyList<uint> replaces, DateTimeOffset writeTime)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(sb);
        ArgumentNullException.ThrowIfNull(replaces);
        var next = sb with { Seq = sb.Seq + 1, WriteTime = writeTime, PreviousSectors = [.. replaces] };
        var encoded = EncodeChecked(device, next);
        // Each copy's write also zeroes the sectors the replaced version held past the new one's end,
        // so the copy area past a version's end is always zero (format zeroes it all, WriteCopy its
        // whole area): what a torn copy's old sectors past the replaced version's end must hold.
        var length = Math.Max(encoded[0].Bytes.Length, replaces.Count * FormatLimits.SectorSize);
        foreach (var (offset, bytes) in encoded)
        {
            device.Write(offset, ZeroExtended(bytes, length));
            device.Flush();
        }
        return next;
    }

    private static byte[] ZeroExtended(byte[] bytes, int length)
    {
        if (bytes.Length >= length)
            return bytes;
        var extended = new byte[length];
        bytes.CopyTo(extended, 0);
        return extended;
    }

    /// <summary>
    /// The sector checksums of the superblock on <paramref name="device"/> now; empty when it holds
    /// no good copy (nothing a write would replace).
    /// </summary>
    private static IReadOnlyList<uint> SectorsOnDevice(IBlockDevice device)
    {
        try
        {
            return Read(device).SectorChecksums;
        }
        catch (BasaltException e) when (e.Code is ErrorCode.NotBasalt or ErrorCode.SuperblockCorrupt)
        {
            return [];
        }
    }

    /// <summary>
    /// Writes <paramref name="sb"/> unchanged (same seq) to one copy, the rest of its 64 KiB area
    /// zeroed (whatever damage or a torn longer version left there), and flushes: fsck's repair of
    /// one copy.
    /// </summary>
    public static void WriteCopy(IBlockDevice device, Superblock sb, int copyIndex)
    {
        var (offset, bytes) = EncodeCopy(device, sb, copyIndex);
        device.Write(offset, bytes);
        device.Flush();
    }

    /// <summary>
    /// Finishes the superblock write whose trace <paramref name="read"/> shows
    /// (<see cref="SuperblockReadResult.InterruptedWrite"/>): rewrites every copy that is not good
    /// from the winner, as <see cref="WriteCopy"/> does. Returns the copies rewritten; 0 when the
    /// read shows no such trace.
    /// </summary>
    /// <remarks>
    /// A crash during this write must leave a trace the rules still recognise. Rewriting a copy
    /// that is torn after its first sector (rule (a)) or one seq older (rule (c)) head first does:
    /// every prefix of it is the winner's. But a first copy torn by the next version (rule (b)) is
    /// recognised by that version's first sector, so it is rewritten tail first: sectors 1.. of the
    /// area, flush, then sector 0 (one sector, never torn), flush. Until sector 0 is written the copy
    /// still starts with the next version's sector 0 and is followed by the winner's sectors.
    /// </remarks>
    public static int FinishInterruptedWrite(IBlockDevice device, SuperblockReadResult read)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(read);
        if (read.InterruptedWrite is not { } trace)
            return 0;
        var rewritten = 0;
        foreach (var copy in read.Copies.Where(c => c.Status != CopyStatus.Good))
        {
            var (offset, bytes) = EncodeCopy(device, read.Superblock, copy.Index);
            if (trace.Kind == InterruptedWriteKind.TornFirstCopy)
            {
                device.Write(offset + FormatLimits.SectorSize, bytes.AsSpan(FormatLimits.SectorSize));
                device.Flush();
                device.Write(offset, bytes.AsSpan(0, FormatLimits.SectorSize));
            }
            else
            {
                device.Write(offset, bytes);
            }
            device.Flush();
            rewritten++;
        }
        return rewritten;
    }

    /// <summary>Copy <paramref name="copyIndex"/> of <paramref name="sb"/> with its whole area: the encoding, then zeros.</summary>
    private static (long Offset, byte[] Bytes) EncodeCopy(IBlockDevice device, Superblock sb, int copyIndex)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(sb);
        if (copyIndex < 0 || copyIndex >= sb.CopyOffsets.Count)
            throw new ArgumentOutOfRangeException(nameof(copyIndex), $"copy {copyIndex} (the superblock has {sb.CopyOffsets.Count})");
        var (offset, bytes) = EncodeChecked(device, sb)[copyIndex];
        return (offset, ZeroExtended(bytes, CopySize));
    }

    /// <summary>Encodes every copy and proves each decodes as Good before anything is written.</summary>
    private static List<(long Offset, byte[] Bytes)> EncodeChecked(IBlockDevice device, Superblock sb)
    {
        if (device.IsReadOnly)
            throw new BasaltException(ErrorCode.ReadOnlyDevice, $"{device.Name}: cannot write the superblock: the device is read-only");
        var list = new List<(long, byte[])>();
        foreach (var offset in sb.CopyOffsets)
        {
            if (offset + CopySize > device.Size)
            {
                throw new BasaltException(ErrorCode.ShortDevice,
                    $"{device.Name}: superblock copy at byte {offset} lies past the end of the device ({device.Size} bytes)");
            }
            var bytes = SuperblockCodec.Encode(sb, offset);
            var check = SuperblockCodec.Decode(bytes, offset);
            if (check.Status != CopyStatus.Good)
            {
                throw new BasaltException(ErrorCode.InvariantViolated,
                    $"{device.Name}: refusing to write an invalid superblock: {check.Detail}");
            }
            list.Add((offset, bytes));
        }
        return list;
    }

    // ---- Format --------------------------------------------------------------------------

    /// <summary>
    /// Lays out a new filesystem on <paramref name="device"/>: computes the geometry, zeroes the
    /// superblock areas, discards the rest, writes every copy (seq 1) and flushes.
    /// </summary>
    public static Superblock Format(IBlockDevice device, FormatOptions options)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(options);
        if (device.IsReadOnly)
            throw new BasaltException(ErrorCode.ReadOnlyDevice, $"{device.Name}: cannot format: the device is read-only");
        var g = SuperblockGeometry.Compute(device.Name, device.Size, options);
        var uuid = options.Uuid ?? NewNonZeroGuid();
        if (uuid == Guid.Empty)
            throw new BasaltException(ErrorCode.InvalidArgument, $"{device.Name}: the filesystem uuid must not be zero");
        var deviceUuid = options.DeviceUuid ?? NewNonZeroGuid();
        if (deviceUuid == Guid.Empty)
            throw new BasaltException(ErrorCode.InvalidArgument, $"{device.Name}: the device uuid must not be zero");
        var now = options.Time ?? DateTimeOffset.UtcNow;

        var sb = new Superblock
        {
            Uuid = uuid,
            UserUuid = options.UserUuid is { } u && u != Guid.Empty && u != uuid ? u : null,
            Label = options.Label,
            Seq = 0,
            Flags = SuperblockFlags.Clean,
            MetadataChecksumType = options.MetadataChecksumType,
            DataChecksumType = options.DataChecksumType,
            BlockSize = g.BlockSize,
            NodeSize = g.NodeSize,
            DeviceSize = device.Size,
            Members =
            [
                new Member
                {
                    DeviceUuid = deviceUuid,
                    Nbuckets = g.Nbuckets,
                    BucketSize = g.BucketSize,
                    FirstBucket = g.FirstBucket,
                    NodeArea = g.NodeArea,
                    NodeRegionShift = Member.RegionShiftFor(g.Nbuckets),
                    NodeRegionMap = Member.NodeRegionBits(Member.RegionShiftFor(g.Nbuckets), g.NodeArea.Start, g.NodeArea.End),
                    Flags = options.Discard && !options.Preallocate ? MemberFlags.Discard : MemberFlags.None,
                },
            ],
            JournalBuckets = [g.Journal],
            CleanInfo = new CleanInfo(DateTimeOffset.UnixEpoch, now, 0),
            CopyOffsets = g.CopyOffsets,
        };

        // Zero [0, 4096) and every copy area; discard everything in between (or, preallocating an
        // image file, write zeroes there). Then write zeroes over the journal: its buckets are
        // allocated for real (not a sparse hole that a later write could fail to fill), and no entry
        // of an earlier filesystem survives in them.
        var fill = options.Preallocate && device is FileBlockDevice { IsBlockDevice: false };
        var zero = new byte[CopySize];
        device.Write(0, zero.AsSpan(0, (int)FirstCopyOffset));
        var at = FirstCopyOffset;
        foreach (var offset in g.CopyOffsets)
        {
            if (offset > at)
                ClearRange(device, at, offset - at, fill);
            device.Write(offset, zero);
            at = offset + CopySize;
        }
        if (at < device.Size)
            ClearRange(device, at, device.Size - at, fill);
        var journalStart = checked((long)g.Journal.Start * g.BucketSize);
        var journalEnd = checked((long)g.Journal.End * g.BucketSize);
        WriteZeroes(device, journalStart, journalEnd - journalStart);
        device.Flush();

        // Nothing is replaced: the copy areas were zeroed above.
        return Write(device, sb, [], now);
    }

    /// <summary>Discards a range format leaves unused, or writes zeroes over it when preallocating an image file.</summary>
    private static void ClearRange(IBlockDevice device, long offset, long length, bool fill)
    {
        if (fill)
            WriteZeroes(device, offset, length);
        else
            device.Discard(offset, length);
    }

    /// <summary>Writes zeroes over a range in 1 MiB writes, starting the write-back of every 64 MiB as it goes (no flush).</summary>
    private static void WriteZeroes(IBlockDevice device, long offset, long length)
    {
        const int Chunk = 1024 * 1024;
        const long WritebackEvery = 64L * Chunk;
        var chunk = new byte[Chunk];
        var end = offset + length;
        var unstarted = offset;
        for (var o = offset; o < end; o += Chunk)
        {
            device.Write(o, chunk.AsSpan(0, (int)Math.Min(Chunk, end - o)));
            if (o + Chunk - unstarted >= WritebackEvery)
            {
                device.StartWriteback(unstarted, Math.Min(end, o + Chunk) - unstarted);
                unstarted = Math.Min(end, o + Chunk);
            }
        }
    }

    private static Guid NewNonZeroGuid()
    {
        Guid g;
        do
        {
            g = Guid.NewGuid();
        }
        while (g == Guid.Empty);
        return g;
    }
}
