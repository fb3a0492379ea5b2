// `dotnet publish src/Basalt.Cli` must leave a command named `basalt` in the publish directory
// (the assembly is Basalt.Cli, see Basalt.Cli.csproj). Publishes the build the tests already made
// (--no-build: no compile, no restore) into a temporary directory and runs the result.
using System.Diagnostics;
using System.Runtime.Versioning;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

[SupportedOSPlatform("linux")]
public sealed class PublishTests
{
#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    [Fact]
    public void Publish_leaves_an_executable_named_basalt_that_runs()
    {
        using var dir = new TempDirectory("cli-publish");
        var project = Path.Combine(RepositoryRoot(), "src", "Basalt.Cli");

        var publish = Run(Dotnet(), ["publish", project, "--no-build", "-c", Configuration, "-o", dir.Path, "--nologo"]);

        Assert.True(publish.ExitCode == 0, publish.Output);
        var basalt = dir.File("basalt");
        Assert.True(File.Exists(basalt), $"no basalt in {dir.Path}: {string.Join(", ", Directory.GetFiles(dir.Path).Select(Path.GetFileName))}");
        Assert.False(File.Exists(dir.File("Basalt.Cli")), "the app host is published once, as basalt");
        Assert.True((File.GetUnixFileMode(basalt) & UnixFileMode.UserExecute) != 0, "basalt is not executable");
        var version = Run(basalt, ["--version"]);
        Assert.True(version.ExitCode == 0, version.Output);
        Assert.Matches(@"^\d+\.\d+\.\d+", version.Output);
    }

    private static string Dotnet() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    private static (int ExitCode, string Output) Run(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
            psi.ArgumentList.Add(arg);
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)} did not finish within 2 minutes");
        }
        return (process.ExitCode, stdout + stderr.Result);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Basalt.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"no Basalt.slnx above {AppContext.BaseDirectory}");
    }
}
