#define _GNU_SOURCE /* asprintf */
/* Known leaks of known sizes from named functions, for the accuracy test
 * (t_accuracy.sh): every figure of an --all trace must be exact.
 * Usage: prog_acc PLUGIN.so [exit|_exit|abort] */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static void *volatile sink; /* keeps every leak reachable only through here */

NOINLINE static void
leak_malloc(void)
{
    for (int i = 0; i < 3; i++)
        sink = malloc(1000); /* 3 x 1000 */
}

NOINLINE static void
leak_calloc(void)
{
    for (int i = 0; i < 2; i++)
        sink = calloc(10, 100); /* 2 x 1000 */
}

NOINLINE static void
leak_realloc_chain(void)
{
    char *p = malloc(10);
    p = realloc(p, 100);
    p = realloc(p, 3000); /* the block that stays: 3000 at this line */
    sink = p;
    char *q = malloc(50);
    q = realloc(q, 0); /* frees q: nothing left */
    sink = q;
}

NOINLINE static void
leak_aligned(void)
{
    void *p;
    if (posix_memalign(&p, 64, 640) == 0) /* 640 */
        sink = p;
    sink = aligned_alloc(64, 1280); /* 1280 */
    sink = memalign(128, 384);      /* 384 */
    sink = valloc(5000);            /* 5000 */
}

NOINLINE static void
leak_strdup(void)
{
    sink = strdup("seventeen bytes!"); /* 17 */
}

NOINLINE static void
leak_asprintf(void)
{
    char *s;
    if (asprintf(&s, "%d", 123456) > 0) /* one block */
        sink = s;
}

NOINLINE static void *
thread_leak(void *arg)
{
    for (int i = 0; i < 5; i++)
        sink = malloc(777); /* 4 threads x 5 x 777 */
    return arg;
}

NOINLINE static void
deep_leak(int depth)
{
    if (depth == 0) {
        sink = malloc(2000); /* at the bottom of a 200-deep recursion */
        return;
    }
    deep_leak(depth - 1);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}

NOINLINE static void
peak_phase(void)
{
    void *blocks[10];
    for (int i = 0; i < 10; i++)
        blocks[i] = malloc(100000); /* 1,000,000 live at the peak ... */
    for (int i = 0; i < 10; i++)
        free(blocks[i]); /* ... and none at the end */
}

NOINLINE static void
child_leak(void)
{
    for (int i = 0; i < 2; i++)
        sink = malloc(4321); /* in the forked child only */
}

NOINLINE static void
use_plugin(const char *path)
{
    void *h = dlopen(path, RTLD_NOW);
    if (!h)
        exit(3);
    void *(*make)(size_t) = (void *(*)(size_t))dlsym(h, "plugin_make");
    sink = make(5555); /* leaked from plugin_make, after dlclose */
    dlclose(h);
}

int
main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *how = argc > 2 ? argv[2] : "exit";
    setvbuf(stdout, NULL, _IONBF, 0); /* no stdio buffer among the leaks */
    peak_phase();
    leak_malloc();
    leak_calloc();
    leak_realloc_chain();
    leak_aligned();
    leak_strdup();
    leak_asprintf();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thread_leak, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    deep_leak(200);
    use_plugin(argv[1]);
    pid_t c = fork();
    if (c == 0) {
        child_leak();
        _exit(0);
    }
    waitpid(c, NULL, 0);
    if (!strcmp(how, "_exit"))
        _exit(5);
    if (!strcmp(how, "abort"))
        abort();
    return 0;
}
