/* fork() from a multithreaded program while other threads allocate. The
 * child allocates 100 blocks of 4321 bytes (leaking them) and exits 7; the
 * parent checks the status. Must never deadlock (the shim's fork handlers
 * run while other threads may be inside malloc). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;

static void *
busy(void *arg)
{
    while (!stop) {
        void *p = malloc(64 + (size_t)(long)arg);
        free(p);
    }
    return NULL;
}

int
main(void)
{
    pthread_t t[3];
    for (long i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, busy, (void *)i);
    int bad = 0;
    for (int round = 0; round < 20; round++) {
        pid_t c = fork();
        if (c == 0) {
            for (int i = 0; i < 100; i++)
                if (!malloc(4321))
                    _exit(1);
            exit(7);
        }
        int st;
        if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
            bad++;
    }
    stop = 1;
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    printf("forks done, %d bad\n", bad);
    return bad ? 1 : 0;
}
