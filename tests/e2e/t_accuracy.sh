#!/bin/bash
# --all traces: every figure exact. Known leaks of known sizes from named
# functions (every allocation function, realloc chains with realloc(p, 0),
# C++ new/new[], 4 threads, a dlclose()d plugin, a forked child, a 200-deep
# recursion) must be reported with exactly those bytes and counts at
# exactly those functions, whether the program returns, calls _exit or
# aborts; a peak that falls back must show at its peak and not as a leak.
. "$TOP/tests/e2e/lib.sh"
want=(leak_malloc=3000:3 leak_calloc=2000:2 leak_realloc_chain=3000:1 leak_aligned=7304:4
      leak_strdup=17:1 leak_asprintf=+7:1 thread_leak=15540:20 deep_leak=2000:1 plugin_make=5555:1)
for how in exit _exit abort; do
    "$HT" record --quiet --all -o "$how.htr" "$E2E/prog_acc" "$E2E/libh_plugin.so" "$how"
    rc=$?
    case $how in
    exit) expect_eq "exit status" $rc 0 ;;
    _exit) expect_eq "exit status" $rc 5 ;;
    abort) expect_eq "exit status" $rc 134 ;;
    esac
    "$HT" leaks --json "$how.htr" >leaks.json || fail "leaks --json failed ($how)"
    python3 "$TOP/tests/e2e/acc_check.py" "${want[@]}" <leaks.json || fail "wrong leaks after $how"
    # Nothing of the child's in the parent's trace; all of it in the child's.
    python3 "$TOP/tests/e2e/acc_check.py" child_leak=0:0 <leaks.json >/dev/null &&
        fail "the parent's trace holds the child's leaks"
    child=$(ls "$how.htr".* 2>/dev/null | head -1)
    [ -n "$child" ] || fail "no trace for the forked child ($how)"
    "$HT" leaks --json "$child" | python3 "$TOP/tests/e2e/acc_check.py" child_leak=8642:2 ||
        fail "child's leaks wrong ($how)"
done
# The 200-deep recursion reaches main.
"$HT" leaks --json exit.htr | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = [l for l in d["leaks"] if l["function"] == "deep_leak"][0]["stack"]
names = [f["function"] for f in s]
assert names.count("deep_leak") == 201, names.count("deep_leak")
assert "main" in names, "main not reached"
' || fail "the deep stack does not reach main"
# The peak: 1,000,000 bytes of peak_phase, freed before the end.
"$HT" report --json exit.htr | python3 -c '
import json, sys
d = json.load(sys.stdin)
peak = {s["function"]: s for s in d["top"]["peak"]}
assert "peak_phase" in peak and peak["peak_phase"]["bytes"] == 1000000, peak.get("peak_phase")
assert peak["peak_phase"]["objects"] == 10
leak = {s["function"] for s in d["top"]["leaked"]}
assert "peak_phase" not in leak, "peak_phase reported as leaked"
' || fail "peak figures wrong"
# C++ new / new[].
"$HT" record --quiet --all -o cxx.htr "$E2E/prog_acc_cxx" || fail "record of the C++ program failed"
"$HT" leaks --json cxx.htr | python3 "$TOP/tests/e2e/acc_check.py" leak_new=96:2 leak_new_array=100:1 ||
    fail "C++ leaks wrong"
echo ok
