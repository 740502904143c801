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

#endif /* HT_ANALYZER_ANALYZE_H */
