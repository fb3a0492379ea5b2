// The durability guarantee from outside: `basalt debug load` runs as a real child process on a real
// image file and is killed with SIGKILL at a seeded moment (after a seeded number of `durable`
// lines); `debug load --verify` must then find every thread at or past the last transaction it
// reported durable, with exactly the keys its counter calls for. Several rounds resume on the
// same image, each recovering the previous crash. SIGTERM, unlike SIGKILL, is a request: the load
// stops after each thread's current transaction, reports it durable and unmounts cleanly.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Text.Json;
using Basalt.Cli;
using Basalt.TestKit;
using Xunit.Abstractions;

namespace Basalt.IntegrationTests.Cli;

[SupportedOSPlatform("linux")]
public sealed class LoadKillTests(ITestOutputHelper output)
{
    [Fact]
    public void Every_durable_line_survives_SIGKILL_of_the_load_process()
    {
        var seed = TestSeed.Get(output, nameof(Every_durable_line_survives_SIGKILL_of_the_load_process));
        var random = new Random(seed);
        using var dir = new TempDirectory("cli-load-kill");
        var image = CliImages.Formatted(dir);
        var threads = 2 + (2 * random.Next(2));
        var rounds = LongTests.Scale(3, 4);
        long lastSeen = 0;
        for (var round = 1; round <= rounds; round++)
        {
            var flushEvery = 1 + random.Next(4);
            var target = 1 + random.Next(150);
            Dictionary<int, long> durable;
            using (var child = LoadProcess.Start(image,
                   [
                       "--threads", threads.ToString(CultureInfo.InvariantCulture), "--seed", seed.ToString(CultureInfo.InvariantCulture),
                       "--keys", "500", "--value-bytes", "64", "--flush-every", flushEvery.ToString(CultureInfo.InvariantCulture), "--seconds", "300",
                   ]))
            {
                var reached = child.WaitUntil((_, lines) => lines >= target, TimeSpan.FromSeconds(120));
                Assert.True(reached && !child.HasExited, $"round {round}: the load stopped before {target} durable lines: {child.Stderr}");
                child.Kill();
                Assert.True(child.Killed, $"round {round}: the load exited by itself");
                Assert.True(child.DurableLines >= target);
                durable = new Dictionary<int, long>(child.LastDurable);
                Assert.Equal("", child.Stderr);
                output.WriteLine($"round {round}: flush every {flushEvery}, killed pid {child.Pid} after {child.DurableLines} durable lines " +
                                 $"(target {target}); last durable: {string.Join(", ", durable.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}"))}");
            }

            var before = CliImages.Hash(image);
            var verify = CliRunner.Run("debug", "load", "--verify", "--json", image);
            Assert.True(verify.ExitCode == 0, $"round {round}: {verify}");
            Assert.Equal(before, CliImages.Hash(image));
            using var doc = JsonDocument.Parse(verify.Out);
            var recovered = doc.RootElement.GetProperty("threads").EnumerateArray()
                .ToDictionary(t => t.GetProperty("thread").GetInt32(), t => t.GetProperty("recovered").GetInt64());
            Assert.Equal(threads, recovered.Count);
            output.WriteLine($"round {round}: recovered {string.Join(", ", recovered.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}"))}, " +
                             $"{doc.RootElement.GetProperty("keys").GetInt64()} keys verified; {doc.RootElement.GetProperty("recovery").GetString()}");
            foreach (var (thread, last) in durable)
                Assert.True(recovered[thread] >= last, $"round {round}: thread {thread} recovered {recovered[thread]} < durable {last}");
            // Each round resumed from the last: the counters only grow.
            Assert.True(recovered.Values.Min() >= lastSeen, $"round {round}: a counter went back below {lastSeen}");
            lastSeen = recovered.Values.Min();
        }
        Assert.True(lastSeen > 0, "the rounds committed something");
        var fsck = CliRunner.Run("fsck", "-n", image);
        Assert.True(fsck.ExitCode == 0, fsck.ToString());
    }

    [Fact]
    public void SIGTERM_stops_the_load_cleanly_with_every_thread_reported_durable()
    {
        using var dir = new TempDirectory("cli-load-term");
        var image = CliImages.Formatted(dir);
        using var child = LoadProcess.Start(image, ["--threads", "2", "--keys", "500", "--value-bytes", "64", "--flush-every", "3", "--seconds", "300"]);
        // Both threads running (the signal handler is in place before the first line).
        var started = child.WaitUntil((last, _) => last.Count == 2, TimeSpan.FromSeconds(120));
        Assert.True(started && !child.HasExited, $"the load did not get going: {child.Stderr}");

        using (var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", child.Pid.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })!)
        {
            kill.WaitForExit();
            Assert.Equal(0, kill.ExitCode);
        }
        Assert.True(child.WaitForExit(TimeSpan.FromSeconds(120)), "the load did not stop within 120 s of SIGTERM");
        Assert.True(child.ExitCode == 0, $"exit {child.ExitCode}: {child.Stderr}");
        Assert.Equal("", child.Stderr);
        Assert.EndsWith("stopped by SIGTERM; unmounted cleanly", child.OtherLines[^1], StringComparison.Ordinal);
        var durable = child.LastDurable;
        output.WriteLine($"stopped after {child.DurableLines} durable lines; last durable: {string.Join(", ", durable.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}"))}");

        // A clean stop reports every thread's last transaction durable: the image holds exactly those.
        var verify = CliRunner.Run("debug", "load", "--verify", "--json", image);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        using var doc = JsonDocument.Parse(verify.Out);
        Assert.StartsWith("clean", doc.RootElement.GetProperty("recovery").GetString(), StringComparison.Ordinal);
        foreach (var t in doc.RootElement.GetProperty("threads").EnumerateArray())
            Assert.Equal(durable[t.GetProperty("thread").GetInt32()], t.GetProperty("recovered").GetInt64());
    }
}
