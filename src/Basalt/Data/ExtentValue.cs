// The value of an extent key (btree extents, key type `extent`). The key is indexed by its end:
// position (inode, end sector, snapshot) and size = live sectors, so the extent covers
// [end - size, end). The data was written once as a checksummed run of `covered` sectors (at most
// 64 KiB) at each pointer's offset; the live part is the window [offset, offset + size) of that
// run. Trimming an extent moves the window and never changes the pointers or the checksum, so a
// read of any part reads and verifies the whole run (at most 64 KiB) and returns the window.
// Layout in docs/format.md ("Extent value").
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Basalt.Format;

namespace Basalt.Data;

public sealed class ExtentValue
{
    public const int ChecksumTypeOffset = 0;    // u8
    public const int CompressionOffset = 1;     // u8, reserved: 0 = none
    public const int PtrCountOffset = 2;        // u8
    public const int FlagsOffset = 3;           // u8, reserved: zero
    public const int CoveredOffset = 4;         // u32: sectors the checksum covers (the run as written)
    public const int CompressedOffset = 8;      // u32: sectors on disk (= covered while uncompressed)
    public const int WindowOffset = 12;         // u32: first live sector within the run
    public const int ChecksumOffset = 16;       // u64
    public const int PtrsOffset = 24;           // DevicePtr[n], 16 bytes each (as in btree pointers)
    public const int FixedSize = 24;
    public const int MaxPtrs = 4;

    /// <summary>The largest encoded value: the fixed part and <see cref="MaxPtrs"/> pointers.</summary>
    public const int MaxEncodedSize = FixedSize + (MaxPtrs * DevicePtr.SizeOf);

    /// <summary>The largest run one checksum covers: 64 KiB (DESIGN §3).</summary>
    public const int MaxCoveredSectors = 128;

    public ChecksumType ChecksumType { get; init; }
    public uint CoveredSectors { get; init; }
    public uint Window { get; init; }
    public ulong Checksum { get; init; }
    public IReadOnlyList<DevicePtr> Ptrs { get; init; } = [];

    public int EncodedSize => FixedSize + (DevicePtr.SizeOf * Ptrs.Count);

    /// <summary>The same run with the live window moved to [<paramref name="window"/>, …).</summary>
    public ExtentValue WithWindow(uint window) => new()
    {
        ChecksumType = ChecksumType,
        CoveredSectors = CoveredSectors,
        Window = window,
        Checksum = Checksum,
        Ptrs = Ptrs,
    };

    public ExtentValue WithPtrs(IReadOnlyList<DevicePtr> ptrs) => new()
    {
        ChecksumType = ChecksumType,
        CoveredSectors = CoveredSectors,
        Window = Window,
        Checksum = Checksum,
        Ptrs = ptrs,
    };

    public int Write(Span<byte> destination)
    {
        var size = EncodedSize;
        var d = destination[..size];
        d.Clear();
        d[ChecksumTypeOffset] = (byte)ChecksumType;
        d[PtrCountOffset] = (byte)Ptrs.Count;
        BinaryPrimitives.WriteUInt32LittleEndian(d[CoveredOffset..], CoveredSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(d[CompressedOffset..], CoveredSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(d[WindowOffset..], Window);
        BinaryPrimitives.WriteUInt64LittleEndian(d[ChecksumOffset..], Checksum);
        for (var i = 0; i < Ptrs.Count; i++)
            Ptrs[i].Write(d[(PtrsOffset + (i * DevicePtr.SizeOf))..]);
        return size;
    }

    public byte[] ToBytes()
    {
        var bytes = new byte[EncodedSize];
        Write(bytes);
        return bytes;
    }

    /// <summary>Parses a value; false with a reason when malformed (sizes are checked against the key by <see cref="CheckAgainstKey"/>).</summary>
    public static bool TryRead(ReadOnlySpan<byte> value, out ExtentValue extent, out string? problem)
    {
        extent = null!;
        if (!IsWellFormed(value, out problem))
            return false;
        var view = new ExtentValueView(value);
        var ptrs = new DevicePtr[view.PtrCount];
        for (var i = 0; i < ptrs.Length; i++)
            ptrs[i] = view.Ptr(i);
        extent = new ExtentValue
        {
            ChecksumType = view.ChecksumType,
            CoveredSectors = view.CoveredSectors,
            Window = view.Window,
            Checksum = view.Checksum,
            Ptrs = ptrs,
        };
        return true;
    }

    /// <summary>
    /// Checks an encoded value as <see cref="TryRead"/> does, allocating nothing unless it is
    /// malformed (the reason); a well-formed value can be read through <see cref="ExtentValueView"/>.
    /// </summary>
    public static bool IsWellFormed(ReadOnlySpan<byte> value, out string? problem)
    {
        if (value.Length < FixedSize + DevicePtr.SizeOf || (value.Length - FixedSize) % DevicePtr.SizeOf != 0)
        {
            problem = $"extent value of {value.Length} bytes (expected {FixedSize} + 16 per pointer)";
            return false;
        }
        var n = (value.Length - FixedSize) / DevicePtr.SizeOf;
        if (n > MaxPtrs || value[PtrCountOffset] != n)
        {
            problem = $"extent value with {value[PtrCountOffset]} pointers in {n} slots (at most {MaxPtrs})";
            return false;
        }
        var csumType = value[ChecksumTypeOffset];
        if (!Checksums.IsKnown(csumType))
        {
            problem = $"extent with unknown checksum type {csumType}";
            return false;
        }
        if (value[CompressionOffset] != 0 || value[FlagsOffset] != 0)
        {
            problem = $"extent with compression type {value[CompressionOffset]} or flags {value[FlagsOffset]} (none are supported)";
            return false;
        }
        var covered = BinaryPrimitives.ReadUInt32LittleEndian(value[CoveredOffset..]);
        if (covered == 0 || covered > MaxCoveredSectors || BinaryPrimitives.ReadUInt32LittleEndian(value[CompressedOffset..]) != covered)
        {
            problem = string.Create(CultureInfo.InvariantCulture,
                $"extent run of {covered} sectors ({BinaryPrimitives.ReadUInt32LittleEndian(value[CompressedOffset..])} on disk; 1..{MaxCoveredSectors}, equal while uncompressed)");
            return false;
        }
        for (var i = 0; i < n; i++)
        {
            var ptr = value[(PtrsOffset + (i * DevicePtr.SizeOf))..];
            if (!DevicePtr.TryRead(ptr, out _))
            {
                problem = $"extent pointer {i} with reserved bits set";
                return false;
            }
            for (var j = 0; j < i; j++)
            {
                if (value[PtrsOffset + (j * DevicePtr.SizeOf) + BtreePtrValue.PtrDeviceOffset] == ptr[BtreePtrValue.PtrDeviceOffset])
                {
                    problem = $"extent with two pointers to device {ptr[BtreePtrValue.PtrDeviceOffset]}";
                    return false;
                }
            }
        }
        problem = null;
        return true;
    }

    /// <summary>The live window must lie inside the run: window + size ≤ covered.</summary>
    public string? CheckAgainstKey(uint keySize)
    {
        if (keySize == 0)
            return "extent of size 0";
        if ((ulong)Window + keySize > CoveredSectors)
            return string.Create(CultureInfo.InvariantCulture, $"extent window {Window}+{keySize} past its run of {CoveredSectors} sectors");
        return null;
    }

    /// <summary>Sectors of the live window as charged to each pointer's bucket.</summary>
    public static uint DiskSectors(uint keySize) => keySize;

    public string ToText()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{ChecksumType.ToText()} {Checksum:x} run {CoveredSectors} window {Window}");
        foreach (var p in Ptrs)
            sb.Append(" [").Append(p.ToText()).Append(']');
        return sb.ToString();
    }

    public override string ToString() => ToText();
}

/// <summary>
/// The fields of an encoded extent value, read in place (the read path parses nothing into
/// objects). Only over a value that passed <see cref="ExtentValue.IsWellFormed"/>.
/// </summary>
public readonly ref struct ExtentValueView(ReadOnlySpan<byte> value)
{
    private readonly ReadOnlySpan<byte> _value = value;

    public ChecksumType ChecksumType => (ChecksumType)_value[ExtentValue.ChecksumTypeOffset];

    public uint CoveredSectors => BinaryPrimitives.ReadUInt32LittleEndian(_value[ExtentValue.CoveredOffset..]);

    public uint Window => BinaryPrimitives.ReadUInt32LittleEndian(_value[ExtentValue.WindowOffset..]);

    public ulong Checksum => BinaryPrimitives.ReadUInt64LittleEndian(_value[ExtentValue.ChecksumOffset..]);

    public int PtrCount => _value[ExtentValue.PtrCountOffset];

    public DevicePtr Ptr(int index) => DevicePtr.Read(_value[(ExtentValue.PtrsOffset + (index * DevicePtr.SizeOf))..]);
}
