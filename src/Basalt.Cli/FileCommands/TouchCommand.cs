// basalt touch [-c] IMAGE PATH...
// Sets the access and modification times of files inside the image to now, creating an empty
// regular file (mode 644, owner 0:0) where the path names nothing, unless -c.
using System.CommandLine;
using Basalt.Fs;

namespace Basalt.Cli.FileCommands;

internal static class TouchCommand
{
    public static Command Create(CliContext cli)
    {
        var noCreate = new Option<bool>("--no-create", "-c") { Description = "do not create missing files" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var paths = new Argument<string[]>("PATH") { Description = "absolute paths inside the image", Arity = ArgumentArity.OneOrMore };
        var command = new Command("touch", "set times to now inside the image, creating empty files") { noCreate, image, paths };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var operands = parse.GetValue(paths)!.Select(ImagePath.Parse).ToList();
            using var fs = FileImage.OpenWritable(cli, parse.GetValue(image)!);
            var files = fs.Files;
            foreach (var path in operands)
            {
                var now = new SetAttrRequest(AtimeNs: SetAttrRequest.Now, MtimeNs: SetAttrRequest.Now);
                if (path.IsRoot || FileText.TryEntry(files, path) is not null)
                {
                    var attr = FileText.Resolve(files, path, follow: true);
                    FileErrors.At(path, () => files.SetAttr(attr.Ino, now));
                }
                else if (!parse.GetValue(noCreate))
                {
                    var (parent, name) = FileText.Parent(files, path);
                    FileErrors.At(path, () => files.Create(parent.Ino, name, 0x1A4));
                }
            }
            return CliExitCodes.Ok;
        }));
        return command;
    }
}
