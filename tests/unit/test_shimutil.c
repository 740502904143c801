/* tests/unit/test_shimutil.c -- the shim's small pieces: option parsing,
 * the async-signal-safe formatter, the bootstrap arena, ring file names. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libheaptrace/boot.h"
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
    suite_add_tcase(s, tc);
    return s;
}
