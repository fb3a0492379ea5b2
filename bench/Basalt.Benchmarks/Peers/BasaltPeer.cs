// Basalt over its current public API: the Test btree of a freshly formatted image file, keys at
// Bpos(inode = key high half, offset = key low half), 100-byte cookie values. This file is the
// one to change when commits move to the transaction API; the rest of the harness only sees IKvPeer.
//   CommitDurable  Insert, then BasaltFileSystem.Sync: dirty nodes written level by level with an
//                  fdatasync per level, then the superblock (every copy, flushed) with the new
//                  roots. Concurrent committers share a Sync when their inserts land before it
//                  captures (Syncs are serialised).
//   CommitBatch    Inserts one by one; no I/O. The current API has no transactions, so a batch
//                  is not atomic: it becomes durable with the next Sync like every other insert.
//   Sync           BasaltFileSystem.Sync.
//   Settle         a Sync.
// Reads see the live tree (no snapshot): each TryGet and iterator refill takes the engine's read lock.
// Image: a 4 GiB sparse file formatted with FormatOptions defaults (4 KiB blocks, 256 KiB nodes,
// bucket size and node area from the device size); node cache budget 2 GiB so the loaded data set
// stays in memory as it does for the other peers; write-once checking off.
using Basalt.Btree;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

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
        $"Basalt (current API: Insert + BasaltFileSystem.Sync): {ImageSize >> 30} GiB sparse image, " +
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
        _tree.Insert(PosOf(key), value);
        _fs.Sync();
    }

    public void CommitBatch(ReadOnlySpan<PeerKey> keys, ReadOnlySpan<byte> values)
    {
        for (var i = 0; i < keys.Length; i++)
            _tree.Insert(PosOf(keys[i]), values.Slice(i * PeerData.ValueSize, PeerData.ValueSize));
    }

    public void Sync() => _fs.Sync();

    public void Settle() => Sync();

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
