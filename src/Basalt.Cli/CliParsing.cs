// Parsers for the values the CLI takes: sizes with K/M/G/T suffixes (powers of 1024), IMAGE
// (one path, or several joined with ':' of which only one is supported now) and positions.
// Every failure is a usage error whose message names the offending text.
using System.Globalization;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Cli;

internal static class CliParsing
{
    /// <summary>Parses "4096", "4K", "64M", "1G", "2T" (also "4KiB", "4kb"): powers of 1024.</summary>
    public static bool TryParseSize(string? text, out long bytes, out string problem)
    {
        bytes = 0;
        problem = "";
        var t = text?.Trim() ?? "";
        if (t.Length == 0)
        {
            problem = "empty size";
            return false;
        }
        var digits = 0;
        while (digits < t.Length && char.IsAsciiDigit(t[digits]))
            digits++;
        if (digits == 0)
        {
            problem = "not a size (examples: 4096, 64K, 128M, 1G)";
            return false;
        }
        var suffix = t[digits..].Trim().ToUpperInvariant();
        if (suffix.EndsWith("IB", StringComparison.Ordinal))
            suffix = suffix[..^2];
        else if (suffix.EndsWith('B') && suffix.Length == 2)
            suffix = suffix[..^1];
        int shift;
        switch (suffix)
        {
            case "" or "B": shift = 0; break;
            case "K": shift = 10; break;
            case "M": shift = 20; break;
            case "G": shift = 30; break;
            case "T": shift = 40; break;
            default:
                problem = $"unknown suffix '{t[digits..]}' (use K, M, G or T: powers of 1024)";
                return false;
        }
        if (!long.TryParse(t.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out var number) ||
            number > (long.MaxValue >> shift))
        {
            problem = "too large";
            return false;
        }
        bytes = number << shift;
        return true;
    }

    /// <summary>
    /// Resolves IMAGE: a path that exists is taken literally (even with ':' in it); otherwise
    /// ':' separates devices, and more than one device is refused for now.
    /// </summary>
    public static string ResolveImage(string image)
    {
        if (string.IsNullOrEmpty(image))
            throw new BasaltException(ErrorCode.InvalidArgument, "IMAGE is empty");
        if (File.Exists(image) || Directory.Exists(image) || !image.Contains(':', StringComparison.Ordinal))
            return image;
        var parts = image.Split(':');
        var named = parts.Where(p => p.Length > 0).ToArray();
        if (named.Length > 1)
        {
            throw new BasaltException(ErrorCode.InvalidArgument,
                $"IMAGE '{image}' names {named.Length} devices; only one device is supported now");
        }
        if (named.Length == 0)
            throw new BasaltException(ErrorCode.InvalidArgument, $"IMAGE '{image}' names no device");
        return named[0];
    }

    public static Bpos ParsePosition(string? text, string optionName)
    {
        if (text is null)
            throw new BasaltException(ErrorCode.InvalidArgument, $"{optionName} needs a position");
        if (!Bpos.TryParse(text, out var pos))
        {
            throw new BasaltException(ErrorCode.InvalidArgument,
                $"{optionName} '{text}' is not a position (INODE:OFFSET[:SNAPSHOT], min or max)");
        }
        return pos;
    }

    public static BtreeId ParseBtree(string? name, string optionName = "--btree")
    {
        if (!BtreeIds.TryParse(name, out var id))
        {
            var known = string.Join(", ", BtreeIds.All.Select(d => d.Name));
            throw new BasaltException(ErrorCode.InvalidArgument, $"{optionName} '{name}' is not a btree (known: {known})");
        }
        return id;
    }

    /// <summary>Checks that IMAGE names an existing regular file (or block device) before it is opened.</summary>
    public static void RequireExistingImage(string path)
    {
        if (Directory.Exists(path))
            throw new BasaltException(ErrorCode.FileNotFound, $"{path}: is a directory, not an image");
        if (!File.Exists(path))
            throw new BasaltException(ErrorCode.FileNotFound, $"{path}: no such file");
    }
}
