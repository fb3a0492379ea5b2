using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class DemoCommandTests
{
    [Fact]
    public void Demo_passes_every_check_and_prints_numbers_from_the_run()
    {
        using var dir = new TempDirectory("cli-demo");
        var r = CliRunner.Run("demo", dir.Path, "--keys", LongTests.Enabled ? "50000" : "6000", "--seed", "5");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("demo passed", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("FAIL", r.Out, StringComparison.Ordinal);
        Assert.Contains("fsck -n", r.Out, StringComparison.Ordinal);
        Assert.Contains("second fsck -n: clean", r.Out, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(dir.Path, "demo.img")));
    }

    [Fact]
    public void Demo_rejects_a_silly_workload_size() =>
        CliRunner.Fails(16, ["demo", "--keys", "5"], "--keys");
}
