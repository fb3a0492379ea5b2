// The read-only file commands: ls, stat, cat, and df's inode count. Images are made through the
// CLI's own writing commands where they can be, and through fs.Files for file data.
using System.Text;
using System.Text.Json;
using Basalt.Devices;
using Basalt.Fs;
using Basalt.Superblocks;
using Basalt.TestKit;

namespace Basalt.IntegrationTests.Cli;

public sealed class FileReadCommandTests
{
    /// <summary>Writes a regular file through the library (the CLI has no command that writes bytes from outside yet).</summary>
    internal static void WriteFile(string image, string path, byte[] data, long offset = 0)
    {
        using var fs = BasaltFileSystem.Mount(image, new MountOptions());
        var (parent, name) = fs.Files.ResolveParent(Names.FromText(path));
        var attr = fs.Files.TryLookup(parent.Ino, name, out var found) ? found : fs.Files.Create(parent.Ino, name, 0x1A4);
        fs.Files.Write(attr.Ino, offset, data);
    }

    [Fact]
    public void Ls_lists_names_in_byte_order_and_long_shows_mode_links_size_and_symlink_targets()
    {
        using var dir = new TempDirectory("cli-ls");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", "-m", "750", image, "/docs");
        CliRunner.Succeeds("touch", image, "/docs/b.txt", "/docs/a.txt", "/docs/.hidden");
        CliRunner.Succeeds("ln", "-s", image, "a.txt", "/docs/link");
        WriteFile(image, "/docs/a.txt", new byte[1234]);

        Assert.Equal("a.txt\nb.txt\nlink\n", CliRunner.Succeeds("ls", image, "/docs").Out);
        Assert.Equal(".\n..\n.hidden\na.txt\nb.txt\nlink\n", CliRunner.Succeeds("ls", "-a", image, "/docs").Out);
        var lines = CliRunner.Succeeds("ls", "-l", image, "/docs").Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Matches(@"^-rw-r--r-- 1 0 0 1234 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ a\.txt$", lines[0]);
        Assert.Matches(@"^-rw-r--r-- 1 0 0    0 .+Z b\.txt$", lines[1]);
        Assert.Matches(@"^lrwxrwxrwx 1 0 0    5 .+Z link -> a\.txt$", lines[2]);
        var root = CliRunner.Succeeds("ls", "-l", image).Out;
        Assert.Contains("drwxr-x--- 2 0 0 0 ", root, StringComparison.Ordinal);
        Assert.Contains(" docs\n", root, StringComparison.Ordinal);
        Assert.Contains("drwx------ 2 0 0 0 ", root, StringComparison.Ordinal); // lost+found
    }

    [Fact]
    public void Ls_R_descends_depth_first_with_a_header_per_directory_and_a_file_operand_lists_itself()
    {
        using var dir = new TempDirectory("cli-ls");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", "-p", image, "/a/b/c", "/a/d");
        CliRunner.Succeeds("touch", image, "/a/b/f");
        Assert.Equal("/a:\nb\nd\n\n/a/b:\nc\nf\n\n/a/b/c:\n\n/a/d:\n", CliRunner.Succeeds("ls", "-R", image, "/a").Out);
        Assert.Equal("/a/b/f\n", CliRunner.Succeeds("ls", image, "/a/b/f").Out);
    }

    [Fact]
    public void A_name_typed_with_xNN_escapes_is_stored_as_bytes_listed_escaped_and_base64_in_json()
    {
        using var dir = new TempDirectory("cli-ls");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("touch", image, @"/caf\xe9-\xff");
        using (var fs = BasaltFileSystem.Mount(image, new MountOptions { ReadOnly = true }))
            Assert.True(fs.Files.TryLookup(FsPositions.RootIno, [(byte)'c', (byte)'a', (byte)'f', 0xe9, (byte)'-', 0xff], out _));
        Assert.Equal("caf\\xe9-\\xff\nlost+found\n", CliRunner.Succeeds("ls", image).Out);

        using var doc = JsonDocument.Parse(CliRunner.Succeeds("ls", "--json", image, "/").Out);
        var listing = doc.RootElement.GetProperty("listings")[0];
        Assert.Equal("/", listing.GetProperty("path").GetString());
        var entry = listing.GetProperty("entries")[0];
        Assert.Equal(@"caf\xe9-\xff", entry.GetProperty("name").GetString());
        Assert.Equal(Convert.ToBase64String([(byte)'c', (byte)'a', (byte)'f', 0xe9, (byte)'-', 0xff]), entry.GetProperty("name_base64").GetString());
        Assert.Equal("file", entry.GetProperty("type").GetString());
        Assert.Equal("0644", entry.GetProperty("mode").GetString());
        Assert.Equal("-rw-r--r--", entry.GetProperty("mode_text").GetString());
        Assert.Equal(1u, entry.GetProperty("nlink").GetUInt32());
        Assert.True(entry.GetProperty("ino").GetUInt64() >= FsPositions.FirstUserIno);
        Assert.True(entry.GetProperty("mtime_ns").GetInt64() > 0);
        // Typed back, the escaped name finds the same file.
        CliRunner.Succeeds("stat", image, @"/caf\xe9-\xff");
    }

    [Fact]
    public void Ls_errors_name_the_path_in_one_line()
    {
        using var dir = new TempDirectory("cli-ls");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("touch", image, "/f");
        CliRunner.Fails(1, ["ls", image, "/nope"], "basalt ls: '/nope': No such file or directory");
        CliRunner.Fails(1, ["ls", image, "/f/x"], "basalt ls: '/f/x': Not a directory");
        CliRunner.Fails(16, ["ls", image, "relative"], "basalt ls: path 'relative' is not absolute");
        var r = CliRunner.Fails(1, ["ls", "--json", image, "/nope"], "'/nope': No such file or directory");
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal(1, doc.RootElement.GetProperty("exit_code").GetInt32());
    }

    [Fact]
    public void A_never_mounted_image_has_no_root_and_the_read_only_commands_say_so()
    {
        using var dir = new TempDirectory("cli-ls");
        var bare = dir.File("bare.img");
        using (var device = FileBlockDevice.Create(bare, 16 << 20, overwrite: false))
            SuperblockIo.Format(device, new FormatOptions { BucketSize = 64 * 1024, NodeSize = 4096, BlockSize = 512 });
        var before = CliImages.Hash(bare);
        CliRunner.Fails(1, ["ls", bare], "has no root directory yet: it was never mounted read-write");
        CliRunner.Fails(1, ["stat", bare, "/"], "has no root directory yet");
        Assert.Equal(before, CliImages.Hash(bare));
        Assert.Contains("inodes                       0", CliRunner.Succeeds("df", bare).Out, StringComparison.Ordinal);
        // A writing command creates the root at its mount.
        CliRunner.Succeeds("mkdir", bare, "/d");
        Assert.Equal("d\nlost+found\n", CliRunner.Succeeds("ls", bare).Out);
    }

    [Fact]
    public void Stat_prints_every_inode_field_in_text_and_json()
    {
        using var dir = new TempDirectory("cli-stat");
        var image = CliImages.Formatted(dir);
        WriteFile(image, "/data", Encoding.ASCII.GetBytes("hello"));
        CliRunner.Succeeds("ln", "-s", image, "/data", "/sym");
        using (var fs = BasaltFileSystem.Mount(image, new MountOptions()))
        {
            fs.Files.Mknod(FsPositions.RootIno, "tty"u8, FileModes.ModeOf(FileType.CharDevice, 0x1B0), (4UL << 8) | 64);
            fs.Files.SetXattr(fs.Files.ResolvePath("/data").Ino, "user.colour"u8, "blue"u8);
        }
        var text = CliRunner.Succeeds("stat", image, "/data").Out;
        Assert.Contains("path: /data\ntype: file\nmode: 0644 (-rw-r--r--)\n", text, StringComparison.Ordinal);
        Assert.Contains("links: 1  uid: 0  gid: 0\nsize: 5  blocks: 1\nrdev: 0:0\n", text, StringComparison.Ordinal);
        Assert.Matches(@"mtime: \d+ \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z\)", text);
        Assert.Contains("xattrs: user.colour\n", text, StringComparison.Ordinal);

        using var doc = JsonDocument.Parse(CliRunner.Succeeds("stat", "--json", image, "/tty", "/sym", "/data").Out);
        var files = doc.RootElement.GetProperty("files");
        Assert.Equal("char", files[0].GetProperty("type").GetString());
        Assert.Equal("4:64", files[0].GetProperty("rdev").GetString());
        Assert.Equal("crw-rw----", files[0].GetProperty("mode_text").GetString());
        Assert.Equal("symlink", files[1].GetProperty("type").GetString());
        Assert.Equal("/data", files[1].GetProperty("symlink_target").GetString());
        Assert.Equal(5ul, files[2].GetProperty("size").GetUInt64());
        Assert.Equal("user.colour", files[2].GetProperty("xattrs")[0].GetString());
        foreach (var field in new[] { "atime_ns", "mtime_ns", "ctime_ns", "btime_ns", "generation", "ino", "blocks", "uid", "gid" })
            Assert.True(files[2].TryGetProperty(field, out _), field);
        // -L follows the symlink.
        Assert.Contains("type: file", CliRunner.Succeeds("stat", "-L", image, "/sym").Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Cat_writes_the_raw_bytes_of_files_in_order_holes_as_zeros()
    {
        using var dir = new TempDirectory("cli-cat");
        var image = CliImages.Formatted(dir);
        var big = CliImages.DataOf(20, (1 << 20) + 70_000); // more than one chunk, bytes of every value
        WriteFile(image, "/big", big);
        WriteFile(image, "/sparse", [1, 2, 3], offset: 5000);
        CliRunner.Succeeds("touch", image, "/empty");
        var before = CliImages.Hash(image);
        var (r, bytes) = CliRunner.RunBytes("cat", image, "/big", "/empty", "/sparse");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("", r.Err);
        var expected = big.Concat(new byte[5000]).Concat(new byte[] { 1, 2, 3 }).ToArray();
        Assert.Equal(expected.Length, bytes.Length);
        Assert.True(expected.AsSpan().SequenceEqual(bytes));
        Assert.Equal(before, CliImages.Hash(image));
    }

    [Fact]
    public void Cat_of_a_directory_or_a_missing_path_fails_in_one_line()
    {
        using var dir = new TempDirectory("cli-cat");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", image, "/d");
        CliRunner.Fails(1, ["cat", image, "/d"], "basalt cat: '/d': Is a directory");
        CliRunner.Fails(1, ["cat", image, "/nope"], "basalt cat: '/nope': No such file or directory");
    }

    [Fact]
    public void Cat_of_damaged_data_names_the_path_and_offset_and_exits_8()
    {
        using var dir = new TempDirectory("cli-cat");
        var image = CliImages.Formatted(dir);
        WriteFile(image, "/f", CliImages.DataOf(30, 8192));
        CliRunner.Succeeds("debug", "corrupt", image, "--target", "data", "--seed", "3");
        var (r, _) = CliRunner.RunBytes("cat", image, "/f");
        Assert.True(r.ExitCode == 8, r.ToString());
        Assert.Single(r.ErrLines);
        Assert.StartsWith("basalt cat: '/f' at offset 0: Input/output error (", r.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Df_counts_the_inodes_in_use_in_text_and_json()
    {
        using var dir = new TempDirectory("cli-df");
        var image = CliImages.Formatted(dir);
        CliRunner.Succeeds("mkdir", "-p", image, "/a/b");
        CliRunner.Succeeds("touch", image, "/a/b/f");
        Assert.EndsWith("inodes                       5\n", CliRunner.Succeeds("df", image).Out, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(CliRunner.Succeeds("df", "--json", image).Out);
        Assert.Equal(5, doc.RootElement.GetProperty("inodes").GetInt64());
    }
}
