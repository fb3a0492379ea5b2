// Recognising, with certainty, the trace a crash leaves in the middle of a superblock write.
//
// SuperblockIo.Write writes the copies one at a time in layout order (copy 0, 1, 2) with a flush
// after each; each copy's write covers the new version's sectors and, zeroed, any further sectors
// the version it replaces held, so past a version's end a copy area is always zero. Every version
// records in its previous_sectors section the crc32c of each 512-byte sector of the version it
// replaces. A crash while copy f is being written to version S therefore leaves: the copies
// before f at S, copy f torn (its first t >= 1 sectors from S, the rest still what it held before)
// or untouched, and the copies after f at S-1. These are exactly the states recognised
// (docs/format.md, "Interrupted writes"):
//
//   (a) torn copy f >= 1: copies [0, f) good at S, copy f with a bad checksum, every later copy
//       good at S-1 and exactly the version S replaced (its sector checksums are the winner's
//       previous_sectors entries). There is t >= 1 such that sectors [0, t) of copy f are exactly the bytes the
//       write would have put there (the winner's encoding at copy f's offset), and every sector
//       k >= t that the write covered still holds what it held before: below the old version's
//       length (the winner's previous_sectors count) its crc32c is the one the winner recorded for
//       sector k; past it, zeros. A winner that replaced nothing (written by format) admits no
//       torn copy.
//   (b) torn first copy: copy 0 with a bad checksum, every other copy good at S. The write was of
//       S+1, whose bytes exist nowhere whole; but its first sector does: it carries the magic, the
//       uuid, seq S+1 and, first after the header, S+1's previous_sectors section, which must name
//       S (count = the winner's sector count n, and each entry inside sector 0 equal to the
//       winner's sector checksum). Sectors [t, n) of copy 0 must equal the winner's.
//   (c) stale tail: copies [0, f) good at S (f >= 1), every later copy good at S-1 and exactly
//       the version S replaced, as in (a) (the crash came before copy f's write reached the media).
//
// Anything else (a flipped bit, a zeroed or overwritten sector, a copy of another age) is damage
// and stays a finding. What no rule can see is damage that turns a copy into exactly the bytes a
// crash could have left (e.g. flipping the one bit in which a sector of S differs from the same
// sector of S-1): no reader could tell the two apart. A bit flip that makes a whole copy 0 claim
// seq S+1 is not such a case: its previous_sectors section still names S-1. Damage inside a copy
// a crash already tore is found under rule (a), which knows every byte the write covered; under
// rule (b) only the fields named above are known, the rest of S+1 existing nowhere else.
//
// Finishing the write (SuperblockIo.FinishInterruptedWrite) keeps every state it passes through
// recognised, so a second crash during it is again a trace and not a finding.
using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using static Basalt.Superblocks.SuperblockFormat;

namespace Basalt.Superblocks;

/// <summary>How a superblock write cut short by a crash left the copies.</summary>
public enum InterruptedWriteKind
{
    /// <summary>Rule (c): the copies from <see cref="InterruptedWrite.Copy"/> on still hold the previous seq.</summary>
    StaleCopies,
    /// <summary>Rule (a): copy <see cref="InterruptedWrite.Copy"/> (not the first) was torn; later copies hold the previous seq.</summary>
    TornCopy,
    /// <summary>Rule (b): copy 0 was torn by the write of the seq after the winner's.</summary>
    TornFirstCopy,
}

/// <summary>
/// The trace of a superblock write of seq <paramref name="Seq"/> interrupted at copy
/// <paramref name="Copy"/>. For torn copies, <paramref name="NewSectors"/> is how many leading
/// sectors certainly hold the new version.
/// </summary>
public sealed record InterruptedWrite(InterruptedWriteKind Kind, int Copy, ulong Seq, int NewSectors)
{
    public string ToText() => Kind switch
    {
        InterruptedWriteKind.StaleCopies =>
            $"superblock write of seq {Seq} interrupted by a crash before copy {Copy}: the copies from {Copy} on still hold seq {Seq - 1}",
        InterruptedWriteKind.TornCopy =>
            $"superblock write of seq {Seq} interrupted by a crash during copy {Copy}: its first {NewBytes} bytes hold seq {Seq}, " +
            $"the rest and every later copy seq {Seq - 1}",
        _ =>
            $"superblock write of seq {Seq} interrupted by a crash during copy 0: its first {NewBytes} bytes hold seq {Seq}, " +
            $"the rest and every other copy seq {Seq - 1}",
    };

    private long NewBytes => (long)NewSectors * FormatLimits.SectorSize;

    /// <summary>
    /// The interrupted write <paramref name="read"/> shows, or null when its copies are anything
    /// else (all good, or damaged). Reads the copy suspected torn from <paramref name="device"/>.
    /// </summary>
    public static InterruptedWrite? Recognise(IBlockDevice device, SuperblockReadResult read)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(read);
        var copies = read.Copies;
        var f = 0;
        while (f < copies.Count && copies[f].Status == CopyStatus.Good)
            f++;
        if (f == copies.Count || read.Encoded.IsEmpty)
            return null;
        var seq = read.Superblock.Seq;
        if (f == 0)
        {
            if (copies[0].Status != CopyStatus.BadChecksum || copies.Skip(1).Any(c => c.Status != CopyStatus.Good) || seq == ulong.MaxValue)
                return null;
            var t = TornFirstCopy(device, read, copies[0].Offset);
            return t > 0 ? new InterruptedWrite(InterruptedWriteKind.TornFirstCopy, 0, seq + 1, t) : null;
        }

        var torn = copies[f].Status == CopyStatus.BadChecksum;
        for (var i = torn ? f + 1 : f; i < copies.Count; i++)
        {
            if (copies[i].Status != CopyStatus.Stale || copies[i].Seq != seq - 1 || !IsReplacedVersion(device, read, copies[i].Offset))
                return null;
        }
        if (!torn)
            return new InterruptedWrite(InterruptedWriteKind.StaleCopies, f, seq, 0);
        var newSectors = TornCopy(device, read, copies[f].Offset);
        return newSectors > 0 ? new InterruptedWrite(InterruptedWriteKind.TornCopy, f, seq, newSectors) : null;
    }

    /// <summary>
    /// True when the copy at <paramref name="offset"/> is the version the winner replaced: its
    /// sector checksums are the winner's previous_sectors entries.
    /// </summary>
    private static bool IsReplacedVersion(IBlockDevice device, SuperblockReadResult read, long offset)
    {
        var copy = SuperblockIo.ReadCopy(device, offset);
        return copy.Status == CopyStatus.Good &&
               SuperblockCodec.SectorChecksums(copy.Body.Span).AsSpan().SequenceEqual([.. read.Superblock.PreviousSectors]);
    }

    /// <summary>Rule (a): how many leading sectors of the copy at <paramref name="offset"/> are new, or 0 when it is not torn.</summary>
    private static int TornCopy(IBlockDevice device, SuperblockReadResult read, long offset)
    {
        var previous = read.Superblock.PreviousSectors;
        if (previous.Count == 0)
            return 0;
        var expected = EncodingAt(read, offset);
        var newCount = expected.Length / FormatLimits.SectorSize;
        // The sectors the write covered: the new version's and, zeroed, the rest of the old one's.
        var extent = Math.Max(newCount, previous.Count);
        var raw = ReadSectors(device, offset, extent);
        if (raw is null)
            return 0;

        // p: sectors [0, p) hold the new version. q: sectors [q, extent) still hold what the copy
        // held before: the old version's sectors (by their recorded checksums) and zeros past its end.
        var p = 0;
        while (p < newCount && Sector(raw, p).SequenceEqual(Sector(expected, p)))
            p++;
        var q = 1;
        for (var k = extent - 1; k >= 1; k--)
        {
            var old = k < previous.Count
                ? SuperblockCodec.SectorChecksum(Sector(raw, k), k) == previous[k]
                : !Sector(raw, k).ContainsAnyExcept((byte)0);
            if (!old)
            {
                q = k + 1;
                break;
            }
        }
        // A tear point t with q <= t <= p exists.
        return q <= p ? p : 0;
    }

    /// <summary>Rule (b): how many leading sectors of copy 0 certainly hold the next version, or 0 when it is not torn.</summary>
    private static int TornFirstCopy(IBlockDevice device, SuperblockReadResult read, long offset)
    {
        var winner = Padded(read.Encoded.Span);
        var winnerSums = SuperblockCodec.SectorChecksums(winner);
        var n = winnerSums.Length;
        var raw = ReadSectors(device, offset, n);
        if (raw is null)
            return 0;
        var head = raw.AsSpan(0, FormatLimits.SectorSize);
        if (!head.Slice(MagicOffset, Magic.Length).SequenceEqual(Magic) ||
            SuperblockText.ReadUuid(head[UuidOffset..]) != read.Superblock.Uuid ||
            BinaryPrimitives.ReadUInt64LittleEndian(head[SeqOffset..]) != read.Superblock.Seq + 1)
        {
            return 0;
        }

        // The first section of the new version names the one it replaced: the winner's sectors.
        var section = head[HeaderSize..];
        var sectionBytes = BinaryPrimitives.ReadUInt32LittleEndian(section);
        if (BinaryPrimitives.ReadUInt32LittleEndian(section[4..]) != (uint)SectionType.PreviousSectors ||
            BinaryPrimitives.ReadUInt32LittleEndian(section[SectionHeaderSize..]) != (uint)n ||
            sectionBytes < SectionHeaderSize + PreviousSectorsHeaderSize + ((long)PreviousSectorEntrySize * n))
        {
            return 0;
        }

        // t: sectors [t, n) still hold the winner's bytes; sectors [0, t) are new.
        var t = n;
        while (t > 1 && Sector(raw, t - 1).SequenceEqual(Sector(winner, t - 1)))
            t--;
        // The entries in sector 0 (all of them unless the winner spans more than 60 sectors): only
        // sector 0 is certainly still the next version's, as finishing this write rewrites the
        // copy tail first (SuperblockIo.FinishInterruptedWrite).
        var entries = HeaderSize + SectionHeaderSize + PreviousSectorsHeaderSize;
        for (var i = 0; i < n; i++)
        {
            var at = entries + (i * PreviousSectorEntrySize);
            if (at + PreviousSectorEntrySize > FormatLimits.SectorSize)
                break;
            if (BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(at)) != winnerSums[i])
                return 0;
        }
        return t;
    }

    /// <summary>The bytes a write of the winner puts at the copy at <paramref name="offset"/>: its offset field and checksum set.</summary>
    private static byte[] EncodingAt(SuperblockReadResult read, long offset)
    {
        var bytes = Padded(read.Encoded.Span);
        var total = read.Encoded.Length;
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(CopyOffsetOffset), (ulong)offset);
        var sum = Checksums.Compute(read.Superblock.SuperblockChecksumType, bytes.AsSpan(ChecksummedFrom, total - ChecksummedFrom));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(ChecksumOffset), sum);
        return bytes;
    }

    /// <summary>A copy's bytes zero-padded to whole sectors, as the encoder writes them.</summary>
    private static byte[] Padded(ReadOnlySpan<byte> encoded)
    {
        var bytes = new byte[(encoded.Length + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize * FormatLimits.SectorSize];
        encoded.CopyTo(bytes);
        return bytes;
    }

    private static ReadOnlySpan<byte> Sector(byte[] bytes, int index) =>
        bytes.AsSpan(index * FormatLimits.SectorSize, FormatLimits.SectorSize);

    /// <summary>The first <paramref name="sectors"/> sectors of the copy at <paramref name="offset"/>, or null when they cannot be read.</summary>
    private static byte[]? ReadSectors(IBlockDevice device, long offset, int sectors)
    {
        var length = sectors * FormatLimits.SectorSize;
        if (sectors < 1 || length > CopySize || offset < 0 || offset > device.Size - length)
            return null;
        var bytes = new byte[length];
        try
        {
            device.Read(offset, bytes);
        }
        catch (BasaltException e) when (e.Class == ErrorClass.Io)
        {
            return null;
        }
        return bytes;
    }
}
