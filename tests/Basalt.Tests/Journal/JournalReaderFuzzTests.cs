// The journal reader and scan on hostile bytes: random garbage, garbage behind a valid magic, and
// valid entries whose records were scrambled and then resealed (so the checksum passes and the
// record checks are what stands between the bytes and recovery). Never an exception, never an
// allocation out of proportion to the input, and whatever the reader calls good can be consumed.
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Format;
using Basalt.Journal;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Journal.JournalTestEntries;

namespace Basalt.Tests.Journal;

public sealed class JournalReaderFuzzTests(ITestOutputHelper output)
{
    [Fact]
    public void The_reader_never_throws_or_overallocates_on_hostile_bytes()
    {
        var seed = TestSeed.Get(output, nameof(The_reader_never_throws_or_overallocates_on_hostile_bytes));
        var rng = new Random(seed);
        var statuses = new Dictionary<JournalEntryStatus, int>();
        var goodAfterScramble = 0;
        var inputs = LongTests.Scale(4000);
        // Warm up: first calls initialise static tables (catalogue, key rules) that are not the reader's own allocations.
        var warm = new Random(seed ^ 0x5a5a);
        for (var i = 0; i < 200; i++)
            _ = JournalEntryReader.Read(Input(warm, i % 5), Context);
        for (var i = 0; i < inputs; i++)
        {
            var kind = i % 5;
            var input = Input(rng, kind);
            var before = GC.GetAllocatedBytesForCurrentThread();
            JournalEntryReadResult r;
            try
            {
                r = JournalEntryReader.Read(input, Context);
            }
            catch (Exception ex)
            {
                Assert.Fail($"seed {seed} input {i} (kind {kind}, {input.Length} bytes): {ex}");
                throw;
            }
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated <= (8L * input.Length) + (16 * 1024),
                $"seed {seed} input {i}: {allocated} bytes allocated reading {input.Length} bytes ({r.Status})");
            statuses[r.Status] = statuses.GetValueOrDefault(r.Status) + 1;
            Assert.Equal(r.Status == JournalEntryStatus.Good, r.Entry is not null);
            if (r.Status is JournalEntryStatus.BadHeader or JournalEntryStatus.BadChecksum or JournalEntryStatus.Invalid)
                Assert.False(string.IsNullOrEmpty(r.Detail));
            if (r.Entry is { } entry)
            {
                if (kind >= 3)
                    goodAfterScramble++;
                Consume(entry);
            }
        }
        output.WriteLine($"{inputs} inputs: {string.Join(", ", statuses.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"))}; " +
            $"{goodAfterScramble} scrambled entries still good");
        // Every outcome was reached, so the fuzz got past each check of the reader.
        foreach (var status in Enum.GetValues<JournalEntryStatus>())
            Assert.True(statuses.GetValueOrDefault(status) > 0, $"no input ended as {status}");
    }

    [Fact]
    public void The_scan_never_throws_on_a_ring_of_garbage_with_planted_headers()
    {
        var seed = TestSeed.Get(output, nameof(The_scan_never_throws_on_a_ring_of_garbage_with_planted_headers));
        var rng = new Random(seed);
        using var ring = new TestRing(buckets: 6, bucketSize: 8192);
        for (var round = 0; round < LongTests.Scale(40); round++)
        {
            var bucket = new byte[ring.Ring.BucketSize];
            for (var b = 0; b < ring.Ring.Count; b++)
            {
                rng.NextBytes(bucket);
                // Entries and garbage headers at block boundaries, as a real ring would have them.
                for (var at = 0; at + 4096 <= bucket.Length; at += BlockSize * rng.Next(1, 4))
                {
                    var piece = Input(rng, rng.Next(1, 5));
                    piece.AsSpan(0, Math.Min(piece.Length, bucket.Length - at)).CopyTo(bucket.AsSpan(at));
                }
                ring.Put(b, 0, bucket);
            }
            var scan = ring.Scan();
            foreach (var e in scan.Entries.Values)
                Consume(e);
            foreach (var d in scan.Damage)
                Assert.False(string.IsNullOrEmpty(d.ToText()));
            // Whatever the scan found, a plan is made from it without an exception.
            var plan = JournalReplayPlan.Build(scan, checkpointSeq: 0, blacklist: []);
            Assert.True(plan.NextSeq > 0);
        }
    }

    /// <summary>Everything recovery and list-journal do with a good entry.</summary>
    private static void Consume(JournalEntry entry)
    {
        Assert.False(string.IsNullOrEmpty(entry.ToText()));
        Assert.True(entry.LastSeq <= entry.Seq);
        foreach (var record in entry.Records)
        {
            Assert.False(string.IsNullOrEmpty(record.ToText()));
            switch (record.Type)
            {
                case JournalRecordType.BtreeKeys:
                    foreach (var k in record.Keys())
                        Assert.False(string.IsNullOrEmpty(k.ToText()));
                    break;
                case JournalRecordType.BtreeRoot:
                    _ = record.Root();
                    break;
                case JournalRecordType.Blacklist:
                    Assert.True(record.Blacklist().First <= record.Blacklist().Last);
                    break;
                case JournalRecordType.Datetime:
                    _ = record.Time();
                    break;
            }
        }
    }

    private static byte[] Input(Random rng, int kind)
    {
        switch (kind)
        {
            case 0:
            {
                // Plain garbage, any length.
                var bytes = new byte[rng.Next(0, 9000)];
                rng.NextBytes(bytes);
                return bytes;
            }
            case 1:
            {
                // Garbage behind this filesystem's magic: a header with random fields, often a huge length.
                var bytes = new byte[rng.Next(JournalFormat.HeaderSize, 9000)];
                rng.NextBytes(bytes);
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(JournalFormat.MagicOffset), Magic);
                bytes[JournalFormat.ChecksumTypeOffset] = (byte)rng.Next(0, 5);
                var payload = rng.Next(3) switch
                {
                    0 => (uint)rng.Next(),
                    1 => (uint)(rng.Next(0, bytes.Length) & ~7),
                    _ => uint.MaxValue - (uint)rng.Next(16),
                };
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(JournalFormat.PayloadBytesOffset), payload);
                if (rng.Next(2) == 0 && JournalFormat.HeaderSize + (long)payload <= bytes.Length && payload % 8 == 0 && bytes[JournalFormat.ChecksumTypeOffset] is >= 1 and <= 3)
                    Reseal(bytes);
                return bytes;
            }
            case 2:
            {
                // A valid entry torn or cut at a random length, or with a random byte changed.
                var bytes = ValidEntry(rng);
                if (rng.Next(2) == 0)
                    return bytes.AsSpan(0, rng.Next(0, bytes.Length)).ToArray();
                bytes[rng.Next(bytes.Length)] ^= (byte)rng.Next(1, 256);
                return bytes;
            }
            case 3:
            {
                // A valid entry with a few random bytes of its records changed, resealed.
                var bytes = ValidEntry(rng);
                var end = JournalFormat.HeaderSize + (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(JournalFormat.PayloadBytesOffset));
                for (var n = rng.Next(1, 4); n > 0 && end > JournalFormat.HeaderSize; n--)
                    bytes[rng.Next(JournalFormat.HeaderSize, end)] = (byte)rng.Next(256);
                Reseal(bytes);
                return bytes;
            }
            default:
            {
                // A valid header over random records (random record headers, some plausible), resealed.
                var bytes = ValidEntry(rng);
                var end = JournalFormat.HeaderSize + (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(JournalFormat.PayloadBytesOffset));
                rng.NextBytes(bytes.AsSpan(JournalFormat.HeaderSize, end - JournalFormat.HeaderSize));
                for (var at = JournalFormat.HeaderSize; at + JournalFormat.RecordHeaderSize <= end;)
                {
                    var length = Math.Min(end - at, 8 * rng.Next(1, 12));
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), (uint)length);
                    bytes[at + JournalFormat.RecordTypeOffset] = (byte)rng.Next(0, 7);
                    bytes[at + JournalFormat.RecordBtreeOffset] = rng.Next(2) == 0 ? (byte)BtreeId.Test : (byte)rng.Next(0, 40);
                    bytes[at + JournalFormat.RecordLevelOffset] = (byte)rng.Next(0, 3);
                    bytes[at + JournalFormat.RecordReservedOffset] = 0;
                    at += length;
                }
                Reseal(bytes);
                return bytes;
            }
        }
    }

    private static byte[] ValidEntry(Random rng)
    {
        var seq = (ulong)rng.Next(1, 1000);
        return Build(seq, seq - (ulong)rng.Next(0, (int)seq), rng.Next(2) == 0, b =>
        {
            for (var i = rng.Next(0, 12); i > 0; i--)
            {
                switch (rng.Next(6))
                {
                    case 0:
                        b.AppendRoot(BtreeId.Test, Root(BtreeId.Test, (byte)rng.Next(0, 3), (ulong)rng.Next(1, 100)));
                        break;
                    case 1:
                        b.AppendBlacklist(new SeqRange(seq, seq + (ulong)rng.Next(0, 5)));
                        break;
                    case 2:
                        b.AppendDatetime(DateTimeOffset.UnixEpoch.AddSeconds(rng.Next()));
                        break;
                    case 3:
                        b.AppendLevelsVoided(BtreeId.Test, (byte)rng.Next(0, 3));
                        break;
                    default:
                        var value = new byte[rng.Next(0, 40)];
                        rng.NextBytes(value);
                        b.AppendKey(BtreeId.Test, 0, Key((ulong)rng.Next(0, 1000)), value);
                        break;
                }
            }
        }, checksum: (ChecksumType)rng.Next(1, 4));
    }
}
