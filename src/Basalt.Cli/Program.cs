// The `basalt` command line: format, show-super, df, list, fsck, debug corrupt, debug load, demo and the
// in-image file commands ls, stat, cat, mkdir, rm, mv, cp, ln and touch (DESIGN §7).
// Program.Run is the in-process entry point the tests use; Main only attaches the console.
// Rules every command follows: errors are one line on stderr saying what and where (--verbose
// adds the stack trace); usage errors exit 16; fsck exits with fsck(8)'s bit flags; other
// commands exit 0 (ok), 1 (a failure the user can act on) or 8 (operational error).
using System.CommandLine;
using System.CommandLine.Help;
using System.Runtime.InteropServices;
using Basalt.Fsck;

namespace Basalt.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        string? stoppedBy = null;
        // The first Ctrl-C or SIGTERM asks the running command to stop cleanly (a load unmounts,
        // fsck exits 32); a second one is left to do what it does by default: end the process.
        bool Stop(string signal)
        {
            if (Interlocked.CompareExchange(ref stoppedBy, signal, null) is not null)
                return false;
            cancel.Cancel();
            return true;
        }
        Console.CancelKeyPress += (_, e) => e.Cancel = Stop("Ctrl-C");
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => context.Cancel = Stop("SIGTERM"));
        return Run(args, Console.Out, Console.Error, CliTerminal.FromConsole(), cancel.Token, () => Volatile.Read(ref stoppedBy),
            Console.OpenStandardOutput);
    }

    /// <summary>Runs the CLI in process with the given output writers (not a terminal).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) =>
        Run(args, stdout, stderr, CliTerminal.None, CancellationToken.None);

    /// <summary>Runs the CLI in process; raw bytes (cat) go to <paramref name="rawOut"/>.</summary>
    internal static int Run(string[] args, TextWriter stdout, TextWriter stderr, Stream rawOut) =>
        Run(args, stdout, stderr, CliTerminal.None, CancellationToken.None, rawOut: () => rawOut);

    internal static int Run(string[] args, TextWriter stdout, TextWriter stderr, CliTerminal terminal, CancellationToken cancellation,
        Func<string?>? stopSignal = null, Func<Stream>? rawOut = null)
    {
        var cli = new CliContext(stdout, stderr, terminal) { Cancellation = cancellation, StopSignalSource = stopSignal, RawOut = rawOut };
        var root = CreateRoot(cli, out var verbose);

        // No response files: an IMAGE path may start with '@'.
        var parse = root.Parse(FileCommands.CpCommand.ExpandBareReflink(args), new ParserConfiguration { ResponseFileTokenReplacer = null });
        cli.Verbose = parse.GetValue(verbose);
        cli.Json = parse.Tokens.Any(t => t.Value == "--json");
        cli.CommandName = parse.CommandResult.Command is RootCommand ? "basalt" : CommandPath(parse.CommandResult.Command, root);
        try
        {
            if (parse.Action is not HelpAction && CliOptions.UsageProblem(parse, root) is { } problem)
            {
                var line = $"{problem}; see '{cli.CommandName} --help'";
                stderr.WriteLine($"{cli.CommandName}: {line}");
                if (cli.Json)
                    JsonOutput.Write(stdout, new ErrorJson(line, CliExitCodes.Usage));
                return CliExitCodes.Usage;
            }
            if (parse.Action is HelpAction && parse.CommandResult.Command is RootCommand)
            {
                var help = new StringWriter();
                var code = parse.Invoke(new InvocationConfiguration { Output = help, Error = stderr, EnableDefaultExceptionHandler = false });
                stdout.Write(WithOptionalArgumentsBracketed(help.ToString(), root));
                return code;
            }
            return parse.Invoke(new InvocationConfiguration
            {
                Output = stdout,
                Error = stderr,
                EnableDefaultExceptionHandler = false,
            });
        }
        catch (Exception e)
        {
            return cli.Fail(e, fsckCodes: parse.CommandResult.Command.Name == "fsck");
        }
        finally
        {
            stdout.Flush();
            stderr.Flush();
        }
    }

    /// <summary>The command tree: every command and option the CLI has.</summary>
    internal static RootCommand CreateRoot(CliContext cli, out Option<bool> verbose)
    {
        verbose = new Option<bool>("--verbose", "-v")
        {
            Description = "show stack traces with errors",
            Recursive = true,
        };
        var root = new RootCommand("basalt: create, inspect, check and repair Basalt filesystem images")
        {
            HelpName = "basalt",
        };
        root.Add(verbose);
        foreach (var command in Commands(cli))
            root.Add(command);
        return root;
    }

    private static IEnumerable<Command> Commands(CliContext cli)
    {
        yield return FormatCommand.Create(cli);
        yield return ShowSuperCommand.Create(cli);
        yield return DfCommand.Create(cli);
        yield return ListCommand.Create(cli);
        yield return ListJournalCommand.Create(cli);
        yield return FsckCommand.Create(cli);
        yield return PutCommand.Create(cli);
        yield return GetCommand.Create(cli);
        yield return DebugCommand.Create(cli);
        yield return DemoCommand.Create(cli);
        yield return FileCommands.LsCommand.Create(cli);
        yield return FileCommands.StatCommand.Create(cli);
        yield return FileCommands.CatCommand.Create(cli);
        yield return FileCommands.MkdirCommand.Create(cli);
        yield return FileCommands.RmCommand.Create(cli);
        yield return FileCommands.MvCommand.Create(cli);
        yield return FileCommands.CpCommand.Create(cli);
        yield return FileCommands.LnCommand.Create(cli);
        yield return FileCommands.TouchCommand.Create(cli);
    }

    /// <summary>
    /// The command list of `basalt --help` with each optional argument in brackets, as the
    /// command's own usage line has it ("demo [&lt;DIR&gt;]"): the library's list prints every argument
    /// as if it were required, and offers no public way to change that row, so the row is rewritten
    /// in the text (two columns of padding absorb the two brackets).
    /// </summary>
    private static string WithOptionalArgumentsBracketed(string help, RootCommand root)
    {
        foreach (var command in root.Subcommands.Where(c => !c.Hidden))
        {
            var plain = string.Join(' ', [command.Name, .. command.Arguments.Where(a => !a.Hidden).Select(a => $"<{a.Name}>")]);
            var bracketed = string.Join(' ', [command.Name, .. command.Arguments.Where(a => !a.Hidden)
                .Select(a => a.Arity.MinimumNumberOfValues == 0 ? $"[<{a.Name}>]" : $"<{a.Name}>")]);
            if (plain == bracketed)
                continue;
            var extra = bracketed.Length - plain.Length;
            var row = $"\n  {plain}{new string(' ', extra)}";
            help = help.Contains(row, StringComparison.Ordinal)
                ? help.Replace(row, $"\n  {bracketed}", StringComparison.Ordinal)
                : help.Replace($"\n  {plain} ", $"\n  {bracketed} ", StringComparison.Ordinal);
        }
        return help;
    }

    private static string CommandPath(Command command, RootCommand root)
    {
        foreach (var top in root.Subcommands)
        {
            if (top == command)
                return $"basalt {top.Name}";
            foreach (var sub in top.Subcommands)
            {
                if (sub == command)
                    return $"basalt {top.Name} {sub.Name}";
            }
        }
        return $"basalt {command.Name}";
    }

    /// <summary>Runs a command body: exceptions become one error line and an exit code.</summary>
    internal static int Execute(CliContext cli, Func<int> body, bool fsckCodes = false)
    {
        try
        {
            return body();
        }
        catch (Exception e)
        {
            return cli.Fail(e, fsckCodes);
        }
    }
}
