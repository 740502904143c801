/*
 * tests/e2e/prog_family.c -- calls every interposed allocation function a
 * known number of times, each with sizes in its own band, so a test can
 * count what the shim recorded per function (exact in --all mode):
 *
 *   band    function                         allocs  frees
 *   10001+  malloc                            N       N
 *   20001+  calloc(1, s)                      N       N
 *   30001+  realloc(NULL, s)                  N       (moved on)
 *   31001+  realloc(p, s) growing            N       N  (+ N frees of 30001+)
 *   32001+  realloc(NULL, s) then realloc(p,0)   N    N
 *   40001+  reallocarray(NULL, 1, s)          N       N
 *   50001+  posix_memalign(64)                N       N
 *   60001+  aligned_alloc(64)                 N       N
 *   70001+  memalign(256)                     N       N
 *   80001+  valloc                            N       N
 *   90001+  pvalloc                           N       N
 *   5001+   strdup of 5000+i chars            N       N
 *   6001+   asprintf of 6000+i chars          N       N  (final block)
 *   7777+   malloc, never freed (the leaks)   3       0
 *
 * with N = 10 (or argv[1]). Prints "family N" and exits 0.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink; // keeps the compiler from pairing malloc/free away

static void
leak(int i)
{
    sink = malloc(7777 + i);
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    void *p[1000];
    char *s;
    if (n < 1 || n > 1000)
        return 2;

    for (int i = 0; i < n; i++)
        p[i] = malloc(10001 + i);
    for (int i = 0; i < n; i++)
        free(p[i]);

    for (int i = 0; i < n; i++)
        p[i] = calloc(1, 20001 + i);
    for (int i = 0; i < n; i++)
        free(p[i]);

    for (int i = 0; i < n; i++)
        p[i] = realloc(NULL, 30001 + i);
    for (int i = 0; i < n; i++)
        p[i] = realloc(p[i], 31001 + i);
    for (int i = 0; i < n; i++)
        free(p[i]);

    for (int i = 0; i < n; i++)
        p[i] = realloc(NULL, 32001 + i);
    for (int i = 0; i < n; i++)
        sink = realloc(p[i], 0); // frees, returns NULL on glibc

    for (int i = 0; i < n; i++)
        p[i] = reallocarray(NULL, 1, 40001 + i);
    for (int i = 0; i < n; i++)
        free(p[i]);

    for (int i = 0; i < n; i++)
        if (posix_memalign(&p[i], 64, 50001 + i) != 0)
            return 1;
    for (int i = 0; i < n; i++)
        free(p[i]);

    for (int i = 0; i < n; i++)
        p[i] = aligned_alloc(64, 60001 + i);
    for (int i = 0; i < n; i++)
        free(p[i]);

    for (int i = 0; i < n; i++)
        p[i] = memalign(256, 70001 + i);
    for (int i = 0; i < n; i++)
        free(p[i]);

    for (int i = 0; i < n; i++)
        p[i] = valloc(80001 + i);
    for (int i = 0; i < n; i++)
        free(p[i]);

    for (int i = 0; i < n; i++)
        p[i] = pvalloc(90001 + i);
    for (int i = 0; i < n; i++)
        free(p[i]);

    char *text = malloc(7001);
    memset(text, 'x', 7000);
    text[7000] = '\0';
    for (int i = 0; i < n; i++) {
        text[5000 + i] = '\0';
        p[i] = strdup(text);
        text[5000 + i] = 'x';
    }
    for (int i = 0; i < n; i++)
        free(p[i]);

    for (int i = 0; i < n; i++) {
        if (asprintf(&s, "%0*d", 6000 + i, i) < 0)
            return 1;
        p[i] = s;
    }
    for (int i = 0; i < n; i++)
        free(p[i]);
    free(text);

    for (int i = 0; i < 3; i++)
        leak(i);

    printf("family %d\n", n);
    return 0;
}
