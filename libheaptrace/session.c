/*
 * libheaptrace/session.c -- ring placement, exec generations, fork and
 * exit (contract: session.h). All of it runs at init, in atfork handlers
 * or at exit: system calls are fine here, allocation only under the guard.
 */
#include "libheaptrace/session.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "formats/tracefile.h"
#include "libheaptrace/boot.h"
#include "libheaptrace/clock.h"
#include "libheaptrace/live.h"
#include "libheaptrace/log.h"
#include "libheaptrace/opts.h"
#include "libheaptrace/rec.h"
#include "libheaptrace/util.h"

/* The in-process collector (libheaptrace/collector.c, another module).
 * Weak, so the shim still loads, and simply does not record in
 * HEAPTRACE_OUTPUT mode, if it is missing. */
extern int ht_coll_thread_start(ht_ring_t *ring, const char *output_path)
    __attribute__((weak));
extern void ht_coll_thread_stop(void) __attribute__((weak));

#define SESS_ROOT_ENV "HEAPTRACE_ROOT_PID"

static ht_ring_t sess_ring;
static int sess_inproc;   /* HEAPTRACE_OUTPUT mode: collector thread in here */
static int sess_coll_on;  /* that thread is running */
static char sess_exe[HT_TF_MAX_STR];
static uint32_t sess_exe_len;
static char sess_argv[HT_TF_MAX_STR];
static uint32_t sess_argv_len;
static char sess_out[HT_OPTS_PATH_MAX + 64];
static uint64_t sess_fork_ts;   /* taken in the prepare handler */
static uint32_t sess_fork_tid;

/* ------------------------------------------------------------------ */

int
ht_sess_ring_path(char *buf, unsigned cap, const char *dir, int pid, unsigned gen)
{
    size_t n = ht_log_fmt(buf, cap, "%s/%d.%u.ring", dir, pid, gen);
    return n + 1 >= cap ? -1 : (int)n;
}

static uint32_t
sess_read_file(const char *path, char *buf, uint32_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint32_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (uint32_t)r;
    }
    close(fd);
    return n;
}

/* Executable path and NUL-separated argv (without the final NUL). */
static void
sess_read_identity(void)
{
    ssize_t n = readlink("/proc/self/exe", sess_exe, sizeof sess_exe - 1);
    sess_exe_len = n > 0 ? (uint32_t)n : 0;
    sess_exe[sess_exe_len] = '\0';
    sess_argv_len = sess_read_file("/proc/self/cmdline", sess_argv, sizeof sess_argv);
    if (sess_argv_len && sess_argv[sess_argv_len - 1] == '\0')
        sess_argv_len--;
}

/* This process's start, CLOCK_MONOTONIC ns (approximate: /proc gives clock
 * ticks since boot, i.e. BOOTTIME, which runs ahead by time suspended). */
static uint64_t
sess_proc_start_mono(void)
{
    char buf[1024];
    uint32_t n = sess_read_file("/proc/self/stat", buf, sizeof buf - 1);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); // comm may hold spaces and parentheses
    if (!p)
        return 0;
    // After ')': field 3 (state) ... field 22 (starttime).
    int field = 2;
    unsigned long long start = 0;
    for (; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    for (; *p >= '0' && *p <= '9'; p++)
        start = start * 10 + (unsigned)(*p - '0');
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    uint64_t start_boot = (uint64_t)start * (1000000000ull / (uint64_t)hz);
    struct timespec b, m;
    clock_gettime(CLOCK_BOOTTIME, &b);
    clock_gettime(CLOCK_MONOTONIC, &m);
    uint64_t skew = ((uint64_t)b.tv_sec * 1000000000ull + (uint64_t)b.tv_nsec) -
                    ((uint64_t)m.tv_sec * 1000000000ull + (uint64_t)m.tv_nsec);
    return start_boot > skew ? start_boot - skew : 0;
}

/* Is the ring at `path` this very process before an exec? If so mark it
 * EXECED (nothing else will: the old image could not). */
static int
sess_mark_execed(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    int execed = 0;
    void *m = mmap(NULL, sizeof(ht_ring_hdr_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
        ht_ring_hdr_t *h = m;
        // Same pid, and the old ring was attached after this process began
        // (a reused pid would have begun later). One tick of slack.
        if (h->magic == HT_RING_MAGIC && h->pid == getpid() &&
            sess_proc_start_mono() <= h->start_ns + 20000000ull) {
            execed = 1;
            uint32_t live = HT_RING_STATE_LIVE;
            atomic_compare_exchange_strong(&h->state, &live, HT_RING_STATE_EXECED);
        }
        munmap(m, sizeof(ht_ring_hdr_t));
    }
    close(fd);
    return execed;
}

/* The ring's geometry. Its ~216 MiB are address space only (pages come
 * as they are used), but under a finite RLIMIT_AS (ulimit -v) that is the
 * program's budget: a program allocating 300 MB under a 400 MB limit
 * failed at 152 MB. The ring then takes at most a sixteenth of the limit,
 * its frame pool, stack table and buffers halved in turn down to a floor
 * (a smaller table drops stacks sooner, counted). A forked child keeps its
 * parent's geometry: the parent's stack ids must fit its table. */
static void
sess_params(ht_ring_params_t *p, const ht_ring_t *parent)
{
    if (parent) {
        *p = (ht_ring_params_t){parent->nbufs, parent->buf_size, parent->stack_cap,
                                parent->frames_cap};
        return;
    }
    ht_ring_params_default(p);
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    uint64_t budget = (uint64_t)rl.rlim_cur / 16;
    for (unsigned k = 0, stuck = 0; ht_ring_size(p) > budget && stuck < 3; k++) {
        stuck++;
        if (k % 3 == 0 && p->frames_cap > (1u << 16))
            p->frames_cap /= 2, stuck = 0;
        else if (k % 3 == 1 && p->stack_cap > (1u << 12))
            p->stack_cap /= 2, stuck = 0;
        else if (k % 3 == 2 && p->nbufs > 64)
            p->nbufs /= 2, stuck = 0;
    }
}

/* Make, fill and publish this process's ring. `parent` (after fork) is
 * the parent's ring, whose stacks are copied. */
static int
sess_ring_make(uint32_t flags, const ht_ring_t *parent)
{
    ht_ring_params_t prm;
    sess_params(&prm, parent);
    size_t len = ht_ring_size(&prm);
    int pid = getpid();
    char final[HT_OPTS_PATH_MAX + 64], tmp[HT_OPTS_PATH_MAX + 64];
    int fd = -1;
    void *mem;

    if (ht_opt.ring_dir[0]) {
        unsigned gen = 0;
        for (;; gen++) {
            if (ht_sess_ring_path(final, sizeof final, ht_opt.ring_dir, pid, gen) < 0)
                return -ENAMETOOLONG;
            if (access(final, F_OK) != 0)
                break;
            if (!parent && sess_mark_execed(final))
                flags |= HT_TF_PROC_EXEC;
            if (gen > 1000)
                return -EEXIST;
        }
        ht_log_fmt(tmp, sizeof tmp, "%s/.%d.%u.ring.tmp", ht_opt.ring_dir, pid, gen);
        for (int tries = 0; tries < 2; tries++) {
            fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (fd >= 0 || errno != EEXIST)
                break;
            unlink(tmp); // a leftover of a process that died while making it
        }
        if (fd < 0)
            return -errno;
        if (ftruncate(fd, (off_t)len) < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return -e;
        }
        mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (mem == MAP_FAILED) {
            int e = errno;
            unlink(tmp);
            return -e;
        }
    } else {
        mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
        if (mem == MAP_FAILED)
            return -errno;
    }

    ht_ring_t r;
    if (ht_ring_format(&r, mem, &prm) < 0) {
        // Not even its header has room (a full /dev/shm): touching it
        // would be a SIGBUS.
        munmap(mem, len);
        if (ht_opt.ring_dir[0])
            unlink(tmp);
        return -ENOSPC;
    }
    ht_ring_hdr_t *h = r.hdr;
    h->pid = pid;
    h->ppid = getppid();
    if (ht_opt.sample_rate == 0)
        flags |= HT_TF_PROC_ALL;
    if (ht_opt.lossy)
        flags |= HT_TF_PROC_LOSSY;
    h->flags = flags;
    h->sample_rate = ht_opt.sample_rate;
    h->max_depth = ht_opt.max_depth;
    h->start_ns = ht_clock_ns();
    h->exe_len = sess_exe_len;
    memcpy(h->exe, sess_exe, sess_exe_len);
    h->argv_len = sess_argv_len;
    memcpy(h->argv, sess_argv, sess_argv_len);
    if (parent)
        ht_ring_stacks_copy(&r, parent);
    sess_ring = r;
    int rc = ht_rec_start(&sess_ring, sess_exe, sess_exe_len, sess_argv, sess_argv_len);
    atomic_store_explicit(&h->state, HT_RING_STATE_LIVE, memory_order_release);
    if (rc == 0 && ht_opt.ring_dir[0] && renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0)
        rc = -errno;
    if (rc < 0) {
        ht_rec_stop();
        if (ht_opt.ring_dir[0])
            unlink(tmp);
        munmap(mem, len);
        memset(&sess_ring, 0, sizeof sess_ring);
        return rc;
    }
    ht_log_verbose("recording pid %d into %s", pid, ht_opt.ring_dir[0] ? final : "memory");
    return 0;
}

/* Which process of the recorded tree is this? The first to ask names
 * itself in HEAPTRACE_ROOT_PID, which its descendants inherit: an image it
 * exec'd finds its own pid there, a descendant (forked, vfork'd or
 * spawned, then exec'd) another. HEAPTRACE_OUTPUT gives the first the
 * plain file name; HEAPTRACE_NO_CHILDREN records the first and its execs
 * only (a forked child that does not exec stops in sess_fork_child).
 * setenv allocates: under the guard, at init. */
enum { SESS_ROOT_FIRST, SESS_ROOT_EXECD, SESS_ROOT_OTHER };

static int
sess_root_claim(void)
{
    const char *root = getenv(SESS_ROOT_ENV);
    char pid[24];
    ht_log_fmt(pid, sizeof pid, "%d", getpid());
    if (!root) {
        setenv(SESS_ROOT_ENV, pid, 1);
        return SESS_ROOT_FIRST;
    }
    return strcmp(root, pid) == 0 ? SESS_ROOT_EXECD : SESS_ROOT_OTHER;
}

/* HEAPTRACE_OUTPUT mode: the path this image's trace goes to. `first`:
 * the tree's first process, not forked (sess_root_claim). */
static void
sess_pick_output(int first)
{
    if (first) {
        ht_log_fmt(sess_out, sizeof sess_out, "%s", ht_opt.output);
        return;
    }
    ht_log_fmt(sess_out, sizeof sess_out, "%s.%d", ht_opt.output, getpid());
    for (unsigned n = 1; access(sess_out, F_OK) == 0 && n < 1000; n++)
        ht_log_fmt(sess_out, sizeof sess_out, "%s.%d.%u", ht_opt.output, getpid(), n);
}

static int
sess_coll_start(void)
{
    if (!ht_coll_thread_start) {
        ht_log("HEAPTRACE_OUTPUT: this libheaptrace has no in-process collector; not recording");
        return -ENOSYS;
    }
#ifdef HT_IN_SHIM
    // libzstd is loaded now, not linked (formats/tracefile.h); without it
    // the one line ht_zstd_load wrote is the whole story.
    if (ht_zstd_load() < 0)
        return -ELIBACC;
#endif
    int rc = ht_coll_thread_start(&sess_ring, sess_out);
    if (rc < 0) {
        ht_log("cannot start the collector for %s (error %d); not recording", sess_out, -rc);
        return rc;
    }
    sess_coll_on = 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* life events */

static void
sess_on_exit(int status, void *arg)
{
    (void)arg;
    // The status as a parent sees it (exit(256) is status 0).
    ht_rec_exit(HT_TF_EXIT_STATUS, status & 0xff); // takes the guard itself
    ht_rec_guard_enter();
    if (sess_coll_on && ht_coll_thread_stop) {
        // After EXIT is in the ring: the collector drains it, then returns.
        ht_coll_thread_stop();
        sess_coll_on = 0;
    }
    ht_rec_guard_leave();
}

void
ht_sess_end_now(int status)
{
    ht_ring_t *r = ht_rec_ring();
    // A vfork child shares its parent's memory, TLS included: only the
    // process the ring was made for ends it.
    if (!r || (int32_t)syscall(SYS_getpid) != r->hdr->pid)
        return;
    // Inside the shim (a signal handler that interrupted it): the
    // recorder's state is half-changed and the collector may wait for it.
    if (ht_rec_tls.guard)
        return;
    sess_on_exit(status, NULL);
}

static void
sess_fork_prepare(void)
{
    // No allocation here: another thread may hold malloc's locks, which
    // glibc takes after the atfork prepare handlers run.
    ht_rec_tls_t *t = &ht_rec_tls;
    sess_fork_ts = ht_rec_fork_stamp();
    // The real tid: this thread may never have recorded anything.
    sess_fork_tid = (uint32_t)syscall(SYS_gettid);
    ht_ring_t *r = ht_rec_ring();
    if (r && !t->guard && t->w.buf >= 0) {
        // Close this thread's buffer, so that its records before the fork
        // come out ahead of FORK and those after it behind.
        ht_rec_guard_enter();
        ht_ring_writer_release(r, &t->w);
        ht_rec_guard_leave();
    }
    ht_rec_fork_lock();
}

static void
sess_fork_parent(void)
{
    // The parent does not know the child's pid here; the child writes FORK
    // into the parent's ring (shared memory) instead.
    ht_rec_fork_unlock(0);
}

static void
sess_fork_child(void)
{
    ht_clock_atfork_child();
    ht_rec_fork_unlock(1);
    ht_rec_guard_enter();
    ht_ring_t parent = sess_ring;
    // This child writes FORK into the parent's ring on purpose, through
    // a writer of its own (ring.c refuses a process that is not the
    // ring's owner: a raw clone's child).
    parent.owner = (int32_t)getpid();
    int was_on = ht_rec_ring() != NULL;
    ht_rec_fork_child();
    sess_coll_on = 0; // threads do not survive fork
    if (!was_on || !parent.hdr) {
        ht_rec_guard_leave();
        return;
    }
    if (ht_opt.no_children) {
        // Not recorded, and no FORK in the parent's stream: the collector
        // would wait for a child ring that never comes.
        ht_rec_stop();
        munmap(parent.hdr, parent.map_size);
        ht_rec_guard_leave();
        return;
    }
    // FORK(child) in the parent's stream, as if the forking thread had
    // written it at the moment of the fork.
    ht_ring_writer_t w = {.buf = -1, .tid = sess_fork_tid, .first_ts = sess_fork_ts - 1};
    ht_ring_hdr_t *ph = parent.hdr;
    // The writer stamps BATCH with the ring's pid: the parent's.
    if (ht_ring_writer_reserve(&parent, &w, HT_TF_MAX_FIXED_REC, sess_fork_ts) == 0) {
        if (ht_tf_put_fork(&w.enc, sess_fork_ts, (uint64_t)getpid()) == 0)
            ht_ring_writer_commit(&parent, &w);
        ht_ring_writer_release(&parent, &w);
    }
    (void)ph;
    int rc;
    if (sess_inproc)
        sess_pick_output(0);
    rc = sess_ring_make(HT_TF_PROC_FORKED, &parent);
    // The parent's ring is the parent's business from here on.
    munmap(parent.hdr, parent.map_size);
    if (rc == 0 && sess_inproc && sess_coll_start() < 0)
        ht_rec_stop();
    if (rc < 0) {
        ht_rec_stop();
        ht_log("forked child %d: cannot make its ring (error %d); not recording", getpid(), -rc);
    }
    ht_rec_guard_leave();
}

/* ------------------------------------------------------------------ */

int
ht_sess_init(void)
{
    if (ht_boot_resolve() < 0)
        return -EBUSY;
    ht_rec_guard_enter();
    int rc = ht_opts_init();
    if (rc < 0)
        goto off;
    if (!ht_opt.ring_dir[0] && !ht_opt.output[0]) {
        ht_log_verbose("neither HEAPTRACE_RING_DIR nor HEAPTRACE_OUTPUT is set; not recording");
        rc = -ENOENT;
        goto off;
    }
    sess_inproc = !ht_opt.ring_dir[0];
    int root = sess_inproc || ht_opt.no_children ? sess_root_claim() : SESS_ROOT_FIRST;
    if (ht_opt.no_children && root == SESS_ROOT_OTHER) {
        ht_log_verbose("a child of the recorded process, and HEAPTRACE_NO_CHILDREN is set; "
                       "not recording");
        rc = -ECHILD;
        goto off;
    }
    ht_clock_init(ht_opt.tsc);
    // --all needs no live table: the collector has every pointer (rec.c).
    if (ht_opt.sample_rate != 0) {
        rc = ht_live_init(ht_opt.live_lg ? ht_opt.live_lg : 18);
        if (rc < 0) {
            ht_log("cannot map the live table (error %d); not recording", -rc);
            goto off;
        }
    }
    sess_read_identity();
    if (sess_inproc)
        sess_pick_output(root == SESS_ROOT_FIRST);
    rc = sess_ring_make(0, NULL);
    if (rc < 0) {
        ht_log("cannot make the ring in %s (error %d); not recording",
               ht_opt.ring_dir[0] ? ht_opt.ring_dir : "memory", -rc);
        goto off;
    }
    if (sess_inproc && (rc = sess_coll_start()) < 0)
        goto off;
    on_exit(sess_on_exit, NULL);
    pthread_atfork(sess_fork_prepare, sess_fork_parent, sess_fork_child);
    ht_rec_guard_leave();
    return 0;
off:
    ht_rec_stop();
    ht_rec_guard_leave();
    return rc;
}
