/* tests/e2e/prog_rec_fork.c -- 5 blocks of 3001 before fork (leaked); the
 * child frees 2 of them, allocates 100 x 3002 and frees 90; the parent,
 * after the child is gone, allocates 50 x 3003. Prints the child's pid. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink[200];

int
main(void)
{
    for (int i = 0; i < 5; i++)
        sink[i] = malloc(3001);
    pid_t c = fork();
    if (c < 0)
        return 1;
    if (c == 0) {
        free(sink[0]);
        free(sink[1]);
        for (int i = 0; i < 100; i++)
            sink[10 + i] = malloc(3002);
        for (int i = 0; i < 90; i++)
            free(sink[10 + i]);
        _exit(0);
    }
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 2;
    for (int i = 0; i < 50; i++)
        sink[120 + i] = malloc(3003);
    char line[64];
    int n = snprintf(line, sizeof line, "child %d\n", (int)c);
    (void)!write(1, line, (size_t)n);
    return 0;
}
