/*
 * heaptrace-cli/snapshot.c -- `heaptrace snapshot PID`: ask a process that
 * `heaptrace record` is recording (or the record process itself, for all
 * of its processes) for a snapshot now. The request is a counter in the
 * ring header; the collector takes one snapshot per increment.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "libheaptrace/ring.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
snap_usage(FILE *f)
{
    fprintf(f, "usage: heaptrace snapshot PID\n\n"
               "Ask a process recorded by 'heaptrace record' for a heap snapshot now.\n"
               "PID is the recorded program (or any process it forked), or the\n"
               "'heaptrace record' process itself: then every process it records takes\n"
               "one. The snapshot lands in the trace (reason \"signal\"), and in P.N when\n"
               "recording with --snapshot-prefix P.\n\n"
               "Options:\n"
               "  -h, --help  this help\n\n"
               "Example:\n"
               "  heaptrace record -o t.htr ./server & sleep 30; heaptrace snapshot $!\n");
}

/* HEAPTRACE_RING_DIR from the process's initial environment (the traced
 * program got it at exec). 1 found, 0 not there, -errno unreadable. */
static int
snap_env_dir(pid_t pid, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0, bcap = 1 << 16;
    char *buf = malloc(bcap + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (n == bcap) {
            char *nb = realloc(buf, bcap * 2 + 1);
            if (!nb)
                break;
            buf = nb;
            bcap *= 2;
        }
        ssize_t k = read(fd, buf + n, bcap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return -e;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = 0;
    static const char key[] = "HEAPTRACE_RING_DIR=";
    int found = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
        if (!strncmp(buf + i, key, sizeof key - 1) && buf[i + sizeof key - 1]) {
            snprintf(out, cap, "%s", buf + i + sizeof key - 1);
            found = 1;
        }
    }
    free(buf);
    return found;
}

/* Whether dir holds at least one *.ring file. */
static bool
snap_has_rings(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool yes = false;
    struct dirent *de;
    while (!yes && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        yes = len > 5 && !strcmp(de->d_name + len - 5, ".ring") && de->d_name[0] != '.';
    }
    closedir(d);
    return yes;
}

/* `heaptrace record` keeps its ring directory open: find it among the
 * process's descriptors (its own environment, changed after exec, does not
 * show in /proc/PID/environ). 1 found, 0 not. */
static int
snap_fd_dir(pid_t pid, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char link[PATH_MAX], fdp[384];
        snprintf(fdp, sizeof fdp, "%s/%s", path, de->d_name);
        ssize_t n = readlink(fdp, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        const char *base = strrchr(link, '/');
        struct stat st;
        if (!base || strncmp(base + 1, "heaptrace.", 10) != 0 || stat(link, &st) < 0 ||
            !S_ISDIR(st.st_mode) || !snap_has_rings(link))
            continue;
        snprintf(out, cap, "%s", link);
        found = 1;
    }
    closedir(d);
    return found;
}

/* Bump snapshot_req in every live ring of dir that belongs to pid (or to
 * anyone when pid is 0). Returns how many. */
static int
snap_request(const char *dir, pid_t pid)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || de->d_name[0] == '.' || strcmp(de->d_name + len - 5, ".ring") != 0)
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        ht_ring_t r;
        int rc = ht_ring_map(&r, fd);
        close(fd);
        if (rc < 0)
            continue;
        uint32_t state = atomic_load(&r.hdr->state);
        if (state == HT_RING_STATE_LIVE && (pid == 0 || r.hdr->pid == pid)) {
            atomic_fetch_add(&r.hdr->snapshot_req, 1);
            n++;
        }
        ht_ring_unmap(&r);
    }
    closedir(d);
    return n;
}

int
cmd_snapshot(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            snap_usage(stdout);
            return 0;
        default:
            return ht_cli_bad_option("snapshot", ch, argv, longopts, snap_usage);
        }
    }
    if (optind != argc - 1)
        return ht_cli_usage_error("snapshot", snap_usage, "give exactly one PID");
    char *end;
    errno = 0;
    long v = strtol(argv[optind], &end, 10);
    if (errno || *end || end == argv[optind] || v <= 0 || v > INT_MAX)
        return ht_cli_usage_error("snapshot", snap_usage, "'%s' is not a process id",
                                  argv[optind]);
    pid_t pid = (pid_t)v;
    if (kill(pid, 0) < 0 && errno == ESRCH) {
        ht_cli_error("no process %d", (int)pid);
        return 1;
    }
    char dir[PATH_MAX];
    int n = 0;
    int rc = snap_env_dir(pid, dir, sizeof dir);
    if (rc > 0)
        n = snap_request(dir, pid);
    if (n == 0 && snap_fd_dir(pid, dir, sizeof dir) > 0)
        n = snap_request(dir, 0); // the record process: all of its rings
    if (n == 0) {
        // Not ours to inspect (another user's): it cannot be a recording
        // we could reach either; say why we could not look.
        if (rc < 0 && rc != -ENOENT)
            ht_cli_error("process %d is not being recorded by heaptrace (cannot inspect it: %s)",
                         (int)pid, strerror(-rc));
        else
            ht_cli_error("process %d is not being recorded by heaptrace", (int)pid);
        return 1;
    }
    printf("heaptrace: snapshot requested from %d process%s\n", n, n == 1 ? "" : "es");
    return 0;
}
