/*
 * libheaptrace/shim_exit.c -- _exit and _Exit, interposed so that a
 * process that ends through them still writes its final counts and its
 * exit status. exit()'s handlers, where the recorder ends otherwise
 * (session.c), do not run there, and such ends are common: shells end
 * with _exit (dash's `sh -c`), so do forked children of servers and
 * Python's os._exit. Without this, a sampled trace of such a process had
 * no TOTALS after the last periodic ones (every 65,536 allocations of a
 * thread): `allocations 0 calls (exact)` for a short program, and
 * "status unknown" for a process that was not the recorder's child.
 *
 * glibc's own exit() reaches its internal _exit, not this one.
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "libheaptrace/session.h"
#include "libheaptrace/util.h"

/* What glibc's _exit does, without going back through the symbol we
 * replace: exit_group, and should it ever return, exit. */
static __attribute__((noreturn)) void
shim_exit_now(int status)
{
    for (;;) {
        syscall(SYS_exit_group, status);
        syscall(SYS_exit, status);
    }
}

HT_EXPORT __attribute__((noreturn)) void
_exit(int status)
{
    ht_sess_end_now(status);
    shim_exit_now(status);
}

HT_EXPORT __attribute__((noreturn)) void
_Exit(int status)
{
    ht_sess_end_now(status);
    shim_exit_now(status);
}
