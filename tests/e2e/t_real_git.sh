#!/bin/bash
# git on a repository under `heaptrace record --all`: init, add, commit,
# log, gc (which runs child git processes: their traces are T.htr.<pid>).
# Every step gives the same output and status as the same step natively
# (fixed dates, so the hashes match); the traces analyze, and name real
# functions. Debian's git is stripped (6 dynamic symbols): with its debug
# file under /usr/lib/debug the names must be git's own (xmalloc, cmd_*),
# without it they must be zlib's, which git calls to write and read
# objects (deflate*, inflate*).
. "$TOP/tests/e2e/t_real_lib.bash"
need git
GIT=$(real_exe git)
export HOME=$WORK GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=t@example.org \
    GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=t@example.org \
    GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'

n=0
# step MODE CMD...: run one git command in $WORK/MODE/repo, natively or
# recorded into $WORK/MODE.N.htr; output to $WORK/MODE.N.{out,rc}
step() {
    local mode=$1; shift
    local pre=()
    [ "$mode" = traced ] && pre=("$HT" record --all -o "$WORK/traced.$n.htr")
    (cd "$WORK/$mode/repo" && "${pre[@]}" "$GIT" "$@" >"$WORK/$mode.$n.out" 2>"$WORK/$mode.$n.err")
    echo $? >"$WORK/$mode.$n.rc"
}
both() {
    n=$((n + 1))
    step native "$@"
    step traced "$@"
    cp "$WORK/native.$n.out" "$WORK/native.out"; cp "$WORK/native.$n.rc" "$WORK/native.rc"
    cp "$WORK/traced.$n.out" "$WORK/traced.out"; cp "$WORK/traced.$n.rc" "$WORK/traced.rc"
    [ "$(cat "$WORK/native.rc")" = 0 ] || fail "git $* failed natively: $(cat "$WORK/native.$n.err")"
    same_run "git $*"
}
for mode in native traced; do
    mkdir -p "$WORK/$mode/repo"
    (cd "$WORK/$mode/repo" &&
        for i in $(seq 1 120); do seq "$i" $((i * 40)) >"file$i.txt"; done &&
        mkdir -p src && for i in $(seq 1 30); do printf 'int f%d(void) { return %d; }\n' "$i" "$i" >"src/f$i.c"; done)
done
both init -q -b main .
both add .
both commit -q -m "first commit"
for mode in native traced; do (cd "$WORK/$mode/repo" && for i in $(seq 1 60); do echo "change $i" >>"file$i.txt"; done); done
both commit -q -a -m "second commit"
both log --stat --format='%H %an %s'
grep -q 'first commit' "$WORK/traced.out" || fail "git log under heaptrace does not show the first commit"
gc=$((n + 1))
both gc --quiet
both fsck --no-progress
both rev-list --objects --all
# (count-objects' size-pack varies from run to run natively: delta search
# runs on threads; the loose count does not)
"$GIT" -C "$WORK/traced/repo" count-objects -v | grep -q '^count: 0$' ||
    fail "git gc under heaptrace did not pack the loose objects"

# the traces: every step's, and gc's children (git gc runs pack-refs,
# reflog, repack -> pack-objects, ...)
children=$(ls "$WORK/traced.$gc.htr".[0-9]* 2>/dev/null | wc -l)
[ "$children" -ge 1 ] || fail "git gc forks and execs child git processes, but there is no child trace $WORK/traced.$gc.htr.<pid>"
echo "git gc: $children child traces"
id=$(readelf -n "$GIT" 2>/dev/null | awk '/Build ID/ {print $3}')
if [ -n "$id" ] && [ -f "/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug" ]; then
    re='xmalloc|xcalloc|xrealloc|xstrdup|cmd_[a-z_]+' what="git function (xmalloc, cmd_*)"
else
    re='deflate[A-Za-z0-9_]*|inflate[A-Za-z0-9_]*' what="zlib function git calls (deflate*, inflate*; git itself is stripped)"
fi
found=""
for t in "$WORK"/traced.*.htr "$WORK"/traced.*.htr.[0-9]*; do
    check_basic "$t"
    names_in "$t" "$re" && found="$found $(basename "$t")"
done
echo "traces naming a $what:$found"
# commit writes objects (deflate); gc's pack-objects compresses (deflate)
case " $found " in *" traced.3.htr "*) ;; *) fail "the trace of git commit names no $what" ;; esac
names_in "$WORK/traced.$gc.htr" "$re" || ls "$WORK/traced.$gc.htr".* | while read -r c; do names_in "$c" "$re" && echo "$c"; done | grep -q . ||
    fail "neither git gc's trace nor its children's name a $what"
echo ok
