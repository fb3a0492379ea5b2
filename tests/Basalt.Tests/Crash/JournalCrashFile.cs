// A recorded crash workload saved to a file, so a failing search can be run again exactly: the
// threaded workloads' write logs depend on the scheduler and cannot be re-recorded from a seed.
//
// The file is a gzip stream of little-endian fields: magic "BCRASH1\0", the workload seed, the
// base image (length, bytes), the writes (count; each: offset, length, a discard flag byte, data
// unless a discard), the flushes (count; each: writes logged at completion, writes covered), the
// transactions (count of snapshots; each snapshot: its keys (count; each: inode, offset,
// snapshot, key type, value length, value), seq, committed-at), the durable marks (count; each:
// log count, durable seq) and the deepest root level.
using System.IO.Compression;
using System.Text;
using Basalt.Devices;
using Basalt.Format;

namespace Basalt.Tests.Crash;

internal static class JournalCrashFile
{
    private static ReadOnlySpan<byte> Magic => "BCRASH1\0"u8;

    /// <summary>Saves <paramref name="recording"/> where BASALT_CRASH_DIR says (the temp directory by default); returns the path.</summary>
    public static string SaveForReplay(JournalCrashRecording recording, string name)
    {
        var dir = Environment.GetEnvironmentVariable("BASALT_CRASH_DIR") is { Length: > 0 } d ? d : Path.GetTempPath();
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"basalt-crash-{name}-{recording.Options.Seed}-{Environment.ProcessId}.bcrash");
        Save(recording, path);
        return path;
    }

    public static void Save(JournalCrashRecording recording, string path)
    {
        using var file = File.Create(path);
        using var zip = new GZipStream(file, CompressionLevel.Fastest);
        using var w = new BinaryWriter(zip, Encoding.UTF8);
        w.Write(Magic);
        w.Write(recording.Options.Seed);
        w.Write(recording.BaseImage.Length);
        w.Write(recording.BaseImage);

        var log = recording.Log;
        w.Write(log.Writes.Count);
        foreach (var write in log.Writes)
        {
            w.Write(write.Offset);
            w.Write(write.Length);
            w.Write(write.IsDiscard);
            if (write.Data is { } data)
                w.Write(data);
        }
        w.Write(log.Flushes.Count);
        for (var i = 0; i < log.Flushes.Count; i++)
        {
            w.Write(log.Flushes[i]);
            w.Write(log.Covered[i]);
        }

        w.Write(recording.Snapshots.Count);
        for (var k = 0; k < recording.Snapshots.Count; k++)
        {
            var snapshot = recording.Snapshots[k];
            w.Write(snapshot.Count);
            foreach (var (pos, (type, value)) in snapshot)
            {
                w.Write(pos.Inode);
                w.Write(pos.Offset);
                w.Write(pos.Snapshot);
                w.Write((byte)type);
                w.Write(value.Length);
                w.Write(value);
            }
            w.Write(recording.Seqs[k]);
            w.Write(recording.CommittedAt[k]);
        }
        w.Write(recording.Durable.Count);
        foreach (var mark in recording.Durable)
        {
            w.Write(mark.LogCount);
            w.Write(mark.DurableSeq);
        }
        w.Write(recording.MaxRootLevel);
    }

    public static JournalCrashRecording Load(string path)
    {
        using var file = File.OpenRead(path);
        using var zip = new GZipStream(file, CompressionMode.Decompress);
        using var r = new BinaryReader(zip, Encoding.UTF8);
        if (!r.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic))
            throw new InvalidDataException($"{path}: not a saved crash workload (bad magic)");
        var seed = r.ReadInt32();
        var baseImage = r.ReadBytes(r.ReadInt32());

        var writes = new List<(long Offset, long Length, byte[]? Data)>();
        for (int i = 0, n = r.ReadInt32(); i < n; i++)
        {
            var offset = r.ReadInt64();
            var length = r.ReadInt64();
            var discard = r.ReadBoolean();
            writes.Add((offset, length, discard ? null : r.ReadBytes(checked((int)length))));
        }
        var flushes = new List<(int CompletedAt, int Covered)>();
        for (int i = 0, n = r.ReadInt32(); i < n; i++)
            flushes.Add((r.ReadInt32(), r.ReadInt32()));

        // Rebuild the log in its original order: each flush completes once the writes logged
        // before it are in.
        var log = new WriteLog();
        var f = 0;
        for (var i = 0; i <= writes.Count; i++)
        {
            for (; f < flushes.Count && flushes[f].CompletedAt == i; f++)
                log.AddFlush(flushes[f].Covered);
            if (i == writes.Count)
                break;
            var (offset, length, data) = writes[i];
            if (data is null)
                log.AddDiscard(offset, length);
            else
                log.AddWrite(offset, data);
        }
        if (f != flushes.Count)
            throw new InvalidDataException($"{path}: flush {f} completes after the last write");

        var snapshots = new List<SortedDictionary<Bpos, (KeyType Type, byte[] Value)>>();
        var seqs = new List<ulong>();
        var committedAt = new List<int>();
        for (int k = 0, n = r.ReadInt32(); k < n; k++)
        {
            var snapshot = new SortedDictionary<Bpos, (KeyType Type, byte[] Value)>();
            for (int i = 0, keys = r.ReadInt32(); i < keys; i++)
            {
                var pos = new Bpos(r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt32());
                var type = (KeyType)r.ReadByte();
                snapshot[pos] = (type, r.ReadBytes(r.ReadInt32()));
            }
            snapshots.Add(snapshot);
            seqs.Add(r.ReadUInt64());
            committedAt.Add(r.ReadInt32());
        }
        var durable = new List<DurableMark>();
        for (int i = 0, n = r.ReadInt32(); i < n; i++)
            durable.Add(new DurableMark(r.ReadInt32(), r.ReadUInt64()));
        return new JournalCrashRecording
        {
            Options = new JournalCrashWorkloadOptions { Seed = seed, Transactions = snapshots.Count - 1 },
            BaseImage = baseImage,
            Log = log,
            Snapshots = snapshots,
            Seqs = seqs,
            CommittedAt = committedAt,
            Durable = durable,
            MaxRootLevel = r.ReadInt32(),
        };
    }
}
