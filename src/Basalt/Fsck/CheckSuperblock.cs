// check_superblock: the first fsck pass. Reads every superblock copy; each copy that is
// unreadable, damaged, invalid or older than the newest good one is reported (SbCopy* ids), and
// so is a good copy with the newest seq whose content differs from the winner's (SbCopiesDiffer:
// of the good copies with the highest seq the content most copies hold wins, see SuperblockIo.Read).
// When the reporter says so, the copy is rewritten from the winner (same seq, so the copies agree
// again). It also checks the btree roots the superblock records: a root that points outside the
// node area, or at a misaligned slot, is reported (SbRootInvalid) and, when repaired, dropped so
// it does not lead every later pass into garbage; check_topology then rebuilds its btree from the
// node scan (as for an unreadable root, and with the same finding whether or not the drop was
// accepted), unless the journal's replay brought a newer root.
//
// The trace of a crash during a superblock write is not a finding: the copies before the
// frontier are new, the one at it may be torn, the rest are one seq older. SuperblockIo.Read
// recognises exactly those states (InterruptedWrite: a torn copy's new sectors must be the new
// version's bytes and its old sectors must match the sector checksums the new version recorded
// of the one it replaced), so a flipped bit or any other damage, in any copy, stays a finding.
// Such a trace is counted, and a writing run finishes the write (rewrites the copies from the
// winner) without a finding.
//
// A device shorter than the size the superblock records is reported first (device_truncated, or
// block_device_too_small): an image is extended back to that size before the copies are checked,
// so copies that lay in the missing tail read as zeroes and are rewritten like any damaged copy;
// otherwise every later repair is held (Fsck.cs).
//
// No good copy at all is not a finding but an operational error: there is nothing to repair from.
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Superblocks;

namespace Basalt.Fsck;

public static class CheckSuperblock
{
    public static void Run(FsckContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var device = context.Device;
        var reporter = context.Reporter;
        var read = SuperblockIo.Read(device);
        context.InitialSuperblockRead ??= read;
        if (context.Truncation is { IsTruncated: true } truncation)
        {
            read = CheckTruncation(context, truncation, read);
            device = context.Device;
        }
        var sb = read.Superblock;

        var interrupted = read.InterruptedWrite is not null;
        if (interrupted)
        {
            reporter.Count("check_superblock: superblock write interrupted by a crash (copies finished)");
            if (context.Options.Writes)
                SuperblockIo.FinishInterruptedWrite(device, read);
        }

        foreach (var copy in read.Copies)
        {
            if (copy.FsckError is not { } id || interrupted)
                continue;
            var where = $"{device.Name}: superblock copy {copy.Index} at byte {copy.Offset}";
            var detail = copy.Status == CopyStatus.Stale
                ? $"seq {copy.Seq} is older than the newest good copy's seq {sb.Seq} (copy {read.UsedCopy})"
                : copy.Detail;
            if (reporter.Report(id, where, detail))
                SuperblockIo.WriteCopy(device, sb, copy.Index);
        }

        var roots = sb;
        foreach (var root in sb.Roots)
        {
            var problem = RootProblem(sb, root);
            if (problem is null)
                continue;
            context.InvalidRoots[root.Btree] = (root, problem);
            if (reporter.Report(FsckErrorId.SbRootInvalid, $"{device.Name}: superblock root of btree {root.Btree.ToText()}",
                    $"{problem}; dropped, and check_topology rebuilds the btree from the node scan"))
                roots = roots.WithRoot(root.Btree, null);
        }
        if (!ReferenceEquals(roots, sb))
            sb = SuperblockIo.Write(device, roots, read.SectorChecksums, DateTimeOffset.UtcNow);

        context.SuperblockRead = ReferenceEquals(roots, read.Superblock) ? read : SuperblockIo.Read(device);
    }

    /// <summary>
    /// Reports a device shorter than the superblock records. An image is extended (for real in a
    /// writing run, in memory in a check-only run), after which the copies are read again: those
    /// that lay in the tail now read as zeroes and are repaired like any zeroed copy. A block
    /// device, or a declined extension, holds every later repair. Returns the superblock read the
    /// rest of the pass uses.
    /// </summary>
    private static SuperblockReadResult CheckTruncation(FsckContext context, TruncatedDevice truncation, SuperblockReadResult read)
    {
        var reporter = context.Reporter;
        var where = $"{context.Device.Name}: device size";
        var detail = $"{truncation.ShortfallText}: {DeviceTruncation.MissingText(read, truncation.AvailableSize)}";
        if (!truncation.CanExtend)
        {
            reporter.Report(FsckErrorId.BlockDeviceTooSmall, where, detail);
            context.HoldRepairs();
            return read;
        }
        if (!reporter.Report(FsckErrorId.DeviceTruncated, where, detail))
        {
            context.HoldRepairs();
            return read;
        }
        if (context.Options.Writes)
        {
            try
            {
                truncation.Extend();
            }
            catch (Exception e) when (e is IOException or BasaltException { Class: ErrorClass.Io })
            {
                // The image cannot grow to the recorded size (a damaged size past what the host
                // filesystem allows): the rest of the run checks on an overlay and repairs nothing.
                reporter.Count($"check_superblock: image not extended ({e.Message})");
                context.HoldRepairs();
                truncation.ExtendInMemory();
            }
        }
        else
        {
            truncation.ExtendInMemory();
        }
        return SuperblockIo.Read(context.Device);
    }

    /// <summary>Why a root cannot be followed, or null when it is plausible.</summary>
    internal static string? RootProblem(Superblock sb, BtreeRoot root)
    {
        if (root.Level > FormatLimits.MaxBtreeLevel)
            return $"level {root.Level} is above the maximum {FormatLimits.MaxBtreeLevel}";
        if (root.Ptr.Ptrs.Count == 0)
            return "the root pointer has no replica";
        if (root.Ptr.SectorsWritten == 0 || root.Ptr.SectorsWritten > sb.NodeSize / FormatLimits.SectorSize)
            return $"sectors_written {root.Ptr.SectorsWritten} is outside 1..{sb.NodeSize / FormatLimits.SectorSize}";
        foreach (var p in root.Ptr.Ptrs)
        {
            if (p.Device != sb.DeviceIndex)
                return $"replica on device {p.Device}, but this filesystem has only device {sb.DeviceIndex}";
            var offset = (long)Math.Min(p.OffsetSectors, (ulong)(long.MaxValue / FormatLimits.SectorSize)) * FormatLimits.SectorSize;
            var bucket = (ulong)(offset / sb.BucketSize);
            if (bucket < sb.Member.FirstBucket || bucket >= sb.Member.Nbuckets)
                return $"node at byte {offset} lies outside buckets {sb.Member.FirstBucket}..{sb.Member.Nbuckets - 1}";
            if (sb.JournalBuckets.Any(r => bucket >= r.Start && bucket < r.End))
                return $"node at byte {offset} lies in journal bucket {bucket}";
            if (offset % sb.NodeSize != 0)
                return $"node at byte {offset} is not on a node slot boundary (node size {sb.NodeSize})";
        }
        return null;
    }
}
