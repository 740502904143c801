/*
 * analyzer/analyze.h -- from a trace (or one of its snapshots) to a
 * profile. The one entry point every analysis subcommand uses. Prefix
 * ht_an_.
 *
 * A SPEC names what to analyze:
 *   t.htr        the whole trace: inuse = live at the end, leaked = live at
 *                exit (when the trace holds the exit), peak = live at the
 *                moment the estimated heap was largest
 *   t.htr@N      snapshot N inside t.htr (inuse = live at that snapshot)
 *   snapfile     a snapshot file written by --snapshot-prefix
 */
#ifndef HT_ANALYZER_ANALYZE_H
#define HT_ANALYZER_ANALYZE_H

#include "analyzer/profile.h"

typedef struct ht_an_opts_s {
    int symbolize;    /* resolve function, file:line (default 1) */
    int per_thread;   /* keep stacks of different threads apart */
    int progress;     /* progress on stderr (the CLI sets it when stderr is a tty) */
    const char *debug_dir; /* extra debug-file root, NULL for /usr/lib/debug */
} ht_an_opts_t;

void ht_an_opts_default(ht_an_opts_t *o);

/* Read, replay and symbolize SPEC. Returns 0 with *out set, or -errno /
 * -EBADMSG with one line (no newline) in err. Warnings (lost segments,
 * missing binaries) go to stderr, once each. */
int ht_an_profile_load(const char *spec, const ht_an_opts_t *o, ht_profile_t **out, char *err,
                       size_t errlen);

/* One snapshot of a trace, as `heaptrace snapshots` lists it. */
typedef struct ht_an_snap_s {
    uint64_t number;
    uint64_t reason;       /* HT_TF_SNAP_* */
    double seconds;        /* since the recording started */
    double live_bytes, live_objects; /* estimated live heap */
    uint64_t rss, heap_free;          /* last MEMSTAT before it, 0 if none */
} ht_an_snap_t;

/* The snapshots of trace `path`, in order. *out is malloc'ed (free it);
 * *start_s: seconds since the start where the trace's data begins (not 0
 * when a ring wrapped). Returns 0 or -errno with one line in err. */
int ht_an_snapshots(const char *path, ht_an_snap_t **out, size_t *n, double *start_s, char *err,
                    size_t errlen);
/* "interval", "bytes", "exit", "signal", "api", "segment" or "unknown". */
const char *ht_an_snap_reason(uint64_t reason);

#endif /* HT_ANALYZER_ANALYZE_H */
