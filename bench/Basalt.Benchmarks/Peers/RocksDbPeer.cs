// RocksDB (NuGet RocksDB, RocksDbSharp over the bundled librocksdb) with its write-ahead log on
// for every write; no path disables the WAL.
//   CommitDurable  Put with WriteOptions.sync = true: the WAL record is fdatasync'ed before the
//                  call returns (concurrent writers are grouped into one WAL write and sync).
//   CommitBatch    one WriteBatch of the keys, WriteOptions.sync = false (WAL written, not synced).
//   Sync           rocksdb_flush_wal(sync = true): the WAL up to the last write is fdatasync'ed.
//   Settle         memtable flushed to an SST, then a full manual compaction.
// Options: create_if_missing; no compression (values are random and neither other peer
// compresses); a 1 GiB LRU block cache so the loaded data set fits in memory as it does for the
// others; IncreaseParallelism(2) for the two cores; everything else RocksDB's defaults (64 MiB
// write buffer, fdatasync rather than fsync, WAL recovery mode point-in-time).
using RocksDbSharp;

namespace Basalt.Benchmarks.Peers;

public sealed class RocksDbPeer : IKvPeer
{
    private const ulong BlockCacheBytes = 1L << 30;

    private readonly RocksDb _db;
    // The native database keeps pointers into its options (block cache, table factory): they live
    // as long as the database.
    private readonly DbOptions _options;
    private readonly WriteOptions _durable = new WriteOptions().SetSync(true);
    private readonly WriteOptions _buffered = new WriteOptions().SetSync(false);

    private RocksDbPeer(string directory, RocksDb db, DbOptions options)
    {
        Directory = directory;
        _db = db;
        _options = options;
    }

    public string Name => PeerCatalog.RocksDb;

    public string Settings =>
        $"RocksDB {typeof(RocksDb).Assembly.GetName().Version}: WAL on, durable commits sync=true, batches sync=false, " +
        "no compression, 1 GiB LRU block cache, IncreaseParallelism(2), other options default";

    public string Directory { get; }

    public static RocksDbPeer Open(string directory)
    {
        var table = new BlockBasedTableOptions().SetBlockCache(Cache.CreateLru(BlockCacheBytes));
        var options = new DbOptions()
            .SetCreateIfMissing(true)
            .SetCompression(Compression.No)
            .SetBlockBasedTableFactory(table)
            .IncreaseParallelism(2);
        return new RocksDbPeer(directory, RocksDb.Open(options, Path.Combine(directory, "rocksdb")), options);
    }

    public void CommitDurable(PeerKey key, ReadOnlySpan<byte> value)
    {
        Span<byte> k = stackalloc byte[PeerKey.Size];
        key.WriteTo(k);
        _db.Put(k, value, null, _durable);
    }

    public void CommitBatch(ReadOnlySpan<PeerKey> keys, ReadOnlySpan<byte> values)
    {
        Span<byte> k = stackalloc byte[PeerKey.Size];
        using var batch = new WriteBatch();
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i].WriteTo(k);
            batch.Put(k, values.Slice(i * PeerData.ValueSize, PeerData.ValueSize));
        }
        _db.Write(batch, _buffered);
    }

    public void Sync() => Native.Instance.rocksdb_flush_wal(_db.Handle, 1);

    public void Settle()
    {
        Sync();
        _db.Flush(new FlushOptions().SetWaitForFlush(true));
        _db.CompactRange((byte[]?)null, null);
    }

    public IKvReader OpenReader() => new Reader(_db);

    public void Dispose()
    {
        _db.Dispose();
        GC.KeepAlive(_options);
    }

    private sealed class Reader(RocksDb db) : IKvReader
    {
        private readonly byte[] _key = new byte[PeerKey.Size];
        private readonly byte[] _value = new byte[PeerData.ValueSize * 2];
        private readonly ReadOptions _read = new();

        public bool TryGet(PeerKey key, Span<byte> value, out int length)
        {
            key.WriteTo(_key);
            var got = db.Get(_key, _key.Length, _value, 0, _value.Length, null, _read);
            if (got < 0)
            {
                length = 0;
                return false;
            }
            length = (int)got;
            _value.AsSpan(0, Math.Min(length, value.Length)).CopyTo(value);
            return true;
        }

        public long Scan(PeerKey start, long maxKeys, out long checksum)
        {
            Span<byte> k = stackalloc byte[PeerKey.Size];
            start.WriteTo(k);
            using var it = db.NewIterator(null, _read);
            it.Seek(k);
            long visited = 0;
            checksum = 0;
            while (visited < maxKeys && it.Valid())
            {
                checksum += it.GetValueSpan()[0];
                visited++;
                it.Next();
            }
            return visited;
        }

        public void Dispose()
        {
        }
    }
}
