// An open file descriptor of the local filesystem, with the path it was opened by. The path is
// for messages only (every call goes through the descriptor, so a rename after opening cannot
// redirect it): the start path the user gave, then one name per openat below it.
using System.Runtime.InteropServices;

namespace Basalt.Cli.Local;

internal sealed class LocalFd : SafeHandle
{
    private LocalFd(int fd, bool ownsHandle, byte[] path)
        : base(invalidHandleValue: -1, ownsHandle)
    {
        SetHandle(fd);
        Path = path;
    }

    /// <summary>AT_FDCWD: names given with it are resolved from the working directory.</summary>
    public static LocalFd CurrentDirectory => new(LocalLibC.AtFdCwd, ownsHandle: false, []);

    /// <summary>The path this descriptor was opened by, as bytes (empty for the working directory).</summary>
    public byte[] Path { get; }

    public override bool IsInvalid => handle == -1;

    internal static LocalFd Own(int fd, byte[] path) => new(fd, ownsHandle: true, path);

    /// <summary>The path of <paramref name="name"/> in this directory: "dir/name", or the name alone below the working directory.</summary>
    public byte[] PathOf(ReadOnlySpan<byte> name) => JoinPath(Path, name);

    /// <summary>"dir" + "/" + name, as bytes (no doubled slash after a trailing one; the name alone below an empty directory).</summary>
    public static byte[] JoinPath(byte[] directory, ReadOnlySpan<byte> name)
    {
        if (directory.Length == 0)
            return name.ToArray();
        var slash = directory[^1] == (byte)'/' ? 0 : 1;
        var path = new byte[directory.Length + slash + name.Length];
        directory.CopyTo(path, 0);
        if (slash == 1)
            path[directory.Length] = (byte)'/';
        name.CopyTo(path.AsSpan(directory.Length + slash));
        return path;
    }

    // close(2) is not retried on EINTR: on Linux the descriptor is released whatever it returns.
    protected override bool ReleaseHandle() => LocalLibC.Close((int)handle) == 0;
}
