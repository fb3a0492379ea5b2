using System.Reflection;
using Basalt.Benchmarks.Peers;
using BenchmarkDotNet.Running;

namespace Basalt.Benchmarks;

/// <summary>
/// A command of the benchmark program other than BenchmarkDotNet's own: a static class with
/// this attribute and a <c>public static int Run(string[] args)</c>. Found by reflection, so a
/// command whose file a revision lacks (peers.sh --ab builds older revisions with this harness)
/// is simply absent there.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class BenchCommandAttribute(string name) : Attribute
{
    public string Name { get; } = name;
}

public static class Program
{
    /// <summary>`peers …` (PeerComparison), `replay …` (ReplayMeasurement) and any other BenchCommand; anything else goes to BenchmarkDotNet.</summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "peers")
            return PeerComparison.Run(args[1..]);
        if (args.Length > 0 && FindCommand(args[0]) is { } command)
            return (int)command.Invoke(null, [args[1..]])!;
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }

    private static MethodInfo? FindCommand(string name)
    {
        foreach (var type in typeof(Program).Assembly.GetTypes())
        {
            if (type.GetCustomAttribute<BenchCommandAttribute>() is { } attribute && attribute.Name == name)
                return type.GetMethod("Run", BindingFlags.Public | BindingFlags.Static, [typeof(string[])]);
        }
        return null;
    }
}
