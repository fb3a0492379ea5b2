// The documents `--json` prints: explicit DTOs (the JSON shape is a contract of its own, kept
// apart from the library's types) serialised with System.Text.Json source generation. Every
// command prints exactly one document on stdout.
using System.Text.Json;
using System.Text.Json.Serialization;
using Basalt.Cli.FileCommands;

namespace Basalt.Cli;

internal sealed record SuperblockCopyJson(int Index, long Offset, string Status, ulong? Seq, string Detail, bool Used);

internal sealed record RootJson(string Btree, int Level, string Pointer);

internal sealed record ErrorCounterJson(int Id, string Name, ulong Count, string LastTime);

internal sealed record MemberJson(string DeviceUuid, ulong Buckets, int BucketSize, uint FirstBucket,
    ulong NodeAreaFirstBucket, ulong NodeAreaBuckets, long NodeAreaOffset, long NodeAreaLength, string State,
    ulong JournalBuckets, ulong DataBuckets, int NodeRegionShift, string NodeRegionMap, IReadOnlyList<BucketRangeJson> NodeRegions,
    bool Discard, bool AllocInitialized);

internal sealed record BucketRangeJson(ulong Start, ulong Count);

internal sealed record SeqRangeJson(ulong First, ulong Last);

/// <summary>`debug scan-nodes --json`: one entry per node found, in offset order.</summary>
internal sealed record ScanNodesJson(string Device, int NodeSize, long BytesScanned, IReadOnlyList<ScanNodeJson> Nodes);

/// <summary>
/// One node the scan found. Status is chosen, clipped, superseded or rejected; UseMin/UseMax is the
/// part of the range it is used for (null when rejected); SupersededBy the offset of the newer node
/// that supersedes or clips it; Reason why it was rejected.
/// </summary>
internal sealed record ScanNodeJson(long Offset, string Btree, int Level, string Min, string Max, uint Generation, ulong JournalSeq,
    int SectorsWritten, int Keys, string Status, string? UseMin, string? UseMax, long? SupersededBy, string? Reason);

internal sealed record JournalRangeJson(ulong FirstBucket, ulong LastBucket, ulong Buckets, long Offset, long Length);

internal sealed record SuperJournalJson(
    int Buckets,
    int BucketSize,
    long Bytes,
    IReadOnlyList<JournalRangeJson> Ranges,
    bool Clean,
    string? LastMount,
    string? LastUnmount,
    ulong CheckpointSeq,
    int Entries,
    ulong? OldestSeq,
    ulong? NewestSeq,
    ulong? NewestFlushSeq,
    ulong? OldestInWindow,
    SeqRangeJson? Replay,
    SeqRangeJson? Lost,
    int Damaged,
    IReadOnlyList<SeqRangeJson> SuperblockBlacklist,
    IReadOnlyList<SeqRangeJson> Blacklist,
    ulong NextSeq,
    string Summary);

internal sealed record SuperblockJson(
    string Device,
    long ImageSize,
    string? Truncated,
    int UsedCopy,
    string? Note,
    IReadOnlyList<SuperblockCopyJson> Copies,
    string Uuid,
    string Label,
    int Version,
    int VersionMin,
    ulong Seq,
    string WriteTime,
    string Flags,
    bool Clean,
    string MetadataChecksum,
    string DataChecksum,
    long DeviceSize,
    int BlockSize,
    int NodeSize,
    int BucketSize,
    string NodeMagic,
    IReadOnlyList<MemberJson> Members,
    SuperJournalJson Journal,
    IReadOnlyList<RootJson> Roots,
    IReadOnlyList<ErrorCounterJson> ErrorCounters);

internal sealed record FindingJson(int Id, string Name, string? Pass, string Policy, string Where, string Detail, string Outcome, bool Corrected);

internal sealed record FsckCountJson(int Id, string Name, long Count);

internal sealed record FsckJson(
    string Device,
    string Mode,
    bool ImplicitCheckOnly,
    IReadOnlyList<string> Passes,
    string? SuperblockNote,
    IReadOnlyList<FindingJson> Findings,
    IReadOnlyList<FsckCountJson> Counts,
    IReadOnlyDictionary<string, long> Counters,
    int Corrected,
    int Uncorrected,
    bool CountersPersisted,
    IReadOnlyList<LostKeyJson> LostKeys,
    long LostKeysTotal,
    int ExitCode,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyDictionary<string, double>? PassSeconds = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Seconds = null);

/// <summary>A key a repair lost, named by btree and position (fsck --json lost_keys, up to --max-keys).</summary>
internal sealed record LostKeyJson(string Btree, string Pos);

internal sealed record ErrorJson(string Error, int ExitCode);

[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(SuperblockJson))]
[JsonSerializable(typeof(FsckJson))]
[JsonSerializable(typeof(ScanNodesJson))]
[JsonSerializable(typeof(ErrorJson))]
[JsonSerializable(typeof(DfJson))]
[JsonSerializable(typeof(LsJson))]
[JsonSerializable(typeof(StatJson))]
internal sealed partial class CliJsonContext : JsonSerializerContext;

internal static class JsonOutput
{
    public static void Write<T>(TextWriter output, T document)
    {
        var info = (System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)CliJsonContext.Default.GetTypeInfo(typeof(T))!;
        output.WriteLine(JsonSerializer.Serialize(document, info));
    }
}
