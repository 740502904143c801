/*
 * libheaptrace/collector.h -- drains rings and writes trace files (prefix
 * ht_coll_). Runs in `heaptrace record` (many rings, one per process image,
 * found in a ring directory) or as a thread of the traced program when the
 * shim is preloaded by hand (one ring, ht_coll_thread_start).
 *
 * Per traced process (pid) the collector keeps what a keyframe needs --
 * modules, threads, per-thread TOTALS, the live set of recorded
 * allocations, the stacks they use -- and writes self-contained segments:
 * each starts with a keyframe, then the events of every thread merged into
 * one stream in time order, allocations numbered and frees naming the
 * allocation they free (docs/FORMAT.md section 2; the ordering rule is
 * explained in collector.c). A segment is closed every
 * seg_raw_max bytes of events or seg_age_ns with events, at every
 * snapshot, at exec and at the end.
 *
 * Stack ids in the files are the collector's own: stacks are interned by
 * content across all rings, so an allocation a forked child inherited
 * keeps its stack even though the child has a ring (and table) of its own.
 *
 * No stdio here (this file is linked into the shim): messages go to fd 2
 * with write(2). Not thread-safe: one thread drives a collector.
 */
#ifndef HT_LIBHEAPTRACE_COLLECTOR_H
#define HT_LIBHEAPTRACE_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "formats/trace.h"
#include "libheaptrace/ring.h"

typedef struct ht_coll_opts_s {
    const char *output;          /* trace of the first process; others OUTPUT.PID */
    uint64_t max_size;           /* per trace file; 0 unbounded (formats/tracefile.h) */
    uint64_t snapshot_interval_ns; /* 0: none */
    uint64_t snapshot_every;     /* bytes of estimated allocation; 0: none */
    const char *snapshot_prefix; /* NULL: no snapshot files */
    uint64_t seg_raw_max;        /* close a segment at this many bytes of events */
    uint64_t seg_age_ns;         /* ... or when its first event is this old */
    bool quiet;                  /* no warnings on fd 2 */
} ht_coll_opts_t;

typedef struct ht_coll_stats_s {
    uint64_t events;     /* records taken from rings */
    uint64_t bytes;      /* bytes written to trace files */
    uint64_t segments;
    uint64_t files;      /* trace files created */
    uint64_t snapshots;
    uint64_t waits, wait_ns, lost; /* from the rings' counters */
    uint64_t bad_records; /* malformed ring data skipped */
    int write_error;     /* first -errno of any trace file, 0 if none */
} ht_coll_stats_t;

typedef struct ht_coll_s ht_coll_t;

/* Defaults: no output, unbounded, no snapshots, 6 MiB / 2 s segments. */
void ht_coll_opts_default(ht_coll_opts_t *o);
/* Strings in *o are copied. Returns 0 or -errno. */
int ht_coll_create(ht_coll_t **out, const ht_coll_opts_t *o);
/* Finish every process still open (EXIT how unknown unless noted) and
 * free everything. Safe on NULL. */
/* Drain every ring and finish every trace still open (their figures are
 * then final in ht_coll_get_stats). ht_coll_destroy does it too. */
void ht_coll_finish(ht_coll_t *c);
void ht_coll_destroy(ht_coll_t *c);

/* The pid whose trace is opts.output (record's child). Before this is set
 * (or if it never is), the first process attached gets it. */
void ht_coll_set_main_pid(ht_coll_t *c, pid_t pid);

/* Attach every new *.ring file of `dir` (a ring still being formatted is
 * retried on later calls). Returns the number attached, or -errno when the
 * directory cannot be read. */
int ht_coll_scan_dir(ht_coll_t *c, const char *dir);

/* One round: consume every ring, route records to their process, apply
 * snapshot requests and timers, notice processes that are gone (final
 * consume, EXIT, exit snapshot, close). Returns records consumed. */
long ht_coll_poll(ht_coll_t *c);

/* A waitpid() status for pid (record reaps its children and orphans): used
 * in that process's EXIT record. May come before or after its ring. */
void ht_coll_note_exit(ht_coll_t *c, pid_t pid, int wstatus);

/* Processes attached and not finished yet (waiting forks included). */
/* How long to wait before the next ht_coll_poll, after one that delivered
 * `delivered` records: none while a ring is backed up. */
uint64_t ht_coll_pause_ns(const ht_coll_t *c, long delivered);
size_t ht_coll_nactive(const ht_coll_t *c);
/* Rings seen in the directory that are not attached yet (still being
 * formatted by the program). */
size_t ht_coll_npending(const ht_coll_t *c);
/* Processes (ever) attached. */
size_t ht_coll_nprocs(const ht_coll_t *c);
void ht_coll_get_stats(const ht_coll_t *c, ht_coll_stats_t *st);
/* Path of the main trace once it exists, else NULL. */
const char *ht_coll_main_path(const ht_coll_t *c);

/* ---- in-process mode (shim preloaded with HEAPTRACE_OUTPUT) ---- */

/* Start a collector thread for `ring` (already mapped, the calling
 * process's own) writing `output_path`. Options from the environment:
 * HEAPTRACE_MAX_SIZE, HEAPTRACE_SNAPSHOT_INTERVAL (s), HEAPTRACE_SNAPSHOT_
 * EVERY, HEAPTRACE_SNAPSHOT_PREFIX (sizes take K/M/G). After fork, a call in
 * the child abandons the parent's collector state (its thread does not
 * exist there) and starts afresh. Returns 0 or -errno. */
int ht_coll_thread_start(ht_ring_t *ring, const char *output_path);
/* Drain the ring, write EXIT and the exit snapshot, close. Idempotent. */
void ht_coll_thread_stop(void);

/* ---- test seam: feed records without a ring ---- */

typedef struct ht_coll_src_s ht_coll_src_t;
/* Resolves a source's stack id to frames (leaf first), NULL if unknown. */
typedef const uint64_t *(*ht_coll_stack_fn)(void *ctx, uint64_t id, uint32_t *n);

typedef struct ht_coll_src_info_s {
    pid_t pid, ppid;
    uint32_t flags; /* HT_TF_PROC_* */
    uint32_t max_depth;
    uint64_t sample_rate;
    /* The image (argv NUL-separated); empty: read from /proc/PID. */
    const char *exe, *argv;
    uint32_t exe_len, argv_len;
} ht_coll_src_info_t;

/* A process image whose records come from ht_coll_src_feed. A source with
 * the pid of an open process is an exec of it (same trace file). */
int ht_coll_src_open(ht_coll_t *c, const ht_coll_src_info_t *info, ht_coll_stack_fn fn,
                     void *ctx, ht_coll_src_t **out);
/* Queue one record as if consumed from a ring (rec->tid set, ts absolute);
 * nothing is written until ht_coll_src_process. 0. */
int ht_coll_src_pend(ht_coll_t *c, ht_coll_src_t *s, const ht_tf_rec_t *rec);
/* Write the queued records with ts < until, in time order (stable), as a
 * poll does with its horizon; UINT64_MAX: all of them. */
void ht_coll_src_process(ht_coll_t *c, ht_coll_src_t *s, uint64_t until);
/* ht_coll_src_pend, then ht_coll_src_process(UINT64_MAX). 0. */
int ht_coll_src_feed(ht_coll_t *c, ht_coll_src_t *s, const ht_tf_rec_t *rec);
/* The process is gone: finish its trace (EXIT from ht_coll_note_exit if
 * given, else unknown). The source is freed. */
void ht_coll_src_close(ht_coll_t *c, ht_coll_src_t *s);

/* Parse "123", "64K", "8M", "2G" (powers of 1024). 0 or -EINVAL. */
int ht_coll_parse_size(const char *s, uint64_t *out);

#endif /* HT_LIBHEAPTRACE_COLLECTOR_H */
