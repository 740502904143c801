#!/bin/bash
# heaptrace flamegraph on a real recording: a well-formed SVG whose frames,
# widths and tooltips match the known sites; differential mode; errors.
set -u
# prog.c (known allocation sites, see outputs_lib.sh) recorded into t.htr.
. "$TOP/tests/e2e/outputs_lib.sh"

# frames SVG: one line per frame, "depth<TAB>value<TAB>fill<TAB>path;to;frame<TAB>tooltip",
# through a real XML parser (fails on anything not well-formed).
frames() {
    python3 - "$1" <<'PY'
import sys, xml.dom.minidom as M
svg = M.parse(sys.argv[1]).documentElement
assert svg.tagName == 'svg' and svg.getAttribute('width') == '1200', 'not a 1200 px svg'
assert svg.getElementsByTagName('script'), 'no script'
g0 = [g for g in svg.getElementsByTagName('g') if g.getAttribute('id') == 'frames'][0]
path = []
for g in g0.getElementsByTagName('g'):
    d = int(g.getAttribute('data-d'))
    title = g.getElementsByTagName('title')[0].firstChild.data
    name = title.split('\n')[0]
    fill = g.getElementsByTagName('rect')[0].getAttribute('fill')
    # Frames come parents first, so the path to a frame is known when it comes.
    del path[d:]
    path.append(name)
    print('%d\t%s\t%s\t%s\t%s' % (d, g.getAttribute('data-v'), fill, ';'.join(path[1:]),
                                  title.replace('\n', ' | ')))
PY
}
# value FRAMES PATH-SUFFIX: the value of the frame whose path ends so.
value() { awk -F'\t' -v s="$2" 'index($4, s) && substr($4, length($4) - length(s) + 1) == s { print $2; exit }' "$1"; }

"$HT" flamegraph t.htr 2>fg.err || fail "flamegraph failed: $(cat fg.err)"
[ -s t.svg ] || fail "no t.svg (default name)"
grep -q 't.svg' fg.err || fail "stderr does not say where: $(cat fg.err)"
frames t.svg >inuse.tsv || fail "t.svg is not a well-formed flame graph"
expect_eq "make_node" "$(value inuse.tsv ';main;build_list;make_node')" 20000
expect_eq "leak_big" "$(value inuse.tsv ';main;leak_big')" 300000
expect_eq "inl_alloc" "$(value inuse.tsv ';main;use_inline;inl_alloc')" 7000
grep -q ';churn	' inuse.tsv && fail "churn is drawn though it holds nothing"
# Tooltips: module, file:line, bytes and objects.
tip=$(awk -F'\t' '$4 ~ /;make_node$/ { print $5; exit }' inuse.tsv)
case "$tip" in
*"module: prog"*"prog.c:$(site_line SITE_MAKE_NODE)"*"inuse_space: 19.5 KiB (20000 bytes)"*"inuse_objects: 20"*) ;;
*) fail "make_node tooltip: $tip" ;;
esac

"$HT" flamegraph --metric alloc_space -o alloc.svg t.htr 2>/dev/null || fail "alloc_space failed"
frames alloc.svg >alloc.tsv || fail "alloc.svg is not well-formed"
expect_eq "churn alloc_space" "$(value alloc.tsv ';main;churn')" 5000000

# Differential against itself: every frame there, none grew or shrank.
"$HT" flamegraph --base t.htr -o diff.svg t.htr 2>/dev/null || fail "--base failed"
frames diff.svg >diff.tsv || fail "diff.svg is not well-formed"
expect_eq "diff make_node" "$(value diff.tsv ';main;build_list;make_node')" 20000
awk -F'\t' '$3 != "rgb(225,225,225)" { print "changed: " $0; bad = 1 } END { exit bad }' diff.tsv ||
    fail "a trace against itself shows change"
grep -q 'delta inuse_space: 0 B' diff.tsv || fail "no delta in the diff tooltips"

# --lines: frames per file:line.
"$HT" flamegraph --lines -o lines.svg t.htr 2>/dev/null || fail "--lines failed"
frames lines.svg >lines.tsv || fail "lines.svg is not well-formed"
grep -q "make_node (.*prog.c:$(site_line SITE_MAKE_NODE))" lines.tsv || fail "--lines frame names"

# Usage and run-time errors; a failed write leaves nothing behind.
"$HT" flamegraph --metric nope t.htr >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad metric: want exit 2"
"$HT" flamegraph --width 10 t.htr >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad width: want exit 2"
"$HT" flamegraph -o "$WORK/no/dir/x.svg" t.htr 2>err.txt
[ $? -eq 1 ] || fail "unwritable output: want exit 1"
[ "$(wc -l <err.txt)" -eq 1 ] || fail "unwritable output: want one line, got: $(cat err.txt)"
"$HT" flamegraph --base missing.htr -o m.svg t.htr 2>/dev/null
[ $? -eq 1 ] || fail "missing base: want exit 1"
[ -e m.svg ] && fail "an output was left after a failure"
"$HT" flamegraph --help | grep -q 'Examples' || fail "--help"
echo "flamegraph ok"
