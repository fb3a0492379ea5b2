// check_btree_nodes (fsck pass FsckPassId.CheckBtreeNodes): every node of every btree, leaves
// included, is read raw from the device and validated by the node reader (DESIGN §2 invariant 1).
// Each finding of the read is reported with its own id; when the reporter accepts, a node the
// read repaired in memory (keys dropped, a bad bset cut off, a missing tail) is rewritten from
// what validated. Bsets beyond the parent's sectors_written are the normal trace of a crash:
// counted through IFsckReporter.Count, not reported.
//
// The walk is depth first with one node buffer per level, so memory is bounded by the tree's
// depth, not its size. It runs after check_topology: a node that cannot be read at all is that
// pass's finding (btree_node_unreadable) and is skipped here rather than reported twice.
using Basalt.Format;

namespace Basalt.Btree;

public static class CheckBtreeNodes
{
    /// <summary>Name under which bsets beyond sectors_written are counted.</summary>
    public const string IgnoredBsetsCounter = "bsets beyond sectors_written ignored";

    /// <summary>
    /// Runs check_btree_nodes over every btree of <paramref name="engine"/>: each node finding goes
    /// to <paramref name="reporter"/>; accepted ones get the node rewritten through the engine.
    /// </summary>
    /// <param name="makeDurable">Makes the engine's edits durable and its nodes on disk current (the mount's checkpoint).</param>
    /// <param name="onDroppedRecords">
    /// Told, before any rewrite, of the raw records a leaf loses to a bset that failed its checksum
    /// (the read drops that bset and every later one): the keys in them may still be salvaged.
    /// </param>
    public static BtreeCheckResult Run(BtreeEngine engine, Action makeDurable, IFsckReporter reporter, CancellationToken ct,
        Action<DroppedRecords>? onDroppedRecords = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(makeDurable);
        return Run(new EngineCheckTarget(engine, makeDurable), reporter, ct, onDroppedRecords);
    }

    internal static BtreeCheckResult Run(IBtreeCheckTarget target, IFsckReporter reporter, CancellationToken ct,
        Action<DroppedRecords>? onDroppedRecords = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(reporter);
        var counters = new BtreeCheckCounters();
        var reader = new CheckNodeReader(target.Device, target.Geometry);
        var rewrites = new List<(BtreeId Btree, int Level, Bpos Pos)>();

        foreach (var root in target.Roots())
        {
            ct.ThrowIfCancellationRequested();
            // The root covers [min, max]; a header saying otherwise is check_topology's finding.
            var rootPtr = root.Ptr.With(minKey: Bpos.Min, flags: root.Ptr.Flags | BtreePtrFlags.RangeUpdated);
            CheckNode(root.Btree, root.Level, Bpos.Max, rootPtr);
        }

        foreach (var (btree, level, pos) in rewrites)
        {
            ct.ThrowIfCancellationRequested();
            target.RewriteNode(btree, level, pos);
        }
        if (rewrites.Count > 0)
            target.Sync();
        return counters.ToResult();

        void CheckNode(BtreeId btree, int level, Bpos max, BtreePtrValue ptr)
        {
            ct.ThrowIfCancellationRequested();
            var read = reader.Read(btree, level, max, ptr);
            counters.NodesVisited++;
            if (!read.Ok)
                return;
            if (read.IgnoredBsetsBeyondWritten > 0)
                reporter.Count(IgnoredBsetsCounter, read.IgnoredBsetsBeyondWritten);

            var where = CheckNodeReader.Where(btree, level, ptr, ptr.MinKey, max);
            var rewrite = false;
            foreach (var finding in read.Findings)
            {
                counters.Findings++;
                if (!reporter.Report(finding.Id, where, $"{finding.Detail} (record at sector {finding.SectorOffset})"))
                    continue;
                counters.Repairs++;
                if (finding.Class is NodeErrorClass.Fixable or NodeErrorClass.WantRetry)
                    rewrite = true;
            }
            if (rewrite)
                rewrites.Add((btree, level, max));
            if (onDroppedRecords is not null && level == 0 && ptr.Ptrs.Count > 0)
            {
                foreach (var finding in read.Findings)
                {
                    if (finding.Id != FsckErrorId.BsetBadChecksum || finding.SectorOffset <= 0 || finding.SectorOffset >= ptr.SectorsWritten)
                        continue;
                    var bytes = new byte[(ptr.SectorsWritten - finding.SectorOffset) * FormatLimits.SectorSize];
                    try
                    {
                        target.Device.Read(ptr.Ptrs[0].OffsetBytes + ((long)finding.SectorOffset * FormatLimits.SectorSize), bytes);
                    }
                    catch (Exception e) when (e is IOException or Diagnostics.BasaltException { Class: Diagnostics.ErrorClass.Io })
                    {
                        break; // nothing to salvage from bytes that cannot be read
                    }
                    onDroppedRecords(new DroppedRecords(btree, ptr.Seq, target.Geometry.BlockSize, ptr.MinKey, max, bytes));
                    break;
                }
            }

            if (level == 0)
                return;
            // Keys of this node stay alive while its children are walked: one run per level.
            var keys = read.Keys;
            for (var i = 0; i < keys.Count; i++)
            {
                ref readonly var e = ref keys[i];
                if (e.Key.Type != KeyType.BtreePtr || !BtreePtrValue.TryRead(keys.ValueOf(i), out var child, out _))
                    continue;
                CheckNode(btree, level - 1, e.Key.Pos, child);
            }
        }
    }
}

/// <summary>
/// The raw records a leaf lost to a bset that failed its checksum: from that record to the node's
/// written end, as they lie on the device (<paramref name="Seq"/> is the node's, which every record
/// of it carries).
/// </summary>
public sealed record DroppedRecords(BtreeId Btree, ulong Seq, int BlockSize, Bpos Min, Bpos Max, byte[] Bytes)
{
    /// <summary>
    /// The last key each position of the nodes' ranges held in <paramref name="dropped"/> (later
    /// records win), for a salvage to prove or leave.
    /// </summary>
    public static SortedDictionary<Bpos, (Bkey Key, byte[] Value)> LatestKeys(IEnumerable<DroppedRecords> dropped)
    {
        var latest = new SortedDictionary<Bpos, (Bkey Key, byte[] Value)>();
        foreach (var records in dropped)
        {
            foreach (var (key, value) in records.Keys())
            {
                if (key.Pos >= records.Min && key.Pos <= records.Max)
                    latest[key.Pos] = (key, value);
            }
        }
        return latest;
    }

    /// <summary>
    /// The keys the records hold, oldest record first, as far as their headers still describe them:
    /// a record whose bset header no longer carries the node's seq ends the walk, and a key whose
    /// header is malformed ends its record. Nothing here is verified; a caller keeps only what it
    /// can prove by other means.
    /// </summary>
    public List<(Bkey Key, byte[] Value)> Keys()
    {
        var keys = new List<(Bkey, byte[])>();
        var at = 0;
        while (at + Node.BtreeNodeFormat.EntryKeysOffset <= Bytes.Length)
        {
            var bset = Bytes.AsSpan(at + Node.BtreeNodeFormat.EntryBsetOffset);
            if (System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bset[Node.BtreeNodeFormat.BsetSeqOffset..]) != Seq)
                break;
            var u64s = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bset[Node.BtreeNodeFormat.BsetU64sOffset..]);
            var start = at + Node.BtreeNodeFormat.EntryKeysOffset;
            var end = (int)Math.Min(Bytes.Length, start + ((long)u64s * 8));
            var k = start;
            while (k + BkeyFormat.HeaderSize <= end)
            {
                var view = new BkeyView(Bytes.AsSpan(k, end - k));
                if (!view.IsWellFormed(end - k))
                    break;
                keys.Add((view.Key, view.Value.ToArray()));
                k += view.TotalBytes;
            }
            var next = (int)Math.Min(int.MaxValue, (end + (long)BlockSize - 1) / BlockSize * BlockSize);
            if (next <= at)
                break;
            at = next;
        }
        return keys;
    }
}
