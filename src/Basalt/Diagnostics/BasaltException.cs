// The library's one exception type. It carries an ErrorCode whose class decides how front ends
// react: the CLI maps classes to exit codes, the FUSE edge maps them to errno. Expected outcomes
// use Try… methods and on-disk inconsistencies become fsck findings; this is for failures.
namespace Basalt.Diagnostics;

public enum ErrorClass
{
    Usage,
    NotFound,
    NoSpace,
    Corruption,
    Io,
    InUse,
    ReadOnly,
    Unsupported,
    Internal,
    /// <summary>A file operation conflicts with what the filesystem holds (EEXIST, ENOTDIR, ENOTEMPTY…).</summary>
    FileConflict,
}

public enum ErrorCode
{
    // Usage
    InvalidArgument,
    /// <summary>A transaction's updates do not fit in one journal entry.</summary>
    TransactionTooLarge,
    // NotFound
    FileNotFound,
    NotBasalt,
    // NoSpace
    DeviceFull,
    BtreeNodeSpaceFull,
    DeviceTooSmall,
    /// <summary>The journal has no room and reclaim could free none.</summary>
    JournalFull,
    // Corruption
    SuperblockCorrupt,
    BtreeNodeCorrupt,
    TopologyError,
    JournalCorrupt,
    // Io
    IoError,
    ShortDevice,
    // InUse
    DeviceInUse,
    ExistingFilesystem,
    // ReadOnly
    ReadOnlyDevice,
    EmergencyReadOnly,
    // Unsupported
    UnsupportedVersion,
    UnsupportedFeature,
    // Internal
    InvariantViolated,
    WriteOnceViolation,
    // Files (the Fs layer; errno at the edges: Fs.Errno.Of)
    /// <summary>A name already exists (EEXIST).</summary>
    Exists,
    /// <summary>A path component or target is not a directory (ENOTDIR).</summary>
    NotDirectory,
    /// <summary>A directory where a non-directory is needed (EISDIR).</summary>
    IsDirectory,
    /// <summary>A directory that must be empty is not (ENOTEMPTY).</summary>
    NotEmpty,
    /// <summary>A name longer than 255 bytes or a path or symlink target too long (ENAMETOOLONG).</summary>
    NameTooLong,
    /// <summary>Too many symlinks while resolving a path (ELOOP).</summary>
    SymlinkLoop,
    /// <summary>A link or rename across filesystems (EXDEV).</summary>
    CrossDevice,
    /// <summary>An extended attribute that does not exist (ENODATA).</summary>
    NoData,
    /// <summary>An extended attribute value or list larger than allowed (E2BIG / ERANGE).</summary>
    ValueTooLarge,
    /// <summary>The root or a busy object cannot be removed or replaced (EBUSY).</summary>
    Busy,
    /// <summary>The operation is not permitted on this object, e.g. a hard link to a directory (EPERM).</summary>
    NotPermitted,
    /// <summary>An operation or namespace this filesystem does not support (EOPNOTSUPP).</summary>
    NotSupported,
    /// <summary>Too many links to one inode (EMLINK).</summary>
    TooManyLinks,
}

public sealed class BasaltException : Exception
{
    public ErrorCode Code { get; }

    public BasaltException(ErrorCode code, string message, Exception? inner = null)
        : base(message, inner) => Code = code;

    public ErrorClass Class => ClassOf(Code);

    public static ErrorClass ClassOf(ErrorCode code) => code switch
    {
        ErrorCode.InvalidArgument or ErrorCode.TransactionTooLarge => ErrorClass.Usage,
        ErrorCode.Exists or ErrorCode.NotDirectory or ErrorCode.IsDirectory or ErrorCode.NotEmpty or ErrorCode.NameTooLong
            or ErrorCode.SymlinkLoop or ErrorCode.CrossDevice or ErrorCode.ValueTooLarge or ErrorCode.Busy or ErrorCode.NotPermitted
            or ErrorCode.TooManyLinks => ErrorClass.FileConflict,
        ErrorCode.NotSupported => ErrorClass.Unsupported,
        ErrorCode.FileNotFound or ErrorCode.NotBasalt or ErrorCode.NoData => ErrorClass.NotFound,
        ErrorCode.DeviceFull or ErrorCode.BtreeNodeSpaceFull or ErrorCode.DeviceTooSmall or ErrorCode.JournalFull => ErrorClass.NoSpace,
        ErrorCode.SuperblockCorrupt or ErrorCode.BtreeNodeCorrupt or ErrorCode.TopologyError or ErrorCode.JournalCorrupt => ErrorClass.Corruption,
        ErrorCode.IoError or ErrorCode.ShortDevice => ErrorClass.Io,
        ErrorCode.DeviceInUse or ErrorCode.ExistingFilesystem => ErrorClass.InUse,
        ErrorCode.ReadOnlyDevice or ErrorCode.EmergencyReadOnly => ErrorClass.ReadOnly,
        ErrorCode.UnsupportedVersion or ErrorCode.UnsupportedFeature => ErrorClass.Unsupported,
        _ => ErrorClass.Internal,
    };

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void Throw(ErrorCode code, string message, Exception? inner = null) =>
        throw new BasaltException(code, message, inner);
}
