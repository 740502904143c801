#!/bin/bash
# python3 running a small script under `heaptrace record --all`: same output
# and status as natively; report, collapse and pprof name CPython's own
# functions (Py*/_Py*).
. "$TOP/tests/e2e/t_real_lib.bash"
need python3
PY=$(real_exe python3)
cat >"$WORK/script.py" <<'PYEOF'
import json, sys
d = {}
for i in range(50000):
    d.setdefault("k%d" % (i % 997), []).append((i, str(i) * 3))
rows = [{"id": k, "n": len(v), "s": v[-1][1]} for k, v in sorted(d.items())]
text = json.dumps(rows)
print(len(d), sum(r["n"] for r in rows), len(text), json.loads(text)[5]["id"])
sys.exit(3)
PYEOF
"$PY" "$WORK/script.py" >"$WORK/native.out" 2>"$WORK/native.err"; echo $? >"$WORK/native.rc"
"$HT" record --all -o "$WORK/t.htr" "$PY" "$WORK/script.py" >"$WORK/traced.out" 2>"$WORK/traced.err"
echo $? >"$WORK/traced.rc"
cat "$WORK/traced.err"
[ "$(cat "$WORK/native.rc")" = 3 ] || fail "the script should exit 3 natively, got $(cat "$WORK/native.rc")"
same_run python3
check_trace "$WORK/t.htr" '_?Py[A-Za-z_]+' "CPython function (Py*/_Py*)"
echo ok
