// The one exception of the local-filesystem layer: a libc call failed with an errno. It names the
// operation and the path (escaped by NameText, so a non-UTF-8 name prints readably and the same
// way everywhere) and gives libc's strerror text: "cannot open 'dir/na\xffme': Permission denied".
// The message is all the CLI prints. HResult is the errno, as .NET does for its own IOExceptions.
using System.Runtime.InteropServices;

namespace Basalt.Cli.Local;

/// <summary>Linux errno values (x86_64 and the asm-generic numbering), by their C names.</summary>
internal enum Errno
{
    EPERM = 1,
    ENOENT = 2,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    E2BIG = 7,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EBUSY = 16,
    EEXIST = 17,
    EXDEV = 18,
    ENODEV = 19,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    EMFILE = 24,
    ETXTBSY = 26,
    EFBIG = 27,
    ENOSPC = 28,
    ESPIPE = 29,
    EROFS = 30,
    EMLINK = 31,
    ERANGE = 34,
    ENAMETOOLONG = 36,
    ENOSYS = 38,
    ENOTEMPTY = 39,
    ELOOP = 40,
    ENODATA = 61,
    EOVERFLOW = 75,
    EILSEQ = 84,
    EOPNOTSUPP = 95,
    /// <summary>The same number as EOPNOTSUPP on Linux.</summary>
    ENOTSUP = EOPNOTSUPP,
    EDQUOT = 122,
}

internal sealed class LocalFsException : IOException
{
    public LocalFsException(Errno errno, string action, byte[] path, byte[]? target = null)
        : base(Describe(errno, action, path, target))
    {
        Errno = errno;
        Path = path;
        Target = target;
        HResult = (int)errno;
    }

    public Errno Errno { get; }

    /// <summary>The path the operation was on, as bytes.</summary>
    public byte[] Path { get; }

    /// <summary>The second path of a link or symlink operation (what was linked to).</summary>
    public byte[]? Target { get; }

    /// <summary>libc's text for an errno ("No such file or directory").</summary>
    public static string ErrnoText(Errno errno) => Marshal.GetPInvokeErrorMessage((int)errno);

    private static string Describe(Errno errno, string action, byte[] path, byte[]? target) =>
        target is null
            ? $"cannot {action} '{NameText.ToText(path)}': {ErrnoText(errno)}"
            : $"cannot {action} '{NameText.ToText(path)}' to '{NameText.ToText(target)}': {ErrnoText(errno)}";
}
