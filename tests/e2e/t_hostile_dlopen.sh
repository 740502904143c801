#!/bin/bash
# dlopen/dlclose of an allocating plugin 1000 times, half with
# RTLD_DEEPBIND: the program runs normally, every leak is counted, and the
# leaks are named in the plugin even though it was unloaded long before.
. "$TOP/tests/e2e/lib.sh"
"$HT" record --quiet --all -o t.htr "$E2E/prog_h_dlloop" "$E2E/libh_plugin.so" 1000 >out ||
    fail "record exited $?"
grep -q "dlloop ok 1000" out || fail "program said: $(cat out)"
expect_eq "plugin allocs" "$(jget "$(tstat t.htr 5555)" allocs)" 1000
"$HT" leaks t.htr >leaks.txt || fail "leaks failed"
grep -q plugin_make leaks.txt || fail "leaks does not name plugin_make: $(head -20 leaks.txt)"
echo ok
