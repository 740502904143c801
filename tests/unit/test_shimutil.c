/* tests/unit/test_shimutil.c -- the shim's small pieces: option parsing,
 * the async-signal-safe formatter, the bootstrap arena, ring file names,
 * the events' clock. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libheaptrace/boot.h"
#include "libheaptrace/clock.h"
#include "libheaptrace/log.h"
#include "libheaptrace/opts.h"
#include "libheaptrace/session.h"

START_TEST(test_opts_parse_size)
{
    uint64_t v;
    ck_assert_int_eq(ht_opts_parse_size("0", &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(ht_opts_parse_size("524288", &v), 0);
    ck_assert_uint_eq(v, 524288);
    ck_assert_int_eq(ht_opts_parse_size("512K", &v), 0);
    ck_assert_uint_eq(v, 524288);
    ck_assert_int_eq(ht_opts_parse_size("4m", &v), 0);
    ck_assert_uint_eq(v, 4u << 20);
    ck_assert_int_eq(ht_opts_parse_size("1GiB", &v), 0);
    ck_assert_uint_eq(v, 1u << 30);
    ck_assert_int_eq(ht_opts_parse_size("2KB", &v), 0);
    ck_assert_uint_eq(v, 2048);
    const char *bad[] = {"", "K", "-1", "12x", "1.5M", "99999999999999999999", "17179869184G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(ht_opts_parse_size(bad[i], &v) < 0, "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_opts_env)
{
    setenv("HEAPTRACE_SAMPLE_RATE", "64K", 1);
    setenv("HEAPTRACE_MAX_DEPTH", "5000", 1); // out of range: default kept
    setenv("HEAPTRACE_LOSSY", "1", 1);
    setenv("HEAPTRACE_RING_DIR", "/tmp/ring", 1);
    ck_assert_int_eq(ht_opts_init(), 0);
    ck_assert_uint_eq(ht_opt.sample_rate, 65536);
    ck_assert_uint_eq(ht_opt.max_depth, HT_OPTS_DEFAULT_MAX_DEPTH);
    ck_assert_int_eq(ht_opt.lossy, 1);
    ck_assert_str_eq(ht_opt.ring_dir, "/tmp/ring");
    ck_assert_str_eq(ht_opt.output, "");
}
END_TEST

START_TEST(test_log_fmt)
{
    char b[64];
    ht_log_fmt(b, sizeof b, "a%db%uc%xd%se%c%%", -12, 7u, 255u, "str", 'Z');
    ck_assert_str_eq(b, "a-12b7cffdstreZ%");
    ht_log_fmt(b, sizeof b, "%llu %zu %ld %p", 18446744073709551615ull, (size_t)3, -5L,
               (void *)0x10);
    ck_assert_str_eq(b, "18446744073709551615 3 -5 0x10");
    const char *volatile nul = NULL; // hidden from gcc's format check
    ht_log_fmt(b, sizeof b, "%s", nul);
    ck_assert_str_eq(b, "(null)");
    // Truncation keeps the NUL and reports what was written.
    char s[8];
    ck_assert_uint_eq(ht_log_fmt(s, sizeof s, "%s", "0123456789"), 7);
    ck_assert_str_eq(s, "0123456");
    ck_assert_uint_eq(ht_log_fmt(s, 0, "x"), 0);
}
END_TEST

START_TEST(test_boot_arena)
{
    uint8_t *a = ht_boot_alloc(100, 16), *b = ht_boot_alloc(10, 4096);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert(ht_boot_owns(a) && ht_boot_owns(b));
    ck_assert_uint_eq((uintptr_t)a % 16, 0);
    ck_assert_uint_eq((uintptr_t)b % 4096, 0);
    ck_assert_uint_eq(ht_boot_size(a), 100);
    ck_assert_uint_eq(ht_boot_size(b), 10);
    ck_assert(a + 100 <= b || b + 10 <= a);
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(a[i], 0);
    int x;
    ck_assert(!ht_boot_owns(&x));
    ck_assert(!ht_boot_owns(NULL));
    ck_assert_ptr_null(ht_boot_alloc(HT_BOOT_ARENA_SIZE, 16)); // never fits
    // Exhaustion is an orderly NULL.
    int n = 0;
    while (ht_boot_alloc(1000, 16))
        n++;
    ck_assert_int_gt(n, 200);
    ck_assert_int_lt(n, (int)(HT_BOOT_ARENA_SIZE / 1000));
}
END_TEST

START_TEST(test_ring_path)
{
    char b[64];
    ck_assert_int_eq(ht_sess_ring_path(b, sizeof b, "/tmp/d", 1234, 2), 18);
    ck_assert_str_eq(b, "/tmp/d/1234.2.ring");
    ck_assert_int_lt(ht_sess_ring_path(b, 10, "/tmp/d", 1234, 2), 0);
}
END_TEST

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The clock's promises to the collector, checked over 150 ms (a dozen
 * re-anchors) by two threads: every reading lies between CLOCK_MONOTONIC
 * read just before it and that read just after plus HT_CLOCK_AHEAD_NS and
 * 5 us; a thread never sees it go back; and a reading taken after another
 * thread's (ordered through an atomic, as a free and the reuse of its
 * address are ordered through malloc's lock) is never smaller. */
typedef struct clk_arg_s {
    _Atomic uint64_t *shared;
    long behind, ahead, back, cross, n;
    int64_t worst_behind, worst_ahead; /* ns */
} clk_arg_t;

static void *
clk_worker(void *a)
{
    clk_arg_t *c = a;
    uint64_t last = 0, end = mono_ns() + 150ull * 1000 * 1000;
    for (;;) {
        uint64_t m1 = mono_ns();
        if (m1 > end)
            break;
        uint64_t seen = atomic_load_explicit(c->shared, memory_order_acquire);
        uint64_t r = ht_clock_ns();
        uint64_t m2 = mono_ns();
        c->behind += r < m1;
        c->ahead += r > m2 + HT_CLOCK_AHEAD_NS + 5000;
        if ((int64_t)(m1 - r) > c->worst_behind)
            c->worst_behind = (int64_t)(m1 - r);
        if ((int64_t)(r - m2 - HT_CLOCK_AHEAD_NS) > c->worst_ahead)
            c->worst_ahead = (int64_t)(r - m2 - HT_CLOCK_AHEAD_NS);
        c->back += r < last;
        c->cross += r < seen;
        c->n++;
        last = r;
        uint64_t cur = atomic_load_explicit(c->shared, memory_order_relaxed);
        while (cur < r && !atomic_compare_exchange_weak_explicit(c->shared, &cur, r,
                                                                 memory_order_release,
                                                                 memory_order_relaxed))
            ;
    }
    return NULL;
}

static void
clock_check(int allow_tsc)
{
    ht_clock_init(allow_tsc);
    _Atomic uint64_t shared = 0;
    clk_arg_t a[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        a[i] = (clk_arg_t){.shared = &shared};
        ck_assert_int_eq(pthread_create(&t[i], NULL, clk_worker, &a[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_gt(a[i].n, 1000);
        ck_assert_msg(a[i].behind == 0, "%ld of %ld readings behind CLOCK_MONOTONIC (by up to %lld ns)",
                      a[i].behind, a[i].n, (long long)a[i].worst_behind);
        ck_assert_msg(a[i].ahead == 0, "%ld of %ld readings too far ahead (by up to %lld ns)",
                      a[i].ahead, a[i].n, (long long)a[i].worst_ahead);
        ck_assert_msg(a[i].back == 0, "%ld readings went back in a thread", a[i].back);
        ck_assert_msg(a[i].cross == 0, "%ld readings below another thread's earlier one",
                      a[i].cross);
    }
}

START_TEST(test_clock_tsc)
{
    clock_check(1);
    // The TSC is used when the CPU and kernel allow it (this test cannot
    // tell from here when they do not; the checks above hold either way).
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    char src[32] = "";
    if (f) {
        if (!fgets(src, sizeof src, f))
            src[0] = 0;
        fclose(f);
    }
    if (strcmp(src, "tsc\n") == 0 && __builtin_cpu_supports("sse2")) {
        unsigned a, b, c, d;
        __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000007u), "c"(0));
        if (d & (1u << 8))
            ck_assert(ht_clock_uses_tsc());
    }
}
END_TEST

START_TEST(test_clock_gettime_only)
{
    clock_check(0);
    ck_assert(!ht_clock_uses_tsc());
}
END_TEST

Suite *
suite_shimutil(void)
{
    Suite *s = suite_create("shimutil");
    TCase *tc = tcase_create("shimutil");
    tcase_add_test(tc, test_opts_parse_size);
    tcase_add_test(tc, test_opts_env);
    tcase_add_test(tc, test_log_fmt);
    tcase_add_test(tc, test_boot_arena);
    tcase_add_test(tc, test_ring_path);
    tcase_add_test(tc, test_clock_tsc);
    tcase_add_test(tc, test_clock_gettime_only);
    suite_add_tcase(s, tc);
    return s;
}
