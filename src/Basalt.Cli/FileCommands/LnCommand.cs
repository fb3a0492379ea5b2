// basalt ln [-s] IMAGE TARGET LINKNAME
// Makes a hard link LINKNAME to the entry TARGET names (a symlink itself, not what it points at;
// never a directory: EPERM), or with -s a symlink LINKNAME whose target is TARGET as given
// (relative or absolute, not checked). A LINKNAME that is an existing directory gets the link
// inside it, under TARGET's last name.
using System.CommandLine;
using Basalt.Fs;

namespace Basalt.Cli.FileCommands;

internal static class LnCommand
{
    public static Command Create(CliContext cli)
    {
        var symbolic = new Option<bool>("--symbolic", "-s") { Description = "make a symlink holding TARGET" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var target = new Argument<string>("TARGET") { Description = "what the link points at (a path inside the image for a hard link)" };
        var linkName = new Argument<string>("LINKNAME") { Description = "absolute path of the new link" };
        var command = new Command("ln", "make a hard link or a symlink inside the image") { symbolic, image, target, linkName };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var targetText = parse.GetValue(target)!;
            var symlink = parse.GetValue(symbolic);
            var targetBytes = Names.FromText(targetText);
            var source = symlink ? new ImagePath(targetBytes) : ImagePath.Parse(targetText);
            var link = ImagePath.Parse(parse.GetValue(linkName)!);
            using var fs = FileImage.OpenWritable(cli, parse.GetValue(image)!);
            var files = fs.Files;
            if (FileText.TryEntry(files, link) is not null && FileText.Resolve(files, link, follow: true).IsDirectory
                && source.LastWritten() is { Length: > 0 } last && !Names.IsDotDot(last))
            {
                link = link.Child(last);
            }
            var (parent, name) = FileText.Parent(files, link);
            if (symlink)
            {
                FileErrors.At(link, () => files.Symlink(parent.Ino, name, targetBytes));
                return CliExitCodes.Ok;
            }
            var attr = FileText.Resolve(files, source, follow: false);
            FileErrors.Between(source, link, () => files.Link(attr.Ino, parent.Ino, name),
                code => code == Basalt.Diagnostics.ErrorCode.NotPermitted ? "no hard links to directories" : null);
            return CliExitCodes.Ok;
        }));
        return command;
    }
}
