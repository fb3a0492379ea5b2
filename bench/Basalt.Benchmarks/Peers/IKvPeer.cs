// Peers: the embedded engines Basalt is measured against, behind one small interface so that
// every peer benchmark runs the same code for each engine, in the same process and the same run.
//
// Keys are 16 bytes compared as unsigned bytes (memcmp order, the default of RocksDB and LMDB);
// values are 100 bytes. A PeerKey is two u64 halves written big-endian, so Basalt stores it as
// Bpos(inode = high half, offset = low half) and keeps exactly the same order.
//
// Durability, per operation, is what the benchmarks rely on:
//   CommitDurable  returns after the key and everything committed before it is on stable storage.
//   CommitBatch    applies the keys; they become durable at the next Sync or durable commit.
//   Sync           everything committed before the call is durable when it returns.
// Each implementation says in its header how it meets these (which flush, which flags).
//
// IDurableCommitter is the narrow part the raw device also implements; IKvPeer adds batches and
// reads. Implementations are opened through PeerCatalog, which owns the list of peer names.
namespace Basalt.Benchmarks.Peers;

/// <summary>An engine that can make one key durable: every peer, and the raw device baseline.</summary>
public interface IDurableCommitter : IDisposable
{
    /// <summary>The peer name used in parameters and tables ("RocksDB", "LMDB", "Basalt", "raw").</summary>
    string Name { get; }

    /// <summary>One line with the library version and the settings that matter for the numbers.</summary>
    string Settings { get; }

    /// <summary>The directory holding every file of this peer (measured for size reports).</summary>
    string Directory { get; }

    /// <summary>Writes one key and returns once it is durable. Safe to call from several threads at once.</summary>
    void CommitDurable(PeerKey key, ReadOnlySpan<byte> value);
}

/// <summary>A key-value engine: durable and batched commits, point reads and ordered scans.</summary>
public interface IKvPeer : IDurableCommitter
{
    /// <summary>
    /// Writes <paramref name="keys"/> with values taken in order from <paramref name="values"/>
    /// (<see cref="PeerData.ValueSize"/> bytes each), as one commit where the engine has them,
    /// without waiting for stable storage. One thread at a time.
    /// </summary>
    void CommitBatch(ReadOnlySpan<PeerKey> keys, ReadOnlySpan<byte> values);

    /// <summary>Makes every commit made before the call durable.</summary>
    void Sync();

    /// <summary>
    /// Brings the store into its steady state for reads after a bulk load (RocksDB: memtable flushed
    /// and compacted; others: a Sync). Not timed by the benchmarks.
    /// </summary>
    void Settle();

    /// <summary>A read session (a read transaction where the engine has them). One thread.</summary>
    IKvReader OpenReader();
}

/// <summary>
/// Point reads and ordered scans. Owned by one thread; dispose it before writing again (an open
/// LMDB read transaction pins the pages of its snapshot).
/// </summary>
public interface IKvReader : IDisposable
{
    /// <summary>Copies the value of <paramref name="key"/> into <paramref name="value"/>; false when absent.</summary>
    bool TryGet(PeerKey key, Span<byte> value, out int length);

    /// <summary>
    /// Visits up to <paramref name="maxKeys"/> keys &gt;= <paramref name="start"/> in ascending order,
    /// reading each value; returns how many were visited and the sum of their first value bytes.
    /// </summary>
    long Scan(PeerKey start, long maxKeys, out long checksum);
}
