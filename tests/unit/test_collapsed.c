/* tests/unit/test_collapsed.c -- collapsed stacks from a hand-built profile. */
#include "formats/collapsed.h"
#include "tests/unit/fixture_profile.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The fixture (tests/unit/fixture_profile.h), with a name holding a ';'
 * and a newline. */
static ht_pstack_t fx_stacks[8];
static ht_profile_t fx;

static void
fx_build(double scale)
{
    static const ht_line_t odd = {"parse;weird\nname", "src/p.c", 7};
    double inuse[8] = {100.3, 49.4, 0.4, 30.6, 10, 5, 3, 4};
    fx_profile_init(&fx, fx_stacks, 8, &odd);
    for (int i = 0; i < 8; i++) {
        fx_stacks[i].v[HT_M_INUSE_SPACE] = inuse[i] * scale;
        fx_stacks[i].v[HT_M_INUSE_OBJECTS] = 1;
        fx_stacks[i].v[HT_M_ALLOC_SPACE] = 7;
    }
}

/* Write with `fn` into a memory buffer; returns it (caller frees). */
static char *
fx_write(ht_metric_t m, int lines, const ht_profile_t *base)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ck_assert_ptr_nonnull(f);
    ht_collapsed_opts_t o = {.lines = lines};
    int rc = base ? ht_collapsed_write_pair(f, base, &fx, m, &o) : ht_collapsed_write(f, &fx, m, &o);
    ck_assert_int_eq(rc, 0);
    fclose(f);
    return out;
}

START_TEST(test_collapsed_exact_lines)
{
    fx_build(1);
    char *out = fx_write(HT_M_INUSE_SPACE, 0, NULL);
    // Sorted by stack text; 100.3 + 49.4 summed, then rounded; the 0.4
    // stack rounds to 0 and is omitted; malloc and operator new trimmed
    // at the leaf; the two worker call sites merge by name.
    const char *want = "[unknown] 3\n"
                       "__libc_start_main;main;libplug.so+0x3234 31\n"
                       "__libc_start_main;main;outer_fn;inner_helper 150\n"
                       "__libc_start_main;main;worker 15\n"
                       "malloc 4\n";
    ck_assert_str_eq(out, want);
    free(out);
}
END_TEST

START_TEST(test_collapsed_lines_and_sanitize)
{
    fx_build(1);
    char *out = fx_write(HT_M_ALLOC_SPACE, 1, NULL);
    // Every stack has alloc_space 7: the weird name is sanitized, frames
    // carry file:line, the two worker sites stay apart, merged stacks sum.
    const char *want = "[unknown] 7\n"
                       "__libc_start_main;main (src/main.c:5);libplug.so+0x3234 7\n"
                       "__libc_start_main;main (src/main.c:5);outer_fn (src/a.c:50);"
                       "inner_helper (src/a.c:10) 14\n"
                       "__libc_start_main;main (src/main.c:5);parse:weird name (src/p.c:7) 7\n"
                       "__libc_start_main;main (src/main.c:5);worker (src/w.c:20) 7\n"
                       "__libc_start_main;main (src/main.c:5);worker (src/w.c:22) 7\n"
                       "malloc 7\n";
    ck_assert_str_eq(out, want);
    free(out);
}
END_TEST

START_TEST(test_collapsed_pair)
{
    static ht_pstack_t base_stacks[8];
    fx_build(2);
    memcpy(base_stacks, fx_stacks, sizeof base_stacks);
    ht_profile_t base = fx;
    base.stacks = base_stacks;
    // The base lacks the worker stacks; the new side lacks the plugin stack.
    base.nstacks = 4;
    fx_build(1);
    fx_stacks[3].v[HT_M_INUSE_SPACE] = 0;
    char *out = fx_write(HT_M_INUSE_SPACE, 0, &base);
    const char *want = "[unknown] 0 3\n"
                       "__libc_start_main;main;libplug.so+0x3234 61 0\n"
                       "__libc_start_main;main;outer_fn;inner_helper 299 150\n"
                       "__libc_start_main;main;parse:weird name 1 0\n"
                       "__libc_start_main;main;worker 0 15\n"
                       "malloc 0 4\n";
    ck_assert_str_eq(out, want);
    free(out);
}
END_TEST

START_TEST(test_collapsed_negative_and_bad_metric)
{
    fx_build(-1);
    char *out = fx_write(HT_M_INUSE_SPACE, 0, NULL);
    ck_assert_ptr_nonnull(strstr(out, "__libc_start_main;main;outer_fn;inner_helper -150\n"));
    free(out);
    FILE *f = fopen("/dev/null", "w");
    ck_assert_int_eq(ht_collapsed_write(f, &fx, (ht_metric_t)HT_M_COUNT, NULL), -EINVAL);
    fclose(f);
    // A write that fails is reported.
    f = fopen("/dev/full", "w");
    if (f) {
        fx_build(1);
        ck_assert_int_eq(ht_collapsed_write(f, &fx, HT_M_INUSE_SPACE, NULL), -EIO);
        fclose(f);
    }
}
END_TEST

START_TEST(test_collapsed_alloc_fn)
{
    const char *yes[] = {"malloc", "free", "calloc", "realloc", "posix_memalign",
                         "operator new(unsigned long)", "operator new[](unsigned long)",
                         "::operator delete(void*, unsigned long)", "operator new",
                         "malloc@@GLIBC_2.2.5", "__libc_malloc", "strdup"};
    const char *no[] = {"mallocate", "my_malloc", "operator newline", "allocate", "free_list",
                        "", "operator==(a, b)"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ck_assert_msg(ht_collapsed_is_alloc_fn(yes[i]), "%s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        ck_assert_msg(!ht_collapsed_is_alloc_fn(no[i]), "%s", no[i]);
}
END_TEST

START_TEST(test_collapsed_frames_order)
{
    fx_build(1);
    ht_cframe_t *fr = NULL;
    size_t cap = 0;
    ht_cscratch_t sc = {0};
    int n = ht_collapsed_frames(&fx, &fx_stacks[1], &fr, &cap, &sc);
    ck_assert_int_eq(n, 4); // malloc trimmed; the inlined location gives two frames
    ck_assert_str_eq(fr[0].line->function, "__libc_start_main");
    ck_assert_ptr_eq(fr[0].map, &fx_maps[1]);
    ck_assert_str_eq(fr[2].line->function, "outer_fn");
    ck_assert_str_eq(fr[3].line->function, "inner_helper");
    ck_assert_ptr_eq(fr[3].loc, &fx_locs[0]);
    // A stack with an out-of-range location index skips that frame.
    uint32_t bad[] = {999, 1};
    ht_pstack_t s = {.nlocs = 2, .locs = bad};
    n = ht_collapsed_frames(&fx, &s, &fr, &cap, &sc);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(fr[0].line->function, "main");
    free(fr);
    ht_collapsed_scratch_free(&sc);
}
END_TEST

Suite *
suite_collapsed(void)
{
    Suite *s = suite_create("collapsed");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_collapsed_exact_lines);
    tcase_add_test(tc, test_collapsed_lines_and_sanitize);
    tcase_add_test(tc, test_collapsed_pair);
    tcase_add_test(tc, test_collapsed_negative_and_bad_metric);
    tcase_add_test(tc, test_collapsed_alloc_fn);
    tcase_add_test(tc, test_collapsed_frames_order);
    suite_add_tcase(s, tc);
    return s;
}
