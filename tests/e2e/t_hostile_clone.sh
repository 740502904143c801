#!/bin/bash
# Raw clone(2) children (no pthread_atfork handlers run): the program runs
# as it does natively, nothing hangs or crashes, the trace stays readable
# and holds the parent's allocations from before the clone.
#
# Known limit: a child made by a raw clone without CLONE_VM keeps writing
# into the parent's current ring buffer (shared memory, and no fork handler
# told it otherwise), so the parent's events in that one buffer can be lost
# (the collector detects the damage and skips the rest of the buffer). So
# the allocations after the clone are not checked here.
. "$TOP/tests/e2e/lib.sh"
for mode in --all ""; do
    out=$("$HT" record --quiet $mode -o "t$mode.htr" "$E2E/prog_h_clone") || fail "record $mode exited $?"
    expect_eq "output ($mode)" "$out" "clone ok"
    "$HT" report "t$mode.htr" >/dev/null || fail "report ($mode) failed"
done
st=$(tstat t--all.htr 100,150,199,200,250,299,300,350,399)
expect_eq "parent's allocations before the clones" "$(jget "$st" by_size 199)" 1
echo ok
