# tests/e2e/t_real_lib.bash -- sourced by t_real_*.sh (not a test itself:
# run-e2e.sh runs t_*.sh). Records real programs and checks the analysis.
# Expects $HT, $BUILD, $TOP, $WORK from tests/run-e2e.sh.

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "skip: $*"; exit 77; }
need() { command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed"; }

# real_exe NAME: the real executable of NAME, not a wrapper script on PATH
# (pyenv's shims are bash scripts).
real_exe() {
    local p
    p=$(command -v "$1") || return 1
    if head -c 2 "$p" 2>/dev/null | grep -q '#!'; then
        [ -x "/usr/bin/$1" ] && ! head -c 2 "/usr/bin/$1" | grep -q '#!' && { echo "/usr/bin/$1"; return 0; }
    fi
    echo "$p"
}

# same_run NAME: native.{out,rc} and traced.{out,rc} must match
same_run() {
    local n=$1
    [ "$(cat "$WORK/native.rc")" = "$(cat "$WORK/traced.rc")" ] ||
        fail "$n: exit status $(cat "$WORK/traced.rc") under heaptrace, $(cat "$WORK/native.rc") natively"
    if ! cmp -s "$WORK/native.out" "$WORK/traced.out"; then
        diff -u "$WORK/native.out" "$WORK/traced.out" | head -n 20
        fail "$n: its output under heaptrace differs from the native run"
    fi
}

# chk TRACE: where the outputs of the checks of TRACE go (not beside the
# traces, so a glob over T.htr.* finds only traces)
chk() { mkdir -p "$WORK/chk" && echo "$WORK/chk/$(basename "$1")"; }

# check_basic TRACE: report, collapse and pprof succeed on TRACE and write
# something well-formed; leaves $WORK/<trace name>.{report,collapse,pb.gz}.
check_basic() {
    local t=$1 b bad
    b=$(chk "$t")
    [ -s "$t" ] || fail "no trace file $t"
    "$HT" report "$t" >"$b.report" 2>"$b.report.err" || { cat "$b.report.err"; fail "heaptrace report failed on $t"; }
    [ -s "$b.report" ] || fail "heaptrace report printed nothing for $t"
    "$HT" collapse "$t" >"$b.collapse" 2>"$b.collapse.err" || { cat "$b.collapse.err"; fail "heaptrace collapse failed on $t"; }
    # every line: frames separated by ';', a space, an integer value
    bad=$(grep -cvE '^[^ ].* [0-9]+$' "$b.collapse")
    [ "$bad" -eq 0 ] || { grep -vE '^[^ ].* [0-9]+$' "$b.collapse" | head -n 3; fail "$bad malformed collapse lines for $t"; }
    # every stack ever allocated from (the default, inuse_space, keeps only
    # what is live at the end): where the names are looked for
    "$HT" collapse --metric alloc_space "$t" >"$b.alloc" 2>"$b.collapse.err" ||
        { cat "$b.collapse.err"; fail "heaptrace collapse --metric alloc_space failed on $t"; }
    "$HT" pprof -o "$b.pb.gz" "$t" 2>"$b.pprof.err" || { cat "$b.pprof.err"; fail "heaptrace pprof failed on $t"; }
    gzip -t "$b.pb.gz" 2>/dev/null || fail "heaptrace pprof wrote no valid gzip file for $t"
}

# names_in TRACE ERE: true when both the collapsed stacks and the pprof
# profile of TRACE (after check_basic) name a function matching ERE: a
# whole frame (so "prog+0x1234", an unsymbolized address, never matches
# "prog.*"), optionally followed by "(...)" of a demangled C++ name.
names_in() {
    local b
    b=$(chk "$1")
    grep -qE "(^|;)($2)(\\([^;]*\\))?(;| [0-9]+$)" "$b.alloc" && gzip -dc "$b.pb.gz" | grep -aqE "$2"
}

# top_names TRACE ERE: the most frequent matching frames, for the log
top_names() {
    grep -oE "(^|;)($2)(\\([^;]*\\))?(;| [0-9]+$)" "$(chk "$1").alloc" | sed 's/^;//; s/;$//; s/ [0-9]*$//' | sort | uniq -c | sort -rn |
        head -n 4 | awk '{print $2}' | tr '\n' ' '
}

# check_trace TRACE ERE WHAT: check_basic, and the collapsed stacks and the
# pprof profile name a function matching ERE (WHAT says what, for messages).
check_trace() {
    local t=$1 re=$2 what=$3 b
    b=$(chk "$t")
    check_basic "$t"
    [ -s "$b.alloc" ] || fail "heaptrace collapse --metric alloc_space printed nothing for $t"
    names_in "$t" "$re" || { head -n 5 "$b.collapse"; fail "no $what in the collapsed stacks or the pprof profile of $t"; }
    echo "ok: $t: $(wc -l <"$b.alloc") stacks; $what: $(top_names "$t" "$re")"
}
