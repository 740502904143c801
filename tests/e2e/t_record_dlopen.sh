#!/bin/bash
# dlopen/dlclose: a MODULE for the plugin, then its UNMODULE; the
# plugin's allocations have a frame inside the plugin's mapping, so they
# can be symbolized after the library is gone.
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/t_record_lib.bash"
"$HT" record --all --quiet -o t.htr "$E2E/prog_rec_dlopen" "$E2E/librec_plugin.so" >out ||
    fail "record exited $? ($(cat out))"
grep -q "dlopen ok" out || fail "program said: $(cat out)"
J=$(RSTAT_FRAMES=1 rstat t.htr)
check "$J" "n(j['allocs'], 5001) == 4 and n(j['frees'], 5001) == 3 and n(j['live_end'], 5001) == 1" "plugin allocations"
check "$J" "len([m for m in j['modules'] if m['path'].endswith('librec_plugin.so')]) == 1" "plugin MODULE"
check "$J" "[m['id'] for m in j['modules'] if m['path'].endswith('librec_plugin.so')][0] in j['unmodules']" "plugin UNMODULE"
check "$J" "
all(any(m['bias'] + v <= int(f, 16) < m['bias'] + v + sz
        for m in j['modules'] if m['path'].endswith('librec_plugin.so')
        for (v, sz, fl) in m['segs'] if fl & 1
        for f in frames)
    for frames in j['alloc_frames']['5001'])" "a frame of each plugin allocation lies in the plugin's code"
echo ok
