#!/bin/bash
# How the program ends: record exits with its status (128+signal when
# killed), the trace holds everything before the end (7 x 7001) even after
# _exit, abort and SIGKILL, and EXIT says how it ended. The exact counts
# are final after exit and _exit, and said to be lower bounds after a
# kill. SIGTERM sent to record reaches the program.
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/t_record_lib.bash"
P="$E2E/prog_rec_exit"
# totals TRACE: the report's exact counts, as JSON.
totals() {
    "$HT" report --json "$1" | python3 -c '
import json, sys
t = json.load(sys.stdin)["totals"]
print(json.dumps({"allocs": t["allocs"], "frees": t["frees"], "final": t.get("counts_final", True)}))'
}
run() { # name want_status want_how want_code args...
    local name=$1 want=$2 how=$3 code=$4
    shift 4
    "$HT" record --all --quiet -o "$name.htr" "$P" "$@" 2>"$name.err"
    expect_eq "$name: record's exit status" "$?" "$want"
    local J
    J=$(rstat "$name.htr") || fail "$name: dump failed"
    check "$J" "n(j['allocs'], 7001) == 7 and n(j['live_end'], 7001) == 7" "$name: the 7 blocks"
    check "$J" "j['exit'] == [$how, $code]" "$name: EXIT"
    # Killed: the program never wrote its final counts; the collector's
    # count of the events stands in (it said "0 calls" beside 7 live).
    check "$(totals "$name.htr")" "j['allocs'] >= 7 and j['final'] == ($how == 0)" \
        "$name: exact counts"
}
run exit3 3 0 3 exit 3
run exit0 0 0 0 exit 0
run uexit 5 0 5 _exit 5
run abort 134 1 6 abort
run kill 137 1 9 kill
# Sampled, where the counts come from the program alone: after _exit they
# are the same as after exit (a sampled trace said "0 calls (exact)":
# _exit skipped the handler that writes them); after a kill they are not
# claimed final.
"$HT" record --quiet -o s_exit.htr "$P" exit 0 || fail "sampled exit: $?"
"$HT" record --quiet -o s_uexit.htr "$P" _exit 0 || fail "sampled _exit: $?"
"$HT" record --quiet -o s_kill.htr "$P" kill
A=$(totals s_exit.htr)
check "$A" "j['allocs'] >= 7 and j['final']" "sampled exit: counts"
expect_eq "sampled _exit: the same counts as exit" "$(totals s_uexit.htr)" "$A"
check "$(totals s_kill.htr)" "not j['final']" "sampled kill: counts said final"
"$HT" report s_kill.htr | grep -q "allocations   at least " ||
    fail "sampled kill: report does not say 'at least': $("$HT" report s_kill.htr | grep allocations)"
# A vfork child's _exit runs on the parent's memory: it must not end the
# parent's recording (7 more blocks after it, then exit 4).
"$HT" record --all --quiet -o vf.htr "$P" vfork 4 2>vf.err
expect_eq "vfork: record's exit status" "$?" 4
J=$(rstat vf.htr) || fail "vfork: dump failed"
check "$J" "n(j['allocs'], 7001) == 14 and n(j['live_end'], 7001) == 14 and j['exit'] == [0, 4]" \
    "vfork: the 14 blocks and EXIT"
check "$(totals vf.htr)" "j['final'] and j['allocs'] >= 14" "vfork: counts"
# A process that is not record's child and ends by _exit (dash does) has
# its status in EXIT: it was "unknown", as record cannot wait for it.
"$HT" record --quiet -o sh.htr sh -c 'sh -c "exit 7"; true' || fail "sh: $?"
n=0
for f in sh.htr.*; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    check "$(rstat "$f")" "j['exit'] == [0, 7]" "grandchild $f: EXIT"
done
expect_eq "sh: traces of forked processes" "$n" 1
# SIGTERM to record is forwarded; the program exits 42 on it.
"$HT" record --all --quiet -o term.htr "$P" term >term.out 2>term.err &
rp=$!
for _ in $(seq 100); do grep -q ready term.out 2>/dev/null && break; sleep 0.05; done
grep -q ready term.out || fail "term: program never became ready"
kill -TERM $rp
wait $rp
expect_eq "term: record's exit status" "$?" 42
check "$(rstat term.htr)" "j['exit'] == [0, 42]" "term: EXIT"
# Summary line when not quiet: path, events, size.
"$HT" record --all -o verbose.htr "$P" exit 0 2>v.err
grep -q "^heaptrace: wrote verbose.htr ([0-9]* events, " v.err || fail "summary line: $(cat v.err)"
# ... and the size is the file's, last segments included (it once said
# 4096 bytes: the header, counted before the trace was finished).
said=$(sed -n 's/^heaptrace: wrote verbose.htr ([0-9]* events, \([0-9]*\) bytes).*/\1/p' v.err)
[ -z "$said" ] || expect_eq "summary size" "$said" "$(stat -c %s verbose.htr)"
# -q is --quiet: no summary line (it was refused as an unknown option).
"$HT" record -q --all -o q.htr "$P" exit 0 2>q.err || fail "record -q exited $?: $(cat q.err)"
[ ! -s q.err ] || fail "record -q wrote to stderr: $(cat q.err)"
[ -s q.htr ] || fail "record -q wrote no trace"
# A process gone before the collector found it still has its name in the
# file header (it was empty: /proc/PID no longer existed).
for i in 1 2 3; do
    rm -f t$i.htr
    "$HT" record -q -o t$i.htr /bin/true || fail "record /bin/true exited $?"
    "$HT" dump t$i.htr | head -1 | grep -Eq 'exe="[^"]*/true" argv="/bin/true"' ||
        fail "file header of /bin/true: $("$HT" dump t$i.htr | head -1)"
done
echo ok
