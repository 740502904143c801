/*
 * analyzer/analyze.c -- SPEC -> reader -> replay -> symbolized profile.
 */
#include "analyzer/analyze.h"
#include "analyzer/profile_build.h"
#include "analyzer/reader.h"
#include "analyzer/replay.h"
#include "analyzer/symbols.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void
ht_an_opts_default(ht_an_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->symbolize = 1;
}

/* ---- SPEC ---- */

// "t.htr@12" -> path "t.htr", snapshot 12. A file whose own name ends in
// "@digits" is taken as a file when it exists.
static int
an_spec_parse(const char *spec, char **path, int64_t *snap)
{
    *snap = -1;
    const char *at = strrchr(spec, '@');
    struct stat st;
    if (at && at[1] && stat(spec, &st) != 0) {
        const char *d = at + 1;
        while (isdigit((unsigned char)*d))
            d++;
        if (*d == '\0' && d - (at + 1) <= 9) {
            *snap = strtoll(at + 1, NULL, 10);
            *path = strndup(spec, (size_t)(at - spec));
            return *path ? 0 : -ENOMEM;
        }
    }
    *path = strdup(spec);
    return *path ? 0 : -ENOMEM;
}

/* ---- symbolization ---- */

// The symbolizer is another module; until it is linked into a build, its
// functions are weak references and resolve to NULL, and addresses are
// named "module+0xoffset". (Kept weak so the analyzer also builds in trees
// that leave the DWARF reader out.)
#pragma weak ht_sym_create
#pragma weak ht_sym_destroy
#pragma weak ht_sym_module
#pragma weak ht_sym_resolve
#pragma weak ht_sym_module_ok
#pragma weak ht_sym_module_warning
#pragma weak ht_sym_prefetch

typedef struct an_loc_key_s {
    uint64_t ip;
    uint32_t mod; // replay module index, HT_RP_NONE
    uint32_t loc; // profile location index + 1, 0 empty
} an_loc_key_t;

typedef struct an_ctx_s {
    const ht_an_opts_t *o;
    ht_rp_t *rp;
    ht_pb_t *b;
    ht_sym_t *sym;
    int *mod_sym;      // per replay module: symbolizer handle, -2 not yet
    uint32_t *mod_map; // per replay module: profile mapping (index + 1), 0 not yet
    an_loc_key_t *cache;
    uint32_t cache_cap, cache_n;
    uint32_t loc_unknown, loc_empty; // + 1, 0 not yet
    uint64_t unknown_stacks;
    // Which module holds an address, direct-mapped: stacks repeat their
    // callers' frames, and the lookup scans every module (python3 loads
    // dozens).
    struct {
        uint64_t ip;
        uint32_t proc, epoch, mi, used;
    } modc[4096];
} an_ctx_t;

static uint64_t
an_hash(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    x ^= x >> 33;
    return x;
}

static const char *
an_basename(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static uint32_t
an_mapping(an_ctx_t *c, uint32_t mi)
{
    if (c->mod_map[mi])
        return c->mod_map[mi];
    const ht_rp_module_t *m = &c->rp->mods[mi];
    char bid[2 * HT_TF_MAX_BUILD_ID + 1];
    for (uint32_t i = 0; i < m->build_id_len; i++)
        snprintf(bid + 2 * i, 3, "%02x", m->build_id[i]);
    bid[2 * m->build_id_len] = '\0';
    // pprof wants the file offset of `start`. The first PT_LOAD of an ELF
    // file maps file offset 0 at its (page-aligned) vaddr, so the lowest
    // segment's page-aligned vaddr is that offset for every ordinary
    // executable and shared object.
    uint64_t lowv = UINT64_MAX;
    for (uint32_t i = 0; i < m->nsegs; i++)
        if (m->segs[i].vaddr < lowv)
            lowv = m->segs[i].vaddr;
    if (lowv == UINT64_MAX)
        lowv = 0;
    uint64_t off = lowv & ~(uint64_t)0xfff;
    int symbolized = c->sym && ht_sym_module_ok && c->mod_sym[mi] >= 0 &&
                     ht_sym_module_ok(c->sym, c->mod_sym[mi]);
    c->mod_map[mi] = ht_pb_map(c->b, m->lo & ~(uint64_t)0xfff, m->hi, off, m->path, bid,
                               symbolized);
    return c->mod_map[mi];
}

static int
an_sym_handle(an_ctx_t *c, uint32_t mi)
{
    if (c->mod_sym[mi] != -2)
        return c->mod_sym[mi];
    const ht_rp_module_t *m = &c->rp->mods[mi];
    c->mod_sym[mi] = -1;
    if (c->sym) {
        int h = ht_sym_module(c->sym, m->path, m->build_id, m->build_id_len);
        c->mod_sym[mi] = h < 0 ? -1 : h;
        if (h >= 0 && ht_sym_module_warning) {
            const char *w = ht_sym_module_warning(c->sym, h);
            // The symbolizer gives one handle per (path, build-id), so a
            // module seen in several processes or epochs warns once.
            bool seen = false;
            for (uint32_t k = 0; k < mi && !seen; k++)
                seen = c->mod_sym[k] == h;
            if (w && !seen)
                fprintf(stderr, "heaptrace: warning: %s\n", w);
        }
    }
    return c->mod_sym[mi];
}

static int
an_location(an_ctx_t *c, uint32_t proc, uint32_t epoch, uint64_t ip, uint32_t *out)
{
    // frames[] hold return addresses: the instruction AFTER the call. Its
    // line can be the next statement, or another function when the call
    // was the last instruction of a noreturn path. ip - 1 lies inside the
    // call instruction, so it names the call site; the location keeps the
    // return address itself, as pprof expects.
    uint64_t look = ip ? ip - 1 : 0;
    uint32_t slot = (uint32_t)an_hash(ip ^ ((uint64_t)proc << 40) ^ ((uint64_t)epoch << 20)) &
                    (sizeof c->modc / sizeof c->modc[0] - 1);
    uint32_t mi;
    if (c->modc[slot].used && c->modc[slot].ip == ip && c->modc[slot].proc == proc &&
        c->modc[slot].epoch == epoch) {
        mi = c->modc[slot].mi;
    } else {
        mi = ht_rp_module_at(c->rp, proc, epoch, look);
        c->modc[slot].ip = ip;
        c->modc[slot].proc = proc;
        c->modc[slot].epoch = epoch;
        c->modc[slot].mi = mi;
        c->modc[slot].used = 1;
    }
    if ((uint64_t)(c->cache_n + 1) * 10 > (uint64_t)c->cache_cap * 7) {
        uint32_t ncap = c->cache_cap ? c->cache_cap * 2 : 4096;
        an_loc_key_t *nc = calloc(ncap, sizeof *nc);
        if (!nc)
            return -ENOMEM;
        for (uint32_t i = 0; i < c->cache_cap; i++) {
            if (!c->cache[i].loc)
                continue;
            uint32_t j = (uint32_t)an_hash(c->cache[i].ip ^ ((uint64_t)c->cache[i].mod << 40)) &
                         (ncap - 1);
            while (nc[j].loc)
                j = (j + 1) & (ncap - 1);
            nc[j] = c->cache[i];
        }
        free(c->cache);
        c->cache = nc;
        c->cache_cap = ncap;
    }
    uint32_t j = (uint32_t)an_hash(ip ^ ((uint64_t)mi << 40)) & (c->cache_cap - 1);
    while (c->cache[j].loc) {
        if (c->cache[j].ip == ip && c->cache[j].mod == mi) {
            *out = c->cache[j].loc - 1;
            return 0;
        }
        j = (j + 1) & (c->cache_cap - 1);
    }

    ht_line_t lines[HT_SYM_MAX_LINES];
    uint32_t nl = 0, map = 0;
    char fallback[64 + 256];
    if (mi == HT_RP_NONE) {
        snprintf(fallback, sizeof fallback, "0x%" PRIx64, ip);
        lines[0] = (ht_line_t){fallback, NULL, 0};
        nl = 1;
    } else {
        const ht_rp_module_t *m = &c->rp->mods[mi];
        int h = c->o->symbolize ? an_sym_handle(c, mi) : -1;
        if (h >= 0 && ht_sym_resolve) {
            ht_sym_line_t sl[HT_SYM_MAX_LINES];
            int n = ht_sym_resolve(c->sym, h, look - m->bias, sl, HT_SYM_MAX_LINES);
            for (int i = 0; i < n && i < HT_SYM_MAX_LINES; i++)
                lines[nl++] = (ht_line_t){sl[i].function, sl[i].file, sl[i].line};
        }
        if (nl == 0) {
            snprintf(fallback, sizeof fallback, "%.255s+0x%" PRIx64, an_basename(m->path),
                     look - m->bias);
            lines[0] = (ht_line_t){fallback, NULL, 0};
            nl = 1;
        }
        map = an_mapping(c, mi);
        if (!map)
            return -ENOMEM;
    }
    uint32_t li;
    int rc = ht_pb_loc(c->b, ip, map, lines, nl, &li);
    if (rc < 0)
        return rc;
    c->cache[j] = (an_loc_key_t){ip, mi, li + 1};
    c->cache_n++;
    *out = li;
    return 0;
}

static int
an_special_loc(an_ctx_t *c, uint32_t *slot, const char *name, uint32_t *out)
{
    if (!*slot) {
        ht_line_t l = {name, NULL, 0};
        uint32_t li;
        int rc = ht_pb_loc(c->b, 0, 0, &l, 1, &li);
        if (rc < 0)
            return rc;
        *slot = li + 1;
    }
    *out = *slot - 1;
    return 0;
}

static double
an_objs(uint64_t fp)
{
    return (double)fp / (double)HT_TF_WEIGHT_ONE;
}

static void
an_cell_values(const ht_rp_t *rp, const ht_rp_cell_t *cell, double *v)
{
    uint64_t po, pb;
    ht_rp_cell_peak(rp, cell, &po, &pb);
    v[HT_M_ALLOC_OBJECTS] += an_objs(cell->alloc_o);
    v[HT_M_ALLOC_SPACE] += (double)cell->alloc_b;
    v[HT_M_INUSE_OBJECTS] += an_objs(cell->live_o);
    v[HT_M_INUSE_SPACE] += (double)cell->live_b;
    v[HT_M_LEAKED_OBJECTS] += an_objs(cell->leak_o);
    v[HT_M_LEAKED_SPACE] += (double)cell->leak_b;
    v[HT_M_PEAK_OBJECTS] += an_objs(po);
    v[HT_M_PEAK_SPACE] += (double)pb;
    v[HT_M_TEMP_OBJECTS] += an_objs(cell->temp_o);
    v[HT_M_TEMP_SPACE] += (double)cell->temp_b;
}

static int
an_cell_is_zero(const ht_rp_t *rp, const ht_rp_cell_t *cell)
{
    uint64_t po, pb;
    ht_rp_cell_peak(rp, cell, &po, &pb);
    return !cell->alloc_o && !cell->alloc_b && !cell->live_o && !cell->live_b && !cell->leak_o &&
           !cell->leak_b && !po && !pb && !cell->temp_o && !cell->temp_b;
}

static int
an_build(an_ctx_t *c, const ht_file_info_t *info, const ht_rd_stats_t *st, int64_t snap)
{
    ht_rp_t *rp = c->rp;
    ht_profile_t *p = ht_pb_profile(c->b);
    uint32_t *locs = malloc(HT_TF_MAX_FRAMES * sizeof *locs);
    if (!locs)
        return -ENOMEM;
    int rc = 0;
    for (uint32_t si = 0; si < rp->nsites && rc == 0; si++) {
        const ht_rp_site_t *s = &rp->sites[si];
        if (an_cell_is_zero(rp, &s->c))
            continue;
        const uint64_t *frames;
        uint32_t n;
        uint32_t nl = 0;
        if (!ht_rp_stack_frames(rp, s->proc, s->stack, &frames, &n)) {
            c->unknown_stacks += s->c.alloc_o ? s->c.alloc_o : 1;
            rc = an_special_loc(c, &c->loc_unknown, "[unknown stack]", &locs[0]);
            nl = 1;
        } else if (n == 0) {
            rc = an_special_loc(c, &c->loc_empty, "[no backtrace]", &locs[0]);
            nl = 1;
        } else {
            for (uint32_t i = 0; i < n && rc == 0; i++)
                rc = an_location(c, s->proc, s->epoch, frames[i], &locs[nl++]);
        }
        if (rc < 0)
            break;
        uint32_t idx;
        if ((rc = ht_pb_stack(c->b, locs, nl, s->tid, &idx)) < 0)
            break;
        an_cell_values(rp, &s->c, ht_pb_stack_v(c->b, idx));
    }
    free(locs);
    if (rc < 0)
        return rc;

    for (uint32_t i = 0; i < rp->nthreads; i++) {
        const ht_rp_thread_t *t = &rp->threads[i];
        ht_pthread_t *pt = ht_pb_thread(c->b, t->tid);
        if (!pt)
            return -ENOMEM;
        if (t->name && !(pt->name = ht_pb_str(c->b, t->name)))
            return -ENOMEM;
        an_cell_values(rp, &t->c, pt->v);
        pt->exact_allocs = t->allocs;
        pt->exact_alloc_bytes = t->alloc_bytes;
        pt->exact_frees = t->frees;
        pt->exact_free_bytes = t->free_bytes;
        p->exact_allocs += t->allocs;
        p->exact_alloc_bytes += t->alloc_bytes;
        p->exact_frees += t->frees;
        p->exact_free_bytes += t->free_bytes;
    }

    p->sampled = info->sample_rate != 0 && !(info->flags & HT_TF_PROC_ALL);
    p->sample_rate = p->sampled ? info->sample_rate : 0;
    p->pid = info->pid;
    // The first image of the traced pid names the program; an exec'd
    // image would name the last program, which is not what was run. But a
    // user who ran a wrapper wants to know what it became: the last image.
    // The file header names the first (since ring version 3 the shim's
    // own reading at start: a forked child that exec'd at once has its
    // parent's image there, and no PROCESS record of it); the first
    // PROCESS record is the fallback (before ring version 3 the collector
    // filled the header from /proc when it found the process: after an
    // exec, or nothing for a process already gone).
    const char *exe = info->exe, *argv = info->argv, *last = NULL;
    bool first = !exe || !exe[0], execd = false;
    for (uint32_t i = 0; i < rp->nprocs; i++) {
        const ht_rp_proc_t *rpp = &rp->procs[i];
        if (rpp->pid != info->pid || !rpp->exe)
            continue;
        if (first && rpp->exe[0]) {
            exe = rpp->exe;
            argv = rpp->argv ? rpp->argv : "";
            first = false;
        }
        last = rpp->exe;
        execd |= (rpp->flags & HT_TF_PROC_EXEC) != 0;
    }
    if (!(p->exe = ht_pb_str(c->b, exe)) || !(p->argv = ht_pb_str(c->b, argv)))
        return -ENOMEM;
    if (execd && !(p->last_exe = ht_pb_str(c->b, last)))
        return -ENOMEM;
    p->start_ns = rp->first_ts;
    p->end_ns = rp->last_ts > rp->first_ts ? rp->last_ts : rp->first_ts;
    p->start_realtime_ns = info->start_realtime_ns
                               ? info->start_realtime_ns + (p->start_ns - info->start_mono_ns)
                               : 0;
    if (p->start_ns < info->start_mono_ns)
        p->start_realtime_ns = info->start_realtime_ns;
    p->peak_bytes = (double)rp->peak_b;
    p->peak_ns = rp->peak_ts > info->start_mono_ns ? rp->peak_ts - info->start_mono_ns : 0;
    p->exited = rp->exited;
    p->exit_how = (int)rp->exit_how;
    p->exit_code = (int)rp->exit_code;
    p->counts_cut = rp->counts_cut;
    p->rss = rp->rss;
    p->heap_free = rp->heap_free;
    p->head_lost = st->head_lost;
    p->snapshot = (int)snap;
    p->nsnapshots = rp->nsnaps;
    p->segs_lost = st->missing_segs + st->torn_segs + st->bad_segs + st->skipped_segs;
    p->lost_events = rp->n.lost_events;
    p->unknown_frees = rp->n.unknown_frees + rp->n.untracked_frees;
    p->bad_sites = rp->n.bad_sites;
    p->unknown_stacks = (uint64_t)an_objs(c->unknown_stacks);
    return 0;
}

/* The replay of SPEC, for callers that need more than the profile (the
 * snapshot list). Returns 0 or -errno with a message in err. */
/* The replay met a module: have the symbolizer start on it, so that the
 * DWARF workers build their indexes while the replay runs. */
static void
an_prefetch_module(void *ctx, const ht_rp_module_t *m)
{
    ht_sym_t *sym = ctx;
    int h = ht_sym_module(sym, m->path, m->build_id, m->build_id_len);
    if (h >= 0)
        ht_sym_prefetch(sym, h);
}

/* sym: the symbolizer that will resolve this replay's addresses, or NULL. */
static int
an_replay(const char *path, int64_t snap, const ht_an_opts_t *o, ht_sym_t *sym, ht_rd_t **rdo,
          ht_rp_t **rpo, char *err, size_t errlen)
{
    ht_rd_t *rd = NULL;
    char e[256] = "";
    int rc = ht_rd_open(&rd, path, false, e, sizeof e);
    if (rc < 0) {
        // The file reader's messages may already name the file.
        size_t pl = strlen(path);
        if (!strncmp(e, path, pl) && e[pl] == ':')
            snprintf(err, errlen, "%s", e);
        else
            snprintf(err, errlen, "%s: %s", path, e[0] ? e : strerror(-rc));
        return rc;
    }
    const ht_file_info_t *info = ht_rd_info(rd);
    ht_rp_t *rp = ht_rp_create(info->pid, o->per_thread);
    if (!rp) {
        ht_rd_close(rd);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    if (sym && ht_sym_module && ht_sym_prefetch) {
        rp->on_module = an_prefetch_module;
        rp->on_module_ctx = sym;
    }
    rc = ht_rd_replay(rd, rp, snap, o->progress, e, sizeof e);
    rp->on_module = NULL;
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, e[0] ? e : strerror(-rc));
        ht_rp_destroy(rp);
        ht_rd_close(rd);
        return rc;
    }
    *rdo = rd;
    *rpo = rp;
    return 0;
}

int
ht_an_profile_load(const char *spec, const ht_an_opts_t *o, ht_profile_t **out, char *err,
                   size_t errlen)
{
    ht_an_opts_t dflt;
    if (!o) {
        ht_an_opts_default(&dflt);
        o = &dflt;
    }
    char *path = NULL;
    int64_t snap;
    if (an_spec_parse(spec, &path, &snap) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ht_rd_t *rd = NULL;
    ht_rp_t *rp = NULL;
    ht_sym_t *sym = o->symbolize && ht_sym_create ? ht_sym_create(o->debug_dir) : NULL;
    int rc = an_replay(path, snap, o, sym, &rd, &rp, err, errlen);
    if (rc < 0) {
        if (sym)
            ht_sym_destroy(sym);
        free(path);
        return rc;
    }
    an_ctx_t c = {.o = o, .rp = rp, .sym = sym};
    c.b = ht_pb_create();
    c.mod_sym = malloc((rp->nmods + 1) * sizeof *c.mod_sym);
    c.mod_map = calloc(rp->nmods + 1, sizeof *c.mod_map);
    rc = -ENOMEM;
    if (c.b && c.mod_sym && c.mod_map && (!o->symbolize || !ht_sym_create || c.sym)) {
        for (uint32_t i = 0; i < rp->nmods; i++)
            c.mod_sym[i] = -2;
        rc = an_build(&c, ht_rd_info(rd), ht_rd_stats(rd), snap);
    }
    if (rc == 0)
        rc = ht_pb_finish(c.b, 1, out);
    else
        ht_pb_destroy(c.b);
    if (rc < 0)
        snprintf(err, errlen, "%s: out of memory building the profile", path);
    if (c.sym)
        ht_sym_destroy(c.sym);
    free(c.mod_sym);
    free(c.mod_map);
    free(c.cache);
    ht_rp_destroy(rp);
    ht_rd_close(rd);
    free(path);
    return rc;
}

int
ht_an_snapshots(const char *path, ht_an_snap_t **out, size_t *n, double *start_s, char *err,
                size_t errlen)
{
    ht_an_opts_t o;
    ht_an_opts_default(&o);
    o.symbolize = 0;
    ht_rd_t *rd = NULL;
    ht_rp_t *rp = NULL;
    int rc = an_replay(path, -1, &o, NULL, &rd, &rp, err, errlen);
    if (rc < 0)
        return rc;
    const ht_file_info_t *info = ht_rd_info(rd);
    ht_an_snap_t *v = calloc(rp->nsnaps + 1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = -ENOMEM;
    } else {
        for (uint32_t i = 0; i < rp->nsnaps; i++) {
            const ht_rp_snap_t *s = &rp->snaps[i];
            v[i].number = s->number;
            v[i].reason = s->reason;
            v[i].seconds = s->ts > info->start_mono_ns ? (s->ts - info->start_mono_ns) / 1e9 : 0;
            v[i].live_bytes = (double)s->live_b;
            v[i].live_objects = an_objs(s->live_o);
            v[i].rss = s->rss;
            v[i].heap_free = s->heap_free;
        }
        *out = v;
        *n = rp->nsnaps;
        if (start_s)
            *start_s = rp->first_ts > info->start_mono_ns
                           ? (rp->first_ts - info->start_mono_ns) / 1e9
                           : 0;
    }
    ht_rp_destroy(rp);
    ht_rd_close(rd);
    return rc;
}

const char *
ht_an_snap_reason(uint64_t reason)
{
    switch (reason) {
    case HT_TF_SNAP_SEGMENT:
        return "segment";
    case HT_TF_SNAP_INTERVAL:
        return "interval";
    case HT_TF_SNAP_BYTES:
        return "bytes";
    case HT_TF_SNAP_EXIT:
        return "exit";
    case HT_TF_SNAP_SIGNAL:
        return "signal";
    case HT_TF_SNAP_API:
        return "api";
    default:
        return "unknown";
    }
}
