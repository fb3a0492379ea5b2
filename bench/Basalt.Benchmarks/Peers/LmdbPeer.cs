// LMDB through LightningDB 0.24 over the system's liblmdb (see LmdbNativeLibrary).
//   CommitDurable  one write transaction per key with the environment's default flags: commit
//                  writes the pages, fdatasyncs, writes the meta page and fdatasyncs again.
//                  Writers are serialised by LMDB's writer lock; there is no group commit.
//   CommitBatch    one write transaction per batch with MDB_NOSYNC set on the environment
//                  (mdb_env_set_flags), so commit does not sync.
//   Sync           mdb_env_sync(force = 1).
//   Settle         a Sync.
// Map size 8 GiB (the file grows only as pages are used); default page size; one unnamed database.
// MDB_NOSYNC is switched per call, so CommitBatch must not run while another thread commits.
using LightningDB;

namespace Basalt.Benchmarks.Peers;

public sealed class LmdbPeer : IKvPeer
{
    private const long MapSize = 8L << 30;

    private readonly LightningEnvironment _env;
    private readonly LightningDatabase _db;
    private readonly Lock _flagsGate = new();
    private bool _noSync;

    private LmdbPeer(string directory, LightningEnvironment env, LightningDatabase db)
    {
        Directory = directory;
        _env = env;
        _db = db;
    }

    public string Name => PeerCatalog.Lmdb;

    public string Settings =>
        $"LMDB {LmdbNativeLibrary.Describe(_env)} via LightningDB {LmdbNativeLibrary.Assembly.GetName().Version}: " +
        "default env flags (sync at commit) for durable commits, MDB_NOSYNC for batches, map size 8 GiB";

    public string Directory { get; }

    public static LmdbPeer Open(string directory)
    {
        LmdbNativeLibrary.EnsureInstalled();
        var env = new LightningEnvironment(Path.Combine(directory, "lmdb"), new EnvironmentConfiguration { MapSize = MapSize });
        try
        {
            System.IO.Directory.CreateDirectory(env.Path);
            env.Open();
            LightningDatabase db;
            using (var tx = env.BeginTransaction())
            {
                db = tx.OpenDatabase(configuration: new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create });
                tx.Commit().ThrowOnError();
            }
            return new LmdbPeer(directory, env, db);
        }
        catch
        {
            env.Dispose();
            throw;
        }
    }

    public void CommitDurable(PeerKey key, ReadOnlySpan<byte> value)
    {
        SetNoSync(false);
        Span<byte> k = stackalloc byte[PeerKey.Size];
        key.WriteTo(k);
        using var tx = _env.BeginTransaction();
        tx.Put(_db, k, value).ThrowOnError();
        tx.Commit().ThrowOnError();
    }

    public void CommitBatch(ReadOnlySpan<PeerKey> keys, ReadOnlySpan<byte> values)
    {
        SetNoSync(true);
        Span<byte> k = stackalloc byte[PeerKey.Size];
        using var tx = _env.BeginTransaction();
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i].WriteTo(k);
            tx.Put(_db, k, values.Slice(i * PeerData.ValueSize, PeerData.ValueSize)).ThrowOnError();
        }
        tx.Commit().ThrowOnError();
    }

    public void Sync() => _env.Flush(force: true);

    public void Settle() => Sync();

    public IKvReader OpenReader() => new Reader(_env.BeginTransaction(TransactionBeginFlags.ReadOnly), _db);

    public void Dispose()
    {
        _db.Dispose();
        _env.Dispose();
    }

    private void SetNoSync(bool on)
    {
        if (_noSync == on)
            return;
        lock (_flagsGate)
        {
            if (_noSync == on)
                return;
            _env.Flags = on ? _env.Flags | EnvironmentOpenFlags.NoSync : _env.Flags & ~EnvironmentOpenFlags.NoSync;
            _noSync = on;
        }
    }

    private sealed class Reader(LightningTransaction tx, LightningDatabase db) : IKvReader
    {
        public bool TryGet(PeerKey key, Span<byte> value, out int length)
        {
            Span<byte> k = stackalloc byte[PeerKey.Size];
            key.WriteTo(k);
            var (code, _, found) = tx.Get(db, k);
            if (code == MDBResultCode.NotFound)
            {
                length = 0;
                return false;
            }
            code.ThrowOnReadError();
            var span = found.AsSpan();
            length = span.Length;
            span[..Math.Min(length, value.Length)].CopyTo(value);
            return true;
        }

        public long Scan(PeerKey start, long maxKeys, out long checksum)
        {
            Span<byte> k = stackalloc byte[PeerKey.Size];
            start.WriteTo(k);
            using var cursor = tx.CreateCursor(db);
            long visited = 0;
            checksum = 0;
            var code = cursor.SetRange(k);
            var value = default(MDBValue);
            if (code == MDBResultCode.Success)
                (code, _, value) = cursor.GetCurrent();
            while (visited < maxKeys && code == MDBResultCode.Success)
            {
                checksum += value.AsSpan()[0];
                visited++;
                (code, _, value) = cursor.Next();
            }
            if (code is not (MDBResultCode.Success or MDBResultCode.NotFound))
                code.ThrowOnReadError();
            return visited;
        }

        public void Dispose() => tx.Dispose();
    }
}
