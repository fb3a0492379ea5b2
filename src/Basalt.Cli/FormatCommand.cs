// basalt format [--size SIZE] [--block-size N] [--bucket-size N] [--btree-node-size N]
//               [--label L] [--no-discard] [--preallocate] [--data-checksum crc32c|crc64|xxhash64] [--force] IMAGE
// Creates the image file when it is missing (then --size is required); an existing file is
// resized to --size when given. A device that already holds a filesystem signature is refused
// unless --force, and the message names what was found.
using System.CommandLine;
using System.Globalization;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.Cli;

internal static class FormatCommand
{
    private static readonly string[] s_dataChecksums = ["crc32c", "crc64", "xxhash64"];

    public static Command Create(CliContext cli)
    {
        var size = SizeOption("--size", "-s", "image size when creating or resizing the file (K/M/G/T: powers of 1024)");
        var blockSize = SizeOption("--block-size", null, "block size (512 B to 64 KiB; default 4K)");
        var bucketSize = SizeOption("--bucket-size", null, "bucket size (default chosen from the device size)");
        var nodeSize = SizeOption("--btree-node-size", null, "btree node size (default min(256K, bucket size))");
        var label = new Option<string>("--label", "-L") { Description = "filesystem label (at most 32 bytes of UTF-8)" };
        var noDiscard = new Option<bool>("--no-discard") { Description = "do not discard freed buckets (punch hole / BLKDISCARD) before reuse" };
        var preallocate = new Option<bool>("--preallocate")
        {
            Description = "write zeroes over the whole image file instead of leaving it sparse (faster small fsyncs; implies --no-discard)",
        };
        var dataChecksum = CliOptions.Choice("--data-checksum", null, "checksum of data extents (default crc32c)", s_dataChecksums, "crc32c");
        var force = new Option<bool>("--force", "-f") { Description = "overwrite an existing filesystem signature" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };

        var command = new Command("format", "create a new Basalt filesystem on IMAGE")
        {
            size, blockSize, bucketSize, nodeSize, label, noDiscard, preallocate, dataChecksum, force, image,
        };
        command.SetAction(parse => Program.Execute(cli, () => Run(cli,
            CliParsing.ResolveImage(parse.GetValue(image)!),
            parse.GetValue(size),
            new FormatOptions
            {
                BlockSize = ToInt(parse.GetValue(blockSize), "--block-size"),
                BucketSize = ToInt(parse.GetValue(bucketSize), "--bucket-size"),
                NodeSize = ToInt(parse.GetValue(nodeSize), "--btree-node-size"),
                Label = parse.GetValue(label) ?? "",
                Discard = !parse.GetValue(noDiscard),
                Preallocate = parse.GetValue(preallocate),
                DataChecksumType = Checksums.TryParse(parse.GetValue(dataChecksum), out var csum) ? csum : ChecksumType.Crc32C,
            },
            parse.GetValue(force))));
        return command;
    }

    /// <summary>An option taking a size with a K/M/G/T suffix; a bad value is a parse (usage) error.</summary>
    internal static Option<long?> SizeOption(string name, string? alias, string description)
    {
        var option = alias is null ? new Option<long?>(name) : new Option<long?>(name, alias);
        option.Description = description;
        option.CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (!CliParsing.TryParseSize(text, out var bytes, out var problem))
            {
                result.AddError($"{name} '{text}': {problem}");
                return null;
            }
            if (bytes <= 0)
            {
                result.AddError($"{name} '{text}': must be greater than 0");
                return null;
            }
            return bytes;
        };
        return option;
    }

    private static int? ToInt(long? bytes, string name)
    {
        if (bytes is null)
            return null;
        if (bytes > int.MaxValue)
            CliContext.Usage($"{name} {bytes} is too large");
        return (int)bytes.Value;
    }

    private static int Run(CliContext cli, string path, long? size, FormatOptions options, bool force)
    {
        if (Directory.Exists(path))
            throw new BasaltException(ErrorCode.FileNotFound, $"{path}: is a directory, not an image file or block device");
        if (size is { } s && s % FormatLimits.SectorSize != 0)
            CliContext.Usage($"--size {s} is not a multiple of {FormatLimits.SectorSize} bytes");

        // Refuse a geometry that cannot work before creating or resizing anything.
        if (size is { } requested)
            SuperblockGeometry.Compute(path, requested, options);

        IBlockDevice device;
        var created = false;
        if (!File.Exists(path))
        {
            if (size is null)
                CliContext.Usage($"{path} does not exist; give --size to create it");
            device = FileBlockDevice.Create(path, size.Value);
            created = true;
        }
        else
        {
            // Probe under a read-only (shared) lock first: a filesystem in use is refused here too.
            bool isBlockDevice;
            using (var probe = FileBlockDevice.Open(path, readOnly: true))
            {
                isBlockDevice = probe.IsBlockDevice;
                var found = SignatureProbe.Detect(probe);
                if (found is not null && !force)
                {
                    throw new BasaltException(ErrorCode.ExistingFilesystem,
                        $"{path}: holds {found}; refusing to format it (use --force to overwrite)");
                }
            }
            device = size is { } newSize && !isBlockDevice
                ? FileBlockDevice.Create(path, newSize, overwrite: true)
                : FileBlockDevice.Open(path, readOnly: false);
        }

        try
        {
            using var fs = BasaltFileSystem.Format(device, options);
            var sb = fs.Superblock;
            cli.Line($"formatted {path}: {SuperblockText.Size(sb.DeviceSize)}, uuid {SuperblockText.Uuid(sb.Uuid)}" +
                     (sb.Label.Length > 0 ? $", label \"{sb.Label}\"" : ""));
            cli.Line(string.Create(CultureInfo.InvariantCulture,
                $"block size {sb.BlockSize}, btree node size {sb.NodeSize}, bucket size {sb.BucketSize}, " +
                $"{sb.Member.Nbuckets} buckets, node area {SuperblockText.Size(sb.NodeAreaLength)} at byte {sb.NodeAreaOffset}, " +
                $"superblock copies at bytes {string.Join(", ", sb.CopyOffsets)}"));
            cli.Line($"data checksum {sb.DataChecksumType.ToText()}, discard {((sb.Member.Flags & MemberFlags.Discard) != 0 ? "on" : "off")}");
        }
        catch when (created)
        {
            // Unlinking an open file is fine on Linux; finally closes it.
            File.Delete(path);
            throw;
        }
        finally
        {
            device.Dispose();
        }
        return CliExitCodes.Ok;
    }
}
