# Helpers for the end-to-end tests (sourced). $HT, $BUILD, $TOP, $WORK are set
# by tests/run-e2e.sh.
E2E="$BUILD/e2e"

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "skip: $*"; exit 77; }

# tstat TRACE [SIZES]: prints the tracestat JSON of a trace.
tstat() {
    if [ -n "${2:-}" ]; then
        "$HT" dump --json "$1" | python3 "$TOP/tests/e2e/tracestat.py" --sizes "$2"
    else
        "$HT" dump --json "$1" | python3 "$TOP/tests/e2e/tracestat.py"
    fi
}

# jget JSON KEY...: one field of a JSON object (nested keys allowed).
jget() {
    python3 -c 'import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2:]:
    v=v.get(k,0) if isinstance(v,dict) else 0
print(v)' "$@"
}

# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got $2, want $3"; }
