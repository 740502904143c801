/*
 * analyzer/profile.c -- the metric table, error bars, and the profile
 * builder (profile_build.h).
 *
 * Memory: a profile owns one arena (bump-allocated blocks) for strings,
 * lines and stack location arrays, plus its four tables. Nothing in a
 * finished profile is freed piecemeal, so ht_prof_destroy() is a walk over
 * the block list.
 */
#include "analyzer/profile.h"
#include "analyzer/profile_build.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- metric table ---- */

static const struct {
    const char *name, *unit;
} prof_metrics[HT_M_COUNT] = {
#define HT_PROF_ROW(e, name, unit) {name, unit},
    HT_PROF_METRICS(HT_PROF_ROW)
#undef HT_PROF_ROW
};

int
ht_prof_metric_parse(const char *name)
{
    if (!name)
        return -1;
    for (int m = 0; m < HT_M_COUNT; m++)
        if (!strcmp(name, prof_metrics[m].name))
            return m;
    // pprof spells the leak and peak metrics the way we spell the bytes
    // ones; accept the obvious aliases people type.
    if (!strcmp(name, "leaked_space"))
        return HT_M_LEAKED_SPACE;
    if (!strcmp(name, "peak_space"))
        return HT_M_PEAK_SPACE;
    if (!strcmp(name, "temporary_objects"))
        return HT_M_TEMP_OBJECTS;
    return -1;
}

const char *
ht_prof_metric_name(ht_metric_t m)
{
    return (unsigned)m < HT_M_COUNT ? prof_metrics[m].name : "?";
}

const char *
ht_prof_metric_unit(ht_metric_t m)
{
    return (unsigned)m < HT_M_COUNT ? prof_metrics[m].unit : "?";
}

double
ht_prof_stderr_bytes(const ht_profile_t *p, double bytes)
{
    // Each sampled allocation of s << R bytes stands for about R bytes, so
    // an estimate of M bytes is built from about M/R samples of weight R:
    // a Poisson count, variance (M/R) * R^2 = M * R. For allocations much
    // larger than R the weight tends to s and the error to 0, so this is
    // an upper bound, which is the honest side to err on.
    if (!p || !p->sampled || p->sample_rate == 0 || !(bytes > 0))
        return 0;
    return sqrt(bytes * (double)p->sample_rate);
}

/* ---- arena ---- */

typedef struct prof_block_s {
    struct prof_block_s *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} prof_block_t;

typedef struct prof_arena_s {
    prof_block_t *blocks;
    void *tables[4]; // maps, locs, stacks, threads: freed with the arena
} prof_arena_t;

#define PROF_BLOCK_SIZE (64u << 10)

static void *
arena_alloc(prof_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    prof_block_t *b = a->blocks;
    if (!b || b->cap - b->used < n) {
        // Big requests get a block of their own, pushed behind the current
        // one so the current block's free space is not wasted.
        size_t cap = n > PROF_BLOCK_SIZE / 4 ? n : PROF_BLOCK_SIZE;
        prof_block_t *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        if (b && cap == n) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->blocks = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static void
arena_free(prof_arena_t *a)
{
    if (!a)
        return;
    for (prof_block_t *b = a->blocks, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    for (int i = 0; i < 4; i++)
        free(a->tables[i]);
    free(a);
}

void
ht_prof_destroy(ht_profile_t *p)
{
    if (!p)
        return;
    arena_free(p->arena);
    free(p);
}

/* ---- builder ---- */

// An open-addressing set of indices (idx + 1 in each slot, 0 empty); the
// caller computes hashes and compares, so one helper serves strings,
// locations and stacks.
typedef struct pb_set_s {
    uint32_t *slot;
    uint64_t *hash;
    uint32_t cap, n;
} pb_set_t;

struct ht_pb_s {
    ht_profile_t *p;
    prof_arena_t *a;
    uint32_t cap_maps, cap_locs, cap_stacks, cap_threads;
    const char **strs;
    uint32_t nstrs, cap_strs;
    pb_set_t str_set, loc_set, stack_set, thread_set;
};

static uint64_t
pb_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t
pb_hash_bytes(const void *s, size_t n)
{
    // FNV-1a: short strings, no need for more.
    uint64_t h = 1469598103934665603ull;
    const unsigned char *c = s;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

static int
pb_set_grow(pb_set_t *s)
{
    uint32_t ncap = s->cap ? s->cap * 2 : 64;
    if (ncap < s->cap)
        return -ENOMEM;
    uint32_t *slot = calloc(ncap, sizeof *slot);
    uint64_t *hash = calloc(ncap, sizeof *hash);
    if (!slot || !hash) {
        free(slot);
        free(hash);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < s->cap; i++) {
        if (!s->slot[i])
            continue;
        uint32_t j = (uint32_t)s->hash[i] & (ncap - 1);
        while (slot[j])
            j = (j + 1) & (ncap - 1);
        slot[j] = s->slot[i];
        hash[j] = s->hash[i];
    }
    free(s->slot);
    free(s->hash);
    s->slot = slot;
    s->hash = hash;
    s->cap = ncap;
    return 0;
}

// Find the slot for hash h: returns the slot index; *found is the stored
// index + 1 of an equal entry or 0 (then the slot is free to fill).
typedef int (*pb_eq_fn)(ht_pb_t *b, uint32_t idx, const void *key);

static int
pb_set_find(ht_pb_t *b, pb_set_t *s, uint64_t h, pb_eq_fn eq, const void *key, uint32_t *slot_out,
            uint32_t *found)
{
    if ((uint64_t)(s->n + 1) * 4 > (uint64_t)s->cap * 3 && pb_set_grow(s) < 0)
        return -ENOMEM;
    uint32_t j = (uint32_t)h & (s->cap - 1);
    while (s->slot[j]) {
        if (s->hash[j] == h && eq(b, s->slot[j] - 1, key)) {
            *found = s->slot[j];
            *slot_out = j;
            return 0;
        }
        j = (j + 1) & (s->cap - 1);
    }
    *found = 0;
    *slot_out = j;
    return 0;
}

static void
pb_set_put(pb_set_t *s, uint32_t slot, uint64_t h, uint32_t idx)
{
    s->slot[slot] = idx + 1;
    s->hash[slot] = h;
    s->n++;
}

static void
pb_set_free(pb_set_t *s)
{
    free(s->slot);
    free(s->hash);
}

static int
pb_reserve(void **arr, uint32_t *cap, uint32_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    uint32_t ncap = *cap ? *cap * 2 : 16;
    if (ncap <= n || (uint64_t)ncap * elem > (uint64_t)SIZE_MAX / 2)
        return -ENOMEM;
    void *na = realloc(*arr, (size_t)ncap * elem);
    if (!na)
        return -ENOMEM;
    *arr = na;
    *cap = ncap;
    return 0;
}

ht_pb_t *
ht_pb_create(void)
{
    ht_pb_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->p = calloc(1, sizeof *b->p);
    b->a = calloc(1, sizeof *b->a);
    if (!b->p || !b->a) {
        free(b->p);
        free(b->a);
        free(b);
        return NULL;
    }
    b->p->exe = "";
    b->p->argv = "";
    return b;
}

void
ht_pb_destroy(ht_pb_t *b)
{
    if (!b)
        return;
    free(b->p->maps);
    free(b->p->locs);
    free(b->p->stacks);
    free(b->p->threads);
    free(b->p);
    arena_free(b->a);
    free(b->strs);
    pb_set_free(&b->str_set);
    pb_set_free(&b->loc_set);
    pb_set_free(&b->stack_set);
    pb_set_free(&b->thread_set);
    free(b);
}

ht_profile_t *
ht_pb_profile(ht_pb_t *b)
{
    return b->p;
}

typedef struct pb_strkey_s {
    const char *s;
    size_t n;
} pb_strkey_t;

static int
pb_str_eq(ht_pb_t *b, uint32_t idx, const void *key)
{
    const pb_strkey_t *k = key;
    const char *s = b->strs[idx];
    return strncmp(s, k->s, k->n) == 0 && s[k->n] == '\0';
}

const char *
ht_pb_strn(ht_pb_t *b, const char *s, size_t len)
{
    if (!s)
        return NULL;
    // A NUL inside the input would make two different keys print the same;
    // cut there, like every C consumer of the string would.
    const char *nul = memchr(s, '\0', len);
    if (nul)
        len = (size_t)(nul - s);
    pb_strkey_t k = {s, len};
    uint64_t h = pb_hash_bytes(s, len);
    uint32_t slot, found;
    if (pb_set_find(b, &b->str_set, h, pb_str_eq, &k, &slot, &found) < 0)
        return NULL;
    if (found)
        return b->strs[found - 1];
    if (pb_reserve((void **)&b->strs, &b->cap_strs, b->nstrs, sizeof *b->strs) < 0)
        return NULL;
    char *c = arena_alloc(b->a, len + 1);
    if (!c)
        return NULL;
    memcpy(c, s, len);
    c[len] = '\0';
    b->strs[b->nstrs] = c;
    pb_set_put(&b->str_set, slot, h, b->nstrs++);
    return c;
}

const char *
ht_pb_str(ht_pb_t *b, const char *s)
{
    return s ? ht_pb_strn(b, s, strlen(s)) : NULL;
}

uint32_t
ht_pb_map(ht_pb_t *b, uint64_t start, uint64_t limit, uint64_t offset, const char *path,
          const char *build_id, int symbolized)
{
    ht_profile_t *p = b->p;
    if (pb_reserve((void **)&p->maps, &b->cap_maps, p->nmaps, sizeof *p->maps) < 0)
        return 0;
    ht_mapping_t *m = &p->maps[p->nmaps];
    m->start = start;
    m->limit = limit;
    m->offset = offset;
    m->path = ht_pb_str(b, path ? path : "");
    m->build_id = ht_pb_str(b, build_id ? build_id : "");
    m->symbolized = symbolized;
    if (!m->path || !m->build_id)
        return 0;
    return ++p->nmaps;
}

typedef struct pb_lockey_s {
    uint64_t address;
    uint32_t mapping, n;
    const ht_line_t *lines;
} pb_lockey_t;

static int
pb_nullstr_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int
pb_loc_eq(ht_pb_t *b, uint32_t idx, const void *key)
{
    const pb_lockey_t *k = key;
    const ht_location_t *l = &b->p->locs[idx];
    if (l->address != k->address || l->mapping != k->mapping || l->nlines != k->n)
        return 0;
    for (uint32_t i = 0; i < k->n; i++)
        if (l->lines[i].line != k->lines[i].line ||
            !pb_nullstr_eq(l->lines[i].function, k->lines[i].function) ||
            !pb_nullstr_eq(l->lines[i].file, k->lines[i].file))
            return 0;
    return 1;
}

int
ht_pb_loc(ht_pb_t *b, uint64_t address, uint32_t mapping, const ht_line_t *lines, uint32_t n,
          uint32_t *idx)
{
    ht_profile_t *p = b->p;
    pb_lockey_t k = {address, mapping, n, lines};
    uint64_t h = pb_mix(pb_mix(address, mapping), n);
    for (uint32_t i = 0; i < n; i++) {
        const char *f = lines[i].function ? lines[i].function : "";
        h = pb_mix(h, pb_hash_bytes(f, strlen(f)) ^ lines[i].line);
    }
    uint32_t slot, found;
    if (pb_set_find(b, &b->loc_set, h, pb_loc_eq, &k, &slot, &found) < 0)
        return -ENOMEM;
    if (found) {
        *idx = found - 1;
        return 0;
    }
    if (pb_reserve((void **)&p->locs, &b->cap_locs, p->nlocs, sizeof *p->locs) < 0)
        return -ENOMEM;
    ht_line_t *ln = n ? arena_alloc(b->a, n * sizeof *ln) : NULL;
    if (n && !ln)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        ln[i].function = ht_pb_str(b, lines[i].function ? lines[i].function : "??");
        ln[i].file = lines[i].file ? ht_pb_str(b, lines[i].file) : NULL;
        ln[i].line = lines[i].line;
        if (!ln[i].function || (lines[i].file && !ln[i].file))
            return -ENOMEM;
    }
    ht_location_t *l = &p->locs[p->nlocs];
    l->address = address;
    l->mapping = mapping;
    l->nlines = n;
    l->lines = ln;
    pb_set_put(&b->loc_set, slot, h, p->nlocs);
    *idx = p->nlocs++;
    return 0;
}

typedef struct pb_stkkey_s {
    const uint32_t *locs;
    uint32_t n;
    uint64_t tid;
} pb_stkkey_t;

static int
pb_stack_eq(ht_pb_t *b, uint32_t idx, const void *key)
{
    const pb_stkkey_t *k = key;
    const ht_pstack_t *s = &b->p->stacks[idx];
    return s->tid == k->tid && s->nlocs == k->n &&
           (k->n == 0 || memcmp(s->locs, k->locs, k->n * sizeof *k->locs) == 0);
}

int
ht_pb_stack(ht_pb_t *b, const uint32_t *locs, uint32_t n, uint64_t tid, uint32_t *idx)
{
    ht_profile_t *p = b->p;
    pb_stkkey_t k = {locs, n, tid};
    uint64_t h = pb_mix(tid, n);
    for (uint32_t i = 0; i < n; i++)
        h = pb_mix(h, locs[i]);
    uint32_t slot, found;
    if (pb_set_find(b, &b->stack_set, h, pb_stack_eq, &k, &slot, &found) < 0)
        return -ENOMEM;
    if (found) {
        *idx = found - 1;
        return 0;
    }
    if (pb_reserve((void **)&p->stacks, &b->cap_stacks, p->nstacks, sizeof *p->stacks) < 0)
        return -ENOMEM;
    uint32_t *l = n ? arena_alloc(b->a, n * sizeof *l) : NULL;
    if (n && !l)
        return -ENOMEM;
    if (n)
        memcpy(l, locs, n * sizeof *l);
    ht_pstack_t *s = &p->stacks[p->nstacks];
    memset(s, 0, sizeof *s);
    s->nlocs = n;
    s->locs = l;
    s->tid = tid;
    pb_set_put(&b->stack_set, slot, h, p->nstacks);
    *idx = p->nstacks++;
    return 0;
}

double *
ht_pb_stack_v(ht_pb_t *b, uint32_t idx)
{
    return b->p->stacks[idx].v;
}

static int
pb_thread_eq(ht_pb_t *b, uint32_t idx, const void *key)
{
    return b->p->threads[idx].tid == *(const uint64_t *)key;
}

ht_pthread_t *
ht_pb_thread(ht_pb_t *b, uint64_t tid)
{
    ht_profile_t *p = b->p;
    uint64_t h = pb_mix(tid, 7);
    uint32_t slot, found;
    if (pb_set_find(b, &b->thread_set, h, pb_thread_eq, &tid, &slot, &found) < 0)
        return NULL;
    if (found)
        return &p->threads[found - 1];
    if (pb_reserve((void **)&p->threads, &b->cap_threads, p->nthreads, sizeof *p->threads) < 0)
        return NULL;
    ht_pthread_t *t = &p->threads[p->nthreads];
    memset(t, 0, sizeof *t);
    t->tid = tid;
    t->name = "";
    pb_set_put(&b->thread_set, slot, h, p->nthreads++);
    return t;
}

static int
pb_stack_is_empty(const ht_pstack_t *s)
{
    for (int m = 0; m < HT_M_COUNT; m++)
        if (s->v[m] != 0)
            return 0;
    return 1;
}

int
ht_pb_finish(ht_pb_t *b, int drop_empty, ht_profile_t **out)
{
    ht_profile_t *p = b->p;
    if (drop_empty) {
        uint32_t j = 0;
        for (uint32_t i = 0; i < p->nstacks; i++)
            if (!pb_stack_is_empty(&p->stacks[i]))
                p->stacks[j++] = p->stacks[i];
        p->nstacks = j;
    }
    memset(p->v, 0, sizeof p->v);
    for (uint32_t i = 0; i < p->nstacks; i++)
        for (int m = 0; m < HT_M_COUNT; m++)
            p->v[m] += p->stacks[i].v[m];
    p->arena = b->a;
    b->a->tables[0] = p->maps;
    b->a->tables[1] = p->locs;
    b->a->tables[2] = p->stacks;
    b->a->tables[3] = p->threads;
    free(b->strs);
    pb_set_free(&b->str_set);
    pb_set_free(&b->loc_set);
    pb_set_free(&b->stack_set);
    pb_set_free(&b->thread_set);
    free(b);
    *out = p;
    return 0;
}

/* ---- allocation sites ---- */

// Functions that only pass an allocation through. Matched on the start of
// the demangled name, so "operator new(unsigned long)" and every
// std::allocator method are caught without a list of signatures.
static const char *const prof_alloc_prefixes[] = {
    "operator new", "operator delete", "malloc", "calloc", "realloc", "reallocarray",
    "free", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
    "__libc_", "__GI_", "__strdup", "strdup", "strndup", "__strndup", "xmalloc", "xcalloc",
    "xrealloc", "xstrdup", "g_malloc", "g_malloc0", "g_realloc", "g_try_malloc", "g_strdup",
    "g_slice_alloc", "std::allocator", "std::__new_allocator", "__gnu_cxx::new_allocator",
    "__gnu_cxx::__new_allocator", "std::allocator_traits", "std::_Vector_base",
    "std::__cxx11::basic_string<", "std::_Hashtable_alloc", "alloc::alloc::", "__rust_alloc",
    "__rdl_alloc", "__rg_alloc", "asprintf", "vasprintf", "__asprintf", "__vasprintf",
    "open_memstream",
};

static int
prof_is_runtime_path(const char *path)
{
    if (!path || !*path)
        return 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    // The C and C++ runtimes: a frame in there is "inside the library
    // call" (fopen, std::string growth), not where the user asked for
    // memory.
    return !strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5) ||
           !strncmp(base, "libstdc++.so", 12) || !strncmp(base, "libgcc_s.so", 11) ||
           !strncmp(base, "ld-linux", 8);
}

static int
prof_is_alloc_frame(const ht_profile_t *p, const ht_location_t *l)
{
    if (l->mapping && l->mapping <= p->nmaps && prof_is_runtime_path(p->maps[l->mapping - 1].path))
        return 1;
    if (!l->nlines)
        return 0;
    // The outermost line is the real (non-inlined) function.
    const char *f = l->lines[l->nlines - 1].function;
    if (!f)
        return 0;
    for (size_t i = 0; i < sizeof prof_alloc_prefixes / sizeof prof_alloc_prefixes[0]; i++) {
        size_t n = strlen(prof_alloc_prefixes[i]);
        if (!strncmp(f, prof_alloc_prefixes[i], n)) {
            // "freeze_all" is not "free": a prefix must end the name or be
            // followed by something that cannot continue an identifier.
            char c = f[n];
            if (c == '\0' || c == '(' || c == '<' || c == ':' || c == ' ' ||
                prof_alloc_prefixes[i][n - 1] == '_' || prof_alloc_prefixes[i][n - 1] == ':' ||
                prof_alloc_prefixes[i][n - 1] == '<')
                return 1;
        }
    }
    return 0;
}

uint32_t
ht_prof_site_frame(const ht_profile_t *p, const ht_pstack_t *s)
{
    for (uint32_t i = 0; i < s->nlocs; i++) {
        if (s->locs[i] >= p->nlocs)
            return 0;
        if (!prof_is_alloc_frame(p, &p->locs[s->locs[i]]))
            return i;
    }
    return 0;
}
