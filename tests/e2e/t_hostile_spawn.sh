#!/bin/bash
# vfork+exec, posix_spawn, and exec into a new image: all run normally, and
# the new image's allocations land in the same trace.
. "$TOP/tests/e2e/lib.sh"
"$HT" record --quiet --all -o t.htr "$E2E/prog_h_spawn" >out || fail "record exited $?"
grep -q '^spawned$' out || fail "posix_spawn'd echo did not print"
grep -q '^second image ok$' out || fail "exec'd image did not run"
expect_eq "allocs of the exec'd image" "$(jget "$(tstat t.htr 3333)" allocs)" 10
# The report names the program that was run, and what it exec'd into.
"$HT" report t.htr >rep || fail "report exited $?"
grep -q "^  exec      it exec'd; the last image: .*/prog_h_spawn$" rep ||
    fail "no exec line: $(sed -n 2,3p rep)"
echo ok
