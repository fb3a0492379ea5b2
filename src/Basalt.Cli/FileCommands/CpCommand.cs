// basalt cp [-r] [-a|--archive] [-p|--preserve] [--reflink[=never|auto|always]] IMAGE SRC... DEST
// Copies inside the image, as cp(1): when DEST is an existing directory each SRC is copied into
// it under its last name; otherwise there must be one SRC, copied to DEST (an existing regular
// file is overwritten, an existing directory merged into with -r).
//
// A regular file's data is shared, not copied (Files.CloneFile: the copy's extents are reflink
// pointers to the source's data, and nothing is allocated for it) unless --reflink=never; as in
// GNU cp, a bare --reflink means always and auto is the default. Inside one filesystem a reflink
// always works, so auto and always behave the same. With --reflink=never the bytes are copied and
// holes stay holes: the source is read in chunks of 1 MiB and each run of whole blocks that are all zero is
// skipped (a hole reads as zeros; zeros written as data would read the same, so the copy is
// equal either way), then the size is set, so a trailing hole stays too. A copied file gets the
// source's permission bits (0777 of them; there is no umask); -p keeps all of the mode, the
// owner, the access and modification times and the user.* xattrs; -a is -r and -p without
// following symlinks. With -r or -a symlinks are copied as symlinks and special files as special
// files; without, a symlink operand is followed. As in GNU cp, -a keeps hard links: names of one
// inode among the copied entries (of every SRC) become names of one copy; with -r or -p alone
// each becomes a separate file. Every create, every clone of up to a few MiB of extents and every
// chunk write is its own transaction.
using System.CommandLine;
using Basalt.Diagnostics;
using Basalt.Fs;

namespace Basalt.Cli.FileCommands;

internal static class CpCommand
{
    private const int ChunkBytes = 1 << 20;

    public static Command Create(CliContext cli)
    {
        var recursive = new Option<bool>("--recursive", "-r") { Description = "copy directories and their contents (symlinks as symlinks)" };
        recursive.Aliases.Add("-R");
        var archive = new Option<bool>("--archive", "-a") { Description = "-r and -p, symlinks never followed" };
        var preserve = new Option<bool>("--preserve", "-p") { Description = "keep mode, owner, access and modification times, user.* xattrs" };
        var reflink = CliOptions.Choice("--reflink", null, "share the data instead of copying it (default auto; a bare --reflink is always)",
            ["never", "auto", "always"], "auto");
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var paths = new Argument<string[]>("PATH") { Description = "SRC... DEST: absolute paths inside the image", Arity = ArgumentArity.OneOrMore };
        var command = new Command("cp", "copy files and directories inside the image") { recursive, archive, preserve, reflink, image, paths };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var operands = parse.GetValue(paths)!.Select(ImagePath.Parse).ToList();
            if (operands.Count < 2)
                CliContext.Usage("DEST is missing");
            var all = parse.GetValue(archive);
            using var fs = FileImage.OpenWritable(cli, parse.GetValue(image)!);
            var copier = new Copier(cli, fs.Files, (int)fs.Superblock.BlockSize, recursive: all || parse.GetValue(recursive),
                preserve: all || parse.GetValue(preserve), noDereference: all || parse.GetValue(recursive), share: parse.GetValue(reflink) != "never",
                links: all);
            var dest = operands[^1];
            var sources = operands[..^1];
            var into = FileText.TryEntry(fs.Files, dest) is not null && FileText.Resolve(fs.Files, dest, follow: true).IsDirectory;
            if (!into && sources.Count > 1)
                throw FileErrors.Of(dest, ErrorCode.NotDirectory, $"copying {sources.Count} paths needs an existing directory");
            foreach (var source in sources)
                copier.CopyOperand(source, into ? dest.Child(source.IsRoot ? "root"u8 : source.LastWritten()) : dest);
            return CliExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>A bare <c>--reflink</c> (no value) of cp means <c>--reflink=always</c>, as in GNU cp; the parser needs the value spelled out.</summary>
    public static string[] ExpandBareReflink(string[] args)
    {
        var command = Array.FindIndex(args, a => !a.StartsWith('-'));
        if (command < 0 || args[command] != "cp")
            return args;
        var end = Array.IndexOf(args, "--");
        return args.Select((a, i) => a == "--reflink" && i > command && (end < 0 || i < end) ? "--reflink=always" : a).ToArray();
    }

    private sealed class Copier(CliContext cli, Files files, int blockSize, bool recursive, bool preserve, bool noDereference, bool share, bool links)
    {
        private readonly byte[] _buffer = new byte[ChunkBytes];

        // -a: each source inode with several names that was copied, and its copy.
        private readonly Dictionary<ulong, ulong> _copiesOfLinked = [];

        public void CopyOperand(ImagePath source, ImagePath target)
        {
            var attr = FileText.Resolve(files, source, follow: !noDereference);
            if (attr.IsDirectory)
            {
                if (!recursive)
                    throw FileErrors.Of(source, ErrorCode.IsDirectory, "use -r to copy a directory");
                var (parent, _) = FileText.Parent(files, target);
                RefuseIntoItself(attr.Ino, parent.Ino, source, target);
            }
            CopyEntry(attr, source, target);
        }

        /// <summary>EINVAL when the target's directory is the source directory or below it: the copy would never end.</summary>
        private void RefuseIntoItself(ulong dir, ulong targetParent, ImagePath source, ImagePath target)
        {
            var at = targetParent;
            for (var depth = 0; depth < 65536; depth++)
            {
                if (at == dir)
                    throw new FileCommandException(ErrorCode.InvalidArgument,
                        $"'{source.Text}' -> '{target.Text}': {FileErrors.Describe(ErrorCode.InvalidArgument)} (cannot copy a directory into itself)");
                if (at == FsPositions.RootIno)
                    return;
                var next = files.GetAttr(at).Inode.Dir;
                if (next == 0 || next == at)
                    return;
                at = next;
            }
        }

        private void CopyEntry(InodeAttr attr, ImagePath source, ImagePath target)
        {
            cli.Cancellation.ThrowIfCancellationRequested();
            var (parent, name) = FileText.Parent(files, target);
            var existing = FileErrors.At(target, () => files.TryLookup(parent.Ino, name, out var found) ? found : (InodeAttr?)null);
            if (existing is { } same && same.Ino == attr.Ino)
                throw new FileCommandException(ErrorCode.InvalidArgument,
                    $"'{source.Text}' -> '{target.Text}': {FileErrors.Describe(ErrorCode.InvalidArgument)} (the same file)");
            var permissions = attr.Mode & (preserve ? FileModes.PermissionMask : 0x1FF);
            var linked = links && !attr.IsDirectory && attr.Nlink > 1;
            if (linked && _copiesOfLinked.TryGetValue(attr.Ino, out var first))
            {
                // Another name of an inode already copied: a name of that copy (GNU cp -a).
                if (existing?.Ino == first)
                    return;
                RemoveNonDirectory(existing, parent, name, target);
                FileErrors.At(target, () => files.Link(first, parent.Ino, name));
                return;
            }
            InodeAttr copy;
            switch (attr.Type)
            {
                case FileType.Directory:
                    if (existing is { } dir)
                    {
                        if (!dir.IsDirectory)
                            throw FileErrors.Of(target, ErrorCode.Exists, "cannot overwrite a non-directory with a directory");
                        copy = dir;
                    }
                    else
                    {
                        copy = FileErrors.At(target, () => files.Mkdir(parent.Ino, name, permissions));
                    }
                    foreach (var entry in FileText.Entries(files, attr.Ino, source, cli.Cancellation))
                    {
                        var child = FileErrors.At(source.Child(entry.Name), () => files.GetAttr(entry.Ino));
                        CopyEntry(child, source.Child(entry.Name), target.Child(entry.Name));
                    }
                    break;
                case FileType.Regular:
                    if (existing is { Type: FileType.Regular } file)
                    {
                        FileErrors.At(target, () => files.Truncate(file.Ino, 0));
                        copy = file;
                    }
                    else
                    {
                        RemoveNonDirectory(existing, parent, name, target);
                        copy = FileErrors.At(target, () => files.Create(parent.Ino, name, permissions));
                    }
                    if (share)
                        FileErrors.At(target, () => files.CloneFile(attr.Ino, copy.Ino));
                    else
                        CopyData(attr, source, copy.Ino, target);
                    break;
                case FileType.Symlink:
                    RemoveNonDirectory(existing, parent, name, target);
                    var link = FileErrors.At(source, () => files.ReadLink(attr.Ino));
                    copy = FileErrors.At(target, () => files.Symlink(parent.Ino, name, link));
                    break;
                default:
                    RemoveNonDirectory(existing, parent, name, target);
                    copy = FileErrors.At(target, () => files.Mknod(parent.Ino, name, FileModes.ModeOf(attr.Type, permissions), attr.Inode.Rdev));
                    break;
            }
            if (preserve)
                Preserve(attr, copy.Ino, target);
            if (linked)
                _copiesOfLinked[attr.Ino] = copy.Ino;
        }

        private void RemoveNonDirectory(InodeAttr? existing, InodeAttr parent, byte[] name, ImagePath target)
        {
            if (existing is not { } found)
                return;
            if (found.IsDirectory)
                throw FileErrors.Of(target, ErrorCode.IsDirectory);
            FileErrors.At(target, () => files.Unlink(parent.Ino, name));
        }

        /// <summary>Copies the bytes in chunks, skipping runs of whole zero blocks, then sets the size (a trailing hole).</summary>
        private void CopyData(InodeAttr attr, ImagePath source, ulong copy, ImagePath target)
        {
            var size = (long)attr.Size;
            for (long offset = 0; offset < size;)
            {
                cli.Cancellation.ThrowIfCancellationRequested();
                int n;
                try
                {
                    n = files.Read(attr.Ino, offset, _buffer);
                }
                catch (BasaltException e)
                {
                    throw FileErrors.Wrap($"'{source.Text}' at offset {offset}", e);
                }
                if (n == 0)
                    break;
                var i = 0;
                while (i < n)
                {
                    var start = i;
                    while (i < n && !IsZeroBlock(i, n))
                        i = Math.Min(i + blockSize, n);
                    if (i > start)
                    {
                        var at = offset + start;
                        var data = _buffer.AsMemory(start, i - start);
                        FileErrors.At(target, () => files.Write(copy, at, data.Span));
                    }
                    while (i < n && IsZeroBlock(i, n))
                        i = Math.Min(i + blockSize, n);
                }
                offset += n;
            }
            if (files.GetAttr(copy).Size != attr.Size)
                FileErrors.At(target, () => files.Truncate(copy, size));
        }

        private bool IsZeroBlock(int start, int end) =>
            _buffer.AsSpan(start, Math.Min(blockSize, end - start)).IndexOfAnyExcept((byte)0) < 0;

        /// <summary>-p: the whole mode, owner, atime and mtime, and the user.* xattrs.</summary>
        private void Preserve(InodeAttr attr, ulong copy, ImagePath target)
        {
            foreach (var xattr in files.ListXattrs(attr.Ino))
            {
                if (!xattr.AsSpan().StartsWith("user."u8))
                    continue;
                var value = files.GetXattr(attr.Ino, xattr);
                FileErrors.At(target, () => files.SetXattr(copy, xattr, value));
            }
            var i = attr.Inode;
            FileErrors.At(target, () => files.SetAttr(copy, new SetAttrRequest(Mode: attr.Type == FileType.Symlink ? null : i.Mode & FileModes.PermissionMask,
                Uid: i.Uid, Gid: i.Gid, AtimeNs: i.AtimeNs, MtimeNs: i.MtimeNs)));
        }
    }
}
