/*
 * libheaptrace/opts.c -- options table (contract: opts.h).
 */
#include "libheaptrace/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "formats/trace.h"
#include "libheaptrace/log.h"

ht_opts_t ht_opt = {
    .sample_rate = HT_OPTS_DEFAULT_SAMPLE_RATE,
    .max_depth = HT_OPTS_DEFAULT_MAX_DEPTH,
    .tsc = 1,
};

int
ht_opts_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == s)
        return -EINVAL;
    unsigned shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    default: break;
    }
    if (*p == 'i' || *p == 'B' || *p == 'b') // tolerate "KiB", "KB"
        p++;
    if (*p == 'B')
        p++;
    if (*p)
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = v << shift;
    return 0;
}

typedef enum opts_kind_e { OPTS_SIZE, OPTS_UINT, OPTS_BOOL, OPTS_PATH } opts_kind_t;

typedef struct opts_row_s {
    const char *name;
    opts_kind_t kind;
    void *dst;
    uint64_t min, max; /* numeric bounds, inclusive */
} opts_row_t;

static const opts_row_t opts_table[] = {
    {"HEAPTRACE_SAMPLE_RATE", OPTS_SIZE, &ht_opt.sample_rate, 0, HT_OPTS_MAX_SAMPLE_RATE},
    {"HEAPTRACE_MAX_DEPTH", OPTS_UINT, &ht_opt.max_depth, 1, HT_TF_MAX_FRAMES},
    {"HEAPTRACE_LOSSY", OPTS_BOOL, &ht_opt.lossy, 0, 1},
    {"HEAPTRACE_VERBOSE", OPTS_BOOL, &ht_opt.verbose, 0, 1},
    {"HEAPTRACE_LIVE_LG", OPTS_UINT, &ht_opt.live_lg, 10, 30},
    {"HEAPTRACE_TSC", OPTS_BOOL, &ht_opt.tsc, 0, 1},
    {"HEAPTRACE_NO_CHILDREN", OPTS_BOOL, &ht_opt.no_children, 0, 1},
    {"HEAPTRACE_RING_DIR", OPTS_PATH, ht_opt.ring_dir, 0, 0},
    {"HEAPTRACE_OUTPUT", OPTS_PATH, ht_opt.output, 0, 0},
};

int
ht_opts_init(void)
{
    // In a setuid/setgid program the environment is the attacker's: do not
    // even look at it (secure_getenv would return NULL anyway, but a ring
    // dir or output file chosen by someone else is not ours to create).
    if (getauxval(AT_SECURE))
        return -EPERM;
    for (size_t i = 0; i < sizeof opts_table / sizeof opts_table[0]; i++) {
        const opts_row_t *o = &opts_table[i];
        const char *v = secure_getenv(o->name);
        if (!v)
            continue;
        uint64_t x = 0;
        int ok = 1;
        switch (o->kind) {
        case OPTS_SIZE:
        case OPTS_UINT:
            ok = ht_opts_parse_size(v, &x) == 0 && x >= o->min && x <= o->max &&
                 (o->kind == OPTS_SIZE || strspn(v, "0123456789") == strlen(v));
            if (ok && o->kind == OPTS_SIZE)
                *(uint64_t *)o->dst = x;
            else if (ok)
                *(uint32_t *)o->dst = (uint32_t)x;
            break;
        case OPTS_BOOL:
            ok = (v[0] == '0' || v[0] == '1') && v[1] == '\0';
            if (ok)
                *(int *)o->dst = v[0] == '1';
            break;
        case OPTS_PATH: {
            size_t n = strlen(v);
            ok = n < HT_OPTS_PATH_MAX;
            if (ok)
                memcpy(o->dst, v, n + 1);
            break;
        }
        }
        if (!ok)
            ht_log("ignoring bad value %s=%s", o->name, v);
    }
    if (ht_opt.verbose) {
        ht_log_set_verbose(1);
        ht_log("options: sample_rate=%llu max_depth=%u lossy=%d ring_dir=%s output=%s",
               (unsigned long long)ht_opt.sample_rate, ht_opt.max_depth, ht_opt.lossy,
               ht_opt.ring_dir, ht_opt.output);
    }
    return 0;
}
