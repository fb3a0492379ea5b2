// The node scan's choice of versions (the rule is stated at the top of NodeScan.cs): per btree
// and level, newest first, each node keeps the first part of its range that no newer node
// claimed.
//
// How: the key space of one btree and level is cut into atoms at the nodes' bounds. Each
// distinct min or max is an atom of its own, and the keys strictly between two neighbouring
// bounds, when there are any, are another. Every node's range is a run of whole atoms, and so is
// every part a node claims (it starts at the node's min or just after a claimed atom and ends at
// the node's max or just before one), so claiming marks atoms: each atom is claimed at most once,
// and "the next unclaimed atom from here" is a union-find with path halving. After sorting the
// bounds the choice is near-linear in the number of nodes and allocates nothing per node, so it
// stays a small part of a scan that finds every slot full.
using System.Runtime.CompilerServices;
using Basalt.Format;

namespace Basalt.Btree;

public sealed partial class NodeScan
{
    /// <summary>Decides, per btree and level, which node is used for which part of the key space.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Resolve(ScannedNode[] nodes)
    {
        // By btree, level, then newest first (offsets are unique, so the order is total), sorted as
        // small keys beside the records rather than as indices that compare through them.
        var order = new Candidate[nodes.Length];
        var count = 0;
        for (var i = 0; i < nodes.Length; i++)
        {
            if (nodes[i].Status != ScannedNodeStatus.Rejected)
                order[count++] = new Candidate(nodes[i], i);
        }
        Array.Sort(order, 0, count);
        var atoms = new KeyAtoms(count);
        for (var from = 0; from < count;)
        {
            var to = from + 1;
            while (to < count && order[to].SameGroup(order[from]))
                to++;
            atoms.Reset(nodes, order, from, to);
            for (var k = from; k < to; k++)
            {
                var i = order[k].Index;
                ref var n = ref nodes[i];
                if (!atoms.TryClaimFirstUnclaimed(k - from, i, out var useMin, out var useMax, out var by))
                {
                    n = n with { Status = ScannedNodeStatus.Superseded, SupersededBy = nodes[by].Offset };
                    continue;
                }
                var whole = useMin == n.Min && useMax == n.Max;
                n = n with
                {
                    Status = whole ? ScannedNodeStatus.Chosen : ScannedNodeStatus.Clipped,
                    SupersededBy = whole ? -1 : nodes[by].Offset,
                    UseMin = useMin,
                    UseMax = useMax,
                };
            }
            from = to;
        }
    }

    /// <summary>
    /// A node's place in the choice: its btree and level, then newest first as
    /// <see cref="CompareNewness"/> orders (the btree ids compare as bytes: an enum's CompareTo
    /// boxes its argument).
    /// </summary>
    private readonly struct Candidate(in ScannedNode node, int index) : IComparable<Candidate>
    {
        private readonly ulong _journalSeq = node.JournalSeq;
        private readonly long _offset = node.Offset;
        private readonly uint _generation = node.Generation;
        private readonly ushort _sectorsWritten = node.SectorsWritten;
        private readonly byte _btree = (byte)node.Btree;
        private readonly byte _level = node.Level;

        /// <summary>The node's index in the scan.</summary>
        public int Index { get; } = index;

        public bool SameGroup(in Candidate other) => _btree == other._btree && _level == other._level;

        public int CompareTo(Candidate other)
        {
            var c = _btree.CompareTo(other._btree);
            if (c != 0)
                return c;
            c = _level.CompareTo(other._level);
            if (c != 0)
                return c;
            c = other._journalSeq.CompareTo(_journalSeq);
            if (c != 0)
                return c;
            c = other._generation.CompareTo(_generation);
            if (c != 0)
                return c;
            c = other._sectorsWritten.CompareTo(_sectorsWritten);
            return c != 0 ? c : _offset.CompareTo(other._offset);
        }
    }

    /// <summary>The atoms of one btree and level's key space and which node claimed each (see the top of this file).</summary>
    private sealed class KeyAtoms
    {
        private const int Unclaimed = -1;
        private const int Between = -1;

        /// <summary>The group's bounds, ascending, each naming its node (index in the group, shifted left one, bit 0 set for the max).</summary>
        private readonly Bound[] _sorted;
        /// <summary>Per node of the group: the atoms its min and max are.</summary>
        private readonly int[] _firstAtom;
        private readonly int[] _lastAtom;
        /// <summary>
        /// Per atom: the index in <see cref="_sorted"/> of its bound, or <see cref="Between"/> for
        /// the keys between two bounds (always the atom after one bound and before the next).
        /// </summary>
        private readonly int[] _atoms;
        /// <summary>Per atom: the index of the node that claimed it, or <see cref="Unclaimed"/>.</summary>
        private readonly int[] _owner;
        /// <summary>Per atom: itself when unclaimed, else a later atom no nearer than the next unclaimed one (one more slot: the end).</summary>
        private readonly int[] _nextUnclaimed;

        /// <param name="nodes">At least the most nodes one group holds (pages of the arrays never used are never touched).</param>
        public KeyAtoms(int nodes)
        {
            _sorted = new Bound[2 * nodes];
            _firstAtom = new int[nodes];
            _lastAtom = new int[nodes];
            _atoms = new int[4 * nodes];
            _owner = new int[4 * nodes];
            _nextUnclaimed = new int[(4 * nodes) + 1];
        }

        /// <summary>Cuts the key space at the bounds of the nodes <paramref name="order"/>[from..to), every atom unclaimed.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Reset(ScannedNode[] nodes, Candidate[] order, int from, int to)
        {
            var count = 0;
            for (var k = from; k < to; k++)
            {
                ref readonly var node = ref nodes[order[k].Index];
                _sorted[count++] = new Bound(node.Min, (k - from) << 1);
                _sorted[count++] = new Bound(node.Max, ((k - from) << 1) | 1);
            }
            Array.Sort(_sorted, 0, count);
            var atoms = 0;
            for (var e = 0; e < count; e++)
            {
                var key = _sorted[e].Key;
                // The last atom so far is always a bound's.
                var previous = atoms == 0 ? -1 : _atoms[atoms - 1];
                if (previous < 0 || key != _sorted[previous].Key)
                {
                    // A bound below another has a successor; the keys between them are an atom when there are any.
                    if (previous >= 0 && _sorted[previous].Key.Successor() < key)
                        _atoms[atoms++] = Between;
                    _atoms[atoms++] = e;
                }
                var node = _sorted[e].Node;
                if ((node & 1) == 0)
                    _firstAtom[node >> 1] = atoms - 1;
                else
                    _lastAtom[node >> 1] = atoms - 1;
            }
            Array.Fill(_owner, Unclaimed, 0, atoms);
            for (var a = 0; a <= atoms; a++)
                _nextUnclaimed[a] = a;
        }

        /// <summary>
        /// Claims for the group's node <paramref name="member"/> (index <paramref name="node"/> of
        /// the scan) the first part of its range no earlier call claimed and returns it as [useMin,
        /// useMax]; false when all of it is claimed. <paramref name="by"/> is the node that claimed
        /// the first claimed atom of the range (-1 when none is).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public bool TryClaimFirstUnclaimed(int member, int node, out Bpos useMin, out Bpos useMax, out int by)
        {
            var first = _firstAtom[member];
            var last = _lastAtom[member];
            by = _owner[first];
            var start = by == Unclaimed ? first : NextUnclaimed(first);
            if (start > last)
            {
                useMin = useMax = default;
                return false;
            }
            // Every atom walked here is claimed below, so the walks of a whole group cost one pass over its atoms.
            var end = start;
            while (end < last && _owner[end + 1] == Unclaimed)
                end++;
            if (by == Unclaimed && end < last)
                by = _owner[end + 1];
            for (var a = start; a <= end; a++)
            {
                _owner[a] = node;
                _nextUnclaimed[a] = end + 1;
            }
            useMin = LowKey(start);
            useMax = HighKey(end);
            return true;
        }

        private int NextUnclaimed(int atom)
        {
            while (_nextUnclaimed[atom] != atom)
            {
                _nextUnclaimed[atom] = _nextUnclaimed[_nextUnclaimed[atom]];
                atom = _nextUnclaimed[atom];
            }
            return atom;
        }

        private Bpos LowKey(int atom) =>
            _atoms[atom] == Between ? _sorted[_atoms[atom - 1]].Key.Successor() : _sorted[_atoms[atom]].Key;

        private Bpos HighKey(int atom) =>
            _atoms[atom] == Between ? _sorted[_atoms[atom + 1]].Key.Predecessor() : _sorted[_atoms[atom]].Key;

        /// <summary>A node's min or max; sorts by key alone.</summary>
        private readonly record struct Bound(Bpos Key, int Node) : IComparable<Bound>
        {
            public int CompareTo(Bound other) => Key.CompareTo(other.Key);
        }
    }
}
