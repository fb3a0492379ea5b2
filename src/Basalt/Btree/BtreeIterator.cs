// Iterates one level of a btree over [start, end], forward or backward. It holds no lock between
// calls: each refill is an engine operation under the read lock (restarted after a node miss)
// that re-descends from the root to the position after the last key it returned (so it is valid
// across any concurrent change) and copies a batch of keys and values out, growing the batch as
// the scan goes on.
using Basalt.Format;

namespace Basalt.Btree;

public sealed class BtreeIterator
{
    private const int FirstBatch = 16;
    private const int MaxBatch = 512;

    private readonly BtreeEngine _engine;
    private readonly Btree _tree;
    private readonly Bpos _start;
    private readonly Bpos _end;
    private readonly bool _reverse;
    private readonly byte _level;
    private readonly Bkey[] _keys = new Bkey[MaxBatch];
    private readonly int[] _valueOffsets = new int[MaxBatch];
    private readonly int[] _valueLengths = new int[MaxBatch];
    private byte[] _arena = new byte[4096];
    private Bpos _next;
    private bool _done;
    private int _count;
    private int _index;
    private int _batch = FirstBatch;
    private int _arenaUsed;

    internal BtreeIterator(BtreeEngine engine, Btree tree, Bpos start, Bpos end, bool reverse, byte level)
    {
        _engine = engine;
        _tree = tree;
        _start = start;
        _end = end;
        _reverse = reverse;
        _level = level;
        Seek(reverse ? end : start);
    }

    /// <summary>The current key (valid after MoveNext returned true).</summary>
    public Bkey Key => _keys[_index];

    /// <summary>The current value; valid until the next MoveNext or Seek.</summary>
    public ReadOnlySpan<byte> Value => _arena.AsSpan(_valueOffsets[_index], _valueLengths[_index]);

    /// <summary>Repositions: the next key returned is the first &gt;= pos (forward) or &lt;= pos (reverse), within the range.</summary>
    public void Seek(Bpos pos) => Seek(pos, FirstBatch);

    /// <summary>
    /// Repositions, copying only <paramref name="firstBatch"/> keys on the first refill (a caller
    /// that expects to need one or two keys, a point-like read, copies no more than that; the batch
    /// still doubles on every refill after it).
    /// </summary>
    public void Seek(Bpos pos, int firstBatch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(firstBatch, 1);
        _next = _reverse ? (pos > _end ? _end : pos) : (pos < _start ? _start : pos);
        _done = _start > _end || (_reverse ? _next < _start : _next > _end);
        _count = 0;
        _index = -1;
        _batch = Math.Min(firstBatch, MaxBatch);
    }

    public bool MoveNext()
    {
        if (_index + 1 < _count)
        {
            _index++;
            return true;
        }
        if (_done)
        {
            _count = 0;
            _index = -1;
            return false;
        }
        Fill();
        _index = 0;
        return _count > 0;
    }

    private void Fill()
    {
        _count = 0;
        _arenaUsed = 0;
        var op = new FillOp(this);
        _engine.Run<FillOp, bool>(ref op, LockMode.Read);
        if (_batch < MaxBatch)
            _batch *= 2;
    }

    /// <summary>
    /// One attempt (under the read lock): copies keys until the batch is full or the range ends. A
    /// miss with keys already copied ends the batch early; only a miss before the first key restarts.
    /// </summary>
    private bool FillAttempt(out Restart restart)
    {
        restart = default;
        while (_count < _batch && !_done)
        {
            var r = _engine.FindNode(_tree, _level, _next, out var node, out var miss);
            if (r == FindResult.Miss)
            {
                if (_count > 0)
                    return true;
                restart = Restart.ForMiss(miss);
                return false;
            }
            if (r != FindResult.Found)
            {
                _done = true;
                break;
            }
            var cursor = new NodeCursor(node, _next, _reverse);
            var nodeDone = true;
            while (cursor.Next(out var run, out var i))
            {
                ref readonly var entry = ref run.Entries[i];
                var pos = entry.Key.Pos;
                if (_reverse ? pos < _start : pos > _end)
                {
                    _done = true;
                    nodeDone = false;
                    break;
                }
                var length = entry.ValueLength;
                if (_arenaUsed + length > _arena.Length)
                    Array.Resize(ref _arena, Math.Max(_arena.Length * 2, _arenaUsed + length));
                run.ValueOf(i).CopyTo(_arena.AsSpan(_arenaUsed));
                _keys[_count] = entry.Key;
                _valueOffsets[_count] = _arenaUsed;
                _valueLengths[_count] = length;
                _arenaUsed += length;
                _count++;
                if (_reverse ? pos.IsMin : pos.IsMax)
                    _done = true;
                else
                    _next = _reverse ? pos.Predecessor() : pos.Successor();
                if (_done || _count >= _batch)
                {
                    nodeDone = false;
                    break;
                }
            }
            if (nodeDone && !_done)
            {
                if (_reverse)
                {
                    if (node.MinKey <= _start || node.MinKey.IsMin)
                        _done = true;
                    else
                        _next = node.MinKey.Predecessor();
                }
                else
                {
                    if (node.MaxKey >= _end || node.MaxKey.IsMax)
                        _done = true;
                    else
                        _next = node.MaxKey.Successor();
                }
            }
        }
        return true;
    }

    private readonly struct FillOp(BtreeIterator iterator) : IEngineOp<bool>
    {
        public bool TryRun(BtreeEngine engine, out bool result, out Restart restart)
        {
            result = true;
            return iterator.FillAttempt(out restart);
        }
    }
}
