// basalt mkdir [-p] [-m MODE] IMAGE PATH...
// Creates directories inside the image, each in its own transaction, with permissions MODE (octal,
// default 755; there is no umask). -p creates the missing parents (755) and accepts a directory
// that exists already. Owner 0:0.
using System.CommandLine;
using Basalt.Diagnostics;
using Basalt.Fs;

namespace Basalt.Cli.FileCommands;

internal static class MkdirCommand
{
    private const uint DefaultMode = 0x1ED; // 0755

    public static Command Create(CliContext cli)
    {
        var parents = new Option<bool>("--parents", "-p") { Description = "create missing parents; an existing directory is no error" };
        var mode = ModeOption("permissions of the new directories in octal (default 755)");
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var paths = new Argument<string[]>("PATH") { Description = "absolute paths inside the image", Arity = ArgumentArity.OneOrMore };
        var command = new Command("mkdir", "create directories inside the image") { parents, mode, image, paths };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var operands = parse.GetValue(paths)!.Select(ImagePath.Parse).ToList();
            var permissions = parse.GetValue(mode) ?? DefaultMode;
            using var fs = FileImage.OpenWritable(cli, parse.GetValue(image)!);
            foreach (var path in operands)
            {
                if (parse.GetValue(parents))
                    MakeParents(fs.Files, path, permissions);
                else
                    Make(fs.Files, path, permissions);
            }
            return CliExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>-m MODE: permission bits in octal (0 to 7777).</summary>
    internal static Option<uint?> ModeOption(string description)
    {
        var option = new Option<uint?>("--mode", "-m") { Description = description, HelpName = "MODE" };
        option.CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (text.Length is > 0 and <= 5 && text.All(c => c is >= '0' and <= '7'))
            {
                var value = Convert.ToUInt32(text, 8);
                if (value <= FileModes.PermissionMask)
                    return value;
            }
            result.AddError($"--mode: '{text}' is not an octal mode (0 to 7777, e.g. 755)");
            return null;
        };
        return option;
    }

    private static void Make(Files files, ImagePath path, uint permissions)
    {
        var (parent, name) = FileText.Parent(files, path);
        FileErrors.At(path, () => files.Mkdir(parent.Ino, name, permissions));
    }

    private static void MakeParents(Files files, ImagePath path, uint permissions)
    {
        var at = files.GetAttr(FsPositions.RootIno);
        var walked = new ImagePath("/"u8.ToArray());
        var parts = path.Components();
        for (var i = 0; i < parts.Count; i++)
        {
            var name = parts[i];
            walked = walked.Child(name);
            var current = at;
            var here = walked;
            var next = FileErrors.At(here, () => files.TryLookup(current.Ino, name, out var found) ? found : (InodeAttr?)null);
            if (next is { } existing && existing.Type == FileType.Symlink)
                next = FileText.Resolve(files, here, follow: true);
            if (next is null)
            {
                var mode = i == parts.Count - 1 ? permissions : DefaultMode;
                next = FileErrors.At(here, () => files.Mkdir(current.Ino, name, mode));
            }
            if (!next.Value.IsDirectory)
                throw FileErrors.Of(here, i == parts.Count - 1 ? ErrorCode.Exists : ErrorCode.NotDirectory);
            at = next.Value;
        }
    }
}
