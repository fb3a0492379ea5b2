// Every message the CLI prints is in its own words: a bad value, a missing IMAGE or an option
// without its value is one stderr line naming the option and the text, exit 16, and never the
// parser library's or .NET's wording (type names such as System.Int32, "Cannot parse argument").
using System.CommandLine;
using System.Text.Json;
using Basalt.Cli;
using Basalt.Devices;

namespace Basalt.IntegrationTests.Cli;

public sealed class CliWordingTests
{
    private static readonly string[] s_dotnetWords = ["System.", "Cannot parse", "expected type", "Exception", "Nullable", "Int32", "not recognized"];

    public static TheoryData<string[], string> UsageErrors() => new()
    {
        { ["demo", "--seed", "x"], "basalt demo: --seed: 'x' is not a whole number; see 'basalt demo --help'" },
        { ["demo", "--files", "1.5"], "basalt demo: --files: '1.5' is not a whole number; see 'basalt demo --help'" },
        { ["demo", "--files", "5"], "basalt demo: --files: 5 is outside 20..20000; see 'basalt demo --help'" },
        { ["demo", "--files", "99999999999"], "basalt demo: --files: 99999999999 is outside 20..20000; see 'basalt demo --help'" },
        { ["demo", "--seed"], "basalt demo: --seed needs a value; see 'basalt demo --help'" },
        { ["demo", "--seed", "--files", "100"], "basalt demo: --seed needs a value (and 1 more); see 'basalt demo --help'" },
        { ["demo", "--seed", "1", "--seed", "2"], "basalt demo: --seed is given more than once; see 'basalt demo --help'" },
        { ["list", "--btree", "test", "--level", "x", "fs.img"], "basalt list: --level: 'x' is not a whole number; see 'basalt list --help'" },
        { ["list", "--btree", "test", "--level", "9", "fs.img"], "basalt list: --level: 9 is outside 0..7; see 'basalt list --help'" },
        { ["list", "fs.img"], "basalt list: --btree is required; see 'basalt list --help'" },
        { ["fsck"], "basalt fsck: IMAGE is missing; see 'basalt fsck --help'" },
        { ["fsck", "a.img", "b.img"], "basalt fsck: unexpected argument 'b.img'; see 'basalt fsck --help'" },
        { ["debug"], "basalt debug: a command is needed (commands: corrupt, load, scan-nodes); see 'basalt debug --help'" },
        { ["debug", "corrupt", "--target", "node", "--seed", "x", "fs.img"], "basalt debug corrupt: --seed: 'x' is not a whole number; see 'basalt debug corrupt --help'" },
        { ["debug", "corrupt", "--target", "node", "--level", "q", "fs.img"], "basalt debug corrupt: --level: 'q' is not a whole number; see 'basalt debug corrupt --help'" },
        { ["debug", "corrupt", "--target", "nodex", "fs.img"], "basalt debug corrupt: --target: 'nodex' is not one of node, bset, key, superblock, journal-entry, journal-record, journal-field, alloc, backpointer, extent, data; see 'basalt debug corrupt --help'" },
        { ["debug", "corrupt", "--target", "key", "--mode", "flip", "fs.img"], "basalt debug corrupt: --mode: 'flip' is not one of zero, ones, random, bitflip; see 'basalt debug corrupt --help'" },
        { ["debug", "corrupt", "fs.img"], "basalt debug corrupt: --target is required; see 'basalt debug corrupt --help'" },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public void A_usage_error_is_one_plain_line_and_exit_16(string[] args, string line)
    {
        var r = CliRunner.Fails(16, args);
        Assert.Equal(line, Assert.Single(r.ErrLines));
        Assert.Equal("", r.Out);
        foreach (var word in s_dotnetWords)
            Assert.DoesNotContain(word, r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_usage_errors_carry_the_same_plain_line()
    {
        var r = CliRunner.Fails(16, ["list", "--btree", "test", "--level", "x", "--json", "fs.img"]);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal("--level: 'x' is not a whole number; see 'basalt list --help'", doc.RootElement.GetProperty("error").GetString());
        Assert.Equal(16, doc.RootElement.GetProperty("exit_code").GetInt32());
    }

    [Fact]
    public void Every_typed_option_is_parsed_by_the_cli_itself()
    {
        // Options of other types than text and flags would fall back to the library's converters,
        // whose errors name .NET types: each must come with a parser of ours (CliOptions).
        var root = Program.CreateRoot(new CliContext(TextWriter.Null, TextWriter.Null, CliTerminal.None), out _);
        var options = new List<Option>();
        void Walk(Command command)
        {
            options.AddRange(command.Options);
            foreach (var sub in command.Subcommands)
                Walk(sub);
        }
        Walk(root);
        foreach (var option in options)
        {
            if (option.ValueType == typeof(string) || option.ValueType == typeof(bool) || option.Arity.MaximumNumberOfValues == 0)
                continue;
            var parser = option.GetType().GetProperty("CustomParser")?.GetValue(option);
            Assert.True(parser is not null, $"{option.Name} ({option.ValueType.Name}) has no parser of the CLI's own");
        }
    }

    [Theory]
    [InlineData(5, "I/O error: Input/output error (errno 5)")]
    [InlineData(28, "I/O error: No space left on device (errno 28)")]
    public void An_unexpected_dotnet_io_error_is_printed_in_the_systems_words(int errno, string expected)
    {
        var err = new StringWriter();
        var cli = new CliContext(TextWriter.Null, err, CliTerminal.None) { CommandName = "basalt fsck" };

        var code = cli.Fail(new IOException("Input/output error : '/x.img'", errno), fsckCodes: true);

        Assert.Equal(8, code);
        Assert.Equal($"basalt fsck: {expected}", err.ToString().TrimEnd());
    }

    [Fact]
    public void Permission_and_internal_errors_name_no_dotnet_type_or_message()
    {
        var err = new StringWriter();
        var cli = new CliContext(TextWriter.Null, err, CliTerminal.None);

        Assert.Equal(1, cli.Fail(new UnauthorizedAccessException("Access to the path '/x' is denied."), fsckCodes: false));
        Assert.Equal(8, cli.Fail(new NullReferenceException(), fsckCodes: false));

        Assert.Equal(["basalt: Permission denied", "basalt: internal error: this is a bug in basalt (run with --verbose for the details)"],
            err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Device_io_errors_use_the_systems_words()
    {
        Assert.Equal("Input/output error (errno 5)", IoErrorText.Describe(new IOException("Input/output error : '/x'", 5)));
        Assert.Equal("No such file or directory (errno 2)", IoErrorText.Describe(new FileNotFoundException("Could not find file '/x'.")));
        Assert.Equal("Permission denied", IoErrorText.Describe(new UnauthorizedAccessException("Access to the path '/x' is denied.")));
        Assert.Equal("I/O error", IoErrorText.Describe(new IOException("The process cannot access the file")));
    }
}
