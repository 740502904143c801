/*
 * libheaptrace/opts.h -- the shim's options (prefix ht_opts_), one table
 * of HEAPTRACE_* environment variables read once at init with
 * secure_getenv. The hot path reads the plain global ht_opt.
 */
#ifndef HT_LIBHEAPTRACE_OPTS_H
#define HT_LIBHEAPTRACE_OPTS_H

#include <stdint.h>

#define HT_OPTS_PATH_MAX 4096
#define HT_OPTS_DEFAULT_SAMPLE_RATE 524288u
#define HT_OPTS_DEFAULT_MAX_DEPTH 256u
/* Largest accepted sample rate: keeps weights (1/p in 16.16 fixed point)
 * well inside 64 bits. */
#define HT_OPTS_MAX_SAMPLE_RATE (1ull << 40)

typedef struct ht_opts_s {
    uint64_t sample_rate; /* HEAPTRACE_SAMPLE_RATE: mean bytes; 0 = every allocation */
    uint32_t max_depth;   /* HEAPTRACE_MAX_DEPTH: frames kept, 1..HT_TF_MAX_FRAMES */
    int lossy;            /* HEAPTRACE_LOSSY=1: drop instead of waiting */
    int verbose;          /* HEAPTRACE_VERBOSE=1: chatty diagnostics */
    uint32_t live_lg;     /* HEAPTRACE_LIVE_LG: log2 slots of the live table; 0 = auto */
    int tsc;              /* HEAPTRACE_TSC=0: event times from clock_gettime only */
    int no_children;      /* HEAPTRACE_NO_CHILDREN=1: the first process and its execs only */
    char ring_dir[HT_OPTS_PATH_MAX]; /* HEAPTRACE_RING_DIR, "" if unset */
    char output[HT_OPTS_PATH_MAX];   /* HEAPTRACE_OUTPUT, "" if unset */
} ht_opts_t;

extern ht_opts_t ht_opt;

/* Fill ht_opt from the environment (defaults for what is unset; a bad
 * value warns once and keeps the default). Returns 0, or -EPERM in a
 * setuid/setgid program (AT_SECURE), where the shim must do nothing.
 * [init] [no-alloc] */
int ht_opts_init(void);

/* Parse "123", "512K", "4M", "1G" (binary multiples). 0 or -EINVAL.
 * [no-alloc] */
int ht_opts_parse_size(const char *s, uint64_t *out);

#endif /* HT_LIBHEAPTRACE_OPTS_H */
