#!/bin/bash
# Every member of the malloc family, counted call by call in an exact
# (--all) trace of prog_family (see the table at the top of prog_family.c):
# allocations and frees per size, what leaked, no free(NULL), EXIT 0.
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/t_record_lib.bash"
"$HT" record --all --quiet -o t.htr "$E2E/prog_family" >out || fail "record exited $? ($(cat out))"
grep -q "family ok" out || fail "program said: $(cat out)"
J=$(rstat t.htr)
# malloc 1001..1008, calloc 3*(337+i): one each; the first of each leaked.
for i in 0 1 2 3 4 5 6 7; do
    check "$J" "n(j['allocs'], $((1001 + i))) == 1" "malloc($((1001 + i)))"
    check "$J" "n(j['allocs'], $((3 * (337 + i)))) == 1" "calloc(3, $((337 + i)))"
done
check "$J" "n(j['frees'], 1001) == 0 and sum(n(j['frees'], s) for s in range(1002, 1009)) == 7" "malloc frees"
# realloc: NULL->1021, grown to 1031 (1021 freed by it), 4000 -> 100 -> freed by realloc(p, 0)
check "$J" "n(j['allocs'], 1021) == 1 and n(j['frees'], 1021) == 1" "realloc(NULL, 1021) then grown"
check "$J" "n(j['allocs'], 1031) == 1 and n(j['frees'], 1031) == 0" "realloc grown to 1031, leaked"
check "$J" "n(j['allocs'], 4000) == 1 and n(j['frees'], 4000) == 1" "realloc(NULL, 4000) then shrunk"
# reallocarray: 7*100 then 7*149 (leaked)
check "$J" "n(j['allocs'], 700) == 1 and n(j['frees'], 700) == 1" "reallocarray(NULL, 7, 100)"
check "$J" "n(j['allocs'], 1043) == 1 and n(j['frees'], 1043) == 0" "reallocarray(p, 7, 149): one allocation"
for s in 1051 1088 1061 1069 1087 1093; do
    check "$J" "n(j['allocs'], $s) == 8 and n(j['frees'], $s) == 7" "8 allocations / 7 frees of $s"
done
# asprintf's final strings: "asprintf N heaptrace family test" + NUL = 33
check "$J" "n(j['allocs'], 33) >= 8 and n(j['frees'], 33) >= 7" "asprintf"
# What is live at exit (the EXIT snapshot) is exactly the leaked set.
for s in 1001 1011 1031 1043 1051 1088 1061 1069 1087 1093; do
    check "$J" "n(j['live_end'], $s) == 1" "leaked block of $s at exit"
done
check "$J" "j['free_null'] == 0" "free(NULL) recorded"
check "$J" "j['exit'] == [0, 0]" "EXIT record"
check "$J" "j['snapshots'] == [3]" "one snapshot, at exit"
echo ok
