// One damage recipe of the campaign, printable and parseable so a failing round is saved as a
// one-line regression case: "corrupt node bitflip fix seed=7 level=1", "bytes 1314816+37 seed=5",
// "zero-sector 2571", "truncate 1400000", "wipe-super 0,1", "journal field bitflip nofix seed=3 seq=14".
using System.Globalization;
using Basalt.Superblocks;

namespace Basalt.IntegrationTests.Hardening;

internal sealed record Damage(string Kind, string[] Args)
{
    private static readonly string[] s_targets = ["node", "bset", "key", "superblock"];
    private static readonly string[] s_modes = ["zero", "ones", "random", "bitflip"];

    // The small geometry's layout (see BaseImage): superblock copies in the first 128 KiB and at
    // the end, the node area from 1.25 MiB; a 4000-key btree uses its first few hundred KiB.
    private const long NodeArea = 1310720;
    private const long ImageSize = 16L << 20;

    /// <summary>
    /// A journal damage of an entry with seq <paramref name="seq"/>: the whole entry, one record or
    /// one header field, in any mode, with or without the checksum recomputed.
    /// </summary>
    public static Damage PickJournal(Random random, ulong seq)
    {
        string[] targets = ["entry", "record", "field"];
        List<string> args = [targets[random.Next(3)], s_modes[random.Next(s_modes.Length)], random.Next(4) == 0 ? "fix" : "nofix",
            $"seed={random.Next(1000)}", $"seq={seq}"];
        return new Damage("journal", [.. args]);
    }

    /// <summary>A journal damage whose checksum was left alone: the entry it hit can no longer be read.</summary>
    public bool BreaksJournalEntry => Kind == "journal" && Args[2] == "nofix";

    /// <summary>Keys rewritten with a valid checksum: legal keys no check can tell from written ones.</summary>
    public int ForgedKeys => Parts().Count(p => p.Kind == "corrupt" && p.Args[0] == "key" && p.Args[2] == "fix");

    /// <summary>
    /// Damage that a checksum must reveal wherever it changes live metadata: no part recomputes a
    /// checksum (--fix-csum can make a changed field legal) and none truncates the file (a
    /// truncation is always found, as device_truncated: see <see cref="Truncates"/>, but the
    /// live regions it cuts are not compared byte by byte).
    /// </summary>
    public bool CertainlyDetectable => Parts().All(p => p.Kind != "truncate" && !(p.Kind == "corrupt" && p.Args[2] == "fix"));

    /// <summary>True when a part cuts the file shorter than the image: fsck must report device_truncated.</summary>
    public bool Truncates => Parts().Any(p => p.Kind == "truncate" && long.Parse(p.Args[0], CultureInfo.InvariantCulture) < ImageSize);

    public override string ToString() => string.Join(' ', [Kind, .. Args]);

    public static Damage Parse(string recipe)
    {
        var parts = recipe.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return new Damage(parts[0], parts[1..]);
    }

    public static Damage Pick(Random random)
    {
        // One round in eight stacks two or three damages ("multi A & B & C").
        if (random.Next(8) == 0)
        {
            var parts = Enumerable.Range(0, 2 + random.Next(2)).Select(_ => PickOne(random).ToString());
            return new Damage("multi", string.Join(" & ", parts).Split(' '));
        }
        return PickOne(random);
    }

    private static Damage PickOne(Random random)
    {
        switch (random.Next(10))
        {
            case < 5:
            {
                var target = s_targets[random.Next(s_targets.Length)];
                List<string> args = [target, s_modes[random.Next(s_modes.Length)], random.Next(2) == 0 ? "fix" : "nofix", $"seed={random.Next(1000)}"];
                if (target != "superblock" && random.Next(3) == 0)
                    args.Add($"level={random.Next(3)}");
                return new Damage("corrupt", [.. args]);
            }
            case 5:
            case 6:
                return new Damage("bytes", [$"{RandomOffset(random)}+{1 + random.Next(random.Next(2) == 0 ? 8 : 600)}", $"seed={random.Next(1000)}"]);
            case 7:
                return new Damage("zero-sector", [(RandomOffset(random) / 512).ToString(CultureInfo.InvariantCulture)]);
            case 8:
                return new Damage("truncate", [(random.Next(3) == 0 ? random.NextInt64(ImageSize) : random.NextInt64(NodeArea + (512 << 10))).ToString(CultureInfo.InvariantCulture)]);
            default:
            {
                var copies = Enumerable.Range(0, 3).Where(_ => random.Next(3) == 0).ToList();
                if (copies.Count == 0)
                    copies.Add(random.Next(3));
                return new Damage("wipe-super", [string.Join(',', copies)]);
            }
        }
    }

    private static long RandomOffset(Random random) => random.Next(10) switch
    {
        < 3 => random.NextInt64(128 << 10),
        < 9 => NodeArea + random.NextInt64(512 << 10),
        _ => random.NextInt64(ImageSize),
    };

    private IEnumerable<Damage> Parts() =>
        Kind != "multi" ? [this] : string.Join(' ', Args).Split(" & ").Select(Parse);

    /// <summary>Damages the image; returns what was done (debug corrupt's report for corrupt).</summary>
    public string Apply(string image, bool pristine = true)
    {
        switch (Kind)
        {
            case "multi":
                return string.Join(" || ", Parts().Select((p, i) => p.Apply(image, pristine: i == 0)));
            case "journal":
            {
                // "journal entry|record|field MODE fix|nofix seed=N [seq=S] [field=F]"
                List<string> args = ["debug", "corrupt", image, "--target", $"journal-{Args[0]}", "--mode", Args[1]];
                if (Args[2] == "fix")
                    args.Add("--fix-csum");
                foreach (var extra in Args[3..])
                {
                    var (name, value) = Split(extra);
                    args.AddRange([$"--{name}", value]);
                }
                var r = DamageCampaignTests.Cli([.. args]);
                // 16: a zero/ones change of a field that already holds it is refused; 1: no record with a payload.
                Assert.True(r.ExitCode is 0 or 1 or 16 && (r.ExitCode == 0 || r.ErrLines.Length == 1), $"debug corrupt failed: {r}");
                return r.ExitCode == 0 ? string.Join(" | ", r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)) : $"nothing changed ({r.Err.Trim()})";
            }
            case "corrupt":
            {
                List<string> args = ["debug", "corrupt", image, "--target", Args[0], "--mode", Args[1]];
                if (Args[2] == "fix")
                    args.Add("--fix-csum");
                foreach (var extra in Args[3..])
                {
                    var (name, value) = Split(extra);
                    args.AddRange([$"--{name}", value]);
                }
                var r = DamageCampaignTests.Cli([.. args]);
                // 1: nothing to damage; 16: a zero/ones change of a field that already holds it is refused.
                // On an image already damaged, 8 (corrupt image) is a fine answer too, in one line.
                Assert.True(r.ExitCode is 0 or 1 or 16 || (!pristine && r.ExitCode == 8 && r.ErrLines.Length == 1), $"debug corrupt failed: {r}");
                return r.ExitCode == 0 ? string.Join(" | ", r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)) : $"nothing changed ({r.Err.Trim()})";
            }
            case "bytes":
            {
                var range = Args[0].Split('+');
                var offset = long.Parse(range[0], CultureInfo.InvariantCulture);
                var bytes = new byte[int.Parse(range[1], CultureInfo.InvariantCulture)];
                new Random(int.Parse(Split(Args[1]).Value, CultureInfo.InvariantCulture)).NextBytes(bytes);
                Write(image, offset, bytes);
                return $"{bytes.Length} random bytes at {offset}";
            }
            case "zero-sector":
            {
                var sector = long.Parse(Args[0], CultureInfo.InvariantCulture);
                Write(image, sector * 512, new byte[512]);
                return $"sector {sector} zeroed";
            }
            case "truncate":
            {
                var length = long.Parse(Args[0], CultureInfo.InvariantCulture);
                using var file = new FileStream(image, FileMode.Open, FileAccess.ReadWrite);
                file.SetLength(length);
                return $"truncated to {length} bytes";
            }
            case "wipe-super":
            {
                var offsets = SuperblockIo.CopyOffsets(ImageSize);
                var copies = Args[0].Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToList();
                foreach (var copy in copies)
                    Write(image, offsets[copy], new byte[4096]);
                return $"superblock copies {Args[0]} wiped ({string.Join(", ", copies.Select(c => offsets[c]))})";
            }
            default:
                throw new ArgumentException($"unknown damage kind {Kind}");
        }
    }

    private static (string Name, string Value) Split(string arg)
    {
        var eq = arg.IndexOf('=', StringComparison.Ordinal);
        return (arg[..eq], arg[(eq + 1)..]);
    }

    private static void Write(string image, long offset, byte[] bytes)
    {
        using var file = new FileStream(image, FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        file.Write(bytes);
    }
}

/// <summary>Recipes that once failed a round (fixed since); the campaign replays each one.</summary>
internal static class DamageRegressions
{
    public static readonly string[] Recipes =
    [
        // A damaged first or last superblock copy passed as the trace of a crash during a superblock
        // write, so fsck -n reported nothing (it is a crash trace only when provably so).
        "bytes 4096+1 seed=1",
        "corrupt superblock zero nofix seed=402",
        // list printed its read warnings before failing: the error was not one line.
        "corrupt key ones fix seed=72 level=2",
        // Topology repair deleted a dropped child's pointer; the whiteout did not fit, the parent
        // split with that pointer as pivot, and the gap then closed across the split.
        "corrupt bset random nofix seed=189",
        // A superblock copy claiming version 2049 (version_min still 1) with a good checksum: the
        // engine stamped that version on the bsets fsck -y wrote, which this build then refused.
        "multi corrupt superblock ones fix seed=761 field=version & corrupt key bitflip nofix seed=917 level=1",
        // A cut through the node area dropped neighbouring leaves; the pointer edits that followed
        // split their parent in the middle of its walk, and the gap repair then extended a child
        // below the new parent's min (a second fsck found bad min and max keys). Repair edits now
        // compact a node rather than split it while its keys fit.
        "truncate 1759783",
        // The freespace root damaged and the node scan finding only key-less leaves of that btree:
        // a root rebuilt over no children threw. The btree is now reset to an empty root.
        "multi truncate 1632599 & corrupt bset bitflip fix seed=189 & bytes 1376134+393 seed=820",
        // A level-1 node lost and its range filled from the scan into its neighbour, whose
        // pointers then no longer fit in one node: the engine split it, and a gap repair below
        // extended a child across the split (a second fsck found bad min and max keys). The
        // engine now moves the boundary between the two halves down with the child.
        "multi bytes 2178883+171 seed=647 & corrupt key random fix seed=785 & corrupt node random fix seed=252",
        // One bit of superblock copy 0's uuid flipped, its checksum recomputed: the first copy in
        // layout order won over the two that agreed, every node then carried another filesystem's
        // magic, and fsck -y reset every btree. The copies now vote.
        "corrupt superblock bitflip fix seed=390",
        // A pointer key forged (checksum recomputed): its whole leaf was dropped with the pointer.
        // A node whose range alone disagrees with its pointer now comes back from the node scan.
        "corrupt key ones fix seed=695 level=1",
        // The freespace root's level byte flipped to 1, checksum recomputed: the only level-1 node
        // the scan found was the old root itself, which a rebuilt root may not take, and a root
        // rebuilt over no children threw. The rebuild now looks for a level it can fill.
        "corrupt node bitflip fix seed=836",
        // Copy 0 resealed over another uuid and copy 2 damaged: one good copy per uuid, and the
        // tie went to copy 0, whose uuid no node carries; fsck -y dropped every node. The tie now
        // goes to the uuid whose btree roots carry its node magic.
        "multi corrupt key ones nofix seed=797 level=0 & corrupt superblock ones nofix seed=324 & corrupt superblock random fix seed=792",
    ];
}
