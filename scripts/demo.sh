#!/bin/bash
# scripts/demo.sh BUILD -- record examples/leaky_server under heaptrace and
# show what it leaks: the report, the snapshots, the diff between the first
# and the last snapshot (the leaking function on top), a flame graph SVG
# and a pprof profile. `make demo` builds everything first.
#
# Environment: DEMO_REQUESTS (default 20000), DEMO_SNAPSHOT_EVERY
# (requests between heaptrace_snapshot() calls, default 2000), DEMO_OUT
# (output directory, default BUILD/demo).
set -u
BUILD=${1:-build}
HT=$BUILD/heaptrace
SHIM=$BUILD/libheaptrace.so
EX=$BUILD/examples/leaky_server
OUT=${DEMO_OUT:-$BUILD/demo}
REQUESTS=${DEMO_REQUESTS:-20000}
EVERY=${DEMO_SNAPSHOT_EVERY:-2000}

die() { echo "demo: $*" >&2; exit 1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[ -t 1 ] || step() { printf '\n== %s\n' "$*"; }

# ---- what is missing? say so, once, clearly ----
missing=()
[ -x "$HT" ] || missing+=("$HT (make BUILD=$BUILD all)")
[ -f "$SHIM" ] || missing+=("$SHIM (the preload shim)")
[ -x "$EX" ] || missing+=("$EX (make BUILD=$BUILD $EX)")
if [ -x "$HT" ]; then
    for c in record report snapshots diff flamegraph pprof; do
        # the command table marks a subcommand that is not linked in yet
        if "$HT" "$c" --help 2>&1 | grep -q "not built into this heaptrace"; then
            missing+=("the '$c' command of heaptrace")
        fi
    done
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "demo: cannot run yet; missing:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi

mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
T=$OUT/leaky_server.htr
rm -f "$T" "$T".*

step "record: heaptrace record --all -o $T $EX --requests $REQUESTS --snapshot-every $EVERY"
echo "(leaky_server calls heaptrace_snapshot() every $EVERY requests)"
"$HT" record --all -o "$T" "$EX" --requests "$REQUESTS" --snapshot-every "$EVERY"
rc=$?
[ $rc -eq 0 ] || die "recording failed: leaky_server under heaptrace exited with status $rc"
[ -s "$T" ] || die "recording produced no trace file $T"

step "heaptrace report --top 5"
"$HT" report --top 5 "$T" || die "heaptrace report failed on $T"

step "heaptrace snapshots"
snaps=$("$HT" snapshots "$T") || die "heaptrace snapshots failed on $T"
echo "$snaps"
# the snapshot numbers: the first field of each line that starts with one
# (optionally after '#' or '@'); the one taken at exit is left out when there
# are others: at exit the program has torn down its caches, and the diff is
# about what grew while it ran
nums=$(echo "$snaps" | grep -vw exit | sed -n 's/^[[:space:]]*[#@]\{0,1\}\([0-9][0-9]*\)[[:space:]:].*/\1/p')
[ "$(echo "$nums" | grep -c .)" -ge 2 ] ||
    nums=$(echo "$snaps" | sed -n 's/^[[:space:]]*[#@]\{0,1\}\([0-9][0-9]*\)[[:space:]:].*/\1/p')
first=$(echo "$nums" | head -n1)
last=$(echo "$nums" | tail -n1)
[ -n "$first" ] && [ "$first" != "$last" ] ||
    die "expected at least two snapshots in $T (heaptrace_snapshot() every $EVERY requests); found: ${nums:-none}"

step "heaptrace diff $T@$first $T@$last   (what grew between the first and the last snapshot)"
"$HT" diff --top 5 "$T@$first" "$T@$last" || die "heaptrace diff failed"

step "flame graph and pprof"
"$HT" flamegraph -o "$OUT/leaky_server.svg" "$T" || die "heaptrace flamegraph failed"
"$HT" pprof -o "$OUT/leaky_server.pb.gz" "$T" || die "heaptrace pprof failed"
"$HT" flamegraph --metric leaked -o "$OUT/leaky_server.leaked.svg" "$T" 2>/dev/null ||
    rm -f "$OUT/leaky_server.leaked.svg"

cat <<EOF

Files:
  trace         $T
  flame graph   $OUT/leaky_server.svg  (open in a browser: click to zoom)$( [ -f "$OUT/leaky_server.leaked.svg" ] && printf '\n  leaks graph   %s' "$OUT/leaky_server.leaked.svg")
  pprof         $OUT/leaky_server.pb.gz  (go tool pprof -http=: $OUT/leaky_server.pb.gz)
Try also: $HT leaks $T
EOF
