// Options and parse errors in the CLI's own words. The parser library reports a bad value with
// .NET's type names ("Cannot parse argument 'x' for option '--seed' as expected type
// 'System.Int32'"), so every option whose value is not plain text is made here with a parser of
// ours ("--seed: 'x' is not a whole number"), and the structural errors the library finds (a
// missing IMAGE, an option without its value, a required option left out, an extra argument)
// are re-worded from the parse tree, never from the library's messages (UsageProblem).
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Basalt.Cli;

internal static class CliOptions
{
    /// <summary>An option taking a whole number in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static Option<int> Int(string name, string? alias, string description, int min = int.MinValue, int max = int.MaxValue,
        int defaultValue = 0)
    {
        var option = alias is null ? new Option<int>(name) : new Option<int>(name, alias);
        option.Description = description;
        option.DefaultValueFactory = _ => defaultValue;
        option.CustomParser = result => TryParseInt(name, result, min, max, out var value) ? value : defaultValue;
        return option;
    }

    /// <summary>Like <see cref="Int"/>, null when the option is not given.</summary>
    public static Option<int?> OptionalInt(string name, string? alias, string description, int min = int.MinValue, int max = int.MaxValue)
    {
        var option = alias is null ? new Option<int?>(name) : new Option<int?>(name, alias);
        option.Description = description;
        option.CustomParser = result => TryParseInt(name, result, min, max, out var value) ? value : null;
        return option;
    }

    /// <summary>An option taking one word of <paramref name="choices"/> (case-insensitive).</summary>
    public static Option<string> Choice(string name, string? alias, string description, string[] choices, string? defaultValue = null)
    {
        var option = alias is null ? new Option<string>(name) : new Option<string>(name, alias);
        option.Description = description;
        if (defaultValue is not null)
            option.DefaultValueFactory = _ => defaultValue;
        option.CompletionSources.Add(choices);
        option.HelpName = string.Join('|', choices);
        option.CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            var match = choices.FirstOrDefault(c => string.Equals(c, text, StringComparison.OrdinalIgnoreCase));
            if (match is null)
                result.AddError($"{name}: '{text}' is not one of {string.Join(", ", choices)}");
            return match ?? defaultValue;
        };
        return option;
    }

    /// <summary>Parses "42", "-1": a whole number in range, or "not a whole number" / "outside MIN..MAX".</summary>
    internal static bool TryParseInt(string text, int min, int max, out int value, out string problem)
    {
        problem = "";
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number))
        {
            value = 0;
            problem = text.Length > 0 && text.TrimStart('-', '+').All(char.IsAsciiDigit) && text.TrimStart('-', '+').Length > 0
                ? $"'{text}' is outside {min}..{max}"
                : $"'{text}' is not a whole number";
            return false;
        }
        if (number < min || number > max)
        {
            value = 0;
            problem = $"{number} is outside {min}..{max}";
            return false;
        }
        value = (int)number;
        return true;
    }

    private static bool TryParseInt(string name, ArgumentResult result, int min, int max, out int value)
    {
        var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
        if (TryParseInt(text, min, max, out value, out var problem))
            return true;
        result.AddError($"{name}: {problem}");
        return false;
    }

    /// <summary>
    /// The first thing wrong with the command line, in the CLI's words, or null when the parser
    /// found nothing. Unknown commands and options come first: they explain the rest.
    /// </summary>
    public static string? UsageProblem(ParseResult parse, RootCommand root)
    {
        var problems = new List<string>();
        if (parse.CommandResult.Command is RootCommand && parse.UnmatchedTokens.Count > 0 &&
            parse.Tokens.FirstOrDefault() is { Type: TokenType.Argument } first && !first.Value.StartsWith('-'))
        {
            problems.Add($"unknown command '{first.Value}' (commands: {string.Join(", ", root.Subcommands.Select(c => c.Name))})");
        }
        var known = KnownOptionNames(parse.CommandResult);
        Token? previous = null;
        foreach (var token in parse.Tokens)
        {
            // "--", a lone "-" and negative numbers (--seed -1) are arguments; anything else that
            // starts with '-' and was not matched as an option is a misspelt option, or a known
            // option taken as the value of the one before it.
            if (token.Type == TokenType.Argument && token.Value.Length > 1 && token.Value[0] == '-' && token.Value != "--" &&
                !double.TryParse(token.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            {
                problems.Add(known.Contains(token.Value) && previous is { Type: TokenType.Option } option
                    ? $"{option.Value} needs a value"
                    : $"unknown option '{token.Value}'");
            }
            previous = token;
        }
        if (problems.Count == 0 && parse.Errors.Count == 0)
            return null;
        foreach (var token in parse.UnmatchedTokens.Where(t => !t.StartsWith('-')))
        {
            if (parse.CommandResult.Command is not RootCommand)
                problems.Add($"unexpected argument '{token}'");
        }
        foreach (var error in parse.Errors)
        {
            var problem = error.SymbolResult switch
            {
                OptionResult { Tokens.Count: 0, IdentifierTokenCount: > 0 } o => $"{o.IdentifierToken!.Value} needs a value",
                OptionResult { Tokens.Count: 0 } o => $"{o.Option.Name} is required",
                OptionResult { Tokens.Count: > 1 } o when o.Option.Arity.MaximumNumberOfValues == 1 => $"{o.Option.Name} is given more than once",
                ArgumentResult { Tokens.Count: 0 } a => $"{a.Argument.Name} is missing",
                CommandResult c when parse.UnmatchedTokens.Count == 0 && c.Command.Subcommands.Count > 0 =>
                    $"a command is needed (commands: {string.Join(", ", c.Command.Subcommands.Select(s => s.Name))})",
                CommandResult => null,   // unmatched tokens: worded above
                _ => error.Message,      // our own parsers' messages
            };
            if (problem is not null)
                problems.Add(problem);
        }
        problems = [.. problems.Distinct()];
        if (problems.Count == 0)
            return null;
        var more = problems.Count > 1 ? $" (and {problems.Count - 1} more)" : "";
        return $"{CliContext.OneLine(problems[0]).TrimEnd('.')}{more}";
    }

    private static HashSet<string> KnownOptionNames(CommandResult command)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (SymbolResult? at = command; at is CommandResult c; at = c.Parent)
        {
            foreach (var option in c.Command.Options)
            {
                names.Add(option.Name);
                names.UnionWith(option.Aliases);
            }
        }
        return names;
    }
}
