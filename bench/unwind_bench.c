/*
 * bench/unwind_bench.c -- ns per backtrace: ht_unwind_backtrace (cached
 * CFI, warm cache) against libunwind's unw_backtrace with per-thread
 * caching (what rec.c used), at a few recursion depths, on 1 and 2
 * threads. Run by hand:
 *
 *   gcc -std=gnu11 -D_GNU_SOURCE -O2 -g -I. -o /tmp/unwind_bench bench/unwind_bench.c \
 *       libheaptrace/unwind.c -lunwind -lpthread
 *   /tmp/unwind_bench [iterations]            # default 200000
 *   /tmp/unwind_bench 20000 ht 25 1            # one case (for callgrind)
 *
 * Every trace is checked against unw_backtrace's once before timing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "libheaptrace/unwind.h"

#define UB_MAX 512

typedef int (*ub_fn_t)(void **, int);

typedef struct ub_job_s {
    ub_fn_t fn;
    int depth;
    long iters;
    double ns; // per trace
    int frames;
} ub_job_t;

static volatile int ub_sink;

static uint64_t
ub_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static __attribute__((noinline)) void
ub_leaf(ub_job_t *j)
{
    void *f[UB_MAX];
    int n = 0;
    uint64_t t0 = ub_now();
    for (long i = 0; i < j->iters; i++)
        n = j->fn(f, UB_MAX);
    j->ns = (double)(ub_now() - t0) / (double)j->iters;
    j->frames = n;
    ub_sink = n;
}

static __attribute__((noinline)) int
ub_rec(ub_job_t *j, int d)
{
    if (d == 0) {
        ub_leaf(j);
        return 0;
    }
    int r = ub_rec(j, d - 1);
    ub_sink = r;
    return r + 1;
}

static void *
ub_thread(void *arg)
{
    ub_job_t *j = arg;
    ub_rec(j, j->depth);
    return NULL;
}

/* Same frames from both, at the same place? (cache warm-up too) */
static __attribute__((noinline)) int
ub_compare_leaf(void)
{
    static void *a[UB_MAX], *b[UB_MAX];
    static volatile int two = 2;
    int n[2] = {0, 0};
    for (int w = 0; w < two; w++) {
        ub_fn_t fn = w ? ht_unwind_backtrace : unw_backtrace;
        n[w] = fn(w ? b : a, UB_MAX);
    }
    return n[0] == n[1] && memcmp(a, b, sizeof(void *) * (size_t)n[0]) == 0 ? n[0] : -1;
}

static __attribute__((noinline)) int
ub_compare(int d)
{
    if (d == 0)
        return ub_compare_leaf();
    int r = ub_compare(d - 1);
    ub_sink = r;
    return r;
}

static double
ub_run(ub_fn_t fn, int depth, long iters, int threads, int *frames)
{
    ub_job_t j[2];
    pthread_t th[2];
    double sum = 0;
    for (int i = 0; i < threads; i++) {
        j[i] = (ub_job_t){.fn = fn, .depth = depth, .iters = iters};
        pthread_create(&th[i], NULL, ub_thread, &j[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        sum += j[i].ns;
    }
    *frames = j[0].frames;
    return sum / threads;
}

int
main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    ht_unwind_mode_set(HT_UNWIND_MODE_CFI);
    if (argc > 4) { // one case: ITERS ht|unw DEPTH THREADS
        ub_fn_t fn = strcmp(argv[2], "ht") == 0 ? ht_unwind_backtrace : unw_backtrace;
        int frames;
        double ns = ub_run(fn, atoi(argv[3]), iters, atoi(argv[4]), &frames);
        printf("%s depth %s threads %s: %d frames, %.1f ns/trace\n", argv[2], argv[3], argv[4],
               frames, ns);
        return 0;
    }
    int depths[] = {5, 25, 200};
    printf("%-6s %-7s %-7s %14s %14s %7s\n", "depth", "frames", "threads", "unw_backtrace",
           "ht_unwind", "ratio");
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        if (ub_compare(depths[i]) < 0) {
            fprintf(stderr, "unwind_bench: traces differ at depth %d\n", depths[i]);
            return 1;
        }
        for (int threads = 1; threads <= 2; threads++) {
            int fa, fb;
            // Warm both (libunwind's per-thread cache is per thread: the
            // timing threads warm their own in the first iterations).
            double a = ub_run(unw_backtrace, depths[i], iters / 10 + 1, threads, &fa);
            a = ub_run(unw_backtrace, depths[i], iters, threads, &fa);
            double b = ub_run(ht_unwind_backtrace, depths[i], iters, threads, &fb);
            printf("%-6d %-7d %-7d %11.1f ns %11.1f ns %6.1fx\n", depths[i], fb, threads, a, b,
                   a / b);
        }
    }
    printf("cache slots used: %llu\n", (unsigned long long)ht_unwind_cache_used());
    return 0;
}
