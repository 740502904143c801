/* tests/e2e/prog_rec_exit.c MODE [N] -- allocate 7 x 7001 bytes (never
 * freed), then end by MODE: "exit N", "_exit N", "abort", "kill" (SIGKILL
 * itself), "term" (wait for SIGTERM, then exit 42), "vfork N" (a vfork
 * child that calls _exit(9) at once, then 7 more blocks, then exit N). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink[14];
static volatile sig_atomic_t got_term;

static void
on_term(int s)
{
    (void)s;
    got_term = 1;
}

int
main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    for (int i = 0; i < 7; i++)
        sink[i] = malloc(7001);
    int code = argc > 2 ? atoi(argv[2]) : 0;
    if (!strcmp(argv[1], "exit"))
        exit(code);
    if (!strcmp(argv[1], "_exit"))
        _exit(code);
    if (!strcmp(argv[1], "abort"))
        abort();
    if (!strcmp(argv[1], "kill")) // at once: committed records must survive it
        kill(getpid(), SIGKILL);
    if (!strcmp(argv[1], "vfork")) {
        // The child runs on this process's memory until it is gone: an
        // _exit that ended "the recording" there would end ours.
        pid_t c = vfork();
        if (c == 0)
            _exit(9);
        int st;
        if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 9)
            return 4;
        for (int i = 7; i < 14; i++)
            sink[i] = malloc(7001);
        exit(code);
    }
    if (!strcmp(argv[1], "term")) {
        signal(SIGTERM, on_term);
        (void)!write(1, "ready\n", 6);
        for (int i = 0; i < 1000 && !got_term; i++)
            usleep(10000);
        exit(got_term ? 42 : 1);
    }
    return 3;
}
