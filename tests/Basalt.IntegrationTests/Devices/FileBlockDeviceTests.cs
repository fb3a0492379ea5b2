using System.Diagnostics;
using System.Runtime.Versioning;
using Basalt.Devices;
using Basalt.Devices.Interop;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Devices;

[SupportedOSPlatform("linux")]
public sealed class FileBlockDeviceTests : IDisposable
{
    private const int Sector = FormatLimits.SectorSize;
    private readonly TempDirectory _dir = new("devices");

    public void Dispose() => _dir.Dispose();

    private static byte[] Pattern(int length, int salt)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
            bytes[i] = (byte)((i / Sector * 31) + (i * 7) + (salt * 101) + 1);
        return bytes;
    }

    [Fact]
    public void Create_MakesASparseImageOfTheRequestedSize()
    {
        var path = _dir.File("img");
        using (var device = FileBlockDevice.Create(path, 64L * 1024 * 1024))
        {
            Assert.Equal(64L * 1024 * 1024, device.Size);
            Assert.False(device.IsReadOnly);
            Assert.False(device.IsBlockDevice);
            Assert.Equal(path, device.Name);
        }
        Assert.Equal(64L * 1024 * 1024, new FileInfo(path).Length);
    }

    [Fact]
    public void Create_RefusesAnExistingFileUnlessAsked()
    {
        var path = _dir.File("img");
        File.WriteAllBytes(path, Pattern(4 * Sector, 1));
        var e = Assert.Throws<BasaltException>(() => FileBlockDevice.Create(path, 8 * Sector));
        Assert.Equal(ErrorCode.ExistingFilesystem, e.Code);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Equal(4 * Sector, new FileInfo(path).Length);
        using var device = FileBlockDevice.Create(path, 8 * Sector, overwrite: true);
        Assert.Equal(8 * Sector, device.Size);
    }

    [Fact]
    public void Create_RefusesAnUnalignedSize() =>
        Assert.Equal(ErrorCode.InvalidArgument,
            Assert.Throws<BasaltException>(() => FileBlockDevice.Create(_dir.File("img"), 1000)).Code);

    [Fact]
    public void WriteFlushRead_RoundTripsAcrossReopen()
    {
        var path = _dir.File("img");
        var data = Pattern(24 * Sector, 2);
        using (var device = FileBlockDevice.Create(path, 256 * Sector))
        {
            device.Write(8 * Sector, data);
            device.Write(255 * Sector, Pattern(Sector, 3)); // the last sector
            device.Flush();
            var back = new byte[data.Length];
            device.Read(8 * Sector, back);
            Assert.Equal(data, back);
        }
        using (var device = FileBlockDevice.Open(path, readOnly: true))
        {
            var back = new byte[data.Length];
            device.Read(8 * Sector, back);
            Assert.Equal(data, back);
            var last = new byte[Sector];
            device.Read(255 * Sector, last);
            Assert.Equal(Pattern(Sector, 3), last);
            var hole = new byte[8 * Sector];
            device.Read(0, hole);
            Assert.True(hole.AsSpan().IndexOfAnyExcept((byte)0) < 0);
        }
    }

    [Fact]
    public void SecondWriter_IsRefusedNamingOurPid()
    {
        var path = _dir.File("img");
        using var first = FileBlockDevice.Create(path, 16 * Sector);
        var e = Assert.Throws<BasaltException>(() => FileBlockDevice.Open(path));
        Assert.Equal(ErrorCode.DeviceInUse, e.Code);
        Assert.Contains($"{path}: in use (pid {Environment.ProcessId})", e.Message, StringComparison.Ordinal);
        // The holder is unharmed by the refused open.
        first.Write(0, Pattern(Sector, 4));
        first.Flush();
    }

    [Fact]
    public void ReadOnlyOpen_WhileAWriterHoldsIt_IsRefused()
    {
        var path = _dir.File("img");
        using var writer = FileBlockDevice.Create(path, 16 * Sector);
        var e = Assert.Throws<BasaltException>(() => FileBlockDevice.Open(path, readOnly: true));
        Assert.Equal(ErrorCode.DeviceInUse, e.Code);
        Assert.Contains($"in use (pid {Environment.ProcessId})", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Readers_ShareButExcludeAWriter()
    {
        var path = _dir.File("img");
        FileBlockDevice.Create(path, 16 * Sector).Dispose();
        using var r1 = FileBlockDevice.Open(path, readOnly: true);
        using (var r2 = FileBlockDevice.Open(path, readOnly: true))
            r2.Read(0, new byte[Sector]);
        var e = Assert.Throws<BasaltException>(() => FileBlockDevice.Open(path));
        Assert.Equal(ErrorCode.DeviceInUse, e.Code);
        r1.Dispose();
        using var writer = FileBlockDevice.Open(path); // the last reader left: free again
    }

    [Fact]
    public void Lock_IsReleasedOnDispose()
    {
        var path = _dir.File("img");
        FileBlockDevice.Create(path, 16 * Sector).Dispose();
        for (var i = 0; i < 3; i++)
        {
            using var device = FileBlockDevice.Open(path);
            device.Write(0, Pattern(Sector, i));
        }
    }

    [SkippableFact]
    public void Lock_IsReleasedOnDisposeWhileChildProcessesAreStarted()
    {
        // A child process started by any thread holds a duplicate of every descriptor (O_CLOEXEC ones
        // too) from its fork until its exec. A close that left the flock with that duplicate made the
        // next open of the same image fail "in use (pid unknown)" (seen as a flaky CLI test).
        var child = FindOnPath("true");
        Skip.If(child is null, "needs the true command on PATH to start child processes");
        var path = _dir.File("img");
        FileBlockDevice.Create(path, 16 * Sector).Dispose();
        var stop = 0;
        var spawner = new Thread(() =>
        {
            while (Volatile.Read(ref stop) == 0)
            {
                using var process = Process.Start(new ProcessStartInfo(child) { UseShellExecute = false })!;
                process.WaitForExit();
            }
        });
        spawner.Start();
        var refusals = new List<string>();
        try
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < 5000 && clock.Elapsed < TimeSpan.FromSeconds(2); i++)
            {
                try
                {
                    FileBlockDevice.Open(path, readOnly: true).Dispose();
                    FileBlockDevice.Open(path).Dispose();
                }
                catch (BasaltException e) when (e.Code == ErrorCode.DeviceInUse)
                {
                    refusals.Add(e.Message);
                }
            }
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            spawner.Join();
        }
        Assert.True(refusals.Count == 0, $"{refusals.Count} refused reopens, first: {refusals.FirstOrDefault()}");
    }

    [SkippableFact]
    public void AnotherProcess_SeesOurPidAfterARefusedOpen()
    {
        var python = RequirePython();
        var path = _dir.File("img");
        using var writer = FileBlockDevice.Create(path, 16 * Sector);
        // A refused open from this process closes a descriptor of the file, which drops POSIX locks:
        // the device must have re-taken its record lock.
        Assert.Throws<BasaltException>(() => FileBlockDevice.Open(path, readOnly: true));
        var probe = ProbeFromAnotherProcess(python, path, writeProbe: false);
        Assert.Equal($"1 {Environment.ProcessId} held", probe); // F_WRLCK by us, flock held
    }

    [SkippableFact]
    public void AnotherProcess_SeesOurPidAfterOneOfTwoReadersCloses()
    {
        var python = RequirePython();
        var path = _dir.File("img");
        FileBlockDevice.Create(path, 16 * Sector).Dispose();
        using var r1 = FileBlockDevice.Open(path, readOnly: true);
        FileBlockDevice.Open(path, readOnly: true).Dispose();
        var probe = ProbeFromAnotherProcess(python, path, writeProbe: true);
        Assert.Equal($"0 {Environment.ProcessId} held", probe); // F_RDLCK by us, flock (shared) held
    }

    /// <summary>python3 from PATH; the test is skipped (not passed) without it. .ci/run installs it.</summary>
    private static string RequirePython()
    {
        var python = FindOnPath("python3");
        Skip.If(python is null, "needs python3 on PATH to act as another process");
        return python;
    }

    /// <summary>
    /// Asks, from another process (python3), what a second Basalt would see: "TYPE PID held|free"
    /// from F_GETLK on byte 0 and a non-blocking flock.
    /// </summary>
    private static string ProbeFromAnotherProcess(string python, string path, bool writeProbe)
    {
        const string Script = """
            import fcntl, struct, sys, os
            write = sys.argv[2] == 'w'
            fd = os.open(sys.argv[1], os.O_RDWR if write else os.O_RDONLY)
            want = fcntl.F_WRLCK if write else fcntl.F_RDLCK
            lk = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack('hhxxxxqqi4x', want, 0, 0, 1, 0))
            typ, _, _, _, pid = struct.unpack('hhxxxxqqi4x', lk)
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if write else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                flock = 'free'
            except BlockingIOError:
                flock = 'held'
            print(typ, pid, flock)
            """;
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Script);
        psi.ArgumentList.Add(path);
        psi.ArgumentList.Add(writeProbe ? "w" : "r");
        using var process = Process.Start(psi)!;
        var line = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        return line;
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void HeldByAnotherProcess_RefusalNamesThatPid(bool readOnly)
    {
        var python = RequirePython();
        var path = _dir.File("img");
        FileBlockDevice.Create(path, 16 * Sector).Dispose();
        // The other process locks the way a Basalt writer does: flock LOCK_EX and F_WRLCK on byte 0.
        const string Script = """
            import fcntl, struct, sys, os
            fd = os.open(sys.argv[1], os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack('hhxxxxqqi4x', fcntl.F_WRLCK, 0, 0, 1, 0))
            print('locked', flush=True)
            sys.stdin.readline()
            """;
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Script);
        psi.ArgumentList.Add(path);
        using var process = Process.Start(psi)!;
        try
        {
            Assert.Equal("locked", process.StandardOutput.ReadLine());
            var e = Assert.Throws<BasaltException>(() => FileBlockDevice.Open(path, readOnly));
            Assert.Equal(ErrorCode.DeviceInUse, e.Code);
            Assert.Contains($"{path}: in use (pid {process.Id})", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            process.StandardInput.WriteLine();
            process.WaitForExit();
        }
        using var device = FileBlockDevice.Open(path, readOnly); // released with the process
    }

    [Fact]
    public void Discard_ZeroesTheRange()
    {
        var path = _dir.File("img");
        using var device = FileBlockDevice.Create(path, 64 * 1024);
        var data = Pattern(64 * 1024, 5);
        device.Write(0, data);
        device.Flush();
        device.Discard(8 * 1024, 16 * 1024);
        var back = new byte[data.Length];
        device.Read(0, back);
        Assert.True(back.AsSpan(8 * 1024, 16 * 1024).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(data.AsSpan(0, 8 * 1024).ToArray(), back.AsSpan(0, 8 * 1024).ToArray());
        Assert.Equal(data.AsSpan(24 * 1024).ToArray(), back.AsSpan(24 * 1024).ToArray());
        Assert.Equal(64 * 1024, new FileInfo(path).Length); // keep-size
    }

    [Fact]
    public void FileSizeNotASectorMultiple_IsRoundedDown()
    {
        var path = _dir.File("odd");
        File.WriteAllBytes(path, Pattern((10 * Sector) + 100, 6));
        using var device = FileBlockDevice.Open(path);
        Assert.Equal(10 * Sector, device.Size);
        device.Read(9 * Sector, new byte[Sector]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => device.Read(10 * Sector, new byte[Sector]));
        Assert.Contains("past the end", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ShrunkUnderneath_ShortReadIsShortDevice()
    {
        var path = _dir.File("img");
        using var device = FileBlockDevice.Create(path, 16 * Sector);
        // Truncated behind the device's back (File.OpenHandle would be refused by .NET's own flock).
        using (var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(LibC.Open(path, LibC.ORdWr, 0), ownsHandle: true))
            Assert.Equal(0, LibC.FTruncate(handle, 4 * Sector));
        var e = Assert.Throws<BasaltException>(() => device.Read(8 * Sector, new byte[Sector]));
        Assert.Equal(ErrorCode.ShortDevice, e.Code);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("4096", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Extend_CutsThePartialSectorAndTheNewTailReadsAsZeroes()
    {
        var path = _dir.File("img");
        using (var created = FileBlockDevice.Create(path, 8 * Sector))
            created.Write(0, Enumerable.Repeat((byte)0x5a, 8 * Sector).ToArray());
        using (var file = new FileStream(path, FileMode.Open))
            file.SetLength((6 * Sector) + 100);
        using var device = FileBlockDevice.Open(path);
        Assert.Equal(6 * Sector, device.Size);
        Assert.Equal((6 * Sector) + 100, device.Length);
        Assert.True(device.CanExtend);
        device.Extend(16 * Sector);
        Assert.Equal(16 * Sector, device.Size);
        Assert.Equal(16 * Sector, new FileInfo(path).Length);
        var buffer = new byte[16 * Sector];
        device.Read(0, buffer);
        Assert.True(buffer[..(6 * Sector)].All(b => b == 0x5a));
        Assert.True(buffer[(6 * Sector)..].All(b => b == 0), "the partial sector's old bytes survived the extension");
        Assert.Throws<ArgumentOutOfRangeException>(() => device.Extend(8 * Sector));
    }

    [Fact]
    public void Extend_OfAReadOnlyImageIsRefused()
    {
        var path = _dir.File("img");
        FileBlockDevice.Create(path, 8 * Sector).Dispose();
        using var device = FileBlockDevice.Open(path, readOnly: true);
        var e = Assert.Throws<BasaltException>(() => device.Extend(16 * Sector));
        Assert.Equal(ErrorCode.ReadOnlyDevice, e.Code);
        Assert.Equal(8 * Sector, new FileInfo(path).Length);
    }

    [Fact]
    public void MissingPath_IsFileNotFound()
    {
        var path = _dir.File("missing");
        var e = Assert.Throws<BasaltException>(() => FileBlockDevice.Open(path));
        Assert.Equal(ErrorCode.FileNotFound, e.Code);
        Assert.Equal(ErrorClass.NotFound, e.Class);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.FileNotFound,
            Assert.Throws<BasaltException>(() => FileBlockDevice.Create(_dir.File("no/such/dir/img"), 8 * Sector)).Code);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DirectoryPath_IsRefused(bool readOnly)
    {
        var e = Assert.Throws<BasaltException>(() => FileBlockDevice.Open(_dir.Path, readOnly));
        Assert.Equal(ErrorCode.InvalidArgument, e.Code);
        Assert.Contains("directory", e.Message, StringComparison.Ordinal);
        Assert.Contains(_dir.Path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadOnlyDevice_RefusesWritesAndDiscards()
    {
        var path = _dir.File("img");
        FileBlockDevice.Create(path, 16 * Sector).Dispose();
        using var device = FileBlockDevice.Open(path, readOnly: true);
        Assert.True(device.IsReadOnly);
        var e = Assert.Throws<BasaltException>(() => device.Write(Sector, new byte[Sector]));
        Assert.Equal(ErrorCode.ReadOnlyDevice, e.Code);
        Assert.Contains("offset 512", e.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.ReadOnlyDevice, Assert.Throws<BasaltException>(() => device.Discard(0, Sector)).Code);
        device.Flush(); // nothing to make durable
    }

    [Fact]
    public void UnalignedIo_IsAnArgumentError()
    {
        using var device = FileBlockDevice.Create(_dir.File("img"), 16 * Sector);
        Assert.Throws<ArgumentException>(() => device.Write(100, new byte[Sector]));
        Assert.Throws<ArgumentException>(() => device.Read(0, new byte[100]));
    }

    [SkippableFact]
    public void UnreadableFile_IsAnIoErrorNamingThePath()
    {
        Skip.If(Environment.UserName == "root", "root reads any file whatever its mode");
        var path = _dir.File("img");
        FileBlockDevice.Create(path, 8 * Sector).Dispose();
        File.SetUnixFileMode(path, UnixFileMode.None);
        var e = Assert.Throws<BasaltException>(() => FileBlockDevice.Open(path));
        Assert.Equal(ErrorCode.IoError, e.Code);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Overlay_OverAReadOnlyFile_LeavesTheImageBytesUnchanged()
    {
        var path = _dir.File("img");
        var image = Pattern(128 * Sector, 8);
        File.WriteAllBytes(path, image);
        using (var baseDevice = FileBlockDevice.Open(path, readOnly: true))
        using (var overlay = new OverlayBlockDevice(baseDevice, memoryThreshold: 8 * Sector, spillDirectory: _dir.Path))
        {
            overlay.Write(0, Pattern(32 * Sector, 9));
            overlay.Discard(64 * Sector, 4 * Sector);
            overlay.Flush();
            var back = new byte[32 * Sector];
            overlay.Read(0, back);
            Assert.Equal(Pattern(32 * Sector, 9), back);
            Assert.Equal(36 * Sector, overlay.BytesWrittenAside);
            Assert.Equal(28 * Sector, overlay.BytesSpilled);
        }
        Assert.Equal(image, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(_dir.Path)); // the spill file was unlinked
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
