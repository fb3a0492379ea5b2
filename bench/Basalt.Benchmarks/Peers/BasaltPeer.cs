// Basalt through its transaction API: the Test btree of a freshly formatted image file, keys at
// Bpos(inode = key high half, offset = key low half), 100-byte cookie values.
//   CommitDurable  one Transact setting one key, CommitOptions.Durable: the commit is appended to
//                  the open journal entry and Transact returns once a flush entry covering it is
//                  durable (a device flush before it when anything was written since the last
//                  one, then the entry's write and a flush). Concurrent committers share the flush
//                  (group commit).
//   CommitBatch    one Transact setting every key of the batch, CommitOptions.Default: atomic,
//                  journaled, durable within the journal's flush delay or at the next Sync.
//   Sync           BasaltFileSystem.Sync: a journal flush covering every commit made so far.
//   Settle         a checkpoint: every dirty node written and the roots put in the superblock, so
//                  reads measure the tree, not a journal full of pinned entries.
// Nodes are written lazily by journal reclaim (write-back rounds) and checkpoints, not by commits.
// Reads see the live tree (no snapshot): each TryGet and iterator refill takes the engine's read lock.
// Image: a 4 GiB sparse file formatted with FormatOptions defaults (4 KiB blocks, 256 KiB nodes,
// bucket size, node area and journal size from the device size); node cache budget 2 GiB so the
// loaded data set stays in memory as it does for the other peers; write-once checking off.
using Basalt.Btree;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;
using Basalt.Transactions;

namespace Basalt.Benchmarks.Peers;

public sealed class BasaltPeer : IKvPeer
{
    private const long ImageSize = 4L << 30;
    private const long CacheBudgetBytes = 2L << 30;

    private readonly BasaltFileSystem _fs;
    private readonly Btree.Btree _tree;

    private BasaltPeer(string directory, BasaltFileSystem fs)
    {
        Directory = directory;
        _fs = fs;
        _tree = fs.Btrees[BtreeId.Test];
    }

    public string Name => PeerCatalog.Basalt;

    public string Settings =>
        $"Basalt (Transact; durable commits with CommitOptions.Durable): {ImageSize >> 30} GiB sparse image, " +
        $"{_fs.Geometry.NodeSize >> 10} KiB nodes, {_fs.Geometry.BlockSize} B blocks, " +
        $"{_fs.Geometry.NodeAreaLength >> 20} MiB node area, {CacheBudgetBytes >> 30} GiB node cache";

    public string Directory { get; }

    public static BasaltPeer Open(string directory)
    {
        var fs = BasaltFileSystem.Format(Path.Combine(directory, "basalt.img"), ImageSize,
            new FormatOptions { Label = "peers" },
            new MountOptions
            {
                CheckWriteOnce = false,
                Engine = new BtreeEngineOptions { CacheBudgetBytes = CacheBudgetBytes },
            });
        return new BasaltPeer(directory, fs);
    }

    public void CommitDurable(PeerKey key, ReadOnlySpan<byte> value)
    {
        var pos = PosOf(key);
        var bytes = value.ToArray();
        _fs.Transact(t => t.Set(BtreeId.Test, pos, bytes), CommitOptions.Durable);
    }

    public void CommitBatch(ReadOnlySpan<PeerKey> keys, ReadOnlySpan<byte> values)
    {
        var positions = new Bpos[keys.Length];
        for (var i = 0; i < keys.Length; i++)
            positions[i] = PosOf(keys[i]);
        var bytes = values.ToArray();
        _fs.Transact(t =>
        {
            for (var i = 0; i < positions.Length; i++)
                t.Set(BtreeId.Test, positions[i], bytes.AsSpan(i * PeerData.ValueSize, PeerData.ValueSize));
        });
    }

    public void Sync() => _fs.Sync();

    public void Settle() => _fs.Checkpoint();

    public IKvReader OpenReader() => new Reader(_tree);

    public void Dispose() => _fs.Dispose();

    private static Bpos PosOf(PeerKey key) => new(key.High, key.Low);

    private sealed class Reader(Btree.Btree tree) : IKvReader
    {
        public bool TryGet(PeerKey key, Span<byte> value, out int length) => tree.TryGet(PosOf(key), value, out length);

        public long Scan(PeerKey start, long maxKeys, out long checksum)
        {
            var it = tree.Iterate(PosOf(start), Bpos.Max);
            long visited = 0;
            checksum = 0;
            while (visited < maxKeys && it.MoveNext())
            {
                checksum += it.Value[0];
                visited++;
            }
            return visited;
        }

        public void Dispose()
        {
        }
    }
}
