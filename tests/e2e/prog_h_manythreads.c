/* N threads (default 5000) that each allocate a block of 4321 bytes,
 * wait at a barrier with all the others, free it, allocate one of 5321
 * bytes and return it (never freed). More threads than the ring has
 * buffers, each holding its buffer while it waits: the recorder must not
 * stall them. Usage: prog_h_manythreads [N] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_barrier_t bar;

static void *
run(void *arg)
{
    (void)arg;
    void *p = malloc(4321);
    pthread_barrier_wait(&bar);
    free(p);
    return malloc(5321);
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&t[i], &at, run, NULL) != 0) {
            printf("cannot create thread %d\n", i);
            return 1;
        }
    }
    pthread_barrier_wait(&bar);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("threads %d\n", n);
    return 0;
}
