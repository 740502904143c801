#!/bin/bash
# malloc on short stacks (a PTHREAD_STACK_MIN thread, a handler on a
# SIGSTKSZ alternate stack): the shim's slow path must fit, with --all
# (every allocation takes it) and sampled; every allocation is recorded.
. "$TOP/tests/e2e/lib.sh"
"$HT" record --quiet --all -o all.htr "$E2E/prog_shim_smallstack" >out || fail "record --all exited $? ($(cat out))"
grep -qx "smallstack ok" out || fail "program said: $(cat out)"
expect_eq "thread allocs" "$(jget "$(tstat all.htr 3001,3002,3003,3004,3005,3006,3007,3008,3009,3010)" allocs)" 1000
expect_eq "handler allocs" "$(jget "$(tstat all.htr 4004)" allocs)" 20
"$HT" record --quiet -o s.htr "$E2E/prog_shim_smallstack" >out || fail "record exited $? ($(cat out))"
grep -qx "smallstack ok" out || fail "sampled run said: $(cat out)"
echo ok
