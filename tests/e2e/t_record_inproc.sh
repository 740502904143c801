#!/bin/bash
# The shim preloaded by hand with HEAPTRACE_OUTPUT: the collector runs as a
# thread of the program and writes the same exact trace.
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/t_record_lib.bash"
LD_PRELOAD="$BUILD/libheaptrace.so" HEAPTRACE_OUTPUT="$WORK/t.htr" HEAPTRACE_SAMPLE_RATE=0 \
    "$E2E/prog_family" >out || fail "program exited $?"
grep -q "family ok" out || fail "program said: $(cat out)"
J=$(rstat t.htr)
for s in 1051 1088 1061 1069 1087 1093; do
    check "$J" "n(j['allocs'], $s) == 8 and n(j['frees'], $s) == 7" "8 allocations / 7 frees of $s"
done
check "$J" "n(j['live_end'], 1001) == 1 and n(j['live_end'], 1093) == 1" "leaks at exit"
check "$J" "j['exit'] == [0, 0]" "EXIT"
check "$J" "j['snapshots'][-1:] == [3]" "exit snapshot"
# The collector thread's own allocations are not in the trace: nothing was
# allocated by a thread that is not the program's.
check "$J" "set(j['tids'].values()) == {1}" "one thread allocates"

# The shim links no libzstd: its collector loads it when it starts. A
# libzstd.so.1 that lacks the functions is refused in one line, and the
# program runs as it would without us.
mkdir -p fakelib
echo 'int ZSTD_versionNumber(void) { return 0; }' >fakelib/z.c
cc -shared -fPIC -o fakelib/libzstd.so.1 fakelib/z.c || fail "cannot build the fake libzstd"
LD_LIBRARY_PATH="$WORK/fakelib" LD_PRELOAD="$BUILD/libheaptrace.so" \
    HEAPTRACE_OUTPUT="$WORK/nozstd.htr" "$E2E/prog_family" >out2 2>err2 ||
    fail "program exited $? without a usable libzstd"
grep -q "family ok" out2 || fail "program said: $(cat out2)"
grep -q "libzstd.so.1 has no ZSTD_" err2 || fail "no word of the missing libzstd: $(cat err2)"
[ "$(wc -l <err2)" -eq 1 ] || fail "more than one line about it: $(cat err2)"
[ ! -s nozstd.htr ] || fail "a trace was written without zstd"
echo ok
