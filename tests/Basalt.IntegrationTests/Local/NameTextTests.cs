// Display and typing of byte names: what is escaped, that the display parses back to the same
// bytes for any input, and recovering argv bytes that .NET replaced with U+FFFD.
using System.Text;
using Basalt.Cli.Local;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Local;

public sealed class NameTextTests
{
    [Theory]
    [InlineData(new byte[] { 0x61, 0x2e, 0x74, 0x78, 0x74 }, "a.txt")]
    [InlineData(new byte[] { 0x66, 0xff, 0x6f }, @"f\xffo")]
    [InlineData(new byte[] { 0x61, 0x5c, 0x62 }, @"a\x5cb")]                  // backslash
    [InlineData(new byte[] { 0x0a, 0x09, 0x1b, 0x7f }, @"\x0a\x09\x1b\x7f")]  // C0 controls and DEL
    [InlineData(new byte[] { 0xc2, 0x9b, 0x41 }, @"\xc2\x9bA")]              // C1 CSI, valid UTF-8 but a terminal control
    [InlineData(new byte[] { 0xc3, 0xa9, 0xe6, 0x97, 0xa5, 0xf0, 0x9f, 0x99, 0x82 }, "é日🙂")]
    [InlineData(new byte[] { 0xc0, 0xaf }, @"\xc0\xaf")]                     // overlong '/'
    [InlineData(new byte[] { 0xed, 0xa0, 0x80 }, @"\xed\xa0\x80")]           // an encoded surrogate
    [InlineData(new byte[] { 0x78, 0xe6, 0x97 }, @"x\xe6\x97")]              // truncated at the end
    [InlineData(new byte[] { 0xe6, 0x97, 0x78 }, @"\xe6\x97x")]              // truncated before an ASCII byte
    [InlineData(new byte[] { }, "")]
    public void ToText_EscapesExactlyWhatIsNotPrintableUtf8(byte[] bytes, string expected)
    {
        Assert.Equal(expected, NameText.ToText(bytes));
        Assert.Equal(expected != Encoding.UTF8.GetString(bytes), NameText.NeedsEscaping(bytes));
        Assert.Equal(bytes, NameText.Unescape(Encoding.UTF8.GetBytes(expected)));
        Assert.Equal(bytes, Convert.FromBase64String(NameText.ToBase64(bytes)));
    }

    [Fact]
    public void ToText_ThenUnescape_IsTheIdentity_ForRandomBytes()
    {
        var seed = TestSeed.Get();
        var random = new Random(seed);
        // Bytes weighted toward the interesting ones: backslash, 'x', hex digits, UTF-8 lead and continuation bytes.
        byte[] alphabet = [0x5c, 0x78, 0x30, 0x41, 0x66, 0x20, 0x00, 0x0a, 0x7f, 0x80, 0x9b, 0xbf, 0xc2, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xff];
        for (var i = 0; i < 5000; i++)
        {
            var bytes = new byte[random.Next(0, 12)];
            for (var j = 0; j < bytes.Length; j++)
                bytes[j] = random.Next(3) == 0 ? (byte)random.Next(256) : alphabet[random.Next(alphabet.Length)];
            var text = NameText.ToText(bytes);
            Assert.True(bytes.AsSpan().SequenceEqual(NameText.Unescape(Encoding.UTF8.GetBytes(text))),
                $"seed {seed}: {Convert.ToHexString(bytes)} displayed as {text}");
            Assert.DoesNotContain(text, char.IsControl);
        }
    }

    [Theory]
    [InlineData(@"a\x41", new byte[] { 0x61, 0x41 })]
    [InlineData(@"\xFF\xfe", new byte[] { 0xff, 0xfe })]
    [InlineData(@"\X41", new byte[] { 0x5c, 0x58, 0x34, 0x31 })]  // only a lowercase x escapes
    [InlineData(@"a\x4", new byte[] { 0x61, 0x5c, 0x78, 0x34 })]  // too short at the end
    [InlineData(@"\xzz", new byte[] { 0x5c, 0x78, 0x7a, 0x7a })]
    [InlineData(@"a\b\", new byte[] { 0x61, 0x5c, 0x62, 0x5c })]
    [InlineData(@"\x5cx41", new byte[] { 0x5c, 0x78, 0x34, 0x31 })] // an escaped backslash does not start another escape
    public void Unescape_TakesOnlyBackslashXAndTwoHexDigits(string typed, byte[] expected) =>
        Assert.Equal(expected, NameText.Unescape(Encoding.UTF8.GetBytes(typed)));

    [Fact]
    public void TryParseArgument_RefusesEmptyNulAndUnrecoverableBytes()
    {
        Assert.True(NameText.TryParseArgument(@"dir/na\xffme", out var bytes, out _));
        Assert.Equal([.. "dir/na"u8, 0xff, .. "me"u8], bytes);
        Assert.True(NameText.TryParseArgument("é", out bytes, out _));
        Assert.Equal("é"u8.ToArray(), bytes);

        Assert.False(NameText.TryParseArgument("", out _, out var problem));
        Assert.Equal("a path cannot be empty", problem);
        Assert.False(NameText.TryParseArgument(@"a\x00", out _, out problem));
        Assert.Contains("NUL", problem, StringComparison.Ordinal);
        // Not on this test host's command line: the bytes cannot be known.
        Assert.False(NameText.TryParseArgument("no-such-argument-\uFFFD-" + Guid.NewGuid(), out _, out problem));
        Assert.Contains(@"\xNN", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void FindRawArgument_RecoversTheBytesDotNetReplaced()
    {
        byte[] commandLine = [.. "basalt\0put\0f"u8, 0xff, 0xfe, .. "o\0dest\0x"u8, 0xff, 0];
        Assert.Equal([0x66, 0xff, 0xfe, 0x6f], NameText.FindRawArgument("f\uFFFD\uFFFDo", commandLine));
        Assert.Equal([0x66, 0xff, 0xfe, 0x6f], NameText.FindRawArgument("f\uFFFDo", commandLine)); // one decoder's count or another's
        Assert.Equal([0x78, 0xff], NameText.FindRawArgument("x\uFFFD", commandLine));
        Assert.Null(NameText.FindRawArgument("g\uFFFDo", commandLine));

        // Two different byte strings that read the same: ambiguous, so nothing.
        byte[] twice = [.. "a"u8, 0xff, 0, .. "a"u8, 0xfe, 0];
        Assert.Null(NameText.FindRawArgument("a\uFFFD", twice));
        // The same argument given twice is not ambiguous.
        byte[] same = [.. "a"u8, 0xff, 0, .. "a"u8, 0xff, 0];
        Assert.Equal([0x61, 0xff], NameText.FindRawArgument("a\uFFFD", same));
        // A real U+FFFD typed on purpose is itself.
        Assert.Equal("a\uFFFD"u8.ToArray(), NameText.FindRawArgument("a\uFFFD", "run\0a\uFFFD"u8));
    }

    [Fact]
    public void FindRawArgument_FindsThisProcesssOwnArgumentsInProcSelfCmdline()
    {
        var commandLine = File.ReadAllBytes("/proc/self/cmdline");
        var args = Environment.GetCommandLineArgs().Skip(1).Where(a => a.Length > 0).ToList();
        Assert.NotEmpty(args);
        foreach (var arg in args)
            Assert.Equal(Encoding.UTF8.GetBytes(arg), NameText.FindRawArgument(arg, commandLine));
    }
}
