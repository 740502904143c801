#!/bin/bash
# Allocation inside signal handlers, the program's own SIGSEGV and SIGPROF
# handlers, and all signals blocked: same output as a native run, in both
# modes.
. "$TOP/tests/e2e/lib.sh"
want=$("$E2E/prog_h_signals") || fail "native run failed"
for mode in --all ""; do
    got=$("$HT" record --quiet $mode -o "t$mode.htr" "$E2E/prog_h_signals") || fail "record $mode exited $?"
    expect_eq "output ($mode)" "$got" "$want"
    "$HT" report "t$mode.htr" >/dev/null || fail "report ($mode) failed"
done
echo ok
