#!/bin/bash
# Snapshots and diff on a slow leak: the diff of the first and the last
# snapshot names the leaking function first with exactly the growth the
# program made (--all) or within the sampling bound (default); a snapshot
# diffed with itself is empty; snapshot files and TRACE@N give the same
# diff; --pprof writes the difference for go tool pprof.
. "$TOP/tests/e2e/lib.sh"
N=20000 EVERY=2000
"$HT" record --quiet --all --snapshot-prefix snap -o t.htr "$E2E/prog_slowleak" $N $EVERY >/dev/null ||
    fail "record failed"
# Snapshots 0..9 are the program's (after requests 2000, 4000, ... 20000).
"$HT" diff --json t.htr@0 t.htr@9 >d.json || fail "diff failed"
python3 - <<'PY' || fail "wrong growth: $(head -c 600 d.json)"
import json
d = json.load(open("d.json"))
g = d["growing"][0]
assert g["stack"][0]["function"] == "leak_session", g["site"]
assert g["delta"] == 9 * 2000 * 100, g["delta"]
assert g["inuse_objects_delta"] == 9 * 2000, g["inuse_objects_delta"]
assert d["delta"] == 9 * 2000 * 100, ("total", d["delta"])
PY
python3 -c 'import json, sys; sys.exit(0 if json.load(open("d.json"))["same_process"] else 1)' ||
    fail "snapshots of one process not said to be of one process"
"$HT" diff t.htr@0 t.htr@9 | grep -q "^  [0-9.]* s apart$" || fail "no time apart: $("$HT" diff t.htr@0 t.htr@9 | head -3)"
# Two runs compare fine, but are said to be two runs, with no time apart
# (it said "0.02 s apart").
"$HT" record --quiet --all -o r2.htr "$E2E/prog_slowleak" 1000 1000 >/dev/null || fail "record 2 failed"
out=$("$HT" diff t.htr r2.htr) || fail "diff of two runs failed"
grep -q "^  two runs  pid [0-9]* (.*/prog_slowleak) -> pid [0-9]* (.*/prog_slowleak)$" <<<"$out" ||
    fail "two runs not said: $(head -3 <<<"$out")"
grep -q " s apart" <<<"$out" && fail "time apart of two runs: $(head -3 <<<"$out")"
out=$("$HT" diff t.htr@3 t.htr@3) || fail "self diff failed"
grep -q "no change" <<<"$out" || fail "self diff is not empty: $out"
"$HT" diff --json snap.0 snap.9 >f.json || fail "diff of snapshot files failed"
python3 -c '
import json
a, b = json.load(open("d.json")), json.load(open("f.json"))
for k in ("base", "new"):
    a.pop(k); b.pop(k)
assert a == b, "files and TRACE@N differ"
' || fail "snapshot files and TRACE@N give different diffs"
"$HT" diff --pprof -o d.pb.gz t.htr@0 t.htr@9 2>/dev/null || fail "diff --pprof failed"
export HOME="$WORK" GOCACHE="$WORK/gocache" GOPATH="$WORK/go"
if command -v go >/dev/null; then
    top=$(go tool pprof -top -unit=byte -sample_index=inuse_space d.pb.gz 2>/dev/null) || fail "go tool pprof cannot read the diff"
    grep -Eq '^ *1800000B .* leak_session$' <<<"$top" || fail "pprof diff: $(echo "$top" | tail -5)"
fi
# Default sampling: the leaking function still comes first, and its
# estimate is within 4 standard errors of the truth.
"$HT" record --quiet -o s.htr "$E2E/prog_slowleak" 200000 20000 >/dev/null || fail "sampled record failed"
"$HT" diff --json s.htr@0 s.htr@9 | python3 -c '
import json, sys
d = json.load(sys.stdin)
g = d["growing"][0]
assert g["stack"][0]["function"] == "leak_session", g["site"]
true = 9 * 20000 * 100
assert abs(g["delta"] - true) <= 4 * g["delta_stderr"], (g["delta"], true, g["delta_stderr"])
' || fail "sampled diff wrong"
echo ok
