/* tests/e2e/prog_rec_server.c -- a "server" that leaks 8001 bytes every
 * 20 ms for about 1.6 s, asks for a snapshot itself (heaptrace_snapshot)
 * at iteration 10, and prints "ready" first so a test can snapshot it
 * from outside. */
#include <heaptrace.h>
#include <stdlib.h>
#include <unistd.h>

static void *volatile sink[100];

int
main(void)
{
    (void)!write(1, "ready\n", 6);
    for (int i = 0; i < 80; i++) {
        sink[i] = malloc(8001);
        if (i == 10 && heaptrace_snapshot() != 0)
            return 1;
        usleep(20000);
    }
    return 0;
}
