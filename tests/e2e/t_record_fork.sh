#!/bin/bash
# fork: the child's trace is t.htr.CHILDPID next to the parent's; it starts
# with the parent's live set (5 x 3001, flagged inherited), holds only the
# child's events; the parent's trace has none of them. --no-children
# records the program and what it execs only.
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/t_record_lib.bash"
"$HT" record --all --quiet -o t.htr "$E2E/prog_rec_fork" >out || fail "record exited $? ($(cat out))"
child=$(sed -n 's/^child \([0-9]*\)$/\1/p' out)
[ -n "$child" ] || fail "program said: $(cat out)"
[ -f "t.htr.$child" ] || fail "no child trace t.htr.$child ($(ls))"
P=$(rstat t.htr)
C=$(rstat "t.htr.$child")
check "$P" "j['types'].get('fork') == 1" "FORK in the parent"
check "$P" "n(j['allocs'], 3001) == 5 and n(j['allocs'], 3002) == 0 and n(j['allocs'], 3003) == 50" "parent's allocations"
check "$P" "n(j['live_end'], 3001) == 5" "parent keeps its 5 blocks"
check "$C" "j['pid'] == $child" "child trace's pid"
check "$C" "n(j['live_first'], 3001) == 5 and j['inherited'] == 5" "inherited live set"
check "$C" "n(j['allocs'], 3001) == 0 and n(j['allocs'], 3002) == 100 and n(j['allocs'], 3003) == 0" "child's allocations"
check "$C" "n(j['live_end'], 3001) == 3 and n(j['live_end'], 3002) == 10" "child's live set at exit"
# The child left by _exit(0) and was reaped by its parent, not by record:
# its status is the one the shim's _exit wrote (it was "unknown").
check "$C" "j['exit'] == [0, 0]" "child's EXIT"
check "$P" "j['exit'] == [0, 0]" "parent's EXIT"
# The child's trace alone symbolizes its stacks: its inherited keyframe is
# written before its shim reports the modules, which must still be stated.
"$HT" collapse --metric alloc_space "t.htr.$child" >c.txt 2>/dev/null || fail "collapse of the child exited $?"
grep -q "__libc_start_call_main;main " c.txt || fail "child's stacks: $(cat c.txt)"
! grep -q ";0x" c.txt || fail "child's stacks not symbolized: $(cat c.txt)"

# --no-children: the program alone. No child trace, no FORK in the
# parent's (the collector would wait for a child ring), the parent's
# events as before.
"$HT" record --all --quiet --no-children -o n.htr "$E2E/prog_rec_fork" >nout ||
    fail "record --no-children exited $? ($(cat nout))"
ls n.htr.* >/dev/null 2>&1 && fail "child traces with --no-children: $(ls n.htr.*)"
N=$(rstat n.htr)
check "$N" "j['types'].get('fork', 0) == 0" "--no-children: no FORK"
check "$N" "n(j['allocs'], 3001) == 5 and n(j['allocs'], 3002) == 0 and n(j['allocs'], 3003) == 50" \
    "--no-children: the parent's allocations"
check "$N" "j['exit'] == [0, 0]" "--no-children: EXIT"
# A shell that spawns (dash vforks a simple command), forks (a pipeline's
# stages) and at last execs: only the shell and what it exec'd.
"$HT" record --quiet --no-children -o sh.htr \
    sh -c "ls / >/dev/null; ls / | cat >/dev/null; exec '$E2E/prog_rec_exit' exit 3"
expect_eq "--no-children: exit status through the exec" "$?" 3
ls sh.htr.* >/dev/null 2>&1 && fail "--no-children: traces of the shell's children: $(ls sh.htr.*)"
"$HT" report sh.htr >rep 2>/dev/null || fail "report exited $?"
grep -q "^  exec      it exec'd; the last image: .*/prog_rec_exit$" rep ||
    fail "--no-children: the exec'd image: $(sed -n 2,4p rep)"
grep -q "^  exit      exited with status 3$" rep || fail "--no-children: exit: $(grep exit rep)"
echo ok
