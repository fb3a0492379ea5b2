// Transactions on a real image file: a failed journal write puts the mount into emergency
// read-only with the I/O error as its cause and loses no acknowledged commit once the file is
// mounted again without the fault (fsck then finds nothing); a read-only mount of a crashed image
// shows the replayed keys and leaves the file byte for byte as it was.
using System.Buffers.Binary;
using System.Security.Cryptography;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Fsck;
using Basalt.Journal;
using Basalt.Superblocks;
using Basalt.TestKit;
using Basalt.Transactions;

namespace Basalt.IntegrationTests.Transactions;

public sealed class FileImageTransactionTests
{
    private const long ImageSize = 16L * 1024 * 1024;
    private static readonly Bpos s_counter = new(0xC0FFEE, 0);

    private static readonly FormatOptions s_geometry = new()
    {
        BlockSize = 512,
        BucketSize = 64 * 1024,
        NodeSize = 4096,
        Uuid = new Guid("0d7e4f1a-58b2-4c1e-9a6d-3f2b8c1e7a55"),
    };

    private static readonly MountOptions s_mount = new() { Journal = new JournalOptions { Manual = true }, CheckWriteOnce = true };

    [Fact]
    public void A_failed_journal_write_on_a_file_loses_no_acknowledged_commit_and_fsck_is_clean_after_remount()
    {
        using var dir = new TempDirectory("txn-file");
        var path = dir.File("fs.img");
        BasaltFileSystem.Format(path, ImageSize, s_geometry).Dispose();

        ulong acknowledged = 0;
        using (var faults = new FaultyBlockDevice(FileBlockDevice.Open(path), seed: 1, ownsInner: true))
        {
            var fs = BasaltFileSystem.Mount(faults, s_mount);
            try
            {
                for (ulong i = 1; i <= 150; i++)
                {
                    var durable = i % 10 == 0;
                    Assert.Equal(i, Commit(fs, durable));
                    if (durable)
                        acknowledged = i;
                }
                Commit(fs, durable: false); // never acknowledged

                var ring = fs.Journal.Ring;
                for (var b = 0; b < ring.Count; b++)
                    faults.FailWrites(ring.OffsetOf(b), ring.BucketSize);
                var failed = Assert.Throws<BasaltException>(() => Commit(fs, durable: true));
                Assert.Equal(ErrorCode.EmergencyReadOnly, failed.Code);
                Assert.Same(fs.Emergency.Cause, failed.InnerException);
                var io = Assert.IsType<BasaltException>(failed.InnerException);
                Assert.Equal(ErrorCode.IoError, io.Code);
                Assert.Contains("journal write", io.Message, StringComparison.Ordinal);
                Assert.Contains("injected write error", io.Message, StringComparison.Ordinal);

                var later = Assert.Throws<BasaltException>(() => Commit(fs, durable: false));
                Assert.Equal(ErrorCode.EmergencyReadOnly, later.Code);
                Assert.Same(fs.Emergency.Cause, later.InnerException);

                // Unmounting writes nothing more to the file (read through the device: the mount
                // holds the file's lock until the device is closed).
                faults.ClearRules();
                var image = SHA256.HashData(DevicesTestKit.Capture(faults));
                fs.Close(sync: true);
                Assert.Equal(image, SHA256.HashData(DevicesTestKit.Capture(faults)));
            }
            finally
            {
                fs.Close(sync: false);
            }
        }

        ulong recovered;
        using (var fs = BasaltFileSystem.Mount(path, s_mount))
        {
            var tree = fs.Btrees[BtreeId.Test];
            recovered = ReadCounter(tree);
            Assert.InRange(recovered, acknowledged, 152UL); // 152: the commit that met the fault
            for (ulong i = 1; i <= recovered; i++)
            {
                Assert.True(tree.TryGet(new Bpos(1, i), out var v), $"commit {i} of {recovered} lost");
                Assert.Equal(i, BinaryPrimitives.ReadUInt64LittleEndian(v));
            }
            Assert.False(tree.TryGet(new Bpos(1, recovered + 1), out _));
            fs.Close(sync: false);
        }
        var report = Basalt.Fsck.Fsck.Run(path, new FsckOptions { Mode = FsckMode.CheckOnly, CheckWriteOnce = true });
        Assert.True(report.Clean, string.Join("\n", report.Findings.Select(f => f.ToText())));
    }

    [Fact]
    public void A_read_only_mount_of_a_crashed_image_file_shows_the_replayed_keys_and_changes_no_byte()
    {
        using var dir = new TempDirectory("txn-file");
        var path = dir.File("fs.img");
        using (var fs = BasaltFileSystem.Format(path, ImageSize, s_geometry, s_mount))
        {
            for (var i = 0; i < 80; i++)
                Commit(fs, durable: i == 79);
            Commit(fs, durable: false);
            fs.Close(sync: false); // a crash: the journal holds commits the btree nodes do not
        }
        var image = SHA256.HashData(File.ReadAllBytes(path));

        using (var fs = BasaltFileSystem.Mount(path, new MountOptions { ReadOnly = true }))
        {
            Assert.False(fs.Recovery.WasClean);
            Assert.True(fs.Recovery.KeysReplayed > 0, fs.Recovery.ToText());
            var tree = fs.Btrees[BtreeId.Test];
            Assert.Equal(80UL, ReadCounter(tree));
            for (ulong i = 1; i <= 80; i++)
                Assert.True(tree.TryGet(new Bpos(1, i), out _));
            Assert.False(tree.TryGet(new Bpos(1, 81), out _));
        }
        Assert.Equal(image, SHA256.HashData(File.ReadAllBytes(path)));
    }

    /// <summary>Bumps the counter and writes key (1, new value); returns the new value.</summary>
    private static ulong Commit(BasaltFileSystem fs, bool durable) =>
        fs.Transact(t =>
        {
            var next = (t.TryGet(BtreeId.Test, s_counter, out var c) ? BinaryPrimitives.ReadUInt64LittleEndian(c) : 0) + 1;
            var bytes = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, next);
            t.Set(BtreeId.Test, s_counter, bytes);
            t.Set(BtreeId.Test, new Bpos(1, next), bytes);
            return next;
        }, durable ? CommitOptions.Durable : CommitOptions.Default);

    private static ulong ReadCounter(Basalt.Btree.Btree tree) =>
        tree.TryGet(s_counter, out var v) ? BinaryPrimitives.ReadUInt64LittleEndian(v) : 0;
}
