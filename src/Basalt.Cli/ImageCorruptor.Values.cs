// `debug corrupt --target alloc|backpointer|extent|data`: changes one decoded field of a key's
// value (or, for data, the bytes an extent points at) and says which fsck finding (or failing
// read) it expects.
//
// The key is the one a reader sees: the filesystem is mounted read-only over an overlay (the
// journal replayed in memory) and the key is picked from the recovered btree. The copy changed is
// the one that copy comes from: when the next mount's replay window holds the key (replay applies
// journal keys over the nodes' versions), the newest journal entry of the window that holds it;
// otherwise the newest version of the key in its leaf node on disk. The checksum of that node
// record or journal entry is recomputed unless --keep-csum, so the damage reaches the checks
// behind it instead of failing the checksum.
using System.Buffers.Binary;
using System.Globalization;
using Basalt.Alloc;
using Basalt.Backpointers;
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Data;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Journal;

namespace Basalt.Cli;

internal static partial class ImageCorruptor
{
    /// <summary>Fields of an alloc value (offsets inside the value).</summary>
    private static readonly IReadOnlyList<NodeField> s_allocFields =
    [
        new("gen", AllocValue.GenOffset, 1),
        new("oldest_gen", AllocValue.OldestGenOffset, 1),
        new("data_type", AllocValue.DataTypeOffset, 1),
        new("dirty_sectors", AllocValue.DirtySectorsOffset, 4),
        new("cached_sectors", AllocValue.CachedSectorsOffset, 4),
        new("flags", AllocValue.FlagsOffset, 4),
        new("fragmentation_lru", AllocValue.FragmentationLruOffset, 8),
    ];

    private static readonly IReadOnlyList<NodeField> s_backpointerFields =
    [
        new("btree", BackpointerValue.BtreeOffset, 1),
        new("level", BackpointerValue.LevelOffset, 1),
        new("sectors", BackpointerValue.SectorsOffset, 4),
        new("gen", BackpointerValue.BucketGenOffset, 1),
        new("pos", BackpointerValue.PosOffset, Bpos.SizeOf),
    ];

    /// <summary>Fields of an extent value; the pointer fields are those of its first pointer.</summary>
    private static readonly IReadOnlyList<NodeField> s_extentFields =
    [
        new("gen", ExtentValue.PtrsOffset + BtreePtrValue.PtrGenOffset, 1),
        new("offset", ExtentValue.PtrsOffset + BtreePtrValue.PtrOffsetOffset, 8),
        new("device", ExtentValue.PtrsOffset + BtreePtrValue.PtrDeviceOffset, 1),
        new("checksum", ExtentValue.ChecksumOffset, 8),
        new("window", ExtentValue.WindowOffset, 4),
        new("covered", ExtentValue.CoveredOffset, 4),
    ];

    /// <summary>The data target's one pseudo-field: a byte of the live data the extent's first readable pointer names.</summary>
    private static readonly IReadOnlyList<NodeField> s_dataFields = [new("data", 0, 1)];

    private static IReadOnlyList<NodeField> ValueFieldsOf(CorruptTarget target) => target switch
    {
        CorruptTarget.Alloc => s_allocFields,
        CorruptTarget.Backpointer => s_backpointerFields,
        CorruptTarget.Extent => s_extentFields,
        _ => s_dataFields,
    };

    private static BtreeId BtreeOf(CorruptTarget target) => target switch
    {
        CorruptTarget.Alloc => BtreeId.Alloc,
        CorruptTarget.Backpointer => BtreeId.Backpointers,
        _ => BtreeId.Extents,
    };

    /// <summary>
    /// Where the copy of a key a reader sees lies: <see cref="Buffer"/> holds the leaf node's slot or
    /// the journal entry read from <see cref="BaseOffset"/>; the value starts at <see cref="ValueOffset"/>
    /// in it, and the checksum to recompute is the record's at <see cref="ChecksumRecord"/> (0 for an entry).
    /// </summary>
    private sealed record KeyCopy(string Where, long BaseOffset, int ValueOffset, byte[] Buffer, int ChecksumRecord, bool Journal, ulong Seq);

    private static CorruptResult CorruptValue(IBlockDevice device, CorruptRequest request, NodeField field, Random random)
    {
        var id = BtreeOf(request.Target);
        // Everything is decided on the read-only mount; the device is written only after it is gone.
        using var fs = BasaltFileSystem.Mount(device, new MountOptions { ReadOnly = true });
        var (key, value) = PickKey(fs, request, id, random);
        if (request.Target == CorruptTarget.Data)
            return CorruptData(fs, device, request, field, random, key, value);

        var copy = LocateCopy(fs, device, id, key, value);
        var fieldOffset = copy.ValueOffset + field.Offset;
        var old = copy.Buffer.AsSpan(fieldOffset, field.Size).ToArray();
        Damage(copy.Buffer.AsSpan(fieldOffset, field.Size), request.Mode, random);
        var changed = copy.Buffer.AsSpan(fieldOffset, field.Size).ToArray();
        var expect = Expectation(fs, request.Target, field, key, copy.Buffer.AsSpan(copy.ValueOffset, value.Length).ToArray());
        var note = RecomputeChecksum(copy, request.KeepChecksum);
        fs.Close(sync: false);
        WriteBack(device, copy.BaseOffset, copy.Buffer, fieldOffset, field.Size, request.KeepChecksum ? -1 : copy.ChecksumRecord);
        return new CorruptResult($"{id.ToText()} key {key.Pos.ToText()} ({KeyTypeTable.ToText(key.Type, value)}) {copy.Where}",
            copy.BaseOffset + fieldOffset, field.Name, old, changed, note) { Expectation = expect };
    }

    /// <summary>Changes one byte of the live window of <paramref name="key"/>'s run, on its first pointer that is not stale.</summary>
    private static CorruptResult CorruptData(BasaltFileSystem fs, IBlockDevice device, CorruptRequest request, NodeField field, Random random,
        Bkey key, byte[] value)
    {
        if (!ExtentValue.TryRead(value, out var extent, out var problem))
            throw new BasaltException(ErrorCode.BtreeNodeCorrupt, $"{device.Name}: extent {key.Pos.ToText()} is invalid: {problem}");
        var ptr = extent.Ptrs.FirstOrDefault(p => !fs.Space.IsStale(p));
        if (ptr == default)
            throw new BasaltException(ErrorCode.FileNotFound, $"{device.Name}: extent {key.Pos.ToText()} has no pointer that is not stale: no data to corrupt");
        // A byte of the live window, so a read of the extent's range must meet it.
        var inWindow = random.Next((int)key.Size * FormatLimits.SectorSize);
        var offset = ptr.OffsetBytes + ((long)extent.Window * FormatLimits.SectorSize) + inWindow;
        var fileOffset = ((long)(key.Pos.Offset - key.Size) * FormatLimits.SectorSize) + inWindow;
        var sector = offset / FormatLimits.SectorSize * FormatLimits.SectorSize;
        var buffer = new byte[FormatLimits.SectorSize];
        device.Read(sector, buffer);
        var at = (int)(offset - sector);
        var old = buffer.AsSpan(at, field.Size).ToArray();
        Damage(buffer.AsSpan(at, field.Size), request.Mode, random);
        fs.Close(sync: false);
        WriteBack(device, sector, buffer, at, field.Size, -1);
        return new CorruptResult($"data of extent {key.ToText()} [{ptr.ToText()}]", offset, field.Name, old, buffer.AsSpan(at, field.Size).ToArray(), null)
        {
            Expectation = $"expect: reads of inode {key.Pos.Inode} at offset {fileOffset} fail with EIO " +
                          $"(the run's {extent.ChecksumType.ToText()} checksum no longer matches; no fsck finding: fsck does not read data)",
        };
    }

    /// <summary>The key the request names (--pos, --bucket) or the seed picks, as the recovered btree holds it.</summary>
    private static (Bkey Key, byte[] Value) PickKey(BasaltFileSystem fs, CorruptRequest request, BtreeId id, Random random)
    {
        var name = request.Target == CorruptTarget.Data ? "extent" : request.Target.ToText();
        var tree = fs.Btrees[id];
        if (request.Bucket is { } bucket)
        {
            var dev = fs.Space.Layout[0];
            if (bucket >= dev.Nbuckets)
                CliContext.Usage($"--bucket {bucket} is outside 0..{dev.Nbuckets - 1} (device 0 has {dev.Nbuckets} buckets)");
            var inBucket = Keys(tree.Iterate(Bpos.Min, Bpos.Max), (k, v) => request.Target switch
            {
                CorruptTarget.Alloc => k.Pos == SpacePositions.Bucket(0, bucket),
                CorruptTarget.Backpointer => k.Pos.Inode == 0 && BackpointerValue.Decode(k.Pos).Sector / dev.BucketSectors == bucket,
                _ => k.Type == KeyType.Extent && ExtentValue.TryRead(v, out var e, out _) &&
                     e.Ptrs.Any(p => p.Device == 0 && dev.BucketOf(p.OffsetSectors) == bucket),
            });
            if (inBucket.Count == 0)
            {
                var state = request.Target == CorruptTarget.Alloc
                    ? $" (it has no alloc key: it is in its layout state, {dev.DefaultAlloc(bucket).ToText()})"
                    : "";
                throw new BasaltException(ErrorCode.FileNotFound, $"{fs.Device.Name}: no {name} key for bucket {bucket}{state}");
            }
            return inBucket[random.Next(inBucket.Count)];
        }
        if (request.Pos is { } pos)
        {
            var at = Keys(tree.Iterate(pos, Bpos.Max), (k, _) => request.Target is not (CorruptTarget.Extent or CorruptTarget.Data) || k.Type == KeyType.Extent, limit: 1);
            if (at.Count == 0)
                throw new BasaltException(ErrorCode.FileNotFound, $"{fs.Device.Name}: no {name} key at or after {pos.ToText()} in btree {id.ToText()}");
            return at[0];
        }
        var all = Keys(tree.Iterate(Bpos.Min, Bpos.Max), (k, _) => request.Target is not (CorruptTarget.Extent or CorruptTarget.Data) || k.Type == KeyType.Extent);
        if (all.Count == 0)
            throw new BasaltException(ErrorCode.FileNotFound, $"{fs.Device.Name}: btree {id.ToText()} holds no {name} key to corrupt");
        return all[random.Next(all.Count)];
    }

    /// <summary>Keys a value target considers at most, so a huge btree cannot exhaust memory.</summary>
    private const int MaxKeys = 1_000_000;

    private static List<(Bkey Key, byte[] Value)> Keys(BtreeIterator it, Func<Bkey, byte[], bool> match, int limit = MaxKeys)
    {
        var keys = new List<(Bkey, byte[])>();
        while (keys.Count < limit && it.MoveNext())
        {
            var value = it.Value.ToArray();
            if (match(it.Key, value))
                keys.Add((it.Key, value));
        }
        return keys;
    }

    /// <summary>The copy of <paramref name="key"/> the next mount reads: the replay window's newest journal version, else its leaf's.</summary>
    private static KeyCopy LocateCopy(BasaltFileSystem fs, IBlockDevice device, BtreeId id, Bkey key, byte[] value)
    {
        var survey = JournalSurvey.Read(device, fs.SuperblockRead.Superblock);
        foreach (var entry in (survey.Plan?.Window ?? []).OrderByDescending(e => e.Seq))
        {
            var buffer = new byte[entry.DiskBytes];
            device.Read(entry.Location.Offset, buffer);
            var end = JournalInspector.RecordsEnd(buffer);
            var records = JournalInspector.Records(buffer);
            for (var r = records.Count - 1; r >= 0; r--)
            {
                var record = records[r];
                if (record.Type != (byte)JournalRecordType.BtreeKeys || record.Btree != (byte)id || record.Level != 0)
                    continue;
                var keyOffset = LastKeyAt(buffer.AsSpan(0, Math.Min(end, record.Offset + (int)record.Bytes)), record.Offset + JournalFormat.RecordHeaderSize, key.Pos, value);
                if (keyOffset >= 0)
                {
                    return new KeyCopy($"in journal entry seq {entry.Seq} at byte {entry.Location.Offset}, record {r} at byte {record.Offset} of the entry " +
                                       "(the newest version: the next mount replays it over its leaf)",
                        entry.Location.Offset, keyOffset + BkeyFormat.HeaderSize, buffer, 0, Journal: true, entry.Seq);
                }
            }
        }
        var leaf = RecoveredNodes(fs, device).FirstOrDefault(n => n.Btree == id && n.Level == 0 && n.Min <= key.Pos && key.Pos <= n.Max)
            ?? throw new BasaltException(ErrorCode.BtreeNodeCorrupt, $"{device.Name}: {id.ToText()} key {key.Pos.ToText()}: its leaf is not on the device and the journal's replay window does not hold it");
        var slot = new byte[fs.Superblock.NodeSize];
        device.Read(leaf.Offset, slot);
        var written = Math.Min(slot.Length, leaf.SectorsWritten * FormatLimits.SectorSize);
        foreach (var record in BtreeNodeInspector.Walk(slot).Where(r => r.Offset < written).Reverse())
        {
            foreach (var k in record.Keys.Reverse())
            {
                var valueStart = k.Offset + BkeyFormat.HeaderSize;
                if (k.Key.Pos == key.Pos && k.ValueLength == value.Length && valueStart + k.ValueLength <= slot.Length &&
                    slot.AsSpan(valueStart, k.ValueLength).SequenceEqual(value))
                {
                    return new KeyCopy($"in {leaf.ToText()}, record at byte {record.Offset} of the node, value at byte {valueStart} of the node",
                        leaf.Offset, valueStart, slot, record.Offset, Journal: false, 0);
                }
            }
        }
        throw new BasaltException(ErrorCode.BtreeNodeCorrupt,
            $"{device.Name}: {id.ToText()} key {key.Pos.ToText()}: neither its {leaf.ToText()} nor the journal's replay window holds the version a reader sees");
    }

    /// <summary>Offset of the last key at <paramref name="pos"/> holding <paramref name="value"/> in the keys from <paramref name="from"/>, or -1.</summary>
    private static int LastKeyAt(ReadOnlySpan<byte> bytes, int from, Bpos pos, byte[] value)
    {
        var found = -1;
        for (var at = from; at + BkeyFormat.HeaderSize <= bytes.Length;)
        {
            var view = new BkeyView(bytes[at..]);
            var total = view.TotalBytes;
            if (total < BkeyFormat.HeaderSize || at + total > bytes.Length)
                break;
            var length = total - BkeyFormat.HeaderSize - view.ValuePad;
            if (view.Pos == pos && length == value.Length && bytes.Slice(at + BkeyFormat.HeaderSize, length).SequenceEqual(value))
                found = at;
            at += total;
        }
        return found;
    }

    private static string RecomputeChecksum(KeyCopy copy, bool keep)
    {
        var what = copy.Journal ? $"journal entry seq {copy.Seq}" : $"the record at byte {copy.ChecksumRecord}";
        if (keep)
            return $"checksum of {what} left as is (--keep-csum: it no longer matches)";
        var before = BinaryPrimitives.ReadUInt64LittleEndian(copy.Buffer.AsSpan(copy.ChecksumRecord));
        var ok = copy.Journal
            ? JournalInspector.RecomputeChecksum(copy.Buffer)
            : BtreeNodeInspector.RecomputeChecksum(copy.Buffer, copy.ChecksumRecord);
        return ok
            ? $"checksum of {what} (device offset {copy.BaseOffset + copy.ChecksumRecord}): {before:x16} -> {BinaryPrimitives.ReadUInt64LittleEndian(copy.Buffer.AsSpan(copy.ChecksumRecord)):x16}"
            : $"checksum of {what} could not be recomputed; left as is";
    }

    /// <summary>What fsck (or a read) must find once <paramref name="field"/> of <paramref name="key"/> holds <paramref name="value"/>.</summary>
    private static string Expectation(BasaltFileSystem fs, CorruptTarget target, NodeField field, Bkey key, byte[] value)
    {
        static string Ids(params FsckErrorId[] ids) =>
            "expect: fsck finds " + string.Join(", ", ids.Select(i => $"{FsckCatalogue.Get(i).Name} ({(ushort)i})"));
        var invalid = Ids(FsckErrorId.BkeyValueInvalid);
        switch (target)
        {
            case CorruptTarget.Alloc:
                if (!AllocValue.TryRead(value, out var a, out _) || a.Inconsistency() is not null)
                    return invalid;
                return field.Name switch
                {
                    "gen" => Ids(FsckErrorId.AllocKeyGenWrong, FsckErrorId.BucketGensKeyWrong),
                    "oldest_gen" => Ids(FsckErrorId.AllocKeyOldestGenWrong),
                    "data_type" => Ids(FsckErrorId.AllocKeyDataTypeWrong),
                    "dirty_sectors" => Ids(FsckErrorId.AllocKeyDirtySectorsWrong),
                    "cached_sectors" => Ids(FsckErrorId.AllocKeyCachedSectorsWrong),
                    "flags" => Ids(FsckErrorId.NeedDiscardKeyWrong),
                    _ => Ids(FsckErrorId.AllocKeyFragmentationLruWrong),
                };
            case CorruptTarget.Backpointer:
                return BackpointerValue.TryRead(value, out _, out _)
                    ? Ids(FsckErrorId.BackpointerToMissingPtr, FsckErrorId.PtrToMissingBackpointer)
                    : invalid;
            default:
                if (!ExtentValue.TryRead(value, out var e, out _) || e.CheckAgainstKey(key.Size) is not null)
                    return invalid;
                var ptr = e.Ptrs[0];
                // The key type's validation refuses a pointer past the end of the device.
                if (((decimal)ptr.OffsetSectors + e.CoveredSectors) * FormatLimits.SectorSize > fs.Superblock.DeviceSize)
                    return invalid;
                var start = (long)(key.Pos.Offset - key.Size) * FormatLimits.SectorSize;
                switch (field.Name)
                {
                    case "gen":
                    {
                        var bucketGen = fs.Space.GenOf(new BucketRef(ptr.Device, fs.Space.Layout[ptr.Device].BucketOf(ptr.OffsetSectors)));
                        return Gens.Compare(bucketGen, ptr.Gen) > 0 ? Ids(FsckErrorId.StaleDirtyPtr) : Ids(FsckErrorId.PtrGenNewerThanBucketGen);
                    }
                    case "device":
                        return fs.Space.Layout.TryGet(ptr.Device, out _) ? Ids(FsckErrorId.PtrToMissingBackpointer) : Ids(FsckErrorId.PtrToInvalidDevice);
                    case "offset":
                        return fs.Space.Layout[ptr.Device].CheckDataPointer(ptr.OffsetSectors, e.CoveredSectors) is not null
                            ? Ids(FsckErrorId.PtrToInvalidBucket)
                            : Ids(FsckErrorId.PtrToMissingBackpointer, FsckErrorId.BackpointerToMissingPtr);
                    case "checksum":
                        return $"expect: reads of inode {key.Pos.Inode} at offset {start} fail with EIO (the run no longer matches its checksum; no fsck finding: fsck does not read data)";
                    case "window":
                        // The backpointer's position names the window: it no longer matches the extent's.
                        return Ids(FsckErrorId.PtrToMissingBackpointer, FsckErrorId.BackpointerToMissingPtr);
                    default:
                        return invalid;
                }
        }
    }
}
