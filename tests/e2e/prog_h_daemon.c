/* A classic double-forking daemon: fork, setsid, fork, close every file
 * descriptor (the shim's included), chdir /, then allocate 50 blocks of
 * 2468 bytes (leaked) and write a marker file given as argv[1]. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pid_t c = fork();
    if (c > 0) {
        waitpid(c, NULL, 0);
        return 0;
    }
    setsid();
    if (fork() > 0)
        _exit(0);
    for (int fd = 0; fd < 1024; fd++)
        close(fd);
    if (chdir("/") != 0)
        _exit(3);
    for (int i = 0; i < 50; i++)
        if (!malloc(2468))
            _exit(4);
    usleep(200 * 1000);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, "daemon ok\n", 10) != 10)
            _exit(5);
        close(fd);
    }
    return 0;
}
