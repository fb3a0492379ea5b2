// Runs the CLI in process (Program.Run) with captured output, under a timeout so a hang fails
// the test instead of the run, and checks the rules every failing command obeys.
using Basalt.Cli;

namespace Basalt.IntegrationTests.Cli;

internal sealed record CliResult(int ExitCode, string Out, string Err)
{
    public string[] ErrLines => Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Out}\nstderr:\n{Err}";
}

internal static class CliRunner
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(120);

    public static CliResult Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var task = Task.Run(() => Program.Run(args, stdout, stderr));
        if (!task.Wait(s_timeout))
            Assert.Fail($"basalt {string.Join(' ', args)} did not finish within {s_timeout.TotalSeconds} s");
        return new CliResult(task.Result, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs the CLI in process with raw stdout bytes (cat) captured apart from the text.</summary>
    public static (CliResult Result, byte[] Bytes) RunBytes(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        using var raw = new MemoryStream();
        var task = Task.Run(() => Program.Run(args, stdout, stderr, raw));
        if (!task.Wait(s_timeout))
            Assert.Fail($"basalt {string.Join(' ', args)} did not finish within {s_timeout.TotalSeconds} s");
        return (new CliResult(task.Result, stdout.ToString(), stderr.ToString()), raw.ToArray());
    }

    /// <summary>Asserts the exit code and that stderr is exactly one line containing every fragment, with no stack trace.</summary>
    public static CliResult Fails(int exitCode, string[] args, params string[] fragments)
    {
        var r = Run(args);
        Assert.True(r.ExitCode == exitCode, $"expected exit {exitCode}: {r}");
        Assert.True(r.ErrLines.Length == 1, $"expected one error line: {r}");
        foreach (var fragment in fragments)
            Assert.True(r.Err.Contains(fragment, StringComparison.Ordinal), $"expected '{fragment}' in stderr: {r}");
        Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", r.Err, StringComparison.Ordinal);
        return r;
    }

    public static CliResult Succeeds(params string[] args)
    {
        var r = Run(args);
        Assert.True(r.ExitCode == 0, $"expected exit 0: {r}");
        return r;
    }
}
