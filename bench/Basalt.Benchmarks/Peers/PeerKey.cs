// A 16-byte key as two u64 halves; its byte form is both halves big-endian, so unsigned byte
// order (memcmp) and (High, Low) order agree.
using System.Buffers.Binary;

namespace Basalt.Benchmarks.Peers;

public readonly record struct PeerKey(ulong High, ulong Low) : IComparable<PeerKey>
{
    public const int Size = 16;

    public static PeerKey Min => new(0, 0);

    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, High);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Low);
    }

    public static PeerKey Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt64BigEndian(source[8..]));

    public int CompareTo(PeerKey other)
    {
        var c = High.CompareTo(other.High);
        return c != 0 ? c : Low.CompareTo(other.Low);
    }
}
