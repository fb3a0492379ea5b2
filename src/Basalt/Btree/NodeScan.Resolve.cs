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
using Basalt.Format;

namespace Basalt.Btree;

public sealed partial class NodeScan
{
    /// <summary>Decides, per btree and level, which node is used for which part of the key space.</summary>
    internal static void Resolve(ScannedNode[] nodes)
    {
        var order = new List<int>(nodes.Length);
        for (var i = 0; i < nodes.Length; i++)
        {
            if (nodes[i].Status != ScannedNodeStatus.Rejected)
                order.Add(i);
        }
        // By btree, level, then newest first (offsets are unique, so the order is total). The
        // btree ids compare as bytes: an enum's CompareTo boxes its argument.
        order.Sort((a, b) =>
        {
            var c = ((byte)nodes[a].Btree).CompareTo((byte)nodes[b].Btree);
            if (c == 0)
                c = nodes[a].Level.CompareTo(nodes[b].Level);
            return c != 0 ? c : CompareNewness(nodes[a], nodes[b]);
        });
        var atoms = new KeyAtoms(order.Count);
        for (var from = 0; from < order.Count;)
        {
            var group = (nodes[order[from]].Btree, nodes[order[from]].Level);
            var to = from + 1;
            while (to < order.Count && (nodes[order[to]].Btree, nodes[order[to]].Level) == group)
                to++;
            atoms.Reset(nodes, order, from, to);
            for (var k = from; k < to; k++)
            {
                var i = order[k];
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
        public void Reset(ScannedNode[] nodes, List<int> order, int from, int to)
        {
            var count = 0;
            for (var k = from; k < to; k++)
            {
                _sorted[count++] = new Bound(nodes[order[k]].Min, (k - from) << 1);
                _sorted[count++] = new Bound(nodes[order[k]].Max, ((k - from) << 1) | 1);
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
