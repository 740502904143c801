#!/bin/bash
# make check: the Check unit suites, then the end-to-end tests; the last
# line is the total, "N passed, N failed".
set -u
BUILD=${1:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
ulog=$(mktemp)
"$BUILD/unit_tests" 2>&1 | tee "$ulog"
urc=${PIPESTATUS[0]}
# Check prints "NN%: Checks: C, Failures: F, Errors: E"
read -r uchecks ufail uerr < <(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$ulog" | tail -n1)
rm -f "$ulog"
uchecks=${uchecks:-0} ufail=${ufail:-0} uerr=${uerr:-0}
elog=$(mktemp)
"$TOP/tests/run-e2e.sh" "$BUILD" 2>&1 | tee "$elog"
erc=${PIPESTATUS[0]}
read -r epass efail < <(sed -n 's/^e2e: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$elog" | tail -n1)
rm -f "$elog"
epass=${epass:-0} efail=${efail:-0}
[ $urc -ne 0 ] && [ $((ufail + uerr)) -eq 0 ] && uerr=1
passed=$((uchecks - ufail - uerr + epass))
failed=$((ufail + uerr + efail))
echo "$passed passed, $failed failed"
[ $urc -eq 0 ] && [ $erc -eq 0 ]
