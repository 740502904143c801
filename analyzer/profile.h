/*
 * analyzer/profile.h -- a heap profile: stacks x metrics, with symbolized
 * locations. Built by the analyzer (replay + symbols), read by every
 * writer (report, collapsed, pprof, svg, diff). A writer never sees trace
 * records. Prefix ht_prof_.
 *
 * Values are doubles: in sampled mode they are unbiased estimates (sums of
 * Horvitz-Thompson weights); in --all mode they are exact integers.
 */
#ifndef HT_ANALYZER_PROFILE_H
#define HT_ANALYZER_PROFILE_H

#include <stddef.h>
#include <stdint.h>

/* X(enum suffix, name used on the command line and in pprof, unit) */
#define HT_PROF_METRICS(X)                          \
    X(ALLOC_OBJECTS, "alloc_objects", "count")      \
    X(ALLOC_SPACE, "alloc_space", "bytes")          \
    X(INUSE_OBJECTS, "inuse_objects", "count")      \
    X(INUSE_SPACE, "inuse_space", "bytes")          \
    X(LEAKED_OBJECTS, "leaked_objects", "count")    \
    X(LEAKED_SPACE, "leaked", "bytes")              \
    X(PEAK_OBJECTS, "peak_objects", "count")        \
    X(PEAK_SPACE, "peak", "bytes")                  \
    X(TEMP_OBJECTS, "temporary", "count")           \
    X(TEMP_SPACE, "temporary_space", "bytes")

typedef enum ht_metric_e {
#define HT_PROF_ENUM(e, name, unit) HT_M_##e,
    HT_PROF_METRICS(HT_PROF_ENUM)
#undef HT_PROF_ENUM
    HT_M_COUNT
} ht_metric_t;

/* Metric by command-line name ("inuse_space", "leaked", ...); -1 if none. */
int ht_prof_metric_parse(const char *name);
const char *ht_prof_metric_name(ht_metric_t m);
const char *ht_prof_metric_unit(ht_metric_t m);

/* One source line of a location. Strings are owned by the profile. */
typedef struct ht_line_s {
    const char *function; /* demangled; never NULL ("??" or "module+0xoff") */
    const char *file;     /* NULL when unknown */
    uint32_t line;        /* 0 when unknown */
} ht_line_t;

typedef struct ht_mapping_s {
    uint64_t start, limit, offset; /* runtime addresses and file offset */
    const char *path;
    const char *build_id; /* lowercase hex, "" when unknown */
    int symbolized;       /* function names were found */
} ht_mapping_t;

/* One return address. lines[] follows pprof: lines[0] is the innermost
 * (inlined) function, lines[nlines-1] the function the code really lives
 * in. */
typedef struct ht_location_s {
    uint64_t address;     /* runtime address of the call site */
    uint32_t mapping;     /* index into maps + 1; 0 when none */
    uint32_t nlines;
    ht_line_t *lines;
} ht_location_t;

typedef struct ht_pstack_s {
    uint32_t nlocs;
    uint32_t *locs; /* indices into profile locs, leaf (the allocator's caller) first */
    uint64_t tid;   /* thread that made the allocations, 0 when merged */
    double v[HT_M_COUNT];
} ht_pstack_t;

typedef struct ht_pthread_s {
    uint64_t tid;
    const char *name;
    double v[HT_M_COUNT];
    uint64_t exact_allocs, exact_alloc_bytes, exact_frees, exact_free_bytes;
} ht_pthread_t;

typedef struct ht_profile_s {
    ht_mapping_t *maps;
    uint32_t nmaps;
    ht_location_t *locs;
    uint32_t nlocs;
    ht_pstack_t *stacks;
    uint32_t nstacks;
    ht_pthread_t *threads;
    uint32_t nthreads;

    int sampled;          /* 0: --all, every figure exact */
    uint64_t sample_rate; /* mean bytes between samples when sampled */
    uint64_t pid;
    const char *exe, *argv;
    /* The last image when the pid exec'd (a wrapper script, env, pyenv's
     * shims...), NULL when it never did. */
    const char *last_exe;

    /* whole-process figures */
    double v[HT_M_COUNT];          /* sums over stacks */
    uint64_t exact_allocs, exact_alloc_bytes, exact_frees, exact_free_bytes;
    double peak_bytes;             /* largest estimated live heap */
    uint64_t peak_ns;              /* when, ns since start */
    uint64_t start_ns, end_ns;     /* window the data covers (monotonic) */
    uint64_t start_realtime_ns;    /* wall clock of start_ns, 0 if unknown */
    int exited;                    /* the trace holds the process's exit */
    int exit_how, exit_code;
    int counts_cut;                /* the exact counts stop short of the exit (killed) */
    uint64_t rss, heap_free;       /* last memory statistics, 0 if none */

    /* How complete the data is (filled by ht_an_profile_load; 0 in
     * profiles built otherwise). Reports print them; writers may ignore. */
    int head_lost;                 /* the oldest part of the trace is gone (ring wrapped) */
    int snapshot;                  /* this profile is snapshot N: N; else -1 */
    uint64_t nsnapshots;           /* snapshots seen in the window */
    uint64_t segs_lost;            /* segments missing, damaged or cut short */
    uint64_t lost_events;          /* events the recorder dropped (ring full or starved) */
    uint64_t unknown_frees;        /* frees of addresses not live (out of order, lost) */
    uint64_t bad_sites;            /* events of sites the trace never defined (damaged data) */
    uint64_t unknown_stacks;       /* allocations whose stack id was never defined */

    void *arena; /* owner of all strings and arrays above */
} ht_profile_t;

/* Standard error of a sampled estimate of `bytes` bytes: about
 * sqrt(bytes * rate); 0 for exact profiles. */
double ht_prof_stderr_bytes(const ht_profile_t *p, double bytes);

void ht_prof_destroy(ht_profile_t *p);

#endif /* HT_ANALYZER_PROFILE_H */
