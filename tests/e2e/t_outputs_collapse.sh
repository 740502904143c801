#!/bin/bash
# heaptrace collapse on a real recording: exact lines for known sites, the
# format flamegraph.pl reads, --metric, --lines, --base, usage errors.
set -u
# A small program with known allocation sites (built here, so the test
# needs nothing but gcc): 20 x 1000 bytes leaked through make_node,
# 300000 leaked in leak_big, 7 x 1000 leaked through an inlined helper,
# and 100 x 50000 bytes allocated and freed in churn.
. "$TOP/tests/e2e/lib.sh"
cat > prog.c <<'PROG'
#include <stdlib.h>
#include <string.h>
static void *volatile keep[64];
__attribute__((noinline)) static void *make_node(size_t n)
{
    void *p = malloc(n); /* SITE_MAKE_NODE */
    memset(p, 1, n);
    return p;
}
__attribute__((noinline)) static void build_list(int k)
{
    for (int i = 0; i < k; i++)
        keep[i] = make_node(1000);
}
__attribute__((noinline)) static void churn(void)
{
    for (int i = 0; i < 100; i++) {
        char *volatile p = malloc(50000); /* SITE_CHURN */
        p[0] = 1;
        free(p);
    }
}
__attribute__((noinline)) static void leak_big(void)
{
    keep[40] = malloc(300000); /* SITE_LEAK_BIG */
}
static inline __attribute__((always_inline)) void *inl_alloc(size_t n)
{
    return malloc(n); /* SITE_INLINE */
}
__attribute__((noinline)) static void use_inline(void)
{
    for (int i = 0; i < 7; i++)
        keep[41 + i] = inl_alloc(1000);
}
int main(void)
{
    build_list(20);
    churn();
    leak_big();
    use_inline();
    return 0;
}
PROG
gcc -std=gnu11 -O0 -g -fno-omit-frame-pointer -fno-builtin -o prog prog.c || fail "cannot build prog.c"
site_line() { grep -n "$1" prog.c | cut -d: -f1; }

# record an exact trace; skip (77) while `heaptrace record` cannot.
"$HT" record --all -o t.htr ./prog >record.log 2>&1
rc=$?
if [ $rc -ne 0 ] || [ ! -s t.htr ]; then
    skip "heaptrace record does not work yet (exit $rc: $(tail -n1 record.log))"
fi

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
