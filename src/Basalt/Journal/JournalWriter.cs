// The journal at run time: reservations in the open entry, the writer, flushes, pins and the ring.
//
// Commits (transactions, and the engine's interior updates) append their keys to the open entry
// in memory, under the engine's writer gate, so the journal's seq order is the commit order. An
// entry is closed when it is full, when someone waits for a flush, or when the flush delay has
// passed with commits not yet durable; closed entries are written in seq order by one writer at
// a time: the writer thread (the flush delay, full entries), or a commit waiting for a flush when
// no one else is writing, which then writes the entries itself instead of handing them to the
// thread and waiting to be woken (in the deterministic step mode tests use there is no thread and
// the caller always writes). Every entry carries every btree's root, a timestamp and any new
// blacklist range.
//
// Flush entries are the durability points: the writer issues a device flush before one when
// anything was written since the last flush completed (rule g), writes it, and flushes again; all
// entries up to it are then durable. Commits that arrive while a flush is in flight share the
// next one (group commit). A waiter never holds an engine lock.
//
// Pins: whatever holds journaled state not yet written back pins the oldest seq it needs (a dirty
// node, keys recovery could not replay). last_seq, the oldest pinned seq, goes into each entry;
// a bucket is reused only when a durable flush entry's last_seq has passed every entry in it
// (rule f), or a checkpoint covered them. Ordinary commits leave a reserve of buckets free for
// the interior updates reclaim needs to release pins; a commit that finds no room restarts and
// waits for reclaim (JournalFull).
using System.Buffers;
using System.Diagnostics;
using Basalt.Btree;
using Basalt.Devices;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Journal;

/// <summary>How the journal runs. Defaults are fixed here; nothing is read from the environment.</summary>
public sealed record JournalOptions
{
    /// <summary>Commits not asked to be flushed become durable within this delay (a flush entry at least this often).</summary>
    public TimeSpan FlushDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How often reclaim looks at the journal's fill and the age of dirty nodes.</summary>
    public TimeSpan ReclaimInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Dirty nodes pinning commits older than this are written back even when the journal has room.</summary>
    public TimeSpan WriteBackAge { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// At most this many nodes per reclaim write-back round (writers wait while a round captures);
    /// when more are dirty, never-written nodes go first, then those pinning the oldest seqs.
    /// </summary>
    public int WriteBackRoundNodes { get; init; } = 512;

    /// <summary>
    /// Deterministic step mode (tests): no writer or reclaim thread. Entries are written when a commit
    /// waits for a flush, when the journal needs room, or when the caller steps the writer.
    /// </summary>
    public bool Manual { get; init; }

    /// <summary>Debug-only ordering bugs for the crash suite's must-fail checks; all off by default.</summary>
    internal JournalDebugFaults DebugFaults { get; init; } = JournalDebugFaults.None;
}

/// <summary>Debug-only ordering bugs of the journal (see BtreeDebugFaults for the engine's).</summary>
internal sealed record JournalDebugFaults
{
    public static JournalDebugFaults None { get; } = new();

    /// <summary>Rule (g): a flush entry is written without the device flush before it.</summary>
    public bool SkipPreFlush { get; init; }

    /// <summary>Rule (f): a bucket is reused once the in-memory last_seq passed it, before a durable flush entry says so.</summary>
    public bool ReuseBucketBeforeLastSeqDurable { get; init; }
}

/// <summary>Where the journal starts after mount: decided by recovery.</summary>
public sealed record JournalStart
{
    /// <summary>Seq of the first new entry.</summary>
    public required ulong NextSeq { get; init; }

    /// <summary>Ring bucket the first new entry goes to (at its start).</summary>
    public required int RingIndex { get; init; }

    /// <summary>Newest seq of each ring bucket still holding entries recovery may need (0: free).</summary>
    public required ulong[] BucketNewestSeq { get; init; }

    /// <summary>Every commit up to this seq is durable (the end of the replayed window, or the checkpoint).</summary>
    public required ulong DurableSeq { get; init; }

    /// <summary>The oldest seq recovery still needs (the replay window's start).</summary>
    public required ulong LastSeq { get; init; }

    /// <summary>The superblock's checkpoint seq.</summary>
    public required ulong CheckpointSeq { get; init; }

    /// <summary>The current btree roots, written into every entry.</summary>
    public required IReadOnlyList<BtreeRoot> Roots { get; init; }

    /// <summary>Blacklisted seq ranges (recovery's decision); a new range goes into the first entry.</summary>
    public required IReadOnlyList<SeqRange> Blacklist { get; init; }

    public SeqRange? NewBlacklist { get; init; }
}

/// <summary>Counters of the journal.</summary>
public sealed record JournalStats
{
    public long Commits { get; init; }
    public long FlushCommits { get; init; }
    public long EntriesWritten { get; init; }
    public long FlushEntries { get; init; }
    public long BytesWritten { get; init; }
    public long DeviceFlushes { get; init; }
    public long PreFlushesSkipped { get; init; }
    public long JournalFullWaits { get; init; }
    public ulong CommittedSeq { get; init; }
    public ulong DurableSeq { get; init; }
    public ulong LastSeq { get; init; }
    public ulong LastSeqOnDisk { get; init; }
    public int BucketsInUse { get; init; }
    public int Buckets { get; init; }

    /// <summary>Commits per device flush (group commit's effect).</summary>
    public double CommitsPerDeviceFlush => DeviceFlushes == 0 ? 0 : (double)Commits / DeviceFlushes;

    public string ToText() =>
        $"seq {CommittedSeq} (durable {DurableSeq}, last_seq {LastSeq}, on disk {LastSeqOnDisk}), {Commits} commits ({FlushCommits} flushed), " +
        $"{EntriesWritten} entries written ({FlushEntries} flush, {BytesWritten} bytes), {DeviceFlushes} device flushes " +
        $"({PreFlushesSkipped} pre-flushes skipped, {CommitsPerDeviceFlush:F2} commits per flush), {JournalFullWaits} full waits, " +
        $"buckets {BucketsInUse}/{Buckets} in use";

    public override string ToString() => ToText();
}

public sealed class JournalWriter : IBtreeJournal, IDisposable
{
    private const int MaxQueuedEntries = 8;

    private readonly FlushTrackingDevice _device;
    private readonly JournalRing _ring;
    private readonly JournalOptions _options;
    private readonly EmergencyState _emergency;
    private readonly ulong _magic;
    private readonly ChecksumType _checksumType;
    private readonly int _blockSize;
    private readonly object _lock = new();
    private readonly Lock _writeGate = new();
    private readonly Queue<JournalEntryBuilder> _closed = new();
    private readonly SortedDictionary<ulong, int> _pins = [];
    private readonly List<(ulong Seq, ulong ReleasedAt)> _releases = [];
    private readonly Dictionary<BtreeId, BtreeRoot?> _roots = [];
    private readonly ulong[] _bucketNewest;
    private readonly List<SeqRange> _blacklist;
    private readonly List<SeqRange> _blacklistToWrite = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly int _reserveBuckets;
    private readonly int _rootsReserve;
    private JournalEntryBuilder? _open;
    private JournalEntryBuilder? _lastWritten;
    private int _ringIndex;
    private int _offset;
    private bool _inBucket;
    private ulong _nextSeq;
    private ulong _committed;
    private ulong _written;
    private ulong _durable;
    private ulong _lastSeqOnDisk;
    private ulong _checkpointSeq;
    private ulong _flushRequested;
    private TimeSpan _lastFlush;
    private Thread? _writer;
    // One thread at a time writes entries (the writer thread, or a committer waiting for a flush
    // while no one else writes): entries go out in seq order and a flush covers all before it.
    private bool _writing;
    private bool _stopping;
    private bool _started;

    // Counters.
    private long _commits;
    private long _flushCommits;
    private long _entriesWritten;
    private long _flushEntries;
    private long _bytesWritten;
    private long _deviceFlushes;
    private long _preFlushesSkipped;
    private long _fullWaits;

    public JournalWriter(FlushTrackingDevice device, JournalRing ring, JournalStart start, JournalOptions options, EmergencyState emergency,
        ulong magic, ChecksumType checksumType, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(ring);
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(emergency);
        if (ring.Count < 2)
            throw new BasaltException(ErrorCode.InvalidArgument, $"{device.Name}: the journal has {ring.Count} buckets; at least 2 are needed");
        _device = device;
        _ring = ring;
        _options = options;
        _emergency = emergency;
        _magic = magic;
        _checksumType = checksumType;
        _blockSize = blockSize;
        _bucketNewest = (ulong[])start.BucketNewestSeq.Clone();
        _ringIndex = start.RingIndex;
        _offset = 0;
        _nextSeq = start.NextSeq;
        _committed = start.DurableSeq;
        _written = start.DurableSeq;
        _durable = start.DurableSeq;
        _lastSeqOnDisk = start.LastSeq;
        _checkpointSeq = start.CheckpointSeq;
        _blacklist = [.. start.Blacklist];
        if (start.NewBlacklist is { } fresh)
        {
            // Recovery's new range holds from this mount on: a bset carrying one of its seqs is
            // ignored now, as every later mount will ignore it.
            _blacklist.Add(fresh);
            _blacklistToWrite.Add(fresh);
        }
        foreach (var d in BtreeIds.All)
            _roots[d.Id] = null;
        foreach (var r in start.Roots)
            _roots[r.Btree] = r;
        _reserveBuckets = Math.Max(1, ring.Count / 8);
        _rootsReserve = (BtreeIds.All.Count * JournalFormat.RootRecordBytes(BtreePtrValue.SizeFor(1))) +
            JournalFormat.RecordHeaderSize + JournalFormat.DatetimePayloadSize + (4 * (JournalFormat.RecordHeaderSize + JournalFormat.BlacklistPayloadSize));
        MaxCommitBytes = Math.Min(JournalFormat.MaxEntryBytes, ring.BucketSize) - JournalFormat.HeaderSize - _rootsReserve;
        if (MaxCommitBytes < 1024)
        {
            throw new BasaltException(ErrorCode.InvalidArgument,
                $"{device.Name}: journal buckets of {ring.BucketSize} bytes are too small for journal entries");
        }
    }

    /// <summary>Largest commit (encoded key records) one entry can hold.</summary>
    public int MaxCommitBytes { get; }

    /// <summary>The ring this journal writes.</summary>
    public JournalRing Ring => _ring;

    /// <summary>Raised after every flush entry (last_seq on disk may have moved): reclaim looks whether the journal needs room.</summary>
    public event Action? SpaceWanted;

    public ulong DurableSeq
    {
        get
        {
            lock (_lock)
                return _durable;
        }
    }

    public ulong CommittedSeq
    {
        get
        {
            lock (_lock)
                return _committed;
        }
    }

    /// <summary>The oldest seq still needed: the oldest pin, or the next seq when nothing is pinned.</summary>
    public ulong LastSeq
    {
        get
        {
            lock (_lock)
                return CurrentLastSeq(_nextSeq);
        }
    }

    /// <summary>The oldest pinned seq, 0 when nothing is pinned.</summary>
    public ulong OldestPin
    {
        get
        {
            lock (_lock)
                return _pins.Count == 0 ? 0 : _pins.First().Key;
        }
    }

    /// <summary>Fraction of the ring's buckets holding entries that are still needed or not yet reusable.</summary>
    public double Fill
    {
        get
        {
            lock (_lock)
                return (double)(_ring.Count - ReusableBuckets()) / _ring.Count;
        }
    }

    public IReadOnlyList<SeqRange> Blacklist
    {
        get
        {
            lock (_lock)
                return [.. _blacklist];
        }
    }

    public JournalStats Stats
    {
        get
        {
            lock (_lock)
            {
                return new JournalStats
                {
                    Commits = _commits,
                    FlushCommits = _flushCommits,
                    EntriesWritten = _entriesWritten,
                    FlushEntries = _flushEntries,
                    BytesWritten = _bytesWritten,
                    DeviceFlushes = _deviceFlushes,
                    PreFlushesSkipped = _preFlushesSkipped,
                    JournalFullWaits = _fullWaits,
                    CommittedSeq = _committed,
                    DurableSeq = _durable,
                    LastSeq = CurrentLastSeq(_nextSeq),
                    LastSeqOnDisk = _lastSeqOnDisk,
                    BucketsInUse = _ring.Count - ReusableBuckets(),
                    Buckets = _ring.Count,
                };
            }
        }
    }

    public bool IsBlacklisted(ulong seq)
    {
        lock (_lock)
        {
            foreach (var r in _blacklist)
            {
                if (r.Contains(seq))
                    return true;
            }
            return false;
        }
    }

    // ---- Start and stop ----------------------------------------------------------------------

    /// <summary>
    /// Starts writing: the first entry (after recovery: a new seq, carrying any new blacklist range)
    /// is written as a flush entry before this returns, then the writer thread starts (unless manual).
    /// </summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_started)
                throw new InvalidOperationException("the journal is already started");
            if (!OpenEntry(0, useReserve: true))
                throw new BasaltException(ErrorCode.JournalFull, $"{_device.Name}: the journal has no free bucket to start in");
            _started = true;
            _open!.Commits = 1; // the start entry itself must be written
            _committed = _open.Seq;
            _flushRequested = Math.Max(_flushRequested, _open.Seq);
        }
        if (!_options.Manual)
        {
            _writer = new Thread(WriterLoop) { IsBackground = true, Name = "basalt journal writer" };
            _writer.Start();
        }
        WaitDurable(CommittedSeq);
    }

    /// <summary>Makes every commit durable and stops the writer thread.</summary>
    public void Stop()
    {
        if (_started && !_emergency.IsSet)
            WaitDurable(CommittedSeq);
        Abandon();
    }

    /// <summary>Stops the writer without writing anything more (what a crash does; also after emergency read-only).</summary>
    public void Abandon()
    {
        lock (_lock)
        {
            _stopping = true;
            Monitor.PulseAll(_lock);
            // A committer writing an entry finishes it: nothing is written after Abandon returns.
            while (_writing)
                Monitor.Wait(_lock);
        }
        _writer?.Join();
        _writer = null;
        lock (_lock)
        {
            while (_closed.Count > 0)
                _closed.Dequeue().Dispose();
            _open?.Dispose();
            _open = null;
            _lastWritten?.Dispose();
            _lastWritten = null;
        }
    }

    public void Dispose() => Abandon();

    // ---- Commits -----------------------------------------------------------------------------

    /// <summary>Encoded bytes <paramref name="updates"/> take in an entry.</summary>
    public static int CommitBytes(IReadOnlyList<BtreeUpdate> updates)
    {
        var bytes = 0;
        for (var i = 0; i < updates.Count; i++)
        {
            if (i == 0 || updates[i].Btree != updates[i - 1].Btree || updates[i].Level != updates[i - 1].Level)
                bytes += JournalFormat.RecordHeaderSize;
            bytes += BkeyFormat.EncodedSize(updates[i].Value.Length);
        }
        return bytes;
    }

    /// <summary>
    /// Appends a transaction's updates as one commit (called with the engine's writer gate and write
    /// lock held; never waits). False when the journal has no room outside its reserve: the caller
    /// restarts and waits for reclaim. A commit larger than <see cref="MaxCommitBytes"/> is refused.
    /// </summary>
    public bool TryCommit(IReadOnlyList<BtreeUpdate> updates, bool flush, out ulong seq)
    {
        ArgumentNullException.ThrowIfNull(updates);
        var bytes = CommitBytes(updates);
        if (bytes > MaxCommitBytes)
        {
            BasaltException.Throw(ErrorCode.TransactionTooLarge,
                $"a transaction of {updates.Count} updates needs {bytes} bytes of journal; one journal entry holds at most {MaxCommitBytes}");
        }
        lock (_lock)
        {
            _emergency.ThrowIfSet();
            if (!EnsureRoom(bytes, useReserve: false))
            {
                seq = 0;
                _fullWaits++;
                return false;
            }
            var open = _open!;
            for (var i = 0; i < updates.Count; i++)
            {
                var u = updates[i];
                open.AppendKey(u.Btree, u.Level, u.Key, u.Value.Span);
            }
            open.CloseRecord();
            open.Commits++;
            seq = open.Seq;
            CommittedLocked(seq);
            _commits++;
            if (flush)
                _flushCommits++;
            return true;
        }
    }

    public bool TryCommitInterior(InteriorCommit commit, out ulong seq)
    {
        ArgumentNullException.ThrowIfNull(commit);
        var bytes = CommitBytes(commit.Keys) + (commit.VoidLevels.Count * JournalFormat.RecordHeaderSize);
        lock (_lock)
        {
            _emergency.ThrowIfSet();
            if (bytes > MaxCommitBytes || !EnsureRoom(bytes, useReserve: true))
            {
                seq = 0;
                return false;
            }
            var open = _open!;
            foreach (var (btree, level) in commit.VoidLevels)
                open.AppendLevelsVoided(btree, level);
            foreach (var u in commit.Keys)
                open.AppendKey(u.Btree, u.Level, u.Key, u.Value.Span);
            open.CloseRecord();
            foreach (var (btree, root) in commit.Roots)
                _roots[btree] = root;
            open.Commits++;
            seq = open.Seq;
            CommittedLocked(seq);
            return true;
        }
    }

    /// <summary>Records a commit at <paramref name="seq"/> (lock held).</summary>
    private void CommittedLocked(ulong seq)
    {
        // The writer thread waits without a timeout while everything committed is durable; the
        // first commit after that must wake it, or the flush delay never starts counting and a
        // commit nobody flushes stays in memory until some other event wakes the writer.
        var wasIdle = _committed <= _durable;
        _committed = seq;
        if (wasIdle)
            Monitor.PulseAll(_lock);
    }

    /// <summary>
    /// A checkpoint is about to commit <paramref name="roots"/> through the superblock, holding every
    /// commit up to <paramref name="committed"/>: entries closed from now on carry these roots, and the
    /// seq returned (the checkpoint's) covers every entry closed before, which may carry older roots
    /// and hold no later commit. Replay after the checkpoint thus never takes roots older than its own.
    /// </summary>
    public ulong BeginCheckpoint(ulong committed, IReadOnlyList<BtreeRoot> roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        lock (_lock)
        {
            foreach (var key in _roots.Keys.ToList())
                _roots[key] = null;
            foreach (var r in roots)
                _roots[r.Btree] = r;
            var lastClosed = (_open?.Seq ?? _nextSeq) - 1;
            return Math.Max(committed, lastClosed);
        }
    }

    /// <summary>
    /// A checkpoint made every commit up to <paramref name="seq"/> part of the superblock's roots
    /// (<paramref name="roots"/>): no entry up to it is needed any more.
    /// </summary>
    public void Checkpointed(ulong seq, IReadOnlyList<BtreeRoot> roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        lock (_lock)
        {
            _checkpointSeq = Math.Max(_checkpointSeq, seq);
            _releases.Clear();
            foreach (var key in _roots.Keys.ToList())
                _roots[key] = null;
            foreach (var r in roots)
                _roots[r.Btree] = r;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Adds a blacklisted range: recorded in the next entry (the superblock gets it from the mount glue).</summary>
    public void AddBlacklist(SeqRange range)
    {
        lock (_lock)
        {
            _blacklist.Add(range);
            _blacklistToWrite.Add(range);
        }
    }

    // ---- Pins --------------------------------------------------------------------------------

    public void Pin(ulong seq)
    {
        lock (_lock)
        {
            if (seq <= _checkpointSeq)
                throw new InvalidOperationException($"pin of journal seq {seq}, covered by the checkpoint at {_checkpointSeq}");
            _pins[seq] = _pins.GetValueOrDefault(seq) + 1;
        }
    }

    /// <summary>
    /// Releases a pin. The release takes effect from the newest commit on: an entry written before
    /// that commit still carries the seq in its last_seq, because the update that made the pin
    /// unnecessary (a parent's pointer, rule c) is only in that commit.
    /// </summary>
    public void Unpin(ulong seq)
    {
        lock (_lock)
        {
            if (!_pins.TryGetValue(seq, out var n))
                throw new InvalidOperationException($"unpin of journal seq {seq}, which is not pinned");
            if (n == 1)
            {
                _pins.Remove(seq);
                if (_committed > _written)
                    _releases.Add((seq, _committed));
            }
            else
            {
                _pins[seq] = n - 1;
            }
        }
    }

    /// <summary>The oldest seq entry <paramref name="entrySeq"/> must keep: pins, and releases by later commits.</summary>
    private ulong CurrentLastSeq(ulong entrySeq)
    {
        var last = _pins.Count == 0 ? entrySeq : Math.Min(_pins.First().Key, entrySeq);
        foreach (var (seq, releasedAt) in _releases)
        {
            if (releasedAt > entrySeq && seq < last)
                last = seq;
        }
        return Math.Max(last, _checkpointSeq + 1);
    }

    // ---- Waiting for durability -------------------------------------------------------------

    /// <summary>Waits until every commit up to <paramref name="seq"/> is durable. Never call with an engine lock held.</summary>
    public void WaitDurable(ulong seq)
    {
        if (_options.Manual)
        {
            lock (_writeGate)
            {
                lock (_lock)
                {
                    if (_durable >= seq)
                        return;
                    _emergency.ThrowIfSet();
                    _flushRequested = Math.Max(_flushRequested, seq);
                }
                while (WriteNext(manualFlush: true))
                {
                }
                lock (_lock)
                {
                    _emergency.ThrowIfSet();
                    if (_durable < seq)
                    {
                        throw new InvalidOperationException(
                            $"journal seq {seq} not durable after writing every entry (durable {_durable}, written {_written}, committed {_committed}, " +
                            $"open {_open?.Seq}/{_open?.Commits}, closed {_closed.Count}, next {_nextSeq}, flush requested {_flushRequested})");
                    }
                }
            }
            return;
        }
        while (true)
        {
            JournalEntryBuilder entry;
            bool flush;
            ulong lastSeq;
            lock (_lock)
            {
                if (_durable >= seq)
                    return;
                _emergency.ThrowIfSet();
                if (_stopping)
                    throw new BasaltException(ErrorCode.EmergencyReadOnly, $"{_device.Name}: the journal stopped before seq {seq} was durable");
                _flushRequested = Math.Max(_flushRequested, seq);
                // A waiter writes the entries itself when no one else is writing: a lone fsync
                // then costs no hand-off to the writer thread and back. Commits arriving while it
                // writes gather in the open entry for the next writer (group commit).
                if (!TryTakeNext(manualFlush: false, closeOpen: false, out entry, out flush, out lastSeq))
                {
                    // Whoever is writing wakes every waiter when done; otherwise the writer thread
                    // may still find something once room appears.
                    if (!_writing)
                        Monitor.PulseAll(_lock);
                    Monitor.Wait(_lock);
                    continue;
                }
            }
            WriteEntry(entry, flush, lastSeq);
        }
    }

    /// <summary>Deterministic step mode: writes the oldest closed entry (closing the open one if none), as a flush entry or not.</summary>
    public bool Step(bool flush)
    {
        if (!_options.Manual)
            throw new InvalidOperationException("Step is for the deterministic step mode");
        lock (_writeGate)
        {
            lock (_lock)
            {
                if (flush)
                    _flushRequested = Math.Max(_flushRequested, _committed);
            }
            return WriteNext(manualFlush: flush, closeOpen: true);
        }
    }

    /// <summary>Waits until the writer has room again or the journal is durable up to its newest commit (manual: writes).</summary>
    internal void WaitForWriter()
    {
        if (_options.Manual)
        {
            lock (_writeGate)
            {
                while (WriteNext(manualFlush: false))
                {
                }
            }
            return;
        }
        lock (_lock)
        {
            Monitor.PulseAll(_lock);
            if (_closed.Count >= MaxQueuedEntries && !_stopping && !_emergency.IsSet)
                Monitor.Wait(_lock, 100);
        }
    }

    // ---- Room in the ring -------------------------------------------------------------------

    /// <summary>True when the open entry has room for <paramref name="bytes"/> (opening one, moving to a new bucket, as needed).</summary>
    private bool EnsureRoom(int bytes, bool useReserve)
    {
        if (!_started)
            throw new InvalidOperationException("the journal is not started");
        if (_open is { } open && open.Free - _rootsReserve >= bytes)
            return true;
        if (_closed.Count >= MaxQueuedEntries)
            return false;
        if (_open is not null)
            CloseOpen();
        return OpenEntry(bytes, useReserve);
    }

    /// <summary>
    /// Closes the open entry: its trailer (any new blacklist range, every btree's root as of its
    /// last commit, the time) goes in now, in the room kept for it, and the next entry starts
    /// right after it.
    /// </summary>
    private void CloseOpen()
    {
        var open = _open!;
        _open = null;
        foreach (var range in _blacklistToWrite)
            open.AppendBlacklist(range);
        _blacklistToWrite.Clear();
        foreach (var (btree, root) in _roots.OrderBy(kv => kv.Key))
            open.AppendRoot(btree, root);
        open.AppendDatetime(DateTimeOffset.UtcNow);
        _offset = open.Offset + open.DiskBytesFor(_blockSize);
        _closed.Enqueue(open);
        Monitor.PulseAll(_lock);
    }

    /// <summary>Opens a new entry at the next position with room for <paramref name="bytes"/>.</summary>
    private bool OpenEntry(int bytes, bool useReserve)
    {
        var needed = JournalFormat.HeaderSize + _rootsReserve + bytes;
        if (!_inBucket || _ring.BucketSize - _offset < needed)
        {
            // The current bucket is full (or writing has not begun): the next one of the ring, if
            // it may be reused, and (for ordinary commits) if the reserve stays free after it.
            var next = _inBucket ? _ring.Next(_ringIndex) : _ringIndex;
            if (!IsReusable(next))
                return false;
            if (!useReserve && ReusableBuckets(except: next) < _reserveBuckets)
                return false;
            _ringIndex = next;
            _offset = 0;
            _inBucket = true;
        }
        var capacity = Math.Min(JournalFormat.MaxEntryBytes, _ring.BucketSize - _offset);
        var entry = new JournalEntryBuilder(_nextSeq++, capacity) { RingIndex = _ringIndex, Offset = _offset };
        _bucketNewest[_ringIndex] = entry.Seq;
        _open = entry;
        return true;
    }

    /// <summary>Rule (f): a bucket may be written again once no entry in it can be needed.</summary>
    private bool IsReusable(int ringIndex)
    {
        var newest = _bucketNewest[ringIndex];
        if (newest == 0 || newest <= _checkpointSeq)
            return true;
        if (_options.DebugFaults.ReuseBucketBeforeLastSeqDurable)
            return newest < CurrentLastSeq(_nextSeq); // debug-only ordering bug (f)
        return newest < _lastSeqOnDisk;
    }

    private int ReusableBuckets(int except = -1)
    {
        var n = 0;
        for (var i = 0; i < _ring.Count; i++)
        {
            if (i != except && (i != _ringIndex || !_inBucket) && IsReusable(i))
                n++;
        }
        return n;
    }

    // ---- The writer ---------------------------------------------------------------------------

    private void WriterLoop()
    {
        try
        {
            while (WriteNext(manualFlush: false))
            {
            }
        }
        catch (Exception ex) when (ex is BasaltException or IOException)
        {
            // Already in emergency read-only (WriteEntry entered it); waiters see the cause.
        }
    }

    /// <summary>
    /// Takes the next entry to write (waiting for one in threaded mode) and writes it. Returns false
    /// when there is nothing to do (manual mode) or the writer stops. <paramref name="closeOpen"/>
    /// (a step) closes an open entry holding commits when no closed one waits.
    /// </summary>
    private bool WriteNext(bool manualFlush, bool closeOpen = false)
    {
        JournalEntryBuilder entry;
        bool flush;
        ulong lastSeq;
        lock (_lock)
        {
            while (true)
            {
                if (_stopping || _emergency.IsSet)
                {
                    Monitor.PulseAll(_lock);
                    return false;
                }
                if (TryTakeNext(manualFlush, closeOpen, out entry, out flush, out lastSeq))
                    break;
                if (_options.Manual)
                    return false;
                var wait = _committed > _durable ? _options.FlushDelay - (_clock.Elapsed - _lastFlush) : Timeout.InfiniteTimeSpan;
                if (wait != Timeout.InfiniteTimeSpan && wait < TimeSpan.FromMilliseconds(1))
                    wait = TimeSpan.FromMilliseconds(1);
                Monitor.Wait(_lock, wait);
            }
        }
        WriteEntry(entry, flush, lastSeq);
        return true;
    }

    /// <summary>
    /// With the lock held: the next entry to write and whether it is a flush entry, or false when
    /// there is nothing to write now or another thread is writing. True makes the caller the
    /// writer until its <see cref="WriteEntry"/> returns.
    /// </summary>
    private bool TryTakeNext(bool manualFlush, bool closeOpen, out JournalEntryBuilder entry, out bool flush, out ulong lastSeq)
    {
        entry = null!;
        flush = false;
        lastSeq = 0;
        if (_writing)
            return false;
        // The flush delay is a timer: the deterministic step mode has none.
        var due = !_options.Manual && _committed > _durable && _clock.Elapsed - _lastFlush >= _options.FlushDelay;
        var needFlush = _flushRequested > _durable || due || (manualFlush && _committed > _durable);
        // A step without a flush must still write what was committed: otherwise a no-flush
        // entry is only ever written when it fills up, and Step(flush: false) does nothing.
        if ((needFlush || (closeOpen && _closed.Count == 0)) && _open is { Commits: > 0 })
            CloseOpen();
        if (needFlush && _closed.Count == 0 && _open is null && _written > _durable && _committed > _durable)
        {
            // Everything was written without a flush: an empty flush entry makes it durable.
            if (OpenEntry(0, useReserve: true))
            {
                _open!.Commits = 0;
                CloseOpen();
            }
            else if (_lastWritten is { } last && last.Seq == _written)
            {
                // No room for one more entry: the newest entry is written again, in place,
                // as a flush entry. A crash that tears it loses only what no flush had
                // acknowledged yet; everything before it is made durable by the pre-flush.
                entry = last;
                _lastWritten = null;
                flush = true;
                lastSeq = CurrentLastSeq(entry.Seq);
                _writing = true;
                return true;
            }
        }
        if (_closed.Count == 0)
            return false;
        entry = _closed.Dequeue();
        flush = needFlush && _closed.Count == 0;
        lastSeq = CurrentLastSeq(entry.Seq);
        _writing = true;
        return true;
    }

    /// <summary>Writes an entry taken by <see cref="TryTakeNext"/> (no lock held) and gives up being the writer.</summary>
    private void WriteEntry(JournalEntryBuilder entry, bool flush, ulong lastSeq)
    {
        var released = false;
        try
        {
            var bytes = entry.Seal(_magic, lastSeq, noFlush: !flush, _checksumType, FormatVersion.Current, _blockSize);
            var preFlushed = false;
            if (flush)
            {
                if (_device.WrittenSinceFlush && !_options.DebugFaults.SkipPreFlush)
                {
                    _device.Flush();
                    preFlushed = true;
                }
            }
            _device.Write(_ring.OffsetOf(entry.RingIndex) + entry.Offset, entry.Sealed(bytes));
            if (flush)
                _device.Flush();
            lock (_lock)
            {
                _written = Math.Max(_written, entry.Seq);
                if (!ReferenceEquals(_lastWritten, entry))
                {
                    _lastWritten?.Dispose();
                    _lastWritten = entry;
                }
                if (_releases.Count > 0)
                    _releases.RemoveAll(r => r.ReleasedAt <= _written);
                _entriesWritten++;
                _bytesWritten += bytes;
                if (flush)
                {
                    _durable = Math.Max(_durable, entry.Seq);
                    _lastSeqOnDisk = Math.Max(_lastSeqOnDisk, lastSeq);
                    _flushEntries++;
                    _deviceFlushes += preFlushed ? 2 : 1;
                    if (!preFlushed)
                        _preFlushesSkipped++;
                    _lastFlush = _clock.Elapsed;
                }
                _writing = false;
                released = true;
                Monitor.PulseAll(_lock);
            }
        }
        catch (Exception ex) when (ex is BasaltException or IOException)
        {
            var cause = new BasaltException(ErrorCode.IoError,
                $"{_device.Name}: journal write of seq {entry.Seq} at byte {_ring.OffsetOf(entry.RingIndex) + entry.Offset} failed: {ex.Message}", ex);
            lock (_lock)
            {
                _emergency.Enter(cause);
                _writing = false;
                released = true;
                Monitor.PulseAll(_lock);
            }
            entry.Dispose();
            _emergency.ThrowIfSet();
            throw;
        }
        finally
        {
            if (!released)
            {
                lock (_lock)
                {
                    _writing = false;
                    Monitor.PulseAll(_lock);
                }
            }
        }
        if (flush)
            SpaceWanted?.Invoke();
    }
}
