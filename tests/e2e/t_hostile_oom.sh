#!/bin/bash
# Allocation failure comes back as NULL (with ENOMEM), never a crash, both
# for absurd sizes and under `ulimit -v`.
. "$TOP/tests/e2e/lib.sh"
for mode in --all ""; do
    "$HT" record --quiet $mode -o "a$mode.htr" "$E2E/prog_h_oom" 0 >out || fail "record $mode exited $?: $(cat out)"
    grep -q "^oom ok" out || fail "program said: $(cat out)"
done
# Under a 1.5 GiB address-space limit, 4000 x 1 MiB must run out. The limit
# is the program's only (set by a shell that execs it, which the trace
# follows): heaptrace itself may be built with a sanitizer that needs far
# more address space.
"$HT" record --quiet -o v.htr /bin/sh -c "ulimit -v 1500000 && exec '$E2E/prog_h_oom' 4000" >out ||
    fail "record under ulimit -v exited $?: $(cat out)"
got=$(sed -n 's/^oom ok \([0-9]*\)$/\1/p' out)
[ -n "$got" ] && [ "$got" -lt 4000 ] || fail "expected malloc to fail under ulimit -v, program said: $(cat out)"
"$HT" report v.htr >/dev/null || fail "report failed"
# The recorder's address space comes out of the same limit: the ring
# takes at most a sixteenth of it. It took ~216 MiB whatever the limit,
# and a program that got 300 MiB natively under a 400 MB limit failed at
# 152 MiB under heaptrace.
native=$(/bin/sh -c "ulimit -v 400000 && exec '$E2E/prog_h_oom' 4000" | sed -n 's/^oom ok \([0-9]*\)$/\1/p')
"$HT" record --quiet -o w.htr /bin/sh -c "ulimit -v 400000 && exec '$E2E/prog_h_oom' 4000" >out ||
    fail "record under ulimit -v 400000 exited $?: $(cat out)"
rec=$(sed -n 's/^oom ok \([0-9]*\)$/\1/p' out)
[ -n "$native" ] && [ -n "$rec" ] && [ "$rec" -ge $((native * 8 / 10)) ] ||
    fail "under ulimit -v 400000: $rec MiB recorded, $native MiB native"
echo ok
