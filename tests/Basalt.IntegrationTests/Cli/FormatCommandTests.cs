using Basalt.Devices;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class FormatCommandTests
{
    [Fact]
    public void Format_creates_a_missing_file_of_the_given_size()
    {
        using var dir = new TempDirectory("cli-format");
        var path = dir.File("new.img");
        var r = CliRunner.Succeeds(["format", .. CliImages.SmallGeometry, "--label", "hello", path]);
        Assert.Equal(16L * 1024 * 1024, new FileInfo(path).Length);
        Assert.Contains("formatted", r.Out, StringComparison.Ordinal);
        Assert.Contains("label \"hello\"", r.Out, StringComparison.Ordinal);
        var show = CliRunner.Succeeds("show-super", path);
        Assert.Contains("hello", show.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Format_of_a_missing_file_without_size_is_a_usage_error()
    {
        using var dir = new TempDirectory("cli-format");
        CliRunner.Fails(16, ["format", dir.File("nope.img")], "does not exist", "--size");
        Assert.False(File.Exists(dir.File("nope.img")));
    }

    [Fact]
    public void Format_refuses_an_existing_filesystem_and_names_it_unless_forced()
    {
        using var dir = new TempDirectory("cli-format");
        var path = CliImages.Formatted(dir);
        var before = CliImages.Hash(path);
        CliRunner.Fails(1, ["format", path], path, "Basalt filesystem", "--force");
        Assert.Equal(before, CliImages.Hash(path));
        CliRunner.Succeeds(["format", "--force", .. CliImages.SmallGeometry, path]);
        Assert.NotEqual(before, CliImages.Hash(path));
    }

    [Fact]
    public void Format_refuses_a_foreign_filesystem_and_names_it()
    {
        using var dir = new TempDirectory("cli-format");
        var path = dir.File("ext.img");
        var bytes = new byte[8 * 1024 * 1024];
        bytes[1024 + 56] = 0x53;  // ext2/3/4 s_magic 0xEF53, little-endian
        bytes[1024 + 57] = 0xEF;
        File.WriteAllBytes(path, bytes);
        CliRunner.Fails(1, ["format", path], "ext2/ext3/ext4 filesystem", "--force");
        CliRunner.Succeeds("format", "--force", "--bucket-size", "64K", path);
    }

    [Fact]
    public void Format_formats_an_existing_blank_file_without_force()
    {
        using var dir = new TempDirectory("cli-format");
        var path = dir.File("blank.img");
        File.WriteAllBytes(path, new byte[8 * 1024 * 1024]);
        CliRunner.Succeeds("format", "--bucket-size", "64K", "--btree-node-size", "4K", path);
        CliRunner.Succeeds("show-super", path);
    }

    [Theory]
    [InlineData("--size", "12Q", "unknown suffix")]
    [InlineData("--size", "-5", "not a size")]
    [InlineData("--size", "abc", "not a size")]
    [InlineData("--size", "0", "greater than 0")]
    [InlineData("--size", "99999999999T", "too large")]
    [InlineData("--block-size", "x", "--block-size")]
    [InlineData("--bucket-size", "1Z", "--bucket-size")]
    public void Format_with_a_bad_size_is_a_usage_error(string option, string value, string fragment)
    {
        using var dir = new TempDirectory("cli-format");
        CliRunner.Fails(16, ["format", option, value, dir.File("x.img")], fragment);
        Assert.False(File.Exists(dir.File("x.img")));
    }

    [Fact]
    public void Format_with_a_size_not_a_multiple_of_512_is_a_usage_error() =>
        CliRunner.Fails(16, ["format", "--size", "1000", "/nonexistent-dir/x.img"], "multiple of 512");

    [Fact]
    public void Format_with_an_invalid_geometry_fails_with_one_line()
    {
        using var dir = new TempDirectory("cli-format");
        var r = CliRunner.Run("format", "--size", "16M", "--block-size", "3000", dir.File("g.img"));
        Assert.True(r.ExitCode is 1 or 16, r.ToString());
        Assert.Single(r.ErrLines);
        Assert.Contains("block size", r.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.File("g.img")), "a refused format left the new file behind");
    }

    [Fact]
    public void Format_of_a_too_small_device_says_how_much_is_needed()
    {
        using var dir = new TempDirectory("cli-format");
        CliRunner.Fails(1, ["format", "--size", "64K", dir.File("tiny.img")], "at least");
        Assert.False(File.Exists(dir.File("tiny.img")));
    }

    [Fact]
    public void Format_of_a_directory_is_refused() 
    {
        using var dir = new TempDirectory("cli-format");
        CliRunner.Fails(1, ["format", "--size", "16M", dir.Path], "is a directory");
    }

    [Fact]
    public void Format_of_several_devices_says_only_one_is_supported()
    {
        using var dir = new TempDirectory("cli-format");
        CliRunner.Fails(16, ["format", "--size", "16M", $"{dir.File("a.img")}:{dir.File("b.img")}"], "2 devices", "only one device");
    }

    [Fact]
    public void Format_takes_a_path_with_a_colon_literally_when_it_exists()
    {
        using var dir = new TempDirectory("cli-format");
        var path = dir.File("a:b.img");
        File.WriteAllBytes(path, new byte[8 * 1024 * 1024]);
        CliRunner.Succeeds("format", "--bucket-size", "64K", path);
    }

    [Fact]
    public void Format_of_an_image_in_use_names_the_holder()
    {
        using var dir = new TempDirectory("cli-format");
        var path = CliImages.Formatted(dir);
        using var holder = FileBlockDevice.Open(path, readOnly: false);
        CliRunner.Fails(1, ["format", "--force", path], "in use", $"pid {Environment.ProcessId}");
    }

    [Fact]
    public void Unknown_command_and_option_are_usage_errors()
    {
        CliRunner.Fails(16, ["frobnicate"], "frobnicate");
        CliRunner.Fails(16, ["format", "x.img", "--bogus"], "--bogus");
        CliRunner.Fails(16, [], "basalt");
    }

    [Fact]
    public void Verbose_adds_the_stack_trace()
    {
        var r = CliRunner.Run("--verbose", "show-super", "/nonexistent/x.img");
        Assert.Equal(1, r.ExitCode);
        Assert.True(r.ErrLines.Length > 1, r.ToString());
        Assert.Contains("BasaltException", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Help_exits_zero()
    {
        var r = CliRunner.Succeeds("--help");
        Assert.Contains("fsck", r.Out, StringComparison.Ordinal);
        Assert.Contains("--btree", CliRunner.Succeeds("list", "--help").Out, StringComparison.Ordinal);
    }
}
