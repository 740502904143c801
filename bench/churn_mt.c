/*
 * bench/churn_mt.c -- workload (b): T threads (default 2), each making N
 * allocations (default 2,000,000) of random sizes 8..4096 from the bottom
 * of a 20-deep recursive call chain, keeping a window of W live objects
 * (default 4096): each new object replaces a random slot of the window.
 * Usage: churn_mt [N [THREADS [WINDOW]]]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHURN_DEPTH 20

typedef struct churn_s {
    long n;
    long window;
    uint64_t seed;
    void **slots;
    unsigned long checksum;
} churn_t;

static long churn_window_arg = 4096;

static inline uint64_t
churn_rand(uint64_t *s)
{
    // xorshift64*: cheap and deterministic, so every run does the same work
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void churn_step(churn_t *c, int depth);

// Not inlined and not a tail call, so every level is a real frame on the
// stack the profiler unwinds.
__attribute__((noinline)) static void
churn_recurse(churn_t *c, int depth)
{
    churn_step(c, depth + 1);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void
churn_step(churn_t *c, int depth)
{
    if (depth < CHURN_DEPTH) {
        churn_recurse(c, depth);
        return;
    }
    // At the bottom: a batch of allocations, so the recursion itself does
    // not dominate the native time.
    for (int k = 0; k < 64 && c->n > 0; k++, c->n--) {
        uint64_t r = churn_rand(&c->seed);
        size_t size = 8 + (size_t)(r % 4089);
        long slot = (long)((r >> 32) % (uint64_t)c->window);
        free(c->slots[slot]);
        unsigned char *p = malloc(size);
        if (!p)
            abort();
        p[0] = (unsigned char)r;
        p[size - 1] = (unsigned char)(r >> 8);
        c->checksum += p[0];
        c->slots[slot] = p;
    }
}

static void *
churn_thread(void *arg)
{
    churn_t *c = arg;
    c->slots = calloc((size_t)c->window, sizeof(void *));
    while (c->n > 0)
        churn_step(c, 0);
    for (long i = 0; i < c->window; i++)
        free(c->slots[i]);
    free(c->slots);
    return NULL;
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    int nthreads = argc > 2 ? atoi(argv[2]) : 2;
    if (argc > 3)
        churn_window_arg = atol(argv[3]);
    if (nthreads < 1 || nthreads > 64 || n < 0 || churn_window_arg < 1)
        return 2;
    pthread_t tid[64];
    churn_t c[64];
    for (int t = 0; t < nthreads; t++) {
        c[t] = (churn_t){.n = n, .window = churn_window_arg,
                         .seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1)};
        if (pthread_create(&tid[t], NULL, churn_thread, &c[t]) != 0)
            return 1;
    }
    unsigned long sum = 0;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(tid[t], NULL);
        sum += c[t].checksum;
    }
    printf("churn_mt: %d threads x %ld allocations, checksum %lu\n", nthreads, n, sum);
    return 0;
}
