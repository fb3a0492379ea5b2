// Seeds for randomised tests: BASALT_SEED overrides, otherwise a fresh one. Every randomised test
// prints the seed it used so a failure can be replayed with BASALT_SEED=<seed>.
using Xunit.Abstractions;

namespace Basalt.TestKit;

public static class TestSeed
{
    public static int Get(ITestOutputHelper? output = null, string? name = null)
    {
        var env = Environment.GetEnvironmentVariable("BASALT_SEED");
        var seed = int.TryParse(env, out var fixedSeed) ? fixedSeed : Random.Shared.Next();
        var line = $"seed {seed}{(name is null ? "" : $" ({name})")}: replay with BASALT_SEED={seed}";
        output?.WriteLine(line);
        Console.WriteLine(line);
        return seed;
    }
}

/// <summary>The one switch for long forms of tests: BASALT_LONG=1.</summary>
public static class LongTests
{
    public static bool Enabled => Environment.GetEnvironmentVariable("BASALT_LONG") == "1";

    /// <summary>Scales an iteration count: the given count normally, times <paramref name="factor"/> in long mode.</summary>
    public static int Scale(int count, int factor = 10) => Enabled ? count * factor : count;
}
