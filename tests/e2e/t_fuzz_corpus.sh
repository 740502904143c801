#!/bin/bash
# Inputs that once made the reader fail (kept by `make fuzz` runs in
# tests/fuzz/corpus/) must now get exit 0 or 1 from every analysis command,
# never a signal, a hang or more than a bounded amount of memory.
. "$TOP/tests/e2e/lib.sh"
n=0
for f in "$TOP"/tests/fuzz/corpus/*; do
    [ -f "$f" ] || continue
    for cmd in report leaks collapse snapshots "dump --json"; do
        # A memory bound, except under AddressSanitizer (make asan), whose
        # shadow memory alone is terabytes of address space.
        (if [ -z "${ASAN_OPTIONS:-}" ]; then ulimit -v 2000000; fi
         timeout 20 "$HT" $cmd "$f" >/dev/null 2>err)
        rc=$?
        [ $rc -le 1 ] || fail "$cmd $(basename "$f"): exit $rc: $(head -3 err)"
    done
    n=$((n + 1))
done
[ $n -gt 0 ] || fail "no corpus inputs found"
echo "ok: $n inputs"
