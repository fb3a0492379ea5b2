// A superblock write cut short by a crash is recognised with certainty (InterruptedWrite, the rules
// of docs/format.md "Interrupted writes"): genuine torn prefixes made by the real write path are
// counted notes that a writing run finishes, and any other damage (a bit flip anywhere in any copy,
// damage on top of a tear) is a finding.
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Superblocks;
using Basalt.Tests.Fsck;
using Basalt.TestKit;

namespace Basalt.Tests.Superblocks;

public sealed class SuperblockInterruptedWriteTests
{
    private const string Note = "check_superblock: superblock write interrupted by a crash (copies finished)";

    /// <summary>Versions written before the recorded one: format is seq 1, so the image holds seq 4 (even) and the recorded write is seq 5.</summary>
    private const int VersionsBefore = 3;

    /// <summary>Bytes of the test-only section in most versions: the superblock spans 5 sectors.</summary>
    private const int Payload = 1600;

    /// <summary>A payload that makes a version 3 sectors longer than one with <see cref="Payload"/>.</summary>
    private const int LongPayload = Payload + 1536;

    /// <summary>
    /// Version <paramref name="v"/>: a different label and <paramref name="size"/> bytes of a section
    /// only this test writes, so every sector of one version differs from the same sector of any
    /// other and a torn copy's new prefix has exactly the torn length.
    /// </summary>
    private static Superblock Version(Superblock sb, int v, int size = Payload)
    {
        var payload = new byte[size];
        new Random(v).NextBytes(payload);
        return sb with { Label = $"version {v}", UnknownSections = [new UnknownSection(0x5A, payload)] };
    }

    /// <summary>The image before the recorded write, the write's log (three copies), and what it wrote.</summary>
    private sealed record Recorded(byte[] Before, WriteLog Log, Superblock Old, Superblock New)
    {
        public int NewSectors => SuperblockCodec.SectorChecksums(New).Length;

        public int OldSectors => SuperblockCodec.SectorChecksums(Old).Length;

        /// <summary>How many leading sectors rule (b) can prove new in copy 0 torn after <paramref name="t"/> sectors: past the old version's end nothing tells.</summary>
        public int ProvablyNew(int copy, int t) => copy == 0 ? Math.Min(t, OldSectors) : t;

        /// <summary>The image after the first <paramref name="copiesDone"/> copy writes and the first <paramref name="tornSectors"/> sectors of the next.</summary>
        public MemoryBlockDevice Image(int copiesDone, int tornSectors)
        {
            var device = new MemoryBlockDevice(Before, "torn.img");
            for (var i = 0; i < copiesDone; i++)
                device.Write(Log.Writes[i].Offset, Log.Writes[i].Data);
            if (tornSectors > 0)
                device.Write(Log.Writes[copiesDone].Offset, Log.Writes[copiesDone].Data.AsSpan(0, tornSectors * FormatLimits.SectorSize));
            return device;
        }
    }

    private static MemoryBlockDevice Written(int versions, int payload = Payload)
    {
        var device = FsckTestImages.Formatted();
        var store = new SuperblockStore(device, SuperblockIo.Read(device), new EmergencyState(), readOnly: false);
        for (var v = 0; v < versions; v++)
            store.Update(s => Version(s, v, payload));
        return device;
    }

    /// <summary>
    /// Records the store's write of a version with <paramref name="newPayload"/> over one with
    /// <paramref name="oldPayload"/>, which replaced versions with <paramref name="earlierPayload"/>
    /// (0: the same as the old one).
    /// </summary>
    private static Recorded RecordWrite(int oldPayload = Payload, int newPayload = Payload, int earlierPayload = 0)
    {
        var device = Written(VersionsBefore - 1, earlierPayload == 0 ? oldPayload : earlierPayload);
        new SuperblockStore(device, SuperblockIo.Read(device), new EmergencyState(), readOnly: false)
            .Update(s => Version(s, VersionsBefore - 1, oldPayload));
        var before = device.Contents.ToArray();
        var old = SuperblockIo.Read(device);
        var recorder = new RecordingBlockDevice(device);
        var store = new SuperblockStore(recorder, old, new EmergencyState(), readOnly: false);
        var written = store.Update(s => Version(s, VersionsBefore, newPayload));
        Assert.Equal(3, recorder.Log.Writes.Count);
        Assert.True(written.Seq % 2 == 1 && written.Seq == old.Superblock.Seq + 1, $"seq {written.Seq}");
        return new Recorded(before, recorder.Log, old.Superblock, written);
    }

    private static FsckReport Check(IBlockDevice device) => Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.CheckOnly });

    private static string Show(FsckReport report) => string.Join("\n", report.Findings.Select(f => f.ToText()));

    /// <summary>fsck -n finds nothing and counts the trace; fsck -y finishes the write without a finding.</summary>
    private static void AssertNoteThenFinished(MemoryBlockDevice device, Superblock winner)
    {
        var check = Check(device);
        Assert.True(check.Findings.Count == 0, Show(check));
        Assert.Equal(1, check.Counters.GetValueOrDefault(Note));
        var repair = Basalt.Fsck.Fsck.Run(device, new FsckOptions { Mode = FsckMode.Yes });
        Assert.True(repair.Findings.Count == 0, Show(repair));
        var after = SuperblockIo.Read(device);
        Assert.True(after.AllCopiesGood, after.ToText());
        Assert.Equal(winner.Label, after.Superblock.Label);
    }

    // ---- Genuine tears: notes -----------------------------------------------------------------

    /// <summary>
    /// A tear after every sector boundary of the new encoding, in each copy, with the new version as
    /// long as the old one, longer (the tear can leave the zeros past the old version's end) or
    /// shorter (the write also zeroes the old version's sectors past the new end).
    /// </summary>
    [Theory]
    [InlineData(0, Payload, Payload)]
    [InlineData(1, Payload, Payload)]
    [InlineData(2, Payload, Payload)]
    [InlineData(0, Payload, LongPayload)]
    [InlineData(1, Payload, LongPayload)]
    [InlineData(2, Payload, LongPayload)]
    [InlineData(0, LongPayload, Payload)]
    [InlineData(1, LongPayload, Payload)]
    [InlineData(2, LongPayload, Payload)]
    public void A_copy_torn_after_any_number_of_sectors_is_an_interrupted_write(int copy, int oldPayload, int newPayload)
    {
        var r = RecordWrite(oldPayload, newPayload);
        Assert.True(r.NewSectors >= 4, $"the new superblock spans {r.NewSectors} sectors");
        Assert.Equal(Math.Sign(newPayload - oldPayload) * 3, r.NewSectors - r.OldSectors);
        for (var t = 1; t < r.NewSectors; t++)
        {
            using var device = r.Image(copy, t);
            var read = SuperblockIo.Read(device);
            Assert.Equal(CopyStatus.BadChecksum, read.Copies[copy].Status);
            var expected = copy == 0
                ? new InterruptedWrite(InterruptedWriteKind.TornFirstCopy, 0, r.New.Seq, r.ProvablyNew(0, t))   // rule (b): the old version wins
                : new InterruptedWrite(InterruptedWriteKind.TornCopy, copy, r.New.Seq, t);                      // rule (a): the new version wins
            Assert.Equal(expected, read.InterruptedWrite);
            AssertNoteThenFinished(device, copy == 0 ? r.Old : r.New);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Copies_the_crash_left_one_seq_older_are_an_interrupted_write(int copiesDone)
    {
        var r = RecordWrite();
        using var device = r.Image(copiesDone, 0);
        var read = SuperblockIo.Read(device);
        Assert.Equal(new InterruptedWrite(InterruptedWriteKind.StaleCopies, copiesDone, r.New.Seq, 0), read.InterruptedWrite);
        AssertNoteThenFinished(device, r.New);
    }

    [Fact]
    public void The_mount_note_calls_a_crash_trace_a_crash_trace()
    {
        var r = RecordWrite();
        using var device = r.Image(2, 2);
        var note = MountNote.For(SuperblockIo.Read(device));
        Assert.Equal(
            $"mounted from copy 0 at byte {r.New.CopyOffsets[0]}; superblock write of seq {r.New.Seq} interrupted by a crash during copy 2: " +
            $"its first 1024 bytes hold seq {r.New.Seq}, the rest and every later copy seq {r.Old.Seq} (the trace of a crash, not damage)",
            note);

        // Damage keeps its own words.
        using var damaged = Written(VersionsBefore);
        damaged.Contents[(int)r.New.CopyOffsets[2] + 700] ^= 1;
        Assert.StartsWith($"mounted from copy 0 at byte {r.New.CopyOffsets[0]} because copy 2 at byte {r.New.CopyOffsets[2]} is damaged (bad checksum)",
            MountNote.For(SuperblockIo.Read(damaged)), StringComparison.Ordinal);
    }

    /// <summary>Every state the crash model allows (any tear of the copy in flight) reads as all good or as a recognised trace.</summary>
    [Theory]
    [InlineData(Payload, Payload, 0)]
    [InlineData(Payload, LongPayload, 0)]
    [InlineData(LongPayload, Payload, 0)]
    [InlineData(Payload, LongPayload, LongPayload + 1536)]   // grows over the sectors an earlier, longer version held
    public void Every_crash_state_of_a_store_write_is_all_good_or_an_interrupted_write(int oldPayload, int newPayload, int earlierPayload)
    {
        var r = RecordWrite(oldPayload, newPayload, earlierPayload);
        Assert.All(r.Log.Writes, w => Assert.Equal(Math.Max(r.NewSectors, r.OldSectors), w.Sectors));
        var kinds = new HashSet<(InterruptedWriteKind, int)>();
        var states = DevicesTestKit.ForEachCrashState(r.Before, r.Log, new CrashStateOptions { Seed = 1, MaxTornVariants = 128 }, (state, device) =>
        {
            var read = SuperblockIo.Read(device);
            // A tear in the zeros past a shorter new version's end leaves that copy whole.
            var torn = state.TornWrite >= 0 && state.TornSectors < r.NewSectors;
            var copiesDone = state.TornWrite >= 0 ? state.TornWrite + (torn ? 0 : 1) : state.Applied.Count + state.DurableCount;
            if (read.AllCopiesGood)
            {
                Assert.True(!torn && copiesDone is 0 or 3, read.ToText());
                return;
            }
            var trace = read.InterruptedWrite;
            Assert.True(trace is not null, read.ToText());
            if (torn)
            {
                var copy = state.TornWrite;
                Assert.Equal(copy == 0 ? InterruptedWriteKind.TornFirstCopy : InterruptedWriteKind.TornCopy, trace.Kind);
                Assert.Equal((copy, r.ProvablyNew(copy, state.TornSectors)), (trace.Copy, trace.NewSectors));
            }
            else
            {
                Assert.Equal((InterruptedWriteKind.StaleCopies, copiesDone), (trace.Kind, trace.Copy));
            }
            kinds.Add((trace.Kind, trace.Copy));
            var check = Check(device);
            Assert.True(check.Findings.Count == 0, Show(check));
        });
        Assert.True(states >= 3 * (r.NewSectors - 1), $"{states} crash states");
        Assert.Contains((InterruptedWriteKind.TornFirstCopy, 0), kinds);
        Assert.Contains((InterruptedWriteKind.TornCopy, 1), kinds);
        Assert.Contains((InterruptedWriteKind.TornCopy, 2), kinds);
        Assert.Contains((InterruptedWriteKind.StaleCopies, 1), kinds);
        Assert.Contains((InterruptedWriteKind.StaleCopies, 2), kinds);
    }

    // ---- Damage: findings ---------------------------------------------------------------------

    /// <summary>
    /// Every single-bit flip in the checksummed bytes of copy 0, the middle copy or the last copy is
    /// damage, never an interrupted write: each sector's flip is also run through fsck -n. The image's
    /// seq is even, so flipping bit 0 of copy 0's seq makes it claim the next seq, as a torn first copy does.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void A_bit_flip_anywhere_in_any_copy_is_a_finding(int copy)
    {
        using var device = Written(VersionsBefore);
        var sb = SuperblockIo.Read(device).Superblock;
        Assert.True(sb.Seq % 2 == 0 && sb.PreviousSectors.Count > 0, $"seq {sb.Seq}");
        var offset = (int)sb.CopyOffsets[copy];
        var total = SuperblockCodec.EncodedSize(sb);
        var sectors = (total + FormatLimits.SectorSize - 1) / FormatLimits.SectorSize;
        Assert.True(sectors >= 4, $"{sectors} sectors");
        // One flip per sector also goes through fsck -n.
        var checkedByFsck = Enumerable.Range(0, sectors).Select(k => Math.Min((k * FormatLimits.SectorSize) + 300, total - 1)).ToHashSet();
        var bytes = device.Contents;
        for (var at = 0; at < total; at++)
        {
            for (var bit = 0; bit < 8; bit++)
            {
                bytes[offset + at] ^= (byte)(1 << bit);
                var read = SuperblockIo.Read(device);
                var report = read.Copies[copy];
                Assert.True(report.FsckError is not null && read.InterruptedWrite is null,
                    $"bit {bit} of byte {at} of copy {copy} flipped: {read.ToText()}");
                if (bit == 0 && checkedByFsck.Contains(at))
                {
                    var check = Check(device);
                    var finding = Assert.Single(check.Findings);
                    Assert.Equal(report.FsckError, finding.Id);
                    Assert.Equal($"mem.img: superblock copy {copy} at byte {offset}", finding.Where);
                    Assert.Equal(0, check.Counters.GetValueOrDefault(Note));
                }
                bytes[offset + at] ^= (byte)(1 << bit);
            }
        }
        Assert.True(SuperblockIo.Read(device).AllCopiesGood);
    }

    [Fact]
    public void A_first_copy_whose_seq_a_flipped_bit_turned_into_the_next_is_a_finding()
    {
        using var device = Written(VersionsBefore);
        var sb = SuperblockIo.Read(device).Superblock;
        device.Contents[(int)sb.CopyOffsets[0] + SuperblockFormat.SeqOffset] ^= 1;
        var read = SuperblockIo.Read(device);
        // Magic, uuid and seq S+1 in the header and every later sector the winner's: only the
        // previous_sectors section (naming S-1, not S) shows that no write of S+1 made this copy.
        Assert.Equal(CopyStatus.BadChecksum, read.Copies[0].Status);
        Assert.Equal(sb.Seq + 1, SeqIn(device, sb.CopyOffsets[0]));
        Assert.Null(read.InterruptedWrite);
        Assert.Equal(FsckErrorId.SbCopyBadChecksum, Assert.Single(Check(device).Findings).Id);
    }

    private static ulong SeqIn(MemoryBlockDevice device, long offset) =>
        System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(device.Contents[(int)(offset + SuperblockFormat.SeqOffset)..]);

    /// <summary>
    /// Rule (a) knows every byte of a torn copy after the first: the new version's up to the tear,
    /// the recorded old version's after it. So damage in any sector of a torn copy that is not the
    /// first is found.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Damage_on_top_of_a_torn_copy_is_a_finding(int copy)
    {
        var r = RecordWrite();
        const int T = 2;
        for (var sector = 0; sector < r.NewSectors; sector++)
        {
            using var device = r.Image(copy, T);
            Assert.NotNull(SuperblockIo.Read(device).InterruptedWrite);
            // A bit in a sector the tear left new, or in one it left old.
            device.Contents[(int)r.New.CopyOffsets[copy] + (sector * FormatLimits.SectorSize) + 300] ^= 4;
            var read = SuperblockIo.Read(device);
            Assert.True(read.InterruptedWrite is null, $"sector {sector}: {read.ToText()}");
            var check = Check(device);
            Assert.Contains(check.Findings, f => f.Id == FsckErrorId.SbCopyBadChecksum && f.Where.Contains($"copy {copy} ", StringComparison.Ordinal));
        }
    }

    /// <summary>
    /// A torn first copy holds part of a version that exists nowhere whole, so rule (b) checks what
    /// that part must say: the magic, the uuid, the seq after the winner's, and the previous_sectors
    /// count and entries naming the winner. Damage to any of those is found.
    /// </summary>
    [Fact]
    public void Damage_to_what_identifies_a_torn_first_copy_is_a_finding()
    {
        var r = RecordWrite();
        var entries = SuperblockFormat.HeaderSize + SuperblockFormat.SectionHeaderSize + SuperblockFormat.PreviousSectorsHeaderSize;
        int[] fields =
        [
            SuperblockFormat.MagicOffset + 3, SuperblockFormat.UuidOffset + 15, SuperblockFormat.SeqOffset,
            SuperblockFormat.HeaderSize + 4, SuperblockFormat.HeaderSize + SuperblockFormat.SectionHeaderSize,
            .. Enumerable.Range(0, r.Old.PreviousSectors.Count).Select(i => entries + (i * SuperblockFormat.PreviousSectorEntrySize) + 1),
        ];
        foreach (var at in fields)
        {
            using var device = r.Image(0, 2);
            Assert.NotNull(SuperblockIo.Read(device).InterruptedWrite);
            device.Contents[(int)SuperblockFormat.FirstCopyOffset + at] ^= 0x20;
            var read = SuperblockIo.Read(device);
            Assert.True(read.InterruptedWrite is null, $"byte {at}: {read.ToText()}");
            Assert.Single(Check(device).Findings);
        }
    }

    [Fact]
    public void A_bad_copy_beside_a_superblock_that_replaced_nothing_is_a_finding()
    {
        // A superblock that records no previous version (as format writes it) admits no torn copy:
        // whatever its last copy holds after the first sector cannot be checked against old bytes.
        using var device = FsckTestImages.Formatted();
        var sb = SuperblockIo.Write(device, Version(SuperblockIo.Read(device).Superblock, 7), [], DateTimeOffset.UnixEpoch.AddDays(1));
        Assert.Empty(SuperblockIo.Read(device).Superblock.PreviousSectors);
        device.Contents[(int)sb.CopyOffsets[2] + (2 * FormatLimits.SectorSize) + 9] ^= 0x80;
        var read = SuperblockIo.Read(device);
        Assert.Equal(CopyStatus.BadChecksum, read.Copies[2].Status);
        Assert.Null(read.InterruptedWrite);
        Assert.Equal(FsckErrorId.SbCopyBadChecksum, Assert.Single(Check(device).Findings).Id);
    }

    [Fact]
    public void A_torn_copy_whose_old_sectors_are_not_the_recorded_version_is_a_finding()
    {
        // The last copy still held an older version than the one the new superblock says it replaced
        // (e.g. a stale copy nobody repaired): its old tail matches no recorded checksum.
        var r = RecordWrite();
        using var device = r.Image(2, 2);
        var stale = Version(r.Old, 99);
        SuperblockIo.WriteCopy(device, stale, 2);
        device.Write(r.Log.Writes[2].Offset, r.Log.Writes[2].Data.AsSpan(0, 2 * FormatLimits.SectorSize));
        var read = SuperblockIo.Read(device);
        Assert.Equal(CopyStatus.BadChecksum, read.Copies[2].Status);
        Assert.Null(read.InterruptedWrite);
        Assert.Equal(FsckErrorId.SbCopyBadChecksum, Assert.Single(Check(device).Findings).Id);
    }

    /// <summary>
    /// A copy one seq older behind the new ones is a crash trace only if it is the version the new
    /// one replaced: one of that seq with other content (whatever put it there) is a finding, both
    /// as a stale tail (rule (c)) and behind a torn copy (rule (a)).
    /// </summary>
    [Theory]
    [InlineData(2, 0)]
    [InlineData(1, 0)]
    [InlineData(1, 2)]
    public void A_copy_one_seq_older_that_is_not_the_replaced_version_is_a_finding(int copiesDone, int tornSectors)
    {
        var r = RecordWrite();
        using var device = r.Image(copiesDone, tornSectors);
        Assert.NotNull(SuperblockIo.Read(device).InterruptedWrite);
        SuperblockIo.WriteCopy(device, Version(r.Old, 99) with { Seq = r.Old.Seq }, 2);
        var read = SuperblockIo.Read(device);
        Assert.Equal((CopyStatus.Stale, r.Old.Seq), (read.Copies[2].Status, read.Copies[2].Seq));
        Assert.True(read.InterruptedWrite is null, read.ToText());
        var check = Check(device);
        Assert.Contains(check.Findings, f => f.Id == FsckErrorId.SbCopyStale && f.Where.Contains("copy 2 ", StringComparison.Ordinal));
        Assert.Equal(0, check.Counters.GetValueOrDefault(Note));
    }

    /// <summary>
    /// A version longer than the one it replaced has sectors no recorded checksum covers. In the
    /// last copy (no later copy to contradict a tear) a damaged one of them still must not pass as
    /// torn: a torn copy holds zeros there, which every write guarantees.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Damage_past_the_end_of_the_version_a_longer_one_replaced_is_a_finding(int copy)
    {
        using var device = Written(VersionsBefore);
        var store = new SuperblockStore(device, SuperblockIo.Read(device), new EmergencyState(), readOnly: false);
        var sb = store.Update(s => Version(s, VersionsBefore, LongPayload));
        var read = SuperblockIo.Read(device);
        Assert.True(read.AllCopiesGood, read.ToText());
        var sectors = SuperblockCodec.SectorChecksums(sb).Length;
        Assert.Equal(sectors - 3, sb.PreviousSectors.Count);
        for (var k = 0; k < sectors; k++)
        {
            foreach (var at in new[] { 7, 300, 511 })
            {
                var where = (int)sb.CopyOffsets[copy] + (k * FormatLimits.SectorSize) + at;
                if (where >= (int)sb.CopyOffsets[copy] + SuperblockCodec.EncodedSize(sb))
                    continue;
                device.Contents[where] ^= 0x10;
                read = SuperblockIo.Read(device);
                Assert.True(read.Copies[copy].FsckError is not null && read.InterruptedWrite is null, $"sector {k} byte {at}: {read.ToText()}");
                if (at == 300)
                {
                    var check = Check(device);
                    Assert.Equal(FsckErrorId.SbCopyBadChecksum, Assert.Single(check.Findings).Id);
                    Assert.Equal(0, check.Counters.GetValueOrDefault(Note));
                }
                device.Contents[where] ^= 0x10;
            }
        }
    }

    /// <summary>A copy whose bad sector is zeroed (one of the campaign's damages) is a finding, whichever copy and sector.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void A_zeroed_sector_in_any_copy_is_a_finding(int copy)
    {
        using var device = Written(VersionsBefore);
        var sb = SuperblockIo.Read(device).Superblock;
        var sectors = SuperblockCodec.SectorChecksums(sb).Length;
        for (var k = 0; k < sectors; k++)
        {
            var at = (int)sb.CopyOffsets[copy] + (k * FormatLimits.SectorSize);
            var saved = device.Contents.Slice(at, FormatLimits.SectorSize).ToArray();
            device.Contents.Slice(at, FormatLimits.SectorSize).Clear();
            var check = Check(device);
            var finding = Assert.Single(check.Findings);
            Assert.Equal(k == 0 ? FsckErrorId.SbCopyBadMagic : FsckErrorId.SbCopyBadChecksum, finding.Id);
            Assert.Equal(0, check.Counters.GetValueOrDefault(Note));
            saved.CopyTo(device.Contents.Slice(at));
        }
    }

    // ---- Zeros past a version's end -------------------------------------------------------------

    [Fact]
    public void A_write_zeroes_what_a_longer_version_held_past_the_new_end_and_a_copy_repair_zeroes_its_area()
    {
        using var device = Written(VersionsBefore, LongPayload);
        var store = new SuperblockStore(device, SuperblockIo.Read(device), new EmergencyState(), readOnly: false);
        var sb = store.Update(s => Version(s, VersionsBefore));
        var end = SuperblockCodec.EncodedSize(sb);
        foreach (var offset in sb.CopyOffsets)
            Assert.False(device.Contents.Slice((int)offset + end, SuperblockFormat.CopySize - end).ContainsAnyExcept((byte)0), $"copy at {offset}");

        // Whatever lies past a copy's end (damage, a tear of a longer version) is gone after its repair.
        var last = (int)sb.CopyOffsets[2];
        device.Contents.Slice(last + end, SuperblockFormat.CopySize - end).Fill(0xA5);
        device.Contents[last + 100] ^= 1;
        SuperblockIo.WriteCopy(device, sb, 2);
        Assert.True(SuperblockIo.Read(device).AllCopiesGood);
        Assert.False(device.Contents.Slice(last + end, SuperblockFormat.CopySize - end).ContainsAnyExcept((byte)0));
    }

    // ---- Finishing an interrupted write ---------------------------------------------------------

    /// <summary>
    /// Finishing the write is itself cut short by a crash at every point (any tear of each of its
    /// writes): every state it can leave is still all good or a recognised trace, never a finding.
    /// A torn first copy is rewritten tail first, then its first sector.
    /// </summary>
    [Theory]
    [InlineData(0, 1)]
    [InlineData(0, 3)]
    [InlineData(1, 2)]
    [InlineData(2, 4)]
    [InlineData(1, 0)]
    [InlineData(2, 0)]
    public void Finishing_an_interrupted_write_cut_short_by_a_crash_leaves_a_trace_again(int copy, int tornSectors)
    {
        var r = RecordWrite();
        using var device = r.Image(copy, tornSectors);
        var before = device.Contents.ToArray();
        var read = SuperblockIo.Read(device);
        Assert.NotNull(read.InterruptedWrite);
        var recorder = new RecordingBlockDevice(device);
        var rewritten = SuperblockIo.FinishInterruptedWrite(recorder, read);
        Assert.Equal(copy == 0 ? 1 : 3 - copy, rewritten);   // the copy in flight and every later one not yet written
        var winner = copy == 0 ? r.Old : r.New;
        var after = SuperblockIo.Read(device);
        Assert.True(after.AllCopiesGood && after.Superblock.Seq == winner.Seq, after.ToText());
        if (copy == 0)
        {
            // Sectors 1.. of the area, then sector 0.
            var offset = winner.CopyOffsets[0];
            Assert.Equal([(offset + FormatLimits.SectorSize, (SuperblockFormat.CopySize / FormatLimits.SectorSize) - 1), (offset, 1)],
                recorder.Log.Writes.Select(w => (w.Offset, w.Sectors)));
        }

        var states = DevicesTestKit.ForEachCrashState(before, recorder.Log, new CrashStateOptions { Seed = 3, MaxTornVariants = 12 }, (state, crashed) =>
        {
            var again = SuperblockIo.Read(crashed);
            Assert.True(again.AllCopiesGood || again.InterruptedWrite is not null, again.ToText());
            Assert.Equal(winner.Seq, again.Superblock.Seq);
            var check = Check(crashed);
            Assert.True(check.Findings.Count == 0, Show(check));
        });
        Assert.True(states >= 2 * recorder.Log.Count, $"{states} crash states");
    }

    // ---- The previous_sectors section ----------------------------------------------------------

    [Fact]
    public void The_previous_sectors_section_round_trips_and_a_bad_count_is_invalid()
    {
        using var device = FsckTestImages.Formatted();
        uint[] sums = [0, 1, 0xdeadbeef, uint.MaxValue, 7];
        var written = SuperblockIo.Write(device, SuperblockIo.Read(device).Superblock, sums, DateTimeOffset.UnixEpoch.AddDays(3));
        var read = SuperblockIo.Read(device);
        Assert.True(read.AllCopiesGood, read.ToText());
        Assert.Equal(sums, read.Superblock.PreviousSectors);
        Assert.Equal(written.ToText(), read.Superblock.ToText());
        Assert.Contains("previous version:       2560 bytes, crc32c of each 512: 00000000 00000001 deadbeef ffffffff 00000007", read.Superblock.ToText(), StringComparison.Ordinal);

        // The count is bounded by the copy size and by the section's length before any entry is read.
        var count = (int)SuperblockFormat.FirstCopyOffset + SuperblockFormat.HeaderSize + SuperblockFormat.SectionHeaderSize;
        foreach (var (bad, why) in new[] { (129u, "129 sector checksums (a copy has at most 128 sectors)"), (7u, "7 sector checksums do not fit in 24 bytes") })
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(device.Contents[count..], bad);
            SuperblockTestKit.Reseal(device, SuperblockFormat.FirstCopyOffset);
            var copy = SuperblockIo.ReadCopy(device, SuperblockFormat.FirstCopyOffset);
            Assert.Equal(CopyStatus.Invalid, copy.Status);
            Assert.Equal($"previous_sectors section: {why}", copy.Detail);
        }
    }

    [Fact]
    public void Every_copy_of_one_version_has_the_same_sector_checksums()
    {
        using var device = Written(1);
        var sb = SuperblockIo.Read(device).Superblock;
        var total = SuperblockCodec.EncodedSize(sb);
        var sums = sb.CopyOffsets.Select(o => SuperblockCodec.SectorChecksums(device.Contents.Slice((int)o, total))).ToList();
        Assert.True(sums.Count == 3 && sums[0].Length >= 4);
        Assert.All(sums, s => Assert.Equal(sums[0], s));
        Assert.Equal(sums[0], SuperblockCodec.SectorChecksums(sb));
        // Any other byte of sector 0 counts, as does every byte of later sectors.
        var copy0 = device.Contents.Slice((int)sb.CopyOffsets[0], total).ToArray();
        copy0[SuperblockFormat.LabelOffset] ^= 1;
        copy0[(2 * FormatLimits.SectorSize) + 5] ^= 1;
        var changed = SuperblockCodec.SectorChecksums(copy0);
        Assert.Equal([false, true, false, true], changed.Zip(sums[0], (a, b) => a == b).Take(4));
    }

    // ---- Recording the version a write replaces ----------------------------------------------

    /// <summary>
    /// The superblock versions copy 0 received in <paramref name="log"/>, in order, each checked to
    /// record the sector checksums of the one before it (the first: <paramref name="before"/>).
    /// Rewrites of one copy with the same seq (fsck's repair, a mount finishing a write) are skipped.
    /// </summary>
    private static List<Superblock> AssertChain(WriteLog log, IReadOnlyList<uint> before)
    {
        var versions = new List<Superblock>();
        var previous = before;
        ulong? seq = null;
        // Format zeroes the copy areas before it writes the first version.
        foreach (var w in log.Writes.Where(w => w.Offset == SuperblockFormat.FirstCopyOffset && w.Data is not null && w.Data.AsSpan().ContainsAnyExcept((byte)0)))
        {
            var decoded = SuperblockCodec.Decode(w.Data, w.Offset);
            Assert.Equal(CopyStatus.Good, decoded.Status);
            if (decoded.Seq == seq)
                continue;
            Assert.True(seq is null || decoded.Seq == seq + 1, $"seq {decoded.Seq} after {seq}");
            Assert.True(previous.SequenceEqual(decoded.Superblock!.PreviousSectors),
                $"seq {decoded.Seq} records [{string.Join(" ", decoded.Superblock.PreviousSectors)}], replaced [{string.Join(" ", previous)}]");
            versions.Add(decoded.Superblock);
            previous = SuperblockCodec.SectorChecksums(decoded.Body.Span);
            seq = decoded.Seq;
        }
        return versions;
    }

    [Fact]
    public void Format_mount_checkpoint_and_unmount_each_record_the_version_they_replace()
    {
        using var memory = new MemoryBlockDevice(8 * 1024 * 1024, "mem.img");
        var recorder = new RecordingBlockDevice(memory);
        using (var fs = BasaltFileSystem.Format(recorder, FsckTestImages.SmallGeometry))
        {
            fs.Btrees[BtreeId.Test].Insert(new Bpos(1, 2, 0), [1, 2, 3]);
            fs.Checkpoint();
        }
        using (var fs = BasaltFileSystem.Mount(recorder, new MountOptions()))
            fs.Btrees[BtreeId.Test].Insert(new Bpos(1, 3, 0), [4]);
        var versions = AssertChain(recorder.Log, []);
        Assert.Empty(versions[0].PreviousSectors);                                   // format replaced nothing
        Assert.True(versions.Count >= 5, $"{versions.Count} superblock versions");  // format, mount, checkpoint, unmount, mount, unmount
        Assert.Equal(versions[^1].Seq, SuperblockIo.Read(memory).Superblock.Seq);
    }

    [Fact]
    public void Fsck_repairs_record_the_version_they_replace()
    {
        using var device = FsckTestImages.Formatted();
        var sb = SuperblockIo.Read(device).Superblock;
        var misaligned = new BtreePtrValue
        {
            Seq = 77, SectorsWritten = 1, MinKey = Bpos.Min,
            Ptrs = [new DevicePtr(0, (ulong)(sb.NodeAreaOffset / 512) + 1, 0)],
        };
        SuperblockIo.Write(device, sb.WithRoot(BtreeId.Test, new BtreeRoot(BtreeId.Test, 0, misaligned)));
        FsckTestImages.DamageCopy(device, 1);
        var before = SuperblockIo.Read(device).SectorChecksums;
        var recorder = new RecordingBlockDevice(device);
        var report = Basalt.Fsck.Fsck.Run(recorder, new FsckOptions { Mode = FsckMode.Yes });
        // The dropped root's btree is rebuilt from the node scan, which finds none of its nodes.
        Assert.Equal([FsckErrorId.SbCopyBadChecksum, FsckErrorId.SbRootInvalid, FsckErrorId.BtreeRootUnreadable], report.Findings.Select(f => f.Id));
        // The root repair, the mount, the error counters and the unmount: each a new version.
        Assert.True(AssertChain(recorder.Log, before).Count >= 3);
    }

    [Fact]
    public void A_writable_mount_finishes_an_interrupted_write_so_a_crash_in_its_own_write_is_recognised()
    {
        var r = RecordWrite();
        using var device = r.Image(2, 2);
        var recorder = new RecordingBlockDevice(device);
        using (var fs = BasaltFileSystem.Mount(recorder, new MountOptions()))
        {
            var first = recorder.Log.Writes[0];
            Assert.Equal(r.New.CopyOffsets[2], first.Offset);   // the torn copy, rewritten before anything else
            Assert.True(SuperblockIo.Read(device).AllCopiesGood);
        }
        AssertChain(recorder.Log, SuperblockCodec.SectorChecksums(r.New));

        // A second crash tearing the mount's first new version in the last copy, after any number
        // of sectors: that copy's old sectors are then the version the write recorded (not the
        // older one the first crash left behind), so fsck finds nothing.
        var writes = recorder.Log.Writes;
        var tornIndex = Enumerable.Range(0, writes.Count).First(i =>
            writes[i].Offset == r.New.CopyOffsets[2] && SuperblockCodec.Decode(writes[i].Data, writes[i].Offset).Seq == r.New.Seq + 1);
        for (var t = 1; t < writes[tornIndex].Sectors; t++)
        {
            using var second = r.Image(2, 2);
            for (var i = 0; i < tornIndex; i++)
                second.Write(writes[i].Offset, writes[i].Data);
            second.Write(writes[tornIndex].Offset, writes[tornIndex].Data.AsSpan(0, t * FormatLimits.SectorSize));
            var read = SuperblockIo.Read(second);
            Assert.True(read.AllCopiesGood || read.InterruptedWrite is not null, $"torn after {t} sectors: {read.ToText()}");
            var check = Check(second);
            Assert.True(check.Findings.Count == 0, $"torn after {t} sectors: {Show(check)}");
        }
    }
}
