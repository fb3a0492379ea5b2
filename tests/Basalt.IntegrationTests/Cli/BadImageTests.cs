// Every command that reads an image, on images it cannot use: one line, the right exit code,
// never a stack trace or a hang.
using Basalt.Devices;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class BadImageTests
{
    // (command args before IMAGE, exit code for a "can't use it" failure)
    public static TheoryData<string[], int> Readers => new()
    {
        { ["show-super"], 1 },
        { ["df"], 1 },
        { ["df", "--json"], 1 },
        { ["list", "--btree", "test"], 1 },
        { ["list-journal"], 1 },
        { ["fsck", "-n"], 8 },
        { ["fsck", "-y"], 8 },
        { ["debug", "corrupt", "--target", "superblock"], 1 },
        { ["debug", "corrupt", "--target", "journal-entry"], 1 },
        { ["debug", "corrupt", "--target", "alloc"], 1 },
        { ["debug", "corrupt", "--target", "data"], 1 },
    };

    [Theory]
    [MemberData(nameof(Readers))]
    public void Missing_path(string[] command, int code)
    {
        using var dir = new TempDirectory("cli-bad");
        CliRunner.Fails(code, [.. command, dir.File("missing.img")], "missing.img", "no such file");
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void Directory(string[] command, int code)
    {
        using var dir = new TempDirectory("cli-bad");
        CliRunner.Fails(code, [.. command, dir.Path], "is a directory");
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void Not_a_basalt_file(string[] command, int code)
    {
        using var dir = new TempDirectory("cli-bad");
        var path = dir.File("zeros.img");
        File.WriteAllBytes(path, new byte[4 * 1024 * 1024]);
        CliRunner.Fails(code, [.. command, path], "not a Basalt filesystem");
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void Random_bytes(string[] command, int code)
    {
        using var dir = new TempDirectory("cli-bad");
        var path = dir.File("random.img");
        var bytes = new byte[2 * 1024 * 1024 + 123];
        new Random(TestSeed.Get()).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        CliRunner.Fails(code, [.. command, path], "not a Basalt filesystem");
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void Empty_file(string[] command, int code)
    {
        using var dir = new TempDirectory("cli-bad");
        var path = dir.File("empty.img");
        File.WriteAllBytes(path, []);
        CliRunner.Fails(code, [.. command, path], "empty.img");
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void Image_in_use_by_a_writer(string[] command, int code)
    {
        using var dir = new TempDirectory("cli-bad");
        var path = CliImages.Formatted(dir);
        using var holder = FileBlockDevice.Open(path, readOnly: false);
        CliRunner.Fails(code, [.. command, path], "in use", $"pid {Environment.ProcessId}");
    }

    [Fact]
    public void Truncated_image_is_read_as_far_as_it_goes_and_a_writable_mount_refuses()
    {
        using var dir = new TempDirectory("cli-bad");
        var path = CliImages.Formatted(dir);
        using (var f = new FileStream(path, FileMode.Open))
            f.SetLength(1024 * 1024);
        const string Cut = "truncated: the image is 1048576 bytes, the superblock records 16777216 bytes";
        var show = CliRunner.Succeeds("show-super", path);
        Assert.Contains("copy 2", show.Out, StringComparison.Ordinal);
        Assert.Contains("unreadable", show.Out, StringComparison.Ordinal);
        Assert.Contains($"damage: {Cut}", show.Out, StringComparison.Ordinal);
        // The empty btree's root lies before the cut: the listing works and warns.
        var list = CliRunner.Succeeds("list", "--btree", "test", path);
        Assert.Contains($"warning: {path}: {Cut}", list.Err, StringComparison.Ordinal);
        var check = CliRunner.Run("fsck", "-n", path);
        Assert.True(check.ExitCode == 4, check.ToString());
        Assert.Contains($"device_truncated at {path}: device size: the image is 1048576 bytes", check.Out, StringComparison.Ordinal);
        CliRunner.Fails(8, ["debug", "load", path, "--ops", "1"], $"{path}: {Cut}; run basalt fsck -y");
        Assert.Contains("replay: clean at checkpoint seq ", CliRunner.Succeeds("list-journal", path).Out, StringComparison.Ordinal);
        // Cut inside the journal: the buckets past the end are listed as damage, the rest as usual.
        var cut = dir.File("cut.img");
        File.Copy(path, cut);
        using (var f = new FileStream(cut, FileMode.Open))
            f.SetLength(300_000);
        var journal = CliRunner.Succeeds("list-journal", cut);
        Assert.Contains("journal_entry_bad_header (101) at ring index 1 (bucket 4) byte 262144: journal bucket 4 lies outside the device (299520 bytes)",
            journal.Out, StringComparison.Ordinal);
        Assert.Contains("journal on disk:", CliRunner.Succeeds("show-super", cut).Out, StringComparison.Ordinal);
        // Only the copies still on the device are candidates for more damage.
        for (var seed = 0; seed < 6; seed++)
        {
            var copy = dir.File($"copy{seed}.img");
            File.Copy(path, copy);
            var r = CliRunner.Succeeds("debug", "corrupt", "--target", "superblock", "--field", "label", "--seed", $"{seed}", copy);
            Assert.Matches("superblock copy [01] at byte", r.Out);
        }
    }

    [Fact]
    public void Truncated_after_the_first_copy_is_checked_and_repaired_by_fsck()
    {
        using var dir = new TempDirectory("cli-bad");
        var path = CliImages.Formatted(dir);
        using (var f = new FileStream(path, FileMode.Open))
            f.SetLength(6000);
        var show = CliRunner.Succeeds("show-super", path);
        Assert.Contains("damage: truncated: the image is 6000 bytes", show.Out, StringComparison.Ordinal);
        var check = CliRunner.Run("fsck", "-n", path);
        Assert.True(check.ExitCode == 4, check.ToString());
        Assert.Contains("device_truncated at", check.Out, StringComparison.Ordinal);
        Assert.Equal(6000, new FileInfo(path).Length);
        Assert.Equal(1, CliRunner.Run("fsck", "-y", path).ExitCode);
        Assert.Equal(16L << 20, new FileInfo(path).Length);
        CliRunner.Succeeds("fsck", "-n", path);
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void Truncated_before_the_first_copy_is_not_a_basalt_filesystem(string[] command, int code)
    {
        using var dir = new TempDirectory("cli-bad");
        var path = CliImages.Formatted(dir);
        using (var f = new FileStream(path, FileMode.Open))
            f.SetLength(4100);
        CliRunner.Fails(code, [.. command, path], "fs.img: not a Basalt filesystem: the device is", "too short to hold a superblock");
    }

    [Fact]
    public void Every_superblock_copy_damaged_is_an_operational_error_naming_each_copy()
    {
        using var dir = new TempDirectory("cli-bad");
        var path = CliImages.Formatted(dir);
        for (var copy = 0; copy < 3; copy++)
            CliImages.DamageSuperblockCopy(path, copy);
        var r = CliRunner.Fails(8, ["show-super", path], "no good superblock copy", "copy 0", "copy 1", "copy 2");
        Assert.Contains("checksum", r.Err, StringComparison.Ordinal);
        CliRunner.Fails(8, ["fsck", "-y", path], "no good superblock copy");
    }

    [Fact]
    public void One_damaged_superblock_copy_still_works_and_says_which_copy_was_used()
    {
        using var dir = new TempDirectory("cli-bad");
        var path = CliImages.Formatted(dir);
        var offset = CliImages.DamageSuperblockCopy(path, 0);
        var show = CliRunner.Succeeds("show-super", path);
        Assert.Contains("superblock used:        copy 1", show.Out, StringComparison.Ordinal);
        Assert.Contains($"copy 0 at byte {offset}: bad checksum", show.Out, StringComparison.Ordinal);
        Assert.Contains($"mounted from copy 1 at byte", show.Out, StringComparison.Ordinal);

        var json = CliRunner.Succeeds("show-super", "--json", path);
        using var doc = System.Text.Json.JsonDocument.Parse(json.Out);
        Assert.Equal(1, doc.RootElement.GetProperty("used_copy").GetInt32());
        Assert.Equal("bad_checksum", doc.RootElement.GetProperty("copies")[0].GetProperty("status").GetString());

        var list = CliRunner.Succeeds("list", "--btree", "test", path);
        Assert.Contains("mounted from copy 1", list.Err, StringComparison.Ordinal);
    }
}
