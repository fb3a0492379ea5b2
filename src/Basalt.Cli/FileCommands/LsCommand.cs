// basalt ls [-l] [-R] [-a] [--json] IMAGE [PATH...]
// Lists directories inside the image (default "/"), names in byte order, printed with
// Names.ToText (`\xNN` for bytes that are not printable UTF-8). A non-directory operand prints
// itself; -l adds the mode string, link count, owner, size and mtime (ISO 8601 UTC) and a
// symlink's target; -R descends into subdirectories (symlinks are not followed); -a shows names
// starting with '.', and "." and "..". Without -l a symlink operand is followed, as ls(1) does.
// The image is mounted read-only.
using System.CommandLine;
using System.Globalization;
using Basalt.Fs;

namespace Basalt.Cli.FileCommands;

internal static class LsCommand
{
    private sealed record Options(bool Long, bool Recursive, bool All, bool Json);

    private sealed record Row(byte[] Name, InodeAttr? Attr, byte[]? Target);

    public static Command Create(CliContext cli)
    {
        var longFormat = new Option<bool>("--long", "-l") { Description = "mode, links, owner, size, mtime and symlink targets" };
        var recursive = new Option<bool>("--recursive", "-R") { Description = "list subdirectories too" };
        var all = new Option<bool>("--all", "-a") { Description = "show names starting with '.', and '.' and '..'" };
        var json = new Option<bool>("--json") { Description = "print one JSON document (every inode field; names as text and base64)" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var paths = new Argument<string[]>("PATH") { Description = "absolute paths inside the image (default /)", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("ls", "list directories inside the image") { longFormat, recursive, all, json, image, paths };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var operands = parse.GetValue(paths) is { Length: > 0 } given ? given.Select(ImagePath.Parse).ToList() : [ImagePath.Parse("/")];
            var options = new Options(parse.GetValue(longFormat), parse.GetValue(recursive), parse.GetValue(all), parse.GetValue(json));
            using var fs = FileImage.OpenReadOnly(parse.GetValue(image)!);
            return Run(cli, fs, operands, options);
        }));
        return command;
    }

    private static int Run(CliContext cli, BasaltFileSystem fs, List<ImagePath> operands, Options options)
    {
        var files = fs.Files;
        var listings = new List<LsListingJson>();
        var headers = operands.Count > 1 || options.Recursive;
        var first = true;
        foreach (var path in operands)
        {
            var attr = FileText.Resolve(files, path, follow: !options.Long);
            if (!attr.IsDirectory)
            {
                var name = path.Bytes;
                if (options.Json)
                    listings.Add(new LsListingJson(path.Text, false, [FileText.Json(files, attr, path.LastWritten(), path)]));
                else
                    WriteRows(cli, [Describe(files, attr, name)], options);
                first = false;
                continue;
            }
            var pending = new Stack<(ImagePath Path, ulong Ino)>();
            pending.Push((path, attr.Ino));
            while (pending.Count > 0)
            {
                var (dirPath, ino) = pending.Pop();
                var entries = FileText.Entries(files, ino, dirPath, cli.Cancellation);
                var shown = new List<DirEntry>();
                if (options.All)
                    shown.AddRange(files.ReadDir(ino, 0, 2));
                shown.AddRange(entries.Where(e => options.All || e.Name[0] != (byte)'.'));
                if (options.Json)
                {
                    var json = shown.Select(s => FileText.Json(files, Attr(files, dirPath, s), s.Name,
                        Names.IsDot(s.Name) ? dirPath : dirPath.Child(s.Name))).ToList();
                    listings.Add(new LsListingJson(dirPath.Text, true, json));
                }
                else
                {
                    if (headers)
                    {
                        if (!first)
                            cli.Line();
                        cli.Line($"{dirPath.Text}:");
                    }
                    var rows = shown.Select(s => options.Long ? Describe(files, Attr(files, dirPath, s), s.Name)
                        : new Row(s.Name, null, null)).ToList();
                    WriteRows(cli, rows, options);
                }
                first = false;
                if (options.Recursive)
                {
                    // Depth first in name order: push the subdirectories last name first.
                    foreach (var sub in shown.Where(s => s.Type == FileType.Directory && !Names.IsDot(s.Name)
                                 && !Names.IsDotDot(s.Name)).Reverse())
                    {
                        pending.Push((dirPath.Child(sub.Name), sub.Ino));
                    }
                }
            }
        }
        if (options.Json)
            JsonOutput.Write(cli.Out, new LsJson(fs.Device.Name, listings));
        return CliExitCodes.Ok;
    }

    /// <summary>The inode an entry names; a dangling entry (damage: run fsck) fails naming its path.</summary>
    private static InodeAttr Attr(Files files, ImagePath dir, DirEntry entry) =>
        FileErrors.At(dir.Child(entry.Name), () => files.GetAttr(entry.Ino));

    private static Row Describe(Files files, InodeAttr attr, byte[] name) =>
        new(name, attr, attr.Type == FileType.Symlink ? files.ReadLink(attr.Ino) : null);

    private static void WriteRows(CliContext cli, List<Row> rows, Options options)
    {
        if (!options.Long)
        {
            foreach (var row in rows)
                cli.Out.WriteLine(Names.ToText(row.Name));
            return;
        }
        static string N(ulong value) => value.ToString(CultureInfo.InvariantCulture);
        var nlink = rows.Select(r => N(r.Attr!.Value.Nlink).Length).DefaultIfEmpty(1).Max();
        var uid = rows.Select(r => N(r.Attr!.Value.Inode.Uid).Length).DefaultIfEmpty(1).Max();
        var gid = rows.Select(r => N(r.Attr!.Value.Inode.Gid).Length).DefaultIfEmpty(1).Max();
        var size = rows.Select(r => N(r.Attr!.Value.Size).Length).DefaultIfEmpty(1).Max();
        foreach (var row in rows)
        {
            var i = row.Attr!.Value.Inode;
            var line = $"{FileText.ModeString(i.Mode)} {N(i.Nlink).PadLeft(nlink)} {N(i.Uid).PadLeft(uid)} {N(i.Gid).PadLeft(gid)} " +
                       $"{N(i.Size).PadLeft(size)} {FileText.Seconds(i.MtimeNs)} {Names.ToText(row.Name)}";
            cli.Out.WriteLine(row.Target is null ? line : $"{line} -> {Names.ToText(row.Target)}");
        }
    }
}
