#!/bin/bash
# A wrapper that execs the program, over several segments: the report's
# heap is the last image's (the shell's blocks went with the exec), its
# stacks are symbolized in every segment, and it names the shell as what
# was run. Every segment's keyframe restates the exec'd image; the replay
# once took each for a new exec, and kept the shell's blocks live.
. "$TOP/tests/e2e/lib.sh"
N=200000
"$HT" record --quiet --all --flush-interval 0.05 -o w.htr \
    sh -c "exec '$E2E/prog_slowleak' $N 1000000" >out || fail "record via sh exited $?"
"$HT" record --quiet --all -o d.htr "$E2E/prog_slowleak" $N 1000000 >>out ||
    fail "record exited $?"
nseg=$("$HT" dump w.htr | grep -c '^segment ')
[ "$nseg" -ge 3 ] || fail "want several segments, got $nseg"
"$HT" report --json w.htr >w.json 2>/dev/null || fail "report of the wrapped run exited $?"
"$HT" report --json d.htr >d.json 2>/dev/null || fail "report of the direct run exited $?"
W=$(cat w.json) D=$(cat d.json)
for k in live_objects live_bytes leaked_objects leaked_bytes allocs frees; do
    expect_eq "$k, wrapped vs direct" "$(jget "$W" totals $k)" "$(jget "$D" totals $k)"
done
case "$(jget "$W" program exe)" in
*/dash | */sh | */bash) ;;
*) fail "program: $(jget "$W" program exe), want the shell that was run" ;;
esac
# The file header too names the shell: the collector found the process
# after its exec, when /proc named prog_slowleak; the ring says.
"$HT" dump w.htr | head -1 | grep -Eq 'exe="[^"]*/(dash|sh|bash)"' ||
    fail "file header: $("$HT" dump w.htr | head -1)"
"$HT" report w.htr >rep 2>/dev/null || fail "report exited $?"
grep -q "^  exec      it exec'd; the last image: .*/prog_slowleak$" rep ||
    fail "no exec line: $(sed -n 2,3p rep)"
grep -A1 "sites by leaked" rep | grep -q "leak_session (prog_slowleak.c:" ||
    fail "leaks not symbolized: $(grep -A2 'sites by leaked' rep)"
# A forked child that exec'd before its first record (a pipeline's
# stage: the shell forks it): it was run as the shell, as the file header
# says, and it became prog_slowleak. The report named prog_slowleak as both
# the program and its last image.
"$HT" record --quiet -o f.htr sh -c "'$E2E/prog_slowleak' 1000 1000 | cat" >>out ||
    fail "record of the forking shell exited $?"
n=0
for f in f.htr.*; do
    [ -e "$f" ] || continue
    "$HT" report "$f" >frep 2>/dev/null || fail "report of $f exited $?"
    grep -q "^  exec      it exec'd; the last image: .*/prog_slowleak$" frep || continue
    n=$((n + 1))
    grep -Eq "^  program   /[^ ]*/(dash|sh|bash)  args: sh -c " frep ||
        fail "forked child's program: $(sed -n 2p frep)"
done
expect_eq "forked children that became prog_slowleak" "$n" 1
# A command line with newlines (python3 -c 'script') stays on the
# program's line, escaped.
"$HT" record --quiet -o nl.htr sh -c 'true
true' || fail "record of a two-line script exited $?"
"$HT" report nl.htr >nrep 2>/dev/null || fail "report exited $?"
grep -q '^  program   .*  args: sh -c true\\ntrue (pid [0-9]*)$' nrep ||
    fail "program line: $(sed -n 2,3p nrep)"
echo ok
