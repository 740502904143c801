#!/bin/bash
# A double-forking daemon that calls setsid and closes every descriptor
# (ours too) is still recorded to the end: record waits for it, and its
# trace holds its 50 leaked blocks of 2468 bytes.
. "$TOP/tests/e2e/lib.sh"
"$HT" record --quiet --all -o t.htr "$E2E/prog_h_daemon" "$WORK/marker" || fail "record exited $?"
[ -f marker ] || fail "the daemon did not finish before record returned"
found=0
for c in t.htr.*; do
    [ -f "$c" ] || continue
    [ "$(jget "$(tstat "$c" 2468)" allocs)" = 50 ] && found=1
done
[ $found = 1 ] || fail "no trace holds the daemon's 50 allocations"
"$HT" leaks t.htr >/dev/null || fail "leaks on the parent's trace failed"
echo ok
