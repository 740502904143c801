/*
 * libheaptrace/session.h -- where this process's ring lives and what
 * happens at the process's life events (prefix ht_sess_).
 *
 * Environment protocol (read once, opts.c):
 *  - HEAPTRACE_RING_DIR=dir (set by `heaptrace record`): the ring is the
 *    file dir/<pid>.<generation>.ring, made under a temporary name, filled
 *    with its identity, PROCESS, MODULE and THREAD records, and only then
 *    renamed into place, so the collector never sees a half-made ring.
 *    Generation 0 is a new process; an exec'd image (same pid) takes the
 *    next free generation, flags HT_TF_PROC_EXEC and marks the old ring
 *    EXECED. A forked child makes <child pid>.0.ring with HT_TF_PROC_FORKED,
 *    the parent's stacks copied in at the same ids.
 *  - HEAPTRACE_OUTPUT=path (preloaded by hand): the ring is an anonymous
 *    shared mapping and the collector runs as a thread of the process
 *    (collector.h). A forked or exec'd child writes path.<pid>.
 *  - neither: the shim forwards everything and records nothing.
 * In a setuid/setgid program nothing is read and nothing recorded.
 */
#ifndef HT_LIBHEAPTRACE_SESSION_H
#define HT_LIBHEAPTRACE_SESSION_H

/* Set everything up and start recording (or decide not to). Called once
 * from the shim's constructor. 0, or -errno when not recording. [init] */
int ht_sess_init(void);

/* The process ends by _exit or _Exit (shim_exit.c): what exit()'s handler
 * does, final counts and EXIT with `status`, then the in-process
 * collector's drain. Nothing in a vfork child, which runs on its parent's
 * memory (what it wrote would be the parent's), nor when not recording;
 * the collector is left alone when this thread is inside the shim (a
 * signal handler that interrupted it), where waiting for it could hang.
 * [as-safe but for that drain] */
void ht_sess_end_now(int status);

/* Ring file names: "<dir>/<pid>.<gen>.ring". Returns the length, or -1 if
 * it does not fit in cap. [no-alloc] */
int ht_sess_ring_path(char *buf, unsigned cap, const char *dir, int pid, unsigned gen);

#endif /* HT_LIBHEAPTRACE_SESSION_H */
