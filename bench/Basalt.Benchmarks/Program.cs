using Basalt.Benchmarks.Peers;
using BenchmarkDotNet.Running;

namespace Basalt.Benchmarks;

public static class Program
{
    /// <summary>`peers …` runs or compares the peer comparison (PeerComparison); anything else goes to BenchmarkDotNet.</summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "peers")
            return PeerComparison.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
