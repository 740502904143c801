/*
 * tests/e2e/prog_shim_smallstack.c -- malloc where stack is short: in a
 * thread created with PTHREAD_STACK_MIN, and in a SIGSEGV handler running
 * on an alternate stack of the size the system recommends (SIGSTKSZ). The
 * shim must neither crash the thread nor write below the alternate stack
 * (which lies in the heap here, with a painted guard zone under it).
 *
 * Makes 1000 allocations of 3001 + i % 10 bytes in the thread and 20 of
 * 4004 bytes in the handler, all freed. Prints "smallstack ok" and exits 0,
 * or says what went wrong and exits 1.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GUARD (64 * 1024)

static sigjmp_buf jb;
static volatile int handler_bad;

static void *
work(void *arg)
{
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(3001 + (size_t)(i % 10));
        if (!p)
            return (void *)1;
        p[0] = 1;
        free(p);
    }
    return NULL;
}

static void
on_segv(int sig)
{
    char *p = malloc(4004);
    if (!p)
        handler_bad = 1;
    else
        p[0] = 1;
    free(p);
    siglongjmp(jb, 1);
}

int
main(void)
{
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, PTHREAD_STACK_MIN);
    pthread_t t;
    void *rv = NULL;
    if (pthread_create(&t, &at, work, NULL) != 0 || pthread_join(t, &rv) != 0 || rv) {
        printf("thread failed\n");
        return 1;
    }

    long sz = sysconf(_SC_SIGSTKSZ);
    if (sz < 16384)
        sz = 16384;
    unsigned char *region = malloc(GUARD + (size_t)sz);
    memset(region, 0xa5, GUARD);
    stack_t alt = {.ss_sp = region + GUARD, .ss_size = (size_t)sz, .ss_flags = 0};
    if (sigaltstack(&alt, NULL) != 0) {
        perror("sigaltstack");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_ONSTACK | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    int hits = 0;
    for (int i = 0; i < 20; i++) {
        if (sigsetjmp(jb, 1) == 0)
            *(volatile int *)16 = 1;
        else
            hits++;
    }
    int dirty = 0;
    for (int i = 0; i < GUARD; i++)
        dirty += region[i] != 0xa5;
    if (dirty || hits != 20 || handler_bad) {
        printf("bytes changed below the alternate stack: %d, handler runs %d\n", dirty, hits);
        return 1;
    }
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    free(region);
    printf("smallstack ok\n");
    return 0;
}
