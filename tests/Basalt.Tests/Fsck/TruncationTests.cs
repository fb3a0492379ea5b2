// Truncated images (docs/cli.md, "Truncated images"): fsck checks what is there, reports the
// truncation (device_truncated), extends the image back to the size the superblock records, and
// repairs what the missing tail held with the passes' own repairs; -n does the same on an overlay
// over an in-memory extension and changes no byte. Every test cuts a clean image whose btree is
// known (TruncationModel): the keys of nodes before the cut must all survive, exactly those.
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Fsck;

public sealed class TruncationTests(ITestOutputHelper output)
{
    private const int Keys = 3000;

    // What a truncation may cost besides the truncation itself: copies, nodes and the topology around
    // them, and the derived allocation indexes (freespace, accounting, …) whose nodes were lost,
    // which the space passes rebuild from the alloc keys.
    private static readonly FsckErrorId[] s_allowed =
    [
        FsckErrorId.AccountingMismatch, FsckErrorId.FreespaceKeyWrong, FsckErrorId.NeedDiscardKeyWrong, FsckErrorId.BucketGensKeyWrong,
        FsckErrorId.LruEntryBad, FsckErrorId.AllocKeyToMissingLruEntry,
        FsckErrorId.DeviceTruncated, FsckErrorId.SbCopyBadMagic, FsckErrorId.BtreeNodeUnreadable, FsckErrorId.BtreeRootUnreadable,
        FsckErrorId.BtreeNodeTopologyGap, FsckErrorId.BtreeNodeTopologyBadMaxKey, FsckErrorId.BtreeNodeTopologyBadMinKey,
        FsckErrorId.BtreeRangeRebuiltFromScan, FsckErrorId.BtreeRangeRestoredFromOlderVersion,
        // Btree buckets claimed beyond the node area lie among the data: a cut there also takes
        // nodes of the file btrees (the root directory's entries, lost+found), which the file
        // passes then find and repair.
        FsckErrorId.RootMissing, FsckErrorId.LostFoundMissing, FsckErrorId.InodeNlinkWrong, FsckErrorId.DirectoryUnreachable,
        FsckErrorId.InodeUnreachable, FsckErrorId.InodeMissing, FsckErrorId.DirentToMissingInode,
    ];

    private static readonly Lazy<byte[]> s_image = new(() => FsckTestImages.WithKeys(Keys).Contents.ToArray());

    [Fact]
    public void A_cut_through_live_leaves_loses_exactly_the_nodes_past_it_and_fsck_y_restores_the_length()
    {
        var model = Model();
        // Cut through the middle of a leaf's written bytes, among the leaves written after every interior node
        // (copy-on-write writes parents last), so the interior nodes survive and some leaves do not.
        var interiorEnd = model.Nodes.Where(n => n.Level > 0).Max(n => n.Offset);
        var leaves = model.Leaves.Where(l => l.Offset > interiorEnd).OrderBy(l => l.Offset).ToList();
        Assert.True(leaves.Count >= 2, $"no leaves after the interior nodes (last at byte {interiorEnd})");
        var middle = leaves[leaves.Count / 2];
        var cut = middle.Offset + (middle.WrittenBytes / 2 / 512 * 512);
        var (check, repair) = CutAndRepair(model, cut);

        var lost = model.TopmostLost(cut);
        Assert.NotEmpty(lost);
        Assert.All(lost, n => Assert.Equal(0, n.Level));
        Assert.Equal(lost.Select(n => n.Offset).Order(), check.Findings.Where(f => f.Id == FsckErrorId.BtreeNodeUnreadable)
            .Select(f => OffsetIn(f.Where)).Order());
        var first = check.Findings[0];
        Assert.Equal(FsckErrorId.DeviceTruncated, first.Id);
        Assert.Equal("mem.img: device size", first.Where);
        var slot = model.Leaves.Select(l => l.Offset).Where(o => o <= cut).Max();
        Assert.StartsWith($"the image is {cut} bytes, the superblock records {s_image.Value.Length} bytes: the missing bytes {cut}..{s_image.Value.Length - 1} " +
                          $"held node slots at bytes {slot}..", first.Detail, StringComparison.Ordinal);
        Assert.EndsWith($", superblock copy 2 at byte {SuperblockIo.Read(new MemoryBlockDevice(s_image.Value)).Superblock.CopyOffsets[2]}", first.Detail, StringComparison.Ordinal);
        Assert.Contains(check.Findings, f => f.Id == FsckErrorId.SbCopyBadMagic && f.Where.EndsWith("superblock copy 2 at byte 8323072", StringComparison.Ordinal));
        Assert.Equal(FsckExitCodes.Corrected, repair.ExitCode);
    }

    [Fact]
    public void A_cut_of_the_last_sector_is_only_the_truncation()
    {
        var model = Model();
        var size = s_image.Value.Length;
        var (check, _) = CutAndRepair(model, size - 512);
        var finding = Assert.Single(check.Findings);
        Assert.Equal(FsckErrorId.DeviceTruncated, finding.Id);
        Assert.Equal($"the image is {size - 512} bytes, the superblock records {size} bytes: the missing bytes {size - 512}..{size - 1} held no metadata",
            finding.Detail);
    }

    [Fact]
    public void A_cut_at_the_start_of_the_node_area_loses_the_root_and_leaves_an_empty_btree()
    {
        var model = Model();
        var sb = SuperblockIo.Read(new MemoryBlockDevice(s_image.Value)).Superblock;
        var (check, _) = CutAndRepair(model, sb.NodeAreaOffset);
        // Every root is lost: the test btree's and those of the allocation info format created;
        // the space passes then rebuild the freespace runs and the accounting from the alloc keys.
        FsckErrorId[] lost = [FsckErrorId.DeviceTruncated, FsckErrorId.SbCopyBadMagic, .. sb.Roots.Select(_ => FsckErrorId.BtreeRootUnreadable)];
        Assert.Equal(lost, check.Findings.Take(lost.Length).Select(f => f.Id));
        var rebuilt = check.Findings.Skip(lost.Length).Select(f => f.Id).ToList();
        Assert.Contains(FsckErrorId.FreespaceKeyWrong, rebuilt);
        Assert.Contains(FsckErrorId.AccountingMismatch, rebuilt);
        Assert.All(rebuilt, id => Assert.True(id is FsckErrorId.FreespaceKeyWrong or FsckErrorId.AccountingMismatch, id.ToString()));
        Assert.Contains("held node slots at bytes 720896..", check.Findings[0].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_cut_inside_the_journal_of_an_unclean_image_loses_the_entries_past_it_and_keeps_a_prefix()
    {
        // Keys in the journal only: the checkpointed btree is empty, every key needs replay.
        using var device = FsckTestImages.Formatted();
        var written = new SortedDictionary<Bpos, byte[]>();
        // Step mode: no write-back moves last_seq past entries whose nodes the cut takes.
        using (var fs = BasaltFileSystem.Mount(device, new MountOptions { Journal = new Basalt.Journal.JournalOptions { Manual = true } }))
        {
            for (var i = 0; i < 400; i++)
            {
                var pos = new Bpos(3, (ulong)i);
                var value = BitConverter.GetBytes((long)i * 7919);
                fs.Transact(t => t.Set(BtreeId.Test, pos, value), Basalt.Transactions.CommitOptions.Durable);
                written[pos] = value;
            }
            fs.Sync();
            fs.Close(sync: false);
        }
        var sb = SuperblockIo.Read(device).Superblock;
        var ring = sb.JournalBuckets[0];
        var cut = (long)(ring.Start + 1) * sb.BucketSize + 8192;
        var image = device.Contents.ToArray();

        using var cutDevice = new MemoryBlockDevice(image.AsSpan(0, (int)cut), "mem.img");
        var (check, repair) = Run(cutDevice, image.Length);
        Assert.Equal(FsckErrorId.DeviceTruncated, check.Findings[0].Id);
        Assert.StartsWith($"the image is {cut} bytes, the superblock records {image.Length} bytes: the missing bytes {cut}..{image.Length - 1} " +
                          $"held journal buckets {ring.Start + 1}..{ring.End - 1} ({ring.Count - 1} of {ring.Count}), node slots at bytes {sb.NodeAreaOffset}..",
            check.Findings[0].Detail, StringComparison.Ordinal);
        // The entries past the cut were the newest: the journal now ends before them, which no
        // entry that survives contradicts (only the truncation finding says what was lost).
        Assert.All(check.Findings, f => Assert.Contains(f.Id, new[] { FsckErrorId.DeviceTruncated, FsckErrorId.SbCopyBadMagic }));
        Assert.Equal(FsckExitCodes.Corrected, repair.ExitCode);

        // What survives is a prefix of the commits: keys 0..k-1 with the values written.
        var kept = Contents(cutDevice);
        Assert.NotEmpty(kept);
        Assert.True(kept.Count < written.Count, $"all {written.Count} keys survived a cut through the journal");
        Assert.Equal(written.Take(kept.Count).Select(kv => (kv.Key, Convert.ToHexString(kv.Value))),
            kept.Select(kv => (kv.Key, Convert.ToHexString(kv.Value))));
    }

    [Fact]
    public void A_cut_through_needed_journal_entries_is_journal_entries_missing()
    {
        // Session 1 fills the first buckets of the ring and crashes. Session 2 recovers, continues
        // in the buckets after them, checkpoints, writes on past the end of the ring to its start
        // and crashes. Its entries after the checkpoint are needed: the cut takes those at the end
        // of the ring while newer ones at its start survive, so the replay window misses seqs.
        using var device = FsckTestImages.Formatted();
        var written = new Dictionary<Bpos, long>();
        void Write(BasaltFileSystem fs, ulong inode, int from, int count)
        {
            for (var i = from; i < from + count; i++)
            {
                var pos = new Bpos(inode, (ulong)i);
                var value = (i * 31L) + (long)inode;
                fs.Transact(t => t.Set(BtreeId.Test, pos, BitConverter.GetBytes(value)), Basalt.Transactions.CommitOptions.Durable);
                written[pos] = value;
            }
        }
        // Step mode: no reclaim or write-back thread moves last_seq while the sessions write.
        var manual = new MountOptions { Journal = new Basalt.Journal.JournalOptions { Manual = true } };
        using (var fs = BasaltFileSystem.Mount(device, manual))
        {
            Write(fs, 4, 0, 600);
            fs.Close(sync: false);
        }
        using (var fs = BasaltFileSystem.Mount(device, manual))
        {
            Write(fs, 6, 0, 200);
            fs.Checkpoint();
            Write(fs, 6, 200, 350);
            fs.Close(sync: false);
        }
        var sb = SuperblockIo.Read(device).Superblock;
        var ring = sb.JournalBuckets[0];
        var context = new Basalt.Journal.JournalReadContext(Basalt.Journal.JournalFormat.MagicFor(sb.Uuid), sb.BlockSize, sb.NodeSize);
        var scan = Basalt.Journal.JournalScan.Scan(device, Basalt.Journal.JournalRing.Of(sb), context);
        // The replay window starts at the newest flush entry's last_seq.
        var lastSeq = scan.Entries.Values.Where(e => e.IsFlush).MaxBy(e => e.Seq)!.LastSeq;
        var firstNeeded = scan.Entries[Math.Max(lastSeq, sb.CleanInfo.JournalSeq + 1)].Location.RingIndex;
        var newest = scan.Entries.MaxBy(e => e.Key).Value.Location.RingIndex;
        output.WriteLine($"needed entries from ring bucket {firstNeeded} to {newest} of {ring.Count}");
        Assert.True(newest < firstNeeded, "the needed entries do not wrap around the ring");

        var cut = (((long)ring.Start + firstNeeded) * sb.BucketSize) + 4096;
        var image = device.Contents.ToArray();
        using var cutDevice = new MemoryBlockDevice(image.AsSpan(0, (int)cut), "mem.img");
        var (check, _) = Run(cutDevice, image.Length);
        Assert.Equal(FsckErrorId.DeviceTruncated, check.Findings[0].Id);
        var missing = Assert.Single(check.Findings, f => f.Id == FsckErrorId.JournalEntriesMissing);
        Assert.Equal(FsckPassId.CheckJournal, missing.Pass);
        // Whatever survives was written, with its value, and the entries past the cut are lost.
        var kept = Contents(cutDevice);
        Assert.All(kept, kv => Assert.Equal(written[kv.Key], BitConverter.ToInt64(kv.Value)));
        Assert.True(kept.Count < written.Count);
    }

    [Fact]
    public void Random_cuts_keep_every_key_of_the_nodes_before_the_cut()
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        var model = Model();
        var sb = SuperblockIo.Read(new MemoryBlockDevice(s_image.Value)).Superblock;
        var usedEnd = model.Nodes.Max(n => n.Offset) + model.NodeSize;
        var interiorEnd = model.Nodes.Where(n => n.Level > 0).Max(n => n.Offset) + model.NodeSize;
        for (var round = 0; round < LongTests.Scale(4); round++)
        {
            // Mostly inside the used node slots (often past every interior node, so some leaves
            // survive), sometimes anywhere after the first copy.
            var low = random.Next(4) switch
            {
                0 => SuperblockFormat.SecondCopyOffset,
                1 => sb.NodeAreaOffset,
                _ => interiorEnd,
            };
            var high = random.Next(4) == 0 ? s_image.Value.Length : usedEnd;
            var cut = random.NextInt64(low / 512, high / 512) * 512;
            output.WriteLine($"round {round}: cut at byte {cut}");
            var (check, _) = CutAndRepair(model, cut);
            Assert.Equal(FsckErrorId.DeviceTruncated, check.Findings[0].Id);
        }
    }

    [Fact]
    public void A_device_that_cannot_be_extended_is_reported_and_every_repair_is_held()
    {
        var model = Model();
        var cut = model.Leaves.Max(l => l.Offset);
        using var memory = new MemoryBlockDevice(s_image.Value.AsSpan(0, (int)cut), "mem.img");
        var before = memory.Contents.ToArray();
        // A decorator that is not an IExtensibleDevice stands for a block device.
        using var device = new FaultyBlockDevice(memory, ownsInner: false);

        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes, CheckWriteOnce = true });
        Assert.True(memory.Contents.SequenceEqual(before), "a run that holds its repairs wrote to the device");
        Assert.Equal(FsckErrorId.BlockDeviceTooSmall, repair.Findings[0].Id);
        Assert.Equal(FsckOutcome.NoRepair, repair.Findings[0].Outcome);
        Assert.StartsWith($"the device is {cut} bytes, the superblock records {s_image.Value.Length} bytes", repair.Findings[0].Detail, StringComparison.Ordinal);
        Assert.True(repair.Findings.Count > 2, string.Join("\n", repair.Findings.Select(f => f.ToText())));
        Assert.All(repair.Findings.Skip(1), f => Assert.Equal(FsckOutcome.Held, f.Outcome));
        Assert.Equal(FsckExitCodes.Uncorrected, repair.ExitCode);
        Assert.False(repair.CountersPersisted);
        Assert.Contains("repairs are held", repair.Findings[1].ToText(), StringComparison.Ordinal);

        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.Equal(FsckTestImages.Keyed(repair), FsckTestImages.Keyed(check));
        Assert.Equal(repair.Findings.Select(f => f.Outcome), check.Findings.Select(f => f.Outcome));
    }

    [Fact]
    public void Declining_the_extension_holds_every_later_repair()
    {
        var model = Model();
        var cut = model.Leaves.Max(l => l.Offset);
        using var device = new MemoryBlockDevice(s_image.Value.AsSpan(0, (int)cut), "mem.img");
        var before = device.Contents.ToArray();
        var asked = new List<FsckErrorId>();
        var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions
        {
            Mode = FsckMode.Ask,
            Ask = f =>
            {
                asked.Add(f.Id);
                return FsckAnswer.No;
            },
        });
        Assert.Equal([FsckErrorId.DeviceTruncated], asked);
        Assert.Equal(FsckOutcome.NotFixed, report.Findings[0].Outcome);
        Assert.All(report.Findings.Skip(1), f => Assert.Equal(FsckOutcome.Held, f.Outcome));
        Assert.True(device.Contents.SequenceEqual(before), "a declined extension wrote to the device");
        Assert.Equal(before.Length, device.Size);
    }

    [Fact]
    public void Preen_extends_the_image_and_leaves_the_repairs_that_need_yes()
    {
        var model = Model();
        var cut = model.Leaves.Max(l => l.Offset);
        using var device = new MemoryBlockDevice(s_image.Value.AsSpan(0, (int)cut), "mem.img");
        var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Preen, CheckWriteOnce = true });
        Assert.Equal(FsckErrorId.DeviceTruncated, report.Findings[0].Id);
        Assert.Equal(FsckOutcome.Fixed, report.Findings[0].Outcome);
        Assert.Equal(s_image.Value.Length, device.Size);
        Assert.Contains(report.Findings, f => f.Id == FsckErrorId.BtreeNodeUnreadable && f.Outcome == FsckOutcome.NotFixed);
        Assert.Equal(FsckExitCodes.Corrected | FsckExitCodes.Uncorrected, report.ExitCode);
        // What is left is what -y repairs; the truncation is not found again.
        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes, CheckWriteOnce = true });
        Assert.DoesNotContain(repair.Findings, f => f.Id == FsckErrorId.DeviceTruncated);
        Assert.True(Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly }).Clean);
        Assert.Equal(model.Survivors(cut).Keys, Contents(device).Keys);
    }

    [Fact]
    public void A_read_only_mount_of_a_truncated_image_reads_what_is_there_and_a_writable_one_is_refused()
    {
        var model = Model();
        var leaves = model.Leaves.OrderBy(l => l.Offset).ToList();
        var cut = leaves[^1].Offset;
        using var device = new MemoryBlockDevice(s_image.Value.AsSpan(0, (int)cut), "mem.img");
        var e = Assert.Throws<Basalt.Diagnostics.BasaltException>(() => BasaltFileSystem.Mount(device, new MountOptions()));
        Assert.Equal(Basalt.Diagnostics.ErrorCode.ShortDevice, e.Code);
        Assert.Equal($"mem.img: truncated: the image is {cut} bytes, the superblock records {s_image.Value.Length} bytes; " +
                     "run basalt fsck -y to extend it and repair what was lost", e.Message);

        using var fs = BasaltFileSystem.Mount(device, new MountOptions { ReadOnly = true });
        Assert.NotNull(fs.Truncation);
        Assert.Equal(s_image.Value.Length, fs.Device.Size);
        var survivor = model.Survivors(cut).First();
        Assert.True(fs.Btrees[BtreeId.Test].TryGet(survivor.Key, out var value));
        Assert.Equal(survivor.Value, value);
        var lost = leaves[^1].Keys.First().Key;
        var read = Assert.Throws<Basalt.Diagnostics.BasaltException>(() => fs.Btrees[BtreeId.Test].TryGet(lost, out _));
        Assert.Contains($"the image is truncated: it is {cut} bytes, the superblock records {s_image.Value.Length} bytes", read.Message, StringComparison.Ordinal);
    }

    private static TruncationModel Model() => TruncationModel.Of(new MemoryBlockDevice(s_image.Value, "mem.img"));

    /// <summary>
    /// Cuts the model image at <paramref name="cut"/>, runs -n (no byte changed), -y (the same
    /// findings, the length restored) and -n again (clean), and checks that the btree then holds
    /// exactly the keys the model says survive.
    /// </summary>
    private (FsckReport Check, FsckReport Repair) CutAndRepair(TruncationModel model, long cut)
    {
        using var device = new MemoryBlockDevice(s_image.Value.AsSpan(0, (int)cut), "mem.img");
        var result = Run(device, s_image.Value.Length);
        Assert.All(result.Check.Findings, f => Assert.Contains(f.Id, s_allowed));
        var survivors = model.Survivors(cut);
        var kept = Contents(device);
        // Every key of a leaf before the cut survives as it was; any other key kept lies in a lost
        // leaf's range and came back from an older version of it, which fsck says.
        foreach (var (pos, value) in survivors)
        {
            Assert.True(kept.TryGetValue(pos, out var now), $"cut at byte {cut}: key {pos.ToText()} of an intact leaf was lost");
            Assert.Equal(Convert.ToHexString(value), Convert.ToHexString(now));
        }
        var restored = kept.Keys.Where(p => !survivors.ContainsKey(p)).ToList();
        Assert.All(restored, p => Assert.True(model.InLostLeaf(p, cut), $"cut at byte {cut}: key {p.ToText()} kept outside every lost leaf"));
        if (restored.Count > 0)
            Assert.Contains(result.Check.Findings, f => f.Id == FsckErrorId.BtreeRangeRestoredFromOlderVersion);
        output.WriteLine($"cut at byte {cut}: {result.Check.Findings.Count} findings, {survivors.Count} of {model.AllKeys.Count} keys kept, {restored.Count} restored from older versions");
        return result;
    }

    /// <summary>-n (nothing changes), -y (the same findings; the device is <paramref name="size"/> bytes again), -n (clean).</summary>
    private (FsckReport Check, FsckReport Repair) Run(MemoryBlockDevice device, long size)
    {
        var before = device.Contents.ToArray();
        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly, CheckWriteOnce = true });
        foreach (var f in check.Findings)
            output.WriteLine($"  {f.ToText()}");
        Assert.True(device.Contents.SequenceEqual(before), "fsck -n changed the device");
        Assert.Equal(FsckExitCodes.Uncorrected, check.ExitCode);
        Assert.All(check.Findings, f => Assert.Equal(FsckOutcome.WouldFix, f.Outcome));

        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes, CheckWriteOnce = true });
        Assert.Equal(FsckTestImages.Keyed(check), FsckTestImages.Keyed(repair));
        Assert.Equal(size, device.Size);
        Assert.True(repair.CountersPersisted);

        var again = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly, CheckWriteOnce = true });
        Assert.True(again.Clean, string.Join("\n", again.Findings.Select(f => f.ToText())));
        return (check, repair);
    }

    private static SortedDictionary<Bpos, byte[]> Contents(IBlockDevice device)
    {
        using var fs = BasaltFileSystem.Mount(device, new MountOptions { ReadOnly = true });
        return BtreeAssertions.Contents(fs.Btrees[BtreeId.Test]);
    }

    private static long OffsetIn(string where)
    {
        var at = where.IndexOf("node at offset ", StringComparison.Ordinal) + "node at offset ".Length;
        var end = where.IndexOf(' ', at);
        return long.Parse(where[at..end], System.Globalization.CultureInfo.InvariantCulture);
    }
}
