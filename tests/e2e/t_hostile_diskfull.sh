#!/bin/bash
# The disk fills up while recording: the program goes on unharmed, the user
# is told, and the trace up to that point stays readable.
. "$TOP/tests/e2e/lib.sh"
mkdir small
mount -t tmpfs -o size=64k tmpfs small 2>/dev/null || skip "cannot mount a small tmpfs here (needs root)"
trap 'umount small' EXIT
# Leave 24 KiB free: 2 s of longrun's events compress to about 60 KiB, so
# with segments every 0.2 s a few fit and then the disk is full. (An empty
# 64 KiB tmpfs was not enough: the trace could fit in it.)
head -c $((40 * 1024)) /dev/zero > small/filler
"$HT" record --all --flush-interval 0.2 -o small/t.htr "$E2E/prog_h_longrun" 2 >out 2>err
rc=$?
expect_eq "exit status" "$rc" 0
grep -q "longrun done" out || fail "program did not finish: $(cat out)"
grep -qi "space" err || fail "user not told of the full disk: $(cat err)"
"$HT" report small/t.htr >/dev/null 2>rep.err || fail "trace not readable: $(cat rep.err)"
echo ok
