#!/bin/bash
# bench/run.sh BUILD -- heaptrace beside the native run and beside heaptrack.
#
# For each workload: native, `heaptrace record` (default sampling),
# `heaptrace record --all` and `heaptrack`, alternating within each of
# BENCH_RUNS rounds (default 5); medians. Then the analysis time of
# `heaptrace report` on the --all trace against `heaptrack_print` on
# heaptrack's, and the server scenario: redis-server under
# `heaptrace record --max-size 64M --snapshot-interval 10` driven by
# redis-benchmark on loopback, against native.
#
# Environment:
#   BENCH_RUNS=N      rounds per workload (default 5; 1 with BENCH_QUICK);
#                     the analysis and redis runs use at most 3
#   BENCH_QUICK=1     smoke mode: 1 round, smaller workloads, shorter redis
#   BENCH_ONLY=a,b    only these workloads (alloc_loop churn_mt realloc_parse
#                     sqlite3 python3 redis)
#   BENCH_SAVE=0|1    write the tables to bench/RESULTS.md (default: 1 for a
#                     full run in which every heaptrace mode worked)
#   BENCH_KEEP=1      keep the work directory (traces, logs)
#
# The tables also go to BUILD/bench/RESULTS.md. Peak RSS is ru_maxrss of
# the largest process in the tree (for heaptrack that can be its
# interpreter, for heaptrace the collector or the program).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "bench: no build directory '${1:-build}'" >&2; exit 1; }
HT=$BUILD/heaptrace
OUT=$BUILD/bench
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then RUNS=${BENCH_RUNS:-1}; else RUNS=${BENCH_RUNS:-5}; fi
ONLY=${BENCH_ONLY:-}
CC=${CC:-gcc}

mkdir -p "$OUT"
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
WORK=$(mktemp -d /tmp/ht-bench.XXXXXX)
REDIS_PID=""
cleanup() {
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null; fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: work directory kept: $WORK" >&2
    else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
RAW=$WORK/raw.txt
: >"$RAW"

log() { echo "bench: $*" >&2; }
want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

# ---- build the runner and the C workloads ----
$CC -std=gnu11 -O2 -Wall -o "$OUT/runner" "$TOP/bench/runner.c" || exit 1
for w in alloc_loop churn_mt realloc_parse; do
    $CC -std=gnu11 -O2 -g -fno-omit-frame-pointer -Wall -o "$OUT/$w" "$TOP/bench/$w.c" -lpthread || exit 1
done
RUNNER=$OUT/runner

# cpu_probe: median wall time of a fixed piece of work pinned to each CPU
# in turn. On a shared VM one CPU can run much slower than another for
# minutes at a time (seen here: vCPU 1 at 0.6x of vCPU 0 while the host
# was busy), and a run that lands on it is slow whatever it is; printed at
# start and end so that a table can be read with that in mind.
cpu_probe() {
    command -v taskset >/dev/null || { echo "n/a (no taskset)"; return; }
    local c out=""
    for ((c = 0; c < $(nproc); c++)); do
        local ts=()
        for _ in 1 2 3; do
            local t0 t1
            t0=$(date +%s%N)
            taskset -c "$c" "$OUT/realloc_parse" 20000 >/dev/null 2>&1
            t1=$(date +%s%N)
            ts+=($(((t1 - t0) / 1000000)))
        done
        out+="${out:+, }cpu$c $(printf '%s\n' "${ts[@]}" | sort -n | sed -n 2p) ms"
    done
    echo "$out"
}
PROBE0=$(cpu_probe)

# python3: the real interpreter, not a pyenv-style wrapper script (which
# would be recorded as bash). Debian's /usr/bin/python3 when present.
PY=""
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3
elif command -v python3 >/dev/null; then PY=$(python3 -c 'import sys; print(sys.executable)'); fi

# ---- which tools work ----
HT_OK=0 HT_WHY="heaptrace not built"
if [ -x "$HT" ]; then
    if "$HT" record -o "$WORK/probe.htr" "$OUT/alloc_loop" 1000 >/dev/null 2>"$WORK/probe.err" &&
        [ -s "$WORK/probe.htr" ]; then
        HT_OK=1
    else
        HT_WHY="heaptrace record failed: $(tail -n1 "$WORK/probe.err")"
    fi
fi
HT_REPORT_OK=0
if [ $HT_OK = 1 ] && "$HT" report "$WORK/probe.htr" >/dev/null 2>&1; then HT_REPORT_OK=1; fi
HK_OK=0
command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null && HK_OK=1
[ $HT_OK = 1 ] || log "heaptrace columns skipped: $HT_WHY"
[ $HK_OK = 1 ] || log "heaptrack columns skipped: heaptrack not installed"

# ---- workloads: name, then the command (stdin from $WORK/NAME.in if it exists) ----
if [ "$QUICK" = 1 ]; then
    N_LOOP=200000 N_CHURN=300000 N_PARSE=30000 N_SQL=30000 N_PY=40000 N_REDIS=20000
else
    N_LOOP=1000000 N_CHURN=2000000 N_PARSE=150000 N_SQL=200000 N_PY=150000 N_REDIS=200000
fi

gen_sql() {  # a scripted sqlite3 session: a table, rows in transactions, indexes, queries
    awk -v n="$1" -v batch=10000 'BEGIN {
      q = sprintf("%c", 39)
      print "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, note TEXT);"
      for (i = 0; i < n; i++) {
        if (i % batch == 0) print "BEGIN;"
        printf "INSERT INTO t(name, grp, val, note) VALUES(%sname%d%s, %d, %d.%d, %snote for row %d%s);\n",
               q, i * 7919 % 100003, q, i % 100, i % 1000, i % 10, q, i, q
        if (i % batch == batch - 1 || i == n - 1) print "COMMIT;"
      }
      print "CREATE INDEX t_name ON t(name);"
      print "CREATE INDEX t_grp ON t(grp, val);"
      print "SELECT count(*), sum(val) FROM t;"
      print "SELECT grp, count(*), avg(val) FROM t GROUP BY grp ORDER BY 3 DESC LIMIT 3;"
      print "SELECT count(*) FROM t WHERE name LIKE " q "name1%" q ";"
      print "SELECT name FROM t WHERE name = " q "name4242" q ";"
      print "SELECT a.grp, count(*) FROM t a JOIN t b ON a.id = b.id + 1 WHERE a.grp < 3 GROUP BY a.grp;"
    }'
}

WLS=()
declare -A CMD ENVS
add_wl() { local n=$1; shift; want "$n" || return 0; WLS+=("$n"); CMD[$n]="$*"; ENVS[$n]=""; }
add_wl alloc_loop "$OUT/alloc_loop" $N_LOOP
add_wl churn_mt "$OUT/churn_mt" $N_CHURN
add_wl realloc_parse "$OUT/realloc_parse" $N_PARSE
if command -v sqlite3 >/dev/null; then
    if want sqlite3; then gen_sql $N_SQL >"$WORK/sqlite3.in"; fi
    add_wl sqlite3 "$(command -v sqlite3)" "$WORK/bench.db"
else log "sqlite3 not installed: workload skipped"; fi
# PYTHONMALLOC=malloc: every object through malloc (by default pymalloc
# serves objects up to 512 bytes from its own mmap'd arenas, and the
# workload would make only a few thousand malloc calls)
if [ -n "$PY" ]; then
    add_wl python3 "$PY" "$TOP/bench/py_work.py" $N_PY
    ENVS[python3]="PYTHONMALLOC=malloc"
else log "python3 not installed: workload skipped"; fi

# run_one WL MODE ROUND: one measured run; appends a line to $RAW
run_one() {
    local wl=$1 mode=$2 round=$3 trace="" pre=() in=() line size=0
    rm -f "$WORK/bench.db" "$WORK/bench.db-journal"
    [ -f "$WORK/$wl.in" ] && in=(-i "$WORK/$wl.in")
    case $mode in
    native) pre=() ;;
    ht) trace=$WORK/$wl.ht.htr; pre=("$HT" record -o "$trace") ;;
    all) trace=$WORK/$wl.all.htr; pre=("$HT" record --all -o "$trace") ;;
    heaptrack) trace=$WORK/$wl.hk; pre=(heaptrack -o "$trace") ;;
    esac
    [ -n "$trace" ] && rm -f "$trace" "$trace".*
    # shellcheck disable=SC2086
    line=$(env ${ENVS[$wl]} "$RUNNER" "${in[@]}" -o "$WORK/$wl.$mode.out" -e "$WORK/$wl.$mode.err" -t 600 -- \
        "${pre[@]}" ${CMD[$wl]})
    case $mode in
    ht | all) size=$(cat "$trace" "$trace".[0-9]* 2>/dev/null | wc -c) ;;
    heaptrack) size=$(stat -c %s "$trace.zst" 2>/dev/null || echo 0) ;;
    esac
    local note=ok
    if [ "$mode" = heaptrack ] && [[ "$line" != *status=0* ]] &&
        { [[ "$line" == *status=sig:9* ]] ||
            grep -qi 'bad_alloc\|out of memory\|cannot allocate' "$WORK/$wl.$mode.err"; }; then
        note=oom
    fi
    if [ "$mode" != native ] && [ "$mode" != heaptrack ] &&
        ! cmp -s "$WORK/$wl.native.out" "$WORK/$wl.$mode.out"; then note=output-differs; fi
    echo "$wl $mode $round $line size=$size note=$note" >>"$RAW"
    log "$wl $mode #$round: $line size=$size $note"
}

MODES=(native)
[ $HT_OK = 1 ] && MODES+=(ht all)
[ $HK_OK = 1 ] && MODES+=(heaptrack)

for wl in "${WLS[@]}"; do
    for ((r = 1; r <= RUNS; r++)); do
        for m in "${MODES[@]}"; do run_one "$wl" "$m" "$r"; done
    done
    # analysis: heaptrace report on the --all trace vs heaptrack_print,
    # alternating, at most 3 rounds (they are slow and vary little)
    # "report" runs with the symbol cache of the previous run (what a user
    # analyzing a program again gets), "report_cold" with none
    # (HEAPTRACE_CACHE_DIR=off: every module's DWARF read afresh).
    if [ $HT_REPORT_OK = 1 ] && [ -s "$WORK/$wl.all.htr" ]; then
        rm -rf "$WORK/symcache"
        HEAPTRACE_CACHE_DIR="$WORK/symcache" "$HT" report "$WORK/$wl.all.htr" >/dev/null 2>&1
    fi
    for ((r = 1; r <= (RUNS < 3 ? RUNS : 3); r++)); do
        if [ $HT_REPORT_OK = 1 ] && [ -s "$WORK/$wl.all.htr" ]; then
            line=$("$RUNNER" -o "$WORK/$wl.report.out" -e "$WORK/$wl.report.err" -t 600 -- env HEAPTRACE_CACHE_DIR=off "$HT" report "$WORK/$wl.all.htr")
            echo "$wl report_cold $r $line size=0 calls=? note=ok" >>"$RAW"; log "$wl report (cold) #$r: $line"
            line=$("$RUNNER" -o "$WORK/$wl.report.out" -e "$WORK/$wl.report.err" -t 600 -- env HEAPTRACE_CACHE_DIR="$WORK/symcache" "$HT" report "$WORK/$wl.all.htr")
            # the allocation calls it counted, e.g. "allocations   1,025 calls, 1.2 MiB"
            calls=$(sed -n 's/^ *allocations *\([0-9,]*\) calls.*/\1/p' "$WORK/$wl.report.out" | head -n1 | tr -d ,)
            echo "$wl report $r $line size=0 calls=${calls:-?} note=ok" >>"$RAW"; log "$wl report #$r: $line calls=${calls:-?}"
        fi
        if [ $HK_OK = 1 ] && [ -s "$WORK/$wl.hk.zst" ]; then
            line=$("$RUNNER" -o "$WORK/$wl.print.out" -e "$WORK/$wl.print.err" -t 600 -- heaptrack_print "$WORK/$wl.hk.zst")
            # "calls to allocation functions: 668617 (249112/s)"
            calls=$(sed -n 's/^calls to allocation functions: *\([0-9]*\).*/\1/p' "$WORK/$wl.print.out" | head -n1)
            echo "$wl heaptrack_print $r $line size=0 calls=${calls:-?} note=ok" >>"$RAW"; log "$wl heaptrack_print #$r: $line calls=${calls:-?}"
        fi
    done
    # keep the work directory small: the traces of this workload are done
    rm -f "$WORK/$wl".*.htr* "$WORK/$wl.hk.zst" "$WORK/bench.db"
done

# ---- the server scenario: redis ----
redis_free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 20000))
        redis-cli -h 127.0.0.1 -p $p ping >/dev/null 2>&1 || { echo $p; return 0; }
    done
    return 1
}
# redis_run MODE ROUND
redis_run() {
    local mode=$1 round=$2 port pre=() trace=$WORK/redis.htr
    port=$(redis_free_port) || { log "redis: no free port"; return 1; }
    [ "$mode" = ht ] && pre=("$HT" record -o "$trace" --max-size 64M --snapshot-interval 10)
    rm -f "$trace" "$trace".*
    "$RUNNER" -o "$WORK/redis.$mode.srv" -e "$WORK/redis.$mode.srv.err" -t 900 -- "${pre[@]}" \
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --dir "$WORK" >"$WORK/redis.$mode.rusage" &
    REDIS_PID=$!
    local up=0
    for _ in $(seq 200); do
        redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && { up=1; break; }
        sleep 0.05
    done
    if [ $up = 0 ]; then
        log "redis ($mode): server did not start: $(tail -n2 "$WORK/redis.$mode.srv.err" | tr '\n' ' ')"
        kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID"; REDIS_PID=""
        return 1
    fi
    local t0 t1
    t0=$(date +%s.%N)
    timeout 600 redis-benchmark -h 127.0.0.1 -p "$port" -q -n $N_REDIS -c 20 \
        -t set,get,incr,lpush,lpop,sadd,hset,mset >"$WORK/redis.$mode.bench" 2>&1
    t1=$(date +%s.%N)
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1
    wait "$REDIS_PID"; REDIS_PID=""
    local size=0
    [ "$mode" = ht ] && size=$(cat "$trace" "$trace".[0-9]* 2>/dev/null | wc -c)
    # requests/s per test, from "SET: 98039.22 requests per second, p50=..."
    local rps
    rps=$(tr '\r' '\n' <"$WORK/redis.$mode.bench" | sed -n 's/^\([A-Z_]*\).*: \([0-9.]*\) requests per second.*/\1=\2/p' | sort -u | tr '\n' ' ')
    echo "redis $mode $round $(cat "$WORK/redis.$mode.rusage") size=$size bench_s=$(echo "$t1 - $t0" | bc) rps: $rps" >>"$RAW"
    log "redis $mode #$round: $(tail -n1 "$RAW" | cut -d' ' -f4-)"
}
if want redis; then
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        log "redis-server/redis-benchmark not installed: server scenario skipped"
    else
        RR=$RUNS; [ "$RR" -gt 3 ] && RR=3  # each round is ~15 s a mode
        for ((r = 1; r <= RR; r++)); do
            redis_run native "$r"
            [ $HT_OK = 1 ] && redis_run ht "$r"
        done
    fi
fi

# ---- tables ----
COMMIT=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$TOP" status --porcelain -- bench heaptrace-cli libheaptrace analyzer formats 2>/dev/null | grep -q . && echo "+local changes" || true)
CPU=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n1)
NCPU=$(nproc)
MEM=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
HKV=$( [ $HK_OK = 1 ] && heaptrack --version 2>/dev/null | head -n1 || echo "not installed")
{
    echo "# heaptrace benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $CPU, $NCPU cores, $MEM, $(. /etc/os-release && echo "$PRETTY_NAME"), glibc $(ldd --version | head -n1 | awk '{print $NF}')"
    echo "- commit: $COMMIT$DIRTY; $HKV"
    echo "- reproduce: make bench (BENCH_RUNS=N rounds, BENCH_QUICK=1 for a smoke run); raw runs in BENCH_KEEP=1's work directory"
    echo "- rounds: $RUNS (each round runs every mode once, in turn); figures are medians$( [ "$QUICK" = 1 ] && echo "; QUICK mode (smaller workloads)")"
    [ $HT_OK = 1 ] || echo "- heaptrace columns missing: $HT_WHY"
    echo "- load average (1 min) at start $LOAD0, at end $(cut -d' ' -f1 /proc/loadavg): with other processes running, absolute times are noisy; ratios come from alternating runs"
    echo "- the same work (realloc_parse 20000) pinned to each CPU, median of 3: at start $PROBE0; at end $(cpu_probe). On this VM one CPU can run far slower than the other for minutes (host contention), and any run that lands on it is slow, native or recorded"
    echo
    echo "Workloads (bench/): alloc_loop = $N_LOOP x malloc(1024)+free; churn_mt = 2 threads x $N_CHURN"
    echo "allocations of 8..4096 bytes under a 20-deep recursion, 4096 live per thread; realloc_parse ="
    echo "$N_PARSE records parsed into realloc-grown buffers; sqlite3 = a scripted session, $N_SQL rows"
    echo "inserted in transactions of 10000, two indexes, five queries; python3 = bench/py_work.py $N_PY"
    echo "(dicts, lists, JSON) with PYTHONMALLOC=malloc. heaptrace default sampling is one sample per"
    echo "512 KiB on average; --all records every allocation."
    echo
} >"$OUT/RESULTS.md"
python3 "$TOP/bench/tables.py" "$RAW" >>"$OUT/RESULTS.md"
trc=$?
[ $trc = 0 ] || [ $trc = 3 ] || exit 1
cat "$OUT/RESULTS.md"

SAVE=${BENCH_SAVE:-}
if [ -z "$SAVE" ]; then
    SAVE=0
    [ "$QUICK" != 1 ] && [ $HT_OK = 1 ] && [ -z "$ONLY" ] && [ $trc = 0 ] && SAVE=1
fi
if [ "$SAVE" = 1 ]; then
    cp "$OUT/RESULTS.md" "$TOP/bench/RESULTS.md"
    log "tables written to bench/RESULTS.md"
else
    log "tables written to $OUT/RESULTS.md (BENCH_SAVE=1 to update bench/RESULTS.md)"
fi
