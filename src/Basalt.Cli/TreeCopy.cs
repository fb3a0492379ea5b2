// What `basalt put` and `basalt get` share (DESIGN §7): the cp -a rules for DEST, the counters
// and the summary line, warnings printed once per kind, the progress bar, and how a copy that
// stops (an error, Ctrl-C) is reported.
//
// Decisions:
// - A copy stops at the first error: one line names the path and the cause, the image is synced
//   and unmounted (cleanly when it still can be), and everything copied before stays whole; the
//   file being written when it stopped is named as left partial. The exit code follows the CLI's
//   table: 1 for what the user can act on (missing path, permission, name too long, device full,
//   a conflict with an existing entry), 8 for I/O errors and a damaged image, 32 for Ctrl-C or
//   SIGTERM (as fsck: the copy did not finish).
// - One exception, for `get`: data the image cannot give back (a checksum mismatch, data an
//   fsck repair marked lost, a device read error) does not stop the copy. The file is copied
//   around the unreadable ranges, which stay holes (zeros) in the local copy, one line names the
//   file and the bytes lost, the copy goes on with the next entry, and the exit code is 8: a
//   damaged image gives back everything that can still be read.
// - What cannot be kept is a warning, printed once per kind (owners as non-root, device nodes as
//   non-root, trusted./security. xattrs as non-root, system.* xattrs, xattrs the local
//   filesystem refuses), never per file, and never an error.
// - The progress bar (bytes, files, rate, ETA) is drawn on stderr only when stderr is a
//   terminal; on a pipe or in process nothing but the summary and the warnings is written.
using System.Diagnostics;
using System.Globalization;
using Basalt.Cli.Local;
using Basalt.Diagnostics;
using Spectre.Console;

namespace Basalt.Cli;

internal sealed class TreeCopy
{
    /// <summary>The exit code of a copy stopped by Ctrl-C or SIGTERM (fsck's "cancelled").</summary>
    public const int CancelledExitCode = 32;

    /// <summary>Bytes read and written per step; cancellation is checked between steps.</summary>
    public const int ChunkBytes = 1 << 20;

    private readonly CliContext _cli;
    private readonly HashSet<string> _warned = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private ProgressTask? _progress;
    private IAnsiConsole? _console;
    private long _totalFiles;

    public TreeCopy(CliContext cli)
    {
        _cli = cli;
        Privileged = LocalLibC.GetEuid() == 0;
        Uid = LocalLibC.GetEuid();
        Gid = LocalLibC.GetEgid();
        Buffer = new byte[ChunkBytes];
    }

    /// <summary>True when running as root: owners, device nodes and trusted./security. xattrs are kept.</summary>
    public bool Privileged { get; }

    /// <summary>The effective user and group: the owner of what a non-root copy creates.</summary>
    public uint Uid { get; }

    public uint Gid { get; }

    /// <summary>The one data buffer of the copy (a copy is single-threaded).</summary>
    public byte[] Buffer { get; }

    /// <summary>Non-directories copied: files, symlinks, FIFOs, sockets, devices, hard links.</summary>
    public long Files { get; private set; }

    public long Directories { get; private set; }

    /// <summary>Data bytes copied (holes are not counted).</summary>
    public long Bytes { get; private set; }

    /// <summary>The destination of the file whose data is being written, for the message when the copy stops inside it.</summary>
    public string? Partial { get; set; }

    public void ThrowIfCancelled() => _cli.Cancellation.ThrowIfCancellationRequested();

    public void FileDone()
    {
        Files++;
        UpdateDescription();
    }

    public void DirectoryDone() => Directories++;

    public void AddBytes(long bytes)
    {
        Bytes += bytes;
        _progress?.Increment(bytes);
    }

    /// <summary>Files whose data could not be read whole (get): reported one line each, the copy went on.</summary>
    public long Unreadable { get; private set; }

    /// <summary>Reports a file some of whose data could not be read; the copy goes on.</summary>
    public void ReportUnreadable(string text)
    {
        Unreadable++;
        var line = $"{_cli.CommandName}: {text}";
        if (_console is { } console)
            console.WriteLine(line);
        else
            _cli.Err.WriteLine(line);
    }

    /// <summary>Prints one warning line for <paramref name="kind"/>, the first time only.</summary>
    public void Warn(string kind, string text)
    {
        if (!_warned.Add(kind))
            return;
        var line = $"{_cli.CommandName}: warning: {text}";
        if (_console is { } console)
            console.WriteLine(line); // above the live progress bar, which redraws below it
        else
            _cli.Err.WriteLine(line);
    }

    /// <summary>
    /// Runs <paramref name="copy"/> under a progress bar when stderr is a terminal (the total is
    /// measured first by <paramref name="measure"/>: data bytes and files), plainly otherwise.
    /// </summary>
    public void Run(Func<(long Bytes, long Files)> measure, Action copy)
    {
        if (!StderrIsTerminal())
        {
            copy();
            return;
        }
        var total = measure();
        _totalFiles = total.Files;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(_cli.Err),
            Interactive = InteractionSupport.Yes,
        });
        _console = console;
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                _progress = context.AddTask("copying", maxValue: Math.Max(1, total.Bytes));
                UpdateDescription();
                try
                {
                    copy();
                }
                finally
                {
                    _progress.StopTask();
                    _progress = null;
                    _console = null;
                }
            });
    }

    private void UpdateDescription()
    {
        if (_progress is { } task)
            task.Description = string.Create(CultureInfo.InvariantCulture, $"{Files}/{_totalFiles} files");
    }

    // Console.Error is the writer Main hands over; a test's StringWriter never shows progress.
    private bool StderrIsTerminal() => ReferenceEquals(_cli.Err, Console.Error) && !Console.IsErrorRedirected;

    /// <summary>The summary line on stdout: files, directories, bytes, seconds.</summary>
    public void WriteSummary(string verb, bool complete)
    {
        var seconds = _clock.Elapsed.TotalSeconds;
        var rate = seconds > 0 ? Bytes / seconds / (1 << 20) : 0;
        _cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{verb} {Files} files, {Directories} directories, {Bytes} bytes in {seconds:0.00} s ({rate:0.0} MiB/s){(Unreadable > 0 ? $", {Unreadable} of them not whole (data that cannot be read)" : "")}{(complete ? "" : " before stopping")}"));
    }

    /// <summary>
    /// The error line of a copy that stopped, with the partial file and <paramref name="unmount"/>
    /// (how the image was left, or null when it was left cleanly); returns the exit code.
    /// </summary>
    public int Stopped(Exception error, string? unmount)
    {
        string message;
        int code;
        switch (error)
        {
            case OperationCanceledException:
                message = $"stopped by {_cli.StopSignal}";
                code = CancelledExitCode;
                break;
            case BasaltException { Class: ErrorClass.NoSpace } or BasaltException { InnerException: BasaltException { Class: ErrorClass.NoSpace } }:
                message = $"device full{(Partial is { } full ? $" while writing '{full}'" : "")}: {CliContext.OneLine(((BasaltException)error).Message)}";
                code = CliExitCodes.Failure;
                break;
            case BasaltException b:
                message = CliContext.OneLine(b.Message);
                code = b.Class switch
                {
                    ErrorClass.Usage => CliExitCodes.Usage,
                    ErrorClass.NotFound or ErrorClass.InUse or ErrorClass.NoSpace or ErrorClass.FileConflict or ErrorClass.Unsupported
                        or ErrorClass.ReadOnly => CliExitCodes.Failure,
                    _ => CliExitCodes.Operational,
                };
                break;
            case LocalFsException local:
                message = local.Message;
                code = local.Errno == Errno.EIO ? CliExitCodes.Operational : CliExitCodes.Failure;
                break;
            default:
                return _cli.Fail(error, fsckCodes: false);
        }
        var partial = Partial is { } p ? $"; '{p}' is left partial, everything copied before it is whole" : "";
        var state = unmount is null ? "" : $"; {unmount}";
        _cli.Err.WriteLine($"{_cli.CommandName}: {message}{partial}{state}");
        if (_cli.Verbose)
            _cli.Err.WriteLine(error.ToString());
        return code;
    }

    /// <summary>True for the errors a copy stops on and reports itself (anything else is a bug, reported by the CLI).</summary>
    public static bool IsCopyError(Exception e) => e is OperationCanceledException or BasaltException or LocalFsException;

    /// <summary>The name a source is copied under in an existing directory: its last component; null for ".", ".." or "/" (merge into DEST).</summary>
    public static byte[]? BaseName(byte[] path)
    {
        var trimmed = path.AsSpan().TrimEnd((byte)'/');
        var name = trimmed[(trimmed.LastIndexOf((byte)'/') + 1)..];
        return name.IsEmpty || name is [(byte)'.'] or [(byte)'.', (byte)'.'] ? null : name.ToArray();
    }

    /// <summary>The bytes of a path argument; a usage error when they cannot be recovered.</summary>
    public static byte[] PathArgument(string argument, string what)
    {
        if (!NameText.TryParseArgument(argument, out var bytes, out var problem))
            throw new BasaltException(ErrorCode.InvalidArgument, $"{what}: {problem}");
        return bytes;
    }

    /// <summary>The bytes of a path inside the image: absolute, as every file command takes it (a relative one is a usage error).</summary>
    public static byte[] ImagePathArgument(string argument, string what)
    {
        var bytes = PathArgument(argument, what);
        if (bytes[0] != (byte)'/')
            CliContext.Usage($"path '{argument}' is not absolute (paths inside the image start with '/')");
        return bytes;
    }

    /// <summary>"dir" + "/" + name, as bytes (no doubled slash after a trailing one).</summary>
    public static byte[] Join(byte[] directory, ReadOnlySpan<byte> name) => LocalFd.JoinPath(directory, name);

    public static string Text(ReadOnlySpan<byte> path) => NameText.ToText(path);

    /// <summary>A data range widened to whole local blocks and clipped to the file size.</summary>
    public static (long Start, long End) ToBlocks(long start, long end, long blockSize, long size) =>
        (start / blockSize * blockSize, Math.Min(size, (end + blockSize - 1) / blockSize * blockSize));
}
