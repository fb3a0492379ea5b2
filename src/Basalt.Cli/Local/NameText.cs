// Local names and paths are bytes; people read and type text. NameText converts between them.
//
// Display (ToText): valid UTF-8 passes through unchanged, except that every byte that is not part
// of valid UTF-8, every control character (C0 < 0x20, DEL 0x7f and the C1 range U+0080..U+009F,
// which terminals act on) and the backslash itself are written as \xNN, two lowercase hex digits
// per byte. The backslash is \x5c rather than \\ so that the display has exactly one escape form,
// and parsing it back gives the same bytes: Unescape(ToText(b)) == b for every b. For --json,
// ToBase64 gives an exact form a program can decode without knowing the escape.
//
// Typing (Unescape, TryParseArgument in NameText.Arguments.cs): \xNN (either case of hex) is the
// byte NN; a backslash not followed by x and two hex digits is an ordinary backslash, so a typed
// name only changes meaning where it contains that exact pattern.
using System.Buffers;
using System.Text;

namespace Basalt.Cli.Local;

internal static partial class NameText
{
    /// <summary>The display form of a name or path (see the file header).</summary>
    public static string ToText(ReadOnlySpan<byte> bytes)
    {
        if (!NeedsEscaping(bytes))
            return Encoding.UTF8.GetString(bytes);
        var text = new StringBuilder(bytes.Length + 16);
        Span<char> chars = stackalloc char[2];
        while (!bytes.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(bytes, out var rune, out var consumed);
            if (status == OperationStatus.Done && !IsEscaped(rune))
            {
                text.Append(chars[..rune.EncodeToUtf16(chars)]);
            }
            else
            {
                foreach (var b in bytes[..consumed])
                    text.Append(@"\x").Append(HexDigit(b >> 4)).Append(HexDigit(b & 0xF));
            }
            bytes = bytes[consumed..];
        }
        return text.ToString();
    }

    /// <summary>True when ToText changes something: the name is not plain printable UTF-8 without backslashes.</summary>
    public static bool NeedsEscaping(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var b = bytes[0];
            if (b is >= 0x20 and < 0x7f and not (byte)'\\')
            {
                bytes = bytes[1..];
                continue;
            }
            if (Rune.DecodeFromUtf8(bytes, out var rune, out var consumed) != OperationStatus.Done || IsEscaped(rune))
                return true;
            bytes = bytes[consumed..];
        }
        return false;
    }

    /// <summary>The exact bytes as base64, for --json beside the display form.</summary>
    public static string ToBase64(ReadOnlySpan<byte> bytes) => Convert.ToBase64String(bytes);

    /// <summary>Typed bytes with every \xNN replaced by the byte NN.</summary>
    public static byte[] Unescape(ReadOnlySpan<byte> typed)
    {
        if (!typed.Contains((byte)'\\'))
            return typed.ToArray();
        var bytes = new byte[typed.Length];
        var length = 0;
        for (var i = 0; i < typed.Length;)
        {
            if (typed[i] == (byte)'\\' && i + 3 < typed.Length && typed[i + 1] == (byte)'x'
                && HexValue(typed[i + 2]) is >= 0 and var high && HexValue(typed[i + 3]) is >= 0 and var low)
            {
                bytes[length++] = (byte)((high << 4) | low);
                i += 4;
            }
            else
            {
                bytes[length++] = typed[i++];
            }
        }
        return bytes.AsSpan(0, length).ToArray();
    }

    private static bool IsEscaped(Rune rune) => rune.Value is < 0x20 or (>= 0x7f and <= 0x9f) or '\\';

    private static char HexDigit(int value) => (char)(value < 10 ? '0' + value : 'a' + value - 10);

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
