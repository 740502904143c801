/* Processes and threads made with the raw clone(2) system call, as some
 * runtimes and sandboxes do, bypassing glibc's fork() and pthread_create():
 * no pthread_atfork handler runs. (1) clone(SIGCHLD) without CLONE_VM: a
 * child process that allocates and exits; (2) clone(CLONE_VM|...) sharing
 * memory, whose child touches no allocator (glibc's malloc state is per
 * thread and would be shared: that is undefined natively). The parent
 * allocates before, between and after. Prints "clone ok". */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int shared_flag;

static int
vm_child(void *arg)
{
    shared_flag = 42; // no malloc here, see above
    return 0;
}

int
main(void)
{
    for (int i = 0; i < 100; i++)
        free(malloc(100 + i));
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) {
        for (int i = 0; i < 1000; i++)
            free(malloc(64 + i % 100));
        syscall(SYS_exit_group, 0);
    }
    int st;
    if (pid < 0 || waitpid((pid_t)pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
        return 1;
    for (int i = 0; i < 100; i++)
        free(malloc(200 + i));
    size_t sz = 64 * 1024;
    char *stack = malloc(sz);
    pid_t t = clone(vm_child, stack + sz, CLONE_VM | SIGCHLD, NULL);
    if (t < 0 || waitpid(t, &st, 0) != t || shared_flag != 42)
        return 1;
    free(stack);
    for (int i = 0; i < 100; i++)
        free(malloc(300 + i));
    printf("clone ok\n");
    return 0;
}
