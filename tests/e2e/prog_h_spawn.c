/* vfork + exec, posix_spawn, and exec of ourselves into a second image
 * ("prog_h_spawn exec" allocates 10 x 3333 bytes in the new image). */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int
main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "exec")) {
        for (int i = 0; i < 10; i++)
            if (!malloc(3333))
                return 1;
        printf("second image ok\n");
        return 0;
    }
    pid_t c = vfork();
    if (c == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;
    char *args[] = {"echo", "spawned", NULL};
    pid_t s;
    if (posix_spawn(&s, "/bin/echo", NULL, NULL, args, environ) != 0)
        return 1;
    waitpid(s, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;
    fflush(stdout);
    execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
    return 1;
}
