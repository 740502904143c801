/* A slow leak among many temporary allocations: each "request" makes a
 * few short-lived blocks and leaks exactly one 100-byte session from
 * leak_session(); heaptrace_snapshot() every EVERY requests.
 * Usage: prog_slowleak REQUESTS EVERY */
#include <heaptrace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void **sessions;

__attribute__((noinline)) static void
leak_session(long i)
{
    sessions[i] = malloc(100);
    memset(sessions[i], 0, 100);
}

__attribute__((noinline)) static void
serve(long i)
{
    char *buf = malloc(512 + i % 1024);
    snprintf(buf, 64, "request %ld", i);
    char *copy = strdup(buf);
    free(buf);
    free(copy);
    leak_session(i);
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000, every = argc > 2 ? atol(argv[2]) : 1000;
    sessions = calloc((size_t)n, sizeof *sessions);
    for (long i = 0; i < n; i++) {
        serve(i);
        if ((i + 1) % every == 0)
            heaptrace_snapshot();
    }
    printf("served %ld\n", n);
    return 0;
}
