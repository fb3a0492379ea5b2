// basalt stat [-L] [--json] IMAGE PATH...
// Every field of each inode: type, mode in octal and as a string, links, owner, size, blocks
// (512-byte sectors its extents hold), the four times in nanoseconds and ISO 8601 UTC, inode
// number and generation, rdev as major:minor, the xattr names and a symlink's target. A symlink
// is described itself unless -L follows it. The image is mounted read-only.
using System.CommandLine;

namespace Basalt.Cli.FileCommands;

internal static class StatCommand
{
    public static Command Create(CliContext cli)
    {
        var dereference = new Option<bool>("--dereference", "-L") { Description = "follow a symlink at the end of the path" };
        var json = new Option<bool>("--json") { Description = "print one JSON document" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var paths = new Argument<string[]>("PATH") { Description = "absolute paths inside the image", Arity = ArgumentArity.OneOrMore };
        var command = new Command("stat", "show every field of inodes inside the image") { dereference, json, image, paths };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var operands = parse.GetValue(paths)!.Select(ImagePath.Parse).ToList();
            using var fs = FileImage.OpenReadOnly(parse.GetValue(image)!);
            var follow = parse.GetValue(dereference);
            var records = operands.Select(p => FileText.Json(fs.Files, FileText.Resolve(fs.Files, p, follow), p.LastWritten(), p)).ToList();
            if (parse.GetValue(json))
            {
                JsonOutput.Write(cli.Out, new StatJson(fs.Device.Name, records));
                return CliExitCodes.Ok;
            }
            for (var i = 0; i < records.Count; i++)
            {
                if (i > 0)
                    cli.Line();
                WriteText(cli, records[i]);
            }
            return CliExitCodes.Ok;
        }));
        return command;
    }

    private static void WriteText(CliContext cli, FileJson f)
    {
        cli.Line($"path: {f.Path}");
        cli.Line($"type: {f.Type}");
        cli.Line($"mode: {f.Mode} ({f.ModeText})");
        cli.Line($"ino: {f.Ino}  generation: {f.Generation}");
        cli.Line($"links: {f.Nlink}  uid: {f.Uid}  gid: {f.Gid}");
        cli.Line($"size: {f.Size}  blocks: {f.Blocks}");
        cli.Line($"rdev: {f.Rdev}");
        cli.Line($"atime: {f.AtimeNs} ({f.Atime})");
        cli.Line($"mtime: {f.MtimeNs} ({f.Mtime})");
        cli.Line($"ctime: {f.CtimeNs} ({f.Ctime})");
        cli.Line($"btime: {f.BtimeNs} ({f.Btime})");
        cli.Line($"xattrs: {(f.Xattrs is { Count: > 0 } names ? string.Join(", ", names) : "none")}");
        if (f.SymlinkTarget is not null)
            cli.Line($"target: {f.SymlinkTarget}");
    }
}
