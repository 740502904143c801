/*
 * tests/e2e/prog_family.c -- calls every member of the malloc family a
 * known number of times and leaks a known set, so that an exact (--all)
 * trace can be checked call by call. Prints one line, "family ok", and
 * writes it with write(2): stdio would malloc a buffer of its own.
 *
 * Built with -fno-builtin (Makefile), so gcc neither folds malloc/free
 * pairs away nor turns calls into others.
 *
 * What an exact trace must contain, from this program's own calls (the
 * dynamic loader and libc's start-up may add a few allocations of their
 * own before main; those are not ours to count):
 *
 *   function            calls  allocs  frees  leaked (size)
 *   malloc              8      8       7      1  (1001)
 *   calloc              8      8       7      1  (3 * 337 = 1011)
 *   realloc(NULL, n)    2      2       -      -
 *   realloc(p, bigger)  1      1       1      1  (1031)   the grown block
 *   realloc(p, smaller) 1      1       1      -
 *   realloc(p, 0)       1      -       1      -           frees p
 *   reallocarray        2      2       1      1  (7 * 149 = 1043)
 *   posix_memalign      8      8       7      1  (1051, aligned 64)
 *   aligned_alloc       8      8       7      1  (1088, aligned 128)
 *   memalign            8      8       7      1  (1061, aligned 256)
 *   valloc              8      8       7      1  (1069)
 *   pvalloc             8      8       7      1  (1087 asked; a page given)
 *   strdup              8      8       7      1  (1093 = strlen + 1)
 *   asprintf            8      libc's own (>= 8), 7 freed here, 1 leaked
 *   free(NULL)          1      -       -      -           not an event
 *   malloc in deep()    1      1       1      -  (2001) at the bottom of a
 *                                                 200-deep recursion: its
 *                                                 stack must reach main
 *
 * Without asprintf: 71 allocations and 61 frees; 11 blocks leaked in all
 * (the asprintf one included).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K 8

/* Keep leaked pointers reachable from a global only until the end: a
 * leak checker must still call them leaks (they are never freed), and the
 * compiler must not drop the allocations. */
static void *volatile sink[16];
static int bad;

/* Recurse `depth` times, then allocate: a backtrace must walk every one of
 * these frames back to main. noinline and the use of the result after the
 * call keep gcc from turning it into a loop. */
__attribute__((noinline)) static int
deep(int depth)
{
    if (depth == 0) {
        char *p = malloc(2001);
        if (!p)
            return 1;
        p[0] = 0;
        free(p);
        return 0;
    }
    return deep(depth - 1) + (depth & 0);
}

static void
check_align(void *p, uintptr_t a)
{
    if (!p || ((uintptr_t)p & (a - 1)))
        bad++;
}

int
main(void)
{
    void *p[K];
    char big[1093];

    // malloc: 8, one leaked (the first).
    for (int i = 0; i < K; i++) {
        p[i] = malloc(1001 + (size_t)i);
        if (!p[i])
            bad++;
    }
    sink[0] = p[0];
    for (int i = 1; i < K; i++)
        free(p[i]);

    // calloc: 8, one leaked; memory must be zeroed.
    for (int i = 0; i < K; i++) {
        p[i] = calloc(3, 337 + (size_t)i);
        if (!p[i] || ((unsigned char *)p[i])[1000] != 0)
            bad++;
    }
    sink[1] = p[0];
    for (int i = 1; i < K; i++)
        free(p[i]);

    // realloc: NULL -> alloc, grow (leaked); a second block shrinks and
    // is then freed by realloc(p, 0).
    char *r = realloc(NULL, 1021);
    if (!r)
        bad++;
    else
        memset(r, 'r', 1021);
    r = realloc(r, 1031);
    if (!r || r[1020] != 'r')
        bad++;
    sink[2] = r;
    char *t = realloc(NULL, 4000);
    t = realloc(t, 100);
    if (!t)
        bad++;
    t = realloc(t, 0); // frees; glibc returns NULL
    if (t)
        free(t);

    // reallocarray: NULL -> alloc 7*100, then grow to 7*149 (leaked).
    void *ra = reallocarray(NULL, 7, 100);
    ra = reallocarray(ra, 7, 149);
    if (!ra)
        bad++;
    sink[3] = ra;

    // posix_memalign: 8, aligned 64, one leaked.
    for (int i = 0; i < K; i++) {
        if (posix_memalign(&p[i], 64, 1051) != 0)
            p[i] = NULL;
        check_align(p[i], 64);
    }
    sink[4] = p[0];
    for (int i = 1; i < K; i++)
        free(p[i]);

    // aligned_alloc: 8, aligned 128 (size a multiple of it, as C11 asks).
    for (int i = 0; i < K; i++) {
        p[i] = aligned_alloc(128, 1088);
        check_align(p[i], 128);
    }
    sink[5] = p[0];
    for (int i = 1; i < K; i++)
        free(p[i]);

    // memalign: 8, aligned 256.
    for (int i = 0; i < K; i++) {
        p[i] = memalign(256, 1061);
        check_align(p[i], 256);
    }
    sink[6] = p[0];
    for (int i = 1; i < K; i++)
        free(p[i]);

    long page = sysconf(_SC_PAGESIZE);
    // valloc: 8, page aligned.
    for (int i = 0; i < K; i++) {
        p[i] = valloc(1069);
        check_align(p[i], (uintptr_t)page);
    }
    sink[7] = p[0];
    for (int i = 1; i < K; i++)
        free(p[i]);

    // pvalloc: 8, page aligned, rounded up to a page.
    for (int i = 0; i < K; i++) {
        p[i] = pvalloc(1087);
        check_align(p[i], (uintptr_t)page);
    }
    sink[8] = p[0];
    for (int i = 1; i < K; i++)
        free(p[i]);

    // strdup: 8 copies of a 1092-character string.
    memset(big, 's', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (int i = 0; i < K; i++) {
        p[i] = strdup(big);
        if (!p[i] || strlen(p[i]) != 1092)
            bad++;
    }
    sink[9] = p[0];
    for (int i = 1; i < K; i++)
        free(p[i]);

    // asprintf: 8; libc decides how it allocates, we free 7.
    for (int i = 0; i < K; i++) {
        char *a = NULL;
        if (asprintf(&a, "asprintf %d %s", i, "heaptrace family test") < 0)
            bad++;
        p[i] = a;
    }
    sink[10] = p[0];
    for (int i = 1; i < K; i++)
        free(p[i]);

    // free(NULL) is a no-op and must not be recorded.
    free(NULL);

    bad += deep(200);

    static const char ok[] = "family ok\n";
    static const char ko[] = "family FAILED\n";
    if (bad) {
        (void)!write(STDOUT_FILENO, ko, sizeof ko - 1);
        return 1;
    }
    (void)!write(STDOUT_FILENO, ok, sizeof ok - 1);
    return 0;
}
