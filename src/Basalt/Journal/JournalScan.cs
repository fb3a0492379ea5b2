// Reading the journal at mount (and for fsck's check_journal and list-journal): every bucket of
// the ring is read whole and parsed entry by entry, and the entries found decide what recovery
// replays (JournalReplayPlan).
//
// Inside a bucket entries follow each other at block boundaries. No magic at the next boundary
// ends the bucket's entries, unless an entry of the same lap (a newer seq) starts further on: then
// the block was damaged (a changed magic, zeroes), which is recorded, and the scan goes on there. A
// seq lower than the previous entry's in the same bucket means the rest is older data from an
// earlier lap of the ring (also the end). An entry whose header or checksum is bad is recorded as
// damage and the scan goes on at the next block, so the entries after a torn or damaged one are
// still found.
using System.Buffers.Binary;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Journal;

/// <summary>Something wrong found in the journal: its catalogue id, the seq when known, where, and what.</summary>
public sealed record JournalDamage(FsckErrorId Id, ulong? Seq, JournalLocation? Location, string Detail)
{
    public string ToText() =>
        $"{FsckCatalogue.NameOf(Id)}{(Seq is { } s ? $" seq {s}" : "")}{(Location is { } l ? $" at {l.ToText()}" : "")}: {Detail}";
}

/// <summary>Everything found in the ring.</summary>
public sealed class JournalScanResult
{
    /// <summary>Good entries by seq (the first copy found when one appears twice).</summary>
    public required IReadOnlyDictionary<ulong, JournalEntry> Entries { get; init; }

    /// <summary>Bad entries and other problems, in ring order.</summary>
    public required IReadOnlyList<JournalDamage> Damage { get; init; }

    /// <summary>Newest seq written into each ring bucket (0: no entry of this filesystem).</summary>
    public required ulong[] BucketNewestSeq { get; init; }

    /// <summary>Where each ring bucket's entries end (the byte after the last entry found).</summary>
    public required int[] BucketEnd { get; init; }

    /// <summary>Highest seq seen at all: good entries, and bad headers close enough to them to be plausible.</summary>
    public required ulong NewestSeqSeen { get; init; }

    public long BytesRead { get; init; }
}

public static class JournalScan
{
    /// <summary>Reads and parses every bucket of <paramref name="ring"/>. I/O errors are damage, not exceptions.</summary>
    public static JournalScanResult Scan(IBlockDevice device, JournalRing ring, in JournalReadContext context)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(ring);
        var entries = new Dictionary<ulong, JournalEntry>();
        var damage = new List<JournalDamage>();
        var newest = new ulong[ring.Count];
        var ends = new int[ring.Count];
        var buffer = new byte[ring.BucketSize];
        var badSeqs = new List<ulong>();
        long bytes = 0;
        for (var b = 0; b < ring.Count; b++)
        {
            var offset = ring.OffsetOf(b);
            if (offset < 0 || offset + ring.BucketSize > device.Size)
            {
                damage.Add(new JournalDamage(FsckErrorId.JournalEntryBadHeader, null, ring.Location(b, 0),
                    $"journal bucket {ring.BucketAt(b)} lies outside the device ({device.Size} bytes)"));
                continue;
            }
            try
            {
                device.Read(offset, buffer);
                bytes += buffer.Length;
            }
            catch (BasaltException ex) when (ex.Class == ErrorClass.Io)
            {
                damage.Add(new JournalDamage(FsckErrorId.JournalEntryBadChecksum, null, ring.Location(b, 0), $"read failed: {ex.Message}"));
                continue;
            }
            ScanBucket(buffer, b, ring, context, entries, damage, badSeqs, out newest[b], out ends[b]);
        }
        var newestGood = entries.Count == 0 ? 0 : entries.Keys.Max();
        // A bad header's seq is unverified: counted only when it is near the good ones (a torn
        // last write), so garbage cannot push the next seq to an absurd value.
        var newestSeen = newestGood;
        foreach (var s in badSeqs)
        {
            if (s > newestSeen && s <= newestGood + 1024)
                newestSeen = s;
        }
        return new JournalScanResult
        {
            Entries = entries,
            Damage = damage,
            BucketNewestSeq = newest,
            BucketEnd = ends,
            NewestSeqSeen = newestSeen,
            BytesRead = bytes,
        };
    }

    private static void ScanBucket(byte[] bucket, int ringIndex, JournalRing ring, in JournalReadContext context,
        Dictionary<ulong, JournalEntry> entries, List<JournalDamage> damage, List<ulong> badSeqs, out ulong newestSeq, out int end)
    {
        newestSeq = 0;
        end = 0;
        var at = 0;
        var sawBad = false;
        var block = context.BlockSize;
        while (at + JournalFormat.HeaderSize <= bucket.Length)
        {
            var r = JournalEntryReader.Read(bucket.AsSpan(at), context);
            var where = ring.Location(ringIndex, at);
            switch (r.Status)
            {
                case JournalEntryStatus.NoEntry:
                    if (sawBad)
                    {
                        at += block;
                        continue;
                    }
                    // Normally the end of this lap's entries. Entries of this lap further on mean
                    // this block was damaged (its magic changed, or it was zeroed): say so and go on
                    // from there, so the entries after it are still found.
                    if (!TryFindLaterEntry(bucket, at + block, newestSeq, context, out var next, out var nextSeq))
                        return;
                    var headerSeq = BinaryPrimitives.ReadUInt64LittleEndian(bucket.AsSpan(at + JournalFormat.SeqOffset));
                    ulong? lostSeq = headerSeq > newestSeq && headerSeq < nextSeq ? headerSeq : null;
                    damage.Add(new JournalDamage(FsckErrorId.JournalEntryBadHeader, lostSeq, where,
                        $"no journal entry magic here, but entry seq {nextSeq} of the same lap follows at byte {ring.OffsetOf(ringIndex) + next}: " +
                        $"the {next - at} bytes before it are unreadable (a damaged magic, or overwritten)"));
                    if (lostSeq is { } s)
                        badSeqs.Add(s);
                    sawBad = true;
                    at = next;
                    continue;
                case JournalEntryStatus.BadHeader:
                case JournalEntryStatus.BadChecksum:
                    // The length cannot be trusted: look for the next entry at the next block.
                    damage.Add(new JournalDamage(r.Finding!.Value, r.HeaderSeq, where, r.Detail));
                    badSeqs.Add(r.HeaderSeq);
                    sawBad = true;
                    at += block;
                    continue;
                case JournalEntryStatus.Invalid:
                    damage.Add(new JournalDamage(r.Finding!.Value, r.HeaderSeq, where, r.Detail));
                    badSeqs.Add(r.HeaderSeq);
                    sawBad = true;
                    at += Math.Max(block, r.DiskBytes);
                    end = at;
                    continue;
            }
            var entry = r.Entry!;
            if (entry.Seq < newestSeq)
                return; // older data of an earlier lap follows
            var placed = entry with { Location = where };
            if (r.Finding is { } finding)
                damage.Add(new JournalDamage(finding, entry.Seq, where, r.Detail));
            entries.TryAdd(entry.Seq, placed);
            newestSeq = entry.Seq;
            at += entry.DiskBytes;
            end = at;
        }
    }

    /// <summary>
    /// The next block from <paramref name="from"/> where an entry (good or damaged) newer than
    /// <paramref name="newestSeq"/> starts: an entry of the lap being read. A good older entry is
    /// the previous lap's data: nothing of this lap follows it.
    /// </summary>
    private static bool TryFindLaterEntry(byte[] bucket, int from, ulong newestSeq, in JournalReadContext context, out int at, out ulong seq)
    {
        for (at = from; at + JournalFormat.HeaderSize <= bucket.Length; at += context.BlockSize)
        {
            if (BinaryPrimitives.ReadUInt64LittleEndian(bucket.AsSpan(at + JournalFormat.MagicOffset)) != context.Magic)
                continue;
            var r = JournalEntryReader.Read(bucket.AsSpan(at), context);
            seq = r.Entry?.Seq ?? r.HeaderSeq;
            if (r.Status == JournalEntryStatus.Good && seq <= newestSeq)
                break;
            if (r.Status != JournalEntryStatus.NoEntry && seq > newestSeq)
                return true;
        }
        at = 0;
        seq = 0;
        return false;
    }
}
