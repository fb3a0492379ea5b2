// bucket_gens keys: the gens of 256 consecutive buckets in one key at (device, bucket / 256), so
// mount and stale-pointer checks can load every gen of a device without reading its alloc keys.
// Maintained by the alloc trigger; absent = every gen 0.
namespace Basalt.Alloc;

public static class BucketGensValue
{
    public const int Size = SpacePositions.GensPerKey;

    public static bool TryValidate(ReadOnlySpan<byte> value, out string? problem)
    {
        problem = value.Length == Size ? null : $"bucket_gens value of {value.Length} bytes (must be {Size})";
        return problem is null;
    }

    public static string ToText(ReadOnlySpan<byte> value)
    {
        var nonZero = 0;
        foreach (var g in value)
        {
            if (g != 0)
                nonZero++;
        }
        return $"{value.Length} gens, {nonZero} non-zero";
    }
}
