// Everything a command needs from the process around it: where output and errors go, whether
// a person is watching (a terminal gets Spectre.Console output and prompts, anything else plain
// lines), and the one place where exceptions become a single stderr line and an exit code.
using System.Diagnostics.CodeAnalysis;
using Basalt.Cli.Local;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Fsck;
using Spectre.Console;

namespace Basalt.Cli;

/// <summary>Exit codes of every command but fsck (fsck uses <see cref="FsckExitCodes"/>).</summary>
internal static class CliExitCodes
{
    public const int Ok = 0;
    /// <summary>A failure the user can act on: format refused, image not found, image in use.</summary>
    public const int Failure = 1;
    /// <summary>An operational error: I/O, a corrupt image, an internal error.</summary>
    public const int Operational = 8;
    public const int Usage = 16;
}

/// <summary>What the process is attached to. Tests run with <see cref="None"/>.</summary>
internal sealed record CliTerminal(bool OutputIsTerminal, bool InputIsTerminal, TextReader? Input)
{
    public static readonly CliTerminal None = new(false, false, null);

    public static CliTerminal FromConsole() =>
        new(!Console.IsOutputRedirected, !Console.IsInputRedirected, Console.In);
}

internal sealed class CliContext
{
    private IAnsiConsole? _ansi;

    public CliContext(TextWriter stdout, TextWriter stderr, CliTerminal terminal)
    {
        Out = stdout;
        Err = stderr;
        Terminal = terminal;
    }

    public TextWriter Out { get; }
    public TextWriter Err { get; }
    public CliTerminal Terminal { get; }
    public bool Verbose { get; set; }

    /// <summary>True when the command line asked for --json: a failure then also prints a JSON error document.</summary>
    public bool Json { get; set; }

    /// <summary>
    /// Debugging switch: route node writes through the write-once checker (environment variable
    /// BASALT_CHECK_WRITE_ONCE=1; the test suites set it). The library itself never reads the environment.
    /// </summary>
    public bool CheckWriteOnce { get; init; } = Environment.GetEnvironmentVariable("BASALT_CHECK_WRITE_ONCE") == "1";

    /// <summary>Mount options every command that mounts read-write starts from.</summary>
    public Basalt.Fs.MountOptions WritableMount => new() { CheckWriteOnce = CheckWriteOnce };

    /// <summary>Cancelled by the first Ctrl-C or SIGTERM (fsck then exits 32).</summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>What cancelled <see cref="Cancellation"/>, for messages ("Ctrl-C", "SIGTERM").</summary>
    public string StopSignal => StopSignalSource?.Invoke() ?? "cancellation";

    public Func<string?>? StopSignalSource { get; init; }

    /// <summary>The command name used to prefix error lines ("basalt fsck: ...").</summary>
    public string CommandName { get; set; } = "basalt";

    /// <summary>True when a person can answer prompts (both stdin and stdout are terminals).</summary>
    public bool CanAsk => Terminal.OutputIsTerminal && Terminal.InputIsTerminal && Terminal.Input is not null;

    /// <summary>Spectre.Console on the output writer, only when stdout is a terminal.</summary>
    public IAnsiConsole? Ansi =>
        !Terminal.OutputIsTerminal ? null : _ansi ??= AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Out),
        });

    /// <summary>Opens stdout for raw bytes (cat); null runs in process write the bytes as UTF-8 text to <see cref="Out"/>.</summary>
    public Func<Stream>? RawOut { get; init; }

    /// <summary>Stdout as a byte stream, after flushing what was written to <see cref="Out"/>.</summary>
    public Stream OpenRawOut()
    {
        Out.Flush();
        return RawOut?.Invoke() ?? new TextWriterStream(Out);
    }

    public void Line(string text = "") => Out.WriteLine(text);

    /// <summary>Writes a line, coloured on a terminal (Spectre markup style name, e.g. "red").</summary>
    public void Line(string text, string style)
    {
        if (Ansi is { } ansi)
            ansi.MarkupLine($"[{style}]{Markup.Escape(text)}[/]");
        else
            Out.WriteLine(text);
    }

    /// <summary>Runs <paramref name="work"/> under a spinner on a terminal; plainly otherwise.</summary>
    public T WithStatus<T>(string message, Func<T> work)
    {
        if (Ansi is not { } ansi)
            return work();
        var result = default(T)!;
        ansi.Status().Start(message, _ => result = work());
        return result;
    }

    /// <summary>Joins a message's lines with "; "; the lines after one ending in ':' are a list, joined with ", ".</summary>
    public static string OneLine(string text)
    {
        var line = new System.Text.StringBuilder();
        var inList = false;
        foreach (var part in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (line.Length > 0)
                line.Append(inList ? (line[^1] == ':' ? " " : ", ") : "; ");
            line.Append(part);
            inList |= part.EndsWith(':');
        }
        return line.ToString();
    }

    /// <summary>Prints one error line and returns the exit code for <paramref name="error"/>.</summary>
    public int Fail(Exception error, bool fsckCodes)
    {
        var (code, message) = Classify(error, fsckCodes);
        Err.WriteLine($"{CommandName}: {OneLine(message)}");
        if (Json)
            JsonOutput.Write(Out, new ErrorJson(OneLine(message), code));
        if (Verbose)
            Err.WriteLine(error.ToString());
        return code;
    }

    [DoesNotReturn]
    public static void Usage(string message) => throw new BasaltException(ErrorCode.InvalidArgument, message);

    private static (int Code, string Message) Classify(Exception error, bool fsckCodes)
    {
        int Operational() => fsckCodes ? FsckExitCodes.OperationalError : CliExitCodes.Operational;
        int Failure() => fsckCodes ? FsckExitCodes.OperationalError : CliExitCodes.Failure;
        return error switch
        {
            FileCommands.FileCommandException f => (fsckCodes ? FsckExitCodes.OperationalError : FileCommands.FileErrors.ExitCode(f.Code), f.Message),
            BasaltException b => b.Class switch
            {
                ErrorClass.Usage => (CliExitCodes.Usage, b.Message),
                ErrorClass.NotFound or ErrorClass.InUse or ErrorClass.NoSpace or ErrorClass.FileConflict => (Failure(), b.Message),
                _ => (Operational(), b.Message),
            },
            OperationCanceledException => (fsckCodes ? FsckExitCodes.Cancelled : CliExitCodes.Operational, "cancelled"),
            // The last resort for .NET I/O exceptions no command turned into its own message: the
            // operating system's words, never .NET's (--verbose shows the exception).
            FileNotFoundException { FileName: { } name } => (Failure(), $"{name}: {IoErrorText.Describe(error)}"),
            FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException => (Failure(), IoErrorText.Describe(error)),
            // The local-filesystem layer's messages already name the operation, path and errno text.
            LocalFsException local => (Failure(), local.Message),
            IOException => (Operational(), $"I/O error: {IoErrorText.Describe(error)}"),
            _ => (Operational(), "internal error: this is a bug in basalt (run with --verbose for the details)"),
        };
    }
}

/// <summary>Raw bytes written to a TextWriter as UTF-8 text (in-process runs, where stdout is a StringWriter).</summary>
internal sealed class TextWriterStream(TextWriter output) : Stream
{
    private readonly System.Text.Decoder _decoder = System.Text.Encoding.UTF8.GetDecoder();

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        var chars = new char[_decoder.GetCharCount(buffer, flush: false)];
        var n = _decoder.GetChars(buffer, chars, flush: false);
        output.Write(chars, 0, n);
    }

    public override void Flush() => output.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
