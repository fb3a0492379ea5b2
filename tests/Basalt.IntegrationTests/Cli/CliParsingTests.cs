using Basalt.Cli;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class CliParsingTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("4096", 4096L)]
    [InlineData("4K", 4096L)]
    [InlineData("4k", 4096L)]
    [InlineData("4KiB", 4096L)]
    [InlineData("4KB", 4096L)]
    [InlineData("64M", 64L << 20)]
    [InlineData("1G", 1L << 30)]
    [InlineData("2T", 2L << 40)]
    [InlineData(" 8M ", 8L << 20)]
    [InlineData("8388607T", 8388607L << 40)]
    public void Sizes_are_powers_of_1024(string text, long bytes)
    {
        Assert.True(CliParsing.TryParseSize(text, out var parsed, out var problem), problem);
        Assert.Equal(bytes, parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("K")]
    [InlineData("-1")]
    [InlineData("1.5G")]
    [InlineData("12Q")]
    [InlineData("1KK")]
    [InlineData("8388608T")]
    [InlineData("99999999999999999999")]
    public void Bad_sizes_are_refused_with_a_reason(string text)
    {
        Assert.False(CliParsing.TryParseSize(text, out _, out var problem));
        Assert.NotEmpty(problem);
    }

    [Fact]
    public void Image_with_colons_is_one_device_unless_it_names_several()
    {
        using var dir = new TempDirectory("cli-parse");
        var existing = dir.File("a:b.img");
        File.WriteAllBytes(existing, [0]);
        Assert.Equal(existing, CliParsing.ResolveImage(existing));
        Assert.Equal("plain.img", CliParsing.ResolveImage("plain.img"));
        Assert.Equal("only.img", CliParsing.ResolveImage("only.img:"));
        var e = Assert.Throws<BasaltException>(() => CliParsing.ResolveImage("x.img:y.img:z.img"));
        Assert.Equal(ErrorClass.Usage, e.Class);
        Assert.Contains("3 devices", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("min")]
    [InlineData("max")]
    [InlineData("1:2")]
    [InlineData("1:2:3")]
    public void Positions_parse(string text) => _ = CliParsing.ParsePosition(text, "--start");

    [Theory]
    [InlineData("1")]
    [InlineData("1:2:3:4")]
    [InlineData("a:b")]
    [InlineData("-1:0")]
    public void Bad_positions_are_usage_errors(string text)
    {
        var e = Assert.Throws<BasaltException>(() => CliParsing.ParsePosition(text, "--start"));
        Assert.Equal(ErrorClass.Usage, e.Class);
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Btree_names_parse_and_an_unknown_one_lists_the_known()
    {
        Assert.Equal(BtreeId.Test, CliParsing.ParseBtree("test"));
        Assert.Equal(BtreeId.Extents, CliParsing.ParseBtree("EXTENTS"));
        var e = Assert.Throws<BasaltException>(() => CliParsing.ParseBtree("nope"));
        Assert.Contains("inodes", e.Message, StringComparison.Ordinal);
    }
}
