#!/bin/bash
# More live processes than record's soft RLIMIT_NOFILE: the collector holds
# a trace file open for each, and with a soft limit of 12 it lost the
# traces beyond ("cannot write trace ...: Too many open files"). record
# raises its own soft limit to the hard one after spawning the program,
# whose limit stays as given.
. "$TOP/tests/e2e/lib.sh"
command -v prlimit >/dev/null || skip "no prlimit(1)"
prlimit --nofile=12:4096 true 2>/dev/null || skip "cannot set RLIMIT_NOFILE here"
prlimit --nofile=12:4096 "$HT" record -o p.htr \
    sh -c 'ulimit -n; for i in $(seq 30); do sleep 0.5 & done; wait' >out 2>err ||
    fail "record exited $?: $(cat err)"
expect_eq "the program's own limit" "$(cat out)" 12
grep -q "Too many open files" err && fail "traces lost: $(head -3 err)"
n=$(ls p.htr.* 2>/dev/null | wc -l)
[ "$n" -ge 30 ] || fail "$n traces of forked processes, want at least 30 (the sleeps)"
for f in p.htr.*; do
    "$HT" report "$f" >/dev/null 2>&1 || fail "report of $f exited $?"
done
echo ok
