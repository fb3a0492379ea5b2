// Raw node reads for the btree fsck passes: a node is read straight from its slot on the device
// and validated by the node reader, never through the node cache, so a check sees exactly what
// is on disk. Memory stays bounded by the tree's depth: one node buffer per level, reused.
using Basalt.Btree.Node;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Btree;

/// <summary>What a raw read of one node produced.</summary>
internal sealed class CheckedNode
{
    /// <summary>False when the node cannot be used (bad node, incompatible, I/O error).</summary>
    public required bool Ok { get; init; }

    /// <summary>Why the read failed (one line); empty when <see cref="Ok"/>.</summary>
    public string Failure { get; init; } = "";

    /// <summary>The finding that made the read fail, when there is one.</summary>
    public FsckErrorId? FailureId { get; init; }

    public byte Level { get; init; }
    public uint Generation { get; init; }
    public ulong Seq { get; init; }
    public Bpos HeaderMin { get; init; }
    public Bpos HeaderMax { get; init; }

    /// <summary>The node's keys after validation (all bsets merged, newest wins, invalid keys dropped).</summary>
    public KeyRun Keys { get; init; } = KeyRun.Empty;

    public IReadOnlyList<NodeFinding> Findings { get; init; } = [];

    /// <summary>The read repaired something in memory: the node should be rewritten.</summary>
    public bool NeedsRewrite { get; init; }

    /// <summary>Bsets found beyond the pointer's sectors_written (a crash trace, not an error).</summary>
    public int IgnoredBsetsBeyondWritten { get; init; }

    /// <summary>Position of the last key that is not a deletion; null when there is none.</summary>
    public Bpos? LastLiveKey()
    {
        var entries = Keys.Entries;
        for (var i = entries.Length - 1; i >= 0; i--)
        {
            if (!entries[i].Key.IsDeletion)
                return entries[i].Pos;
        }
        return null;
    }

    /// <summary>Keys in <see cref="Keys"/> that are not deletions.</summary>
    public int LiveKeyCount()
    {
        var n = 0;
        foreach (ref readonly var e in Keys.Entries)
        {
            if (!e.Key.IsDeletion)
                n++;
        }
        return n;
    }
}

internal sealed class CheckNodeReader
{
    private readonly IBlockDevice _device;
    private readonly BtreeGeometry _geometry;
    private readonly byte[]?[] _buffers = new byte[FormatLimits.MaxBtreeDepth + 1][];

    public CheckNodeReader(IBlockDevice device, BtreeGeometry geometry)
    {
        _device = device;
        _geometry = geometry;
    }

    /// <summary>Where a finding is, as the btree passes print it: btree, level, node offset (bytes) and range.</summary>
    public static string Where(BtreeId btree, int level, BtreePtrValue ptr, Bpos min, Bpos max) =>
        $"{btree.ToText()} level {level} node at offset {(ptr.Ptrs.Count > 0 ? ptr.Ptrs[0].OffsetBytes : -1)} [{min.ToText()}..{max.ToText()}]";

    /// <summary>
    /// Reads the node <paramref name="ptr"/> points to, expected at <paramref name="level"/> of
    /// <paramref name="btree"/> with the range [ptr.MinKey, <paramref name="max"/>]. With
    /// <paramref name="anyLevel"/> a header level other than the expected one is not a failure
    /// (topology reports it as its own finding).
    /// </summary>
    public CheckedNode Read(BtreeId btree, int level, Bpos max, BtreePtrValue ptr, bool anyLevel = false)
    {
        if (ptr.Ptrs.Count == 0)
            return new CheckedNode { Ok = false, Failure = "pointer has no device pointer" };
        var offset = ptr.Ptrs[0].OffsetBytes;
        if (offset < 0 || offset + _geometry.NodeSize > _device.Size)
            return new CheckedNode { Ok = false, Failure = $"node offset {offset} is outside the device" };
        var buffer = BufferFor(level);
        try
        {
            _device.Read(offset, buffer);
        }
        catch (BasaltException ex) when (ex.Class == ErrorClass.Io)
        {
            return new CheckedNode { Ok = false, Failure = $"read failed: {ex.Message}" };
        }
        return Decode(buffer, btree, level, max, ptr, anyLevel);
    }

    private byte[] BufferFor(int level)
    {
        var index = Math.Clamp(level, 0, FormatLimits.MaxBtreeDepth);
        return _buffers[index] ??= new byte[_geometry.NodeSize];
    }

    private CheckedNode Decode(byte[] slot, BtreeId btree, int level, Bpos max, BtreePtrValue ptr, bool anyLevel)
    {
        // With anyLevel the header's own level is what the read expects; the level byte is covered
        // by the first record's checksum, so a damaged one still fails the read.
        var expectedLevel = anyLevel ? slot[BtreeNodeFormat.NodeLevelOffset] : (byte)level;
        var context = new NodeReadContext(btree, expectedLevel, max, ptr, _geometry.NodeMagic, _geometry.NodeSize,
            _geometry.BlockSize, _geometry.Version, _geometry.VersionMin, _device.Size);
        var result = BtreeNodeReader.Read(slot, context);
        if (!result.Ok)
        {
            var cause = result.Findings.Count > 0 ? result.Findings[^1] : (NodeFinding?)null;
            return new CheckedNode
            {
                Ok = false,
                Failure = cause is { } f ? $"{FsckCatalogue.NameOf(f.Id)}: {f.Detail}" : $"read failed ({result.FailureClass})",
                FailureId = cause?.Id,
                Findings = result.Findings,
            };
        }
        // A first record that failed its checksum (no replica to retry) leaves a node the reader
        // can only describe from its pointer, with no keys: for the checks it is unreadable.
        foreach (var f in result.Findings)
        {
            if (f.SectorOffset == 0 && f.Class == NodeErrorClass.WantRetry)
            {
                return new CheckedNode
                {
                    Ok = false,
                    Failure = $"{FsckCatalogue.NameOf(f.Id)} in the header record: {f.Detail}",
                    FailureId = f.Id,
                    Findings = result.Findings,
                };
            }
        }
        // The header as written: with a RangeUpdated pointer the result's header carries the pointer's range.
        var written = BtreeNodeFormat.ReadNodeHeader(slot);
        return new CheckedNode
        {
            Ok = true,
            Level = result.Header.Level,
            Generation = result.Header.Generation,
            Seq = result.Header.Seq,
            HeaderMin = written.MinKey,
            HeaderMax = written.MaxKey,
            Keys = result.Keys,
            Findings = result.Findings,
            NeedsRewrite = result.NeedsRewrite,
            IgnoredBsetsBeyondWritten = result.IgnoredBsetsBeyondWritten,
        };
    }
}
