#!/bin/bash
# C++: operator new/new[] and delete/delete[] reach malloc/free.
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/t_record_lib.bash"
"$HT" record --all --quiet -o t.htr "$E2E/prog_rec_cxx" >out || fail "record exited $?"
grep -q "cxx ok" out || fail "program said: $(cat out)"
J=$(rstat t.htr)
check "$J" "n(j['allocs'], 6001) == 10 and n(j['frees'], 6001) == 9" "new[]/delete[]"
check "$J" "n(j['allocs'], 6008) == 5 and n(j['frees'], 6008) == 5" "new/delete"
check "$J" "n(j['allocs'], 6016) == 1 and n(j['frees'], 6016) == 1" "std::vector reserve"
check "$J" "n(j['live_end'], 6001) == 1 and n(j['live_end'], 6008) == 0" "live at exit"
echo ok
