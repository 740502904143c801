/* A known leak of mixed sizes from one function, among temporary churn,
 * for the sampling accuracy test. Prints the exact leaked bytes and
 * objects. Usage: prog_sampled SEED */
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

__attribute__((noinline)) static void
leak_mixed(size_t n)
{
    sink = malloc(n);
}

int
main(int argc, char **argv)
{
    unsigned seed = argc > 1 ? (unsigned)atoi(argv[1]) : 1;
    unsigned long bytes = 0, objects = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = 16 + rand_r(&seed) % 4000;
        leak_mixed(n);
        bytes += n;
        objects++;
        for (int k = 0; k < 4; k++)
            free(malloc(16 + rand_r(&seed) % 8000));
    }
    printf("%lu %lu\n", bytes, objects);
    return 0;
}
