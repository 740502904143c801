/* 16 threads allocate and free for a while; worker threads are created and
 * exit all along (at most 16 x 20 workers). Every allocation the program makes itself has a size in
 * 777 + 1000*k (k < 4), so a test can count them in a trace exactly; the
 * program prints how many it made and freed. Usage: prog_h_threads SECONDS */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Atomic long n_alloc, n_free;
static double deadline;

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
churn(void *arg)
{
    unsigned seed = (unsigned)(long)arg;
    void *keep[64] = {0};
    long a = 0, f = 0;
    for (int i = 0; i < 2000; i++) {
        int slot = rand_r(&seed) % 64;
        if (keep[slot]) {
            free(keep[slot]);
            f++;
        }
        keep[slot] = malloc(777 + 1000 * (rand_r(&seed) % 4));
        a++;
    }
    for (int i = 0; i < 64; i++)
        if (keep[i]) {
            free(keep[i]);
            f++;
        }
    n_alloc += a;
    n_free += f;
    return NULL;
}

static void *
spawner(void *arg)
{
    long id = (long)arg;
    // Bounded both ways: threads come and go for the whole duration, but
    // never more than 20 per spawner, so a trace stays small enough to
    // count event by event.
    for (int n = 0; n < 20 && now() < deadline; n++) {
        pthread_t t;
        if (pthread_create(&t, NULL, churn, (void *)(id * 7919 + (long)(now() * 1000))) == 0)
            pthread_join(t, NULL);
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2;
    deadline = now() + secs;
    pthread_t t[16];
    for (long i = 0; i < 16; i++)
        pthread_create(&t[i], NULL, spawner, (void *)i);
    for (int i = 0; i < 16; i++)
        pthread_join(t[i], NULL);
    printf("allocs %ld frees %ld\n", (long)n_alloc, (long)n_free);
    return 0;
}
