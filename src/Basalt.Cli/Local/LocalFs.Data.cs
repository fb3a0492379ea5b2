// File contents: positioned reads and writes (the descriptor's offset is never used, so one
// descriptor can serve several readers), size, durability, and where a sparse file has data.
namespace Basalt.Cli.Local;

internal static partial class LocalFs
{
    /// <summary>pread: up to buffer.Length bytes at <paramref name="offset"/>; fewer only at the end of the file (0 there).</summary>
    public static int ReadAt(LocalFd fd, Span<byte> buffer, long offset)
    {
        nint read;
        do
        {
            read = LocalLibC.Pread(fd, buffer, (nuint)buffer.Length, offset);
        }
        while (read < 0 && LastErrno() == Errno.EINTR);
        if (read < 0)
            ThrowLast("read", fd);
        return (int)read;
    }

    /// <summary>pwrite of all of <paramref name="data"/> at <paramref name="offset"/>, continuing after short writes.</summary>
    public static void WriteAt(LocalFd fd, ReadOnlySpan<byte> data, long offset)
    {
        while (!data.IsEmpty)
        {
            var written = LocalLibC.Pwrite(fd, data, (nuint)data.Length, offset);
            if (written < 0)
            {
                if (LastErrno() == Errno.EINTR)
                    continue;
                ThrowLast("write", fd);
            }
            // A regular file takes at least one byte or fails (ENOSPC); 0 would loop forever.
            if (written == 0)
                throw new LocalFsException(Errno.EIO, "write", fd.Path);
            data = data[(int)written..];
            offset += written;
        }
    }

    /// <summary>ftruncate: sets the size; growing leaves a hole.</summary>
    public static void Truncate(LocalFd fd, long size)
    {
        if (LocalLibC.Ftruncate(fd, size) < 0)
            ThrowLast("truncate", fd);
    }

    /// <summary>fsync: data and metadata durable.</summary>
    public static void Sync(LocalFd fd)
    {
        if (LocalLibC.Fsync(fd) < 0)
            ThrowLast("sync", fd);
    }

    /// <summary>fdatasync: data, and the metadata needed to read it back (the size), durable.</summary>
    public static void DataSync(LocalFd fd)
    {
        if (LocalLibC.Fdatasync(fd) < 0)
            ThrowLast("sync", fd);
    }

    /// <summary>
    /// The ranges of a regular file that hold data, in order, found with lseek SEEK_DATA and
    /// SEEK_HOLE; everything between them reads as zeroes. A filesystem that cannot tell reports
    /// the whole file as one range (so does the kernel's generic implementation). The size is
    /// taken once at the start: data appended later is not reported, a file cut shorter ends early.
    /// The ranges are granular to the filesystem's blocks, so a range may include zero bytes.
    /// </summary>
    public static IEnumerable<(long Offset, long Length)> DataRanges(LocalFd fd)
    {
        var size = Stat(fd).Size;
        for (long position = 0; position < size;)
        {
            var data = LocalLibC.Lseek(fd, position, LocalLibC.SeekData);
            if (data < 0)
            {
                var errno = LastErrno();
                if (errno == Errno.ENXIO)
                    yield break; // no data after position: the rest is a hole (or the file shrank)
                if (position == 0 && errno is Errno.EINVAL or Errno.EOPNOTSUPP)
                {
                    yield return (0, size);
                    yield break;
                }
                ThrowLast("find data in", fd);
            }
            if (data >= size)
                yield break;
            var hole = LocalLibC.Lseek(fd, data, LocalLibC.SeekHole);
            if (hole < 0)
                ThrowLast("find holes in", fd);
            var end = Math.Min(hole, size);
            yield return (data, end - data);
            position = end;
        }
    }
}
