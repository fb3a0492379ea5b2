// check_reflink (DESIGN §2 invariant 7): the refcount of every indirect extent (reflink_v) is the
// number of reflink pointers (reflink_p keys in the extents btree) whose padded range overlaps
// it, no indirect extent has a refcount of 0, and the live range of every pointer is covered by
// keys of the reflink btree (indirect extents, or error keys where data was lost).
//
// Refcounts, streaming: for an indirect extent [s, e) the pointers overlapping it are those whose
// padded range starts before e, less those whose padded range ends at or before s (a range that
// ends at or before s starts before e too). Both are counts over one sorted list each (padded
// starts, padded ends), answered by two cursors that only move forward, since indirect extents
// never overlap and come in order. A round collects the starts and ends that lie in a window
// (lo, hi) of reflink space and counts the ones at or below lo; when --max-mem fills, hi is cut
// to the median of what is held and the rest waits for the next round (each round is one walk of
// the extents btree and one walk of the reflink btree from lo). An indirect extent that crosses
// hi keeps the count of ends it already has for the next round: at most one crosses each cut.
//
// Refcounts are repaired first, so the pointer repairs after them (which go through the reflink
// pointer trigger) move correct counts: a piece takes its references before the pointer it
// replaces lets go of its own, and an indirect extent reaches zero only when no pointer is left
// on it. The pass runs before the space passes: the indirect extents it deletes release their
// data (ChargeIndirect) in the same transaction, and check_allocations then recounts what is left.
//
// A refcount below the true count while a pointer lets go would underflow; the trigger clamps it
// at zero (deleting the indirect extent at one), so an underflow leaves no trace of its own: what
// it leaves is a pointer to a missing indirect extent, repaired here.
using System.Globalization;
using System.Runtime.InteropServices;
using Basalt.Data;
using Basalt.Format;
using Basalt.Transactions;

namespace Basalt.Fsck.Files;

internal static class CheckReflink
{
    public static void Run(FileCheckRun run)
    {
        CheckRefcounts(run);
        run.Flush();
        CheckPointers(run);
        run.Flush();
    }

    // ---- refcounts ------------------------------------------------------------------------------

    private static void CheckRefcounts(FileCheckRun run)
    {
        var capacity = (int)Math.Clamp(run.MaxMem / sizeof(ulong), 64, 1 << 28);
        var starts = new List<ulong>(Math.Min(capacity, 1 << 16));
        var ends = new List<ulong>(Math.Min(capacity, 1 << 16));
        var lo = 0UL;
        ulong? carried = null;
        var rounds = 0;
        while (true)
        {
            rounds++;
            var hi = ulong.MaxValue;
            var (startsAtOrBelow, endsAtOrBelow) = CollectWindow(run, lo, ref hi, capacity, starts, ends);
            carried = CountWindow(run, lo, hi, CollectionsMarshal.AsSpan(starts), CollectionsMarshal.AsSpan(ends),
                startsAtOrBelow, endsAtOrBelow, carried);
            if (hi == ulong.MaxValue)
                break;
            lo = hi;
        }
        run.Reporter.Count("check_reflink: refcount rounds", rounds);
    }

    /// <summary>
    /// One walk of the extents btree: the padded starts and ends of every reflink pointer that lie in
    /// (<paramref name="lo"/>, <paramref name="hi"/>), sorted, and how many lie at or below lo. When
    /// more than <paramref name="capacity"/> values lie in the window, hi is cut to their median.
    /// </summary>
    private static (long Starts, long Ends) CollectWindow(FileCheckRun run, ulong lo, ref ulong hi, int capacity, List<ulong> starts, List<ulong> ends)
    {
        starts.Clear();
        ends.Clear();
        long startsAtOrBelow = 0;
        long endsAtOrBelow = 0;
        var it = run.Tree(BtreeId.Extents).Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            if (it.Key.Type != KeyType.ReflinkP || !TryReadPointer(it.Key, it.Value, out var pointer))
                continue;
            var (start, end) = pointer.Padded(it.Key.Size);
            if (start <= lo)
                startsAtOrBelow++;
            else if (start < hi)
                starts.Add(start);
            if (end <= lo)
                endsAtOrBelow++;
            else if (end < hi)
                ends.Add(end);
            if (starts.Count + ends.Count > capacity)
                hi = Cut(starts, ends);
        }
        starts.Sort();
        ends.Sort();
        return (startsAtOrBelow, endsAtOrBelow);
    }

    /// <summary>Lowers the window's end to the median of the values held and drops those at or above it; returns the new end.</summary>
    private static ulong Cut(List<ulong> starts, List<ulong> ends)
    {
        starts.Sort();
        ends.Sort();
        var (i, j) = (0, 0);
        for (var k = (starts.Count + ends.Count) / 2; k > 0; k--)
        {
            if (j == ends.Count || (i < starts.Count && starts[i] <= ends[j]))
                i++;
            else
                j++;
        }
        var median = j == ends.Count || (i < starts.Count && starts[i] <= ends[j]) ? starts[i] : ends[j];
        DropFrom(starts, median);
        DropFrom(ends, median);
        return median;
    }

    /// <summary>Removes the values at or above <paramref name="value"/> from a sorted list.</summary>
    private static void DropFrom(List<ulong> sorted, ulong value)
    {
        var first = FirstAtOrAbove(sorted, value);
        sorted.RemoveRange(first, sorted.Count - first);
    }

    private static int FirstAtOrAbove(List<ulong> sorted, ulong value)
    {
        var (a, b) = (0, sorted.Count);
        while (a < b)
        {
            var m = (a + b) >>> 1;
            if (sorted[m] < value)
                a = m + 1;
            else
                b = m;
        }
        return a;
    }

    /// <summary>
    /// Checks the indirect extents that end in (<paramref name="lo"/>, <paramref name="hi"/>];
    /// returns the count of pointer ends at or below the start of one that crosses hi (the next
    /// round needs it), or null.
    /// </summary>
    private static ulong? CountWindow(FileCheckRun run, ulong lo, ulong hi, ReadOnlySpan<ulong> starts, ReadOnlySpan<ulong> ends,
        long startsAtOrBelow, long endsAtOrBelow, ulong? carried)
    {
        var (i, j) = (0, 0);
        var it = run.Tree(BtreeId.Reflink).Iterate(ReflinkSpace.FirstOverlapping(lo), ReflinkSpace.Last);
        while (it.MoveNext())
        {
            var key = it.Key;
            if (key.Type != KeyType.ReflinkV || key.Size == 0)
                continue;
            var ks = key.Pos.Offset - key.Size;
            var ke = key.Pos.Offset;
            if (ks >= hi)
                break;
            ulong endedBefore;
            if (ks >= lo)
            {
                while (j < ends.Length && ends[j] <= ks)
                    j++;
                endedBefore = (ulong)(endsAtOrBelow + j);
            }
            else
            {
                endedBefore = carried ?? (ulong)endsAtOrBelow;
            }
            if (ke > hi)
                return endedBefore; // crosses the cut: counted in the next round
            while (i < starts.Length && starts[i] < ke)
                i++;
            var startedBefore = (ulong)(startsAtOrBelow + i);
            Compare(run, key, it.Value, startedBefore - endedBefore);
        }
        return null;
    }

    private static void Compare(FileCheckRun run, Bkey key, ReadOnlySpan<byte> value, ulong counted)
    {
        if (!ReflinkIndirect.TryRead(value, out var stored, out var extent, out _))
            return; // node reads drop what does not decode
        if (stored == counted)
            return;
        var where = run.Where(BtreeId.Reflink, key.Pos);
        var range = RangeText(key);
        if (counted == 0)
        {
            if (!run.Reporter.Report(FsckErrorId.ReflinkVUnreferenced, where,
                    $"indirect extent {range} has refcount {stored}, but no reflink pointer's range overlaps it"))
            {
                return;
            }
            run.Repair(t =>
            {
                ExtentTriggers.ChargeIndirect(t, key, extent, -1);
                t.Delete(BtreeId.Reflink, key.Pos);
            });
            return;
        }
        if (!run.Reporter.Report(FsckErrorId.ReflinkVRefcountWrong, where,
                $"indirect extent {range} has refcount {stored}, but {counted} reflink pointers' ranges overlap it"))
        {
            return;
        }
        var bytes = ReflinkIndirect.WithRefcount(value, counted);
        // Indirect extents have no trigger: the refcount is written as it is.
        run.Repair(t => t.Set(BtreeId.Reflink, key, bytes));
    }

    // ---- pointers to missing indirect extents -------------------------------------------------

    /// <summary>
    /// Every reflink pointer's live range must be covered by keys of the reflink btree. One range
    /// read of the reflink btree per pointer (a pointer rarely spans more than a few indirect extents).
    /// </summary>
    private static void CheckPointers(FileCheckRun run)
    {
        var covered = new List<(ulong Start, ulong End)>();
        var it = run.Tree(BtreeId.Extents).Iterate(Bpos.Min, Bpos.Max);
        while (it.MoveNext())
        {
            var key = it.Key;
            if (key.Type != KeyType.ReflinkP || !TryReadPointer(key, it.Value, out var pointer))
                continue;
            Coverage(run, pointer.Idx, pointer.Idx + key.Size, covered);
            var missing = key.Size - Sectors(covered);
            if (missing == 0)
                continue;
            var first = FirstGap(pointer.Idx, covered);
            if (!run.Reporter.Report(FsckErrorId.ReflinkPToMissingReflinkV, run.Where(BtreeId.Extents, key.Pos),
                    string.Create(CultureInfo.InvariantCulture,
                        $"{key.ToText()} -> reflink {pointer.Idx}..{pointer.Idx + key.Size}: {missing} of its {key.Size} sectors have no indirect extent (the first at reflink sector {first})")))
            {
                continue;
            }
            var value = it.Value.ToArray();
            var pieces = covered.ToArray();
            run.Repair(t => CutToCovered(t, key, value, pointer, pieces));
        }
    }

    /// <summary>The parts of reflink range [<paramref name="start"/>, <paramref name="end"/>) that keys of the reflink btree cover, merged and in order.</summary>
    private static void Coverage(FileCheckRun run, ulong start, ulong end, List<(ulong Start, ulong End)> covered)
    {
        covered.Clear();
        var it = run.Tree(BtreeId.Reflink).Iterate(ReflinkSpace.FirstOverlapping(start), ReflinkSpace.Last);
        while (it.MoveNext())
        {
            var key = it.Key;
            if (key.IsDeletion || key.Size == 0)
                continue;
            var ks = Math.Max(start, key.Pos.Offset - key.Size);
            var ke = Math.Min(end, key.Pos.Offset);
            if (ks >= end)
                break;
            if (ks >= ke)
                continue;
            if (covered.Count > 0 && covered[^1].End >= ks)
                covered[^1] = (covered[^1].Start, Math.Max(covered[^1].End, ke));
            else
                covered.Add((ks, ke));
        }
    }

    private static ulong Sectors(List<(ulong Start, ulong End)> ranges)
    {
        var sum = 0UL;
        foreach (var (s, e) in ranges)
            sum += e - s;
        return sum;
    }

    private static ulong FirstGap(ulong start, List<(ulong Start, ulong End)> covered)
    {
        var at = start;
        foreach (var (s, e) in covered)
        {
            if (s > at)
                return at;
            at = e;
        }
        return at;
    }

    /// <summary>
    /// In one transaction: the pointer's covered parts stay reflink pointers (same padded range, so
    /// the trigger takes a reference for each new piece), its uncovered parts become error keys
    /// (reads fail there: the data is lost). The key at the pointer's own position is written last,
    /// so every piece has taken its references before the old pointer lets go of its own.
    /// </summary>
    private static void CutToCovered(Transaction t, Bkey key, byte[] value, ReflinkPointer pointer, (ulong Start, ulong End)[] covered)
    {
        var fileStart = key.Pos.Offset - key.Size;
        var segments = new List<(ulong From, ulong To, bool Covered)>();
        var at = pointer.Idx;
        foreach (var (s, e) in covered)
        {
            if (s > at)
                segments.Add((at, s, false));
            segments.Add((s, e, true));
            at = e;
        }
        if (at < pointer.Idx + key.Size)
            segments.Add((at, pointer.Idx + key.Size, false));
        foreach (var (from, to, isCovered) in segments)
        {
            // Reflink sectors to file sectors.
            var fileFrom = fileStart + (from - pointer.Idx);
            var fileTo = fileStart + (to - pointer.Idx);
            var piece = new Bkey(ExtentStore.EndPos(key.Pos.Inode, fileTo), isCovered ? KeyType.ReflinkP : KeyType.Error, (uint)(fileTo - fileFrom));
            t.Set(BtreeId.Extents, piece, isCovered ? ExtentEdits.Piece(key, value, fileFrom, fileTo) : []);
        }
    }

    private static bool TryReadPointer(in Bkey key, ReadOnlySpan<byte> value, out ReflinkPointer pointer) =>
        ReflinkPointer.TryRead(value, out pointer, out _) && pointer.CheckAgainstKey(key.Size) is null;

    private static string RangeText(in Bkey key) =>
        string.Create(CultureInfo.InvariantCulture, $"reflink {key.Pos.Offset - key.Size}..{key.Pos.Offset}");
}
