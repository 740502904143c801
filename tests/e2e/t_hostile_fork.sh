#!/bin/bash
# fork() from a multithreaded program while other threads allocate: no
# deadlock; every child is recorded in its own trace next to the parent's,
# with its own 100 allocations of 4321 bytes; the parent's trace has none.
. "$TOP/tests/e2e/lib.sh"
"$HT" record --quiet --all -o t.htr "$E2E/prog_h_forkmt" >out || fail "record exited $? ($(cat out))"
grep -q "forks done, 0 bad" out || fail "program said: $(cat out)"
expect_eq "parent's 4321-byte allocs" "$(jget "$(tstat t.htr 4321)" allocs)" 0
n=0
for c in t.htr.*; do
    [ -f "$c" ] || continue
    expect_eq "allocs in $c" "$(jget "$(tstat "$c" 4321)" allocs)" 100
    n=$((n + 1))
done
expect_eq "child traces" "$n" 20
echo ok
