// basalt get IMAGE PATH... LOCALDEST
// Copies files and trees out of the image onto the local filesystem, as cp -a does (the rules for
// LOCALDEST in docs/cli.md "put and get"; the copy itself in GetCopier). The image is mounted
// read-only (an unclean image is replayed in memory; nothing reaches it, not even access times).
using System.CommandLine;
using Basalt.Cli.Local;
using Basalt.Diagnostics;
using Basalt.Fs;
using Errno = Basalt.Cli.Local.Errno;

namespace Basalt.Cli;

internal static class GetCommand
{
    public static Command Create(CliContext cli)
    {
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        // One argument: the parser fills a list argument greedily and would leave none for LOCALDEST.
        var paths = new Argument<string[]>("PATH... LOCALDEST")
        {
            Description = "paths in the image to copy (symlinks are copied, not followed), then LOCALDEST: an existing local directory to copy into or the new name of a single source",
            Arity = ArgumentArity.OneOrMore,
        };
        var command = new Command("get", "copy files and trees out of the image (like cp -a): data with holes, modes, times, xattrs, links")
        {
            image, paths,
        };
        command.SetAction(parse => Program.Execute(cli, () =>
            Run(cli, CliParsing.ResolveImage(parse.GetValue(image)!), parse.GetValue(paths)!)));
        return command;
    }

    private static int Run(CliContext cli, string path, string[] paths)
    {
        if (paths.Length < 2)
            CliContext.Usage("LOCALDEST is missing");
        var sourceArguments = paths[..^1];
        var destArgument = paths[^1];
        var sources = sourceArguments.Select(s => TreeCopy.ImagePathArgument(s, "PATH")).ToList();
        var dest = TreeCopy.PathArgument(destArgument, "LOCALDEST");
        CliParsing.RequireExistingImage(path);
        var copy = new TreeCopy(cli);
        Exception? stopped = null;
        using (var fs = BasaltFileSystem.Mount(path, new MountOptions { ReadOnly = true }))
        {
            if (fs.SuperblockNote is { } note)
                cli.Err.WriteLine($"{cli.CommandName}: note: {note}");
            if (!fs.Files.TryGetAttr(FsPositions.RootIno, out _))
            {
                throw new BasaltException(ErrorCode.FileNotFound,
                    $"{path}: the filesystem has no root directory yet: it was never mounted read-write (a writing command such as 'basalt put' creates it)");
            }
            try
            {
                var copier = new GetCopier(fs, copy);
                copy.Run(() => GetCopier.Measure(fs.Files, sources), () => CopyAll(copier, sources, dest));
            }
            catch (Exception e) when (TreeCopy.IsCopyError(e))
            {
                stopped = e;
            }
        }
        copy.WriteSummary("got", stopped is null);
        if (stopped is not null)
            return copy.Stopped(stopped, unmount: null);
        return copy.Unreadable > 0 ? CliExitCodes.Operational : CliExitCodes.Ok;
    }

    /// <summary>
    /// cp -a's rules for LOCALDEST: an existing directory (a symlink to one included) receives
    /// every source under its last name ("/" merges into it); several sources need one; a single
    /// source onto a missing or non-directory LOCALDEST takes that name in its parent.
    /// </summary>
    private static void CopyAll(GetCopier copier, List<byte[]> sources, byte[] dest)
    {
        using (var directory = TryOpenDirectory(dest))
        {
            if (directory is not null)
            {
                foreach (var source in sources)
                    copier.CopyTop(source, directory, TreeCopy.BaseName(source));
                return;
            }
        }
        if (sources.Count > 1)
        {
            throw new BasaltException(ErrorCode.NotDirectory,
                $"target '{TreeCopy.Text(dest)}' is not a directory (several sources go into an existing directory)");
        }
        var trimmed = dest.AsSpan().TrimEnd((byte)'/');
        if (trimmed.IsEmpty)
            trimmed = dest; // "/" is a directory, so it was opened above; keep the name for the error
        var cut = trimmed.LastIndexOf((byte)'/');
        var name = trimmed[(cut + 1)..].ToArray();
        if (cut < 0)
        {
            copier.CopyTop(sources[0], LocalFd.CurrentDirectory, name);
            return;
        }
        using var parent = LocalFs.OpenDirectory(LocalFd.CurrentDirectory, cut == 0 ? "/"u8 : trimmed[..cut], followSymlink: true);
        copier.CopyTop(sources[0], parent, name);
    }

    /// <summary>LOCALDEST as a directory (following a symlink), or null when it is missing or not a directory.</summary>
    private static LocalFd? TryOpenDirectory(byte[] dest)
    {
        try
        {
            return LocalFs.OpenDirectory(LocalFd.CurrentDirectory, dest, followSymlink: true);
        }
        catch (LocalFsException e) when (e.Errno is Errno.ENOENT or Errno.ENOTDIR)
        {
            return null;
        }
    }
}
