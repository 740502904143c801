/*
 * formats/collapsed.c -- collapsed ("folded") stacks; see collapsed.h.
 */
#include "formats/collapsed.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocator frames ---- */

// The entry points the shim wraps, glibc's internal names for them (seen
// when a caller reaches malloc through __libc_malloc or the unwinder
// attributes a tail call), and thin wrappers whose caller is what a user
// wants to see. Kept to names that are allocators everywhere: a user
// function called "allocate" must not vanish, as it would in pprof's list.
static const char *const collapsed_alloc_names[] = {
    "malloc", "calloc", "realloc", "free", "cfree", "reallocarray", "posix_memalign",
    "__posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc", "__libc_malloc",
    "__libc_calloc", "__libc_realloc", "__libc_free", "__libc_memalign", "__libc_valloc",
    "__libc_pvalloc", "__libc_reallocarray", "_int_malloc", "_int_realloc", "_int_memalign",
    "_int_free", "strdup", "strndup", "__strdup", "__strndup", "__builtin_new",
    "__builtin_vec_new", "__builtin_delete", "__builtin_vec_delete", "__rust_alloc",
    "__rust_alloc_zeroed", "__rust_realloc", "__rust_dealloc", "__rdl_alloc",
    "__rdl_alloc_zeroed", "__rdl_realloc", "__rdl_dealloc",
};

static bool
collapsed_is_operator(const char *fn, const char *op)
{
    size_t n = strlen(op);
    if (strncmp(fn, op, n) != 0)
        return false;
    // "operator new", "operator new[]", "operator new(unsigned long)",
    // "operator new[](unsigned long, std::align_val_t)" -- but not
    // "operator newline_thing".
    char c = fn[n];
    return c == '\0' || c == '(' || c == '[';
}

bool
ht_collapsed_is_alloc_fn(const char *function)
{
    if (!function)
        return false;
    const char *fn = function;
    // Demanglers may qualify the global operators as "::operator new".
    if (fn[0] == ':' && fn[1] == ':')
        fn += 2;
    if (collapsed_is_operator(fn, "operator new") || collapsed_is_operator(fn, "operator delete"))
        return true;
    // Compare the bare name: symbol tables may add a version ("malloc@@GLIBC_2.2.5").
    size_t n = strcspn(fn, "@(");
    for (size_t i = 0; i < sizeof collapsed_alloc_names / sizeof collapsed_alloc_names[0]; i++) {
        const char *a = collapsed_alloc_names[i];
        if (strlen(a) == n && !memcmp(a, fn, n))
            return true;
    }
    return false;
}

/* ---- stack expansion ---- */

static const char *
collapsed_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void
collapsed_synth(ht_csynth_t *sy, const ht_profile_t *p, const ht_location_t *loc)
{
    const ht_mapping_t *m =
        loc->mapping && loc->mapping <= p->nmaps ? &p->maps[loc->mapping - 1] : NULL;
    if (m && m->path && m->path[0])
        snprintf(sy->text, sizeof sy->text, "%s+0x%" PRIx64, collapsed_basename(m->path),
                 loc->address - m->start + m->offset);
    else
        snprintf(sy->text, sizeof sy->text, "0x%" PRIx64, loc->address);
    sy->line.function = sy->text;
    sy->line.file = NULL;
    sy->line.line = 0;
}

int
ht_collapsed_frames(const ht_profile_t *p, const ht_pstack_t *s, ht_cframe_t **frames,
                    size_t *cap, ht_cscratch_t *scratch)
{
    // Pass 1: size both arrays, so the synthetic lines never move while
    // frames point at them.
    size_t n = 0, nsynth = 0;
    for (uint32_t i = 0; i < s->nlocs; i++) {
        if (s->locs[i] >= p->nlocs)
            continue; // a broken index: skip the frame rather than read out of bounds
        const ht_location_t *loc = &p->locs[s->locs[i]];
        if (loc->nlines) {
            n += loc->nlines;
        } else {
            n++;
            nsynth++;
        }
    }
    if (n > *cap) {
        size_t nc = *cap ? *cap : 64;
        while (nc < n)
            nc *= 2;
        ht_cframe_t *nf = realloc(*frames, nc * sizeof *nf);
        if (!nf)
            return -ENOMEM;
        *frames = nf;
        *cap = nc;
    }
    if (nsynth > scratch->cap) {
        size_t nc = scratch->cap ? scratch->cap : 8;
        while (nc < nsynth)
            nc *= 2;
        ht_csynth_t *nv = realloc(scratch->v, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        scratch->v = nv;
        scratch->cap = nc;
    }

    // Pass 2: root (the last location) first; inside a location the
    // outermost line (the last) first.
    size_t k = 0, ks = 0;
    for (uint32_t i = s->nlocs; i-- > 0;) {
        if (s->locs[i] >= p->nlocs)
            continue;
        const ht_location_t *loc = &p->locs[s->locs[i]];
        const ht_mapping_t *m =
            loc->mapping && loc->mapping <= p->nmaps ? &p->maps[loc->mapping - 1] : NULL;
        if (!loc->nlines) {
            ht_csynth_t *sy = &scratch->v[ks++];
            collapsed_synth(sy, p, loc);
            (*frames)[k++] = (ht_cframe_t){&sy->line, loc, m};
            continue;
        }
        for (uint32_t j = loc->nlines; j-- > 0;)
            (*frames)[k++] = (ht_cframe_t){&loc->lines[j], loc, m};
    }
    // The analyzer already cuts the shim's frames; an allocator frame that
    // is left (operator new above malloc, strdup) hides the real caller.
    while (k > 1 && ht_collapsed_is_alloc_fn((*frames)[k - 1].line->function))
        k--;
    return (int)k;
}

void
ht_collapsed_scratch_free(ht_cscratch_t *scratch)
{
    free(scratch->v);
    scratch->v = NULL;
    scratch->cap = 0;
}

/* ---- frame text ---- */

static int
collapsed_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < need)
        nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = nc;
    return 0;
}

static int
collapsed_append_clean(const char *s, char **buf, size_t *len, size_t *cap)
{
    size_t n = strlen(s);
    if (collapsed_reserve(buf, cap, *len + n + 1))
        return -ENOMEM;
    char *d = *buf + *len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        // ';' separates frames and '\n' stacks: neither may survive in a name.
        d[i] = c == ';' ? ':' : (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

int
ht_collapsed_frame_text(const ht_cframe_t *fr, int with_line, char **buf, size_t *len,
                        size_t *cap)
{
    const char *fn = fr->line->function && fr->line->function[0] ? fr->line->function : "??";
    if (collapsed_append_clean(fn, buf, len, cap))
        return -ENOMEM;
    if (!with_line || !fr->line->file || !fr->line->file[0])
        return 0;
    char num[32] = "";
    if (fr->line->line)
        snprintf(num, sizeof num, ":%" PRIu32, fr->line->line);
    if (collapsed_append_clean(" (", buf, len, cap) ||
        collapsed_append_clean(fr->line->file, buf, len, cap) ||
        collapsed_append_clean(num, buf, len, cap) || collapsed_append_clean(")", buf, len, cap))
        return -ENOMEM;
    return 0;
}

/* ---- aggregation: stack text -> (base, new) ---- */

typedef struct collapsed_ent_s {
    char *text;
    double v[2];
} collapsed_ent_t;

typedef struct collapsed_agg_s {
    collapsed_ent_t *ents;
    size_t n, cap;
    uint32_t *slots; // index + 1 into ents; 0 is empty
    size_t nslots;   // a power of two, at most half full
} collapsed_agg_t;

static uint64_t
collapsed_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; // FNV-1a
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int
collapsed_agg_grow(collapsed_agg_t *a)
{
    size_t ns = a->nslots ? a->nslots * 2 : 1024;
    uint32_t *sl = calloc(ns, sizeof *sl);
    if (!sl)
        return -ENOMEM;
    for (size_t i = 0; i < a->n; i++) {
        size_t h = collapsed_hash(a->ents[i].text) & (ns - 1);
        while (sl[h])
            h = (h + 1) & (ns - 1);
        sl[h] = (uint32_t)(i + 1);
    }
    free(a->slots);
    a->slots = sl;
    a->nslots = ns;
    return 0;
}

static int
collapsed_agg_add(collapsed_agg_t *a, const char *text, int side, double v)
{
    if ((a->n + 1) * 2 > a->nslots && collapsed_agg_grow(a))
        return -ENOMEM;
    size_t h = collapsed_hash(text) & (a->nslots - 1);
    while (a->slots[h]) {
        collapsed_ent_t *e = &a->ents[a->slots[h] - 1];
        if (!strcmp(e->text, text)) {
            e->v[side] += v;
            return 0;
        }
        h = (h + 1) & (a->nslots - 1);
    }
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 256;
        collapsed_ent_t *ne = realloc(a->ents, nc * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        a->ents = ne;
        a->cap = nc;
    }
    char *t = strdup(text);
    if (!t)
        return -ENOMEM;
    a->ents[a->n] = (collapsed_ent_t){t, {0, 0}};
    a->ents[a->n].v[side] = v;
    a->slots[h] = (uint32_t)(++a->n);
    return 0;
}

static void
collapsed_agg_free(collapsed_agg_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->ents[i].text);
    free(a->ents);
    free(a->slots);
    memset(a, 0, sizeof *a);
}

static int
collapsed_ent_cmp(const void *x, const void *y)
{
    return strcmp(((const collapsed_ent_t *)x)->text, ((const collapsed_ent_t *)y)->text);
}

// Add every stack of p with a non-zero value of m to side `side`.
static int
collapsed_agg_profile(collapsed_agg_t *a, const ht_profile_t *p, ht_metric_t m, int side,
                      const ht_collapsed_opts_t *o)
{
    ht_cframe_t *fr = NULL;
    size_t frcap = 0, len = 0, cap = 0;
    char *buf = NULL;
    ht_cscratch_t sc = {0};
    int rc = 0;
    for (uint32_t i = 0; i < p->nstacks && !rc; i++) {
        const ht_pstack_t *s = &p->stacks[i];
        if (s->v[m] == 0 || isnan(s->v[m]))
            continue;
        int n = ht_collapsed_frames(p, s, &fr, &frcap, &sc);
        if (n < 0) {
            rc = n;
            break;
        }
        len = 0;
        if ((rc = collapsed_reserve(&buf, &cap, 1)))
            break;
        buf[0] = '\0';
        if (n == 0)
            rc = collapsed_append_clean("[unknown]", &buf, &len, &cap);
        for (int j = 0; j < n && !rc; j++) {
            // The separator goes in raw: frame text has its own ';'
            // mapped to ':', so this is the only one.
            if (j) {
                if ((rc = collapsed_reserve(&buf, &cap, len + 2)))
                    break;
                buf[len++] = ';';
                buf[len] = '\0';
            }
            rc = ht_collapsed_frame_text(&fr[j], o && o->lines, &buf, &len, &cap);
        }
        if (!rc)
            rc = collapsed_agg_add(a, buf, side, s->v[m]);
    }
    free(fr);
    free(buf);
    ht_collapsed_scratch_free(&sc);
    return rc;
}

static int
collapsed_write_impl(FILE *f, const ht_profile_t *base, const ht_profile_t *cur, ht_metric_t m,
                     const ht_collapsed_opts_t *o)
{
    if ((int)m < 0 || m >= HT_M_COUNT)
        return -EINVAL;
    collapsed_agg_t a = {0};
    int rc = 0;
    if (base)
        rc = collapsed_agg_profile(&a, base, m, 0, o);
    if (!rc)
        rc = collapsed_agg_profile(&a, cur, m, 1, o);
    if (rc)
        goto out;
    if (a.n)
        qsort(a.ents, a.n, sizeof a.ents[0], collapsed_ent_cmp);
    for (size_t i = 0; i < a.n; i++) {
        // Sum first, round once: rounding each sampled weight would bias
        // the total.
        long long vb = llround(a.ents[i].v[0]), vn = llround(a.ents[i].v[1]);
        if (vn == 0 && (!base || vb == 0))
            continue;
        if (base)
            fprintf(f, "%s %lld %lld\n", a.ents[i].text, vb, vn);
        else
            fprintf(f, "%s %lld\n", a.ents[i].text, vn);
    }
    if (fflush(f) == EOF || ferror(f))
        rc = -EIO;
out:
    collapsed_agg_free(&a);
    return rc;
}

int
ht_collapsed_write(FILE *f, const ht_profile_t *p, ht_metric_t m, const ht_collapsed_opts_t *o)
{
    return collapsed_write_impl(f, NULL, p, m, o);
}

int
ht_collapsed_write_pair(FILE *f, const ht_profile_t *base, const ht_profile_t *cur,
                        ht_metric_t m, const ht_collapsed_opts_t *o)
{
    return collapsed_write_impl(f, base, cur, m, o);
}
