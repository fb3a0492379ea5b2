using Basalt.Cli;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Superblocks;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.Tests.Fsck;

public sealed class FsckDriverTests(ITestOutputHelper output)
{
    [Fact]
    public void Passes_run_in_the_catalogue_order_and_every_pass_has_an_implementation()
    {
        Assert.Equal(FsckCatalogue.Passes.Select(p => p.Id), Basalt.Fsck.Fsck.Passes.Select(p => p.Info.Id));
        var started = new List<FsckPassId>();
        using var device = FsckTestImages.Formatted();
        var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes, OnPassStarted = p => started.Add(p.Id) });
        Assert.Equal(FsckCatalogue.Passes.Select(p => p.Id), started);
        Assert.True(report.Clean);
        Assert.Equal(0, report.ExitCode);
    }

    [Fact]
    public void Check_only_changes_no_byte_and_finds_exactly_what_yes_repairs_then_the_image_is_clean()
    {
        using var device = FsckTestImages.Formatted();
        var offset = FsckTestImages.DamageCopy(device, 1);
        var before = device.Contents.ToArray();

        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(device.Contents.SequenceEqual(before), "check-only run wrote to the device");
        var finding = Assert.Single(check.Findings);
        Assert.Equal(FsckErrorId.SbCopyBadChecksum, finding.Id);
        Assert.Equal($"mem.img: superblock copy 1 at byte {offset}", finding.Where);
        Assert.Equal(FsckOutcome.WouldFix, finding.Outcome);
        Assert.Equal(FsckExitCodes.Uncorrected, check.ExitCode);
        Assert.False(check.CountersPersisted);

        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        Assert.Equal(FsckTestImages.Keyed(check), FsckTestImages.Keyed(repair));
        Assert.Equal(FsckExitCodes.Corrected, repair.ExitCode);
        Assert.True(repair.CountersPersisted);

        var again = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(again.Clean, string.Join("\n", again.Findings.Select(f => f.ToText())));
        var read = SuperblockIo.Read(device);
        Assert.True(read.AllCopiesGood);
        var counter = Assert.Single(read.Superblock.ErrorCounters);
        Assert.Equal((FsckErrorId.SbCopyBadChecksum, 1UL), (counter.Id, counter.Count));
        Assert.False(read.Superblock.Flags.HasFlag(SuperblockFlags.HasErrors));
    }

    [Fact]
    public void An_invalid_argument_inside_a_pass_is_an_operational_error_not_a_usage_error()
    {
        // The CLI maps a usage-class exception to exit 16 ("you called it wrong"); one raised by a
        // pass's own work must come out as an internal failure of that pass (exit 8).
        using var device = FsckTestImages.Formatted();
        FsckTestImages.DamageCopy(device, 1);
        var options = new FsckOptions
        {
            Mode = FsckMode.CheckOnly,
            OnFinding = _ => throw new Basalt.Diagnostics.BasaltException(Basalt.Diagnostics.ErrorCode.InvalidArgument, "planted"),
        };

        var e = Assert.Throws<Basalt.Diagnostics.BasaltException>(() => Basalt.Fsck.Fsck.Run(device, options));

        Assert.Equal(Basalt.Diagnostics.ErrorCode.InvariantViolated, e.Code);
        Assert.Equal(Basalt.Diagnostics.ErrorClass.Internal, e.Class);
        Assert.Equal("check_superblock: planted", e.Message);
    }

    [Fact]
    public void A_stale_copy_is_found_and_rewritten()
    {
        using var device = FsckTestImages.Formatted();
        var old = SuperblockIo.Read(device).Superblock;
        SuperblockIo.Write(device, old);
        // Copy 1 is older while copy 2 after it is new: not what an interrupted write leaves.
        SuperblockIo.WriteCopy(device, old, 1);
        var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Preen });
        var finding = Assert.Single(report.Findings);
        Assert.Equal(FsckErrorId.SbCopyStale, finding.Id);
        Assert.True(finding.Corrected);
        Assert.True(SuperblockIo.Read(device).AllCopiesGood);
    }

    [Fact]
    public void A_superblock_write_cut_short_by_a_crash_is_finished_without_a_finding()
    {
        using var device = FsckTestImages.Formatted();
        var old = SuperblockIo.Read(device).Superblock;
        SuperblockIo.Write(device, old);
        // The copies are written in layout order: a crash before the last leaves it one seq older.
        SuperblockIo.WriteCopy(device, old, 2);
        Assert.False(SuperblockIo.Read(device).AllCopiesGood);

        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.Empty(check.Findings);
        Assert.False(SuperblockIo.Read(device).AllCopiesGood);

        var preen = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Preen });
        Assert.Empty(preen.Findings);
        Assert.True(SuperblockIo.Read(device).AllCopiesGood);
    }

    [Fact]
    public void An_invalid_root_is_left_by_preen_and_dropped_by_yes()
    {
        using var device = FsckTestImages.Formatted();
        var sb = SuperblockIo.Read(device).Superblock;
        var misaligned = new BtreePtrValue
        {
            Seq = 77, SectorsWritten = 1, MinKey = Bpos.Min,
            Ptrs = [new DevicePtr(0, (ulong)(sb.NodeAreaOffset / 512) + 1, 0)],
        };
        SuperblockIo.Write(device, sb.WithRoot(BtreeId.Test, new BtreeRoot(BtreeId.Test, 0, misaligned)));

        // Preen leaves the root (the btree passes then meet what it points at: more findings).
        var preen = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Preen });
        var left = preen.Findings[0];
        Assert.Equal(FsckErrorId.SbRootInvalid, left.Id);
        Assert.Equal(FsckOutcome.NotFixed, left.Outcome);
        Assert.Contains("not on a node slot boundary", left.Detail, StringComparison.Ordinal);
        Assert.NotEqual(0, preen.ExitCode & FsckExitCodes.Uncorrected);
        Assert.True(SuperblockIo.Read(device).Superblock.Flags.HasFlag(SuperblockFlags.HasErrors));

        // Yes drops it; the node scan finds no node of the (never written) btree, so it is reset
        // to an empty root, as the same finding says in a run that kept the root.
        var yes = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        Assert.Equal([FsckErrorId.SbRootInvalid, FsckErrorId.BtreeRootUnreadable], yes.Findings.Select(f => f.Id));
        Assert.Contains("found no node of the btree", yes.Findings[1].Detail, StringComparison.Ordinal);
        Assert.Equal(FsckExitCodes.Corrected, yes.ExitCode);
        var after = SuperblockIo.Read(device).Superblock;
        Assert.False(after.Flags.HasFlag(SuperblockFlags.HasErrors));
        Assert.Equal(2UL, after.ErrorCounters.Single(e => e.Id == FsckErrorId.SbRootInvalid).Count);
        Assert.Empty(Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly }).Findings);
    }

    [Fact]
    public void A_btree_whose_superblock_root_is_invalid_is_rebuilt_from_the_node_scan_with_every_key()
    {
        using var device = FsckTestImages.WithKeys(3000);
        var expected = Keys(device);
        Assert.Equal(3000, expected.Count);
        var sb = SuperblockIo.Read(device).Superblock;
        var root = sb.RootOf(BtreeId.Test)!;
        Assert.True(root.Level >= 1);
        var misaligned = new BtreePtrValue
        {
            Seq = root.Ptr.Seq, SectorsWritten = root.Ptr.SectorsWritten, MinKey = root.Ptr.MinKey, Flags = root.Ptr.Flags,
            Ptrs = [new DevicePtr(0, root.Ptr.Ptrs[0].OffsetSectors + 1, 0)],
        };
        SuperblockIo.Write(device, sb.WithRoot(BtreeId.Test, root with { Ptr = misaligned }));

        // -n (the root kept, declined) and -y (the root dropped) report the same: the superblock
        // root is unusable, and the btree is rebuilt over the nodes the scan finds.
        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        var yes = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        Assert.Equal(FsckTestImages.Keyed(check), FsckTestImages.Keyed(yes));
        Assert.Equal(FsckErrorId.SbRootInvalid, yes.Findings[0].Id);
        Assert.Equal(FsckErrorId.BtreeRootUnreadable, yes.Findings[1].Id);
        Assert.Contains("superblock root invalid: node at byte", yes.Findings[1].Detail, StringComparison.Ordinal);
        Assert.Contains("root rebuilt at level", yes.Findings[1].Detail, StringComparison.Ordinal);
        Assert.All(yes.Findings, f => Assert.True(f.Corrected));

        Assert.Equal(expected, Keys(device));
        Assert.Empty(Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly }).Findings);
    }

    private static List<(Basalt.Format.Bpos Pos, string Value)> Keys(IBlockDevice device)
    {
        using var fs = BasaltFileSystem.Mount(device, new MountOptions { ReadOnly = true });
        var keys = new List<(Basalt.Format.Bpos, string)>();
        var it = fs.Btrees[BtreeId.Test].Iterate(Basalt.Format.Bpos.Min, Basalt.Format.Bpos.Max);
        while (it.MoveNext())
            keys.Add((it.Key.Pos, Convert.ToHexString(it.Value)));
        return keys;
    }

    [Fact]
    public void Ask_mode_applies_only_the_accepted_repairs()
    {
        using var device = FsckTestImages.Formatted();
        FsckTestImages.DamageCopy(device, 1);
        FsckTestImages.DamageCopy(device, 2);
        var answers = new Queue<FsckAnswer>([FsckAnswer.No, FsckAnswer.Yes]);
        var report = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Ask, Ask = _ => answers.Dequeue() });
        Assert.Equal(new[] { FsckOutcome.NotFixed, FsckOutcome.Fixed }, report.Findings.Select(f => f.Outcome));
        Assert.Equal(FsckExitCodes.Corrected | FsckExitCodes.Uncorrected, report.ExitCode);
        // The declined copy stays as it was until the end of the run; persisting the error counters
        // then writes the superblock, which rewrites every copy (docs/cli.md, "fsck").
        var counters = SuperblockIo.Read(device).Superblock.ErrorCounters;
        Assert.Equal(2UL, counters.Single(e => e.Id == FsckErrorId.SbCopyBadChecksum).Count);
        Assert.True(SuperblockIo.Read(device).Superblock.Flags.HasFlag(SuperblockFlags.HasErrors));
    }

    [Fact]
    public void Repairing_a_read_only_device_is_refused()
    {
        using var device = FsckTestImages.Formatted();
        using var readOnly = new ReadOnlyView(device);
        var e = Assert.Throws<Basalt.Diagnostics.BasaltException>(() =>
            Basalt.Fsck.Fsck.Run(readOnly, new FsckOptions { Mode = FsckMode.Yes }));
        Assert.Contains("-n", e.Message, StringComparison.Ordinal);
        Assert.True(Basalt.Fsck.Fsck.Run(readOnly, new FsckOptions { Mode = FsckMode.CheckOnly }).Clean);
    }

    [Fact]
    public void Cancellation_stops_the_run()
    {
        using var device = FsckTestImages.Formatted();
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes, Cancellation = cancel.Token }));
    }

    [Theory]
    [InlineData("bset")]
    [InlineData("key")]
    [InlineData("node")]
    public void Damaged_nodes_check_only_equals_yes_and_a_second_run_is_clean(string targetName)
    {
        var target = Enum.Parse<CorruptTarget>(targetName, ignoreCase: true);
        var seed = TestSeed.Get(output);
        using var device = FsckTestImages.WithKeys(3000);
        // Any reachable node, leaves and interior nodes alike.
        var damage = ImageCorruptor.Corrupt(device, new CorruptRequest { Target = target, Btree = BtreeId.Test, Seed = seed });
        output.WriteLine(damage.ToText());
        var before = device.Contents.ToArray();

        var check = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        output.WriteLine(string.Join("\n", check.Findings.Select(f => f.ToText())));
        Assert.True(device.Contents.SequenceEqual(before), "check-only run wrote to the device");
        Assert.False(check.Clean);

        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        Assert.Equal(FsckTestImages.Keyed(check), FsckTestImages.Keyed(repair));
        Assert.NotEqual(0, repair.ExitCode & FsckExitCodes.Corrected);

        var again = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });
        Assert.True(again.Clean, string.Join("\n", again.Findings.Select(f => f.ToText())));

        // What survived is readable and correct.
        using var fs = BasaltFileSystem.Mount(device, new MountOptions { ReadOnly = true });
        var it = fs.Btrees[BtreeId.Test].Iterate(Bpos.Min, Bpos.Max);
        var kept = 0;
        while (it.MoveNext())
        {
            var i = (long)(it.Key.Pos.Offset / 7);
            Assert.Equal(BitConverter.GetBytes(i * 1_000_003), it.Value.ToArray());
            kept++;
        }
        // A damaged node covering the whole key space (the root) may lose every key; any other
        // leaves the keys outside its range.
        output.WriteLine($"{kept} of 3000 keys kept");
        var coveredEverything = damage.Node!.Min.IsMin && damage.Node.Max.IsMax;
        Assert.InRange(kept, coveredEverything ? 0 : 1, 3000);
    }

    /// <summary>A read-only view of a device.</summary>
    private sealed class ReadOnlyView(IBlockDevice inner) : IBlockDevice
    {
        public string Name => inner.Name;
        public long Size => inner.Size;
        public bool IsReadOnly => true;
        public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);
        public void Write(long offset, ReadOnlySpan<byte> data) => throw new InvalidOperationException("read-only");
        public void Flush()
        {
        }
        public void Discard(long offset, long length) => throw new InvalidOperationException("read-only");
        public void Dispose()
        {
        }
    }
}
