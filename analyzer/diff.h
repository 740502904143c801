/*
 * analyzer/diff.h -- what changed between two profiles (two snapshots, or
 * two traces). Prefix ht_diff_.
 *
 * Stacks are matched by their symbolized frames -- the sequence of
 * (function, file, line) of every frame, inlined ones included -- not by
 * address, so two runs of a relocated (ASLR) binary, or two snapshots of
 * one process, line up. Threads are merged.
 */
#ifndef HT_ANALYZER_DIFF_H
#define HT_ANALYZER_DIFF_H

#include "analyzer/profile.h"

#include <stdio.h>

/*
 * A profile of differences: every metric is NEW - BASE (may be negative),
 * one stack per matched frame sequence (stacks equal on both sides are
 * dropped). Locations and mappings are copied from NEW where the stack
 * exists there, else from BASE. Header: NEW's program; sampled if either
 * side is; start_ns/end_ns = BASE's end and NEW's end; exact_* = NEW's
 * minus BASE's where that is >= 0, else 0; peak_bytes = NEW's - BASE's.
 * For writers: pprof -o FILE of a diff, differential flame graphs.
 * Returns 0 and *out (free with ht_prof_destroy), or -ENOMEM.
 */
int ht_diff_profile(const ht_profile_t *base, const ht_profile_t *cur, ht_profile_t **out);

typedef struct ht_diff_opts_s {
    int top;          /* rows in the growing and shrinking tables (default 10) */
    int json;
    ht_metric_t metric; /* what to compare; the objects/bytes companion is shown too */
} ht_diff_opts_t;

/* `heaptrace diff`: totals then growing sites (largest growth first) and
 * shrinking ones, with +bytes, +objects, growth per hour over the time
 * between the two (their end times), error bars in sampled mode, file:line
 * and full stacks. "no change" when nothing differs. Returns 0, -ENOMEM or
 * -EIO. */
int ht_diff_write(FILE *f, const ht_profile_t *base, const char *base_spec,
                  const ht_profile_t *cur, const char *cur_spec, const ht_diff_opts_t *o);

#endif /* HT_ANALYZER_DIFF_H */
