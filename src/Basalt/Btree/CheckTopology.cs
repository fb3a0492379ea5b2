// check_topology (fsck pass FsckPassId.CheckTopology): the children of every interior node tile
// its range exactly (DESIGN §2 invariant 2), and every reachable node can be read.
//
// The walk is top-down over every btree with a root. Nodes are read raw from the device (one
// buffer per level, see CheckNodeReader), never through the node cache. For each interior node
// the child pointers are taken in key order, keeping the previous kept child `prev`; the child is
// expected to start at succ(prev.max), or at the node's min for the first child:
//   - a child that cannot be read, or sits at the wrong level, is dropped from its parent;
//   - a gap before it extends it down;
//   - an overlap is settled by generation (a node that replaces others gets max(old)+1): a newer
//     child wins over an older prev (prev is dropped when it lies inside the child, else its max
//     is shrunk); otherwise the older-or-equal child loses: dropped when everything it holds lies
//     inside prev, else its min is shrunk. (Children come in max-key order, so a child's range
//     always ends after prev's: "inside prev" is decided by its keys, not its range.)
//   - after the last child, a max short of the node's max extends the last child;
//   - a gap (or the hole a dropped child leaves) is first filled from the node scan, see below.
// Then it recurses into the kept children. An interior node left with no children is dropped
// from its parent; the dropped child's neighbours are re-tiled (a gap closed by the next child,
// or by extending the previous child, whose subtree's right edge is then walked again). A root
// left with no children is rebuilt from the node scan like an unreadable one (the leaves below
// the children it lost may be whole). An unreadable root is rebuilt from the node scan (reset to
// empty only when the scan found nothing of its btree).
//
// A repair changes a node's range by rewriting its pointer in the parent with the RangeUpdated
// flag (a new max means deleting the pointer keyed at the old max first); the node reader trusts
// such pointers and drops keys outside them, and at the end of the btree every node whose range
// changed is rewritten so its header matches again. Edits go through the engine's level edits
// (IBtreeCheckTarget) and are made durable by one Sync at the end of the pass.
//
// A node whose range shrank is walked through its pointer as written, so a child sticking out
// of the new range is clipped rather than lost with its in-range keys. Pointers left outside a
// shrunk node are never edited directly (an edit at their position would reach a neighbour):
// the node's rewrite drops them, or, should its range grow back, they are deleted then.
//
// Every finding goes through IFsckReporter and is repaired only when it answers true. Whatever
// the answer, the walk continues as if the repair had been made: the pass keeps its own overlay
// of the pointer edits it decided on, merged into every node it reads. So a run that declines
// every repair (-n) reports exactly the findings a repairing run (-y) repairs, and changes nothing.
// Repairs build on each other, so after one decline the rest of that btree's are only reported:
// what is applied is always a consistent prefix of the full repair.
//
// The node scan (NodeScan): the first time the walk meets an unreadable root, or a range no kept
// child covers (an unreadable, wrong-level, stale or empty child, or a gap), it scans the node
// space once; every btree of the pass shares the result. A range no child covers is filled with
// the nodes one level down the scan chose for it (the newest version of each part), spliced in
// through the parent's level edits and walked like any other child; only what no found node
// covers is closed by extending a neighbour, and named as lost. An unreadable root is replaced by
// a new root over the highest level found. Once the scan has run, a child that an unreachable
// newer node supersedes is dropped as stale and its range filled from the scan; a range filled
// from an older version of a lost node is reported as such (deleted keys may come back there).
using Basalt.Format;

namespace Basalt.Btree;

public static class CheckTopology
{
    /// <summary>
    /// Runs check_topology over every btree of <paramref name="engine"/>: findings go to
    /// <paramref name="reporter"/>, and each is repaired (through the engine's level edits, made
    /// durable by one Sync at the end) only when the reporter says so.
    /// </summary>
    /// <param name="makeDurable">Makes the engine's edits durable and its nodes on disk current (the mount's checkpoint).</param>
    /// <param name="invalidRoots">
    /// Roots known to be unusable before any read (a superblock root check_superblock found invalid,
    /// with why): their btrees are rebuilt from the node scan, unless the btree's root is another
    /// one by now (the journal's replay brought a newer root).
    /// </param>
    public static BtreeCheckResult Run(BtreeEngine engine, Action makeDurable, IFsckReporter reporter, CancellationToken ct,
        IReadOnlyDictionary<BtreeId, (BtreeRoot Root, string Problem)>? invalidRoots = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(makeDurable);
        return Run(new EngineCheckTarget(engine, makeDurable), reporter, ct, invalidRoots);
    }

    internal static BtreeCheckResult Run(IBtreeCheckTarget target, IFsckReporter reporter, CancellationToken ct,
        IReadOnlyDictionary<BtreeId, (BtreeRoot Root, string Problem)>? invalidRoots = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(reporter);
        var walk = new TopologyWalk(target, reporter, ct, invalidRoots ?? new Dictionary<BtreeId, (BtreeRoot, string)>());
        walk.Run();
        return walk.Counters.ToResult();
    }

    /// <summary>A node of the walk, as its parent's (possibly repaired) pointer describes it.</summary>
    private sealed class NodeRef
    {
        public required BtreeId Btree { get; init; }
        public required int Level { get; init; }
        public required NodeRef? Parent { get; init; }

        /// <summary>The pointer as the parent holds it now (RangeUpdated once repaired).</summary>
        public required BtreePtrValue Ptr { get; set; }

        /// <summary>The node's max key: the position its pointer is keyed at.</summary>
        public required Bpos Max { get; set; }

        /// <summary>The pointer and max before this pass changed anything.</summary>
        public required BtreePtrValue OriginalPtr { get; init; }
        public required Bpos OriginalMax { get; init; }

        public Bpos Min => Ptr.MinKey;
        public uint Generation { get; set; }
        public int LiveKeys { get; set; }

        /// <summary>Position of the node's last live key (last child pointer for an interior node); null when it holds none.</summary>
        public Bpos? LastKey { get; set; }
        public bool Dropped { get; set; }

        /// <summary>The drop was an accepted repair (Dropped alone may be a declined one).</summary>
        public bool DropApplied { get; set; }

        /// <summary>
        /// An accepted clip moved the node's pointer off its old max, but the new one was never
        /// placed (the repair that would free the parent's max was declined, or the node lost the
        /// boundary to the child holding it): the tree on disk no longer reaches the node.
        /// </summary>
        public bool Detached { get; set; }

        /// <summary>
        /// A clipped child whose new pointer is not in its parent yet: its max moved onto the
        /// parent's max, where the previous child still sits until a boundary repair moves or drops
        /// it. <see cref="PlaceApplies"/> says whether the clip was an accepted repair.
        /// </summary>
        public bool Unplaced { get; set; }
        public bool PlaceApplies { get; set; }

        /// <summary>An accepted repair changed the range: the node is rewritten at the end.</summary>
        public bool RewritePending { get; set; }

        /// <summary>The range as of the last accepted change: what the parent's pointer holds.</summary>
        public Bpos AppliedMin { get; set; }
        public Bpos AppliedMax { get; set; }

        public NodeKey Key => new(OriginalPtr.Ptrs.Count > 0 ? OriginalPtr.Ptrs[0].OffsetSectors : 0, OriginalPtr.Seq);

        public bool DroppedOrOrphaned()
        {
            for (var n = this; n is not null; n = n.Parent)
            {
                if (n.DropApplied || n.Detached)
                    return true;
            }
            return false;
        }

        public string ToText() => OriginalPtr.Seq == 0
            ? $"{Btree.ToText()} level {Level} rebuilt root [{Min.ToText()}..{Max.ToText()}]"
            : CheckNodeReader.Where(Btree, Level, OriginalPtr, Min, Max);

        public string Describe() =>
            $"node at offset {Key.OffsetSectors * FormatLimits.SectorSize} [{Min.ToText()}..{Max.ToText()}] gen {Generation}";
    }

    /// <summary>Identifies a node read by this pass: its slot (sectors) and seq.</summary>
    private readonly record struct NodeKey(ulong OffsetSectors, ulong Seq)
    {
        public long OffsetBytes => (long)OffsetSectors * FormatLimits.SectorSize;
    }

    private sealed class TopologyWalk
    {
        private readonly IBtreeCheckTarget _target;
        private readonly IFsckReporter _reporter;
        private readonly CancellationToken _ct;
        private readonly CheckNodeReader _reader;

        // Pointer edits decided on by this pass, per parent node: position -> new pointer, or null
        // for a deleted pointer. Merged into every read of that parent, whether or not the repair
        // was applied, so the walk sees the tree as repaired.
        private readonly Dictionary<NodeKey, SortedDictionary<Bpos, BtreePtrValue?>> _overlay = [];

        // Nodes whose range an accepted repair changed, by node identity (latest view wins).
        private readonly Dictionary<NodeKey, NodeRef> _rewrites = [];

        // Child pointers a shrunk node no longer covers, per node: gone from this pass's view, but
        // still in the node until its rewrite drops them. Should the node's range grow over one
        // again (a neighbour dropped later), it is deleted for real, now that an edit at its
        // position reaches the node. The value says whether the shrink was an accepted repair.
        private readonly Dictionary<NodeKey, Dictionary<Bpos, bool>> _stale = [];

        private bool _edited;

        // The node scan, run at most once per pass, when the first damage needs it; shared by every btree.
        private NodeScan? _scan;

        // Nodes dropped as unreadable in the current btree: (level, min, max, offset), so a range
        // restored from the scan can tell an older version of the lost node from the node itself.
        private readonly List<(int Level, Bpos Min, Bpos Max, long Offset)> _lost = [];

        // Slots of nodes the walk dropped in the current btree: never pulled back in by a fill.
        private readonly HashSet<long> _droppedOffsets = [];

        // Slots whose pointer the walk dropped but whose node a fill may take back (a stale node,
        // a whole node whose pointer gave the wrong range): not reachable, whatever the pointers say.
        private readonly HashSet<long> _released = [];

        // Slots the current btree's pointers lead to (through readable interior nodes at the
        // right level), computed on the first fill: a fill never takes a node that is reachable
        // elsewhere, or the tree would point at one node twice.
        private HashSet<long>? _reachable;

        // Where that walk starts: the root, or the children of a rebuilt root.
        private List<(int Level, Bpos Max, BtreePtrValue Ptr)> _reachFrom = [];
        private BtreeId _btree;

        // A repair of the current btree was declined: later ones are reported, not applied.
        private bool _declined;

        private readonly IReadOnlyDictionary<BtreeId, (BtreeRoot Root, string Problem)> _invalidRoots;

        public TopologyWalk(IBtreeCheckTarget target, IFsckReporter reporter, CancellationToken ct,
            IReadOnlyDictionary<BtreeId, (BtreeRoot Root, string Problem)> invalidRoots)
        {
            _target = target;
            _reporter = reporter;
            _ct = ct;
            _invalidRoots = invalidRoots;
            _reader = new CheckNodeReader(target.Device, target.Geometry);
        }

        public BtreeCheckCounters Counters { get; } = new();

        public void Run()
        {
            // A btree whose invalid root was dropped has no root now; it is rebuilt in its place in
            // btree order, so a run that kept the root (declined) reports the same, in the same order.
            var roots = _target.Roots().ToDictionary(r => r.Btree);
            foreach (var btree in roots.Keys.Union(_invalidRoots.Keys).Order())
            {
                _ct.ThrowIfCancellationRequested();
                roots.TryGetValue(btree, out var root);
                if (_invalidRoots.TryGetValue(btree, out var invalid) && (root is null || SameNode(root.Ptr, invalid.Root.Ptr)))
                    CheckBtree(invalid.Root, invalid.Problem);
                else if (root is not null)
                    CheckBtree(root);
            }
            if (_edited)
                _target.Sync();
        }

        private static bool SameNode(BtreePtrValue a, BtreePtrValue b) =>
            a.Seq == b.Seq && a.Ptrs.Count > 0 && b.Ptrs.Count > 0 && a.Ptrs[0].OffsetSectors == b.Ptrs[0].OffsetSectors;

        /// <param name="unusable">Why the root cannot be used without reading it (it is rebuilt from the scan), or null.</param>
        private void CheckBtree(BtreeRoot root, string? unusable = null)
        {
            _overlay.Clear();
            _rewrites.Clear();
            _stale.Clear();
            _lost.Clear();
            _droppedOffsets.Clear();
            _released.Clear();
            _reachable = null;
            _btree = root.Btree;
            _reachFrom = [(root.Level, Bpos.Max, root.Ptr.With(minKey: Bpos.Min, flags: root.Ptr.Flags | BtreePtrFlags.RangeUpdated))];
            _declined = false;

            // The root covers [min, max] whatever its header says: read it through a pointer that
            // says so (RangeUpdated), then compare the header.
            var rootPtr = root.Ptr.With(minKey: Bpos.Min, flags: root.Ptr.Flags | BtreePtrFlags.RangeUpdated);
            var node = new NodeRef
            {
                Btree = root.Btree,
                Level = root.Level,
                Parent = null,
                Ptr = rootPtr,
                Max = Bpos.Max,
                OriginalPtr = root.Ptr,
                OriginalMax = Bpos.Max,
            };
            if (unusable is not null)
            {
                RebuildRoot(root, node, FsckErrorId.BtreeRootUnreadable, unusable);
                return;
            }
            var read = _reader.Read(root.Btree, root.Level, Bpos.Max, rootPtr);
            Counters.NodesVisited++;
            if (!read.Ok)
            {
                RebuildRoot(root, node, FsckErrorId.BtreeRootUnreadable, read.Failure);
                return;
            }
            node.Generation = read.Generation;

            var rewriteRoot = false;
            if (read.HeaderMin != Bpos.Min || read.HeaderMax != Bpos.Max)
            {
                rewriteRoot = Report(FsckErrorId.BtreeRootBadRange, node,
                    $"root header covers [{read.HeaderMin.ToText()}..{read.HeaderMax.ToText()}]; rewritten to cover [min..max]");
            }

            if (root.Level > 0)
            {
                var (empty, _) = WalkInterior(node, read);
                if (empty)
                {
                    // Every child was dropped (unreadable interior nodes, say) while the leaves below
                    // them may be whole: the root is rebuilt over what the scan finds, as for an
                    // unreadable root. Nothing hangs below the old root any more.
                    _reachFrom = [];
                    _reachable = null;
                    _droppedOffsets.Add(node.Key.OffsetBytes);
                    RebuildRoot(root, node, FsckErrorId.BtreeNodeTopologyInteriorNodeEmpty, "root has no children left");
                    return;
                }
            }

            if (rewriteRoot)
            {
                _target.RewriteRootFullRange(root.Btree);
                _edited = true;
            }
            RewriteChangedNodes();
        }

        /// <summary>
        /// Checks and repairs the children of an interior node, then recurses into them. Returns
        /// whether the node was left with no children (reported here) and whether dropping it was accepted.
        /// </summary>
        private (bool Empty, bool DropAccepted) WalkInterior(NodeRef node, CheckedNode read)
        {
            var pointers = ChildPointers(node, read);
            var live = new List<NodeRef>(pointers.Count);

            foreach (var (max, ptr) in pointers)
            {
                _ct.ThrowIfCancellationRequested();
                var child = new NodeRef
                {
                    Btree = node.Btree,
                    Level = node.Level - 1,
                    Parent = node,
                    Ptr = ptr,
                    Max = max,
                    OriginalPtr = ptr,
                    OriginalMax = max,
                };
                var childRead = _reader.Read(node.Btree, child.Level, max, ptr, anyLevel: true);
                Counters.NodesVisited++;
                if (!childRead.Ok)
                {
                    _lost.Add((child.Level, child.Min, child.Max, child.Key.OffsetBytes));
                    // A node that is whole but whose range disagrees with its pointer may come back
                    // from the scan over the range its own header gives (the pointer is what is wrong).
                    var rangeOnly = childRead.FailureId is FsckErrorId.BtreeNodeBadMinKey or FsckErrorId.BtreeNodeBadMaxKey;
                    Drop(child, Report(FsckErrorId.BtreeNodeUnreadable, child,
                        $"{childRead.Failure}; pointer dropped from its parent; what the node scan finds for its range is spliced in, the rest is lost"),
                        mayReturn: rangeOnly);
                    continue;
                }
                if (childRead.Level != child.Level)
                {
                    Drop(child, Report(FsckErrorId.BtreeNodeTopologyChildLevelMismatch, child,
                        $"node is at level {childRead.Level}, expected {child.Level}; pointer dropped; what the node scan finds for its range is spliced in, the rest is lost"));
                    continue;
                }
                child.Generation = childRead.Generation;
                child.LiveKeys = childRead.LiveKeyCount();
                child.LastKey = childRead.LastLiveKey();
                if (NewerVersionOf(child, pointers) is { } newer)
                {
                    // Its keys are not counted as dropped: the newer version restores the range.
                    child.LiveKeys = 0;
                    Drop(child, Report(FsckErrorId.BtreeNodeStaleReachable, child,
                        $"gen {child.Generation}; the node scan found newer {newer.Describe()} for its range; pointer dropped, the range is rebuilt from the scan"),
                        mayReturn: true);
                    continue;
                }
                if (child.Max > node.Max)
                {
                    // The node's own max was shrunk by a repair above: clip the child that straddles
                    // it. Its old pointer lies outside the node now and goes when the node is
                    // rewritten; its new one is placed with the clip, so that whatever the answers to
                    // the boundary findings that follow, the clip leaves a child the parent points
                    // at. Only when the previous child already sits at the node's max is placing it
                    // left to the boundary repair that moves or drops that child.
                    var clip = Report(FsckErrorId.BtreeNodeTopologyBadMaxKey, child,
                        $"ends after its parent's max {node.Max.ToText()}; max shrunk to it, keys after it are lost");
                    MarkStale(node, child.Max, clip);
                    child.Max = node.Max;
                    child.Ptr = child.Ptr.With(flags: child.Ptr.Flags | BtreePtrFlags.RangeUpdated);
                    child.PlaceApplies = clip;
                    MarkRangeChanged(child, clip);
                    if (live.Count > 0 && live[^1].Max == node.Max)
                        child.Unplaced = true;
                    else
                        PutPointer(node, child.Max, child.Ptr, clip);
                }
                CheckBoundary(node, live, child);
                if (child.Unplaced)
                {
                    // It lost the boundary to the previous child, which keeps the node's max: the
                    // clipped pointer is never placed (see Detach for what an applied clip then means).
                    child.Unplaced = false;
                    if (child.PlaceApplies && !child.DropApplied)
                        Detach(child);
                }
            }
            CheckEnd(node, live);
            return WalkChildren(node, live);
        }

        /// <summary>Walks the kept children of an interior node (recursing into interior ones) and re-tiles around dropped ones.</summary>
        private (bool Empty, bool DropAccepted) WalkChildren(NodeRef node, List<NodeRef> live)
        {
            for (var i = 0; i < live.Count; i++)
            {
                var child = live[i];
                if (child.Level == 0)
                    continue;
                if (!WalkChild(child))
                    continue;
                live.RemoveAt(i);
                Retile(node, live, i);
                i--;
            }

            if (live.Count > 0)
                return (false, false);
            // A root left with no children is the caller's to report: it is rebuilt from the scan.
            if (node.Parent is null)
                return (true, false);
            var accepted = Report(FsckErrorId.BtreeNodeTopologyInteriorNodeEmpty, node, "no children left; dropped from its parent");
            return (true, accepted);
        }

        /// <summary>The node scan of this pass: run on first use, then shared by every btree.</summary>
        private NodeScan Scan()
        {
            if (_scan is null)
            {
                _scan = NodeScan.Run(_target.Device, _target.Geometry, _target.IsBlacklisted, _ct, _target.InNodeSpace);
                _reporter.Count("check_topology: node scan: bytes scanned", _scan.BytesScanned);
                _reporter.Count("check_topology: node scan: nodes found", _scan.Nodes.Count);
                var narrowed = _scan.Narrow(HeadersWiderThanTheirPointers(_scan));
                if (narrowed > 0)
                    _reporter.Count("check_topology: node scan: headers narrowed to their pointer", narrowed);
            }
            return _scan;
        }

        /// <summary>
        /// Found nodes whose header claims more than a pointer of the tree as it stands names them
        /// with (same node seq; read through readable interior nodes from every root) while every
        /// key they hold lies inside the pointer's range: their min or max was damaged with the
        /// checksum intact. Narrowed to the pointer's range, such a node is still the newest version
        /// of its own keys, and no longer of the older nodes' ranges around them. A node holding a
        /// key outside its pointer's range keeps its header: there the pointer may be what is wrong.
        /// </summary>
        private Dictionary<long, (Bpos Min, Bpos Max)> HeadersWiderThanTheirPointers(NodeScan scan)
        {
            var named = new Dictionary<long, (BtreeId Btree, byte Level, ulong Seq, Bpos Min, Bpos Max)>();
            var reader = new CheckNodeReader(_target.Device, _target.Geometry);
            foreach (var root in _target.Roots())
            {
                var walked = new HashSet<long>();
                foreach (var (level, max, child) in InteriorPointers(reader, root.Btree, [(root.Level, Bpos.Max, root.Ptr)],
                             child => walked.Add(child.Ptrs[0].OffsetBytes)))
                {
                    // A slot two pointers name tells nothing about either.
                    var offset = child.Ptrs[0].OffsetBytes;
                    if (!named.TryAdd(offset, (root.Btree, (byte)level, child.Seq, child.MinKey, max)))
                        named[offset] = default;
                }
            }
            var ranges = new Dictionary<long, (Bpos Min, Bpos Max)>();
            foreach (var n in scan.Nodes)
            {
                if (n.Status == ScannedNodeStatus.Rejected || !named.TryGetValue(n.Offset, out var p) || p.Seq != n.Seq || p.Seq == 0 ||
                    p.Btree != n.Btree || p.Level != n.Level || p.Min < n.Min || p.Max > n.Max || (p.Min == n.Min && p.Max == n.Max))
                {
                    continue;
                }
                var read = reader.Read(n.Btree, n.Level, n.Max, n.PointerOver(_target.Geometry.Device, n.Min, n.Max));
                if (!read.Ok)
                    continue;
                var inside = true;
                foreach (ref readonly var e in read.Keys.Entries)
                {
                    if (!e.Key.IsDeletion && (e.Pos < p.Min || e.Pos > p.Max))
                    {
                        inside = false;
                        break;
                    }
                }
                if (inside)
                    ranges[n.Offset] = (p.Min, p.Max);
            }
            return ranges;
        }

        /// <summary>
        /// An unreadable root (or one left with no children, <paramref name="id"/> says which): a new
        /// root is built over the highest level the node scan found nodes of this btree at (below
        /// the old root's level when it can), and walked like any other. Without any found node the
        /// btree is reset to an empty root.
        /// </summary>
        private void RebuildRoot(BtreeRoot root, NodeRef node, FsckErrorId id, string failure)
        {
            var scan = Scan();
            var level = scan.HighestLevel(root.Btree, root.Level);
            // An unreadable root's level may be what is damaged; a root that read but lost its
            // children is rebuilt from below it only.
            var readable = id != FsckErrorId.BtreeRootUnreadable;
            if (level < 0 && !readable)
                level = scan.HighestLevel(root.Btree, FormatLimits.MaxBtreeLevel);
            // Found nodes that would add nothing (leaves without a key, nodes already dropped, the
            // old root itself when only its header's level is wrong) do not make a root: the next
            // level down may, else the btree is empty.
            while (level >= 0 && !CanFillRebuiltRoot(root.Btree, level))
                level--;
            if (level < 0)
            {
                var what = readable
                    ? "the node scan found no node of the btree below it: reset to an empty leaf root"
                    : "the node scan found no node of the btree: reset to an empty root, its keys are lost";
                if (Report(id, node, $"{failure}; {what}"))
                {
                    _target.ResetToEmpty(root.Btree);
                    _edited = true;
                    Counters.NodesDropped++;
                    return;
                }
                // Declined: the old tree stays, and range changes accepted in it are rewritten.
                RewriteChangedNodes();
                return;
            }
            var apply = Report(id, node,
                $"{failure}; root rebuilt at level {level + 1} over the level {level} nodes the node scan found");
            // The new root exists only in the engine until the end of the pass: it is walked from
            // the pointers it is built with (a node key of its own, seq 0, that no real node has).
            var virtualPtr = new BtreePtrValue { Seq = 0, MinKey = Bpos.Min, Flags = BtreePtrFlags.RangeUpdated };
            var rebuilt = new NodeRef
            {
                Btree = root.Btree,
                Level = level + 1,
                Parent = null,
                Ptr = virtualPtr,
                Max = Bpos.Max,
                OriginalPtr = virtualPtr,
                OriginalMax = Bpos.Max,
            };
            // Range changes accepted in the old tree (a root that read but lost its children) are
            // moot once the new root replaces it, and still owed a rewrite when it does not.
            var oldTree = _rewrites.Keys.ToList();
            var live = new List<NodeRef>();
            FillFromScan(rebuilt, live, 0, Bpos.Min, Bpos.Max, place: false);
            // What is reachable from now on is what hangs below the new root's children.
            _reachFrom = [.. live.Select(c => (c.Level, c.OriginalMax, c.OriginalPtr))];
            _reachable = null;
            if (apply && !_declined && live.Count > 0)
            {
                _target.RebuildRoot(root.Btree, (byte)(level + 1), [.. live.Select(c => (c.Max, c.Ptr))]);
                _edited = true;
                foreach (var key in oldTree)
                    _rewrites.Remove(key);
            }
            var (empty, _) = WalkChildren(rebuilt, live);
            if (empty)
            {
                if (Report(FsckErrorId.BtreeNodeTopologyInteriorNodeEmpty, rebuilt, "the rebuilt root has no children left; btree reset to an empty leaf root"))
                {
                    _target.ResetToEmpty(root.Btree);
                    _edited = true;
                    Counters.NodesDropped++;
                    return;
                }
                RewriteChangedNodes();
                return;
            }
            RewriteChangedNodes();
        }

        /// <summary>
        /// True when a root rebuilt over <paramref name="level"/> would get a child: the nodes
        /// <see cref="FillFromScan"/> would take for the whole key range (not reachable from the old
        /// root, nor in a slot another node holds).
        /// </summary>
        private bool CanFillRebuiltRoot(BtreeId btree, int level)
        {
            var reachable = Reachable();
            return Found(btree, level, Bpos.Min, Bpos.Max, f => reachable.Contains(f.Offset) || _target.SlotTakenByAnother(f.Offset, f.Seq)).Count > 0;
        }

        /// <summary>
        /// The nodes the scan found for [<paramref name="from"/>, <paramref name="to"/>] at
        /// <paramref name="level"/> that could fill it: not dropped by this walk, and (leaves) holding
        /// a key inside the range — a key-less leaf adds nothing — nor <paramref name="skip"/>ped
        /// (checked before a leaf's keys are counted).
        /// </summary>
        private List<ScannedNode> Found(BtreeId btree, int level, Bpos from, Bpos to, Predicate<ScannedNode>? skip = null)
        {
            var found = Scan().Usable(btree, level, from, to);
            found.RemoveAll(f => _droppedOffsets.Contains(f.Offset) || (skip is not null && skip(f)));
            if (level == 0)
                found.RemoveAll(f => CountLeafKeys(f, from, to).Count == 0);
            return found;
        }

        /// <summary>
        /// Fills [<paramref name="from"/>, <paramref name="to"/>] of <paramref name="node"/>, which no
        /// kept child covers, with the nodes one level down that the node scan found for it, inserted
        /// into <paramref name="live"/> at <paramref name="index"/>. They tile the range exactly: each
        /// starts where the previous ends (extended down over a part no found node covers, which is
        /// lost and named), the last ends at <paramref name="to"/>. Returns false when the scan found
        /// nothing there (the caller then closes the gap as before). With <paramref name="place"/>
        /// false the pointers are only planned (a rebuilt root takes them all at once).
        /// </summary>
        private bool FillFromScan(NodeRef node, List<NodeRef> live, int index, Bpos from, Bpos to, bool place = true, long exclude = -1)
        {
            if (node.Level == 0)
                return false;
            // A node this parent already points at is settled by the boundary rules, not pulled in
            // twice. With no node left the range is closed as a gap.
            var level = node.Level - 1;
            var reachable = Reachable();
            var found = Found(node.Btree, level, from, to,
                f => f.Offset == exclude || reachable.Contains(f.Offset) || live.Any(l => l.Key.OffsetBytes == f.Offset) || _target.SlotTakenByAnother(f.Offset, f.Seq));
            if (found.Count == 0)
                return false;

            var device = _target.Geometry.Device;
            var refs = new List<NodeRef>(found.Count);
            var lostRanges = new List<string>();
            var olderVersions = new List<(NodeRef Ref, ScannedNode Node, string Newer)>();
            // Nodes whose header the scan narrowed to their pointer: rewritten, whatever range they take.
            HashSet<NodeRef>? narrowed = null;
            long kept = 0;
            var cursor = from;
            for (var i = 0; i < found.Count; i++)
            {
                var f = found[i];
                var useMin = f.UseMin > from ? f.UseMin : from;
                var useMax = f.UseMax < to ? f.UseMax : to;
                if (useMin > cursor)
                    lostRanges.Add($"[{cursor.ToText()}..{useMin.Predecessor().ToText()}]");
                var max = i == found.Count - 1 ? to : useMax;
                var child = new NodeRef
                {
                    Btree = node.Btree,
                    Level = level,
                    Parent = node,
                    Ptr = f.PointerOver(device, cursor, max),
                    Max = max,
                    OriginalPtr = f.PointerOver(device, f.Min, f.Max),
                    OriginalMax = f.Max,
                    Generation = f.Generation,
                };
                if (level == 0)
                {
                    var (count, last) = CountLeafKeys(f, useMin, useMax);
                    child.LiveKeys = count;
                    child.LastKey = last;
                    kept += count;
                }
                if (OlderVersionNote(f, useMin, useMax) is { } newer)
                    olderVersions.Add((child, f, newer));
                if (f.Narrowed)
                    (narrowed ??= []).Add(child);
                refs.Add(child);
                if (max.IsMax)
                    break;
                cursor = max.Successor();
            }
            if (refs[^1].Max < to)
                lostRanges.Add($"[{refs[^1].Max.Successor().ToText()}..{to.ToText()}]");

            var keysText = level == 0 ? $"{kept} keys kept" : "the keys below them are walked next";
            var lostText = lostRanges.Count == 0 ? "nothing lost" : $"lost (no node found, keys unknown): {string.Join(", ", lostRanges)}";
            var apply = Report(FsckErrorId.BtreeRangeRebuiltFromScan, node,
                $"[{from.ToText()}..{to.ToText()}] rebuilt from {refs.Count} level {level} node(s) the node scan found ({keysText}); {lostText}");
            foreach (var (child, f, newer) in olderVersions)
            {
                apply &= Report(FsckErrorId.BtreeRangeRestoredFromOlderVersion, child,
                    $"restored from an older version, gen {f.Generation} journal seq {f.JournalSeq} at offset {f.Offset}; {newer}; keys deleted or changed since that version may have come back in [{child.Min.ToText()}..{child.Max.ToText()}]");
            }

            live.InsertRange(index, refs);
            foreach (var child in refs)
            {
                // Placed once: a later fill elsewhere must not point at it again.
                reachable.Add(child.Key.OffsetBytes);
                if (apply)
                    _target.AdoptNode(child.Btree, child.Level, child.OriginalMax, child.OriginalPtr);
                if (place)
                    PutPointer(node, child.Max, child.Ptr, apply);
                else
                    Overlay(node)[child.Max] = child.Ptr;
                if (child.Min != child.OriginalPtr.MinKey || child.Max != child.OriginalMax || narrowed?.Contains(child) == true)
                    MarkRangeChanged(child, apply);
            }
            return true;
        }

        /// <summary>
        /// The slots the current btree's pointers lead to: every pointer of every interior node
        /// reachable through readable nodes at the expected level (leaves are not read). Nodes a
        /// stale drop released are taken out as the walk goes.
        /// </summary>
        private HashSet<long> Reachable()
        {
            if (_reachable is not null)
                return _reachable;
            _reachable = [];
            foreach (var (_, _, ptr) in _reachFrom)
            {
                if (ptr.Ptrs.Count > 0)
                    _reachable.Add(ptr.Ptrs[0].OffsetBytes);
            }
            var reader = new CheckNodeReader(_target.Device, _target.Geometry);
            foreach (var _ in InteriorPointers(reader, _btree, _reachFrom, child => _reachable.Add(child.Ptrs[0].OffsetBytes)))
            {
            }
            _reachable.ExceptWith(_released);
            return _reachable;
        }

        /// <summary>
        /// Every child pointer of the interior nodes readable from <paramref name="from"/>, with the
        /// level and max key of the child it names; a child is walked below only when
        /// <paramref name="firstSeen"/> says this is the first pointer to it.
        /// </summary>
        private IEnumerable<(int Level, Bpos Max, BtreePtrValue Child)> InteriorPointers(CheckNodeReader reader, BtreeId btree,
            IEnumerable<(int Level, Bpos Max, BtreePtrValue Ptr)> from, Func<BtreePtrValue, bool> firstSeen)
        {
            var pending = new Stack<(int Level, Bpos Max, BtreePtrValue Ptr)>(from);
            while (pending.Count > 0)
            {
                _ct.ThrowIfCancellationRequested();
                var (level, max, ptr) = pending.Pop();
                if (level == 0)
                    continue;
                var read = reader.Read(btree, level, max, ptr);
                if (!read.Ok)
                    continue;
                for (var i = 0; i < read.Keys.Count; i++)
                {
                    if (read.Keys[i].Key.Type != KeyType.BtreePtr || !BtreePtrValue.TryRead(read.Keys.ValueOf(i), out var child, out _) ||
                        child.Ptrs.Count == 0)
                    {
                        continue;
                    }
                    yield return (level - 1, read.Keys[i].Pos, child);
                    if (firstSeen(child) && level > 1)
                        pending.Push((level - 1, read.Keys[i].Pos, child));
                }
            }
        }

        /// <summary>The live keys of a found leaf inside [min, max], and the last of them.</summary>
        private (int Count, Bpos? Last) CountLeafKeys(in ScannedNode leaf, Bpos min, Bpos max)
        {
            var read = _reader.Read(leaf.Btree, 0, leaf.Max, leaf.PointerOver(_target.Geometry.Device, leaf.Min, leaf.Max));
            if (!read.Ok)
                return (0, null);
            var count = 0;
            Bpos? last = null;
            foreach (ref readonly var e in read.Keys.Entries)
            {
                if (e.Key.IsDeletion || e.Pos < min || e.Pos > max)
                    continue;
                count++;
                last = e.Pos;
            }
            return (count, last);
        }

        /// <summary>
        /// When a found node restores part of a range whose newer version is lost (an unreadable node
        /// this walk dropped, or a damaged node the scan rejected at the same level), says which.
        /// </summary>
        private string? OlderVersionNote(in ScannedNode f, Bpos min, Bpos max)
        {
            foreach (var (level, lostMin, lostMax, offset) in _lost)
            {
                if (level == f.Level && offset != f.Offset && lostMax >= min && lostMin <= max)
                {
                    var damaged = _scan!.TryGet(offset, out var r) && r.Status == ScannedNodeStatus.Rejected && r.Seq != f.Seq
                        ? $" (its damaged header reads gen {r.Generation}, journal seq {r.JournalSeq})"
                        : "";
                    return $"the newer version at offset {offset}{damaged} is unreadable";
                }
            }
            foreach (var r in _scan!.Rejected(f.Btree, min, max))
            {
                if (r.Level == f.Level && r.Seq != f.Seq && r.Offset != f.Offset &&
                    (r.Generation > f.Generation || r.JournalSeq > f.JournalSeq))
                {
                    return $"a newer version at offset {r.Offset} (gen {r.Generation}, journal seq {r.JournalSeq}, as its damaged header reads) is unreadable";
                }
            }
            return null;
        }

        /// <summary>
        /// Once the scan has run: the newer node it found for part of <paramref name="child"/>'s
        /// range, when the parent does not already point at it (a sibling overlap is the boundary
        /// rules' to settle) and it is not a copy of the child itself.
        /// </summary>
        private ScannedNode? NewerVersionOf(NodeRef child, List<(Bpos Max, BtreePtrValue Ptr)> siblings)
        {
            if (_scan is null || !_scan.TryGet(child.Key.OffsetBytes, out var self) ||
                self.Seq != child.OriginalPtr.Seq || self.Level != child.Level ||
                self.Status is not (ScannedNodeStatus.Superseded or ScannedNodeStatus.Clipped))
            {
                return null;
            }
            if (!_scan.TryGet(self.SupersededBy, out var newer) || newer.Seq == self.Seq || !newer.IsUsable)
                return null;
            // Stale only when the other node holds a later journal seq: at an equal one it holds no
            // update the reachable node lacks. That is the trace a crash leaves when it falls between
            // a restructure's node write and the interior update naming the new node: replay puts
            // the same keys into the node the durable pointer names.
            if (newer.JournalSeq != 0 && newer.JournalSeq <= self.JournalSeq)
                return null;
            foreach (var (_, ptr) in siblings)
            {
                if (ptr.Ptrs.Count > 0 && (ptr.Ptrs[0].OffsetBytes == newer.Offset || ptr.Seq == newer.Seq))
                    return null;
            }
            return newer;
        }

        /// <summary>Reads an interior child and walks it. Returns true when it was dropped.</summary>
        private bool WalkChild(NodeRef child)
        {
            // Read through the pointer as it was: a repaired (RangeUpdated) pointer would make the
            // reader drop the children that now stick out of the range, and those are clipped instead.
            var read = _reader.Read(child.Btree, child.Level, child.OriginalMax, child.OriginalPtr);
            if (!read.Ok)
            {
                _lost.Add((child.Level, child.Min, child.Max, child.Key.OffsetBytes));
                Drop(child, Report(FsckErrorId.BtreeNodeUnreadable, child,
                    $"{read.Failure}; pointer dropped from its parent; what the node scan finds for its range is spliced in, the rest is lost"));
                return true;
            }
            var (empty, dropAccepted) = WalkInterior(child, read);
            if (!empty)
                return false;
            Drop(child, dropAccepted);
            return true;
        }

        /// <summary>
        /// Closes the hole a child dropped after the boundary checks left at <paramref name="index"/>:
        /// the next child is extended down, or, when it was the last, the previous child is extended
        /// up and its subtree (already walked) walked again for its new right edge.
        /// </summary>
        private void Retile(NodeRef node, List<NodeRef> live, int index)
        {
            if (index < live.Count)
            {
                var next = live[index];
                var expected = index == 0 ? node.Min : live[index - 1].Max.Successor();
                if (expected < next.Min && FillFromScan(node, live, index, expected, next.Min.Predecessor()))
                    return;
                if (expected < next.Min)
                {
                    SetMin(next, expected, Report(FsckErrorId.BtreeNodeTopologyGap, next,
                        $"gap [{expected.ToText()}..{next.Min.Predecessor().ToText()}] left by a dropped node; min extended to {expected.ToText()}"));
                }
                return;
            }
            if (live.Count == 0)
            {
                // The node's only children are gone: what the scan finds for its range takes their place.
                CheckEnd(node, live);
                return;
            }
            var last = live[^1];
            var count = live.Count;
            CheckEnd(node, live);
            if (live.Count > count)
                return;
            if (last.Level > 0 && WalkChild(last))
            {
                live.RemoveAt(live.Count - 1);
                Retile(node, live, live.Count);
            }
        }

        /// <summary>Settles cur against the kept children before it; returns false when cur was dropped.</summary>
        private bool CheckBoundary(NodeRef node, List<NodeRef> live, NodeRef cur)
        {
            while (true)
            {
                var prev = live.Count > 0 ? live[^1] : null;
                // The first position cur may start at; none when prev already reaches Bpos.Max.
                Bpos? expected = prev is null ? node.Min : prev.Max.IsMax ? null : prev.Max.Successor();

                if (expected is { } e && e == cur.Min)
                    break;

                if (expected is { } start && start < cur.Min)
                {
                    if (FillFromScan(node, live, live.Count, start, cur.Min.Predecessor(), exclude: cur.Key.OffsetBytes))
                        continue;
                    SetMin(cur, start, Report(FsckErrorId.BtreeNodeTopologyGap, cur,
                        $"gap [{start.ToText()}..{cur.Min.Predecessor().ToText()}] before it; min extended to {start.ToText()}"));
                    break;
                }

                // Overlap: cur starts before succ(prev.max) (or before the parent's min).
                if (prev is not null && cur.Generation > prev.Generation)
                {
                    if (prev.Min >= cur.Min)
                    {
                        var dropPrev = Report(FsckErrorId.BtreeNodeTopologyOverwrittenByNextNode, prev,
                            $"lies inside newer next {cur.Describe()}; dropped, its keys are lost");
                        Drop(prev, dropPrev);
                        live.RemoveAt(live.Count - 1);
                        if (cur.Unplaced)
                            Place(node, cur, dropPrev);
                        continue;
                    }
                    var newMax = cur.Min.Predecessor();
                    var shrinkPrev = Report(FsckErrorId.BtreeNodeTopologyBadMaxKey, prev,
                        $"overlaps newer next {cur.Describe()}; max shrunk to {newMax.ToText()}, keys after it are lost");
                    SetMax(prev, newMax, shrinkPrev);
                    if (cur.Unplaced)
                        Place(node, cur, shrinkPrev);
                    break;
                }

                // Children come in max-key order, so cur's range sticks out past prev's (unless cur
                // was clipped onto prev's max); cur is overwritten when nothing it holds does.
                if (prev is not null && (expected is null || cur.Max <= prev.Max || cur.LastKey is not { } last || last <= prev.Max))
                {
                    Drop(cur, Report(FsckErrorId.BtreeNodeTopologyOverwrittenByPrevNode, cur,
                        $"everything it holds lies inside newer-or-equal previous {prev.Describe()}; dropped"));
                    return false;
                }

                var newMin = expected!.Value;
                SetMin(cur, newMin, Report(FsckErrorId.BtreeNodeTopologyBadMinKey, cur,
                    prev is null
                        ? $"starts before its parent's min; min shrunk to {newMin.ToText()}, keys before it are lost"
                        : $"overlaps newer-or-equal previous {prev.Describe()}; min shrunk to {newMin.ToText()}, keys before it are lost"));
                break;
            }
            live.Add(cur);
            return true;
        }

        private void CheckEnd(NodeRef node, List<NodeRef> live)
        {
            if (live.Count == 0)
            {
                FillFromScan(node, live, 0, node.Min, node.Max);
                return;
            }
            var last = live[^1];
            if (last.Max == node.Max)
                return;
            if (FillFromScan(node, live, live.Count, last.Max.Successor(), node.Max))
                return;
            SetMax(last, node.Max, Report(FsckErrorId.BtreeNodeTopologyBadMaxKey, last,
                $"last child ends at {last.Max.ToText()}, its parent at {node.Max.ToText()}; max set to {node.Max.ToText()}"));
        }

        /// <summary>The node's child pointers in key order, with this pass's edits merged in.</summary>
        private List<(Bpos Max, BtreePtrValue Ptr)> ChildPointers(NodeRef node, CheckedNode read)
        {
            var result = new List<(Bpos, BtreePtrValue)>(read.Keys.Count);
            var keys = read.Keys;
            for (var i = 0; i < keys.Count; i++)
            {
                ref readonly var e = ref keys[i];
                if (e.Key.Type != KeyType.BtreePtr)
                    continue;
                if (!BtreePtrValue.TryRead(keys.ValueOf(i), out var ptr, out _))
                    continue;
                result.Add((e.Key.Pos, ptr));
            }
            if (_overlay.TryGetValue(node.Key, out var edits))
            {
                var merged = new SortedDictionary<Bpos, BtreePtrValue>();
                foreach (var (pos, ptr) in result)
                    merged[pos] = ptr;
                foreach (var (pos, ptr) in edits)
                {
                    if (ptr is null)
                        merged.Remove(pos);
                    else
                        merged[pos] = ptr;
                }
                result.Clear();
                foreach (var (pos, ptr) in merged)
                    result.Add((pos, ptr));
            }
            // A repair above may have shrunk this node: children entirely outside its range now are
            // gone with the keys outside it (the rewrite drops them); one straddling an end is clipped.
            result.RemoveAll(c =>
            {
                if (c.Item1 >= node.Min && c.Item2.MinKey <= node.Max)
                    return false;
                MarkStale(node, c.Item1, node.RewritePending);
                return true;
            });
            return result;
        }

        private void MarkStale(NodeRef node, Bpos pos, bool apply)
        {
            Overlay(node)[pos] = null;
            if (!_stale.TryGetValue(node.Key, out var stale))
            {
                stale = [];
                _stale[node.Key] = stale;
            }
            stale[pos] = apply;
        }

        /// <summary>After <paramref name="node"/>'s range grew: deletes the stale pointers it covers again.</summary>
        private void DeleteUncoveredStale(NodeRef node, bool growthApplied)
        {
            if (!_stale.TryGetValue(node.Key, out var stale))
                return;
            foreach (var (pos, applied) in stale.Where(e => e.Key >= node.Min && e.Key <= node.Max).ToList())
            {
                stale.Remove(pos);
                DeletePointer(node, pos, applied && growthApplied);
            }
        }

        private void SetMin(NodeRef child, Bpos newMin, bool apply)
        {
            if (child.Unplaced)
                throw new InvalidOperationException($"topology repair would move the min of {child.ToText()} before placing its pointer");
            var grows = newMin < child.Min;
            child.Ptr = child.Ptr.With(minKey: newMin, flags: child.Ptr.Flags | BtreePtrFlags.RangeUpdated);
            MarkRangeChanged(child, apply);
            PutPointer(child.Parent!, child.Max, child.Ptr, apply);
            if (grows)
                DeleteUncoveredStale(child, apply);
        }

        private void SetMax(NodeRef child, Bpos newMax, bool apply)
        {
            var grows = newMax > child.Max;
            DeletePointer(child.Parent!, child.Max, apply);
            child.Max = newMax;
            child.Ptr = child.Ptr.With(flags: child.Ptr.Flags | BtreePtrFlags.RangeUpdated);
            PutPointer(child.Parent!, newMax, child.Ptr, apply);
            MarkRangeChanged(child, apply);
            if (grows)
                DeleteUncoveredStale(child, apply);
        }

        private void MarkRangeChanged(NodeRef child, bool applied)
        {
            if (!applied)
                return;
            child.RewritePending = true;
            child.AppliedMin = child.Min;
            child.AppliedMax = child.Max;
            _rewrites[child.Key] = child;
        }

        private void Drop(NodeRef child, bool apply, bool mayReturn = false)
        {
            child.Dropped = true;
            // A node dropped for what it is (inside a newer sibling, wrong level, empty) is never
            // pulled back in from the scan; a stale one may be, for the part no newer node claims,
            // and so may a whole node whose pointer gave it the wrong range.
            if (!mayReturn)
            {
                _droppedOffsets.Add(child.Key.OffsetBytes);
            }
            else
            {
                _released.Add(child.Key.OffsetBytes);
                _reachable?.Remove(child.Key.OffsetBytes);
            }
            if (!child.Unplaced)
                DeletePointer(child.Parent!, child.Max, apply);
            if (!apply)
                return;
            child.DropApplied = true;
            Lose(child);
        }

        /// <summary>
        /// Places the pointer of a clipped child once the previous child has left the parent's max
        /// (<paramref name="freed"/>: that repair was applied). When the clip was applied but the
        /// position was not freed, the child is detached, see <see cref="Detach"/>.
        /// </summary>
        private void Place(NodeRef node, NodeRef child, bool freed)
        {
            child.Unplaced = false;
            PutPointer(node, child.Max, child.Ptr, child.PlaceApplies && freed);
            if (child.PlaceApplies && !freed)
                Detach(child);
        }

        /// <summary>
        /// A child whose clip was applied but whose new pointer never is (the previous child keeps the
        /// parent's max): its old pointer goes with the parent's rewrite, so on disk it is gone as if
        /// dropped. It is not rewritten (no pointer leads to it) and its keys are counted as lost.
        /// </summary>
        private void Detach(NodeRef child)
        {
            child.Detached = true;
            Lose(child);
        }

        /// <summary>Accounts for a child an applied repair took out of the tree.</summary>
        private void Lose(NodeRef child)
        {
            _rewrites.Remove(child.Key);
            Counters.NodesDropped++;
            if (child.Level == 0 && child.LiveKeys > 0)
            {
                Counters.KeysDropped += child.LiveKeys;
                ReportLostKeys(child, keep: static _ => false);
            }
        }

        private void DeletePointer(NodeRef parent, Bpos pos, bool apply)
        {
            if (pos < parent.Min || pos > parent.Max)
            {
                // Outside the parent's (shrunk) range an edit at this position would reach a
                // neighbour: leave the pointer to the parent's rewrite, unless the range grows back.
                MarkStale(parent, pos, apply);
                return;
            }
            Overlay(parent)[pos] = null;
            if (!apply)
                return;
            _target.DeletePointer(parent.Btree, parent.Level, pos);
            _edited = true;
        }

        private void PutPointer(NodeRef parent, Bpos pos, BtreePtrValue value, bool apply)
        {
            if (pos < parent.Min || pos > parent.Max)
                throw new InvalidOperationException($"topology repair would put a pointer at {pos.ToText()} outside {parent.ToText()}");
            Overlay(parent)[pos] = value;
            if (!apply)
                return;
            _target.PutPointer(parent.Btree, parent.Level, pos, value);
            _edited = true;
        }

        private SortedDictionary<Bpos, BtreePtrValue?> Overlay(NodeRef parent)
        {
            if (!_overlay.TryGetValue(parent.Key, out var edits))
            {
                edits = [];
                _overlay[parent.Key] = edits;
            }
            return edits;
        }

        /// <summary>
        /// Rewrites, top-down, every live node whose range an accepted repair changed, so its header
        /// matches its pointer again. Keys a shrunk leaf loses are counted first, from its old slot.
        /// </summary>
        private void RewriteChangedNodes()
        {
            var nodes = _rewrites.Values
                .Where(n => n.RewritePending && !n.DroppedOrOrphaned())
                .OrderByDescending(n => n.Level)
                .ThenBy(n => n.AppliedMax)
                .ToList();
            foreach (var n in nodes)
            {
                _ct.ThrowIfCancellationRequested();
                if (n.Level == 0)
                    Counters.KeysDropped += KeysOutside(n);
                _target.RewriteNode(n.Btree, n.Level, n.AppliedMax);
                _edited = true;
            }
        }

        private int KeysOutside(NodeRef leaf) =>
            ReportLostKeys(leaf, pos => pos >= leaf.AppliedMin && pos <= leaf.AppliedMax);

        /// <summary>Reports (and counts) the live keys of a leaf that <paramref name="keep"/> rejects as lost.</summary>
        private int ReportLostKeys(NodeRef leaf, Func<Bpos, bool> keep)
        {
            var read = _reader.Read(leaf.Btree, 0, leaf.OriginalMax, leaf.OriginalPtr);
            if (!read.Ok)
                return 0;
            var lost = 0;
            foreach (ref readonly var e in read.Keys.Entries)
            {
                if (e.Key.IsDeletion || keep(e.Key.Pos))
                    continue;
                lost++;
                _reporter.KeyLost(leaf.Btree, e.Key.Pos);
            }
            return lost;
        }

        /// <summary>
        /// Reports a finding; true when its repair is to be applied. The repairs of one btree build on
        /// each other, so once one is declined the rest of that btree's are reported and not applied:
        /// what is applied is always a consistent prefix, and the next run takes it from there.
        /// </summary>
        private bool Report(FsckErrorId id, NodeRef node, string detail)
        {
            Counters.Findings++;
            var repair = _reporter.Report(id, node.ToText(), detail) && !_declined;
            if (!repair)
            {
                _declined = true;
                return false;
            }
            Counters.Repairs++;
            return true;
        }
    }
}
