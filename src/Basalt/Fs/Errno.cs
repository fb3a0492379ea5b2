// errno at the edges (the FUSE mount, the CLI's messages): the library's error codes map one to
// one onto Linux's numbers; nothing inside the library speaks errno.
using Basalt.Diagnostics;

namespace Basalt.Fs;

public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int EROFS = 30;
    public const int EMLINK = 31;
    public const int ERANGE = 34;
    public const int ENAMETOOLONG = 36;
    public const int ENOTEMPTY = 39;
    public const int ELOOP = 40;
    public const int ENODATA = 61;
    public const int EOPNOTSUPP = 95;
    public const int E2BIG = 7;

    /// <summary>The errno of an error code.</summary>
    public static int Of(ErrorCode code) => code switch
    {
        ErrorCode.FileNotFound => ENOENT,
        ErrorCode.Exists => EEXIST,
        ErrorCode.NotDirectory => ENOTDIR,
        ErrorCode.IsDirectory => EISDIR,
        ErrorCode.NotEmpty => ENOTEMPTY,
        ErrorCode.NameTooLong => ENAMETOOLONG,
        ErrorCode.SymlinkLoop => ELOOP,
        ErrorCode.CrossDevice => EXDEV,
        ErrorCode.NoData => ENODATA,
        ErrorCode.ValueTooLarge => E2BIG,
        ErrorCode.Busy => EBUSY,
        ErrorCode.NotPermitted => EPERM,
        ErrorCode.NotSupported or ErrorCode.UnsupportedFeature => EOPNOTSUPP,
        ErrorCode.TooManyLinks => EMLINK,
        ErrorCode.InvalidArgument or ErrorCode.TransactionTooLarge => EINVAL,
        ErrorCode.DeviceFull or ErrorCode.BtreeNodeSpaceFull or ErrorCode.JournalFull => ENOSPC,
        ErrorCode.ReadOnlyDevice or ErrorCode.EmergencyReadOnly => EROFS,
        _ => EIO,
    };

    /// <summary>The errno of any exception a file operation throws.</summary>
    public static int Of(Exception error) => error switch
    {
        BasaltException b => Of(b.Code),
        ArgumentException => EINVAL,
        _ => EIO,
    };
}
