#!/bin/bash
# gcc compiling a small C file under `heaptrace record --all`: the same
# object file and status as natively. gcc runs cc1 and as as child
# processes, recorded into T.htr.<pid>: every trace analyzes, and cc1's
# names its own functions (xmalloc, c_parse_file, ...: cc1 exports them).
. "$TOP/tests/e2e/t_real_lib.bash"
need gcc
GCC=$(real_exe gcc)
cat >"$WORK/small.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { struct node *next; char name[32]; int value; };
static struct node *push(struct node *head, const char *name, int v)
{
    struct node *n = malloc(sizeof *n);
    if (!n) abort();
    snprintf(n->name, sizeof n->name, "%s", name);
    n->value = v;
    n->next = head;
    return n;
}
int main(int argc, char **argv)
{
    struct node *h = NULL;
    for (int i = 0; i < argc * 100; i++) h = push(h, argv[0], i * i);
    long s = 0;
    for (struct node *n = h; n; n = n->next) s += n->value + (long)strlen(n->name);
    printf("%ld\n", s);
    return 0;
}
CEOF
(cd "$WORK" && "$GCC" -O2 -g -Wall -c small.c -o native.o >native.out 2>native.err; echo $? >native.rc)
(cd "$WORK" && "$HT" record --all -o "$WORK/t.htr" "$GCC" -O2 -g -Wall -c small.c -o traced.o >traced.out 2>traced.err
    echo $? >traced.rc)
cat "$WORK/traced.err"
[ "$(cat "$WORK/native.rc")" = 0 ] || fail "gcc failed natively: $(cat "$WORK/native.err")"
same_run gcc
cmp -s "$WORK/native.o" "$WORK/traced.o" || fail "gcc under heaptrace wrote a different object file"
children=$(ls "$WORK"/t.htr.[0-9]* 2>/dev/null)
[ -n "$children" ] || fail "gcc runs cc1 and as, but there is no child trace $WORK/t.htr.<pid>"
re='xmalloc|xcalloc|xrealloc|xstrdup|(_Z[0-9]+)?(c_parse_file|compile_file|cpp_read_main_file|init_ttree|toplev[a-z_:]*)'
check_basic "$WORK/t.htr"
cc1=""
for c in $children; do
    check_basic "$c"
    names_in "$c" "$re" && cc1=$c
done
[ -n "$cc1" ] || fail "no child trace names a cc1 function ($re); children: $children"
echo "cc1's trace $cc1 names: $(top_names "$cc1" "$re")"
echo ok
