#!/bin/bash
# The ring's file system has no room (a container's small /dev/shm, and
# TMPDIR no better): the program must run exactly as without heaptrace.
# A ring is a sparse file whose pages are allocated on first touch, and a
# touch with none left was a SIGBUS: prog_slowleak --all on a 1 MiB
# /dev/shm died with status 135. Now the shim backs each page before use
# and does without what it cannot get (events or stacks, counted).
. "$TOP/tests/e2e/lib.sh"
command -v unshare >/dev/null || skip "no unshare(1)"
unshare -m true 2>/dev/null || skip "cannot make a mount namespace here (needs root)"
P="$E2E/prog_slowleak"
# run SHM_SIZE TMP_SIZE ARGS...: record in a namespace where /dev/shm and
# TMPDIR are tmpfs of those sizes.
run() {
    local shm=$1 tmp=$2
    shift 2
    mkdir -p tmpdir
    unshare -m sh -c '
        mount -t tmpfs -o size="$1" tmpfs /dev/shm && mount -t tmpfs -o size="$2" tmpfs tmpdir || exit 99
        shift 2
        TMPDIR=$PWD/tmpdir exec "$@"' sh "$shm" "$tmp" "$HT" record "$@"
}
ARGS="300000 1000000" ALLOCS=900,002
# 1 MiB: buffers are reused and fit; the stack table and frame pool
# get what is left. Every allocation is in the trace.
rm -f a.htr
run 1m 64k --all -q -o a.htr "$P" $ARGS >out 2>err
expect_eq "1 MiB: exit status" "$?" 0
"$HT" report a.htr >rep 2>/dev/null || fail "1 MiB: report exited $?"
grep -q "^  allocations   $ALLOCS calls" rep || fail "1 MiB: $(grep allocations rep)"
# 8 KiB: not even the ring's header fits. The program runs untraced, the
# shim and record say why.
rm -f b.htr
run 8k 8k --all -o b.htr "$P" $ARGS >out 2>err
expect_eq "8 KiB: exit status" "$?" 0
grep -q "^served 300000$" out || fail "8 KiB: program output: $(cat out)"
grep -q "cannot make the ring" err || fail "8 KiB: no word from the shim: $(cat err)"
# /dev/shm too small, TMPDIR roomy: record puts the rings there, and
# nothing is lost.
rm -f c.htr
run 8k 512m --all -q -o c.htr "$P" $ARGS >out 2>err
expect_eq "TMPDIR: exit status" "$?" 0
"$HT" report c.htr >rep 2>/dev/null || fail "TMPDIR: report exited $?"
grep -q "^  allocations   $ALLOCS calls" rep || fail "TMPDIR: $(grep allocations rep)"
grep -q "unknown stack" rep && fail "TMPDIR: stacks lost: $(grep warning rep)"
echo ok
