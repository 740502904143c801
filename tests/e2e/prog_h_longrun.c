/* Allocates steadily for SECONDS (argv[1]) and leaks 1 block of 999 bytes
 * every 1000 iterations; prints "longrun done" at the end. For tests that
 * disturb the recorder while the program runs (collector killed, disk
 * full, --max-size). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void *
leak_slowly(void)
{
    return malloc(999);
}

int
main(int argc, char **argv)
{
    double end = now() + (argc > 1 ? atof(argv[1]) : 2);
    long it = 0, leaked = 0;
    while (now() < end) {
        for (int i = 0; i < 1000; i++) {
            void *p = malloc(32 + (it + i) % 500);
            free(p);
        }
        if (leak_slowly())
            leaked++;
        it++;
    }
    printf("longrun done %ld\n", leaked);
    return 0;
}
