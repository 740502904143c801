/* Allocation failure must come back as NULL, never a crash: an absurd
 * request, then (under `ulimit -v`) allocate 1 MiB blocks until malloc
 * fails. Prints "oom ok" with how many blocks it got. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
    errno = 0;
    void *p = malloc(SIZE_MAX / 2);
    if (p || errno != ENOMEM) {
        printf("huge malloc: %p errno %d\n", p, errno);
        return 1;
    }
    volatile size_t huge = SIZE_MAX / 4; // volatile: keep gcc from folding the overflow
    if (calloc(huge, 8) != NULL)
        return 1;
    void *q = malloc(16);
    if (realloc(q, SIZE_MAX / 2) != NULL)
        return 1;
    free(q);
    long got = 0;
    int limit = argc > 1 ? atoi(argv[1]) : 0; /* blocks to try, 0 = none */
    void **blocks = calloc((size_t)limit + 1, sizeof *blocks);
    for (long i = 0; i < limit; i++) {
        blocks[i] = malloc(1 << 20);
        if (!blocks[i])
            break;
        memset(blocks[i], 1, 4096);
        got++;
    }
    for (long i = 0; i < got; i++)
        free(blocks[i]);
    free(blocks);
    printf("oom ok %ld\n", got);
    return 0;
}
