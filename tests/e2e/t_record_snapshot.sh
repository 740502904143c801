#!/bin/bash
# Snapshots: every --snapshot-interval, by the program's own
# heaptrace_snapshot(), and from outside with `heaptrace snapshot PID` (of
# the program and of record itself); each also written to snap.N; the live
# set grows from one to the next; the last is the exit snapshot.
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/t_record_lib.bash"
"$HT" record --all --quiet --snapshot-interval 0.5 --snapshot-prefix snap -o t.htr \
    "$E2E/prog_rec_server" >out &
rp=$!
for _ in $(seq 100); do grep -q ready out 2>/dev/null && break; sleep 0.05; done
sleep 0.3
cp=$(pgrep -P $rp | head -n1)
[ -n "$cp" ] || fail "no program under record"
"$HT" snapshot "$cp" >/dev/null || fail "snapshot of the program"
sleep 0.2
"$HT" snapshot "$rp" >/dev/null || fail "snapshot via record's pid"
"$HT" snapshot $$ 2>err
expect_eq "snapshot of an unrecorded process" "$?" 1
expect_eq "its message" "$(cat err)" "heaptrace: process $$ is not being recorded by heaptrace"
wait $rp || fail "record exited $?"
J=$(rstat t.htr)
check "$J" "j['snapshots'].count(4) == 2" "two snapshots asked from outside"
check "$J" "j['snapshots'].count(5) == 1" "one from heaptrace_snapshot()"
check "$J" "j['snapshots'].count(1) >= 2" "interval snapshots"
check "$J" "j['snapshots'][-1] == 3" "exit snapshot last"
n=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["snapshots"]))' <<<"$J")
prev=-1
for i in $(seq 0 $((n - 1))); do
    [ -f "snap.$i" ] || fail "no snap.$i"
    S=$(rstat "snap.$i")
    check "$S" "j['segments'] == 1" "snap.$i is one segment"
    live=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["live_end"].get("8001", 0))' <<<"$S")
    [ "$live" -ge "$prev" ] || fail "snap.$i has $live live blocks, fewer than before ($prev)"
    prev=$live
done
[ -f "snap.$n" ] && fail "more snapshot files than snapshots"
expect_eq "live at exit" "$prev" 80
echo ok
