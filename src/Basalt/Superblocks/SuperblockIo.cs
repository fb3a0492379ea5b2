// Reading, writing and formatting superblocks on a device.
//
// Copies: copy 0 at byte 4096 (bytes [0, 4096) stay zero), copy 1 right after it at 69632,
// copy 2 in the last 64 KiB-aligned 64 KiB of the device; each copy owns 64 KiB. The layout
// section of every copy lists all copy offsets, so a reader finds the end copy even when the
// device has since been truncated or grown.
//
// Read: decode the copies at the two fixed start offsets (and, only when neither is good, the
// end offset derived from the device size); take the layout of the newest good one and read
// every copy it lists. The good copy of that filesystem with the highest seq wins, the first in
// layout order (lowest offset) among equal seqs; every copy of its layout is reported with a
// status. Copies with the winner's seq must hold the winner's bytes apart from the per-copy
// offset field and the checksum: one that does not is reported Differs (fsck rewrites it from
// the winner), because nothing else would ever tell the two apart.
// A checksum-valid copy that needs a newer format or an unknown incompatible feature is refused
// outright rather than skipped for an older copy: falling back would silently ignore the newer
// filesystem state.
//
// Write: seq+1, then copy 0, flush, copy 1, flush, … in layout order, so a torn write damages
// at most one copy and every other copy holds either the old or the new superblock whole.
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

    public string ToText() =>
        $"using copy {UsedCopy} (seq {Superblock.Seq})\n" + string.Join("\n", Copies.Select(c => "  " + c.ToText()));
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
        var anchor = Newest(decoded, null);
        if (anchor is null)
        {
            var end = SuperblockGeometry.EndCopyOffset(device.Size);
            if (end >= StartAreaEnd)
                decoded[end] = ReadCopy(device, end);
            anchor = Newest(decoded, null);
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
            best = Newest(decoded, anchor!.Superblock!.Uuid);
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
        return new SuperblockReadResult(sb, used, reports);
    }

    /// <summary>
    /// The good copy with the highest seq, of filesystem <paramref name="uuid"/> when given. Among
    /// copies with equal seqs the one at the lowest offset wins, which is the first in layout order
    /// (layout offsets ascend): a fixed rule, so every reader picks the same copy.
    /// </summary>
    private static DecodedCopy? Newest(SortedDictionary<long, DecodedCopy> copies, Guid? uuid)
    {
        DecodedCopy? best = null;
        foreach (var (_, d) in copies)   // ascending offsets
        {
            if (d.Status == CopyStatus.Good && (uuid is null || d.Superblock!.Uuid == uuid) && (best is null || d.Seq > best.Seq))
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
            // The header first, then the rest only when the header says there is more and it has the magic.
            var head = (int)Math.Min(available, 4096);
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
    /// Writes <paramref name="sb"/> with seq+1 and the current time to every copy in layout order,
    /// flushing after each, and returns what was written.
    /// </summary>
    public static Superblock Write(IBlockDevice device, Superblock sb) => Write(device, sb, DateTimeOffset.UtcNow);

    public static Superblock Write(IBlockDevice device, Superblock sb, DateTimeOffset writeTime)
    {
        var next = sb with { Seq = sb.Seq + 1, WriteTime = writeTime };
        var encoded = EncodeChecked(device, next);
        foreach (var (offset, bytes) in encoded)
        {
            device.Write(offset, bytes);
            device.Flush();
        }
        return next;
    }

    /// <summary>Writes <paramref name="sb"/> unchanged (same seq) to one copy and flushes: fsck's repair of one copy.</summary>
    public static void WriteCopy(IBlockDevice device, Superblock sb, int copyIndex)
    {
        if (copyIndex < 0 || copyIndex >= sb.CopyOffsets.Count)
            throw new ArgumentOutOfRangeException(nameof(copyIndex), $"copy {copyIndex} (the superblock has {sb.CopyOffsets.Count})");
        var encoded = EncodeChecked(device, sb);
        device.Write(encoded[copyIndex].Offset, encoded[copyIndex].Bytes);
        device.Flush();
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
                },
            ],
            JournalBuckets = [g.Journal],
            CleanInfo = new CleanInfo(DateTimeOffset.UnixEpoch, now, 0),
            CopyOffsets = g.CopyOffsets,
        };

        // Zero [0, 4096) and every copy area; discard everything in between. Then write zeroes
        // over the journal: its buckets are allocated for real (not a sparse hole that a later
        // write could fail to fill), and no entry of an earlier filesystem survives in them.
        var zero = new byte[CopySize];
        device.Write(0, zero.AsSpan(0, (int)FirstCopyOffset));
        var at = FirstCopyOffset;
        foreach (var offset in g.CopyOffsets)
        {
            if (offset > at)
                device.Discard(at, offset - at);
            device.Write(offset, zero);
            at = offset + CopySize;
        }
        if (at < device.Size)
            device.Discard(at, device.Size - at);
        var chunk = new byte[1024 * 1024];
        var journalStart = checked((long)g.Journal.Start * g.BucketSize);
        var journalEnd = checked((long)g.Journal.End * g.BucketSize);
        for (var o = journalStart; o < journalEnd; o += chunk.Length)
            device.Write(o, chunk.AsSpan(0, (int)Math.Min(chunk.Length, journalEnd - o)));
        device.Flush();

        return Write(device, sb, now);
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
