/* Allocation inside signal handlers (not async-signal-safe, but real
 * programs do it), the program's own SIGSEGV and SIGPROF handlers, and a
 * stretch with every signal blocked. Prints "signals ok N" with the number
 * of handler runs.
 *
 * The SIGPROF handler allocates only while the main loop is not itself
 * inside malloc or free: glibc's allocator is not reentrant, and a handler
 * that mallocs in the middle of the program's own malloc corrupts the heap
 * with or without heaptrace (this program crashed natively 1 run in 4 before
 * the flag). Real programs that allocate in handlers get away with it the
 * same way, by not being inside the allocator at the time. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static volatile sig_atomic_t prof_hits, in_alloc;
static sigjmp_buf segv_jmp;

static void
on_prof(int sig)
{
    if (in_alloc)
        return;
    void *p = malloc(100 + (prof_hits % 50));
    free(p);
    prof_hits++;
}

static void
on_segv(int sig)
{
    void *p = malloc(48);
    free(p);
    siglongjmp(segv_jmp, 1);
}

int
main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prof;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGPROF, &sa, NULL);
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);

    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_PROF, &it, NULL);
    unsigned long sum = 0;
    while (prof_hits < 300) {
        for (int i = 0; i < 1000; i++) {
            in_alloc = 1;
            char *p = malloc(16 + i % 200);
            in_alloc = 0;
            p[0] = (char)i;
            for (int k = 0; k < 50; k++) // time outside the allocator, for the handler
                sum += (unsigned char)p[0] * (unsigned)k;
            in_alloc = 1;
            free(p);
            in_alloc = 0;
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);

    int segvs = 0;
    for (int i = 0; i < 5; i++) {
        if (sigsetjmp(segv_jmp, 1) == 0) {
            volatile int *bad = (int *)16;
            *bad = 1;
        } else {
            segvs++;
        }
    }

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < 10000; i++)
        free(malloc(32));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("signals ok %d %d\n", (int)prof_hits >= 300, segvs);
    return segvs == 5 ? 0 : 1;
}
