// A name or path typed on the command line, back to bytes.
//
// .NET decodes argv as UTF-8 and replaces each byte that is not valid UTF-8 with U+FFFD before
// Main sees it, so an argument naming a non-UTF-8 file arrives damaged. When an argument holds
// U+FFFD, its bytes are read again from /proc/self/cmdline (the kernel's copy of argv, NUL
// separated): the raw argument is the entry that decodes to the same text. Runs of U+FFFD are
// compared as one, so the match does not depend on how many replacement characters a decoder
// makes for one bad sequence. If no entry matches (the CLI was run in process, or the text came
// from an option written as --name=value) or two different entries match (a\xff and a\xfe both
// read "a?"), the bytes cannot be known and the user is asked to write them as \xNN, which works
// everywhere. A valid U+FFFD typed on purpose (bytes EF BF BD) is recovered as itself.
using System.Text;

namespace Basalt.Cli.Local;

internal static partial class NameText
{
    private const char Replacement = '\uFFFD';
    private const string CommandLinePath = "/proc/self/cmdline";

    /// <summary>
    /// The bytes of a name or path argument: its raw bytes (see the file header) with \xNN
    /// escapes applied. Fails for an empty result, a NUL byte, or bytes that cannot be recovered.
    /// </summary>
    public static bool TryParseArgument(string argument, out byte[] bytes, out string problem)
    {
        byte[]? raw = argument.Contains(Replacement, StringComparison.Ordinal)
            ? FindRawArgument(argument, ReadCommandLine())
            : Encoding.UTF8.GetBytes(argument);
        bytes = [];
        if (raw is null)
        {
            problem = $"'{argument}' holds bytes that are not UTF-8 and could not be read back from the command line; "
                + @"write each of them as \xNN (for example na\xffme)";
            return false;
        }
        bytes = Unescape(raw);
        problem = bytes.Length == 0 ? "a path cannot be empty"
            : bytes.AsSpan().Contains((byte)0) ? $"'{argument}': a path cannot hold a NUL byte"
            : "";
        return problem.Length == 0;
    }

    /// <summary>The one argv entry in <paramref name="commandLine"/> (NUL separated) that .NET would decode to <paramref name="argument"/>, or null.</summary>
    internal static byte[]? FindRawArgument(string argument, ReadOnlySpan<byte> commandLine)
    {
        var wanted = CollapseReplacements(argument);
        byte[]? found = null;
        foreach (var range in commandLine.Split((byte)0))
        {
            var entry = commandLine[range];
            if (CollapseReplacements(Encoding.UTF8.GetString(entry)) != wanted)
                continue;
            if (found is not null && !entry.SequenceEqual(found))
                return null; // two different byte strings read the same: ambiguous
            found ??= entry.ToArray();
        }
        return found;
    }

    private static string CollapseReplacements(string text)
    {
        if (!text.Contains(Replacement, StringComparison.Ordinal))
            return text;
        var collapsed = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c != Replacement || collapsed.Length == 0 || collapsed[^1] != Replacement)
                collapsed.Append(c);
        }
        return collapsed.ToString();
    }

    private static byte[] ReadCommandLine()
    {
        try
        {
            return File.ReadAllBytes(CommandLinePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
