#!/bin/bash
# Run every end-to-end test, tests/e2e/t_*.sh, each with a time limit.
# A test exits 0 (pass), 77 (skip: says why on stdout) or anything else
# (fail). Prints one line per test, then "N passed, N failed, N skipped".
# Usage: tests/run-e2e.sh BUILD_DIR [PATTERN]
set -u
BUILD=$(cd "${1:-build}" && pwd)
PATTERN=${2:-}
TOP=$(cd "$(dirname "$0")/.." && pwd)
export BUILD TOP HT="$BUILD/heaptrace"
pass=0 fail=0 skip=0 failed=()
for t in "$TOP"/tests/e2e/t_*.sh; do
    name=$(basename "$t" .sh)
    [ -n "$PATTERN" ] && [[ "$name" != *$PATTERN* ]] && continue
    work=$(mktemp -d /tmp/ht-e2e.XXXXXX)
    start=$(date +%s.%N)
    # Each test has its own symbol cache (analyzer/symcache.h): hermetic.
    (cd "$work" && WORK="$work" HEAPTRACE_CACHE_DIR="$work/.symcache" timeout -k 5 ${E2E_TIMEOUT:-300} bash "$t") >"$work/log" 2>&1
    rc=$?
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    case $rc in
    0) pass=$((pass+1)); printf 'ok    %-28s %6.1fs\n' "$name" "$secs"; rm -rf "$work" ;;
    77) skip=$((skip+1)); printf 'skip  %-28s %s\n' "$name" "$(tail -n1 "$work/log")"; rm -rf "$work" ;;
    *) fail=$((fail+1)); failed+=("$name")
       printf 'FAIL  %-28s (exit %d, %.1fs) log: %s/log\n' "$name" "$rc" "$secs" "$work"
       tail -n 20 "$work/log" | sed 's/^/      | /' ;;
    esac
done
echo "e2e: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
