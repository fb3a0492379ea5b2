// Helpers for tests that stack devices: capture an image, and walk the crash states of a
// recording with each state materialised over the captured base image.
using Basalt.Devices;

namespace Basalt.TestKit;

public static class DevicesTestKit
{
    /// <summary>A copy of a device's whole contents (the base image before recording starts).</summary>
    public static byte[] Capture(IBlockDevice device)
    {
        var bytes = new byte[device.Size];
        const int Chunk = 1 << 20;
        for (long at = 0; at < bytes.LongLength; at += Chunk)
            device.Read(at, bytes.AsSpan((int)at, (int)Math.Min(Chunk, bytes.LongLength - at)));
        return bytes;
    }

    /// <summary>
    /// Calls <paramref name="check"/> with every distinct crash state of <paramref name="log"/>, each
    /// materialised in memory over <paramref name="baseImage"/>. Returns the number of states checked.
    /// A failure names the state (crash point, kind, writes applied) in its message.
    /// </summary>
    public static int ForEachCrashState(byte[] baseImage, WriteLog log, CrashStateOptions options,
        Action<CrashState, IBlockDevice> check)
    {
        var count = 0;
        foreach (var state in new CrashStateEnumerator(log, options).AllStates())
        {
            using var device = state.MaterialiseInMemory(baseImage);
            try
            {
                check(state, device);
            }
            catch (Exception e) when (e is not CrashStateFailure)
            {
                throw new CrashStateFailure($"{state}: {e.Message}", e);
            }
            count++;
        }
        return count;
    }
}

/// <summary>A check failed on one crash state; the message names the state.</summary>
public sealed class CrashStateFailure(string message, Exception inner) : Exception(message, inner);
