#!/bin/bash
# 4 threads, 1000 allocations each of their own size, 990 freed: exact
# counts per thread, each size from exactly one thread, 10 each live.
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/t_record_lib.bash"
"$HT" record --all --quiet -o t.htr "$E2E/prog_rec_threads" >out || fail "record exited $?"
grep -q "threads ok" out || fail "program said: $(cat out)"
J=$(rstat t.htr)
for s in 2001 2002 2003 2004; do
    check "$J" "n(j['allocs'], $s) == 1000" "allocs of $s"
    check "$J" "n(j['frees'], $s) == 990" "frees of $s"
    check "$J" "n(j['tids'], $s) == 1" "threads allocating $s"
    check "$J" "n(j['live_end'], $s) == 10" "live $s at exit"
done
check "$J" "j['types'].get('thread', 0) >= 4" "THREAD records"
check "$J" "j['types'].get('totals', 0) >= 4" "TOTALS records"
echo ok
