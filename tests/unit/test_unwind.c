/* tests/unit/test_unwind.c -- the cached CFI unwinder against libunwind:
 * from many call sites (a 200-deep recursion mixing frames with and
 * without frame pointers, big and realigned frames, a qsort comparator
 * called from inside libc, threads, a 16 KiB thread stack, a signal
 * handler on an alternate stack) ht_unwind_backtrace must return exactly
 * the frames unw_backtrace returns at the same point. Also: the cache
 * hits on the second trace, flush empties it, a full table still gives
 * correct traces, and the libunwind mode is what it says. */
#include "libheaptrace/unwind.h"

#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#define TU_MAX 512

typedef int (*tu_bt_fn_t)(void **, int);

/* One comparison: both traces, and what we learnt from them. */
typedef struct tu_cmp_s {
    void *a[TU_MAX]; /* unw_backtrace */
    void *b[TU_MAX]; /* ht_unwind_backtrace */
    int na, nb;
    int max;
    int only; /* 1: unw_backtrace only (into a), 2: ht_unwind only (into b) */
    int checks;
    int mismatches;
    char why[256];
} tu_cmp_t;

/* Both unwinders are called from this one call site, so that even
 * frames[0] (the return address into this function) is the same. */
static __attribute__((noinline)) int
tu_bt_at(tu_bt_fn_t fn, void **f, int max)
{
    int n = fn(f, max);
    __asm__ volatile("" : "+r"(n)::"memory"); // a call, not a tail jump
    return n;
}

/* O0: an optimizer may peel the first iteration of the loop below into a
 * call site of its own. */
static __attribute__((noinline, optimize("O0"))) void
tu_check_here(tu_cmp_t *c)
{
    int n[2];
    // The same call site in a loop the compiler cannot unroll (opaque trip
    // count): frames[1], the return address into this function, agrees too.
    static volatile int two = 2;
    for (int w = 0; w < two; w++)
        if (!c->only || c->only == w + 1)
            n[w] = tu_bt_at(w ? ht_unwind_backtrace : unw_backtrace, w ? c->b : c->a, c->max);
    __asm__ volatile("" ::: "memory");
    if (c->only) {
        c->na = c->only == 1 ? n[0] : c->na;
        c->nb = c->only == 2 ? n[1] : c->nb;
        c->checks++;
        return;
    }
    c->na = n[0];
    c->nb = n[1];
    c->checks++;
    int bad = n[0] != n[1] || n[0] <= 0;
    int at = -1;
    for (int i = 0; !bad && i < n[0]; i++) {
        if (c->a[i] != c->b[i]) {
            bad = 1;
            at = i;
        }
    }
    if (bad && !c->mismatches)
        snprintf(c->why, sizeof c->why, "unw_backtrace %d frames, ht_unwind %d; first diff at %d: %p vs %p",
                 n[0], n[1], at, at >= 0 ? c->a[at] : NULL, at >= 0 ? c->b[at] : NULL);
    c->mismatches += bad;
}

static void
tu_cmp_init(tu_cmp_t *c, int max)
{
    memset(c, 0, sizeof *c);
    c->max = max;
}

/* The memo of the previous walk (unwind.h), as the recorder gives every
 * thread one: most tests below run with it, so each repeated trace is
 * checked against libunwind after taking frames from the memo too. */
static void *
tu_memo_on(void)
{
    void *m = calloc(1, HT_UNWIND_MEMO_BYTES);
    ck_assert_ptr_nonnull(m);
    ht_unwind_memo_set(m);
    return m;
}

static void
tu_memo_off(void *m)
{
    ht_unwind_memo_set(NULL);
    free(m);
}

#define TU_ASSERT_SAME(c) ck_assert_msg((c)->mismatches == 0 && (c)->checks > 0, "%d/%d differ: %s", \
                                        (c)->mismatches, (c)->checks, (c)->why)

/* ---- a recursion through different kinds of frames ---- */

static volatile int tu_sink;
static int tu_rec_fp(tu_cmp_t *c, int d);
static int tu_rec_nofp(tu_cmp_t *c, int d);
static int tu_rec_big(tu_cmp_t *c, int d);
static int tu_rec_aligned(tu_cmp_t *c, int d);

static int
tu_rec_next(tu_cmp_t *c, int d)
{
    if (d <= 0) {
        tu_check_here(c);
        return 0;
    }
    switch (d % 4) {
    case 0: return tu_rec_fp(c, d - 1);
    case 1: return tu_rec_nofp(c, d - 1);
    case 2: return tu_rec_big(c, d - 1);
    default: return tu_rec_aligned(c, d - 1);
    }
}

static __attribute__((noinline, optimize("no-omit-frame-pointer"))) int
tu_rec_fp(tu_cmp_t *c, int d)
{
    int r = tu_rec_next(c, d);
    tu_sink = r; // not a tail call
    return r + 1;
}

static __attribute__((noinline, optimize("omit-frame-pointer"))) int
tu_rec_nofp(tu_cmp_t *c, int d)
{
    int r = tu_rec_next(c, d);
    tu_sink = r;
    return r + 1;
}

/* A frame far bigger than the red zone: the CFA offset is large. */
static __attribute__((noinline, optimize("omit-frame-pointer"))) int
tu_rec_big(tu_cmp_t *c, int d)
{
    volatile char pad[3000];
    pad[0] = (char)d;
    pad[sizeof pad - 1] = (char)d;
    int r = tu_rec_next(c, d);
    tu_sink = r + pad[0] + pad[sizeof pad - 1];
    return r + 1;
}

/* An over-aligned local: gcc realigns the stack (RBP-based CFA, or a
 * DWARF expression, which goes to the fallback). */
static __attribute__((noinline)) int
tu_rec_aligned(tu_cmp_t *c, int d)
{
    volatile char pad[64] __attribute__((aligned(64)));
    pad[0] = (char)d;
    int r = tu_rec_next(c, d);
    tu_sink = r + pad[0];
    return r + 1;
}

START_TEST(test_unwind_deep)
{
    static tu_cmp_t c;
    void *memo = tu_memo_on();
    int depths[] = {0, 1, 2, 5, 25, 200};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        tu_cmp_init(&c, TU_MAX);
        for (int rep = 0; rep < 3; rep++) // miss, then hits
            tu_rec_next(&c, depths[i]);
        TU_ASSERT_SAME(&c);
        ck_assert_int_ge(c.na, depths[i] + 3);
    }
    // The 200-deep trace reaches main.
    ck_assert_int_gt(c.na, 200);
    // Truncated traces: the same prefix.
    int maxes[] = {0, 1, 2, 3, 17, 100};
    for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
        tu_cmp_init(&c, maxes[i]);
        tu_rec_next(&c, 50);
        tu_rec_next(&c, 50);
        ck_assert_msg(c.mismatches == 0 || (maxes[i] == 0 && c.na == 0 && c.nb == 0),
                      "max %d: %s", maxes[i], c.why);
        ck_assert_int_le(c.nb, maxes[i]);
    }
    tu_memo_off(memo);
}
END_TEST

/* ---- from inside libc: qsort's comparator ---- */

static tu_cmp_t *tu_qsort_cmp;

static int
tu_qsort_cb(const void *x, const void *y)
{
    if (tu_qsort_cmp->checks < 20)
        tu_check_here(tu_qsort_cmp);
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

START_TEST(test_unwind_libc_callback)
{
    static tu_cmp_t c;
    static int v[64];
    void *memo = tu_memo_on();
    tu_cmp_init(&c, TU_MAX);
    for (int i = 0; i < 64; i++)
        v[i] = (i * 37) % 64;
    tu_qsort_cmp = &c;
    qsort(v, 64, sizeof v[0], tu_qsort_cb);
    TU_ASSERT_SAME(&c);
    ck_assert_int_eq(c.checks, 20);
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(v[i], i);
    tu_memo_off(memo);
}
END_TEST

/* Two call sites of one function at the same depth: its frame, and every
 * frame it calls, land at the same addresses with the same return
 * addresses; only its own return address tells them apart. The memo must
 * see that word change (and use itself where nothing did). */
static __attribute__((noinline)) void
tu_memo_leaf(tu_cmp_t *c)
{
    tu_check_here(c);
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void
tu_memo_mid(tu_cmp_t *c)
{
    tu_memo_leaf(c);
    __asm__ volatile("" ::: "memory");
}

START_TEST(test_unwind_memo_sees_a_changed_caller)
{
    static tu_cmp_t c;
    void *memo = tu_memo_on();
    tu_cmp_init(&c, TU_MAX);
    static volatile int n = 40;
    ht_unwind_stats_reset();
    for (int i = 0; i < n; i++) {
        if (i % 3 == 0)
            tu_memo_mid(&c); // site A
        else
            tu_memo_mid(&c); // site B
        __asm__ volatile("" ::: "memory");
    }
    TU_ASSERT_SAME(&c);
    ck_assert_int_eq(c.checks, 40);
    ht_unwind_stats_t st;
    ht_unwind_stats_get(&st);
    ck_assert_uint_gt(st.memo_frames, 0); // repeats from one site used it
    // Truncated traces after full ones, and the reverse.
    int maxes[] = {3, TU_MAX, 2, TU_MAX, 1};
    for (size_t k = 0; k < sizeof maxes / sizeof maxes[0]; k++) {
        c.max = maxes[k];
        tu_memo_mid(&c);
        tu_memo_mid(&c);
    }
    TU_ASSERT_SAME(&c);
    tu_memo_off(memo);
}
END_TEST

/* ---- hits, flush, full table ---- */

static __attribute__((noinline, optimize("O0"))) int
tu_trace_twice(ht_unwind_stats_t *first, ht_unwind_stats_t *second)
{
    static void *f[TU_MAX];
    int n = 0;
    static volatile int two = 2; // one call site: no unrolling
    for (int w = 0; w < two; w++) {
        ht_unwind_stats_reset();
        n = tu_bt_at(ht_unwind_backtrace, f, TU_MAX);
        ht_unwind_stats_get(w ? second : first);
    }
    return n;
}

START_TEST(test_unwind_cache)
{
    static tu_cmp_t c;
    ht_unwind_stats_t s1, s2;
    ht_unwind_mode_set(HT_UNWIND_MODE_CFI);
    int n = tu_trace_twice(&s1, &s2);
    ck_assert_int_gt(n, 3);
    ck_assert_uint_eq(s2.traces, 1);
    ck_assert_uint_eq(s2.fallbacks, 0);
    ck_assert_uint_eq(s2.misses, 0);
    ck_assert_uint_eq(s2.hits, (uint64_t)n); // one lookup per frame
    uint64_t used = ht_unwind_cache_used();
    ck_assert_uint_ge(used, (uint64_t)n);

    // Flush: every rule computed again, and still the same frames.
    ht_unwind_flush();
    ck_assert_uint_eq(ht_unwind_cache_used(), 0);
    tu_trace_twice(&s1, &s2);
    ck_assert_uint_eq(s1.misses, (uint64_t)n);
    ck_assert_uint_eq(s2.hits, (uint64_t)n);
    tu_cmp_init(&c, TU_MAX);
    ht_unwind_flush();
    tu_rec_next(&c, 30);
    TU_ASSERT_SAME(&c);

    // Full table: nothing new can be cached, traces stay exact.
    ht_unwind_flush();
    uint64_t filled = ht_unwind_cache_fill_for_test();
    ck_assert_uint_eq(filled, 1u << HT_UNWIND_CACHE_LG);
    tu_cmp_init(&c, TU_MAX);
    ht_unwind_stats_reset();
    tu_rec_next(&c, 30);
    tu_rec_next(&c, 30);
    TU_ASSERT_SAME(&c);
    ht_unwind_stats_t s;
    ht_unwind_stats_get(&s);
    ck_assert_uint_eq(s.hits, 0);
    ck_assert_uint_gt(s.uncached, 60);
    ht_unwind_flush();
    ck_assert_uint_eq(ht_unwind_cache_used(), 0);
    tu_cmp_init(&c, TU_MAX);
    tu_rec_next(&c, 30);
    TU_ASSERT_SAME(&c);
}
END_TEST

START_TEST(test_unwind_mode_libunwind)
{
    static tu_cmp_t c;
    ht_unwind_mode_set(HT_UNWIND_MODE_LIBUNWIND);
    ht_unwind_stats_reset();
    tu_cmp_init(&c, TU_MAX);
    tu_rec_next(&c, 10);
    TU_ASSERT_SAME(&c);
    ht_unwind_stats_t s;
    ht_unwind_stats_get(&s);
    ck_assert_uint_eq(s.traces, 1);
    ck_assert_uint_eq(s.fallbacks, 1);
    ck_assert_uint_eq(s.hits + s.misses, 0);
    ht_unwind_mode_set(HT_UNWIND_MODE_CFI);
    ht_unwind_stats_reset();
    tu_rec_next(&c, 10);
    TU_ASSERT_SAME(&c);
    ht_unwind_stats_get(&s);
    ck_assert_uint_eq(s.fallbacks, 0);
}
END_TEST

/* ---- threads, small stacks, signal handlers ---- */

typedef struct tu_thread_s {
    tu_cmp_t c;
    int depth;
    int iters;
    ht_unwind_stats_t st;
} tu_thread_t;

static void *
tu_thread_main(void *arg)
{
    tu_thread_t *t = arg;
    void *memo = tu_memo_on();
    for (int i = 0; i < t->iters; i++) {
        tu_rec_next(&t->c, t->depth + i % 7);
        if (i % 50 == 25)
            ht_unwind_flush(); // under the other threads' feet
    }
    ht_unwind_stats_get(&t->st);
    tu_memo_off(memo);
    return NULL;
}

START_TEST(test_unwind_threads)
{
    enum { N = 4 };
    tu_thread_t *t = calloc(N, sizeof *t);
    pthread_t th[N];
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < N; i++) {
        tu_cmp_init(&t[i].c, TU_MAX);
        t[i].depth = 10 + 20 * i;
        t[i].iters = 300;
        ck_assert_int_eq(pthread_create(&th[i], NULL, tu_thread_main, &t[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        TU_ASSERT_SAME(&t[i].c);
        ck_assert_int_eq(t[i].c.checks, 300);
        ck_assert_uint_eq(t[i].st.fallbacks, 0); // thread stacks end in clone3's CFI
        ck_assert_uint_gt(t[i].st.hits, t[i].st.misses);
    }
    free(t);
}
END_TEST

START_TEST(test_unwind_small_stack)
{
    // libunwind itself overflows a 16 KiB stack (its first trace in a
    // thread), so the reference trace comes from a thread with a default
    // stack running the same code: return addresses do not depend on
    // where the stack is.
    tu_thread_t *t = calloc(2, sizeof *t);
    ck_assert_ptr_nonnull(t);
    pthread_attr_t a[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        tu_cmp_init(&t[i].c, TU_MAX);
        t[i].c.only = i + 1;
        t[i].depth = 1; // the binary's 8 KB of static TLS share the 16 KiB
        t[i].iters = 1;
        pthread_attr_init(&a[i]);
    }
#ifdef __SANITIZE_ADDRESS__
    // ASan's interceptors and redzones need far more stack than the shim
    // ever runs with: the small-stack case is for real builds only.
    pthread_attr_setstacksize(&a[1], 1u << 20);
#else
    ck_assert_int_eq(pthread_attr_setstacksize(&a[1], PTHREAD_STACK_MIN), 0);
#endif
    ht_unwind_flush(); // the miss path too, on the small stack
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_create(&th[i], &a[i], tu_thread_main, &t[i]), 0);
        pthread_join(th[i], NULL);
        pthread_attr_destroy(&a[i]);
    }
    ck_assert_int_ge(t[0].c.na, 6); // bt_at, check_here, nofp, thread_main, start_thread, clone3
    ck_assert_int_eq(t[0].c.na, t[1].c.nb);
    for (int i = 0; i < t[0].c.na; i++)
        ck_assert_ptr_eq(t[0].c.a[i], t[1].c.b[i]);
    ck_assert_uint_gt(t[1].st.misses, 0);
    ck_assert_uint_eq(t[1].st.fallbacks, 0);
    free(t);
}
END_TEST

static tu_cmp_t *tu_sig_cmp;

static void
tu_sig_handler(int sig)
{
    (void)sig;
    tu_rec_next(tu_sig_cmp, 3);
}

START_TEST(test_unwind_signal)
{
    static tu_cmp_t c;
    static char altstack[64 * 1024];
    tu_cmp_init(&c, TU_MAX);
    tu_sig_cmp = &c;
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    ck_assert_int_eq(sigaltstack(&ss, NULL), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tu_sig_handler;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    ht_unwind_stats_reset();
    raise(SIGUSR1);
    raise(SIGUSR1);
    // Without the alternate stack too.
    sa.sa_flags = 0;
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    raise(SIGUSR1);
    TU_ASSERT_SAME(&c);
    ck_assert_int_eq(c.checks, 3);
    ht_unwind_stats_t s;
    ht_unwind_stats_get(&s);
    ck_assert_uint_eq(s.fallbacks, 3); // the signal frame is libunwind's
    // The trace crossed the signal frame into this test's frames.
    ck_assert_int_gt(c.na, 8);
}
END_TEST

Suite *
suite_unwind(void)
{
    Suite *s = suite_create("unwind");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_unwind_deep);
    tcase_add_test(tc, test_unwind_libc_callback);
    tcase_add_test(tc, test_unwind_memo_sees_a_changed_caller);
    tcase_add_test(tc, test_unwind_cache);
    tcase_add_test(tc, test_unwind_mode_libunwind);
    tcase_add_test(tc, test_unwind_threads);
    tcase_add_test(tc, test_unwind_small_stack);
    tcase_add_test(tc, test_unwind_signal);
    suite_add_tcase(s, tc);
    return s;
}
