#!/bin/bash
# 16 threads allocating and freeing while threads are created and exit:
# exact counts with --all, no deadlock, and a clean run when sampling.
. "$TOP/tests/e2e/lib.sh"
out=$("$HT" record --quiet --all -o all.htr "$E2E/prog_h_threads" 2) || fail "record --all exited $?"
read -r _ want_a _ want_f <<<"$out"
st=$(tstat all.htr 777,1777,2777,3777)
expect_eq "allocs" "$(jget "$st" allocs)" "$want_a"
expect_eq "frees" "$(jget "$st" frees)" "$want_f"
out=$("$HT" record --quiet -o s.htr "$E2E/prog_h_threads" 2) || fail "record (sampled) exited $?"
[[ "$out" == allocs* ]] || fail "sampled run printed '$out'"
"$HT" report s.htr >/dev/null || fail "report of the sampled trace failed"
echo ok
