#!/bin/bash
# --max-size: a long exact trace stays within the bound; the oldest
# segments are gone, what is left reads cleanly and still ends with the
# exit snapshot holding the leaks.
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/t_record_lib.bash"
# 400 rounds of churn over 2048 sizes: more than twice the bound, so the
# ring wraps.
"$HT" record --all --quiet --max-size 1M -o t.htr "$E2E/prog_rec_threads" 400 >out || fail "record exited $?"
size=$(stat -c %s t.htr)
[ "$size" -le 1048576 ] || fail "trace is $size bytes, over 1M"

J=$(rstat t.htr)
check "$J" "j['exit'] == [0, 0] and j['snapshots'][-1] == 3" "exit snapshot kept"
check "$J" "all(n(j['live_end'], s) == 10 for s in (2001, 2002, 2003, 2004))" "leaks at exit"
check "$J" "j['seqs'][0] > 0" "the oldest segments were overwritten"
check "$J" "j['seqs'] == sorted(j['seqs']) and j['seqs'] == list(range(j['seqs'][0], j['seqs'][0] + len(j['seqs'])))" "segments in order, no gap"
"$HT" dump t.htr >/dev/null 2>err || fail "dump: $(cat err)"
echo ok
