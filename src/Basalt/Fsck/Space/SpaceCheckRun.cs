// What the allocation and backpointer passes share while one fsck run (or one SpaceChecks.Run)
// goes through them: the mounted filesystem, the reporter, the bucket geometry, the memory budget
// of the bounded passes, repairs batched into transactions, and the few results one pass hands to
// a later one (the staleness of every pointer check_allocations kept, for gc_gens; the missing
// backpointers check_extents_to_backpointers reported, so the reverse pass does not report them
// twice). Nothing here hides trigger logic: the passes recount from the pointers themselves.
using System.Buffers.Binary;
using Basalt.Alloc;
using Basalt.Data;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Transactions;

namespace Basalt.Fsck.Space;

/// <summary>State shared by the space passes of one run.</summary>
public sealed class SpaceCheckState
{
    /// <summary>Per device and bucket: how far the oldest kept pointer is behind the bucket's gen (check_allocations).</summary>
    internal byte[][]? Behind { get; set; }

    /// <summary>Backpointer slots check_extents_to_backpointers reported missing and did not write.</summary>
    internal HashSet<Bpos> ReportedMissing { get; } = [];
}

internal sealed class SpaceCheckRun
{
    private readonly RepairBatch _repairs;

    public SpaceCheckRun(BasaltFileSystem fs, IFsckReporter reporter, long maxMem, SpaceCheckState state)
    {
        FileSystem = fs;
        _repairs = new RepairBatch(fs, reporter);
        Reporter = reporter;
        MaxMem = Math.Max(maxMem, 4096);
        State = state;
        Layout = fs.Space.Layout;
        DeviceName = fs.Device.Name;
    }

    public BasaltFileSystem FileSystem { get; }

    public IFsckReporter Reporter { get; }

    public long MaxMem { get; }

    public SpaceCheckState State { get; }

    public SpaceLayout Layout { get; }

    public string DeviceName { get; }

    public string Where(BtreeId btree, Bpos pos) => $"{DeviceName}: btree {btree.ToText()} {pos.ToText()}";

    public string WhereBucket(byte device, ulong bucket) => $"{DeviceName}: dev {device} bucket {bucket}";

    /// <summary>Queues a repair; repairs commit in batches (and at <see cref="Flush"/>).</summary>
    public void Repair(Action<Transaction> update) => _repairs.Add(update);

    public void Flush() => _repairs.Flush();

    /// <summary>Writes <paramref name="value"/> as the alloc key of a bucket, or deletes the key when the value is the layout's default.</summary>
    public void WriteAlloc(DeviceLayout device, ulong bucket, AllocValue value, bool hasKey)
    {
        var pos = SpacePositions.Bucket(device.Index, bucket);
        if (value == device.DefaultAlloc(bucket))
        {
            if (hasKey)
                Repair(t => t.Delete(BtreeId.Alloc, pos));
            return;
        }
        var bytes = value.ToArray();
        Repair(t => t.Set(BtreeId.Alloc, new Bkey(pos, KeyType.Alloc), bytes));
    }
}

/// <summary>
/// The keys that hold data pointers: extent keys in the extents btree, and indirect extents
/// (reflink_v) in the reflink btree, whose value is a refcount and then an extent value. Every
/// space pass walks both, and a backpointer names one of the two btrees as its owner.
/// </summary>
internal static class DataOwners
{
    public static readonly BtreeId[] Btrees = [BtreeId.Extents, BtreeId.Reflink];

    public static bool IsOwner(BtreeId btree) => btree is BtreeId.Extents or BtreeId.Reflink;

    /// <summary>True when a key of <paramref name="type"/> in <paramref name="btree"/> holds data pointers.</summary>
    public static bool HoldsPointers(BtreeId btree, KeyType type) =>
        type == (btree == BtreeId.Reflink ? KeyType.ReflinkV : KeyType.Extent);

    /// <summary>The pointers of a key that <see cref="HoldsPointers"/> (none for any other key).</summary>
    public static ExtentPtrs Pointers(BtreeId btree, KeyType type, ReadOnlySpan<byte> value) =>
        !HoldsPointers(btree, type) ? default
        : btree == BtreeId.Reflink ? new ExtentPtrs(ReflinkIndirect.ExtentBytes(value))
        : new ExtentPtrs(value);
}

/// <summary>A zero-copy view of the pointers of an extent value (the codec's offsets; nothing allocated).</summary>
internal readonly ref struct ExtentPtrs
{
    private readonly ReadOnlySpan<byte> _value;

    public ExtentPtrs(ReadOnlySpan<byte> value)
    {
        _value = value;
        Count = value.Length >= ExtentValue.FixedSize && value[ExtentValue.PtrCountOffset] <= ExtentValue.MaxPtrs &&
                value.Length >= ExtentValue.FixedSize + (value[ExtentValue.PtrCountOffset] * DevicePtr.SizeOf)
            ? value[ExtentValue.PtrCountOffset]
            : 0;
    }

    public int Count { get; }

    public uint Covered => BinaryPrimitives.ReadUInt32LittleEndian(_value[ExtentValue.CoveredOffset..]);

    public uint Window => BinaryPrimitives.ReadUInt32LittleEndian(_value[ExtentValue.WindowOffset..]);

    public DevicePtr this[int i]
    {
        get => DevicePtr.Read(_value[(ExtentValue.PtrsOffset + (i * DevicePtr.SizeOf))..]);
    }
}

/// <summary>
/// Walks the buckets [0, nbuckets) of one device in order with their stored alloc value (the
/// layout's default where there is no key). Keys outside the bucket range are handed to a
/// callback (check_allocations deletes them; the other passes skip them).
/// </summary>
internal sealed class AllocWalk
{
    private readonly Btree.BtreeIterator _keys;
    private readonly DeviceLayout _device;
    private readonly Action<Bkey, ulong>? _outside;
    private bool _haveKey;
    private ulong _keyBucket;
    private AllocValue _keyValue;

    public AllocWalk(BasaltFileSystem fs, DeviceLayout device, ulong start, ulong end, Action<Bkey, ulong>? outside = null)
    {
        _device = device;
        _outside = outside;
        Bucket = start - 1;
        End = Math.Min(end, device.Nbuckets);
        _keys = fs.Btrees[BtreeId.Alloc].Iterate(new Bpos(device.Index, start), new Bpos(device.Index, ulong.MaxValue, uint.MaxValue));
        Advance();
    }

    public ulong End { get; }

    public ulong Bucket { get; private set; }

    public AllocValue Value;

    public bool HasKey { get; private set; }

    public bool MoveNext()
    {
        Bucket++;
        if (Bucket >= End)
            return false;
        if (_haveKey && _keyBucket == Bucket)
        {
            Value = _keyValue;
            HasKey = true;
            Advance();
        }
        else
        {
            Value = _device.DefaultAlloc(Bucket);
            HasKey = false;
        }
        return true;
    }

    private void Advance()
    {
        while (_keys.MoveNext())
        {
            var key = _keys.Key;
            if (key.Pos.Snapshot != 0 || key.Type != KeyType.Alloc || !AllocValue.TryRead(_keys.Value, out var value, out _))
            {
                _outside?.Invoke(key, key.Pos.Offset);
                continue;
            }
            if (key.Pos.Offset < _device.FirstBucket || key.Pos.Offset >= _device.Nbuckets)
            {
                if (key.Pos.Offset >= End && key.Pos.Offset < _device.Nbuckets)
                    break; // beyond the walked range: stop
                _outside?.Invoke(key, key.Pos.Offset);
                continue;
            }
            if (key.Pos.Offset >= End)
                break;
            _haveKey = true;
            _keyBucket = key.Pos.Offset;
            _keyValue = value;
            return;
        }
        _haveKey = false;
    }
}
