// File data as extents: copy-on-write writes, verified reads, punching holes, and the owner side
// of copygc and gc_gens. Byte ranges of an inode map onto extents of the extents btree (indexed
// by end sector); anything no extent covers is a hole and reads as zeros.
//
// A write (rule g): reserve the space, append each run of at most 64 KiB to a write point's open
// bucket, write the data to the device (the runs of a batch that follow each other on the device
// in one write; a bucket the write fills is handed to the device's write-back at once), then
// commit the extents in one transaction per batch of runs; the transaction trims or splits
// whatever it overlaps (ExtentEdits) and the triggers move the sector counts and backpointers. Live data is never overwritten in place. A commit that asked
// for a flush is durable when Write returns; otherwise it is journaled and becomes durable with
// the next journal flush, whose pre-flush also makes the data durable. Writes that are not
// sector-aligned read the partial sectors at either end first.
//
// A read picks, for each extent, a pointer whose bucket has not been invalidated since (not
// stale), reads the whole checksummed run it belongs to (at most 64 KiB), verifies it, and copies
// out the live window. A checksum that fails on every copy is an I/O error naming the inode and
// offset; a range whose data is known lost (an error extent) is one too. Never wrong bytes. A read
// inside one extent (the common random read) is one btree search for the first key after its
// start and one device read, and allocates nothing; anything unusual takes the general path.
using System.Buffers;
using System.Runtime.CompilerServices;
using Basalt.Alloc;
using Basalt.Backpointers;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Transactions;

namespace Basalt.Data;

public sealed class ExtentStore : ISpaceOwners
{
    private const int Sector = FormatLimits.SectorSize;

    /// <summary>Runs (extents of at most 64 KiB) committed per transaction of a write, at most.</summary>
    public const int MaxRunsPerTransaction = 16;

    /// <summary>Journal bytes one run's commit may take: the extent, its bucket's alloc key and the indexes and backpointer the triggers add.</summary>
    private const int JournalBytesPerRun = 512;

    /// <summary>Extents one transaction of a punch removes or trims, at most.</summary>
    private const int MaxPunchBatch = 128;

    private readonly BtreeEngine _engine;
    private readonly Btree.Btree _extents;
    private readonly Transactor? _transactor;
    private readonly IBlockDevice _device;
    // What reads go to: every data read is one device read, so it skips what adds nothing to a
    // read. The flush tracking under the journal only counts writes (its Read passes through), and
    // an image file or block device is called directly instead of through the interface.
    private readonly IBlockDevice _readDevice;
    private readonly FileBlockDevice? _readFile;
    private readonly SpaceManager _space;
    private readonly ThreadLocal<ReadScratch> _readScratch;
    private readonly int _inlineMax;
    private int _inlineLimit;
    private long _checksumErrors;
    private long _staleSkipped;

    /// <param name="maxCommitBytes">The largest transaction the journal takes, in bytes (bounds the runs per transaction).</param>
    public ExtentStore(BtreeEngine engine, Transactor? transactor, IBlockDevice device, SpaceManager space, ChecksumType checksumType,
        int maxCommitBytes = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(space);
        DataKeyTypes.Register();
        _engine = engine;
        _extents = engine[BtreeId.Extents];
        _transactor = transactor;
        _device = device;
        _readDevice = device is FlushTrackingDevice tracking ? tracking.Inner : device;
        _readFile = _readDevice as FileBlockDevice;
        _space = space;
        ChecksumType = checksumType == ChecksumType.None ? ChecksumType.Crc32C : checksumType;
        RunsPerTransaction = (int)Math.Clamp(((long)maxCommitBytes - 1024) / JournalBytesPerRun, 1, MaxRunsPerTransaction);
        // An inline key must fit a node's largest value and a journal's largest commit.
        _inlineMax = (int)Math.Min(Math.Min(engine.MaxValueBytes, (long)maxCommitBytes - 1024), InlineData.MaxBytes) / Sector * Sector;
        _inlineLimit = Math.Max(0, _inlineMax);
        PunchBatch = (int)Math.Clamp(((long)maxCommitBytes - 1024) / JournalBytesPerRun, 1, MaxPunchBatch);
        space.Owners = this;
        _readScratch = new ThreadLocal<ReadScratch>(() => new ReadScratch(engine[BtreeId.Extents].Iterate(Bpos.Min, Bpos.Max)));
    }

    /// <summary>
    /// The largest file (bytes) whose data is written inline, in its extent key (0: never). At most
    /// <see cref="InlineData.MaxBytes"/>, a quarter of a node (the largest value a node takes) and
    /// what the journal's largest commit leaves room for.
    /// </summary>
    public int InlineLimit
    {
        get => _inlineLimit;
        set => _inlineLimit = Math.Clamp(value, 0, Math.Max(0, _inlineMax));
    }

    /// <summary>Runs one transaction of a write commits (fewer with a small journal).</summary>
    public int RunsPerTransaction { get; }

    /// <summary>Extents one transaction of a punch edits (fewer with a small journal).</summary>
    public int PunchBatch { get; }

    /// <summary>Checksum type of the extents this store writes.</summary>
    public ChecksumType ChecksumType { get; }

    /// <summary>Reads whose checksum did not match (on some copy).</summary>
    public long ChecksumErrors => Interlocked.Read(ref _checksumErrors);

    /// <summary>Stale pointers reads stepped over.</summary>
    public long StaleSkipped => Interlocked.Read(ref _staleSkipped);

    public static Bpos EndPos(ulong inode, ulong endSector) => new(inode, endSector, uint.MaxValue);

    private Transactor Writer =>
        _transactor ?? throw new BasaltException(ErrorCode.ReadOnlyDevice, $"{_device.Name}: the filesystem is mounted read-only");

    // ---- Write --------------------------------------------------------------------------------

    /// <summary>
    /// Writes <paramref name="data"/> at byte <paramref name="offset"/> of <paramref name="inode"/>.
    /// Fails with DeviceFull before writing anything when the space cannot be reserved. A write of
    /// more than <see cref="RunsPerTransaction"/> runs commits in several transactions; a crash may
    /// then keep a prefix of them. <paramref name="alsoInTransaction"/> runs in every transaction of
    /// the write with the byte offset the data committed so far reaches (sector-aligned; the file
    /// layer keeps the inode's size there). Returns the last commit. Whole
    /// sectors are written and checksummed straight from <paramref name="data"/>, which must not
    /// change until Write returns.
    /// </summary>
    public CommitResult Write(ulong inode, long offset, ReadOnlySpan<byte> data, CommitOptions options = default,
        Action<Transaction, ulong>? alsoInTransaction = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (data.IsEmpty)
            return default;
        var writer = Writer;
        var end = checked(offset + data.Length);
        var firstSector = (ulong)(offset / Sector);
        var endSector = (ulong)((end + Sector - 1) / Sector);
        using var reservation = _space.Reserve((long)(endSector - firstSector));
        var groupSectors = (ulong)ExtentValue.MaxCoveredSectors * MaxRunsPerTransaction;
        byte[]? buffer = null;
        CommitResult last = default;
        try
        {
            for (var groupStart = firstSector; groupStart < endSector; groupStart += groupSectors)
            {
                var groupEnd = Math.Min(endSector, groupStart + groupSectors);
                var bytes = (int)(groupEnd - groupStart) * Sector;
                var groupByteStart = (long)groupStart * Sector;
                var copyFrom = Math.Max(offset, groupByteStart);
                var copyTo = Math.Min(end, (long)groupEnd * Sector);
                if (copyFrom == groupByteStart && copyTo == (long)groupEnd * Sector)
                {
                    // Whole sectors: written from the caller's bytes, no copy.
                    last = WriteGroup(writer, inode, groupStart, data.Slice((int)(copyFrom - offset), bytes), reservation, options, alsoInTransaction);
                    continue;
                }
                buffer ??= ArrayPool<byte>.Shared.Rent((int)groupSectors * Sector);
                var span = buffer.AsSpan(0, bytes);
                // The partial sectors at either end of the whole write keep their other bytes.
                if (copyFrom > groupByteStart)
                    Read(inode, groupByteStart, span[..Sector]);
                if (copyTo < (long)groupEnd * Sector)
                    Read(inode, (long)(groupEnd - 1) * Sector, span[(bytes - Sector)..]);
                data.Slice((int)(copyFrom - offset), (int)(copyTo - copyFrom)).CopyTo(span[(int)(copyFrom - groupByteStart)..]);
                last = WriteGroup(writer, inode, groupStart, span, reservation, options, alsoInTransaction);
            }
        }
        finally
        {
            if (buffer is not null)
                ArrayPool<byte>.Shared.Return(buffer);
        }
        return last;
    }

    /// <summary>
    /// Writes <paramref name="data"/> at <paramref name="offset"/> into the inline data of a small
    /// file: when the write ends within <see cref="InlineLimit"/> and every key the file has below
    /// that limit is inline data (or there is none), one transaction replaces them with a single
    /// inline key over the file's first sectors up to the furthest of the write's end and theirs
    /// (what lay between reads as zeros, as before), then runs <paramref name="alsoInTransaction"/>
    /// with the byte offset the inline data reaches. The old bytes are read inside the
    /// transaction, so concurrent writes to one small file never lose each other's bytes.
    /// False, with nothing written, when the file holds anything else there (data in a bucket, a
    /// reservation, a shared range, lost data): the caller writes it the ordinary way.
    /// </summary>
    public bool TryWriteInline(ulong inode, long offset, ReadOnlySpan<byte> data, CommitOptions options,
        Action<Transaction, ulong>? alsoInTransaction, out CommitResult result)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        result = default;
        var limit = InlineLimit;
        var end = offset + (long)data.Length;
        if (data.IsEmpty || end > limit)
            return false;
        var writer = Writer;
        var bytes = data.ToArray();
        var limitSectors = (ulong)((limit + Sector - 1) / Sector);
        return writer.Transact(t =>
        {
            var sectors = (ulong)((end + Sector - 1) / Sector);
            var held = t.Range(BtreeId.Extents, EndPos(inode, 1), EndPos(inode, ulong.MaxValue - 1), InlineData.MaxSectors + 1)
                .TakeWhile(k => k.Key.Pos.Offset - k.Key.Size < limitSectors)
                .ToList();
            foreach (var (key, value) in held)
            {
                if (key.Type != KeyType.InlineData || key.Pos.Offset > limitSectors || value.Length != (int)key.Size * Sector)
                    return false;
                sectors = Math.Max(sectors, key.Pos.Offset);
            }
            var inline = new byte[(int)sectors * Sector];
            foreach (var (key, value) in held)
                value.CopyTo(inline, (int)(key.Pos.Offset - key.Size) * Sector);
            bytes.CopyTo(inline, (int)offset);
            ExtentEdits.Clear(t, inode, 0, sectors, int.MaxValue);
            t.SetOwned(BtreeId.Extents, new Bkey(EndPos(inode, sectors), KeyType.InlineData, (uint)sectors), inline);
            alsoInTransaction?.Invoke(t, sectors * Sector);
            return true;
        }, options, out result);
    }

    /// <summary>
    /// Writes whole sectors starting at <paramref name="startSector"/> as runs, committing every
    /// <see cref="RunsPerTransaction"/> of them. Runs of a batch that follow each other on the
    /// device (one bucket, and the next when it is adjacent) go down in one device write, and every
    /// write of a batch completes before the batch commits (rule g). A bucket the batch fills is
    /// handed to the device's write-back at once (<see cref="IBlockDevice.StartWriteback"/>): a large
    /// write then reaches the media while its later runs are checksummed and committed, instead of
    /// all of it inside the flush that makes it durable. Durability is unchanged: that flush (the
    /// pre-flush of the next flush entry) is still what makes the data durable.
    /// </summary>
    private CommitResult WriteGroup(Transactor writer, ulong inode, ulong startSector, ReadOnlySpan<byte> data, SpaceReservation reservation,
        CommitOptions options, Action<Transaction, ulong>? also)
    {
        var runs = new List<(Bkey Key, byte[] Value)>(RunsPerTransaction);
        var pending = new PendingWrite();
        CommitResult last = default;
        var sector = startSector;
        var at = 0;
        while (at < data.Length)
        {
            var want = (uint)Math.Min(ExtentValue.MaxCoveredSectors, (data.Length - at) / Sector);
            var ptr = _space.Allocate(_space.UserWrites, want, out var granted);
            reservation.Consume(granted);
            var bytes = (int)granted * Sector;
            if (!pending.TryExtend(ptr, at, bytes))
            {
                WritePending(ref pending, data);
                pending = new PendingWrite(ptr, at, bytes);
            }
            var value = new ExtentValue
            {
                ChecksumType = ChecksumType,
                CoveredSectors = granted,
                Window = 0,
                Checksum = Checksums.Compute(ChecksumType, data.Slice(at, bytes)),
                Ptrs = [ptr],
            };
            runs.Add((new Bkey(EndPos(inode, sector + granted), KeyType.Extent, granted), value.ToBytes()));
            sector += granted;
            at += bytes;
            var layout = _space.Layout[ptr.Device];
            if ((ptr.OffsetSectors + granted) % layout.BucketSectors == 0)
            {
                // The run filled its bucket (a run never spans two): nothing more lands in it before it is reused.
                WritePending(ref pending, data);
                _device.StartWriteback(layout.BucketOffset(layout.BucketOf(ptr.OffsetSectors)), layout.BucketSize);
            }
            if (runs.Count == RunsPerTransaction || at == data.Length)
            {
                WritePending(ref pending, data);
                last = Commit(writer, inode, runs, options, also);
                runs.Clear();
            }
        }
        return last;
    }

    /// <summary>
    /// Commits the extents of a batch of runs, which follow each other in the file: whatever the
    /// batch's range overlaps is cleared once (one walk of the extents after it, not one per run),
    /// then each run's extent is set.
    /// </summary>
    private static CommitResult Commit(Transactor writer, ulong inode, List<(Bkey Key, byte[] Value)> runs, CommitOptions options,
        Action<Transaction, ulong>? also)
    {
        var start = runs[0].Key.Pos.Offset - runs[0].Key.Size;
        var end = runs[^1].Key.Pos.Offset;
        writer.Transact(t =>
        {
            ExtentEdits.Clear(t, inode, start, end, int.MaxValue);
            foreach (var (key, value) in runs)
                t.Set(BtreeId.Extents, key, value);
            also?.Invoke(t, end * Sector);
            return true;
        }, options, out var result);
        return result;
    }

    /// <summary>Runs that follow each other on one device and in the data, not yet written.</summary>
    private struct PendingWrite(DevicePtr first, int dataOffset, int length)
    {
        public DevicePtr First { get; } = first;

        public int DataOffset { get; } = dataOffset;

        public int Length { get; private set; } = length;

        /// <summary>Adds a run when it starts where the pending bytes end, on the device and in the data.</summary>
        public bool TryExtend(DevicePtr ptr, int dataOffset, int length)
        {
            if (Length == 0 || ptr.Device != First.Device || ptr.OffsetBytes != First.OffsetBytes + Length || dataOffset != DataOffset + Length)
                return false;
            Length += length;
            return true;
        }
    }

    private void WritePending(ref PendingWrite pending, ReadOnlySpan<byte> data)
    {
        if (pending.Length == 0)
            return;
        WriteData(pending.First, data.Slice(pending.DataOffset, pending.Length));
        pending = default;
    }

    private void WriteData(DevicePtr ptr, ReadOnlySpan<byte> run)
    {
        try
        {
            _device.Write(ptr.OffsetBytes, run);
        }
        catch (IOException ex)
        {
            throw new BasaltException(ErrorCode.IoError, $"{_device.Name}: data write of {run.Length} bytes at {ptr.ToText()} failed: {ex.Message}", ex);
        }
    }

    // ---- Punch ---------------------------------------------------------------------------------

    /// <summary>
    /// Makes [<paramref name="offset"/>, +<paramref name="length"/>) of <paramref name="inode"/> a
    /// hole: extents inside are deleted, extents across its ends trimmed; partial sectors at the
    /// ends are zeroed. Large ranges commit in several transactions.
    /// </summary>
    public void Punch(ulong inode, long offset, long length, CommitOptions options = default, Action<Transaction>? alsoInTransaction = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length == 0)
            return;
        var writer = Writer;
        var end = checked(offset + length);
        var firstWhole = (ulong)((offset + Sector - 1) / Sector);
        var endWhole = (ulong)(end / Sector);
        if (firstWhole >= endWhole)
        {
            ZeroPartial(inode, offset, end, options, alsoInTransaction);
            return;
        }
        if ((long)firstWhole * Sector > offset)
            ZeroPartial(inode, offset, (long)firstWhole * Sector, options, alsoInTransaction);
        if ((long)endWhole * Sector < end)
            ZeroPartial(inode, (long)endWhole * Sector, end, options, alsoInTransaction);
        var next = firstWhole;
        while (next < endWhole)
        {
            var from = next;
            next = writer.Transact(t =>
            {
                var clear = ExtentEdits.Clear(t, inode, from, endWhole, PunchBatch);
                alsoInTransaction?.Invoke(t);
                return clear;
            }, options);
        }
    }

    /// <summary>Removes every extent of <paramref name="inode"/>.</summary>
    public void DeleteAll(ulong inode, CommitOptions options = default) => Punch(inode, 0, long.MaxValue / Sector * Sector, options);

    private void ZeroPartial(ulong inode, long from, long to, CommitOptions options, Action<Transaction>? also)
    {
        // Only where data exists: a hole or a reservation already reads as zeros, and writing
        // there would allocate (past the end of a file, data where only a reservation may be).
        var first = from / Sector * Sector;
        var mapped = false;
        var inline = false;
        foreach (var (key, _) in Map(inode, (ulong)(first / Sector), (ulong)(first / Sector) + 1))
        {
            mapped |= key.Type.HoldsData();
            inline |= key.Type == KeyType.InlineData;
        }
        if (!mapped || (inline && TryZeroInline(inode, from, to, options, also)))
            return;
        var zeros = new byte[to - from];
        Write(inode, from, zeros, options, also is null ? null : (t, _) => also(t));
    }

    /// <summary>
    /// Zeroes bytes [<paramref name="from"/>, <paramref name="to"/>) of one sector in place when
    /// inline data holds that sector (its key keeps its range, only the bytes change); false when
    /// something else does.
    /// </summary>
    private bool TryZeroInline(ulong inode, long from, long to, CommitOptions options, Action<Transaction>? also)
    {
        var sector = (ulong)(from / Sector);
        return Writer.Transact(t =>
        {
            var keys = t.Range(BtreeId.Extents, EndPos(inode, sector + 1), EndPos(inode, ulong.MaxValue - 1), 1);
            if (keys.Count == 0)
                return false;
            var (key, value) = keys[0];
            var ks = key.Pos.Offset - key.Size;
            if (key.Type != KeyType.InlineData || ks > sector || value.Length != (int)key.Size * Sector)
                return false;
            var zeroed = (byte[])value.Clone();
            zeroed.AsSpan((int)(from - ((long)ks * Sector)), (int)(to - from)).Clear();
            t.SetOwned(BtreeId.Extents, key, zeroed);
            also?.Invoke(t);
            return true;
        }, options);
    }

    // ---- Read ----------------------------------------------------------------------------------

    /// <summary>
    /// Reads [<paramref name="offset"/>, +destination.Length) of <paramref name="inode"/>; holes
    /// read as zeros. Throws IoError (naming the inode and offset) when data is lost or fails
    /// its checksum on every copy; the bytes of <paramref name="destination"/> from the failing
    /// extent on are then zeros.
    /// </summary>
    /// <remarks>
    /// A read that lies inside one extent (every read of at most a run that does not cross an
    /// extent's end: the common random read) is one btree search for the first key after its
    /// start, which copies that key's value only, then one device read of the run, verified; it
    /// allocates nothing (<see cref="TryReadWithinOneExtent"/>). Every other read, and any such
    /// read that meets something unusual, walks the keys (<see cref="ReadExtents"/>).
    /// </remarks>
    public void Read(ulong inode, long offset, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (destination.IsEmpty)
            return;
        if (destination.Length <= ExtentValue.MaxCoveredSectors * Sector && TryReadWithinOneExtent(inode, offset, destination))
            return;
        ReadExtents(inode, offset, destination);
    }

    /// <summary>
    /// The single-extent read: true when <paramref name="destination"/> was filled, with verified
    /// data or the zeros of a hole. False, having written nothing but zeros into it, when the read
    /// is anything else (several keys, a hole and data, a reflink, a reservation, an error key,
    /// a malformed value, a stale first pointer) or its first pointer's read failed or did not
    /// verify: <see cref="ReadExtents"/> then does it again the general way (other copies, counters,
    /// the error).
    /// </summary>
    [SkipLocalsInit] // the value buffer is read only where the lookup copied the value into it
    private bool TryReadWithinOneExtent(ulong inode, long offset, Span<byte> destination)
    {
        var end = offset + destination.Length;
        var firstSector = (ulong)(offset / Sector);
        var endSector = (ulong)((end + Sector - 1) / Sector);
        Span<byte> value = stackalloc byte[ExtentValue.MaxEncodedSize];
        // Extents are indexed by their end: the first key after the first sector is the one that may cover it.
        var found = _extents.TryGetAtOrAfter(EndPos(inode, firstSector + 1), EndPos(inode, ulong.MaxValue - 1), value, out var key, out var length);
        var ks = key.Pos.Offset - key.Size;
        if (!found || ks >= endSector)
        {
            destination.Clear(); // a hole
            return true;
        }
        if (key.Type != KeyType.Extent || length > value.Length || ks > firstSector || key.Pos.Offset < endSector ||
            !ExtentValue.IsWellFormed(value[..length], out _))
        {
            return false;
        }
        var extent = new ExtentValueView(value[..length]);
        var covered = extent.CoveredSectors;
        if ((ulong)extent.Window + key.Size > covered)
            return false;
        var ptr = extent.Ptr(0);
        if (_space.IsStale(ptr))
            return false;
        var runBytes = (int)covered * Sector;
        // The destination's first byte within the run: the window's start plus the offset into the key.
        var runOffset = (int)((long)extent.Window * Sector + (offset - (long)ks * Sector));
        if (runOffset == 0 && runBytes == destination.Length)
            return TryReadVerified(ptr, extent, destination);
        var run = ArrayPool<byte>.Shared.Rent(ExtentValue.MaxCoveredSectors * Sector);
        try
        {
            if (!TryReadVerified(ptr, extent, run.AsSpan(0, runBytes)))
                return false;
            run.AsSpan(runOffset, destination.Length).CopyTo(destination);
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(run);
        }
    }

    /// <summary>Reads the whole run of <paramref name="extent"/> at <paramref name="ptr"/> and verifies it; false (and zeros) on a failed read or a mismatch.</summary>
    private bool TryReadVerified(DevicePtr ptr, in ExtentValueView extent, Span<byte> run)
    {
        try
        {
            ReadDevice(ptr.OffsetBytes, run);
        }
        catch (Exception e) when (e is IOException or BasaltException { Code: ErrorCode.IoError })
        {
            run.Clear();
            return false;
        }
        if (Checksums.Compute(extent.ChecksumType, run) == extent.Checksum)
            return true;
        run.Clear();
        return false;
    }

    private void ReadDevice(long offset, Span<byte> buffer)
    {
        if (_readFile is { } file)
            file.Read(offset, buffer);
        else
            _readDevice.Read(offset, buffer);
    }

    /// <summary>
    /// The general read: walks the extents over the range with the thread's iterator.
    /// </summary>
    /// <remarks>
    /// It allocates only the parsed extent values: the btree iterator is kept per thread,
    /// and runs that lie whole inside <paramref name="destination"/> are read straight into it;
    /// consecutive such runs that are also consecutive on the device (a file written sequentially)
    /// are read with one device read and then verified run by run. Anything else (a trimmed window,
    /// a partial run at either end, a stale first pointer, a failed read or checksum) goes through
    /// <see cref="ReadRun"/>, which tries every copy in order as a read of that run alone does.
    /// </remarks>
    private void ReadExtents(ulong inode, long offset, Span<byte> destination)
    {
        var end = offset + destination.Length;
        var firstSector = (ulong)(offset / Sector);
        var endSector = (ulong)((end + Sector - 1) / Sector);
        var last = EndPos(inode, ulong.MaxValue - 1);
        var scratch = _readScratch.Value!;
        var it = scratch.Iterator;
        // A small read needs one or two extents: copy no more keys than that on the first refill.
        it.Seek(EndPos(inode, firstSector + 1), (int)Math.Clamp(((endSector - firstSector) / 8) + 1, 1, 16));
        var batch = new ContiguousRuns(this, inode, offset, destination, scratch.Runs);
        var filled = offset; // destination bytes before this are zeros or data (verified, or pending in the batch)
        try
        {
            while (it.MoveNext())
            {
                var key = it.Key;
                if (key.Pos > last)
                    break;
                var ks = key.Pos.Offset - key.Size;
                var ke = key.Pos.Offset;
                if (ks >= endSector)
                    break;
                var from = Math.Max((long)ks * Sector, offset);
                var to = Math.Min((long)ke * Sector, end);
                if (from > filled)
                {
                    batch.Flush();
                    destination[(int)(filled - offset)..(int)(from - offset)].Clear();
                }
                if (key.Type == KeyType.Error)
                {
                    batch.Flush();
                    throw new BasaltException(ErrorCode.IoError,
                        $"inode {inode} offset {from}: data lost ({key.ToText()}: an earlier repair found it unreadable)");
                }
                if (key.Type == KeyType.ReflinkP)
                {
                    batch.Flush();
                    ReadIndirect(inode, from, to, key, it.Value, destination[(int)(from - offset)..]);
                    filled = to;
                    continue;
                }
                if (key.Type == KeyType.InlineData)
                {
                    batch.Flush();
                    var inline = it.Value;
                    if (inline.Length != (int)key.Size * Sector)
                        throw new BasaltException(ErrorCode.IoError, $"inode {inode} offset {from}: inline data {key.ToText()} holds {inline.Length} bytes");
                    inline.Slice((int)(from - ((long)ks * Sector)), (int)(to - from)).CopyTo(destination[(int)(from - offset)..]);
                    filled = to;
                    continue;
                }
                if (key.Type != KeyType.Extent)
                {
                    // reservations read as zeros
                    batch.Flush();
                    destination[(int)(from - offset)..(int)(to - offset)].Clear();
                    filled = to;
                    continue;
                }
                if (!ExtentValue.TryRead(it.Value, out var extent, out var problem))
                {
                    batch.Flush();
                    throw new BasaltException(ErrorCode.IoError, $"inode {inode} offset {from}: extent {key.ToText()} is invalid: {problem}");
                }
                var whole = extent.Window == 0 && key.Size == extent.CoveredSectors && from == (long)ks * Sector && to == (long)ke * Sector;
                if (!whole || _space.IsStale(extent.Ptrs[0]))
                {
                    batch.Flush();
                    ReadWindow(inode, from, to, key, extent, destination[(int)(from - offset)..]);
                }
                else
                {
                    batch.Add(from, key, extent);
                }
                filled = to;
            }
            batch.Flush();
            if (filled < end)
                destination[(int)(filled - offset)..].Clear();
        }
        catch (BasaltException)
        {
            // Never leave unverified bytes behind: everything from the first unfinished run on reads as zeros.
            destination[(int)(Math.Min(filled, batch.FirstUnverified) - offset)..].Clear();
            throw;
        }
    }

    /// <summary>The live window [from, to) of one extent through a whole-run buffer: read, verified, copied out.</summary>
    private void ReadWindow(ulong inode, long from, long to, Bkey key, ExtentValue extent, Span<byte> destination)
    {
        var run = ArrayPool<byte>.Shared.Rent(ExtentValue.MaxCoveredSectors * Sector);
        try
        {
            ReadRun(inode, from, key, extent, run);
            var runOffset = ((long)extent.Window * Sector) + (from - ((long)(key.Pos.Offset - key.Size) * Sector));
            run.AsSpan((int)runOffset, (int)(to - from)).CopyTo(destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(run);
        }
    }

    /// <summary>
    /// Bytes [from, to) of a file range that is a reflink pointer: the indirect extents it names,
    /// each read as an extent of the file would be (the whole run, verified, the window copied out).
    /// </summary>
    private void ReadIndirect(ulong inode, long from, long to, Bkey key, ReadOnlySpan<byte> value, Span<byte> destination)
    {
        if (!ReflinkPointer.TryRead(value, out var pointer, out var problem) || (problem = pointer.CheckAgainstKey(key.Size)) is not null)
            throw new BasaltException(ErrorCode.IoError, $"inode {inode} offset {from}: reflink pointer {key.ToText()} is invalid: {problem}");
        var ks = key.Pos.Offset - key.Size;
        var firstSector = (ulong)(from / Sector);
        var endSector = (ulong)((to + Sector - 1) / Sector);
        // File sector f maps to reflink sector pointer.Idx + (f - ks).
        var rStart = pointer.Idx + (firstSector - ks);
        var rEnd = pointer.Idx + (endSector - ks);
        var filled = from;
        var it = _engine[BtreeId.Reflink].Iterate(ReflinkSpace.FirstOverlapping(rStart), ReflinkSpace.Last);
        while (filled < to && it.MoveNext())
        {
            var v = it.Key;
            var vs = v.Pos.Offset - v.Size;
            if (vs >= rEnd)
                break;
            var a = Math.Max(vs, rStart);
            var b = Math.Min(v.Pos.Offset, rEnd);
            var pieceFrom = Math.Max(from, (long)(ks + (a - pointer.Idx)) * Sector);
            var pieceTo = Math.Min(to, (long)(ks + (b - pointer.Idx)) * Sector);
            if (pieceFrom > filled)
                break; // a gap: reported below
            if (v.Type != KeyType.ReflinkV)
            {
                throw new BasaltException(ErrorCode.IoError,
                    $"inode {inode} offset {pieceFrom}: data lost ({v.ToText()} in the reflink btree: an earlier repair found it unreadable)");
            }
            if (!ReflinkIndirect.TryRead(it.Value, out _, out var extent, out problem))
                throw new BasaltException(ErrorCode.IoError, $"inode {inode} offset {pieceFrom}: indirect extent {v.ToText()} is invalid: {problem}");
            // The piece as an extent of this file: same run, window moved to the piece's first sector.
            var fileEnd = ks + (b - pointer.Idx);
            var asFileKey = new Bkey(EndPos(inode, fileEnd), KeyType.Extent, (uint)(b - a));
            ReadWindow(inode, pieceFrom, pieceTo, asFileKey, extent.WithWindow(extent.Window + (uint)(a - vs)), destination[(int)(pieceFrom - from)..]);
            filled = pieceTo;
        }
        if (filled < to)
        {
            throw new BasaltException(ErrorCode.IoError,
                $"inode {inode} offset {filled}: reflink pointer {key.ToText()} names reflink sector {pointer.Idx + ((ulong)(filled / Sector) - ks)}, where no indirect extent is");
        }
    }

    /// <summary>What a thread's reads reuse: the extents iterator (repositioned by Seek) and the pending-run slots.</summary>
    private sealed class ReadScratch(BtreeIterator iterator)
    {
        public BtreeIterator Iterator { get; } = iterator;
        public (Bkey Key, ExtentValue Extent)[] Runs { get; } = new (Bkey, ExtentValue)[MaxRunsPerTransaction];
    }

    /// <summary>
    /// Whole runs that follow each other both in the destination and on one device (through their
    /// first pointer), waiting to be read with one device read. <see cref="FirstUnverified"/> is the
    /// file offset from which the destination may hold bytes not yet verified (MaxValue: none).
    /// </summary>
    private ref struct ContiguousRuns(ExtentStore store, ulong inode, long offset, Span<byte> destination, (Bkey Key, ExtentValue Extent)[] runs)
    {
        private readonly Span<byte> _destination = destination;
        private int _count;
        private long _from;
        private long _to;
        private long _deviceEnd;
        private byte _device;

        public long FirstUnverified { get; private set; } = long.MaxValue;

        public void Add(long from, Bkey key, ExtentValue extent)
        {
            var ptr = extent.Ptrs[0];
            if (_count > 0 && (_count == runs.Length || from != _to || ptr.Device != _device || ptr.OffsetBytes != _deviceEnd))
                Flush();
            if (_count == 0)
            {
                _from = from;
                _to = from;
                _device = ptr.Device;
                _deviceEnd = ptr.OffsetBytes;
                FirstUnverified = from;
            }
            runs[_count++] = (key, extent);
            var bytes = (long)extent.CoveredSectors * Sector;
            _to += bytes;
            _deviceEnd += bytes;
        }

        public void Flush()
        {
            if (_count == 0)
                return;
            var read = true;
            try
            {
                store.ReadDevice(runs[0].Extent.Ptrs[0].OffsetBytes, _destination[(int)(_from - offset)..(int)(_to - offset)]);
            }
            catch (Exception e) when (e is IOException or BasaltException { Code: ErrorCode.IoError })
            {
                read = false; // each run again on its own: ReadRun reports the failure (or finds another copy)
            }
            var at = _from;
            for (var i = 0; i < _count; i++)
            {
                var (key, extent) = runs[i];
                runs[i] = default;
                var bytes = (int)extent.CoveredSectors * Sector;
                var run = _destination.Slice((int)(at - offset), bytes);
                if (!read || Checksums.Compute(extent.ChecksumType, run) != extent.Checksum)
                {
                    run.Clear();
                    store.ReadWindow(inode, at, at + bytes, key, extent, run);
                }
                at += bytes;
                FirstUnverified = at;
            }
            _count = 0;
            FirstUnverified = long.MaxValue;
        }
    }

    /// <summary>Reads and verifies the whole run of <paramref name="extent"/> into <paramref name="buffer"/> from the first good copy.</summary>
    private void ReadRun(ulong inode, long fileOffset, Bkey key, ExtentValue extent, byte[] buffer)
    {
        var bytes = (int)extent.CoveredSectors * Sector;
        string? failure = null;
        foreach (var ptr in extent.Ptrs)
        {
            if (_space.IsStale(ptr))
            {
                Interlocked.Increment(ref _staleSkipped);
                failure ??= $"pointer {ptr.ToText()} is stale (its bucket was reused)";
                continue;
            }
            try
            {
                ReadDevice(ptr.OffsetBytes, buffer.AsSpan(0, bytes));
            }
            catch (Exception ex) when (ex is IOException or BasaltException { Code: ErrorCode.IoError })
            {
                failure = $"read of {ptr.ToText()} failed: {ex.Message}";
                continue;
            }
            var sum = Checksums.Compute(extent.ChecksumType, buffer.AsSpan(0, bytes));
            if (sum == extent.Checksum)
                return;
            Interlocked.Increment(ref _checksumErrors);
            failure = $"checksum mismatch at {ptr.ToText()} ({extent.ChecksumType.ToText()} {sum:x}, expected {extent.Checksum:x})";
        }
        throw new BasaltException(ErrorCode.IoError, $"inode {inode} offset {fileOffset}: {failure ?? "extent has no pointer"} ({key.ToText()})");
    }

    /// <summary>The extents (and error / reservation keys) of <paramref name="inode"/> overlapping sectors [start, end), in order.</summary>
    public IEnumerable<(Bkey Key, byte[] Value)> Map(ulong inode, ulong start, ulong end)
    {
        if (start >= end)
            yield break;
        var it = _engine[BtreeId.Extents].Iterate(EndPos(inode, start + 1), EndPos(inode, ulong.MaxValue - 1));
        while (it.MoveNext())
        {
            var key = it.Key;
            if (key.Pos.Offset - key.Size >= end)
                yield break;
            yield return (key, it.Value.ToArray());
        }
    }

    // ---- Copygc and gc_gens (ISpaceOwners) ------------------------------------------------------

    /// <summary>
    /// Moves the live data of every extent (and indirect extent) with a pointer into
    /// <paramref name="bucket"/> to the copygc write point: the live window is read (verified) and
    /// written as new runs, and the key is replaced in one transaction, only if it has not changed
    /// meanwhile. An indirect extent's pieces keep its refcount (every pointer that referenced it
    /// references all of its pieces: its padded range covers them).
    /// </summary>
    public long Evacuate(BucketRef bucket)
    {
        if (_transactor is null)
            return 0;
        long moved = 0;
        foreach (var owner in BucketOwners.List(_engine, _space.Layout, bucket))
        {
            if (owner.Backpointer.Btree is BtreeId.Extents or BtreeId.Reflink && owner.Backpointer.Level == 0)
                moved += MoveExtent(bucket, owner.Backpointer.Btree, owner.Backpointer.Pos);
        }
        return moved;
    }

    private long MoveExtent(BucketRef bucket, BtreeId btree, Bpos owner)
    {
        var indirect = btree == BtreeId.Reflink;
        // The key (its size) and value at the owner's position, in one lookup.
        var it = _engine[btree].Iterate(owner, owner);
        if (!it.MoveNext() || it.Key.Type != (indirect ? KeyType.ReflinkV : KeyType.Extent))
            return 0;
        var key = it.Key;
        var valueBytes = it.Value.ToArray();
        var extentBytes = indirect ? ReflinkIndirect.ExtentBytes(valueBytes).ToArray() : valueBytes;
        if (!ExtentValue.TryRead(extentBytes, out var extent, out _))
            return 0;
        var dev = _space.Layout[bucket.Device];
        if (!extent.Ptrs.Any(p => p.Device == bucket.Device && dev.BucketOf(p.OffsetSectors) == bucket.Bucket && !p.Cached))
            return 0;
        var run = ArrayPool<byte>.Shared.Rent(ExtentValue.MaxCoveredSectors * Sector);
        try
        {
            try
            {
                ReadRun(owner.Inode, (long)(key.Pos.Offset - key.Size) * Sector, key, extent, run);
            }
            catch (BasaltException ex) when (ex.Code == ErrorCode.IoError)
            {
                return 0; // unreadable data stays where it is; fsck and reads report it
            }
            var live = run.AsSpan((int)extent.Window * Sector, (int)key.Size * Sector);
            using var reservation = _space.Reserve(key.Size, Watermark.Reserve);
            var checksumType = extent.ChecksumType == ChecksumType.None ? ChecksumType : extent.ChecksumType;
            var pieces = new List<(Bkey Key, ExtentValue Value)>();
            var start = key.Pos.Offset - key.Size;
            var at = 0;
            while (at < live.Length)
            {
                var want = (uint)((live.Length - at) / Sector);
                var ptr = _space.Allocate(_space.CopygcWrites, want, out var granted);
                reservation.Consume(granted);
                var piece = live.Slice(at, (int)granted * Sector);
                WriteData(ptr, piece);
                var value = new ExtentValue
                {
                    ChecksumType = checksumType,
                    CoveredSectors = granted,
                    Checksum = Checksums.Compute(checksumType, piece),
                    Ptrs = [ptr],
                };
                var pieceEnd = start + (ulong)(at / Sector) + granted;
                var piecePos = indirect ? ReflinkSpace.EndPos(pieceEnd) : EndPos(owner.Inode, pieceEnd);
                pieces.Add((new Bkey(piecePos, indirect ? KeyType.ReflinkV : KeyType.Extent, granted), value));
                at += piece.Length;
            }
            return _transactor!.Transact(t =>
            {
                if (!t.TryGet(btree, owner, out var k, out var current) || k.Size != key.Size || k.Type != key.Type ||
                    !(indirect ? ReflinkIndirect.ExtentBytes(current) : current).SequenceEqual(extentBytes))
                {
                    return 0L;
                }
                if (indirect)
                {
                    // Indirect extents have no trigger: release the old run and charge the pieces here.
                    var refcount = ReflinkIndirect.Refcount(current);
                    ExtentTriggers.ChargeIndirect(t, k, extent, -1);
                    t.Delete(btree, owner);
                    foreach (var (pk, pv) in pieces)
                    {
                        t.Set(btree, pk, ReflinkIndirect.ToBytes(refcount, pv));
                        ExtentTriggers.ChargeIndirect(t, pk, pv, +1);
                    }
                    return (long)key.Size;
                }
                foreach (var (pk, pv) in pieces)
                {
                    ExtentEdits.Clear(t, owner.Inode, pk.Pos.Offset - pk.Size, pk.Pos.Offset, int.MaxValue);
                    t.Set(btree, pk, pv.ToBytes());
                }
                return (long)key.Size;
            });
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(run);
        }
    }

    /// <summary>
    /// gc_gens: for every bucket, the oldest gen any pointer still names (its own gen when none
    /// does); alloc keys whose oldest_gen differs are rewritten, which lets buckets out of
    /// need_gc_gens. Returns the alloc keys changed.
    /// </summary>
    public int RunGcGens()
    {
        if (_transactor is null)
            return 0;
        var layout = _space.Layout;
        var behind = layout.Devices.Select(d => new byte[d.Nbuckets]).ToArray();
        foreach (var btree in (ReadOnlySpan<BtreeId>)[BtreeId.Extents, BtreeId.Reflink])
        {
            var it = _engine[btree].Iterate(Bpos.Min, Bpos.Max);
            while (it.MoveNext())
            {
                var bytes = it.Key.Type switch
                {
                    KeyType.Extent => it.Value,
                    KeyType.ReflinkV => ReflinkIndirect.ExtentBytes(it.Value),
                    _ => [],
                };
                if (bytes.IsEmpty || !ExtentValue.TryRead(bytes, out var e, out _))
                    continue;
                foreach (var p in e.Ptrs)
                {
                    if (!layout.TryGet(p.Device, out var dev) || dev.BucketOf(p.OffsetSectors) >= dev.Nbuckets)
                        continue;
                    var b = dev.BucketOf(p.OffsetSectors);
                    var distance = Gens.After(_space.GenOf(new BucketRef(p.Device, b)), p.Gen);
                    if (distance > behind[p.Device][b])
                        behind[p.Device][b] = (byte)distance;
                }
            }
        }
        var changed = 0;
        var pending = new List<(BucketRef Bucket, byte Oldest)>();
        var alloc = _engine[BtreeId.Alloc].Iterate(Bpos.Min, Bpos.Max);
        while (alloc.MoveNext())
        {
            if (!SpacePositions.TryBucketOf(alloc.Key.Pos, out var b) || !layout.TryGet(b.Device, out var dev) || b.Bucket >= dev.Nbuckets ||
                !AllocValue.TryRead(alloc.Value, out var a, out _))
            {
                continue;
            }
            var oldest = (byte)(a.Gen - behind[b.Device][b.Bucket]);
            if (oldest != a.OldestGen)
                pending.Add((b, oldest));
        }
        for (var i = 0; i < pending.Count; i += _space.Batch)
        {
            var batch = pending.GetRange(i, Math.Min(_space.Batch, pending.Count - i));
            changed += _transactor.Transact(t =>
            {
                foreach (var (b, oldest) in batch)
                {
                    var a = SpaceTriggers.ReadAlloc(t, layout[b.Device], b);
                    a.OldestGen = oldest;
                    a.DataType = a.DeriveType(a.DataType.IsEmpty() ? BucketDataType.User : a.DataType);
                    SpaceTriggers.WriteAlloc(t, b, a);
                }
                return batch.Count;
            });
        }
        return changed;
    }
}
