// Plain words for an I/O failure that .NET reported as an exception: the operating system's text
// for the errno ("Input/output error (errno 5)"), never .NET's own message, which is worded for
// developers and quotes paths its own way. Used by the devices and by the CLI's last-resort
// error line; messages built with it name the device or path and the operation themselves.
using System.Globalization;
using System.Runtime.InteropServices;
using Basalt.Devices.Interop;

namespace Basalt.Devices;

internal static class IoErrorText
{
    private const int ENameTooLong = 36;

    public static string Describe(Exception error) => error switch
    {
        FileNotFoundException or DirectoryNotFoundException => Errno(LibC.ENoEnt),
        // .NET maps EACCES, EPERM and EBADF to this one type and keeps no errno.
        UnauthorizedAccessException => "Permission denied",
        PathTooLongException => Errno(ENameTooLong),
        // On Linux a plain IOException carries the errno as its HResult.
        IOException io when io.HResult is > 0 and < 4096 => Errno(io.HResult),
        _ => "I/O error",
    };

    /// <summary>The errno of a failed .NET I/O call when it kept one.</summary>
    public static int? ErrnoOf(Exception error) => error switch
    {
        FileNotFoundException or DirectoryNotFoundException => LibC.ENoEnt,
        IOException io when io.HResult is > 0 and < 4096 => io.HResult,
        _ => null,
    };

    private static string Errno(int errno) =>
        string.Create(CultureInfo.InvariantCulture, $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
}
