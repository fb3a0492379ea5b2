// basalt rm [-r] [-f] IMAGE PATH...
// Removes entries inside the image. A directory needs -r, which removes its contents depth first,
// one transaction per entry (a failure part way leaves what was not reached yet; run the command
// again). -f ignores paths that do not exist. "/" and paths ending in "." or ".." are refused.
// A symlink is removed itself, never what it points at.
using System.CommandLine;
using Basalt.Diagnostics;
using Basalt.Fs;

namespace Basalt.Cli.FileCommands;

internal static class RmCommand
{
    public static Command Create(CliContext cli)
    {
        var recursive = new Option<bool>("--recursive", "-r") { Description = "remove directories and their contents" };
        recursive.Aliases.Add("-R");
        var force = new Option<bool>("--force", "-f") { Description = "ignore paths that do not exist" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var paths = new Argument<string[]>("PATH") { Description = "absolute paths inside the image", Arity = ArgumentArity.OneOrMore };
        var command = new Command("rm", "remove files and directories inside the image") { recursive, force, image, paths };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var operands = parse.GetValue(paths)!.Select(ImagePath.Parse).ToList();
            foreach (var path in operands)
            {
                if (path.IsRoot)
                    throw new FileCommandException(ErrorCode.Busy, $"'{path.Text}': refusing to remove the root directory");
                if (path.LastWritten() is var last && (Names.IsDot(last) || Names.IsDotDot(last)))
                    throw new FileCommandException(ErrorCode.InvalidArgument, $"'{path.Text}': refusing to remove '.' or '..'");
            }
            using var fs = FileImage.OpenWritable(cli, parse.GetValue(image)!);
            foreach (var path in operands)
                Remove(cli, fs.Files, path, parse.GetValue(recursive), parse.GetValue(force));
            return CliExitCodes.Ok;
        }));
        return command;
    }

    private static void Remove(CliContext cli, Files files, ImagePath path, bool recursive, bool force)
    {
        InodeAttr? entry;
        try
        {
            entry = FileText.TryEntry(files, path);
        }
        catch (FileCommandException e) when (force && e.Code == ErrorCode.FileNotFound)
        {
            return;
        }
        if (entry is not { } attr)
        {
            if (force)
                return;
            throw FileErrors.Of(path, ErrorCode.FileNotFound);
        }
        var (parent, name) = FileText.Parent(files, path);
        if (!attr.IsDirectory)
        {
            FileErrors.At(path, () => files.Unlink(parent.Ino, name));
            return;
        }
        if (!recursive)
            throw FileErrors.Of(path, ErrorCode.IsDirectory, "use -r to remove a directory");
        RemoveTree(cli, files, attr.Ino, path);
        FileErrors.At(path, () => files.Rmdir(parent.Ino, name));
    }

    /// <summary>Removes everything below directory <paramref name="dir"/>, depth first, one entry per transaction.</summary>
    private static void RemoveTree(CliContext cli, Files files, ulong dir, ImagePath path)
    {
        foreach (var entry in FileText.Entries(files, dir, path, cli.Cancellation))
        {
            cli.Cancellation.ThrowIfCancellationRequested();
            var child = path.Child(entry.Name);
            if (entry.Type == FileType.Directory)
            {
                RemoveTree(cli, files, entry.Ino, child);
                FileErrors.At(child, () => files.Rmdir(dir, entry.Name));
            }
            else
            {
                FileErrors.At(child, () => files.Unlink(dir, entry.Name));
            }
        }
    }
}
