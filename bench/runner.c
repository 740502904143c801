/*
 * bench/runner.c -- run a command and measure it: wall time, CPU time and
 * peak RSS of the whole process tree (wait4's rusage: CPU summed over the
 * child and every descendant it waited for, ru_maxrss the largest of
 * them), so a collector process or heaptrack's interpreter is counted.
 *
 * Usage: runner [-i STDIN] [-o STDOUT] [-e STDERR] [-t SECONDS] -- CMD ARGS
 * Prints one line on stdout:
 *   wall=<s> user=<s> sys=<s> maxrss_kb=<n> status=<exit code|sig:N|timeout>
 * and exits 0 (1 when CMD could not be started).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t runner_timed_out;

static void
runner_alarm_cb(int sig)
{
    runner_timed_out = 1;
}

static int
runner_redirect(const char *path, int fd, int flags)
{
    if (!path)
        return 0;
    int f = open(path, flags, 0644);
    if (f < 0 || dup2(f, fd) < 0)
        return -1;
    close(f);
    return 0;
}

static double
runner_tv(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int
main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *err = NULL;
    unsigned timeout = 0;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (i + 1 >= argc)
            break;
        if (!strcmp(argv[i], "-i"))
            in = argv[++i];
        else if (!strcmp(argv[i], "-o"))
            out = argv[++i];
        else if (!strcmp(argv[i], "-e"))
            err = argv[++i];
        else if (!strcmp(argv[i], "-t"))
            timeout = (unsigned)atoi(argv[++i]);
        else
            break;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: runner [-i IN] [-o OUT] [-e ERR] [-t SECS] -- CMD ARGS\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("runner: fork");
        return 1;
    }
    if (pid == 0) {
        setpgid(0, 0);  // so a timeout can kill the whole tree
        if (runner_redirect(in, 0, O_RDONLY) || runner_redirect(out, 1, O_WRONLY | O_CREAT | O_TRUNC) ||
            runner_redirect(err, 2, O_WRONLY | O_CREAT | O_TRUNC)) {
            perror("runner: redirect");
            _exit(127);
        }
        execvp(argv[i], argv + i);
        fprintf(stderr, "runner: %s: %s\n", argv[i], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    struct sigaction sa = {.sa_handler = runner_alarm_cb};
    sigaction(SIGALRM, &sa, NULL);
    if (timeout)
        alarm(timeout);
    int st;
    struct rusage ru;
    for (;;) {
        pid_t r = wait4(pid, &st, 0, &ru);
        if (r == pid)
            break;
        if (r < 0 && errno == EINTR && runner_timed_out) {
            kill(-pid, SIGKILL);
            continue;
        }
        if (r < 0 && errno != EINTR) {
            perror("runner: wait4");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kill(-pid, SIGKILL);  // leftovers of the tree, if any (none normally)
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    char status[32];
    if (runner_timed_out)
        snprintf(status, sizeof status, "timeout");
    else if (WIFEXITED(st))
        snprintf(status, sizeof status, "%d", WEXITSTATUS(st));
    else
        snprintf(status, sizeof status, "sig:%d", WTERMSIG(st));
    printf("wall=%.4f user=%.4f sys=%.4f maxrss_kb=%ld status=%s\n", wall, runner_tv(ru.ru_utime),
           runner_tv(ru.ru_stime), ru.ru_maxrss, status);
    return 0;
}
