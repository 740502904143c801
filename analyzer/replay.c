/*
 * analyzer/replay.c -- live set, per-site and per-thread figures, peak,
 * temporaries, snapshots. See replay.h for the model and the peak rule.
 */
#include "analyzer/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Sanity bounds on values that come from the trace. A legitimate weight is
 * about (rate / size) * ONE, under 2^50 for any sampling rate below a
 * petabyte; anything beyond is corruption and is clamped, so no single
 * record can turn into an astronomical figure. */
#define RP_MAX_WEIGHT (1ull << 56)
#define RP_MAX_BYTES (1ull << 62)
/* Most blocks a LIVE may restate for one site (2^40 blocks of one byte
 * would be a terabyte): more is corruption. */
#define RP_MAX_LIVE (1ull << 40)
/* Distinct module images we keep; each MODULE is checked against all of
 * them, so a hostile trace of millions of MODULE records must not make
 * that quadratic. Real programs stay in the hundreds. */
#define RP_MAX_MODULES 16384

/* A SITE of a trace file: what one of its blocks weighs, where the
 * replay counts it, and how many are live. Keyed by (pid of the file, site
 * id): a forked child's file numbers its own sites. */
/* The replay counts BLOCKS per file site as events come (one cache line
 * touched per event); the figures of the replay's sites and threads are
 * sums over their file sites, made by ht_rp_sync. The peak uses the same
 * lazy version rule as cells (replay.h): peak_live is the site's live
 * count at the current peak when peak_ver is current, else live is. */
typedef struct rp_fsite_s {
    // hot: every event
    uint64_t objs, bytes;  // one block: estimated objects (weight), bytes
    uint64_t live, allocs, temps, leaks; // blocks
    uint64_t peak_live, peak_ver;
    // cold
    uint64_t key;         // rp_fsite_key
    uint64_t size, stack, weight, tid, flags; // as defined, to compare a restatement
    uint32_t site, thread; // ht_rp_site_t and ht_rp_thread_t indices
} rp_fsite_t;

typedef struct rp_stack_s {
    uint64_t id;
    uint64_t off; // into frames
    uint32_t proc, n;
} rp_stack_t;

typedef struct rp_idx_s {
    uint32_t *slot; // index + 1, 0 empty
    uint32_t cap, n;
} rp_idx_t;

/* The sites of one trace file by id: fsite index + 1, 0 undefined. The
 * collector numbers sites densely, so this is an array, not a hash (the
 * lookup is once per event). Ids past RP_FSMAP_LIMIT go to fsite_idx. */
typedef struct rp_fsmap_s {
    uint64_t pid;
    uint32_t *ix;
    uint32_t cap;
} rp_fsmap_t;

typedef struct rp_impl_s {
    rp_fsite_t *fsites;
    uint32_t nfsites, cap_fsites;
    rp_fsmap_t *fsmaps;
    uint32_t nfsmaps, cap_fsmaps, fsmap_cur;
    rp_idx_t fsite_idx, site_idx, thread_idx, stack_idx, pid_idx;
    rp_stack_t *stacks;
    uint32_t nstacks, cap_stacks;
    uint64_t *frames;
    uint64_t nframes, cap_frames;
    // pending keyframe
    bool kf_reseed, kf_open;
    uint64_t kf_ts, kf_seq, kf_snapshot, kf_reason;
    uint32_t *proc_ident; // per proc: records seen that define it
    uint32_t cap_proc_ident;
} rp_impl_t;

#define IMPL(rp) ((rp_impl_t *)(rp)->impl)

static inline uint64_t
rp_hash(uint64_t x)
{
    // Murmur3's finalizer: pointers and ids are far from random in their
    // low bits; this spreads every input bit over the whole word.
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static int
rp_grow(void **arr, uint32_t *cap, uint32_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    if (*cap >= UINT32_MAX / 2 - 1)
        return -ENOMEM;
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *na = realloc(*arr, (size_t)ncap * elem);
    if (!na)
        return -ENOMEM;
    *arr = na;
    *cap = ncap;
    return 0;
}

/* ---- index tables: uint32 slots over an array owned elsewhere ---- */

typedef uint64_t (*rp_hash_fn)(const ht_rp_t *rp, uint32_t idx);

static int
rp_idx_grow(const ht_rp_t *rp, rp_idx_t *t, rp_hash_fn hf)
{
    uint32_t ncap = t->cap ? t->cap * 2 : 256;
    if (ncap < t->cap)
        return -ENOMEM;
    uint32_t *slot = calloc(ncap, sizeof *slot);
    if (!slot)
        return -ENOMEM;
    for (uint32_t i = 0; i < t->cap; i++) {
        if (!t->slot[i])
            continue;
        uint32_t j = (uint32_t)hf(rp, t->slot[i] - 1) & (ncap - 1);
        while (slot[j])
            j = (j + 1) & (ncap - 1);
        slot[j] = t->slot[i];
    }
    free(t->slot);
    t->slot = slot;
    t->cap = ncap;
    return 0;
}

static uint64_t
rp_site_hash_of(uint32_t proc, uint32_t epoch, uint64_t stack, uint64_t tid)
{
    return rp_hash(stack ^ rp_hash(((uint64_t)proc << 32 | epoch) ^ rp_hash(tid)));
}

static uint64_t
rp_site_hash(const ht_rp_t *rp, uint32_t i)
{
    const ht_rp_site_t *s = &rp->sites[i];
    return rp_site_hash_of(s->proc, s->epoch, s->stack, s->tid);
}

static uint64_t
rp_thread_hash(const ht_rp_t *rp, uint32_t i)
{
    return rp_hash(rp->threads[i].tid);
}

static uint64_t
rp_stack_hash_of(uint32_t proc, uint64_t id)
{
    return rp_hash(id ^ rp_hash(proc));
}

static uint64_t
rp_stack_hash(const ht_rp_t *rp, uint32_t i)
{
    const rp_stack_t *s = &IMPL(rp)->stacks[i];
    return rp_stack_hash_of(s->proc, s->id);
}

static uint64_t
rp_pid_hash(const ht_rp_t *rp, uint32_t i)
{
    return rp_hash(rp->procs[i].pid);
}

static inline uint64_t
rp_fsite_key(uint64_t pid, uint64_t id)
{
    return pid << 32 ^ id; // ids stay below HT_TF_MAX_SITE = 2^31
}

static uint64_t
rp_fsite_hash(const ht_rp_t *rp, uint32_t i)
{
    return rp_hash(IMPL(rp)->fsites[i].key);
}

/* ---- create / destroy ---- */

ht_rp_t *
ht_rp_create(uint64_t main_pid, int per_thread)
{
    ht_rp_t *rp = calloc(1, sizeof *rp);
    if (!rp)
        return NULL;
    rp->impl = calloc(1, sizeof(rp_impl_t));
    if (!rp->impl) {
        free(rp);
        return NULL;
    }
    rp->main_pid = main_pid;
    rp->per_thread = per_thread;
    rp->first_ts = UINT64_MAX;
    return rp;
}

void
ht_rp_destroy(ht_rp_t *rp)
{
    if (!rp)
        return;
    rp_impl_t *im = IMPL(rp);
    free(im->fsites);
    for (uint32_t i = 0; i < im->nfsmaps; i++)
        free(im->fsmaps[i].ix);
    free(im->fsmaps);
    free(im->fsite_idx.slot);
    free(im->site_idx.slot);
    free(im->thread_idx.slot);
    free(im->stack_idx.slot);
    free(im->pid_idx.slot);
    free(im->stacks);
    free(im->frames);
    free(im->proc_ident);
    free(im);
    for (uint32_t i = 0; i < rp->nthreads; i++)
        free(rp->threads[i].name);
    for (uint32_t i = 0; i < rp->nmods; i++)
        free(rp->mods[i].path);
    for (uint32_t i = 0; i < rp->nprocs; i++) {
        free(rp->procs[i].exe);
        free(rp->procs[i].argv);
    }
    free(rp->sites);
    free(rp->threads);
    free(rp->mods);
    free(rp->procs);
    free(rp->snaps);
    free(rp);
}

/* ---- cells and the peak rule ---- */

void
ht_rp_cell_peak(const ht_rp_t *rp, const ht_rp_cell_t *c, uint64_t *objs, uint64_t *bytes)
{
    if (c->peak_ver != rp->peak_ver) {
        *objs = c->live_o;
        *bytes = c->live_b;
    } else {
        *objs = c->peak_o;
        *bytes = c->peak_b;
    }
}

static inline void
rp_peak_check(ht_rp_t *rp, uint64_t ts)
{
    // Strictly greater: the first moment the heap reached its maximum is
    // "the peak"; a later plateau at the same size is not a new one.
    if (rp->total_b > rp->peak_b) {
        rp->peak_b = rp->total_b;
        rp->peak_o = rp->total_o;
        rp->peak_ts = ts;
        rp->peak_ver++;
    }
}

/* ---- lookups ---- */

static uint32_t
rp_thread_get(ht_rp_t *rp, uint64_t tid, uint32_t proc)
{
    rp_impl_t *im = IMPL(rp);
    rp_idx_t *t = &im->thread_idx;
    if ((uint64_t)(t->n + 1) * 10 > (uint64_t)t->cap * 7 &&
        rp_idx_grow(rp, t, rp_thread_hash) < 0)
        return HT_RP_NONE;
    uint32_t j = (uint32_t)rp_hash(tid) & (t->cap - 1);
    while (t->slot[j]) {
        if (rp->threads[t->slot[j] - 1].tid == tid)
            return t->slot[j] - 1;
        j = (j + 1) & (t->cap - 1);
    }
    if (rp_grow((void **)&rp->threads, &rp->cap_threads, rp->nthreads, sizeof *rp->threads) < 0)
        return HT_RP_NONE;
    ht_rp_thread_t *th = &rp->threads[rp->nthreads];
    memset(th, 0, sizeof *th);
    th->tid = tid;
    th->proc = proc;
    t->slot[j] = ++rp->nthreads;
    t->n++;
    return rp->nthreads - 1;
}

static uint32_t
rp_site_get(ht_rp_t *rp, uint32_t proc, uint64_t stack, uint64_t tid)
{
    rp_impl_t *im = IMPL(rp);
    rp_idx_t *t = &im->site_idx;
    if (!rp->per_thread)
        tid = 0;
    if ((uint64_t)(t->n + 1) * 10 > (uint64_t)t->cap * 7 && rp_idx_grow(rp, t, rp_site_hash) < 0)
        return HT_RP_NONE;
    uint32_t epoch = rp->epoch;
    uint32_t j = (uint32_t)rp_site_hash_of(proc, epoch, stack, tid) & (t->cap - 1);
    while (t->slot[j]) {
        const ht_rp_site_t *s = &rp->sites[t->slot[j] - 1];
        if (s->stack == stack && s->proc == proc && s->epoch == epoch && s->tid == tid)
            return t->slot[j] - 1;
        j = (j + 1) & (t->cap - 1);
    }
    if (rp_grow((void **)&rp->sites, &rp->cap_sites, rp->nsites, sizeof *rp->sites) < 0)
        return HT_RP_NONE;
    ht_rp_site_t *s = &rp->sites[rp->nsites];
    memset(s, 0, sizeof *s);
    s->stack = stack;
    s->tid = tid;
    s->proc = proc;
    s->epoch = epoch;
    s->c.peak_ver = rp->peak_ver; // it was 0 at the current peak: live 0 is right
    t->slot[j] = ++rp->nsites;
    t->n++;
    return rp->nsites - 1;
}

/* ---- the sites of trace files ---- */

/* How far a file's dense map may grow: ids are dense, so a real trace
 * stays far below; a hostile id beyond it costs a hash entry, not a huge
 * array. */
#define RP_FSMAP_LIMIT(im) ((1u << 20) + 8u * (uint64_t)(im)->nfsites)

static rp_fsmap_t *
rp_fsmap(rp_impl_t *im, uint64_t pid, bool create)
{
    if (im->fsmap_cur < im->nfsmaps && im->fsmaps[im->fsmap_cur].pid == pid)
        return &im->fsmaps[im->fsmap_cur];
    for (uint32_t i = 0; i < im->nfsmaps; i++)
        if (im->fsmaps[i].pid == pid) {
            im->fsmap_cur = i;
            return &im->fsmaps[i];
        }
    if (!create || rp_grow((void **)&im->fsmaps, &im->cap_fsmaps, im->nfsmaps,
                           sizeof *im->fsmaps) < 0)
        return NULL;
    im->fsmaps[im->nfsmaps] = (rp_fsmap_t){.pid = pid};
    im->fsmap_cur = im->nfsmaps;
    return &im->fsmaps[im->nfsmaps++];
}

static rp_fsite_t *
rp_fsite_find(ht_rp_t *rp, uint64_t pid, uint64_t id)
{
    rp_impl_t *im = IMPL(rp);
    const rp_fsmap_t *m = rp_fsmap(im, pid, false);
    if (m && id < m->cap && m->ix[id])
        return &im->fsites[m->ix[id] - 1];
    rp_idx_t *t = &im->fsite_idx;
    if (!t->n)
        return NULL;
    uint64_t key = rp_fsite_key(pid, id);
    uint32_t j = (uint32_t)rp_hash(key) & (t->cap - 1);
    while (t->slot[j]) {
        rp_fsite_t *f = &im->fsites[t->slot[j] - 1];
        if (f->key == key)
            return f;
        j = (j + 1) & (t->cap - 1);
    }
    return NULL;
}

/* Index fsite k (new) under (pid, id). 0 or -ENOMEM. */
static int
rp_fsite_index(ht_rp_t *rp, uint64_t pid, uint64_t id, uint32_t k)
{
    rp_impl_t *im = IMPL(rp);
    rp_fsmap_t *m = rp_fsmap(im, pid, true);
    if (!m)
        return -ENOMEM;
    if (id < RP_FSMAP_LIMIT(im)) {
        if (id >= m->cap) {
            uint64_t nc = m->cap ? m->cap : 1024;
            while (nc <= id)
                nc *= 2;
            uint32_t *ni = realloc(m->ix, nc * sizeof *ni);
            if (!ni)
                return -ENOMEM;
            memset(ni + m->cap, 0, (nc - m->cap) * sizeof *ni);
            m->ix = ni;
            m->cap = (uint32_t)nc;
        }
        m->ix[id] = k + 1;
        return 0;
    }
    rp_idx_t *ix = &im->fsite_idx;
    if ((uint64_t)(ix->n + 1) * 10 > (uint64_t)ix->cap * 7 &&
        rp_idx_grow(rp, ix, rp_fsite_hash) < 0)
        return -ENOMEM;
    uint32_t j = (uint32_t)rp_hash(rp_fsite_key(pid, id)) & (ix->cap - 1);
    while (ix->slot[j])
        j = (j + 1) & (ix->cap - 1);
    ix->slot[j] = k + 1;
    ix->n++;
    return 0;
}

/* ---- allocation and free ---- */

static inline uint64_t
rp_mul_sat(uint64_t a, uint64_t b)
{
    unsigned __int128 m = (unsigned __int128)a * b;
    return m > RP_MAX_BYTES ? RP_MAX_BYTES : (uint64_t)m;
}

static inline void
rp_fsite_touch(const ht_rp_t *rp, rp_fsite_t *f)
{
    if (f->peak_ver != rp->peak_ver) {
        f->peak_live = f->live;
        f->peak_ver = rp->peak_ver;
    }
}

/* One block of f freed; temporary: heaptrack's "temporary" (EV_FREE_TMP). */
static inline void
rp_fsite_free1(ht_rp_t *rp, rp_fsite_t *f, bool temporary)
{
    rp_fsite_touch(rp, f);
    f->live--;
    f->temps += temporary;
    rp->total_o -= f->objs;
    rp->total_b -= f->bytes;
}

/* One block of f allocated at ts. */
static inline void
rp_fsite_alloc1(ht_rp_t *rp, rp_fsite_t *f, uint64_t ts)
{
    rp_fsite_touch(rp, f);
    f->live++;
    f->allocs++;
    rp->total_o += f->objs;
    rp->total_b += f->bytes;
    rp_peak_check(rp, ts);
}

/* n blocks of f restored by a keyframe's LIVE (allocated before the
 * window: not allocations of it). */
static void
rp_fsite_restore(ht_rp_t *rp, rp_fsite_t *f, uint64_t n, uint64_t ts)
{
    rp_fsite_touch(rp, f);
    f->live += n;
    rp->total_o += rp_mul_sat(f->objs, n);
    rp->total_b += rp_mul_sat(f->bytes, n);
    rp_peak_check(rp, ts);
}

/* Every block of f stops being live (a keyframe replaces the live set, or
 * a SITE is redefined). */
static void
rp_fsite_clear(ht_rp_t *rp, rp_fsite_t *f)
{
    rp_fsite_touch(rp, f);
    rp->total_o -= rp_mul_sat(f->objs, f->live);
    rp->total_b -= rp_mul_sat(f->bytes, f->live);
    f->live = 0;
}

static void
rp_cell_add(ht_rp_cell_t *c, const rp_fsite_t *f, uint64_t peak_live)
{
    c->alloc_o += rp_mul_sat(f->objs, f->allocs);
    c->alloc_b += rp_mul_sat(f->bytes, f->allocs);
    c->live_o += rp_mul_sat(f->objs, f->live);
    c->live_b += rp_mul_sat(f->bytes, f->live);
    c->peak_o += rp_mul_sat(f->objs, peak_live);
    c->peak_b += rp_mul_sat(f->bytes, peak_live);
    c->temp_o += rp_mul_sat(f->objs, f->temps);
    c->temp_b += rp_mul_sat(f->bytes, f->temps);
    c->leak_o += rp_mul_sat(f->objs, f->leaks);
    c->leak_b += rp_mul_sat(f->bytes, f->leaks);
}

void
ht_rp_sync(ht_rp_t *rp)
{
    rp_impl_t *im = IMPL(rp);
    for (uint32_t i = 0; i < rp->nsites; i++)
        rp->sites[i].c = (ht_rp_cell_t){.peak_ver = rp->peak_ver};
    for (uint32_t i = 0; i < rp->nthreads; i++)
        rp->threads[i].c = (ht_rp_cell_t){.peak_ver = rp->peak_ver};
    for (uint32_t i = 0; i < im->nfsites; i++) {
        const rp_fsite_t *f = &im->fsites[i];
        uint64_t pl = f->peak_ver == rp->peak_ver ? f->peak_live : f->live;
        rp_cell_add(&rp->sites[f->site].c, f, pl);
        if (f->thread != HT_RP_NONE)
            rp_cell_add(&rp->threads[f->thread].c, f, pl);
    }
}

/* A SITE record of image `proc` (of the file of pid `pid`). A restatement
 * (the same site in a later segment) changes nothing; a different
 * definition under a known id (a damaged or hostile trace) takes over,
 * and the blocks live under the old one are dropped first, so the figures
 * stay a consistent heap. */
static int
rp_fsite_define(ht_rp_t *rp, uint32_t proc, const ht_tf_rec_t *r)
{
    rp_impl_t *im = IMPL(rp);
    if (r->id == 0 || r->id >= HT_TF_MAX_SITE) {
        rp->n.bad_sites++;
        return 0;
    }
    uint64_t pid = rp->procs[proc].pid;
    rp_fsite_t *f = rp_fsite_find(rp, pid, r->id);
    if (f && f->size == r->size && f->stack == r->stack && f->weight == r->weight &&
        f->tid == r->tid && f->flags == r->flags)
        return 0;
    uint64_t weight = r->weight;
    if (weight == 0 || weight > RP_MAX_WEIGHT) {
        rp->n.bad_weights++;
        weight = weight == 0 ? HT_TF_WEIGHT_ONE : RP_MAX_WEIGHT;
    }
    unsigned __int128 b = ((unsigned __int128)r->size * weight + HT_TF_WEIGHT_ONE / 2) >>
                          HT_TF_WEIGHT_SHIFT;
    uint64_t bytes = b > RP_MAX_BYTES ? RP_MAX_BYTES : (uint64_t)b;
    // The allocating thread tells which image the site belongs to, when it
    // is known (a keyframe's sites carry no pid of their own).
    uint32_t t = rp_thread_get(rp, r->tid, proc);
    if (t == HT_RP_NONE)
        return -ENOMEM;
    uint32_t p = rp->threads[t].proc < rp->nprocs ? rp->threads[t].proc : proc;
    uint32_t site = rp_site_get(rp, p, r->stack, r->tid);
    if (site == HT_RP_NONE)
        return -ENOMEM;
    if (!f) {
        if (rp_grow((void **)&im->fsites, &im->cap_fsites, im->nfsites, sizeof *im->fsites) < 0 ||
            rp_fsite_index(rp, pid, r->id, im->nfsites) < 0)
            return -ENOMEM;
        f = &im->fsites[im->nfsites++];
        memset(f, 0, sizeof *f);
        f->key = rp_fsite_key(pid, r->id);
    } else {
        rp->n.bad_sites++;
        rp_fsite_clear(rp, f);
    }
    f->size = r->size;
    f->stack = r->stack;
    f->weight = r->weight;
    f->tid = r->tid;
    f->flags = r->flags;
    f->objs = weight;
    f->bytes = bytes;
    f->site = site;
    f->thread = t;
    return 0;
}

/* ---- processes, stacks, modules ---- */

static uint32_t
rp_proc_new(ht_rp_t *rp, uint64_t pid, uint32_t parent)
{
    rp_impl_t *im = IMPL(rp);
    if (rp_grow((void **)&rp->procs, &rp->cap_procs, rp->nprocs, sizeof *rp->procs) < 0 ||
        rp_grow((void **)&im->proc_ident, &im->cap_proc_ident, rp->nprocs,
                sizeof *im->proc_ident) < 0)
        return HT_RP_NONE;
    rp_idx_t *t = &im->pid_idx;
    if ((uint64_t)(t->n + 1) * 10 > (uint64_t)t->cap * 7 && rp_idx_grow(rp, t, rp_pid_hash) < 0)
        return HT_RP_NONE;
    ht_rp_proc_t *p = &rp->procs[rp->nprocs];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->parent = parent;
    p->fork_epoch = rp->epoch;
    im->proc_ident[rp->nprocs] = 0;
    uint32_t idx = rp->nprocs++;
    // The pid now means this image: replace an older image of the pid.
    uint32_t j = (uint32_t)rp_hash(pid) & (t->cap - 1);
    while (t->slot[j]) {
        if (rp->procs[t->slot[j] - 1].pid == pid) {
            t->slot[j] = idx + 1;
            return idx;
        }
        j = (j + 1) & (t->cap - 1);
    }
    t->slot[j] = idx + 1;
    t->n++;
    return idx;
}

uint32_t
ht_rp_proc(ht_rp_t *rp, uint64_t pid)
{
    rp_idx_t *t = &IMPL(rp)->pid_idx;
    if (t->cap) {
        uint32_t j = (uint32_t)rp_hash(pid) & (t->cap - 1);
        while (t->slot[j]) {
            if (rp->procs[t->slot[j] - 1].pid == pid)
                return t->slot[j] - 1;
            j = (j + 1) & (t->cap - 1);
        }
    }
    return rp_proc_new(rp, pid, HT_RP_NONE);
}

static const rp_stack_t *
rp_stack_find(const ht_rp_t *rp, uint32_t proc, uint64_t id, uint32_t *slot_out)
{
    const rp_impl_t *im = IMPL(rp);
    const rp_idx_t *t = &im->stack_idx;
    if (!t->cap)
        return NULL;
    uint32_t j = (uint32_t)rp_stack_hash_of(proc, id) & (t->cap - 1);
    while (t->slot[j]) {
        const rp_stack_t *s = &im->stacks[t->slot[j] - 1];
        if (s->id == id && s->proc == proc) {
            if (slot_out)
                *slot_out = j;
            return s;
        }
        j = (j + 1) & (t->cap - 1);
    }
    return NULL;
}

static int
rp_stack_define(ht_rp_t *rp, uint32_t proc, uint64_t id, const uint64_t *frames, uint32_t n)
{
    rp_impl_t *im = IMPL(rp);
    uint32_t slot = 0;
    const rp_stack_t *old = rp_stack_find(rp, proc, id, &slot);
    if (old && old->n == n && (n == 0 || !memcmp(im->frames + old->off, frames, n * 8)))
        return 0; // a keyframe restating a known stack
    if (im->nframes + n > im->cap_frames) {
        uint64_t ncap = im->cap_frames ? im->cap_frames : 4096;
        while (ncap < im->nframes + n)
            ncap *= 2;
        if (ncap > SIZE_MAX / 8)
            return -ENOMEM;
        uint64_t *nf = realloc(im->frames, ncap * 8);
        if (!nf)
            return -ENOMEM;
        im->frames = nf;
        im->cap_frames = ncap;
    }
    if (n)
        memcpy(im->frames + im->nframes, frames, n * 8);
    if (old) {
        // Redefined within one image (only a damaged or hostile trace
        // does this): the newest definition wins.
        rp_stack_t *s = &im->stacks[old - im->stacks];
        s->off = im->nframes;
        s->n = n;
        im->nframes += n;
        return 0;
    }
    rp_idx_t *t = &im->stack_idx;
    if ((uint64_t)(t->n + 1) * 10 > (uint64_t)t->cap * 7 && rp_idx_grow(rp, t, rp_stack_hash) < 0)
        return -ENOMEM;
    if (rp_grow((void **)&im->stacks, &im->cap_stacks, im->nstacks, sizeof *im->stacks) < 0)
        return -ENOMEM;
    im->stacks[im->nstacks] = (rp_stack_t){id, im->nframes, proc, n};
    im->nframes += n;
    uint32_t j = (uint32_t)rp_stack_hash_of(proc, id) & (t->cap - 1);
    while (t->slot[j])
        j = (j + 1) & (t->cap - 1);
    t->slot[j] = ++im->nstacks;
    t->n++;
    return 0;
}

bool
ht_rp_stack_frames(const ht_rp_t *rp, uint32_t proc, uint64_t id, const uint64_t **frames,
                   uint32_t *n)
{
    // A forked child shares every stack its parent interned before the
    // fork; parents are always older images, so the walk ends.
    while (proc < rp->nprocs) {
        const rp_stack_t *s = rp_stack_find(rp, proc, id, NULL);
        if (s) {
            // A stack of no frames (a damaged trace) may come before any
            // frames were stored: no arithmetic on a NULL store.
            static const uint64_t none[1];
            *frames = s->n ? IMPL(rp)->frames + s->off : none;
            *n = s->n;
            return true;
        }
        proc = rp->procs[proc].parent;
    }
    return false;
}

/* Does PROCESS record r name the image p is (its program and arguments)? */
static bool
rp_proc_is(const ht_rp_proc_t *p, const ht_tf_rec_t *r)
{
    if (!p->exe || !p->argv || strlen(p->exe) != r->str_len || strlen(p->argv) != r->str2_len ||
        (r->str_len && memcmp(p->exe, r->str, r->str_len) != 0)) // str is NULL when empty
        return false;
    // argv is kept with spaces for its NULs (rp_process_info)
    for (uint32_t i = 0; i < r->str2_len; i++)
        if (p->argv[i] != (r->str2[i] ? (char)r->str2[i] : ' '))
            return false;
    return true;
}

static void rp_clear_live_pid(ht_rp_t *rp, uint64_t pid);

uint32_t
ht_rp_ident(ht_rp_t *rp, uint32_t proc, const ht_tf_rec_t *r)
{
    rp_impl_t *im = IMPL(rp);
    if (proc >= rp->nprocs)
        return proc;
    switch (r->kind) {
    case HT_TF_STACK:
        if (rp_stack_define(rp, proc, r->id, r->frames, r->nframes) < 0)
            return HT_RP_NONE;
        im->proc_ident[proc]++;
        return proc;
    case HT_TF_STACK_REF: {
        // Its own frames, then the root side of a stack defined before it.
        // A base never defined, or shorter than `keep`, is damage: the
        // stack stays undefined (its sites print as unknown).
        const uint64_t *bf;
        uint32_t nb;
        if (!ht_rp_stack_frames(rp, proc, r->base, &bf, &nb) || r->keep > nb ||
            r->nframes + r->keep > HT_TF_MAX_FRAMES) {
            rp->n.stray_records++;
            return proc;
        }
        uint64_t f[HT_TF_MAX_FRAMES]; // bf points into the store, which may move
        memcpy(f, r->frames, r->nframes * sizeof *f);
        memcpy(f + r->nframes, bf + (nb - r->keep), r->keep * sizeof *f);
        if (rp_stack_define(rp, proc, r->id, f, r->nframes + (uint32_t)r->keep) < 0)
            return HT_RP_NONE;
        im->proc_ident[proc]++;
        return proc;
    }
    case HT_TF_PROCESS: {
        // An exec replaces the image behind the pid: new stack ids, new
        // module map, and the old image's heap is gone. A PROCESS record
        // that merely introduces an image we created for its first batch
        // does not. Every keyframe after an exec restates its PROCESS (flag
        // EXEC): that is a new image only when it names another program
        // than the one replayed (the exec's own segment, whose PROCESS
        // event then is that same exec, or an exec in segments not read).
        if (!(r->flags & HT_TF_PROC_EXEC)) {
            im->proc_ident[proc]++;
            return proc;
        }
        if (im->kf_open) {
            if (rp_proc_is(&rp->procs[proc], r))
                return proc;
            // An image made for this segment's pid, nothing in it yet (the
            // first segment read of an exec'd image): this is it.
            if (im->proc_ident[proc] == 0 && !rp->procs[proc].exe)
                return proc;
        } else if (im->proc_ident[proc] == 0) {
            im->proc_ident[proc]++;
            return proc;
        }
        uint64_t pid = rp->procs[proc].pid;
        rp_clear_live_pid(rp, pid);
        proc = rp_proc_new(rp, pid, HT_RP_NONE);
        if (proc == HT_RP_NONE)
            return HT_RP_NONE;
        if (!im->kf_open)
            im->proc_ident[proc]++;
        return proc;
    }
    case HT_TF_FORK: {
        uint32_t c = rp_proc_new(rp, r->child, proc);
        if (c == HT_RP_NONE)
            return HT_RP_NONE;
        im->proc_ident[c]++;
        return proc;
    }
    default:
        return proc;
    }
}

static int
rp_module_load(ht_rp_t *rp, uint32_t proc, const ht_tf_rec_t *r)
{
    ht_rp_module_t nm;
    memset(&nm, 0, sizeof nm);
    nm.proc = proc;
    nm.id = r->id;
    nm.bias = r->bias;
    nm.load_ts = r->ts;
    nm.nsegs = r->nsegs;
    memcpy(nm.segs, r->segs, r->nsegs * sizeof *r->segs);
    nm.build_id_len = r->bytes_len;
    if (r->bytes_len)
        memcpy(nm.build_id, r->bytes, r->bytes_len);
    ht_tf_segs_range(nm.bias, nm.segs, nm.nsegs, &nm.lo, &nm.hi);

    bool overlaps = false;
    for (uint32_t i = 0; i < rp->nmods; i++) {
        ht_rp_module_t *m = &rp->mods[i];
        if (m->proc != proc)
            continue;
        if (m->bias == nm.bias && m->lo == nm.lo && m->hi == nm.hi &&
            m->build_id_len == nm.build_id_len &&
            !memcmp(m->build_id, nm.build_id, nm.build_id_len) && m->path &&
            strlen(m->path) == r->str_len && !memcmp(m->path, r->str, r->str_len)) {
            // The same image at the same place (a keyframe restating it,
            // or a plugin reloaded where it was before): addresses resolve
            // the same, so no new epoch is needed.
            m->unloaded = 0;
            m->id = nm.id;
            return 0;
        }
        if (nm.lo < m->hi && m->lo < nm.hi)
            overlaps = true;
    }
    if (rp->nmods >= RP_MAX_MODULES) {
        rp->n.stray_records++;
        return 0;
    }
    nm.path = malloc((size_t)r->str_len + 1);
    if (!nm.path)
        return -ENOMEM;
    memcpy(nm.path, r->str, r->str_len);
    nm.path[r->str_len] = '\0';
    if (rp_grow((void **)&rp->mods, &rp->cap_mods, rp->nmods, sizeof *rp->mods) < 0) {
        free(nm.path);
        return -ENOMEM;
    }
    if (overlaps && rp->epoch < UINT32_MAX - 1)
        rp->epoch++;
    nm.epoch_from = rp->epoch;
    rp->mods[rp->nmods++] = nm;
    if (rp->on_module)
        rp->on_module(rp->on_module_ctx, &rp->mods[rp->nmods - 1]);
    return 0;
}

static void
rp_module_unload(ht_rp_t *rp, uint32_t proc, uint64_t id)
{
    for (uint32_t i = rp->nmods; i-- > 0;)
        if (rp->mods[i].proc == proc && rp->mods[i].id == id && !rp->mods[i].unloaded) {
            rp->mods[i].unloaded = 1;
            return;
        }
}

uint32_t
ht_rp_module_at(const ht_rp_t *rp, uint32_t proc, uint32_t epoch, uint64_t addr)
{
    while (proc < rp->nprocs) {
        uint32_t best = HT_RP_NONE;
        for (uint32_t i = 0; i < rp->nmods; i++) {
            const ht_rp_module_t *m = &rp->mods[i];
            if (m->proc == proc && m->epoch_from <= epoch && addr >= m->lo && addr < m->hi &&
                (best == HT_RP_NONE || m->epoch_from >= rp->mods[best].epoch_from))
                best = i;
        }
        if (best != HT_RP_NONE)
            return best;
        uint32_t fe = rp->procs[proc].fork_epoch;
        if (fe < epoch)
            epoch = fe;
        proc = rp->procs[proc].parent;
    }
    return HT_RP_NONE;
}

/* ---- keyframes ---- */

static void
rp_clear_live(ht_rp_t *rp)
{
    rp_impl_t *im = IMPL(rp);
    for (uint32_t i = 0; i < im->nfsites; i++)
        if (im->fsites[i].live)
            rp_fsite_clear(rp, &im->fsites[i]);
    rp->total_o = rp->total_b = 0;
}

/* The blocks of one pid stop being live: its image exec'd another. */
static void
rp_clear_live_pid(ht_rp_t *rp, uint64_t pid)
{
    rp_impl_t *im = IMPL(rp);
    for (uint32_t i = 0; i < im->nfsites; i++)
        if (im->fsites[i].live && (im->fsites[i].key >> 32) == (uint32_t)pid)
            rp_fsite_clear(rp, &im->fsites[i]);
}

void
ht_rp_keyframe(ht_rp_t *rp, const ht_tf_rec_t *kf, uint64_t seq, bool reseed)
{
    rp_impl_t *im = IMPL(rp);
    im->kf_open = true;
    im->kf_reseed = reseed;
    im->kf_ts = kf->ts;
    im->kf_seq = seq;
    im->kf_snapshot = kf->snapshot;
    im->kf_reason = kf->reason;
    if (reseed) {
        if (rp->first_ts != UINT64_MAX)
            rp->n.reseeds++;
        rp_clear_live(rp);
    }
    if (kf->ts < rp->first_ts)
        rp->first_ts = kf->ts;
    if (kf->ts > rp->last_ts)
        rp->last_ts = kf->ts;
}

static void
rp_totals(ht_rp_t *rp, uint32_t proc, const ht_tf_rec_t *r)
{
    uint32_t t = rp_thread_get(rp, r->tid, proc);
    if (t == HT_RP_NONE)
        return;
    ht_rp_thread_t *th = &rp->threads[t];
    // Cumulative counts: the latest record is the truth; a keyframe
    // restating older figures must not move them back.
    if (r->ts >= th->totals_ts && r->allocs >= th->allocs) {
        th->totals_ts = r->ts;
        th->allocs = r->allocs;
        th->alloc_bytes = r->alloc_bytes;
        th->frees = r->frees;
        th->free_bytes = r->free_bytes;
    }
}

static int
rp_thread_name(ht_rp_t *rp, uint32_t proc, const ht_tf_rec_t *r)
{
    uint32_t t = rp_thread_get(rp, r->tid, proc);
    if (t == HT_RP_NONE)
        return -ENOMEM;
    ht_rp_thread_t *th = &rp->threads[t];
    char *n = malloc((size_t)r->str_len + 1);
    if (!n)
        return -ENOMEM;
    memcpy(n, r->str, r->str_len);
    n[r->str_len] = '\0';
    free(th->name);
    th->name = n;
    th->proc = proc;
    return 0;
}

static int
rp_process_info(ht_rp_t *rp, uint32_t proc, const ht_tf_rec_t *r)
{
    if (proc >= rp->nprocs)
        return 0;
    ht_rp_proc_t *p = &rp->procs[proc];
    char *exe = malloc((size_t)r->str_len + 1), *argv = malloc((size_t)r->str2_len + 1);
    if (!exe || !argv) {
        free(exe);
        free(argv);
        return -ENOMEM;
    }
    memcpy(exe, r->str, r->str_len);
    exe[r->str_len] = '\0';
    // argv is NUL-separated on the wire; spaces read better.
    for (uint32_t i = 0; i < r->str2_len; i++)
        argv[i] = r->str2[i] ? (char)r->str2[i] : ' ';
    argv[r->str2_len] = '\0';
    free(p->exe);
    free(p->argv);
    p->exe = exe;
    p->argv = argv;
    p->ppid = r->ppid;
    p->flags = r->flags;
    p->sample_rate = r->sample_rate;
    return 0;
}

int
ht_rp_keyframe_rec(ht_rp_t *rp, uint32_t proc, const ht_tf_rec_t *r)
{
    rp_impl_t *im = IMPL(rp);
    if (!im->kf_open) {
        rp->n.stray_records++;
        return 0;
    }
    switch (r->kind) {
    case HT_TF_SITE:
        return rp_fsite_define(rp, proc, r);
    case HT_TF_LIVE: {
        if (!im->kf_reseed)
            return 0;
        rp_fsite_t *f = rp_fsite_find(rp, rp->procs[proc].pid, r->site);
        if (!f || r->count > RP_MAX_LIVE) {
            rp->n.bad_sites++;
            return 0;
        }
        rp_fsite_restore(rp, f, r->count, im->kf_ts);
        return 0;
    }
    case HT_TF_MODULE:
        return im->kf_reseed ? rp_module_load(rp, proc, r) : 0;
    case HT_TF_THREAD:
        return rp_thread_name(rp, proc, r);
    case HT_TF_TOTALS:
        rp_totals(rp, proc, r);
        return 0;
    case HT_TF_PROCESS:
        return rp_process_info(rp, proc, r);
    case HT_TF_STACK:
    case HT_TF_STACK_REF:
        return 0; // defined in file order by ht_rp_ident
    case HT_TF_MEMSTAT:
        rp->rss = r->rss;
        rp->anon = r->anon;
        rp->heap_free = r->heap_free;
        rp->heap_total = r->heap_total;
        rp->memstat_ts = r->ts;
        return 0;
    default:
        rp->n.stray_records++;
        return 0;
    }
}

int
ht_rp_keyframe_end(ht_rp_t *rp, const ht_tf_rec_t *r)
{
    rp_impl_t *im = IMPL(rp);
    if (!im->kf_open) {
        rp->n.stray_records++;
        return 0;
    }
    im->kf_open = false;
    if (im->kf_reseed)
        rp_peak_check(rp, im->kf_ts);
    if (im->kf_snapshot == 0)
        return 0;
    if (rp_grow((void **)&rp->snaps, &rp->cap_snaps, rp->nsnaps, sizeof *rp->snaps) < 0)
        return -ENOMEM;
    ht_rp_snap_t *s = &rp->snaps[rp->nsnaps++];
    s->number = im->kf_snapshot - 1;
    s->ts = im->kf_ts;
    s->reason = im->kf_reason;
    s->seq = im->kf_seq;
    s->live_o = rp->total_o;
    s->live_b = rp->total_b;
    s->rss = rp->rss;
    s->heap_free = rp->heap_free;
    s->memstat_ts = rp->memstat_ts;
    return 0;
}

/* ---- events ---- */

static void
rp_capture_leaks(ht_rp_t *rp)
{
    rp_impl_t *im = IMPL(rp);
    for (uint32_t i = 0; i < im->nfsites; i++)
        im->fsites[i].leaks = im->fsites[i].live;
}

/* One EV_ALLOC, EV_FREE or EV_FREE_TMP of file site f (NULL: a site the
 * file never defined) at ts; the caller counted it in n.events. */
static inline void
rp_site_event(ht_rp_t *rp, rp_fsite_t *f, uint8_t kind, uint64_t ts)
{
    if (kind == HT_TF_EV_ALLOC) {
        rp->n.allocs++;
        if (f)
            rp_fsite_alloc1(rp, f, ts);
        else
            rp->n.bad_sites++;
        return;
    }
    rp->n.frees++;
    if (f && f->live)
        rp_fsite_free1(rp, f, kind == HT_TF_EV_FREE_TMP);
    else
        rp->n.unknown_frees++; // before the window (a wrapped ring restates only the live), or damaged
}

long
ht_rp_event_run(ht_rp_t *rp, uint32_t proc, const uint8_t **pp, const uint8_t *end,
                uint64_t tick, uint64_t *ts, uint64_t *tid)
{
    rp_impl_t *im = IMPL(rp);
    uint64_t pid = proc < rp->nprocs ? rp->procs[proc].pid : 0;
    const rp_fsmap_t *m = proc < rp->nprocs ? rp_fsmap(im, pid, false) : NULL;
    const uint32_t *ix = m ? m->ix : NULL;
    uint64_t cap = m ? m->cap : 0;
    const uint8_t *p = *pp;
    long n = 0;
    while (p < end) {
        uint8_t k = *p;
        if (k < HT_TF_PACKED_BASE && k != HT_TF_TICK && k != HT_TF_EV_THREAD)
            break;
        const uint8_t *q = p + 1;
        uint64_t v;
        if (q < end && q[0] < 0x80) { // one to three bytes: nearly all of them
            v = *q++;
        } else if (end - q >= 2 && q[1] < 0x80) {
            v = (uint64_t)(q[0] & 0x7f) | (uint64_t)q[1] << 7;
            q += 2;
        } else if (end - q >= 3 && q[1] >= 0x80 && q[2] < 0x80) {
            v = (uint64_t)(q[0] & 0x7f) | (uint64_t)(q[1] & 0x7f) << 7 | (uint64_t)q[2] << 14;
            q += 3;
        } else if (ht_tf_varint_read(&q, end, &v) < 0) {
            *pp = p;
            return -EBADMSG;
        }
        p = q;
        n++;
        if (k == HT_TF_TICK) {
            *ts += v * tick; // wraps harmlessly on hostile input, as in trace_dec.c
            ht_rp_tick(rp, *ts);
            continue;
        }
        if (k == HT_TF_EV_THREAD) {
            *tid = v;
            continue;
        }
        // A packed event (trace.h): the site's low 6 bits are in k.
        uint64_t site = v << 6 | (k & 0x3fu);
        rp_fsite_t *f = site < cap && ix[site] ? &im->fsites[ix[site] - 1]
                        : proc < rp->nprocs && !(v >> 58) ? rp_fsite_find(rp, pid, site)
                                                          : NULL;
        rp->n.events++;
        rp_site_event(rp, f, (uint8_t)HT_TF_PACKED_KIND(k), *ts);
    }
    *pp = p;
    return n;
}

void
ht_rp_tick(ht_rp_t *rp, uint64_t ts)
{
    if (ts < rp->first_ts)
        rp->first_ts = ts;
    if (ts > rp->last_ts)
        rp->last_ts = ts;
}

int
ht_rp_event(ht_rp_t *rp, uint32_t proc, uint64_t tid, const ht_tf_rec_t *r)
{
    if (proc >= rp->nprocs)
        return -EINVAL;
    rp->n.events++;
    if (r->ts < rp->first_ts)
        rp->first_ts = r->ts;
    if (r->ts > rp->last_ts)
        rp->last_ts = r->ts;
    switch (r->kind) {
    case HT_TF_EV_ALLOC:
    case HT_TF_EV_FREE:
    case HT_TF_EV_FREE_TMP:
        rp_site_event(rp, rp_fsite_find(rp, rp->procs[proc].pid, r->site), r->kind, r->ts);
        return 0;
    case HT_TF_SITE:
        return rp_fsite_define(rp, proc, r);
    case HT_TF_UNKNOWN_FREES:
        // Cumulative per process: the latest count is the truth.
        if (r->frees > rp->n.untracked_frees && r->frees < RP_MAX_BYTES)
            rp->n.untracked_frees = r->frees;
        return 0;
    case HT_TF_MODULE:
        return rp_module_load(rp, proc, r);
    case HT_TF_UNMODULE:
        rp_module_unload(rp, proc, r->id);
        return 0;
    case HT_TF_THREAD:
        return rp_thread_name(rp, proc, r);
    case HT_TF_THREAD_END:
        return 0;
    case HT_TF_TOTALS:
        rp_totals(rp, proc, r);
        return 0;
    case HT_TF_EXIT: {
        ht_rp_proc_t *p = &rp->procs[proc];
        p->exited = true;
        p->exit_how = (uint32_t)(r->how & HT_TF_EXIT_HOW_MASK);
        p->counts_cut = (r->how & HT_TF_EXIT_COUNTS_CUT) != 0;
        p->exit_code = (uint32_t)r->code;
        p->exit_ts = r->ts;
        // The main process is the first image of the file's pid (an exec
        // keeps the pid: its last image's exit is the one that counts).
        if (p->pid == rp->main_pid && p->parent == HT_RP_NONE) {
            rp->exited = true;
            rp->exit_how = p->exit_how;
            rp->counts_cut = p->counts_cut;
            rp->exit_code = p->exit_code;
            rp->exit_ts = r->ts;
            rp_capture_leaks(rp);
        }
        return 0;
    }
    case HT_TF_PROCESS:
        return rp_process_info(rp, proc, r);
    case HT_TF_FORK: {
        // The child was created in file order; its view of the parent's
        // module map ends now, in time order.
        uint32_t c = ht_rp_proc(rp, r->child);
        if (c != HT_RP_NONE && rp->procs[c].parent == proc)
            rp->procs[c].fork_epoch = rp->epoch;
        return 0;
    }
    case HT_TF_LOST:
        rp->n.lost_events += r->events;
        rp->n.lost_waits += r->waits;
        rp->n.lost_wait_ns += r->wait_ns;
        return 0;
    case HT_TF_MEMSTAT:
        rp->rss = r->rss;
        rp->anon = r->anon;
        rp->heap_free = r->heap_free;
        rp->heap_total = r->heap_total;
        rp->memstat_ts = r->ts;
        return 0;
    case HT_TF_SNAPSHOT_REQ:
        return 0;
    default:
        rp->n.events--;
        rp->n.stray_records++;
        return 0;
    }
}

void
ht_rp_finish(ht_rp_t *rp)
{
    if (!rp->exited)
        rp_capture_leaks(rp);
    ht_rp_sync(rp);
    if (rp->first_ts == UINT64_MAX)
        rp->first_ts = rp->last_ts;
}
