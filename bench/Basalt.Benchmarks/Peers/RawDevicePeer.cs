// The floor under every durable commit: one 4 KiB pwrite (RandomAccess.Write) followed by libc
// fdatasync on the same file, the primitive Basalt's FileBlockDevice.Flush uses. The file is
// written in full and synced when opened, so a commit overwrites allocated blocks and fdatasync
// has no metadata to write: this is the cheapest a durable commit on this filesystem can be.
//
// Each thread gets its own 4 MiB region and writes its blocks in order through it (a log per
// thread); fdatasync flushes the whole file, so concurrent commits share device flushes the way
// a group commit would.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Basalt.Benchmarks.Peers;

public sealed partial class RawDevicePeer : IDurableCommitter
{
    public const int BlockSize = 4096;
    private const int Regions = 16;
    private const long RegionBytes = 4L * 1024 * 1024;

    private readonly SafeFileHandle _file;
    private readonly long[] _nextBlock = new long[Regions];
    private readonly ThreadLocal<(int Region, byte[] Block)> _perThread;
    private int _regionsTaken;

    private RawDevicePeer(string directory, SafeFileHandle file)
    {
        Directory = directory;
        _file = file;
        _perThread = new ThreadLocal<(int, byte[])>(() =>
        {
            var region = Interlocked.Increment(ref _regionsTaken) - 1;
            if (region >= Regions)
                throw new InvalidOperationException($"raw device: more than {Regions} committing threads");
            return (region, GC.AllocateArray<byte>(BlockSize, pinned: true));
        });
    }

    public string Name => PeerCatalog.Raw;

    public string Settings => $"4 KiB pwrite + fdatasync(2) per commit into a {Regions * RegionBytes >> 20} MiB preallocated, pre-written file";

    public string Directory { get; }

    public static RawDevicePeer Open(string directory)
    {
        var path = Path.Combine(directory, "raw.dat");
        var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        try
        {
            var chunk = new byte[1024 * 1024];
            new Random(3).NextBytes(chunk);
            for (long at = 0; at < Regions * RegionBytes; at += chunk.Length)
                RandomAccess.Write(file, chunk, at);
            FdataSync(file);
            return new RawDevicePeer(directory, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void CommitDurable(PeerKey key, ReadOnlySpan<byte> value)
    {
        var (region, block) = _perThread.Value;
        key.WriteTo(block);
        value.CopyTo(block.AsSpan(PeerKey.Size));
        var blockIndex = _nextBlock[region]++ % (RegionBytes / BlockSize);
        RandomAccess.Write(_file, block, region * RegionBytes + (blockIndex * BlockSize));
        FdataSync(_file);
    }

    public void Dispose()
    {
        _perThread.Dispose();
        _file.Dispose();
    }

    /// <summary>fdatasync(2), retried on EINTR (the raw peers of every measurement).</summary>
    internal static void FdataSync(SafeFileHandle file)
    {
        while (Fdatasync(file) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != 4) // EINTR
                throw new IOException($"fdatasync failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
    }

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int Fdatasync(SafeFileHandle fd);
}
