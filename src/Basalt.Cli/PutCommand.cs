// basalt put IMAGE LOCALPATH... DEST
// Copies local files and trees into the image, as cp -a does between two directories (the rules
// for DEST in docs/cli.md "put and get"; the copy itself in PutCopier). The image is mounted
// read-write, synced when the copy ends and unmounted cleanly, also after an error or Ctrl-C: what
// was copied before stays, the file being written is named as left partial. With --fsync each
// file is made durable once copied (its data, attributes and the names leading to it), so a crash
// keeps every file copied before it.
using System.CommandLine;
using Basalt.Cli.Local;
using Basalt.Diagnostics;
using Basalt.Fs;

namespace Basalt.Cli;

internal static class PutCommand
{
    public static Command Create(CliContext cli)
    {
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        // One argument: the parser fills a list argument greedily and would leave none for DEST.
        var paths = new Argument<string[]>("LOCALPATH... DEST")
        {
            Description = "local files or directories to copy (symlinks are copied, not followed), then DEST: the path in the image, an existing directory to copy into or the new name of a single source",
            Arity = ArgumentArity.OneOrMore,
        };
        var fsync = new Option<bool>("--fsync") { Description = "make each file durable once it is copied (slower; without it the image is synced at the end)" };
        var printSynced = new Option<bool>("--print-synced")
        {
            Description = "with --fsync: print 'synced PATH' on stdout as soon as each file is durable (one line per file, flushed)",
        };
        var command = new Command("put", "copy local files and trees into the image (like cp -a): data with holes, modes, times, xattrs, links")
        {
            image, paths, fsync, printSynced,
        };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            if (parse.GetValue(printSynced) && !parse.GetValue(fsync))
                CliContext.Usage("--print-synced needs --fsync");
            return Run(cli, CliParsing.ResolveImage(parse.GetValue(image)!), parse.GetValue(paths)!, parse.GetValue(fsync), parse.GetValue(printSynced));
        }));
        return command;
    }

    private static int Run(CliContext cli, string path, string[] paths, bool fsync, bool printSynced)
    {
        if (paths.Length < 2)
            CliContext.Usage("DEST is missing");
        var sourceArguments = paths[..^1];
        var destArgument = paths[^1];
        var sources = sourceArguments.Select(s => TreeCopy.PathArgument(s, "LOCALPATH")).ToList();
        var dest = TreeCopy.ImagePathArgument(destArgument, "DEST");
        CliParsing.RequireExistingImage(path);
        var copy = new TreeCopy(cli);
        var fs = BasaltFileSystem.Mount(path, cli.WritableMount);
        Exception? stopped = null;
        try
        {
            Action<byte[]>? synced = printSynced
                ? shown =>
                {
                    // One write per line, flushed at once: a process that kills this one sees whole lines.
                    cli.Out.Write($"synced {TreeCopy.Text(shown)}\n");
                    cli.Out.Flush();
                }
                : null;
            var copier = new PutCopier(fs, copy, path, fsync, synced);
            copy.Run(() => PutCopier.Measure(sources), () =>
            {
                foreach (var (source, parent, name, shown) in Targets(fs.Files, sources, dest))
                    copier.CopyTop(source, parent, name, shown);
            });
        }
        catch (Exception e) when (TreeCopy.IsCopyError(e))
        {
            stopped = e;
        }
        var unmount = Unmount(fs);
        copy.WriteSummary("put", stopped is null && unmount is null);
        if (stopped is not null)
            return copy.Stopped(stopped, unmount);
        if (unmount is not null)
        {
            cli.Err.WriteLine($"{cli.CommandName}: {unmount}");
            return CliExitCodes.Operational;
        }
        return CliExitCodes.Ok;
    }

    /// <summary>
    /// Where each source goes, by cp -a's rules: into DEST when it is a directory (under the
    /// source's last name, or merged into it for ".", ".." and "/"); several sources need DEST to
    /// be an existing directory; a single source onto a missing or non-directory DEST takes its name.
    /// </summary>
    private static IEnumerable<(byte[] Source, ulong Parent, byte[]? Name, byte[] Shown)> Targets(Files files, List<byte[]> sources, byte[] dest)
    {
        foreach (var range in dest.AsSpan().Split((byte)'/'))
        {
            var length = range.End.GetOffset(dest.Length) - range.Start.GetOffset(dest.Length);
            if (length > Names.MaxLength)
            {
                throw new BasaltException(ErrorCode.NameTooLong,
                    $"'{TreeCopy.Text(dest)}': a name of {length} bytes is too long for the image (at most {Names.MaxLength})");
            }
        }
        var found = files.TryResolvePath(dest, followLast: true, out var destAttr, out _);
        if (found && destAttr.IsDirectory)
        {
            foreach (var source in sources)
            {
                var name = TreeCopy.BaseName(source);
                yield return (source, destAttr.Ino, name, name is null ? dest : TreeCopy.Join(dest, name));
            }
            yield break;
        }
        if (sources.Count > 1)
        {
            throw found
                ? new BasaltException(ErrorCode.NotDirectory, $"target '{TreeCopy.Text(dest)}' is not a directory (several sources go into an existing directory)")
                : new BasaltException(ErrorCode.FileNotFound, $"target '{TreeCopy.Text(dest)}' does not exist (several sources go into an existing directory)");
        }
        var (parent, last) = files.ResolveParent(dest);
        yield return (sources[0], parent.Ino, last, dest);
    }

    /// <summary>Syncs and unmounts; null when the image was left cleanly, else how it was left.</summary>
    private static string? Unmount(BasaltFileSystem fs)
    {
        try
        {
            if (!fs.Emergency.IsSet)
                fs.Sync();
            fs.Close(sync: true);
            return fs.Emergency.IsSet
                ? "a write failed and the filesystem went emergency read-only: the image was not unmounted cleanly (the next mount replays its journal)"
                : null;
        }
        catch (BasaltException e)
        {
            fs.Close(sync: false);
            return $"the image could not be unmounted cleanly ({CliContext.OneLine(e.Message)}); the next mount replays its journal";
        }
    }
}
