#!/usr/bin/env bash
# Basalt side by side with the embedded engines users pick instead (RocksDB, LMDB) and the raw
# device (4 KiB pwrite + fdatasync), every peer in one benchmark process so they share the
# machine's state. Prints each peer's rate and its ratio to RocksDB and to the raw device.
#
#   bench/peers.sh                      build Release, run every peer, print the table
#   bench/peers.sh --ab REV             the same for this working tree and for REV (built in a
#                                       temporary git worktree), then both side by side with A/B
#   options:
#     --peers LIST    comma-separated peers (raw,RocksDB,LMDB,Basalt; "all" for every one).
#                     Default: all; with --ab: raw,Basalt (raw is the control for machine drift)
#     --keys N        keys in the load and read benchmarks (default 1000000)
#     --dir DIR       where the stores are created (default ${TMPDIR:-/tmp}); must not be tmpfs
#     --out DIR       where results go (default BenchmarkDotNet.Artifacts/peers-TIMESTAMP)
#     --rounds N      run everything N times (A/B: alternating A,B then B,A) and quote the median
#                     of the rounds' medians; default 1
#     -- ARGS         passed to BenchmarkDotNet (e.g. -- --filter '*PeerCommit*')
#
# In --ab mode REV is measured with this tree's harness (bench/Basalt.Benchmarks) but with REV's
# own Peers/BasaltPeer.cs when REV has one, so each side drives Basalt through its own API.
# Needs the system LMDB library (Debian package liblmdb0); installed here when missing and root.
set -euo pipefail

root=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
project=bench/Basalt.Benchmarks
ab_rev=""
peers=""
keys=""
store_dir=${TMPDIR:-/tmp}
out=""
rounds=1
bdn_args=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --ab) ab_rev=$2; shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --dir) store_dir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --) shift; bdn_args=("$@"); break ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "peers.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [[ -z "$peers" ]]; then
  peers=$([[ -n "$ab_rev" ]] && echo "raw,Basalt" || echo "all")
fi
[[ "$peers" == "all" ]] && peers=""
out=${out:-$root/BenchmarkDotNet.Artifacts/peers-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out" "$store_dir"
out=$(cd "$out" && pwd)
store_dir=$(cd "$store_dir" && pwd)

log() { echo "[peers $(date +%H:%M:%S)] $*" >&2; }

if [[ "$(stat -f -c %T "$store_dir")" == "tmpfs" ]]; then
  echo "peers.sh: $store_dir is on tmpfs, where fdatasync does nothing; pass --dir on a disk" >&2
  exit 2
fi

# LightningDB's bundled liblmdb needs glibc 2.38; the peer loads the system's liblmdb.so.0.
if [[ -z "$peers" || ",${peers,,}," == *",lmdb,"* ]] && ! ldconfig -p | grep -q 'liblmdb\.so\.0 '; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing liblmdb0 (system LMDB for the LMDB peer)"
    apt-get install -y -qq liblmdb0 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq liblmdb0 >/dev/null; }
  else
    echo "peers.sh: the LMDB peer needs the system library: apt-get install liblmdb0" >&2
    exit 2
  fi
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export BASALT_BENCH_DIR=$store_dir
[[ -n "$peers" ]] && export BASALT_BENCH_PEERS=$peers
[[ -n "$keys" ]] && export BASALT_BENCH_KEYS=$keys

build() { # tree
  log "building $1/$project (Release)"
  dotnet build "$1/$project" -c Release -nologo -v q -clp:ErrorsOnly >"$out/build-$(basename "$1").log" 2>&1 \
    || { cat "$out/build-$(basename "$1").log" >&2; exit 1; }
}

run() { # tree label tsv: runs the peer benchmarks (bdn_args) and adds them to tsv
  local dll=$1/$project/bin/Release/net10.0/Basalt.Benchmarks.dll
  local name
  name=$(basename "${3%.tsv}")
  runs=$((runs + 1))
  local log_file=$out/$name-$runs.log
  log "running the peer benchmarks of $2 ${bdn_args[*]} (log: $log_file)"
  (cd "$out" && dotnet "$dll" peers run --out "$3" --label "$2" --artifacts "$out/artifacts-$name" \
     "${bdn_args[@]}" >"$log_file" 2>&1) || { tail -50 "$log_file" >&2; log "run failed: $log_file"; exit 1; }
}
runs=0

head_label() {
  local label="working tree at $(git -C "$root" rev-parse --short HEAD)"
  [[ -n "$(git -C "$root" status --porcelain -- src bench Directory.Packages.props Directory.Build.props)" ]] && label+=" with changes"
  echo "$label"
}

dll=$root/$project/bin/Release/net10.0/Basalt.Benchmarks.dll
build "$root"

if [[ -z "$ab_rev" ]]; then
  for ((round = 1; round <= rounds; round++)); do
    run "$root" "$(head_label)" "$out/peers.tsv"
  done
  dotnet "$dll" peers table "$out/peers.tsv"
  log "saved: $out/peers.tsv"
  exit 0
fi

# ---- A/B: this tree against REV, REV built in a temporary worktree -----------------------------
rev_sha=$(git -C "$root" rev-parse --verify "$ab_rev^{commit}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/basalt-peers-ab.XXXXXX")
cleanup() { git -C "$root" worktree remove --force "$tmp/rev" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
log "checking out $ab_rev ($rev_sha) in $tmp/rev"
git -C "$root" worktree add --detach "$tmp/rev" "$rev_sha" >/dev/null 2>&1

# This tree's harness over REV's sources; REV's own BasaltPeer when it has one. The harness is
# the project file, Program.cs, the Peer*.cs classes and Peers/; every other benchmark class
# measures one component through that revision's API, so REV keeps its own (or has none). The
# harness's package pins go beside it, so REV's src keeps its own Directory.Packages.props.
rev_peer=$tmp/rev/$project/Peers/BasaltPeer.cs
[[ -f "$rev_peer" ]] && cp "$rev_peer" "$tmp/BasaltPeer.cs"
mkdir -p "$tmp/rev-own"
for f in "$tmp/rev/$project"/*.cs; do
  [[ -f "$f" ]] || continue
  case $(basename "$f") in Program.cs | Peer*.cs) ;; *) cp "$f" "$tmp/rev-own/" ;; esac
done
rm -rf "${tmp:?}/rev/$project"
mkdir -p "$tmp/rev/$project"
(cd "$root/$project" && tar --exclude=./bin --exclude=./obj -cf - .) | (cd "$tmp/rev/$project" && tar -xf -)
for f in "$tmp/rev/$project"/*.cs; do
  case $(basename "$f") in Program.cs | Peer*.cs) ;; *) rm -f "$f" ;; esac
done
cp "$tmp/rev-own/"*.cs "$tmp/rev/$project/" 2>/dev/null || true
[[ -f "$tmp/BasaltPeer.cs" ]] && cp "$tmp/BasaltPeer.cs" "$rev_peer" && log "using $ab_rev's own Peers/BasaltPeer.cs"
cp "$root/Directory.Packages.props" "$tmp/rev/bench/Directory.Packages.props"
build "$tmp/rev"

# A and B alternate class by class (and swap who goes first every round), so machine drift
# falls on both sides alike; with BenchmarkDotNet arguments of your own, each side runs them whole.
run_a() { run "$root" "$(head_label)" "$out/a.tsv"; }
run_b() { run "$tmp/rev" "$ab_rev (${rev_sha:0:10})" "$out/b.tsv"; }
user_args=("${bdn_args[@]}")
for ((round = 1; round <= rounds; round++)); do
  parts=(PeerCommitBenchmarks PeerLoadBenchmarks PeerReadBenchmarks)
  [[ ${#user_args[@]} -gt 0 ]] && parts=(whole)
  for part in "${parts[@]}"; do
    if [[ $part == whole ]]; then bdn_args=("${user_args[@]}"); else bdn_args=(--filter "*.$part.*"); fi
    if ((round % 2 == 1)); then run_a; run_b; else run_b; run_a; fi
  done
done
dotnet "$dll" peers table "$out/a.tsv"
dotnet "$dll" peers table "$out/b.tsv"
dotnet "$dll" peers compare "$out/a.tsv" "$out/b.tsv"
log "saved: $out/a.tsv $out/b.tsv"
