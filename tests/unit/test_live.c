/* tests/unit/test_live.c -- the address filter and the table of recorded
 * live pointers: insert/remove/lookup, tombstone reuse, full tables, a
 * dense heap, more live blocks than the table has slots, and many threads
 * at once. */
#include "libheaptrace/live.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>

START_TEST(test_live_basic)
{
    // Before init: everything "never recorded", inserts refused.
    ck_assert(!ht_live_maybe((void *)0x1000));
    ck_assert_int_ne(ht_live_insert((void *)0x1000, 8), 0);
    ck_assert_int_eq(ht_live_init(12), 0);
    void *a = (void *)0x7f0000001010, *b = (void *)0x7f0000001020, *c = (void *)0x7f0000009000;
    ck_assert(!ht_live_maybe(a));
    ck_assert_int_eq(ht_live_insert(a, 100), 0);
    ck_assert(ht_live_maybe(a));
    ck_assert(ht_live_maybe(b)); // same page: the filter may say maybe
    ck_assert(!ht_live_maybe(c)); // other page: certainly not
    uint64_t sz = 0;
    ck_assert(!ht_live_remove(b, &sz)); // a hit in the filter, a miss in the table
    ck_assert(ht_live_remove(a, &sz));
    ck_assert_uint_eq(sz, 100);
    ck_assert(!ht_live_remove(a, &sz)); // double free: no
    ck_assert(!ht_live_maybe(a));       // counter back to zero
    // Reinsert after removal (the tombstone is reused).
    ck_assert_int_eq(ht_live_insert(a, 5), 0);
    ck_assert(ht_live_remove(a, &sz));
    ck_assert_uint_eq(sz, 5);
    ht_live_stats_t st;
    ht_live_stats(&st);
    ck_assert_uint_eq(st.inserts, 2);
    ck_assert_uint_eq(st.removes, 2);
    ck_assert_uint_eq(st.live, 0);
    ht_live_fini();
}
END_TEST

START_TEST(test_live_full)
{
    // 16 slots, then overflow tables of 16, 32, 64 and 128: the first 32
    // inserts always fit; once every table is full within the probe bound
    // an insert is refused (and counted), and removal makes room again.
    ck_assert_int_eq(ht_live_init(4), 0);
    uintptr_t base = 0x500000000000;
    int n = 0;
    while (n < 1000 && ht_live_insert((void *)(base + (uintptr_t)n * 16), (uint64_t)n) == 0)
        n++;
    ck_assert_int_ge(n, 32);
    ck_assert_int_le(n, 16 + 16 + 32 + 64 + 128);
    ht_live_stats_t st;
    ht_live_stats(&st);
    ck_assert_uint_eq(st.insert_failures, 1);
    ck_assert_uint_eq(st.overflowed, (uint64_t)n - 16);
    for (int i = 0; i < n; i++) {
        uint64_t sz = 99;
        ck_assert(ht_live_remove((void *)(base + (uintptr_t)i * 16), &sz));
        ck_assert_uint_eq(sz, (uint64_t)i);
    }
    // Only tombstones left: lookups of absent keys still terminate.
    ck_assert(!ht_live_remove((void *)(base + (uintptr_t)(n + 1) * 16), NULL));
    ck_assert_int_eq(ht_live_insert((void *)(base + (uintptr_t)n * 16), 1), 0);
    ht_live_fini();
}
END_TEST

/* Under a finite RLIMIT_AS (however large) no overflow table is mapped:
 * the 17th insert into 16 slots is refused, as before they existed. */
START_TEST(test_live_rlimit)
{
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)1 << 46;
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < lim.rlim_cur)
        lim.rlim_cur = old.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    ck_assert_int_eq(ht_live_init(4), 0);
    uintptr_t base = 0x500000000000;
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(ht_live_insert((void *)(base + (uintptr_t)i * 16), (uint64_t)i), 0);
    int refused = ht_live_insert((void *)(base + 16 * 16), 1) != 0;
    ht_live_stats_t st;
    ht_live_stats(&st);
    setrlimit(RLIMIT_AS, &old);
    ht_live_fini();
    ck_assert(refused);
    ck_assert_uint_eq(st.insert_failures, 1);
    ck_assert_uint_eq(st.overflowed, 0);
}
END_TEST

/* A heap like glibc's main arena after a program built many small objects
 * (python3's dicts, tuples and strings): chunks back to back, 70% of them
 * 32..64 bytes, the rest 64..2560, live blocks half as many as the table
 * has slots. The locality-keeping home slots put dense stretches of heap on
 * top of each other: the 4 MiB-region hash this replaced refused 60 of
 * these inserts (and python3 --all lost 5,273 events). Every one must be
 * kept, and found again with its size. */
static uintptr_t
dense_next(uintptr_t p, uint32_t *x, uint64_t *size)
{
    *x = *x * 1103515245u + 12345u;
    unsigned r = (*x >> 16) & 1023;
    unsigned chunk = r < 700 ? 32 + 16 * (r % 3) : 64 + 64 * (r % 40);
    *size = chunk - 8;
    return p + chunk;
}

START_TEST(test_live_dense_heap)
{
    const unsigned lg = 19;
    const long n = 1L << (lg - 1);
    ck_assert_int_eq(ht_live_init(lg), 0);
    uintptr_t base = 0x560f94af12a0, p = base;
    uint32_t x = 12345;
    uint64_t size;
    long refused = 0;
    for (long i = 0; i < n; i++) {
        uintptr_t next = dense_next(p, &x, &size);
        if (ht_live_insert((void *)p, size) != 0)
            refused++;
        p = next;
    }
    ck_assert_int_eq(refused, 0);
    p = base;
    x = 12345;
    long wrong = 0;
    for (long i = 0; i < n; i++) {
        uint64_t want, got = 0;
        uintptr_t next = dense_next(p, &x, &want);
        if (!ht_live_remove((void *)p, &got) || got != want)
            wrong++;
        p = next;
    }
    ck_assert_int_eq(wrong, 0);
    ht_live_stats_t st;
    ht_live_stats(&st);
    ck_assert_uint_eq(st.live, 0);
    ck_assert_uint_eq(st.insert_failures, 0);
    ht_live_fini();
}
END_TEST

/* Three times as many live blocks as the table has slots (a program with
 * more live blocks than --all's table was sized for): the overflow tables
 * take them all, and every free finds its block. */
START_TEST(test_live_beyond_table)
{
    const unsigned lg = 12;
    const long n = 3L << lg;
    ck_assert_int_eq(ht_live_init(lg), 0);
    uintptr_t base = 0x7f3a12000010;
    for (long i = 0; i < n; i++)
        ck_assert_int_eq(ht_live_insert((void *)(base + (uintptr_t)i * 48), (uint64_t)i), 0);
    ht_live_stats_t st;
    ht_live_stats(&st);
    ck_assert_uint_ge(st.overflowed, (uint64_t)n - (1u << lg));
    for (long i = 0; i < n; i++)
        ck_assert(ht_live_maybe((void *)(base + (uintptr_t)i * 48)));
    for (long i = n - 1; i >= 0; i--) {
        uint64_t sz = 0;
        ck_assert(ht_live_remove((void *)(base + (uintptr_t)i * 48), &sz));
        ck_assert_uint_eq(sz, (uint64_t)i);
        ck_assert(!ht_live_remove((void *)(base + (uintptr_t)i * 48), &sz));
    }
    ht_live_stats(&st);
    ck_assert_uint_eq(st.live, 0);
    // The filter counted every insert and remove, whichever table held it.
    for (long i = 0; i < n; i += 7)
        ck_assert(!ht_live_maybe((void *)(base + (uintptr_t)i * 48)));
    ht_live_fini();
}
END_TEST

#define LT_THREADS 4
#define LT_PER 50000

typedef struct lt_arg_s {
    int id;
    long errors;
} lt_arg_t;

static void *
lt_worker(void *a)
{
    lt_arg_t *la = a;
    // Each thread owns its own addresses (as in a program), interleaved on
    // the same pages as the others' so filter counters are shared.
    uintptr_t base = 0x600000000000 + (uintptr_t)la->id * 16;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < LT_PER; i++) {
            void *p = (void *)(base + (uintptr_t)i * 16 * LT_THREADS);
            if (ht_live_insert(p, (uint64_t)i) != 0)
                la->errors++;
        }
        for (int i = 0; i < LT_PER; i++) {
            void *p = (void *)(base + (uintptr_t)i * 16 * LT_THREADS);
            uint64_t sz;
            if (!ht_live_maybe(p) || !ht_live_remove(p, &sz) || sz != (uint64_t)i)
                la->errors++;
            if (ht_live_remove(p, &sz))
                la->errors++;
        }
    }
    return NULL;
}

START_TEST(test_live_threads)
{
    ck_assert_int_eq(ht_live_init(20), 0);
    pthread_t t[LT_THREADS];
    lt_arg_t a[LT_THREADS];
    for (int i = 0; i < LT_THREADS; i++) {
        a[i] = (lt_arg_t){i, 0};
        pthread_create(&t[i], NULL, lt_worker, &a[i]);
    }
    for (int i = 0; i < LT_THREADS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].errors, 0);
    }
    ht_live_stats_t st;
    ht_live_stats(&st);
    ck_assert_uint_eq(st.inserts, (uint64_t)LT_THREADS * LT_PER * 4);
    ck_assert_uint_eq(st.live, 0);
    // Every filter counter is back to zero.
    for (int i = 0; i < LT_THREADS * LT_PER; i += 97)
        ck_assert(!ht_live_maybe((void *)(0x600000000000 + (uintptr_t)i * 16)));
    ht_live_fini();
}
END_TEST

Suite *
suite_live(void)
{
    Suite *s = suite_create("live");
    TCase *tc = tcase_create("live");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_live_basic);
    tcase_add_test(tc, test_live_full);
    tcase_add_test(tc, test_live_rlimit);
    tcase_add_test(tc, test_live_dense_heap);
    tcase_add_test(tc, test_live_beyond_table);
    tcase_add_test(tc, test_live_threads);
    suite_add_tcase(s, tc);
    return s;
}
