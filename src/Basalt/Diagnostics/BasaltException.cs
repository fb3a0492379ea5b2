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
        ErrorCode.FileNotFound or ErrorCode.NotBasalt => ErrorClass.NotFound,
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
