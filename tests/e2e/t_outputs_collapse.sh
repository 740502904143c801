#!/bin/bash
# heaptrace collapse on a real recording: exact lines for known sites, the
# format flamegraph.pl reads, --metric, --lines, --base, usage errors.
set -u
# prog.c (known allocation sites, see outputs_lib.sh) recorded into t.htr.
. "$TOP/tests/e2e/outputs_lib.sh"

"$HT" collapse t.htr >inuse.folded 2>collapse.err || fail "collapse failed: $(cat collapse.err)"
[ -s inuse.folded ] || fail "collapse wrote nothing"

# Format: "frame;frame;... VALUE", integer values, never 0, each stack once.
bad=$(grep -Ev '^[^; ][^;]*(;[^;]+)* -?[0-9]+$' inuse.folded | head -n 3)
[ -z "$bad" ] || fail "malformed collapsed lines: $bad"
grep -Eq ' 0$' inuse.folded && fail "a line with value 0"
dups=$(sed 's/ [-0-9]*$//' inuse.folded | sort | uniq -d | head -n 3)
[ -z "$dups" ] || fail "stacks not merged: $dups"

# Root first, the allocator's caller last, exact values in --all mode.
want_line() { # FILE REGEX WHAT
    grep -Eq "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "$3: no line matching '$2'"; }
}
want_line inuse.folded ';main;build_list;make_node 20000$' "make_node leak"
want_line inuse.folded ';main;leak_big 300000$' "leak_big leak"
want_line inuse.folded ';main;use_inline;inl_alloc 7000$' "inlined frame of its own"
grep -q 'churn' inuse.folded && fail "churn frees everything, yet is in inuse_space"
grep -Eq ';(malloc|calloc|realloc|free|operator new[^;]*)( [-0-9]+)?$' inuse.folded &&
    fail "an allocator frame is left at the leaf"
# The root is where the program starts, before main.
grep ';main;leak_big 300000$' inuse.folded | grep -Eq '^(_start|__libc_start)' ||
    fail "root frame is not the program's entry"

# The program exited: what is in use at the end is what leaked.
"$HT" collapse --metric leaked t.htr >leaked.folded || fail "collapse --metric leaked failed"
for re in ';main;build_list;make_node 20000$' ';main;leak_big 300000$'; do
    want_line leaked.folded "$re" "leaked metric"
done

"$HT" collapse --metric alloc_objects t.htr >aobj.folded || fail "alloc_objects failed"
want_line aobj.folded ';main;churn 100$' "churn's 100 allocations"
want_line aobj.folded ';main;build_list;make_node 20$' "make_node's 20 allocations"
"$HT" collapse -m alloc_space t.htr >aspace.folded || fail "alloc_space failed"
want_line aspace.folded ';main;churn 5000000$' "churn's bytes"

# --lines: file:line of each frame, the call site inside the leaf.
"$HT" collapse --lines t.htr >lines.folded || fail "collapse --lines failed"
want_line lines.folded ";make_node \\([^)]*prog\\.c:$(site_line SITE_MAKE_NODE)\\) 20000\$" "make_node file:line"
want_line lines.folded ";inl_alloc \\([^)]*prog\\.c:$(site_line SITE_INLINE)\\) 7000\$" "inlined file:line"

# --base: the two-column form; a trace against itself changes nothing.
"$HT" collapse --base t.htr t.htr >pair.folded || fail "collapse --base failed"
[ "$(wc -l <pair.folded)" -ge "$(wc -l <inuse.folded)" ] || fail "--base lost stacks"
awk 'NF < 3 || $(NF-1) != $NF { bad = 1; print "bad pair line: " $0 } END { exit bad }' \
    pair.folded || fail "--base of a trace against itself differs"
want_line pair.folded ';main;leak_big 300000 300000$' "pair line"

# Usage and run-time errors.
"$HT" collapse --metric bogus t.htr >/dev/null 2>err.txt
[ $? -eq 2 ] || fail "unknown metric: want exit 2"
"$HT" collapse --frobnicate t.htr >/dev/null 2>err.txt
[ $? -eq 2 ] || fail "unknown option: want exit 2"
grep -q 'usage:' err.txt || fail "unknown option: no usage"
"$HT" collapse --help >help.txt || fail "--help failed"
grep -q 'inuse_space' help.txt && grep -q 'Examples' help.txt || fail "--help lacks defaults/examples"
"$HT" collapse missing.htr >/dev/null 2>err.txt
[ $? -eq 1 ] || fail "missing file: want exit 1"
[ "$(wc -l <err.txt)" -eq 1 ] || fail "missing file: want one line on stderr, got: $(cat err.txt)"
echo "collapse ok"
