/*
 * heaptrace-cli/record.c -- `heaptrace record [OPTIONS] [--] PROG [ARGS]`:
 * make a private ring directory, start PROG with the shim preloaded, run
 * the collector until PROG and every recorded descendant are gone, exit
 * with PROG's status.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "libheaptrace/collector.h"
#include "libheaptrace/opts.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#define REC_DEFAULT_RATE (512u << 10)
#define REC_DEFAULT_DEPTH 256 /* deeper than heaptrack's 64: a 200-deep recursion reaches main */
/* Say so when the program has not attached a ring after this long. */
#define REC_ATTACH_WARN_NS (3000000000ull)

static void
rec_usage(FILE *f)
{
    fprintf(f,
            "usage: heaptrace record [OPTIONS] [--] PROG [ARGS...]\n\n"
            "Run PROG with the heaptrace shim preloaded and record its heap activity\n"
            "(and that of every process it forks, unless --no-children) to a trace file.\n\n"
            "Options:\n"
            "  -o, --output FILE          trace file (default: heaptrace.PROG.PID.htr in\n"
            "                             the current directory); forked children write\n"
            "                             FILE.CHILDPID\n"
            "  --all                      record every allocation, exact (default: sampled)\n"
            "  --sample-rate BYTES        mean bytes between samples (default: 512K)\n"
            "  --max-depth N              most frames of a backtrace (default: 256)\n"
            "  --lossy                    drop events when the ring is full instead of\n"
            "                             making the program wait (default: lossless)\n"
            "  --no-children              record PROG only (and what it execs), not the\n"
            "                             processes it forks or spawns (default: all)\n"
            "  -q, --quiet                no summary line on stderr (default: off)\n"
            "  --max-size BYTES           bound each trace file; the oldest segments are\n"
            "                             overwritten (default: 0, unbounded)\n"
            "  --flush-interval SECS      write what was recorded to the file at least\n"
            "                             this often (default: 10)\n"
            "  --snapshot-interval SECS   take a snapshot every SECS seconds (default: off)\n"
            "  --snapshot-every BYTES     take a snapshot every BYTES of allocation\n"
            "                             (default: off)\n"
            "  --snapshot-prefix P        also write snapshot N to the file P.N\n"
            "                             (default: off)\n"
            "  -h, --help                 this help\n\n"
            "Sizes take K, M, G suffixes (powers of 1024). The exit status is PROG's\n"
            "(128+N when killed by signal N); 127 if PROG cannot be found.\n\n"
            "Examples:\n"
            "  heaptrace record ./server --port 8080\n"
            "  heaptrace record --all -o t.htr ./unit_tests\n"
            "  heaptrace record --snapshot-interval 30 --snapshot-prefix snap ./server\n");
}

/* ---- the program ---- */

/* PROG as execvp would find it; NULL with errno when it cannot run. */
static char *
rec_resolve(const char *prog)
{
    if (strchr(prog, '/')) {
        if (access(prog, X_OK) < 0)
            return NULL;
        return strdup(prog);
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int err = ENOENT;
    for (const char *p = path;;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? p : ".", prog) < (int)sizeof buf) {
            struct stat st;
            if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(buf, X_OK) == 0)
                    return strdup(buf);
                err = EACCES;
            }
        }
        if (!e)
            break;
        p = e + 1;
    }
    errno = err;
    return NULL;
}

/* Whether an ELF file asks for a program interpreter (the dynamic loader,
 * which is what honours LD_PRELOAD). 1 yes, 0 no (static), -1 not ELF or
 * unreadable (a script: its interpreter is checked by the kernel). */
static int
rec_elf_dynamic(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned char id[EI_NIDENT];
    int rc = -1;
    if (pread(fd, id, sizeof id, 0) != (ssize_t)sizeof id || memcmp(id, ELFMAG, SELFMAG) != 0)
        goto out;
    uint64_t phoff, phnum, phentsize;
    if (id[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr eh;
        if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh)
            goto out;
        phoff = eh.e_phoff;
        phnum = eh.e_phnum;
        phentsize = eh.e_phentsize;
        if (phentsize < sizeof(Elf64_Phdr))
            goto out;
    } else if (id[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr eh;
        if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh)
            goto out;
        phoff = eh.e_phoff;
        phnum = eh.e_phnum;
        phentsize = eh.e_phentsize;
        if (phentsize < sizeof(Elf32_Phdr))
            goto out;
    } else {
        goto out;
    }
    rc = 0;
    for (uint64_t i = 0; i < phnum && i < 4096; i++) {
        uint32_t type;
        if (pread(fd, &type, sizeof type, (off_t)(phoff + i * phentsize)) != (ssize_t)sizeof type)
            break;
        if (type == PT_INTERP) {
            rc = 1;
            break;
        }
    }
out:
    close(fd);
    return rc;
}

/* libheaptrace.so beside this executable (the build tree), else in
 * ../lib/heaptrace relative to it (an installed tree, wherever it was
 * moved), else under the prefix compiled in. */
static int
rec_find_shim(char *out, size_t cap)
{
    char self[PATH_MAX - 64]; // room for "/../lib/heaptrace/libheaptrace.so" in `out`
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(out, cap, "%s/libheaptrace.so", self);
            if (access(out, R_OK) == 0)
                return 0;
            snprintf(out, cap, "%s/../lib/heaptrace/libheaptrace.so", self);
            if (access(out, R_OK) == 0)
                return 0;
        }
    }
    snprintf(out, cap, "%s/lib/heaptrace/libheaptrace.so", HT_PREFIX);
    if (access(out, R_OK) == 0)
        return 0;
    return -ENOENT;
}

/* ---- the child's environment ---- */

extern char **environ;

static void
rec_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

/* Our environment, minus what we set, plus the shim's settings: LD_PRELOAD
 * with the shim first, the ring directory and the recording options
 * (HEAPTRACE_OUTPUT goes: the ring directory is the channel here). A
 * malloc'd NULL-terminated array whose strings rec_env_free frees too, or
 * NULL without memory. */
static char **
rec_child_env(const char *shim, const char *rdir, uint64_t rate, uint64_t depth, bool lossy,
              bool no_children)
{
    // HEAPTRACE_ROOT_PID goes too: a recording inside a recorded process
    // tree names its own first process (libheaptrace/session.c).
    static const char *const ours[] = {
        "LD_PRELOAD=",      "HEAPTRACE_RING_DIR=", "HEAPTRACE_SAMPLE_RATE=", "HEAPTRACE_MAX_DEPTH=",
        "HEAPTRACE_LOSSY=", "HEAPTRACE_OUTPUT=",   "HEAPTRACE_NO_CHILDREN=", "HEAPTRACE_ROOT_PID="};
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + 7, sizeof *env); // + ours written below + NULL
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool skip = false;
        for (size_t j = 0; j < sizeof ours / sizeof ours[0] && !skip; j++)
            skip = strncmp(environ[i], ours[j], strlen(ours[j])) == 0;
        if (!skip && !(env[k++] = strdup(environ[i])))
            goto fail;
    }
    const char *pre = getenv("LD_PRELOAD");
    if (pre && *pre) {
        if (asprintf(&env[k++], "LD_PRELOAD=%s:%s", shim, pre) < 0)
            goto fail_last;
    } else if (asprintf(&env[k++], "LD_PRELOAD=%s", shim) < 0) {
        goto fail_last;
    }
    if (asprintf(&env[k++], "HEAPTRACE_RING_DIR=%s", rdir) < 0 ||
        asprintf(&env[k++], "HEAPTRACE_SAMPLE_RATE=%llu", (unsigned long long)rate) < 0 ||
        asprintf(&env[k++], "HEAPTRACE_MAX_DEPTH=%llu", (unsigned long long)depth) < 0 ||
        asprintf(&env[k++], "HEAPTRACE_LOSSY=%d", lossy ? 1 : 0) < 0 ||
        asprintf(&env[k++], "HEAPTRACE_NO_CHILDREN=%d", no_children ? 1 : 0) < 0)
        goto fail_last;
    return env;
fail_last:
    env[k - 1] = NULL; // asprintf leaves it undefined on failure
fail:
    rec_env_free(env);
    return NULL;
}

/* ---- signals ---- */

static volatile sig_atomic_t rec_child = 0;

static void
rec_forward(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    // A terminal's ^C reaches the whole foreground process group, PROG
    // included: forwarding it again would deliver it twice. Forward only
    // what was sent to us alone (kill(1), a supervisor).
    if (si && si->si_code == SI_KERNEL)
        return;
    if (rec_child > 0)
        kill((pid_t)rec_child, sig);
}

static void
rec_wake(int sig)
{
    (void)sig; // never runs: SIGCHLD is blocked and waited for; installed
               // so that an inherited SIG_IGN cannot make the kernel reap
               // our children before waitpid sees their status
}

/* The collector keeps a trace file open for every process it records: a
 * program with more live processes than our soft RLIMIT_NOFILE (1024 on
 * many systems) lost the traces of the ones beyond ("cannot write trace
 * ...: Too many open files"). Raised to the hard limit, after the program
 * is spawned: its own limit stays what it was given. */
static void
rec_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- ring directory ---- */

/* Bytes an unprivileged user may still write under path; 0 if unknown. */
static uint64_t
rec_fs_free(const char *path)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return 0;
    return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static void
rec_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void
rec_human(uint64_t b, char *out, size_t cap)
{
    if (b >= (10ull << 30))
        snprintf(out, cap, "%.1f GiB", (double)b / (1 << 30));
    else if (b >= (10ull << 20))
        snprintf(out, cap, "%.1f MiB", (double)b / (1 << 20));
    else if (b >= (10ull << 10))
        snprintf(out, cap, "%.1f KiB", (double)b / (1 << 10));
    else
        snprintf(out, cap, "%llu bytes", (unsigned long long)b);
}

static uint64_t
rec_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

enum {
    OPT_ALL = 256, OPT_RATE, OPT_DEPTH, OPT_LOSSY, OPT_NO_CHILDREN, OPT_QUIET, OPT_MAXSIZE,
    OPT_FLUSH, OPT_SNAP_INT, OPT_SNAP_EVERY, OPT_SNAP_PREFIX,
};

static int
rec_bad(const char *what, const char *val)
{
    return ht_cli_usage_error("record", rec_usage, "bad value for %s: '%s'", what, val);
}

int
cmd_record(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"all", no_argument, NULL, OPT_ALL},
        {"sample-rate", required_argument, NULL, OPT_RATE},
        {"max-depth", required_argument, NULL, OPT_DEPTH},
        {"lossy", no_argument, NULL, OPT_LOSSY},
        {"no-children", no_argument, NULL, OPT_NO_CHILDREN},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"max-size", required_argument, NULL, OPT_MAXSIZE},
        {"flush-interval", required_argument, NULL, OPT_FLUSH},
        {"snapshot-interval", required_argument, NULL, OPT_SNAP_INT},
        {"snapshot-every", required_argument, NULL, OPT_SNAP_EVERY},
        {"snapshot-prefix", required_argument, NULL, OPT_SNAP_PREFIX},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL, *prefix = NULL;
    bool all = false, lossy = false, quiet = false, rate_set = false, no_children = false;
    uint64_t rate = REC_DEFAULT_RATE, depth = REC_DEFAULT_DEPTH, max_size = 0, every = 0;
    double interval = 0, flush = 0;
    int ch;
    optind = 1;
    opterr = 0;
    // "+": options stop at PROG, so PROG's own options stay PROG's.
    while ((ch = getopt_long(argc, argv, "+:o:qh", longopts, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 'o':
            output = optarg;
            break;
        case OPT_ALL:
            all = true;
            break;
        case OPT_RATE:
            // Above the shim's bound it would warn and sample at the
            // default instead: refuse it here.
            if (ht_coll_parse_size(optarg, &rate) < 0 || rate == 0 ||
                rate > HT_OPTS_MAX_SAMPLE_RATE)
                return rec_bad("--sample-rate (1 to 1T)", optarg);
            rate_set = true;
            break;
        case OPT_DEPTH:
            errno = 0;
            depth = strtoull(optarg, &end, 10);
            if (errno || *end || end == optarg || depth < 1 || depth > HT_TF_MAX_FRAMES ||
                *optarg == '-')
                return rec_bad("--max-depth (1..1024)", optarg);
            break;
        case OPT_LOSSY:
            lossy = true;
            break;
        case OPT_NO_CHILDREN:
            no_children = true;
            break;
        case 'q':
        case OPT_QUIET:
            quiet = true;
            break;
        case OPT_MAXSIZE:
            if (ht_coll_parse_size(optarg, &max_size) < 0)
                return rec_bad("--max-size", optarg);
            if (max_size && max_size < (1u << 20))
                return rec_bad("--max-size (at least 1M)", optarg);
            break;
        case OPT_FLUSH:
            errno = 0;
            flush = strtod(optarg, &end);
            if (errno || *end || end == optarg || !(flush >= 0.01) || flush > 1e7)
                return rec_bad("--flush-interval (seconds >= 0.01)", optarg);
            break;
        case OPT_SNAP_INT:
            errno = 0;
            interval = strtod(optarg, &end);
            if (errno || *end || end == optarg || !(interval > 0) || interval > 1e7)
                return rec_bad("--snapshot-interval (seconds > 0)", optarg);
            break;
        case OPT_SNAP_EVERY:
            if (ht_coll_parse_size(optarg, &every) < 0 || every == 0)
                return rec_bad("--snapshot-every", optarg);
            break;
        case OPT_SNAP_PREFIX:
            if (!*optarg)
                return rec_bad("--snapshot-prefix", optarg);
            prefix = optarg;
            break;
        case 'h':
            rec_usage(stdout);
            return 0;
        default:
            return ht_cli_bad_option("record", ch, argv, longopts, rec_usage);
        }
    }
    if (all && rate_set)
        return ht_cli_usage_error("record", rec_usage, "--all and --sample-rate exclude each other");
    if (optind >= argc)
        return ht_cli_usage_error("record", rec_usage,
                                  "which program? (heaptrace record [OPTIONS] PROG [ARGS...])");
    char **pargv = argv + optind;
    const char *prog = pargv[0];

    // Refuse before running anything: what cannot be traced, and a trace
    // that would overwrite a file.
    char *exe = rec_resolve(prog);
    if (!exe) {
        int e = errno;
        ht_cli_error("cannot run '%s': %s", prog, strerror(e));
        return e == ENOENT ? 127 : 126;
    }
    struct stat st;
    if (stat(exe, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
        ht_cli_error("'%s' is set%s: the loader ignores LD_PRELOAD for it, so it cannot be "
                     "recorded", exe, (st.st_mode & S_ISUID) ? "uid" : "gid");
        free(exe);
        return 1;
    }
    if (rec_elf_dynamic(exe) == 0) {
        ht_cli_error("'%s' is statically linked: the heaptrace shim cannot be preloaded into "
                     "it (link it dynamically)", exe);
        free(exe);
        return 1;
    }
    char shim[PATH_MAX];
    if (rec_find_shim(shim, sizeof shim) < 0) {
        ht_cli_error("cannot find libheaptrace.so (looked beside this program and in "
                     "%s/lib/heaptrace)", HT_PREFIX);
        free(exe);
        return 1;
    }
    if (strpbrk(shim, ": ")) {
        ht_cli_error("the shim's path '%s' contains ':' or ' ', which LD_PRELOAD cannot carry",
                     shim);
        free(exe);
        return 1;
    }
    if (output && access(output, F_OK) == 0) {
        ht_cli_error("'%s' exists; not overwriting it (choose another -o)", output);
        free(exe);
        return 1;
    }

    char dir[] = "/dev/shm/heaptrace.XXXXXX";
    char dir_tmp[PATH_MAX];
    const char *t = getenv("TMPDIR");
    t = t && *t ? t : "/tmp";
    // /dev/shm unless it has less room than one ring may come to take (a
    // container's 64 MiB) and TMPDIR more: a ring takes pages as its
    // program needs them, and where none are left it loses events and
    // stacks (the shim backs every page before use, so never worse).
    ht_ring_params_t dflt;
    ht_ring_params_default(&dflt);
    uint64_t shm_free = rec_fs_free("/dev/shm");
    char *rdir = NULL;
    if (shm_free >= ht_ring_size(&dflt) || shm_free >= rec_fs_free(t))
        rdir = mkdtemp(dir);
    if (!rdir) {
        // No /dev/shm (some containers) or little room there: any
        // tmpfs-or-not directory works, the rings are shared file
        // mappings either way.
        snprintf(dir_tmp, sizeof dir_tmp, "%s/heaptrace.XXXXXX", t);
        rdir = mkdtemp(dir_tmp);
    }
    if (!rdir) {
        ht_cli_error("cannot create a ring directory: %s", strerror(errno));
        free(exe);
        return 1;
    }
    // `heaptrace snapshot <this pid>` finds the rings through this open
    // descriptor (/proc/PID/fd): our environment as changed here does not
    // show in /proc/PID/environ. Set it anyway for our own children.
    setenv("HEAPTRACE_RING_DIR", rdir, 1);
    int keep_fd = open(rdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    // Orphans of PROG (daemons, double forks) become our children, so we
    // know when the last recorded process is gone, and their status.
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = rec_forward;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    // Block them until the child pid is known, so none is lost.
    sigset_t fwd, old;
    sigemptyset(&fwd);
    sigaddset(&fwd, SIGINT);
    sigaddset(&fwd, SIGTERM);
    sigaddset(&fwd, SIGHUP);
    sigprocmask(SIG_BLOCK, &fwd, &old);
    fflush(NULL);
    // posix_spawn, not fork: glibc's shares our memory until the exec (a
    // fork copied our page tables for the child to throw away: 2 ms of a
    // short program's recording on this VM), and reports a failed exec.
    char **envp = rec_child_env(shim, rdir, all ? 0 : rate, depth, lossy, no_children);
    posix_spawnattr_t attr;
    pid_t child = -1;
    int spawn_err = envp ? posix_spawnattr_init(&attr) : ENOMEM;
    if (spawn_err == 0) {
        posix_spawnattr_setsigmask(&attr, &old);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        spawn_err = posix_spawn(&child, exe, NULL, &attr, pargv, envp);
        posix_spawnattr_destroy(&attr);
    }
    rec_env_free(envp);
    if (spawn_err != 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        ht_cli_error("cannot run '%s': %s", prog, strerror(spawn_err));
        rec_rmdir(rdir);
        free(exe);
        return spawn_err == ENOENT ? 127 : 126;
    }
    rec_child = child;
    rec_raise_nofile();
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    struct sigaction sc;
    memset(&sc, 0, sizeof sc);
    sc.sa_handler = rec_wake;
    sigemptyset(&sc.sa_mask);
    sigaction(SIGCHLD, &sc, NULL);
    signal(SIGPIPE, SIG_IGN);
    // SIGCHLD stays blocked and is taken by the poll wait below: a handler
    // that only interrupts a sleep misses a child that exits between the
    // poll and the sleep, which then runs its whole length (5 ms of a short
    // program's recording, one run in three).
    sigset_t chld, run = old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigaddset(&run, SIGCHLD);
    sigprocmask(SIG_SETMASK, &run, NULL);

    char defout[PATH_MAX];
    if (!output) {
        const char *base = strrchr(exe, '/');
        base = base ? base + 1 : exe;
        snprintf(defout, sizeof defout, "heaptrace.%s.%d.htr", base, (int)child);
        output = defout;
    }
    ht_coll_opts_t o;
    ht_coll_opts_default(&o);
    o.output = output;
    o.max_size = max_size;
    o.snapshot_interval_ns = (uint64_t)(interval * 1e9);
    if (flush > 0)
        o.seg_age_ns = (uint64_t)(flush * 1e9);
    o.snapshot_every = every;
    o.snapshot_prefix = prefix;
    o.quiet = quiet;
    ht_coll_t *c;
    int rc = ht_coll_create(&c, &o);
    if (rc < 0) {
        // Without a collector the program would wait on a full ring; let it
        // run untraced rather than hang it.
        ht_cli_error("cannot start the collector: %s", strerror(-rc));
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
            ;
        rec_rmdir(rdir);
        free(exe);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    ht_coll_set_main_pid(c, child);

    uint64_t t_start = rec_now();
    bool child_done = false, warned = false, none_left = false;
    int child_status = 0;
    for (;;) {
        int status;
        pid_t w;
        while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
            ht_coll_note_exit(c, w, status);
            if (w == child) {
                child_done = true;
                child_status = status;
            }
        }
        none_left = w < 0 && errno == ECHILD;
        ht_coll_scan_dir(c, rdir);
        long n = ht_coll_poll(c);
        if (!warned && !quiet && ht_coll_nprocs(c) == 0 && !child_done &&
            rec_now() - t_start > REC_ATTACH_WARN_NS) {
            warned = true;
            ht_cli_error("'%s' has not attached to heaptrace after 3 seconds (LD_PRELOAD "
                         "ignored or the shim failed to load?); still waiting for it", prog);
        }
        if (none_left && ht_coll_nactive(c) == 0 && ht_coll_npending(c) == 0)
            break;
        // One process, reaped (we are its subreaper, so nothing it started
        // is left either) and its ring found: ht_coll_destroy drains and
        // finishes it with the status we noted, exactly as the collector's
        // own liveness check would -- but that check runs every 20 ms, and
        // waiting for it was most of what `record` added to a short
        // program's wall time (/bin/true: 12.5 ms against 2.5). With
        // forked or exec'd images the order in which they finish matters
        // (a child inherits its parent's heap at the FORK), so those wait.
        if (none_left && ht_coll_npending(c) == 0 && ht_coll_nprocs(c) == 1)
            break;
        struct timespec ts = {0, (long)ht_coll_pause_ns(c, n)};
        if (ts.tv_nsec)
            sigtimedwait(&chld, NULL, &ts); // at once if a child exited meanwhile
    }
    // Finished first: with segments written every 10 s, the bytes of a
    // short run are all in the last ones.
    ht_coll_finish(c);
    ht_coll_stats_t cs;
    ht_coll_get_stats(c, &cs);
    const char *mp = ht_coll_main_path(c);
    char *main_path = mp ? strdup(mp) : NULL;
    size_t nprocs = ht_coll_nprocs(c);
    ht_coll_destroy(c);
    rec_rmdir(rdir);
    if (keep_fd >= 0)
        close(keep_fd);

    int ret = 1;
    if (child_done)
        ret = WIFEXITED(child_status) ? WEXITSTATUS(child_status)
                                       : 128 + WTERMSIG(child_status);
    if (cs.write_error)
        ht_cli_error("the trace is incomplete: %s", strerror(-cs.write_error));
    if (!quiet) {
        char sz[32];
        rec_human(cs.bytes, sz, sizeof sz);
        if (!main_path) {
            ht_cli_error("no trace written: '%s' never attached to heaptrace", prog);
        } else {
            char extra[160] = "";
            size_t len = 0;
            if (nprocs > 1)
                len += (size_t)snprintf(extra + len, sizeof extra - len,
                                        ", %zu more trace%s for forked processes", nprocs - 1,
                                        nprocs > 2 ? "s" : "");
            if (cs.waits)
                len += (size_t)snprintf(extra + len, sizeof extra - len,
                                        ", %llu waits (%.3f s)", (unsigned long long)cs.waits,
                                        (double)cs.wait_ns / 1e9);
            if (cs.lost)
                snprintf(extra + len, sizeof extra - len, ", %llu events lost",
                         (unsigned long long)cs.lost);
            fprintf(stderr, "heaptrace: wrote %s (%llu events, %s%s)\n", main_path,
                    (unsigned long long)cs.events, sz, extra);
        }
    }
    free(main_path);
    free(exe);
    return ret;
}
