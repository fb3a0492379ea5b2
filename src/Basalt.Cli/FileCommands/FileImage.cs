// What the in-image file commands (ls, cat, stat, mkdir, rm, mv, cp, ln, touch) share: opening the
// image, turning an argv path into the bytes it names, and the one wording of their errors.
//
// Reading commands mount read-only under the copy-on-write overlay (an unclean image is replayed
// in memory; nothing reaches the image, no access time changes); writing commands mount read-write,
// which takes the image's exclusive lock (a second writer is refused "in use (pid N)"), and unmount
// cleanly when they finish or fail. Every change is one library operation, and so one
// transaction: a command that fails part way leaves the operations before the failure done.
//
// Paths inside the image are absolute and '/'-separated; they arrive as argv text and are turned
// into bytes with Names.FromText, so `\xNN` types any byte, and printed back with Names.ToText.
// A failed operation is one line, `'PATH': <strerror>` (or `'SRC' -> 'DEST': <strerror>`), with
// the library's detail in parentheses where the errno alone does not say it; CliContext prefixes
// the command name and turns the code into an exit code (FileCommandException).
using Basalt.Diagnostics;
using Basalt.Fs;

namespace Basalt.Cli.FileCommands;

/// <summary>
/// A file operation inside the image failed: <see cref="Exception.Message"/> is the finished line
/// (without the command name) and <see cref="Code"/> picks the exit code (CliContext.Classify).
/// </summary>
internal sealed class FileCommandException(ErrorCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    public ErrorCode Code { get; } = code;
}

internal static class FileImage
{
    /// <summary>Mounts IMAGE read-only (under the overlay) and checks it has a root directory.</summary>
    public static BasaltFileSystem OpenReadOnly(string image)
    {
        var path = CliParsing.ResolveImage(image);
        CliParsing.RequireExistingImage(path);
        var fs = BasaltFileSystem.Mount(path, new MountOptions { ReadOnly = true, Atime = AtimeMode.Noatime });
        try
        {
            // Reading the root can fail on a damaged image: the mount is released either way.
            if (!fs.Files.TryGetAttr(FsPositions.RootIno, out _))
            {
                throw new BasaltException(ErrorCode.FileNotFound,
                    $"{path}: the filesystem has no root directory yet: it was never mounted read-write (a writing command such as 'basalt mkdir' creates it)");
            }
            return fs;
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>Mounts IMAGE read-write (taking its lock); the first writable mount creates the root and lost+found.</summary>
    public static BasaltFileSystem OpenWritable(CliContext cli, string image)
    {
        var path = CliParsing.ResolveImage(image);
        CliParsing.RequireExistingImage(path);
        return BasaltFileSystem.Mount(path, cli.WritableMount);
    }
}

/// <summary>A path inside the image: its bytes and the text messages print.</summary>
internal readonly record struct ImagePath(byte[] Bytes)
{
    /// <summary>Parses an argv path: absolute, `\xNN` for any byte (a relative path is a usage error).</summary>
    public static ImagePath Parse(string text)
    {
        var bytes = Names.FromText(text);
        if (bytes.Length == 0 || bytes[0] != (byte)'/')
            CliContext.Usage($"path '{text}' is not absolute (paths inside the image start with '/')");
        return new ImagePath(bytes);
    }

    public string Text => Names.ToText(Bytes);

    /// <summary>The path's components, "." dropped (as the library splits it).</summary>
    public List<byte[]> Components()
    {
        var parts = new List<byte[]>();
        foreach (var range in Bytes.AsSpan().Split((byte)'/'))
        {
            var part = Bytes.AsSpan()[range];
            if (!part.IsEmpty && !Names.IsDot(part))
                parts.Add(part.ToArray());
        }
        return parts;
    }

    /// <summary>True for "/" (and "//", "/."): the path names the root itself.</summary>
    public bool IsRoot => Components().Count == 0;

    /// <summary>The last component as written ("." and ".." included), empty for "/".</summary>
    public byte[] LastWritten()
    {
        var trimmed = Bytes.AsSpan().TrimEnd((byte)'/');
        var cut = trimmed.LastIndexOf((byte)'/');
        return trimmed[(cut + 1)..].ToArray();
    }

    /// <summary>This path with <paramref name="name"/> appended.</summary>
    public ImagePath Child(ReadOnlySpan<byte> name)
    {
        var trimmed = Bytes.AsSpan().TrimEnd((byte)'/');
        return new ImagePath([.. trimmed, (byte)'/', .. name]);
    }

    public override string ToString() => Text;
}

/// <summary>The wording of file errors: strerror(3)'s words for the library's codes.</summary>
internal static class FileErrors
{
    /// <summary>Runs <paramref name="operation"/>; a library error becomes one line naming <paramref name="path"/>.</summary>
    public static T At<T>(ImagePath path, Func<T> operation, string? detail = null)
    {
        try
        {
            return operation();
        }
        catch (BasaltException e)
        {
            throw Wrap($"'{path.Text}'", e, detail);
        }
    }

    public static void At(ImagePath path, Action operation, string? detail = null) =>
        At(path, () => { operation(); return true; }, detail);

    /// <summary>Like <see cref="At{T}"/> for an operation on two paths (rename, link): `'SRC' -> 'DEST': …`.</summary>
    public static void Between(ImagePath from, ImagePath to, Action operation, Func<ErrorCode, string?>? detail = null)
    {
        try
        {
            operation();
        }
        catch (BasaltException e)
        {
            throw Wrap($"'{from.Text}' -> '{to.Text}'", e, detail?.Invoke(e.Code));
        }
    }

    /// <summary>An error of <paramref name="code"/> about <paramref name="path"/> the CLI itself decided on.</summary>
    public static FileCommandException Of(ImagePath path, ErrorCode code, string? detail = null) =>
        new(code, Line($"'{path.Text}'", code, detail));

    public static FileCommandException Wrap(string where, BasaltException e, string? detail = null) =>
        new(e.Code, Line(where, e.Code, detail ?? DetailOf(e)), e);

    /// <summary>What the library adds to the errno's words, or null when they say it all (the path names the where).</summary>
    private static string? DetailOf(BasaltException e) => e.Code switch
    {
        ErrorCode.FileNotFound or ErrorCode.Exists or ErrorCode.NotDirectory or ErrorCode.IsDirectory or ErrorCode.NotEmpty => null,
        ErrorCode.NameTooLong when !e.Message.StartsWith("symlink target", StringComparison.Ordinal) => $"a name is at most {Names.MaxLength} bytes",
        _ => e.Message,
    };

    private static string Line(string where, ErrorCode code, string? detail) =>
        detail is null ? $"{where}: {Describe(code)}" : $"{where}: {Describe(code)} ({detail})";

    /// <summary>strerror(3) of the errno a library error code maps to.</summary>
    public static string Describe(ErrorCode code) => Errno.Of(code) switch
    {
        Errno.EPERM => "Operation not permitted",
        Errno.ENOENT => "No such file or directory",
        Errno.EBUSY => "Device or resource busy",
        Errno.EEXIST => "File exists",
        Errno.EXDEV => "Invalid cross-device link",
        Errno.ENOTDIR => "Not a directory",
        Errno.EISDIR => "Is a directory",
        Errno.EINVAL => "Invalid argument",
        Errno.ENOSPC => "No space left on device",
        Errno.EROFS => "Read-only file system",
        Errno.EMLINK => "Too many links",
        Errno.ENAMETOOLONG => "File name too long",
        Errno.ENOTEMPTY => "Directory not empty",
        Errno.ELOOP => "Too many levels of symbolic links",
        Errno.ENODATA => "No data available",
        Errno.EOPNOTSUPP => "Operation not supported",
        Errno.E2BIG => "Argument list too long",
        _ => "Input/output error",
    };

    /// <summary>The exit code of a file error: the image's own trouble is operational (8), the rest the user's to act on (1).</summary>
    public static int ExitCode(ErrorCode code) => BasaltException.ClassOf(code) switch
    {
        ErrorClass.Io or ErrorClass.Corruption or ErrorClass.ReadOnly or ErrorClass.Internal => CliExitCodes.Operational,
        _ => CliExitCodes.Failure,
    };
}
