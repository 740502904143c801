#!/bin/bash
# heaptrace pprof on a real recording, read by the real client, go tool
# pprof: figures per function, inline frames, mappings with build ids.
set -u
# prog.c (known allocation sites, see outputs_lib.sh) recorded into t.htr.
. "$TOP/tests/e2e/outputs_lib.sh"

command -v go >/dev/null 2>&1 || skip "go (go tool pprof) is not installed"
export HOME="$WORK/home" GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" PPROF_TMPDIR="$WORK/pprof"
mkdir -p "$HOME"

# Default output name: the trace's, .htr replaced; said on stderr.
"$HT" pprof t.htr 2>pprof.err || fail "pprof failed: $(cat pprof.err)"
[ -s t.pb.gz ] || fail "no t.pb.gz"
grep -q 't.pb.gz' pprof.err || fail "stderr does not say where: $(cat pprof.err)"
gzip -t t.pb.gz || fail "t.pb.gz is not gzip"
"$HT" pprof -o other.pb.gz t.htr 2>/dev/null && [ -s other.pb.gz ] || fail "-o failed"

pp() { go tool pprof "$@" 2>>go.err || fail "go tool pprof $*: $(tail -n 3 go.err)"; }

# flat bytes of FUNCTION in `-top -unit=B` output (all nodes kept).
flat() { # TOPFILE FUNCTION
    awk -v f="$2" '{ n = $0; sub(/^ *[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +/, "", n) }
                   n == f { v = $1; sub(/B$/, "", v); print v; exit }' "$1"
}
pp -top -unit=B -nodefraction=0 -nodecount=10000 -sample_index=inuse_space t.pb.gz >top.txt
grep -q 'Type: inuse_space' top.txt || fail "not inuse_space: $(head -n 8 top.txt)"
expect_eq "make_node inuse" "$(flat top.txt make_node)" 20000
expect_eq "leak_big inuse" "$(flat top.txt leak_big)" 300000
expect_eq "inl_alloc inuse" "$(flat top.txt 'inl_alloc (inline)')" 7000
grep -q ' churn$' top.txt && [ "$(flat top.txt churn)" != 0 ] && fail "churn holds memory at exit"
grep -Eq ' (malloc|free)$' top.txt && fail "allocator frames left in the profile"

# The default sample type is inuse_space; the other three are there.
pp -top -unit=B t.pb.gz >dflt.txt
grep -q 'Type: inuse_space' dflt.txt || fail "default sample type is not inuse_space"
pp -top -unit=B -nodefraction=0 -nodecount=10000 -sample_index=alloc_objects t.pb.gz >aobj.txt
expect_eq "churn alloc_objects" "$(flat aobj.txt churn)" 100
expect_eq "make_node alloc_objects" "$(flat aobj.txt make_node)" 20
pp -top -unit=B -nodefraction=0 -nodecount=10000 -sample_index=alloc_space t.pb.gz >aspace.txt
expect_eq "churn alloc_space" "$(flat aspace.txt churn)" 5000000
pp -top -unit=B -nodefraction=0 -nodecount=10000 -sample_index=inuse_objects t.pb.gz >iobj.txt
expect_eq "make_node inuse_objects" "$(flat iobj.txt make_node)" 20

# -traces: leaf first; the inlined helper and the function it lives in.
pp -traces -sample_index=inuse_space t.pb.gz >traces.txt
python3 - traces.txt <<'PY' || fail "traces: inline chain not found: $(cat traces.txt | head -n 40)"
import sys
blocks = open(sys.argv[1]).read().split('-----------+')
def frames(b):
    out = []
    for l in b.splitlines():
        l = l.strip()
        if not l or l.startswith('--') or ':' in l.split(' ')[0]: continue
        parts = l.split(None, 1)
        out.append(parts[-1] if parts[0][0].isdigit() or parts[0][0] == '-' else l)
    return out
ok = any(f[:3] == ['inl_alloc (inline)', 'use_inline', 'main'] for f in map(frames, blocks))
ok2 = any(f[:3] == ['make_node', 'build_list', 'main'] for f in map(frames, blocks))
sys.exit(0 if ok and ok2 else 1)
PY

# -raw: the program's mapping first, with its build id and flags.
pp -raw t.pb.gz >raw.txt
bid=$(readelf -n prog | sed -n 's/.*Build ID: *//p')
[ -n "$bid" ] || fail "prog has no build id"
grep -Eq "^[0-9]+: 0x[0-9a-f]+/0x[0-9a-f]+/0x[0-9a-f]+ $WORK/prog $bid \[FN\]" raw.txt ||
    fail "mapping of prog with build id $bid not found: $(sed -n '/Mappings/,$p' raw.txt)"
pp -top t.pb.gz >file.txt
grep -q '^File: prog$' file.txt || fail "pprof's main binary is not prog: $(head -n 2 file.txt)"
grep -q 'exact: every allocation was recorded' raw.txt || fail "comments missing"

# Usage and run-time errors.
"$HT" pprof --sample-index leaked t.htr >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad sample index: want exit 2"
"$HT" pprof -x t.htr >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad option: want exit 2"
"$HT" pprof -o "$WORK/no/such/dir/x.pb.gz" t.htr 2>err.txt
[ $? -eq 1 ] || fail "unwritable output: want exit 1"
[ "$(wc -l <err.txt)" -eq 1 ] || fail "unwritable output: want one line, got: $(cat err.txt)"
"$HT" pprof --help | grep -q 'inuse_space' || fail "--help"
echo "pprof ok"
