#!/bin/bash
# 5,000 threads, each holding the ring buffer it wrote its first record to
# while it waits at a barrier for the others: more threads than buffers.
# With 1,024 buffers the threads beyond waited for one of them to come
# free, which could only happen when the barrier opened: 40 s stalled,
# then 31,048 events dropped. Now the ring has 4,096 and a thread that
# finds every buffer owned and none full drops its event instead of
# waiting (counted, reported): the program runs on, the exact counts and
# what was live at the end stay right.
. "$TOP/tests/e2e/lib.sh"
N=5000
start=$(date +%s)
out=$("$HT" record --quiet --all -o t.htr "$E2E/prog_h_manythreads" $N) || fail "record exited $?"
secs=$(($(date +%s) - start))
expect_eq "program output" "$out" "threads $N"
# A stall, not a speed: the program runs in about half a second.
[ "$secs" -lt 20 ] || fail "recording took $secs s: the threads stalled"
"$HT" report --json t.htr >r.json || fail "report exited $?"
python3 - "$N" <<'PY' || fail "report: $(head -c 600 r.json)"
import json, sys
n = int(sys.argv[1])
r = json.load(open("r.json"))
t = r["totals"]
# Every thread's 4321 and 5321; the program's own few (the thread array,
# stdout's buffer, thread-local storage) come on top.
assert t["allocs"] >= 2 * n, t
assert t["frees"] >= n, t
# Live at the end: the n blocks of 5321 bytes, whatever was dropped.
sites = [s for s in r["top"]["leaked"] if s["function"] == "run"]
assert sum(s["objects"] for s in sites) == n, sites
assert sum(s["bytes"] for s in sites) == n * 5321, sites
PY
echo ok
