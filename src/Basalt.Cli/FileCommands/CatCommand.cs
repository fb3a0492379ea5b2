// basalt cat IMAGE PATH...
// Writes the bytes of files inside the image to stdout, raw, in chunks of 1 MiB (holes read as
// zeros; a symlink is followed). A directory is refused before anything of it is written; data
// that cannot be read (a lost device range, a checksum mismatch) stops the command with one line
// naming the path and the offset of the chunk, exit 8. The image is mounted read-only.
using System.CommandLine;
using Basalt.Diagnostics;

namespace Basalt.Cli.FileCommands;

internal static class CatCommand
{
    private const int ChunkBytes = 1 << 20;

    public static Command Create(CliContext cli)
    {
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var paths = new Argument<string[]>("PATH") { Description = "absolute paths of files inside the image", Arity = ArgumentArity.OneOrMore };
        var command = new Command("cat", "write the bytes of files inside the image to stdout") { image, paths };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var operands = parse.GetValue(paths)!.Select(ImagePath.Parse).ToList();
            using var fs = FileImage.OpenReadOnly(parse.GetValue(image)!);
            var output = cli.OpenRawOut();
            try
            {
                var buffer = new byte[ChunkBytes];
                foreach (var path in operands)
                    Copy(cli, fs, path, buffer, output);
            }
            finally
            {
                output.Flush();
            }
            return CliExitCodes.Ok;
        }));
        return command;
    }

    private static void Copy(CliContext cli, Basalt.Fs.BasaltFileSystem fs, ImagePath path, byte[] buffer, Stream output)
    {
        var attr = FileText.Resolve(fs.Files, path, follow: true);
        if (attr.IsDirectory)
            throw FileErrors.Of(path, ErrorCode.IsDirectory);
        for (long offset = 0; offset < (long)attr.Size;)
        {
            cli.Cancellation.ThrowIfCancellationRequested();
            int n;
            try
            {
                n = fs.Files.Read(attr.Ino, offset, buffer);
            }
            catch (BasaltException e)
            {
                throw FileErrors.Wrap($"'{path.Text}' at offset {offset}", e);
            }
            if (n == 0)
                break;
            output.Write(buffer, 0, n);
            offset += n;
        }
    }
}
