# Shared start of the t_outputs_*.sh tests (sourced): lib.sh's helpers,
# then prog.c built and recorded exactly (--all) into t.htr in the test's
# directory, and site_line TAG (the line of prog.c marked /* TAG */).
# Skips (77) while `heaptrace record` cannot record.
. "$TOP/tests/e2e/lib.sh"

# A small program with known allocation sites (built here, so the test
# needs nothing but gcc): 20 x 1000 bytes leaked through make_node,
# 300000 leaked in leak_big, 7 x 1000 leaked through an inlined helper,
# and 100 x 50000 bytes allocated and freed in churn.
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
