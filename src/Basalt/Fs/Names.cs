// Names are bytes: any byte but '/' and NUL, 1 to 255 of them, never "." or "..". They print
// with \xNN escapes for bytes that are not printable UTF-8 (and for the backslash), so a name
// shown in a message can be typed back. Hashed keys (dirents, xattrs) sit at the slot their
// name hashes to, seeded per inode, or the first free slot after it (linear probing).
using System.IO.Hashing;
using System.Text;
using Basalt.Diagnostics;

namespace Basalt.Fs;

public static class Names
{
    public const int MaxLength = 255;

    /// <summary>Why <paramref name="name"/> cannot be a directory entry, or null when it can.</summary>
    public static string? Check(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty)
            return "empty name";
        if (name.Length > MaxLength)
            return $"name of {name.Length} bytes (at most {MaxLength})";
        if (name.IndexOfAny((byte)'/', (byte)0) >= 0)
            return "name holds '/' or NUL";
        if (IsDot(name) || IsDotDot(name))
            return "'.' and '..' are not stored";
        return null;
    }

    /// <summary>Throws the errno-mapped error for a name a new entry cannot have.</summary>
    public static void Validate(ReadOnlySpan<byte> name)
    {
        if (name.Length > MaxLength)
            BasaltException.Throw(ErrorCode.NameTooLong, $"name {ToText(name[..40])}… is {name.Length} bytes long (at most {MaxLength})");
        if (IsDot(name) || IsDotDot(name))
            BasaltException.Throw(ErrorCode.Exists, $"'{ToText(name)}' always exists");
        if (Check(name) is { } problem)
            BasaltException.Throw(ErrorCode.InvalidArgument, $"invalid name '{ToText(name)}': {problem}");
    }

    public static bool IsDot(ReadOnlySpan<byte> name) => name.Length == 1 && name[0] == (byte)'.';

    public static bool IsDotDot(ReadOnlySpan<byte> name) => name.Length == 2 && name[0] == (byte)'.' && name[1] == (byte)'.';

    /// <summary>The slot a name hashes to under <paramref name="seed"/>: at least <see cref="FsPositions.FirstNameSlot"/>, below 2^62.</summary>
    public static ulong SlotOf(ulong seed, ReadOnlySpan<byte> name)
    {
        var h = XxHash64.HashToUInt64(name, unchecked((long)seed)) & FsPositions.SlotMask;
        if (CollideForTests != 0)
            h = FsPositions.FirstNameSlot + (h & CollideForTests);
        return Math.Max(h, FsPositions.FirstNameSlot);
    }

    /// <summary>Tests: slots keep only these low bits, so names collide and probe (this thread only).</summary>
    [ThreadStatic]
    internal static ulong CollideForTests;

    /// <summary>The slot of an xattr: its namespace byte and name hashed together.</summary>
    public static ulong SlotOf(ulong seed, XattrNamespace ns, ReadOnlySpan<byte> name)
    {
        Span<byte> buffer = stackalloc byte[1 + MaxLength];
        buffer[0] = (byte)ns;
        name.CopyTo(buffer[1..]);
        return SlotOf(seed, buffer[..(1 + name.Length)]);
    }

    /// <summary>Printable text of a name: valid printable UTF-8 as is, every other byte and '\' as \xNN.</summary>
    public static string ToText(ReadOnlySpan<byte> name)
    {
        var sb = new StringBuilder(name.Length);
        var i = 0;
        while (i < name.Length)
        {
            var status = System.Text.Rune.DecodeFromUtf8(name[i..], out var rune, out var consumed);
            if (status == System.Buffers.OperationStatus.Done && !System.Text.Rune.IsControl(rune) && rune.Value != '\\')
            {
                sb.Append(rune.ToString());
                i += consumed;
            }
            else
            {
                sb.Append("\\x").Append(name[i].ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                i++;
            }
        }
        return sb.ToString();
    }

    /// <summary>Bytes of a name typed as text: UTF-8, with \xNN escapes for any byte.</summary>
    public static byte[] FromText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var bytes = new List<byte>(text.Length);
        var utf8 = new byte[4];
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 3 < text.Length + 0 && text[i + 1] == 'x'
                && byte.TryParse(text.AsSpan(i + 2, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
            {
                bytes.Add(b);
                i += 3;
                continue;
            }
            var length = char.IsHighSurrogate(text[i]) && i + 1 < text.Length ? 2 : 1;
            var n = Encoding.UTF8.GetBytes(text.AsSpan(i, length), utf8);
            bytes.AddRange(utf8.AsSpan(0, n));
            i += length - 1;
        }
        return [.. bytes];
    }
}
