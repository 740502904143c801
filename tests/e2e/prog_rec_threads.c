/* tests/e2e/prog_rec_threads.c [ROUNDS] -- 4 threads, each 1000 malloc of
 * its own size (2001 + thread index), frees all but 10. Exact counts for
 * t_record_threads.sh. ROUNDS (default 1) repeats the churn before that,
 * freeing everything, with sizes of 2009 bytes and more, to make a long
 * trace (t_record_maxsize.sh). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define N 1000

static int rounds = 1;

static void *
worker(void *arg)
{
    size_t size = 2001 + (size_t)(uintptr_t)arg;
    for (int r = 1; r < rounds; r++) {
        void *q[64];
        for (int i = 0; i < N; i++) {
            // Sizes spread over 2048 values: a trace that compresses
            // about as badly as real programs do, so --max-size wraps.
            q[i % 64] = malloc(size + 8 + (size_t)((r * 131 + i * 7919) % 2048) * 16);
            if (i % 64 == 63)
                for (int k = 0; k < 64; k++)
                    free(q[k]);
        }
        for (int k = 0; k < N % 64; k++)
            free(q[k]);
    }
    static void *keep[4][10];
    void **p = malloc(N * sizeof *p);
    for (int i = 0; i < N; i++)
        p[i] = malloc(size);
    for (int i = 0; i < N; i++) {
        if (i < 10)
            keep[(uintptr_t)arg][i] = p[i];
        else
            free(p[i]);
    }
    free(p);
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc > 1)
        rounds = atoi(argv[1]);
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
            return 1;
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    (void)!write(1, "threads ok\n", 11);
    return 0;
}
