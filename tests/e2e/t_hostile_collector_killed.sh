#!/bin/bash
# The collector is SIGKILLed while the program runs: the program goes on
# unharmed and finishes (it must not block forever on a full ring).
. "$TOP/tests/e2e/lib.sh"
"$HT" record --quiet --all -o t.htr "$E2E/prog_h_longrun" 4 >out 2>err &
rec=$!
sleep 1
kill -9 $rec
for _ in $(seq 1 200); do
    grep -q "longrun done" out && break
    sleep 0.1
done
grep -q "longrun done" out || fail "program did not finish after the collector died"
echo ok
