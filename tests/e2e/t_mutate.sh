#!/bin/bash
# Hostile traces: a mutation battery over real traces (see tests/mutate.py).
# Every subcommand exits 0 or 1 with a clear message; never a signal, a
# hang or unbounded memory. MUTATE_COUNT sets the number of random mutants
# per trace (make stress runs many more).
. "$TOP/tests/e2e/lib.sh"
"$HT" record --quiet --all -o all.htr "$E2E/prog_h_dlloop" "$E2E/libh_plugin.so" 50 >/dev/null || fail "record failed"
"$HT" record --quiet --snapshot-every 1M -o snap.htr "$E2E/prog_h_longrun" 1 >/dev/null || fail "record failed"
mkdir -p kept
MUTATE_KEEP="$WORK/kept" python3 "$TOP/tests/mutate.py" "$HT" all.htr snap.htr --count "${MUTATE_COUNT:-20}"
