// basalt df IMAGE [--json]
// Space usage in bytes, from the accounting btree: per device the bucket size, the buckets in each
// state and the bytes of each data type, then the totals size, used and available. The image is
// mounted read-only over a copy-on-write overlay (an unclean image is replayed in memory; nothing
// reaches the image).
//
// The accounting covers the buckets [first_bucket, nbuckets); the buckets below first_bucket hold
// the superblock area and are counted here as `sb` from the layout. A device whose allocation
// info was never created (the member flag alloc_initialized is clear) is in its layout state
// (docs/allocation.md): its numbers are derived from the layout and the output says so.
// `available` is what ordinary writes can still get, as statfs's f_bavail: the free buckets less
// the reserve (SpaceManager.ReserveBuckets), never below zero. `inodes` is the number of inodes in use
// (the root and lost+found included; 0 before the first writable mount creates them).
using System.CommandLine;
using System.Globalization;
using Basalt.Alloc;
using Basalt.Format;
using Basalt.Fs;
using Basalt.Superblocks;

namespace Basalt.Cli;

internal sealed record DfBucketsJson(long Free, long NeedDiscard, long NeedGcGens, long Sb, long Journal, long Btree, long User, long Cached);

internal sealed record DfBytesJson(long Sb, long Journal, long Btree, long User, long Cached, long Fragmented);

internal sealed record DfDeviceJson(int Index, string Source, int BucketSize, ulong Nbuckets, uint FirstBucket, ulong ReserveBuckets,
    DfBucketsJson Buckets, DfBytesJson Bytes, long Size, long Used, long Available);

internal sealed record DfJson(string Device, IReadOnlyList<DfDeviceJson> Devices, long Size, long Used, long Available, long Inodes);

internal static class DfCommand
{
    /// <summary>The bucket states df lists, in its order.</summary>
    private static readonly BucketDataType[] s_states =
    [
        BucketDataType.Free, BucketDataType.NeedDiscard, BucketDataType.NeedGcGens, BucketDataType.Superblock,
        BucketDataType.Journal, BucketDataType.Btree, BucketDataType.User, BucketDataType.Cached,
    ];

    public static Command Create(CliContext cli)
    {
        var json = new Option<bool>("--json") { Description = "print one JSON document" };
        var image = new Argument<string>("IMAGE") { Description = "image file or block device" };
        var command = new Command("df", "show space usage in bytes: buckets by state, bytes by data type, size, used, available") { json, image };
        command.SetAction(parse => Program.Execute(cli, () =>
            Run(cli, CliParsing.ResolveImage(parse.GetValue(image)!), parse.GetValue(json))));
        return command;
    }

    private static int Run(CliContext cli, string path, bool json)
    {
        CliParsing.RequireExistingImage(path);
        using var fs = BasaltFileSystem.Mount(path, new MountOptions { ReadOnly = true });
        var devices = fs.Space.Layout.Devices.Select(d => Measure(fs, d)).ToList();
        var report = new DfJson(fs.Device.Name, devices, devices.Sum(d => d.Size), devices.Sum(d => d.Used), devices.Sum(d => d.Available),
            fs.Files.Stats().Inodes);
        if (json)
        {
            JsonOutput.Write(cli.Out, report);
            return CliExitCodes.Ok;
        }
        if (fs.SuperblockNote is { } note)
            cli.Err.WriteLine($"{cli.CommandName}: note: {note}");
        WriteText(cli, report);
        return CliExitCodes.Ok;
    }

    /// <summary>The usage of one device: the accounting's counters, or the layout's when the allocation info was never created.</summary>
    internal static DfDeviceJson Measure(BasaltFileSystem fs, DeviceLayout dev)
    {
        var initialized = (fs.Superblock.Members[dev.Index].Flags & MemberFlags.AllocInitialized) != 0;
        var usage = initialized ? fs.Space.Usage(dev.Index) : LayoutUsage(dev);
        long Buckets(BucketDataType t) => usage.TryGetValue(t, out var u) ? u.Buckets : 0;
        long Bytes(BucketDataType t) => usage.TryGetValue(t, out var u) ? u.Sectors * FormatLimits.SectorSize : 0;
        var sbBuckets = Buckets(BucketDataType.Superblock) + dev.FirstBucket;
        var sbBytes = Bytes(BucketDataType.Superblock) + ((long)dev.FirstBucket * dev.BucketSize);
        var buckets = new DfBucketsJson(Buckets(BucketDataType.Free), Buckets(BucketDataType.NeedDiscard), Buckets(BucketDataType.NeedGcGens),
            sbBuckets, Buckets(BucketDataType.Journal), Buckets(BucketDataType.Btree), Buckets(BucketDataType.User), Buckets(BucketDataType.Cached));
        var fragmented = usage.Values.Sum(u => u.Fragmented) * FormatLimits.SectorSize;
        var bytes = new DfBytesJson(sbBytes, Bytes(BucketDataType.Journal), Bytes(BucketDataType.Btree), Bytes(BucketDataType.User),
            Bytes(BucketDataType.Cached), fragmented);
        var reserve = fs.Space.ReserveBuckets(dev.Index);
        var size = checked((long)dev.Nbuckets * dev.BucketSize);
        var used = bytes.Sb + bytes.Journal + bytes.Btree + bytes.User + bytes.Cached;
        var available = Math.Max(0, buckets.Free - (long)reserve) * dev.BucketSize;
        return new DfDeviceJson(dev.Index, initialized ? "accounting" : "layout", dev.BucketSize, dev.Nbuckets, dev.FirstBucket, reserve,
            buckets, bytes, size, used, available);
    }

    /// <summary>What the accounting will say once the first writable mount creates it: every bucket in its layout state.</summary>
    private static Dictionary<BucketDataType, DeviceUsage> LayoutUsage(DeviceLayout dev)
    {
        var usage = new Dictionary<BucketDataType, DeviceUsage>();
        for (var b = (ulong)dev.FirstBucket; b < dev.Nbuckets; b++)
        {
            var type = dev.FixedType(b);
            usage[type] = usage.GetValueOrDefault(type).Add(new DeviceUsage(1, type == BucketDataType.Free ? 0 : dev.BucketSectors, 0));
        }
        return usage;
    }

    private static void WriteText(CliContext cli, DfJson report)
    {
        foreach (var d in report.Devices)
        {
            cli.Line(string.Create(CultureInfo.InvariantCulture,
                $"{report.Device}: device {d.Index}: {d.Nbuckets} buckets of {d.BucketSize} bytes, first bucket {d.FirstBucket}, " +
                $"reserve {d.ReserveBuckets} buckets{(d.Source == "layout" ? " (allocation info not created yet: every bucket in its layout state)" : "")}"), "bold");
            cli.Line($"  {"state",-14}{"buckets",12}{"bytes",16}");
            foreach (var state in s_states)
            {
                var (buckets, bytes) = Row(d, state);
                cli.Line(string.Create(CultureInfo.InvariantCulture, $"  {state.ToText(),-14}{buckets,12}{bytes,16}"));
            }
            cli.Line(string.Create(CultureInfo.InvariantCulture, $"  {"fragmented",-14}{"",12}{d.Bytes.Fragmented,16}"));
            if (report.Devices.Count > 1)
                cli.Line(string.Create(CultureInfo.InvariantCulture, $"  size {d.Size}, used {d.Used}, available {d.Available}"));
        }
        cli.Line(string.Create(CultureInfo.InvariantCulture, $"{"size",-16}{report.Size,14}"));
        cli.Line(string.Create(CultureInfo.InvariantCulture, $"{"used",-16}{report.Used,14}"));
        cli.Line(string.Create(CultureInfo.InvariantCulture, $"{"available",-16}{report.Available,14}"));
        cli.Line(string.Create(CultureInfo.InvariantCulture, $"{"inodes",-16}{report.Inodes,14}"));
    }

    /// <summary>Buckets and bytes of one state; the empty states hold no bytes.</summary>
    private static (long Buckets, long Bytes) Row(DfDeviceJson d, BucketDataType state) => state switch
    {
        BucketDataType.Free => (d.Buckets.Free, 0),
        BucketDataType.NeedDiscard => (d.Buckets.NeedDiscard, 0),
        BucketDataType.NeedGcGens => (d.Buckets.NeedGcGens, 0),
        BucketDataType.Superblock => (d.Buckets.Sb, d.Bytes.Sb),
        BucketDataType.Journal => (d.Buckets.Journal, d.Bytes.Journal),
        BucketDataType.Btree => (d.Buckets.Btree, d.Bytes.Btree),
        BucketDataType.User => (d.Buckets.User, d.Bytes.User),
        _ => (d.Buckets.Cached, d.Bytes.Cached),
    };
}
