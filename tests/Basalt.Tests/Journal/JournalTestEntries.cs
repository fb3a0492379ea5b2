// Journal entries made by hand for the format, scan and replay-plan tests: built with the engine's
// own JournalEntryBuilder (so a test reads exactly what the writer writes), resealed after a test
// edits a header or record on purpose, and laid into the buckets of a small ring on a memory device.
using System.Buffers.Binary;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Journal;
using Basalt.Superblocks;

namespace Basalt.Tests.Journal;

internal static class JournalTestEntries
{
    public const int BlockSize = 512;
    public const int NodeSize = 4096;

    public static readonly Guid Uuid = new("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");

    public static ulong Magic => JournalFormat.MagicFor(Uuid);

    public static JournalReadContext Context => new(Magic, BlockSize, NodeSize);

    /// <summary>A sealed entry: header, the records <paramref name="records"/> appends, zero padding to the block size.</summary>
    public static byte[] Build(ulong seq, ulong lastSeq, bool flush = true, Action<JournalEntryBuilder>? records = null,
        int capacity = 64 * 1024, ChecksumType checksum = ChecksumType.Crc32C, ulong? magic = null, int blockSize = BlockSize)
    {
        using var builder = new JournalEntryBuilder(seq, capacity);
        records?.Invoke(builder);
        var bytes = builder.Seal(magic ?? Magic, lastSeq, noFlush: !flush, checksum, FormatVersion.Current, blockSize);
        return builder.Sealed(bytes).ToArray();
    }

    /// <summary>An entry holding one level-0 key of the test btree per value, at (1, offset).</summary>
    public static byte[] WithKeys(ulong seq, ulong lastSeq, bool flush, params (ulong Offset, byte Value)[] keys) =>
        Build(seq, lastSeq, flush, b =>
        {
            foreach (var (offset, value) in keys)
                b.AppendKey(BtreeId.Test, 0, Key(offset), [value, value, value]);
        });

    public static Bkey Key(ulong offset, ulong inode = 1) => new(new Bpos(inode, offset), KeyType.Cookie);

    /// <summary>A well-formed child pointer (node-aligned slot, some sectors written).</summary>
    public static BtreePtrValue Ptr(ulong slot, ulong seq = 0x1234, Bpos? min = null) => new()
    {
        Seq = seq,
        SectorsWritten = 2,
        MinKey = min ?? Bpos.Min,
        Ptrs = [new DevicePtr(0, slot * (NodeSize / FormatLimits.SectorSize), 0)],
    };

    public static BtreeRoot Root(BtreeId btree, byte level, ulong slot) => new(btree, level, Ptr(slot, seq: 0x1000 + slot));

    /// <summary>Recomputes the checksum of an entry whose bytes a test changed, with the type its header names.</summary>
    public static void Reseal(Span<byte> entry)
    {
        var payload = (int)BinaryPrimitives.ReadUInt32LittleEndian(entry[JournalFormat.PayloadBytesOffset..]);
        var type = (ChecksumType)entry[JournalFormat.ChecksumTypeOffset];
        var sum = Checksums.Compute(type, entry[JournalFormat.ChecksummedFrom..(JournalFormat.HeaderSize + payload)]);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[JournalFormat.ChecksumOffset..], sum);
    }

    /// <summary>Reads an entry that must be good.</summary>
    public static JournalEntry ReadGood(ReadOnlySpan<byte> bytes)
    {
        var r = JournalEntryReader.Read(bytes, Context);
        Assert.True(r.Status == JournalEntryStatus.Good, $"{r.Status}: {r.Detail}");
        return r.Entry!;
    }

    /// <summary>The bytes of the key records' keys, for comparing what was written with what was read.</summary>
    public static List<(BtreeId Btree, byte Level, Bpos Pos, byte[] Value)> KeysOf(JournalEntry entry) =>
        [.. entry.Records.Where(r => r.Type == JournalRecordType.BtreeKeys).SelectMany(r => r.Keys())
            .Select(k => (k.Btree, k.Level, k.Key.Pos, k.Value.ToArray()))];
}

/// <summary>A ring of small journal buckets on a memory device, for scan and plan tests.</summary>
internal sealed class TestRing : IDisposable
{
    public TestRing(int buckets = 6, int bucketSize = 4096, ulong firstBucket = 2)
    {
        Ring = new JournalRing([new BucketRange(firstBucket, (ulong)buckets)], bucketSize);
        Device = new MemoryBlockDevice((long)(firstBucket + (ulong)buckets + 1) * bucketSize, "ring.img");
    }

    public JournalRing Ring { get; }

    public MemoryBlockDevice Device { get; }

    /// <summary>Writes <paramref name="entry"/> into ring bucket <paramref name="index"/> at byte <paramref name="offset"/> of it.</summary>
    public long Put(int index, int offset, ReadOnlySpan<byte> entry)
    {
        var at = Ring.OffsetOf(index) + offset;
        Device.Write(at, entry);
        return at;
    }

    /// <summary>Writes entries back to back from the start of bucket <paramref name="index"/>; returns each one's device offset.</summary>
    public long[] Fill(int index, params byte[][] entries)
    {
        var offsets = new long[entries.Length];
        var at = 0;
        for (var i = 0; i < entries.Length; i++)
        {
            offsets[i] = Put(index, at, entries[i]);
            at += entries[i].Length;
        }
        return offsets;
    }

    public JournalScanResult Scan() => JournalScan.Scan(Device, Ring, JournalTestEntries.Context);

    public void Dispose() => Device.Dispose();
}
