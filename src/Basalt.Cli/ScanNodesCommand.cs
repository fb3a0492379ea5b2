// basalt debug scan-nodes IMAGE [--btree B] [--json]
// Runs the node scan check_topology uses when it meets an unreadable root or interior node, and
// lists every node it found: where it is, what it says it is, how new it is, and what the scan
// made of it (chosen, clipped, superseded, rejected and why). The image is read raw and
// read-only; the journal blacklist comes from the superblock and the journal entries on disk,
// the same union a mount uses.
using System.CommandLine;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.Cli;

internal static class ScanNodesCommand
{
    public static Command Create(CliContext cli)
    {
        var btree = new Option<string>("--btree", "-b") { Description = "only nodes of this btree" };
        var json = new Option<bool>("--json") { Description = "print one JSON document" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var command = new Command("scan-nodes", "scan the node space for btree nodes and list each one with what topology repair would make of it")
        {
            btree, json, image,
        };
        command.SetAction(parse => Program.Execute(cli, () =>
        {
            var only = parse.GetValue(btree) is { } b ? CliParsing.ParseBtree(b) : (BtreeId?)null;
            return Run(cli, CliParsing.ResolveImage(parse.GetValue(image)!), only, parse.GetValue(json));
        }));
        return command;
    }

    private static int Run(CliContext cli, string path, BtreeId? only, bool json)
    {
        CliParsing.RequireExistingImage(path);
        using var device = FileBlockDevice.Open(path, readOnly: true);
        var sb = SuperblockIo.Read(device).Superblock;
        var blacklist = JournalSurvey.Read(device, sb).Blacklist;
        var geometry = BasaltFileSystem.GeometryOf(sb);
        var scan = NodeScan.Run(device, geometry, seq => blacklist.Any(r => r.Contains(seq)), cli.Cancellation);
        var nodes = scan.Nodes.Where(n => only is null || n.Btree == only).ToList();

        if (json)
        {
            JsonOutput.Write(cli.Out, new ScanNodesJson(device.Name, geometry.NodeSize, scan.BytesScanned, [.. nodes.Select(ToJson)]));
            return CliExitCodes.Ok;
        }
        cli.Line($"{device.Name}: {scan.BytesScanned} bytes of node space scanned ({geometry.NodeSize}-byte nodes), {scan.Nodes.Count} nodes found" +
                 (only is { } b ? $", {nodes.Count} of btree {b.ToText()}" : ""));
        foreach (var n in nodes)
        {
            var style = n.Status switch
            {
                ScannedNodeStatus.Chosen => null,
                ScannedNodeStatus.Rejected => "yellow",
                _ => "dim",
            };
            var line = $"  offset {n.Offset}: {BtreeText(n)} level {n.Level} [{n.Min.ToText()}..{n.Max.ToText()}] gen {n.Generation} " +
                       $"journal seq {n.JournalSeq} sectors {n.SectorsWritten} keys {n.Keys}: {n.StatusText()}";
            if (style is null)
                cli.Line(line);
            else
                cli.Line(line, style);
        }
        return CliExitCodes.Ok;
    }

    private static string BtreeText(in ScannedNode n) =>
        BtreeIds.IsKnown((byte)n.Btree) ? n.Btree.ToText() : $"btree {(byte)n.Btree}";

    private static ScanNodeJson ToJson(ScannedNode n) => new(
        n.Offset,
        BtreeText(n),
        n.Level,
        n.Min.ToText(),
        n.Max.ToText(),
        n.Generation,
        n.JournalSeq,
        n.SectorsWritten,
        n.Keys,
        n.Status.ToString().ToLowerInvariant(),
        n.Status == ScannedNodeStatus.Rejected ? null : n.UseMin.ToText(),
        n.Status == ScannedNodeStatus.Rejected ? null : n.UseMax.ToText(),
        n.SupersededBy >= 0 ? n.SupersededBy : null,
        n.Status == ScannedNodeStatus.Rejected ? n.StatusText()["rejected: ".Length..] : null);
}
