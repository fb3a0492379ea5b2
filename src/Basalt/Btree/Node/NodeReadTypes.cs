// The inputs and outputs of a node read: what the parent pointer says the node must be, the
// findings validation made (each an fsck error id with its read class) and the merged keys.
using Basalt.Format;

namespace Basalt.Btree.Node;

/// <summary>What the reader expects of a node: taken from the pointer that leads to it and the superblock.</summary>
/// <param name="MaxKey">The pointer key's position: the node's max key.</param>
/// <param name="Magic">The filesystem's node magic.</param>
/// <param name="Version">The superblock's version; 0 means <see cref="FormatVersion.Current"/>.</param>
/// <param name="VersionMin">The superblock's version_min; 0 means <see cref="FormatVersion.Min"/>.</param>
/// <param name="DeviceSize">Device size in bytes for pointer checks; 0 when unknown.</param>
/// <param name="HaveRetry">Another replica can still be read: retry classes fail the read instead of being downgraded.</param>
/// <param name="IsBlacklisted">Journal seqs written but never flushed before a crash: later bsets carrying one are ignored and counted.</param>
public readonly record struct NodeReadContext(BtreeId Btree, byte Level, Bpos MaxKey, BtreePtrValue Ptr,
    ulong Magic, int NodeSize, int BlockSize, ushort Version, ushort VersionMin, long DeviceSize = 0, bool HaveRetry = false,
    Func<ulong, bool>? IsBlacklisted = null);

/// <summary>One problem found while reading a node: its catalogue id and class, the record's sector and a detail line.</summary>
public readonly record struct NodeFinding(FsckErrorId Id, NodeErrorClass Class, int SectorOffset, string Detail)
{
    /// <summary>Byte offset of the record inside the node, as every offset is printed.</summary>
    public int ByteOffset => SectorOffset * FormatLimits.SectorSize;

    public string ToText() => $"{FsckCatalogue.NameOf(Id)} ({Class}) in the record at byte {ByteOffset} of the node: {Detail}";

    public override string ToString() => ToText();
}

/// <summary>The outcome of <see cref="BtreeNodeReader.Read"/>.</summary>
public sealed class NodeReadResult
{
    /// <summary>The node is usable, possibly after in-memory fixes (dropped keys or bsets).</summary>
    public required bool Ok { get; init; }

    /// <summary>When not <see cref="Ok"/>: WantRetry/MustRetry (read another replica), BadNode or Incompatible.</summary>
    public NodeErrorClass? FailureClass { get; init; }

    /// <summary>The node header. With a RangeUpdated pointer its range is the pointer's.</summary>
    public NodeHeader Header { get; init; }

    /// <summary>All surviving bsets merged: newest wins, deletion markers removed, every key validated.</summary>
    public KeyRun Keys { get; init; } = KeyRun.Empty;

    public IReadOnlyList<NodeFinding> Findings { get; init; } = [];

    /// <summary>Something was wrong or dropped: the node should be rewritten (COW) once writes are allowed.</summary>
    public bool NeedsRewrite { get; init; }

    /// <summary>Sectors covered by this node's records from offset 0, up to where the walk stopped.</summary>
    public int SectorsFound { get; init; }

    /// <summary>Records of this node walked inside sectors_written (including ones treated as empty).</summary>
    public int BsetCount { get; init; }

    /// <summary>Records of this node past the pointer's sectors_written: the normal trace of a crash, not a finding.</summary>
    public int IgnoredBsetsBeyondWritten { get; init; }

    /// <summary>Bsets after the first whose journal seq is blacklisted: ignored (a crash trace), counted, not findings.</summary>
    public int BlacklistedBsets { get; init; }

    /// <summary>Highest journal seq among the merged bsets.</summary>
    public ulong MaxJournalSeq { get; init; }

    public string ToText()
    {
        var head = Ok
            ? $"ok: {Header.ToText()}, {Keys.Count} keys, {BsetCount} bsets, {SectorsFound * FormatLimits.SectorSize} bytes"
            : $"failed ({FailureClass}): {Findings.Count} findings";
        return Findings.Count == 0 ? head : head + Environment.NewLine + string.Join(Environment.NewLine, Findings.Select(f => "  " + f.ToText()));
    }

    public override string ToString() => ToText();
}
