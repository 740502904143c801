/*
 * formats/pprof.c -- profile.proto writer; see pprof.h.
 */
#include "formats/pprof.h"

#include "formats/collapsed.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* Field numbers of profile.proto. */
enum {
    PB_PROFILE_SAMPLE_TYPE = 1,
    PB_PROFILE_SAMPLE = 2,
    PB_PROFILE_MAPPING = 3,
    PB_PROFILE_LOCATION = 4,
    PB_PROFILE_FUNCTION = 5,
    PB_PROFILE_STRING_TABLE = 6,
    PB_PROFILE_TIME_NANOS = 9,
    PB_PROFILE_DURATION_NANOS = 10,
    PB_PROFILE_PERIOD_TYPE = 11,
    PB_PROFILE_PERIOD = 12,
    PB_PROFILE_COMMENT = 13,
    PB_PROFILE_DEFAULT_SAMPLE_TYPE = 14,

    PB_VALUETYPE_TYPE = 1,
    PB_VALUETYPE_UNIT = 2,

    PB_SAMPLE_LOCATION_ID = 1,
    PB_SAMPLE_VALUE = 2,
    PB_SAMPLE_LABEL = 3,

    PB_LABEL_KEY = 1,
    PB_LABEL_NUM = 3,

    PB_MAPPING_ID = 1,
    PB_MAPPING_MEMORY_START = 2,
    PB_MAPPING_MEMORY_LIMIT = 3,
    PB_MAPPING_FILE_OFFSET = 4,
    PB_MAPPING_FILENAME = 5,
    PB_MAPPING_BUILD_ID = 6,
    PB_MAPPING_HAS_FUNCTIONS = 7,
    PB_MAPPING_HAS_FILENAMES = 8,
    PB_MAPPING_HAS_LINE_NUMBERS = 9,
    PB_MAPPING_HAS_INLINE_FRAMES = 10,

    PB_LOCATION_ID = 1,
    PB_LOCATION_MAPPING_ID = 2,
    PB_LOCATION_ADDRESS = 3,
    PB_LOCATION_LINE = 4,

    PB_LINE_FUNCTION_ID = 1,
    PB_LINE_LINE = 2,

    PB_FUNCTION_ID = 1,
    PB_FUNCTION_NAME = 2,
    PB_FUNCTION_SYSTEM_NAME = 3,
    PB_FUNCTION_FILENAME = 4,
};

enum { PB_WT_VARINT = 0, PB_WT_LEN = 2 };

/* The four sample types, in the order they are written. */
static const ht_metric_t pprof_types[4] = {HT_M_ALLOC_OBJECTS, HT_M_ALLOC_SPACE,
                                           HT_M_INUSE_OBJECTS, HT_M_INUSE_SPACE};

// Names and units straight from the metric table, so a writer links
// without the analyzer's profile.c.
static const char *const pprof_metric_names[] = {
#define PPROF_NAME(e, name, unit) name,
    HT_PROF_METRICS(PPROF_NAME)
#undef PPROF_NAME
};
static const char *const pprof_metric_units[] = {
#define PPROF_UNIT(e, name, unit) unit,
    HT_PROF_METRICS(PPROF_UNIT)
#undef PPROF_UNIT
};

/* ---- protobuf encoding into a growable buffer ---- */

typedef struct pb_buf_s {
    uint8_t *b;
    size_t n, cap;
    int err; // sticky: the first failure makes every later put a no-op
} pb_buf_t;

static void
pb_reserve(pb_buf_t *w, size_t more)
{
    if (w->err || w->n + more <= w->cap)
        return;
    size_t nc = w->cap ? w->cap : 4096;
    while (nc < w->n + more)
        nc *= 2;
    uint8_t *nb = realloc(w->b, nc);
    if (!nb) {
        w->err = -ENOMEM;
        return;
    }
    w->b = nb;
    w->cap = nc;
}

static void
pb_bytes(pb_buf_t *w, const void *p, size_t n)
{
    pb_reserve(w, n);
    if (w->err)
        return;
    if (n)
        memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void
pb_varint(pb_buf_t *w, uint64_t v)
{
    uint8_t t[10];
    size_t k = 0;
    while (v >= 0x80) {
        t[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[k++] = (uint8_t)v;
    pb_bytes(w, t, k);
}

static void
pb_key(pb_buf_t *w, unsigned field, unsigned wt)
{
    pb_varint(w, (uint64_t)field << 3 | wt);
}

/* A varint field; proto3 leaves zero values out. int64 values go in as
 * their two's complement (ten bytes when negative), as protobuf wants. */
static void
pb_uint(pb_buf_t *w, unsigned field, uint64_t v)
{
    if (!v)
        return;
    pb_key(w, field, PB_WT_VARINT);
    pb_varint(w, v);
}

static void
pb_int(pb_buf_t *w, unsigned field, int64_t v)
{
    pb_uint(w, field, (uint64_t)v);
}

static void
pb_bool(pb_buf_t *w, unsigned field, bool v)
{
    pb_uint(w, field, v ? 1 : 0);
}

/* A length-delimited field holding sub's bytes; resets sub for reuse. */
static void
pb_msg(pb_buf_t *w, unsigned field, pb_buf_t *sub)
{
    if (sub->err && !w->err)
        w->err = sub->err;
    pb_key(w, field, PB_WT_LEN);
    pb_varint(w, sub->n);
    pb_bytes(w, sub->b, sub->n);
    sub->n = 0;
}

static void
pb_string(pb_buf_t *w, unsigned field, const char *s, size_t n)
{
    pb_key(w, field, PB_WT_LEN);
    pb_varint(w, n);
    pb_bytes(w, s, n);
}

/* ---- interning ---- */

// Open addressing over 64-bit keys; values are ids or indices. Slot value
// 0 means empty, so stored values are index + 1.
typedef struct pprof_map_s {
    uint64_t *keys;
    uint32_t *vals;
    size_t nslots, n;
} pprof_map_t;

static uint64_t
pprof_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Find the slot of key, or the empty slot where it would go. */
static size_t
pprof_map_slot(const pprof_map_t *m, uint64_t key)
{
    size_t h = pprof_mix(key) & (m->nslots - 1);
    while (m->vals[h] && m->keys[h] != key)
        h = (h + 1) & (m->nslots - 1);
    return h;
}

static int
pprof_map_grow(pprof_map_t *m)
{
    size_t ns = m->nslots ? m->nslots * 2 : 1024;
    uint64_t *nk = calloc(ns, sizeof *nk);
    uint32_t *nv = calloc(ns, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return -ENOMEM;
    }
    pprof_map_t nm = {nk, nv, ns, m->n};
    for (size_t i = 0; i < m->nslots; i++) {
        if (!m->vals[i])
            continue;
        size_t h = pprof_map_slot(&nm, m->keys[i]);
        nk[h] = m->keys[i];
        nv[h] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    *m = nm;
    return 0;
}

static void
pprof_map_free(pprof_map_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

typedef struct pprof_enc_s {
    const ht_profile_t *p;
    pb_buf_t out, sub, sub2;
    // String table: strs[i] is string i; a string's key in smap is its
    // hash, collisions chained by probing on the text.
    const char **strs;
    size_t nstrs, capstrs;
    uint32_t *shash_slots; // index + 1 into strs
    size_t nshash;
    pprof_map_t funcs;     // (name idx << 32 | file idx) -> function id
    uint64_t nfuncs;
    uint8_t *loc_used;     // per profile location: referenced by a kept sample
    bool unknown_used;     // a sample uses the "[unknown]" location nlocs + 1
    char comments[6][512];
    int ncomments;
} pprof_enc_t;

static uint64_t
pprof_str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int
pprof_str_grow(pprof_enc_t *e)
{
    size_t ns = e->nshash ? e->nshash * 2 : 1024;
    uint32_t *sl = calloc(ns, sizeof *sl);
    if (!sl)
        return -ENOMEM;
    for (size_t i = 0; i < e->nstrs; i++) {
        size_t h = pprof_str_hash(e->strs[i]) & (ns - 1);
        while (sl[h])
            h = (h + 1) & (ns - 1);
        sl[h] = (uint32_t)(i + 1);
    }
    free(e->shash_slots);
    e->shash_slots = sl;
    e->nshash = ns;
    return 0;
}

/* The string table index of s (NULL is ""); interns it on first use. The
 * strings themselves are the profile's (or static) and outlive the
 * encoder, so only pointers are kept. On failure sets the sticky error and
 * returns 0 (""), which keeps the message well-formed until it is thrown
 * away. */
static int64_t
pprof_str(pprof_enc_t *e, const char *s)
{
    if (!s)
        s = "";
    if (e->out.err)
        return 0;
    if ((e->nstrs + 1) * 2 > e->nshash && pprof_str_grow(e)) {
        e->out.err = -ENOMEM;
        return 0;
    }
    size_t h = pprof_str_hash(s) & (e->nshash - 1);
    while (e->shash_slots[h]) {
        uint32_t i = e->shash_slots[h] - 1;
        if (!strcmp(e->strs[i], s))
            return i;
        h = (h + 1) & (e->nshash - 1);
    }
    if (e->nstrs == e->capstrs) {
        size_t nc = e->capstrs ? e->capstrs * 2 : 256;
        const char **ns = realloc(e->strs, nc * sizeof *ns);
        if (!ns) {
            e->out.err = -ENOMEM;
            return 0;
        }
        e->strs = ns;
        e->capstrs = nc;
    }
    e->strs[e->nstrs] = s;
    e->shash_slots[h] = (uint32_t)(e->nstrs + 1);
    return (int64_t)e->nstrs++;
}

/* The id of the Function (name, file), writing it on first use. */
static uint64_t
pprof_func(pprof_enc_t *e, const ht_line_t *l)
{
    int64_t name = pprof_str(e, l->function && l->function[0] ? l->function : "??");
    int64_t file = pprof_str(e, l->file);
    uint64_t key = (uint64_t)name << 32 | (uint64_t)file;
    if (e->out.err)
        return 0;
    if ((e->funcs.n + 1) * 2 > e->funcs.nslots && pprof_map_grow(&e->funcs)) {
        e->out.err = -ENOMEM;
        return 0;
    }
    size_t h = pprof_map_slot(&e->funcs, key);
    if (e->funcs.vals[h])
        return e->funcs.vals[h];
    uint64_t id = ++e->nfuncs;
    e->funcs.keys[h] = key;
    e->funcs.vals[h] = (uint32_t)id;
    e->funcs.n++;
    pb_uint(&e->sub2, PB_FUNCTION_ID, id);
    pb_int(&e->sub2, PB_FUNCTION_NAME, name);
    // We only have demangled names; system_name repeats the name so tools
    // that prefer it show the same text.
    pb_int(&e->sub2, PB_FUNCTION_SYSTEM_NAME, name);
    pb_int(&e->sub2, PB_FUNCTION_FILENAME, file);
    pb_msg(&e->out, PB_PROFILE_FUNCTION, &e->sub2);
    return id;
}

static void
pprof_value_type(pprof_enc_t *e, unsigned field, const char *type, const char *unit)
{
    pb_int(&e->sub, PB_VALUETYPE_TYPE, pprof_str(e, type));
    pb_int(&e->sub, PB_VALUETYPE_UNIT, pprof_str(e, unit));
    pb_msg(&e->out, field, &e->sub);
}

static bool
pprof_loc_is_alloc(const ht_location_t *loc)
{
    if (!loc->nlines)
        return false;
    for (uint32_t i = 0; i < loc->nlines; i++)
        if (!ht_collapsed_is_alloc_fn(loc->lines[i].function))
            return false;
    return true;
}

static int64_t
pprof_round(double v)
{
    if (isnan(v))
        return 0;
    if (v >= 9.2e18)
        return INT64_MAX;
    if (v <= -9.2e18)
        return INT64_MIN;
    return (int64_t)llround(v);
}

static void
pprof_samples(pprof_enc_t *e)
{
    const ht_profile_t *p = e->p;
    for (uint32_t i = 0; i < p->nstacks && !e->out.err; i++) {
        const ht_pstack_t *s = &p->stacks[i];
        int64_t v[4];
        bool any = false;
        for (int k = 0; k < 4; k++) {
            v[k] = pprof_round(s->v[pprof_types[k]]);
            any |= v[k] != 0;
        }
        if (!any)
            continue;
        // Leaf first; skip allocator locations at the leaf end, but never
        // all of them (a stack of only malloc still says where it was).
        uint32_t first = 0;
        while (first + 1 < s->nlocs && s->locs[first] < p->nlocs &&
               pprof_loc_is_alloc(&p->locs[s->locs[first]]))
            first++;
        pb_buf_t *ids = &e->sub2;
        for (uint32_t j = first; j < s->nlocs; j++) {
            if (s->locs[j] >= p->nlocs)
                continue;
            pb_varint(ids, (uint64_t)s->locs[j] + 1);
            e->loc_used[s->locs[j]] = 1;
        }
        if (!ids->n) {
            // No frame at all (the unwinder found none): point at one
            // shared "[unknown]" location, as the collapsed form does,
            // rather than leave pprof a sample it counts but never shows.
            pb_varint(ids, (uint64_t)p->nlocs + 1);
            e->unknown_used = true;
        }
        pb_msg(&e->sub, PB_SAMPLE_LOCATION_ID, ids); // packed
        for (int k = 0; k < 4; k++)
            pb_varint(ids, (uint64_t)v[k]);
        pb_msg(&e->sub, PB_SAMPLE_VALUE, ids); // packed
        if (s->tid) {
            pb_int(ids, PB_LABEL_KEY, pprof_str(e, "thread"));
            pb_int(ids, PB_LABEL_NUM, (int64_t)s->tid);
            pb_msg(&e->sub, PB_SAMPLE_LABEL, ids);
        }
        pb_msg(&e->out, PB_PROFILE_SAMPLE, &e->sub);
    }
}

static void
pprof_mappings(pprof_enc_t *e)
{
    const ht_profile_t *p = e->p;
    // pprof takes the first Mapping for the main binary (its "File:" line,
    // its -symbolize choices): write the executable's first. Ids stay
    // index + 1 whatever the order.
    uint32_t exe = 0;
    for (uint32_t i = 0; i < p->nmaps; i++)
        if (p->exe && p->maps[i].path && !strcmp(p->maps[i].path, p->exe)) {
            exe = i;
            break;
        }
    // What the locations of each mapping carry, in one pass over them.
    enum { HAS_FILES = 1, HAS_LINES = 2, HAS_INLINE = 4 };
    uint8_t *has = calloc(p->nmaps ? p->nmaps : 1, 1);
    if (!has) {
        e->out.err = -ENOMEM;
        return;
    }
    for (uint32_t j = 0; j < p->nlocs; j++) {
        const ht_location_t *l = &p->locs[j];
        if (!l->mapping || l->mapping > p->nmaps)
            continue;
        uint8_t *h = &has[l->mapping - 1];
        if (l->nlines > 1)
            *h |= HAS_INLINE;
        for (uint32_t k = 0; k < l->nlines; k++) {
            if (l->lines[k].file && l->lines[k].file[0])
                *h |= HAS_FILES;
            if (l->lines[k].line)
                *h |= HAS_LINES;
        }
    }
    for (uint32_t pos = 0; pos < p->nmaps && !e->out.err; pos++) {
        uint32_t i = pos == 0 ? exe : pos <= exe ? pos - 1 : pos;
        const ht_mapping_t *m = &p->maps[i];
        bool files = has[i] & HAS_FILES, lines = has[i] & HAS_LINES, inl = has[i] & HAS_INLINE;
        pb_uint(&e->sub, PB_MAPPING_ID, (uint64_t)i + 1);
        pb_uint(&e->sub, PB_MAPPING_MEMORY_START, m->start);
        pb_uint(&e->sub, PB_MAPPING_MEMORY_LIMIT, m->limit);
        pb_uint(&e->sub, PB_MAPPING_FILE_OFFSET, m->offset);
        pb_int(&e->sub, PB_MAPPING_FILENAME, pprof_str(e, m->path));
        pb_int(&e->sub, PB_MAPPING_BUILD_ID, pprof_str(e, m->build_id));
        pb_bool(&e->sub, PB_MAPPING_HAS_FUNCTIONS, m->symbolized);
        pb_bool(&e->sub, PB_MAPPING_HAS_FILENAMES, files);
        pb_bool(&e->sub, PB_MAPPING_HAS_LINE_NUMBERS, lines);
        pb_bool(&e->sub, PB_MAPPING_HAS_INLINE_FRAMES, inl);
        pb_msg(&e->out, PB_PROFILE_MAPPING, &e->sub);
    }
    free(has);
}

static void
pprof_locations(pprof_enc_t *e)
{
    const ht_profile_t *p = e->p;
    for (uint32_t i = 0; i < p->nlocs && !e->out.err; i++) {
        if (!e->loc_used[i])
            continue;
        const ht_location_t *l = &p->locs[i];
        // Functions are written as they are first met, into `out` between
        // locations; each Line refers to its function by id only.
        uint64_t fids[64];
        uint32_t nl = l->nlines;
        uint64_t *fid = nl <= 64 ? fids : malloc(nl * sizeof *fid);
        if (!fid) {
            e->out.err = -ENOMEM;
            return;
        }
        for (uint32_t k = 0; k < nl; k++)
            fid[k] = pprof_func(e, &l->lines[k]);
        pb_uint(&e->sub, PB_LOCATION_ID, (uint64_t)i + 1);
        if (l->mapping && l->mapping <= p->nmaps)
            pb_uint(&e->sub, PB_LOCATION_MAPPING_ID, l->mapping);
        pb_uint(&e->sub, PB_LOCATION_ADDRESS, l->address);
        // Innermost first, as pprof expects and as the profile stores them.
        for (uint32_t k = 0; k < nl; k++) {
            pb_uint(&e->sub2, PB_LINE_FUNCTION_ID, fid[k]);
            pb_int(&e->sub2, PB_LINE_LINE, l->lines[k].line);
            pb_msg(&e->sub, PB_LOCATION_LINE, &e->sub2);
        }
        if (fid != fids)
            free(fid);
        pb_msg(&e->out, PB_PROFILE_LOCATION, &e->sub);
    }
    if (e->unknown_used && !e->out.err) {
        const ht_line_t unknown = {"[unknown]", NULL, 0};
        uint64_t fid = pprof_func(e, &unknown);
        pb_uint(&e->sub, PB_LOCATION_ID, (uint64_t)p->nlocs + 1);
        pb_uint(&e->sub2, PB_LINE_FUNCTION_ID, fid);
        pb_msg(&e->sub, PB_LOCATION_LINE, &e->sub2);
        pb_msg(&e->out, PB_PROFILE_LOCATION, &e->sub);
    }
}

static void pprof_comment(pprof_enc_t *e, pb_buf_t *ids, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A comment, interned into the string table; its text lives in the
 * encoder, since the table keeps pointers only. */
static void
pprof_comment(pprof_enc_t *e, pb_buf_t *ids, const char *fmt, ...)
{
    if (e->ncomments >= (int)(sizeof e->comments / sizeof e->comments[0]))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->comments[e->ncomments], sizeof e->comments[0], fmt, ap);
    va_end(ap);
    pb_varint(ids, (uint64_t)pprof_str(e, e->comments[e->ncomments++]));
}

void
ht_pprof_opts_default(ht_pprof_opts_t *o)
{
    o->default_sample = HT_M_INUSE_SPACE;
    o->gzip_level = -1;
}

int
ht_pprof_encode(const ht_profile_t *p, const ht_pprof_opts_t *o, uint8_t **out, size_t *len)
{
    ht_pprof_opts_t def;
    if (!o) {
        ht_pprof_opts_default(&def);
        o = &def;
    }
    int dflt = -1;
    for (int k = 0; k < 4; k++)
        if (pprof_types[k] == o->default_sample)
            dflt = k;
    if (dflt < 0)
        return -EINVAL;

    pprof_enc_t e = {.p = p};
    e.loc_used = calloc(p->nlocs ? p->nlocs : 1, 1);
    if (!e.loc_used)
        return -ENOMEM;
    pprof_str(&e, ""); // index 0 must be ""

    for (int k = 0; k < 4; k++)
        pprof_value_type(&e, PB_PROFILE_SAMPLE_TYPE, pprof_metric_names[pprof_types[k]],
                         pprof_metric_units[pprof_types[k]]);
    pprof_samples(&e);
    pprof_mappings(&e);
    pprof_locations(&e);

    if (p->start_realtime_ns)
        pb_int(&e.out, PB_PROFILE_TIME_NANOS, (int64_t)p->start_realtime_ns);
    if (p->end_ns > p->start_ns)
        pb_int(&e.out, PB_PROFILE_DURATION_NANOS, (int64_t)(p->end_ns - p->start_ns));
    pprof_value_type(&e, PB_PROFILE_PERIOD_TYPE, "space", "bytes");
    pb_int(&e.out, PB_PROFILE_PERIOD,
           p->sampled && p->sample_rate ? (int64_t)p->sample_rate : 1);

    pb_buf_t *ids = &e.sub;
    pprof_comment(&e, ids, "heaptrace %s", HT_VERSION);
    if (p->exe && p->exe[0])
        pprof_comment(&e, ids, "program: %s (pid %llu)", p->exe, (unsigned long long)p->pid);
    if (p->argv && p->argv[0])
        pprof_comment(&e, ids, "command line: %s", p->argv);
    if (p->sampled)
        pprof_comment(&e, ids,
                      "sampled: one sample per %llu bytes on average; values are unbiased "
                      "estimates",
                      (unsigned long long)p->sample_rate);
    else
        pprof_comment(&e, ids, "exact: every allocation was recorded");
    pb_msg(&e.out, PB_PROFILE_COMMENT, ids); // packed
    pb_int(&e.out, PB_PROFILE_DEFAULT_SAMPLE_TYPE,
           pprof_str(&e, pprof_metric_names[pprof_types[dflt]]));

    // Last, now that every string is known.
    for (size_t i = 0; i < e.nstrs && !e.out.err; i++)
        pb_string(&e.out, PB_PROFILE_STRING_TABLE, e.strs[i], strlen(e.strs[i]));

    int rc = e.out.err ? e.out.err : e.sub.err ? e.sub.err : e.sub2.err;
    free(e.sub.b);
    free(e.sub2.b);
    free(e.strs);
    free(e.shash_slots);
    free(e.loc_used);
    pprof_map_free(&e.funcs);
    if (rc) {
        free(e.out.b);
        return rc;
    }
    *out = e.out.b;
    *len = e.out.n;
    return 0;
}

int
ht_pprof_write(FILE *f, const ht_profile_t *p, const ht_pprof_opts_t *o)
{
    uint8_t *raw;
    size_t len;
    int rc = ht_pprof_encode(p, o, &raw, &len);
    if (rc)
        return rc;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int level = o ? o->gzip_level : Z_DEFAULT_COMPRESSION;
    // windowBits 15 + 16: a gzip wrapper, which is what pprof sniffs for.
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(raw);
        return -ENOMEM;
    }
    uint8_t chunk[1 << 16];
    zs.next_in = raw;
    zs.avail_in = (uInt)len; // profiles beyond 4 GiB raw are not a concern here
    int zr;
    do {
        zs.next_out = chunk;
        zs.avail_out = sizeof chunk;
        zr = deflate(&zs, Z_FINISH);
        if (zr == Z_STREAM_ERROR) {
            rc = -EIO;
            break;
        }
        size_t have = sizeof chunk - zs.avail_out;
        if (have && fwrite(chunk, 1, have, f) != have) {
            rc = -EIO;
            break;
        }
    } while (zr != Z_STREAM_END);
    deflateEnd(&zs);
    free(raw);
    if (!rc && (fflush(f) == EOF || ferror(f)))
        rc = -EIO;
    return rc;
}

int
ht_pprof_write_file(const char *path, const ht_profile_t *p, const ht_pprof_opts_t *o)
{
    if (!strcmp(path, "-"))
        return ht_pprof_write(stdout, p, o);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    errno = 0; // so a failed write can report its own cause (ENOSPC, EIO)
    int rc = ht_pprof_write(f, p, o);
    if (rc == -EIO && errno)
        rc = -errno;
    if (fclose(f) == EOF && !rc)
        rc = errno ? -errno : -EIO;
    if (rc)
        unlink(path);
    return rc;
}
