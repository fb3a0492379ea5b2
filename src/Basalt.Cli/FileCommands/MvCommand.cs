// basalt mv [-n|--no-clobber] [--exchange] [-T] IMAGE SRC... DEST
// Renames inside the image, as mv(1): when DEST is an existing directory each SRC moves into it
// under its last name; otherwise there must be one SRC, renamed to DEST (replacing a file, or an
// empty directory by a directory). Each rename is one transaction. --no-clobber refuses an
// existing target (RENAME_NOREPLACE: EEXIST); --exchange swaps exactly two existing paths
// atomically (RENAME_EXCHANGE); -T never moves into DEST (a directory DEST is replaced when empty:
// ENOTEMPTY otherwise). A directory cannot move into its own subtree (EINVAL).
using System.CommandLine;
using Basalt.Diagnostics;
using Basalt.Fs;

namespace Basalt.Cli.FileCommands;

internal static class MvCommand
{
    public static Command Create(CliContext cli)
    {
        var noClobber = new Option<bool>("--no-clobber", "-n") { Description = "do not replace an existing target (fail with EEXIST)" };
        var exchange = new Option<bool>("--exchange") { Description = "swap two existing paths atomically" };
        var noTargetDirectory = new Option<bool>("--no-target-directory", "-T") { Description = "treat DEST as a name to replace, never as a directory to move into" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var paths = new Argument<string[]>("PATH") { Description = "SRC... DEST: absolute paths inside the image", Arity = ArgumentArity.OneOrMore };
        var command = new Command("mv", "move or rename inside the image") { noClobber, exchange, noTargetDirectory, image, paths };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var operands = parse.GetValue(paths)!.Select(ImagePath.Parse).ToList();
            if (operands.Count < 2)
                CliContext.Usage("DEST is missing");
            var swap = parse.GetValue(exchange);
            if (swap && parse.GetValue(noClobber))
                CliContext.Usage("--exchange and --no-clobber exclude each other");
            if (swap && operands.Count != 2)
                CliContext.Usage($"--exchange takes exactly two paths, not {operands.Count}");
            var flags = swap ? RenameFlags.Exchange : parse.GetValue(noClobber) ? RenameFlags.NoReplace : RenameFlags.None;
            using var fs = FileImage.OpenWritable(cli, parse.GetValue(image)!);
            var files = fs.Files;
            var dest = operands[^1];
            var sources = operands[..^1];
            var into = !swap && !parse.GetValue(noTargetDirectory) && FileText.TryEntry(files, dest) is not null && FileText.Resolve(files, dest, follow: true).IsDirectory;
            if (!into && sources.Count > 1)
                throw FileErrors.Of(dest, ErrorCode.NotDirectory, $"moving {sources.Count} paths needs an existing directory");
            foreach (var source in sources)
            {
                var target = into ? dest.Child(source.LastWritten()) : dest;
                Move(files, source, target, flags);
            }
            return CliExitCodes.Ok;
        }));
        return command;
    }

    private static void Move(Files files, ImagePath source, ImagePath target, RenameFlags flags)
    {
        if (source.IsRoot)
            throw FileErrors.Of(source, ErrorCode.Busy, "the root directory cannot move");
        var (from, fromName) = FileText.Parent(files, source);
        if (FileText.TryEntry(files, source) is null)
            throw FileErrors.Of(source, ErrorCode.FileNotFound);
        var (to, toName) = FileText.Parent(files, target);
        FileErrors.Between(source, target, () => files.Rename(from.Ino, fromName, to.Ino, toName, flags),
            code => code == ErrorCode.InvalidArgument ? "a directory cannot move into its own subtree" : null);
    }
}
