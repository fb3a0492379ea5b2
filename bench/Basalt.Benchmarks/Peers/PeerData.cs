// The data every peer benchmark uses, generated from fixed seeds so that each peer, each run and
// each revision of an A/B comparison sees the same keys and values.
namespace Basalt.Benchmarks.Peers;

public static class PeerData
{
    public const int ValueSize = 100;

    /// <summary>Distinct values in the pool; values of consecutive keys differ, so nothing compresses.</summary>
    private const int PoolValues = 4096;

    private static readonly Lazy<byte[]> s_pool = new(() =>
    {
        // A batch takes a contiguous slice, so the pool has room for one more batch past its end.
        var pool = new byte[(PoolValues + 1024) * ValueSize];
        new Random(7).NextBytes(pool);
        return pool;
    });

    /// <summary>
    /// <paramref name="count"/> values for the keys starting at index <paramref name="first"/>,
    /// contiguous, <see cref="ValueSize"/> bytes each (at most 1024 values per call).
    /// </summary>
    public static ReadOnlySpan<byte> Values(long first, int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, 1024);
        var at = (int)(first % PoolValues);
        return s_pool.Value.AsSpan(at * ValueSize, count * ValueSize);
    }

    /// <summary>The value of the key with index <paramref name="index"/>.</summary>
    public static ReadOnlySpan<byte> Value(long index) => Values(index, 1);

    /// <summary><paramref name="count"/> distinct keys spread uniformly over the 128-bit key space.</summary>
    public static PeerKey[] RandomKeys(int count, int seed)
    {
        var rng = new Random(seed);
        var keys = new PeerKey[count];
        var seen = new HashSet<PeerKey>(count);
        for (var i = 0; i < count; i++)
        {
            PeerKey key;
            do
                key = new PeerKey((ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63), (ulong)rng.NextInt64());
            while (!seen.Add(key));
            keys[i] = key;
        }
        return keys;
    }
}
