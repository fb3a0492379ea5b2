// `basalt debug load` as a child process: how to start this very CLI again, and a handle that
// follows the `durable t i` lines it prints and can kill it with SIGKILL at any moment (the demo
// and the crash tests from outside). .NET cannot fork, so the child is a new exec of the same
// program: the app host when one is running (`basalt`, published or in the build output, a
// single-file bundle included), else the dotnet host with Basalt.Cli.dll (`dotnet Basalt.Cli.dll`,
// or the CLI hosted in another process such as a test runner).
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Basalt.Diagnostics;

namespace Basalt.Cli;

internal static class BasaltExecutable
{
    /// <summary>The program and leading arguments that run this CLI in a new process.</summary>
    public static (string File, IReadOnlyList<string> Prefix) Locate()
    {
        var self = typeof(BasaltExecutable).Assembly;
        var process = Environment.ProcessPath;
        var hostedByDotnet = process is not null && IsDotnetHost(process);
        if (process is not null && !hostedByDotnet && Assembly.GetEntryAssembly() == self)
            return (process, []);
        var dll = self.Location;
        if (dll.Length == 0)
            throw new BasaltException(ErrorCode.FileNotFound, "cannot find Basalt.Cli.dll to start a child process (the CLI runs from a bundle without an app host)");
        var host = hostedByDotnet ? process!
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } fromSdk && File.Exists(fromSdk) ? fromSdk
            : "dotnet";
        return (host, [dll]);
    }

    private static bool IsDotnetHost(string path) =>
        Path.GetFileNameWithoutExtension(path).Equals("dotnet", StringComparison.OrdinalIgnoreCase);
}

/// <summary>A running `basalt debug load` child: its durable lines as they arrive, and SIGKILL.</summary>
internal sealed class LoadProcess : IDisposable
{
    private readonly Process _process;
    private readonly object _gate = new();
    private readonly Dictionary<int, long> _durable = [];
    private readonly List<string> _stderr = [];
    private readonly List<string> _other = [];
    private long _durableLines;
    private bool _killed;

    private LoadProcess(Process process) => _process = process;

    /// <summary>Starts `basalt debug load IMAGE ARGS...`; throws when the program cannot be started.</summary>
    public static LoadProcess Start(string image, IEnumerable<string> arguments) =>
        StartCommand(new[] { "debug", "load", image }.Concat(arguments));

    /// <summary>
    /// Starts `basalt ARGS...`, any command (the demo's `put`); its stdout lines are kept as
    /// <see cref="OtherLines"/>. Throws when the program cannot be started.
    /// </summary>
    public static LoadProcess StartCommand(IEnumerable<string> arguments)
    {
        var (file, prefix) = BasaltExecutable.Locate();
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in prefix.Concat(arguments))
            psi.ArgumentList.Add(arg);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new BasaltException(ErrorCode.IoError, $"cannot start {file}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BasaltException(ErrorCode.FileNotFound, $"cannot start {file}: {e.Message}", e);
        }
        var load = new LoadProcess(process);
        process.OutputDataReceived += (_, e) => load.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (load._gate)
                    load._stderr.Add(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return load;
    }

    public int Pid => _process.Id;

    /// <summary>`durable` lines read so far.</summary>
    public long DurableLines
    {
        get
        {
            lock (_gate)
                return _durableLines;
        }
    }

    /// <summary>The last transaction each thread reported durable (threads that reported none are absent).</summary>
    public IReadOnlyDictionary<int, long> LastDurable
    {
        get
        {
            lock (_gate)
                return new Dictionary<int, long>(_durable);
        }
    }

    /// <summary>What the child wrote to stderr (complete once it has exited).</summary>
    public string Stderr
    {
        get
        {
            lock (_gate)
                return string.Join('\n', _stderr);
        }
    }

    /// <summary>Lines on stdout other than `durable t i` (the load's header and summary).</summary>
    public IReadOnlyList<string> OtherLines
    {
        get
        {
            lock (_gate)
                return [.. _other];
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Waits until <paramref name="condition"/> holds for the durable lines read so far; false when the child exits first or time runs out.</summary>
    public bool WaitUntil(Func<IReadOnlyDictionary<int, long>, long, bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        lock (_gate)
        {
            while (!condition(_durable, _durableLines))
            {
                var left = timeout - clock.Elapsed;
                if (left <= TimeSpan.Zero || _process.HasExited)
                    return condition(_durable, _durableLines);
                Monitor.Wait(_gate, TimeSpan.FromMilliseconds(Math.Min(50, left.TotalMilliseconds)));
            }
            return true;
        }
    }

    /// <summary>Kills the child with SIGKILL and waits until it is gone and its output is read to the end.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: false);
            _killed = true;
        }
        catch (InvalidOperationException)
        {
            // It had exited already.
        }
        _process.WaitForExit();
    }

    /// <summary>True when <see cref="Kill"/> ended the child (rather than it exiting by itself first).</summary>
    public bool Killed => _killed;

    /// <summary>Waits for the child to exit by itself; false on timeout.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
            return false;
        _process.WaitForExit();
        return true;
    }

    private void OnLine(string? line)
    {
        if (line is null)
            return;
        lock (_gate)
        {
            if (TryParseDurable(line, out var thread, out var transaction))
            {
                _durable[thread] = Math.Max(transaction, _durable.GetValueOrDefault(thread));
                _durableLines++;
            }
            else
            {
                _other.Add(line);
            }
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Parses "durable T I" exactly (no other spacing, no sign).</summary>
    public static bool TryParseDurable(string line, out int thread, out long transaction)
    {
        thread = 0;
        transaction = 0;
        var parts = line.Split(' ');
        return parts.Length == 3 && parts[0] == "durable" &&
               int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out thread) &&
               long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out transaction);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
            Kill();
        _process.Dispose();
    }
}
