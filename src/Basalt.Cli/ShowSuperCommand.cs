// basalt show-super [--json] IMAGE
// Prints the superblock mount would use, which copy that is, and the status of every copy.
// The image is opened read-only (a shared lock: a writer holding it is reported as in use).
using System.CommandLine;
using System.Globalization;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.Cli;

internal static class ShowSuperCommand
{
    public static Command Create(CliContext cli)
    {
        var json = new Option<bool>("--json") { Description = "print one JSON document" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var command = new Command("show-super", "print the superblock and the status of every copy") { json, image };
        command.SetAction(parse => Program.Execute(cli, () =>
            Run(cli, CliParsing.ResolveImage(parse.GetValue(image)!), parse.GetValue(json))));
        return command;
    }

    private static int Run(CliContext cli, string path, bool json)
    {
        CliParsing.RequireExistingImage(path);
        using var device = FileBlockDevice.Open(path, readOnly: true);
        var read = SuperblockIo.Read(device);
        var sb = read.Superblock;
        if (json)
        {
            JsonOutput.Write(cli.Out, ToJson(device.Name, read));
            return CliExitCodes.Ok;
        }

        cli.Line($"{device.Name}: Basalt filesystem", "bold");
        cli.Out.Write(sb.ToText());
        cli.Line($"superblock used:        copy {read.UsedCopy} (seq {sb.Seq})");
        foreach (var copy in read.Copies)
            cli.Line($"  {copy.ToText()}", copy.Status == CopyStatus.Good ? "green" : "yellow");
        if (MountNote.For(read) is { } note)
            cli.Line($"note: {note}", "yellow");
        return CliExitCodes.Ok;
    }

    internal static SuperblockJson ToJson(string device, SuperblockReadResult read)
    {
        var sb = read.Superblock;
        return new SuperblockJson(
            Device: device,
            UsedCopy: read.UsedCopy,
            Note: MountNote.For(read),
            Copies: [.. read.Copies.Select(c => new SuperblockCopyJson(c.Index, c.Offset,
                c.Status.ToText().Replace(' ', '_'), c.Seq, c.Detail, c.Index == read.UsedCopy))],
            Uuid: SuperblockText.Uuid(sb.Uuid),
            Label: sb.Label,
            Version: sb.Version,
            VersionMin: sb.VersionMin,
            Seq: sb.Seq,
            WriteTime: SuperblockText.Time(sb.WriteTime),
            Flags: sb.Flags.ToString(),
            Clean: sb.IsClean,
            MetadataChecksum: sb.MetadataChecksumType.ToText(),
            DeviceSize: sb.DeviceSize,
            BlockSize: sb.BlockSize,
            NodeSize: sb.NodeSize,
            BucketSize: sb.BucketSize,
            NodeMagic: sb.NodeMagic.ToString("x16", CultureInfo.InvariantCulture),
            Members: [.. sb.Members.Select(m => new MemberJson(SuperblockText.Uuid(m.DeviceUuid), m.Nbuckets, m.BucketSize,
                m.FirstBucket, m.NodeArea.Start, m.NodeArea.Count, m.NodeAreaOffset, m.NodeAreaLength, m.State.ToString()))],
            Journal: [.. sb.JournalBuckets.Select(r => r.ToText())],
            Roots: [.. sb.Roots.Select(r => new RootJson(r.Btree.ToText(), r.Level, r.Ptr.ToText()))],
            ErrorCounters: [.. sb.ErrorCounters.Select(e => new ErrorCounterJson((int)e.Id,
                FsckCatalogue.TryGet((ushort)e.Id, out var info) ? info!.Name : $"unknown({(ushort)e.Id})",
                e.Count, SuperblockText.Time(e.LastTime)))]);
    }
}
