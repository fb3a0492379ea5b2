// A decorator that injects faults into the I/O of the device below it, for tests of every layer
// above: I/O errors (by offset range or at a seeded rate, separately for reads, writes and
// flushes), bit flips (in the data a read returns, or in the data a write stores) and torn writes
// (only the first N sectors of a write reach the device, then the write fails or the device
// "crashes" and refuses everything afterwards). Rules are objects the test keeps: they can be
// armed, disarmed and limited to a number of hits while the code under test runs. Every
// injected fault is counted. Randomness comes from one seeded generator, so a run replays.
using System.Buffers;
using System.Globalization;
using Basalt.Diagnostics;
using Basalt.Format;

namespace Basalt.Devices;

/// <summary>What a fault rule applies to.</summary>
[Flags]
public enum FaultOps
{
    None = 0,
    Read = 1,
    Write = 2,
    Flush = 4,
    Discard = 8,
}

public enum FaultKind
{
    /// <summary>The operation fails with ErrorCode.IoError and has no effect.</summary>
    IoError,
    /// <summary>One bit of the data is inverted (the operation itself succeeds).</summary>
    BitFlip,
    /// <summary>A write persists only its first sectors, then fails or crashes the device.</summary>
    TornWrite,
}

/// <summary>What happens after a torn write stored its prefix.</summary>
public enum TornWriteOutcome
{
    /// <summary>The write throws ErrorCode.IoError; the device keeps working.</summary>
    Fail,
    /// <summary>The write throws and the device is dead: every later operation throws.</summary>
    Crash,
}

/// <summary>One injected fault. Keep the object to disarm, re-arm or inspect it.</summary>
public sealed class FaultRule
{
    internal FaultRule(FaultKind kind, FaultOps ops) => (Kind, Ops) = (kind, ops);

    public FaultKind Kind { get; }
    public FaultOps Ops { get; }

    /// <summary>Byte range the rule watches; an operation overlapping it triggers (Length 0 = everywhere).</summary>
    public long Offset { get; init; }
    public long Length { get; init; }

    /// <summary>Probability per matching operation (1 = always).</summary>
    public double Rate { get; init; } = 1.0;

    /// <summary>Bit flips: absolute byte offset (or -1 for a seeded byte inside the operation) and bit.</summary>
    public long FlipByte { get; init; } = -1;
    public int FlipBit { get; init; } = -1;

    /// <summary>Torn writes: how many sectors of the write reach the device, and what follows.</summary>
    public int KeepSectors { get; init; }
    public TornWriteOutcome Outcome { get; init; }

    public bool Armed { get; set; } = true;

    /// <summary>The rule disarms itself after this many hits (0 = unlimited).</summary>
    public int MaxHits { get; set; }

    /// <summary>How many times the rule fired.</summary>
    public int Hits { get; internal set; }

    public void Arm() => Armed = true;
    public void Disarm() => Armed = false;

    internal bool Covers(long offset, long length)
    {
        if (Length == 0)
            return true;
        return offset < Offset + Length && Offset < offset + length;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Kind} on {Ops} at {(Length == 0 ? "any offset" : $"{Offset}+{Length}")} rate {Rate} hits {Hits}{(Armed ? "" : " (disarmed)")}");
}

/// <summary>Counts of injected faults.</summary>
public sealed class FaultCounters
{
    public int ReadErrors { get; internal set; }
    public int WriteErrors { get; internal set; }
    public int FlushErrors { get; internal set; }
    public int DiscardErrors { get; internal set; }
    public int ReadBitFlips { get; internal set; }
    public int WriteBitFlips { get; internal set; }
    public int TornWrites { get; internal set; }
    public int Total => ReadErrors + WriteErrors + FlushErrors + DiscardErrors + ReadBitFlips + WriteBitFlips + TornWrites;

    public override string ToString() =>
        $"read errors {ReadErrors}, write errors {WriteErrors}, flush errors {FlushErrors}, discard errors {DiscardErrors}, " +
        $"read flips {ReadBitFlips}, write flips {WriteBitFlips}, torn writes {TornWrites}";
}

public sealed class FaultyBlockDevice : IBlockDevice
{
    private readonly IBlockDevice _inner;
    private readonly bool _ownsInner;
    private readonly Random _random;
    private readonly List<FaultRule> _rules = [];
    private readonly object _gate = new();
    private string? _crashCause;

    /// <param name="inner">The device faults are injected in front of.</param>
    /// <param name="seed">Seed for rate-based rules and seeded flip positions.</param>
    /// <param name="ownsInner">Dispose <paramref name="inner"/> with this device.</param>
    public FaultyBlockDevice(IBlockDevice inner, int seed = 0, bool ownsInner = true)
    {
        _inner = inner;
        _ownsInner = ownsInner;
        _random = new Random(seed);
        Seed = seed;
    }

    public int Seed { get; }
    public string Name => _inner.Name;
    public long Size => _inner.Size;
    public bool IsReadOnly => _inner.IsReadOnly;
    public IBlockDevice Inner => _inner;
    public FaultCounters Counters { get; } = new();

    /// <summary>True after a torn write with <see cref="TornWriteOutcome.Crash"/>.</summary>
    public bool IsCrashed => _crashCause is not null;

    /// <summary>Adds a rule; returns it so the test can arm/disarm it.</summary>
    public FaultRule Add(FaultRule rule)
    {
        lock (_gate)
            _rules.Add(rule);
        return rule;
    }

    public void Remove(FaultRule rule)
    {
        lock (_gate)
            _rules.Remove(rule);
    }

    public void ClearRules()
    {
        lock (_gate)
            _rules.Clear();
    }

    /// <summary>Brings a crashed device back (the "reboot"): later operations pass through again.</summary>
    public void Revive() => _crashCause = null;

    public FaultRule FailReads(long offset = 0, long length = 0, double rate = 1.0) =>
        Add(new FaultRule(FaultKind.IoError, FaultOps.Read) { Offset = offset, Length = length, Rate = rate });

    public FaultRule FailWrites(long offset = 0, long length = 0, double rate = 1.0) =>
        Add(new FaultRule(FaultKind.IoError, FaultOps.Write) { Offset = offset, Length = length, Rate = rate });

    public FaultRule FailFlushes(double rate = 1.0) =>
        Add(new FaultRule(FaultKind.IoError, FaultOps.Flush) { Rate = rate });

    public FaultRule FailDiscards(long offset = 0, long length = 0, double rate = 1.0) =>
        Add(new FaultRule(FaultKind.IoError, FaultOps.Discard) { Offset = offset, Length = length, Rate = rate });

    /// <summary>Flips <paramref name="bit"/> of the byte at <paramref name="byteOffset"/> in every read covering it.</summary>
    public FaultRule FlipBitOnRead(long byteOffset, int bit) =>
        Add(new FaultRule(FaultKind.BitFlip, FaultOps.Read) { Offset = byteOffset, Length = 1, FlipByte = byteOffset, FlipBit = bit & 7 });

    /// <summary>Flips <paramref name="bit"/> of the byte at <paramref name="byteOffset"/> in the data of every write covering it.</summary>
    public FaultRule FlipBitOnWrite(long byteOffset, int bit) =>
        Add(new FaultRule(FaultKind.BitFlip, FaultOps.Write) { Offset = byteOffset, Length = 1, FlipByte = byteOffset, FlipBit = bit & 7 });

    /// <summary>With probability <paramref name="rate"/> per read in the range, flips one seeded bit of the data read.</summary>
    public FaultRule FlipRandomBitsOnRead(double rate, long offset = 0, long length = 0) =>
        Add(new FaultRule(FaultKind.BitFlip, FaultOps.Read) { Offset = offset, Length = length, Rate = rate });

    /// <summary>With probability <paramref name="rate"/> per write in the range, flips one seeded bit of the data stored.</summary>
    public FaultRule FlipRandomBitsOnWrite(double rate, long offset = 0, long length = 0) =>
        Add(new FaultRule(FaultKind.BitFlip, FaultOps.Write) { Offset = offset, Length = length, Rate = rate });

    /// <summary>Writes overlapping the range store only their first <paramref name="keepSectors"/> sectors.</summary>
    public FaultRule TearWrites(int keepSectors, TornWriteOutcome outcome, long offset = 0, long length = 0, double rate = 1.0) =>
        Add(new FaultRule(FaultKind.TornWrite, FaultOps.Write)
        {
            Offset = offset, Length = length, Rate = rate, KeepSectors = Math.Max(0, keepSectors), Outcome = outcome,
        });

    public void Read(long offset, Span<byte> buffer)
    {
        CheckAlive("read", offset);
        DeviceRange.Check(this, offset, buffer.Length);
        FaultRule? error;
        FaultRule? flip;
        lock (_gate)
        {
            error = Match(FaultKind.IoError, FaultOps.Read, offset, buffer.Length);
            flip = error is null ? Match(FaultKind.BitFlip, FaultOps.Read, offset, buffer.Length) : null;
            if (error is not null)
                Counters.ReadErrors++;
        }
        if (error is not null)
            throw Injected("read", offset, buffer.Length);
        _inner.Read(offset, buffer);
        if (flip is not null)
        {
            lock (_gate)
            {
                Flip(flip, offset, buffer);
                Counters.ReadBitFlips++;
            }
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        CheckAlive("write", offset);
        DeviceRange.Check(this, offset, data.Length);
        FaultRule? error, torn, flip;
        lock (_gate)
        {
            error = Match(FaultKind.IoError, FaultOps.Write, offset, data.Length);
            torn = error is null ? Match(FaultKind.TornWrite, FaultOps.Write, offset, data.Length) : null;
            flip = error is null ? Match(FaultKind.BitFlip, FaultOps.Write, offset, data.Length) : null;
            if (error is not null)
                Counters.WriteErrors++;
            if (torn is not null)
                Counters.TornWrites++;
            if (flip is not null)
                Counters.WriteBitFlips++;
        }
        if (error is not null)
            throw Injected("write", offset, data.Length);

        var length = data.Length;
        if (torn is not null)
            length = Math.Min(length, torn.KeepSectors * FormatLimits.SectorSize);

        if (flip is null)
        {
            _inner.Write(offset, data[..length]);
        }
        else
        {
            var copy = ArrayPool<byte>.Shared.Rent(data.Length);
            try
            {
                data.CopyTo(copy);
                lock (_gate)
                    Flip(flip, offset, copy.AsSpan(0, data.Length));
                _inner.Write(offset, copy.AsSpan(0, length));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(copy);
            }
        }

        if (torn is not null)
        {
            var what = string.Create(CultureInfo.InvariantCulture,
                $"{Name}: injected torn write at offset {offset}+{data.Length}: only {length} bytes stored");
            if (torn.Outcome == TornWriteOutcome.Crash)
            {
                _crashCause = what;
                throw new BasaltException(ErrorCode.IoError, what + "; the device crashed");
            }
            throw new BasaltException(ErrorCode.IoError, what);
        }
    }

    public void Flush()
    {
        CheckAlive("flush", 0);
        bool fail;
        lock (_gate)
        {
            fail = Match(FaultKind.IoError, FaultOps.Flush, 0, 0) is not null;
            if (fail)
                Counters.FlushErrors++;
        }
        if (fail)
            throw new BasaltException(ErrorCode.IoError, $"{Name}: injected flush error");
        _inner.Flush();
    }

    public void Discard(long offset, long length)
    {
        CheckAlive("discard", offset);
        bool fail;
        lock (_gate)
        {
            fail = Match(FaultKind.IoError, FaultOps.Discard, offset, length) is not null;
            if (fail)
                Counters.DiscardErrors++;
        }
        if (fail)
            throw Injected("discard", offset, length);
        _inner.Discard(offset, length);
    }

    public void Dispose()
    {
        if (_ownsInner)
            _inner.Dispose();
    }

    /// <summary>The first armed rule of this kind and operation that fires now (counts the hit). Under _gate.</summary>
    private FaultRule? Match(FaultKind kind, FaultOps op, long offset, long length)
    {
        foreach (var rule in _rules)
        {
            if (!rule.Armed || rule.Kind != kind || (rule.Ops & op) == 0)
                continue;
            if (op != FaultOps.Flush && !rule.Covers(offset, length))
                continue;
            if (rule.Rate < 1.0 && _random.NextDouble() >= rule.Rate)
                continue;
            rule.Hits++;
            if (rule.MaxHits > 0 && rule.Hits >= rule.MaxHits)
                rule.Armed = false;
            return rule;
        }
        return null;
    }

    /// <summary>Inverts one bit of <paramref name="data"/> (which holds the bytes at <paramref name="offset"/>). Under _gate.</summary>
    private void Flip(FaultRule rule, long offset, Span<byte> data)
    {
        long at;
        if (rule.FlipByte >= 0)
        {
            at = rule.FlipByte - offset;
        }
        else
        {
            var lo = Math.Max(offset, rule.Length == 0 ? offset : rule.Offset) - offset;
            var hi = Math.Min(offset + data.Length, rule.Length == 0 ? offset + data.Length : rule.Offset + rule.Length) - offset;
            at = lo + _random.NextInt64(hi - lo);
        }
        var bit = rule.FlipBit >= 0 ? rule.FlipBit : _random.Next(8);
        data[(int)at] ^= (byte)(1 << bit);
    }

    private void CheckAlive(string what, long offset)
    {
        var cause = _crashCause;
        if (cause is not null)
            throw new BasaltException(ErrorCode.IoError,
                string.Create(CultureInfo.InvariantCulture, $"{Name}: {what} at offset {offset} refused: the device crashed ({cause})"));
    }

    private BasaltException Injected(string what, long offset, long length) =>
        new(ErrorCode.IoError, string.Create(CultureInfo.InvariantCulture, $"{Name}: injected {what} error at offset {offset}+{length}"));
}
