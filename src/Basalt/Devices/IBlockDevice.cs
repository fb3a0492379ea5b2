// The block device abstraction every layer above writes through. Offsets and lengths are in
// bytes and must be multiples of the 512-byte sector. Flush is the durability barrier: writes
// that completed before Flush returned survive a crash; nothing else is promised.
namespace Basalt.Devices;

public interface IBlockDevice : IDisposable
{
    /// <summary>Path or description used in messages ("image.img", "memory").</summary>
    string Name { get; }

    /// <summary>Usable size in bytes, a multiple of <see cref="Format.FormatLimits.SectorSize"/>.</summary>
    long Size { get; }

    bool IsReadOnly { get; }

    /// <summary>Reads exactly buffer.Length bytes at offset. Throws BasaltException(Io…) on failure.</summary>
    void Read(long offset, Span<byte> buffer);

    /// <summary>Writes data at offset. Not durable until <see cref="Flush"/> returns.</summary>
    void Write(long offset, ReadOnlySpan<byte> data);

    /// <summary>Durability barrier (fdatasync for files and block devices).</summary>
    void Flush();

    /// <summary>Hints that a range no longer holds data; reads of it may return zeroes or old data.</summary>
    void Discard(long offset, long length);

    /// <summary>
    /// Hints that the completed writes in a range will not change again before the next
    /// <see cref="Flush"/>, so the device may start putting them on the media now instead of all at
    /// once inside that flush. Promises nothing: durability still comes only from Flush, which
    /// also reports any failure of the writes started here. Devices without a write-back cache
    /// ignore it.
    /// </summary>
    void StartWriteback(long offset, long length)
    {
    }
}

/// <summary>
/// Told by the btree's node allocator when a node slot starts and stops being live, so a checker
/// can prove that node writes only ever append (DESIGN §4, docs/format.md "write ordering").
/// </summary>
public interface INodeSpaceObserver
{
    /// <summary>A node slot of <paramref name="length"/> bytes at <paramref name="offset"/> became live and empty.</summary>
    void NodeAllocated(long offset, int length);

    /// <summary>A live node's durable prefix is now <paramref name="writtenBytes"/> bytes (its sectors_written).</summary>
    void NodeWritten(long offset, int writtenBytes);

    /// <summary>The slot at <paramref name="offset"/> is no longer live; it may be rewritten from its start.</summary>
    void NodeFreed(long offset);
}

/// <summary>
/// A device whose length can be raised: an image file (or a memory device). fsck extends a
/// truncated image back to the size its superblock records; a block device cannot be extended.
/// </summary>
public interface IExtensibleDevice : IBlockDevice
{
    /// <summary>True when <see cref="Extend"/> can work on this kind of device (an image file, not a block device).</summary>
    bool CanExtend { get; }

    /// <summary>
    /// Raises <see cref="IBlockDevice.Size"/> to <paramref name="size"/> (a multiple of 512, not smaller
    /// than the size now). The new tail, from the old usable size on, reads as zeroes; the change is
    /// durable when this returns.
    /// </summary>
    void Extend(long size);
}
