/*
 * bench/alloc_loop.c -- workload (a): the classic loop, N x malloc(1024)
 * then free. Usage: alloc_loop [N]   (default 1000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    unsigned long sum = 0;
    for (long i = 0; i < n; i++) {
        char *volatile p = malloc(1024);
        if (!p)
            return 1;
        p[i & 1023] = (char)i;  // touch it, so the call cannot be elided
        sum += (unsigned char)p[i & 1023];
        free(p);
    }
    printf("alloc_loop: %ld allocations, checksum %lu\n", n, sum);
    return 0;
}
