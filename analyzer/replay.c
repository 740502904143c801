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
/* Distinct module images we keep; each MODULE is checked against all of
 * them, so a hostile trace of millions of MODULE records must not make
 * that quadratic. Real programs stay in the hundreds. */
#define RP_MAX_MODULES 16384

typedef struct rp_live_s {
    uint64_t key, bytes, objs;
    uint32_t site, thread; // site == HT_RP_NONE: empty slot
} rp_live_t;

typedef struct rp_stack_s {
    uint64_t id;
    uint64_t off; // into frames
    uint32_t proc, n;
} rp_stack_t;

typedef struct rp_idx_s {
    uint32_t *slot; // index + 1, 0 empty
    uint32_t cap, n;
} rp_idx_t;

typedef struct rp_impl_s {
    rp_live_t *live;
    uint64_t live_cap, live_n;
    rp_idx_t site_idx, thread_idx, stack_idx, pid_idx;
    rp_stack_t *stacks;
    uint32_t nstacks, cap_stacks;
    uint64_t *frames;
    uint64_t nframes, cap_frames;
    uint64_t next_id; // id of the next EV_ALLOC
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
    free(im->live);
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

static inline void
rp_cell_touch(const ht_rp_t *rp, ht_rp_cell_t *c)
{
    if (c->peak_ver != rp->peak_ver) {
        c->peak_o = c->live_o;
        c->peak_b = c->live_b;
        c->peak_ver = rp->peak_ver;
    }
}

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

/* ---- the live set: linear probing with backward-shift deletion ----
 *
 * Keyed by allocation id (format 2): a trace file is one id space, shared
 * by every image of its pid (an exec goes on counting), so an id names one
 * allocation exactly and no address can be ambiguous. Another file (a
 * forked child's) counts from 0 again: the key carries the image too, in
 * bits no id reaches (ids stay below HT_TF_MAX_BACK = 2^48). */

static inline uint64_t
rp_live_key(uint32_t proc, uint64_t id)
{
    return id ^ ((uint64_t)proc << 48);
}

static int
rp_live_grow(rp_impl_t *im)
{
    uint64_t ncap = im->live_cap ? im->live_cap * 2 : 1024;
    if (ncap > (SIZE_MAX / sizeof(rp_live_t)))
        return -ENOMEM;
    rp_live_t *nl = malloc(ncap * sizeof *nl);
    if (!nl)
        return -ENOMEM;
    for (uint64_t i = 0; i < ncap; i++)
        nl[i].site = HT_RP_NONE;
    for (uint64_t i = 0; i < im->live_cap; i++) {
        if (im->live[i].site == HT_RP_NONE)
            continue;
        uint64_t j = rp_hash(im->live[i].key) & (ncap - 1);
        while (nl[j].site != HT_RP_NONE)
            j = (j + 1) & (ncap - 1);
        nl[j] = im->live[i];
    }
    free(im->live);
    im->live = nl;
    im->live_cap = ncap;
    return 0;
}

static rp_live_t *
rp_live_find(rp_impl_t *im, uint64_t key)
{
    if (!im->live_cap)
        return NULL;
    uint64_t j = rp_hash(key) & (im->live_cap - 1);
    while (im->live[j].site != HT_RP_NONE) {
        if (im->live[j].key == key)
            return &im->live[j];
        j = (j + 1) & (im->live_cap - 1);
    }
    return NULL;
}

static void
rp_live_remove(rp_impl_t *im, rp_live_t *e)
{
    uint64_t mask = im->live_cap - 1;
    uint64_t i = (uint64_t)(e - im->live);
    uint64_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (im->live[j].site == HT_RP_NONE)
            break;
        uint64_t home = rp_hash(im->live[j].key) & mask;
        // Move j back into the hole at i unless its home lies cyclically
        // in (i, j]: then it is still reachable from its home without i.
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            im->live[i] = im->live[j];
            i = j;
        }
    }
    im->live[i].site = HT_RP_NONE;
    im->live_n--;
}

/* ---- allocation and free ---- */

static void
rp_cell_sub_live(ht_rp_t *rp, ht_rp_cell_t *c, uint64_t objs, uint64_t bytes)
{
    rp_cell_touch(rp, c);
    c->live_o -= objs;
    c->live_b -= bytes;
}

static void
rp_drop_entry(ht_rp_t *rp, rp_live_t *e, bool temporary)
{
    ht_rp_site_t *s = &rp->sites[e->site];
    rp_cell_sub_live(rp, &s->c, e->objs, e->bytes);
    ht_rp_thread_t *th = e->thread != HT_RP_NONE ? &rp->threads[e->thread] : NULL;
    if (th)
        rp_cell_sub_live(rp, &th->c, e->objs, e->bytes);
    if (temporary) {
        s->c.temp_o += e->objs;
        s->c.temp_b += e->bytes;
        if (th) {
            th->c.temp_o += e->objs;
            th->c.temp_b += e->bytes;
        }
    }
    rp->total_o -= e->objs;
    rp->total_b -= e->bytes;
    rp_live_remove(IMPL(rp), e);
}

// counted: an allocation event (adds to alloc_*); otherwise a LIVE record
// of a keyframe that restores an allocation made before the window.
static int
rp_alloc(ht_rp_t *rp, uint32_t proc, uint32_t thread, uint64_t ts, uint64_t key, uint64_t size,
         uint64_t stack, uint64_t weight, bool counted)
{
    rp_impl_t *im = IMPL(rp);
    if (weight == 0 || weight > RP_MAX_WEIGHT) {
        rp->n.bad_weights++;
        weight = weight == 0 ? HT_TF_WEIGHT_ONE : RP_MAX_WEIGHT;
    }
    unsigned __int128 b = ((unsigned __int128)size * weight + HT_TF_WEIGHT_ONE / 2) >>
                          HT_TF_WEIGHT_SHIFT;
    uint64_t bytes = b > RP_MAX_BYTES ? RP_MAX_BYTES : (uint64_t)b;
    uint64_t tid = thread != HT_RP_NONE ? rp->threads[thread].tid : 0;
    uint32_t site = rp_site_get(rp, proc, stack, tid);
    if (site == HT_RP_NONE)
        return -ENOMEM;
    rp_live_t *old = rp_live_find(im, key);
    if (old) {
        // An id is given once: only a hostile or damaged trace (a LIVE
        // with an id not yet reached) gets here. Drop the old entry, so
        // the figures stay a consistent heap.
        rp->n.dup_allocs++;
        rp_drop_entry(rp, old, false);
    }
    if ((im->live_n + 1) * 10 > im->live_cap * 7 && rp_live_grow(im) < 0)
        return -ENOMEM;
    uint64_t j = rp_hash(key) & (im->live_cap - 1);
    while (im->live[j].site != HT_RP_NONE)
        j = (j + 1) & (im->live_cap - 1);
    im->live[j] = (rp_live_t){key, bytes, weight, site, thread};
    im->live_n++;

    ht_rp_cell_t *cs = &rp->sites[site].c;
    rp_cell_touch(rp, cs);
    cs->live_o += weight;
    cs->live_b += bytes;
    if (counted) {
        cs->alloc_o += weight;
        cs->alloc_b += bytes;
    }
    if (thread != HT_RP_NONE) {
        ht_rp_thread_t *th = &rp->threads[thread];
        rp_cell_touch(rp, &th->c);
        th->c.live_o += weight;
        th->c.live_b += bytes;
        if (counted) {
            th->c.alloc_o += weight;
            th->c.alloc_b += bytes;
            th->has_last = true;
            th->last_alloc = key;
        }
    }
    rp->total_o += weight;
    rp->total_b += bytes;
    rp_peak_check(rp, ts);
    return 0;
}

static void
rp_free(ht_rp_t *rp, uint32_t thread, uint64_t key)
{
    rp_live_t *e = rp_live_find(IMPL(rp), key);
    ht_rp_thread_t *th = thread != HT_RP_NONE ? &rp->threads[thread] : NULL;
    if (!e) {
        rp->n.unknown_frees++;
    } else {
        // heaptrack's "temporary": freed with no other allocation event in
        // the thread between its allocation and this free.
        bool temp = th && th->has_last && th->last_alloc == key;
        rp_drop_entry(rp, e, temp);
    }
    if (th)
        th->has_last = false;
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
            *frames = IMPL(rp)->frames + s->off;
            *n = s->n;
            return true;
        }
        proc = rp->procs[proc].parent;
    }
    return false;
}

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
    case HT_TF_PROCESS:
        // An exec replaces the image behind the pid: new stack ids, new
        // module map. A PROCESS record that merely introduces an image we
        // created for its first batch does not.
        if ((r->flags & HT_TF_PROC_EXEC) && im->proc_ident[proc] > 0) {
            proc = rp_proc_new(rp, rp->procs[proc].pid, HT_RP_NONE);
            if (proc == HT_RP_NONE)
                return HT_RP_NONE;
        }
        im->proc_ident[proc]++;
        return proc;
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

static void
rp_module_range(ht_rp_module_t *m)
{
    m->lo = UINT64_MAX;
    m->hi = 0;
    for (uint32_t i = 0; i < m->nsegs; i++) {
        uint64_t lo = m->bias + m->segs[i].vaddr;
        uint64_t hi = lo + m->segs[i].memsz;
        if (hi < lo) // hostile: wraps; an empty range matches nothing
            continue;
        if (lo < m->lo)
            m->lo = lo;
        if (hi > m->hi)
            m->hi = hi;
    }
    if (m->lo >= m->hi)
        m->lo = m->hi = 0;
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
    rp_module_range(&nm);

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
    for (uint64_t i = 0; i < im->live_cap; i++) {
        rp_live_t *e = &im->live[i];
        if (e->site == HT_RP_NONE)
            continue;
        rp_cell_sub_live(rp, &rp->sites[e->site].c, e->objs, e->bytes);
        if (e->thread != HT_RP_NONE)
            rp_cell_sub_live(rp, &rp->threads[e->thread].c, e->objs, e->bytes);
        e->site = HT_RP_NONE;
    }
    im->live_n = 0;
    rp->total_o = rp->total_b = 0;
    for (uint32_t i = 0; i < rp->nthreads; i++)
        rp->threads[i].has_last = false;
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
    // Every keyframe restates the id counter, so a segment read alone (or
    // after a gap) numbers its allocations right.
    im->next_id = kf->next_id;
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
    case HT_TF_LIVE: {
        if (!im->kf_reseed)
            return 0;
        // The allocating thread tells which image it belongs to, when it
        // is known; a LIVE carries no pid of its own.
        uint32_t t = rp_thread_get(rp, r->tid, proc);
        if (t == HT_RP_NONE)
            return -ENOMEM;
        uint32_t p = rp->threads[t].proc < rp->nprocs ? rp->threads[t].proc : proc;
        return rp_alloc(rp, p, t, im->kf_ts, rp_live_key(p, r->id), r->size, r->stack, r->weight,
                        false);
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
    for (uint32_t i = 0; i < rp->nsites; i++) {
        rp->sites[i].c.leak_o = rp->sites[i].c.live_o;
        rp->sites[i].c.leak_b = rp->sites[i].c.live_b;
    }
    for (uint32_t i = 0; i < rp->nthreads; i++) {
        rp->threads[i].c.leak_o = rp->threads[i].c.live_o;
        rp->threads[i].c.leak_b = rp->threads[i].c.live_b;
    }
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
    case HT_TF_EV_ALLOC_W: {
        uint32_t t = rp_thread_get(rp, tid, proc);
        if (t == HT_RP_NONE)
            return -ENOMEM;
        rp->n.allocs++;
        uint64_t id = IMPL(rp)->next_id++;
        return rp_alloc(rp, proc, t, r->ts, rp_live_key(proc, id), r->size, r->stack, r->weight,
                        true);
    }
    case HT_TF_EV_FREE: {
        uint32_t t = rp_thread_get(rp, tid, proc);
        if (t == HT_RP_NONE)
            return -ENOMEM;
        rp->n.frees++;
        rp_impl_t *im = IMPL(rp);
        if (r->back >= im->next_id || r->back > HT_TF_MAX_BACK) {
            // Names an allocation before the id space began: corrupt.
            rp->n.unknown_frees++;
            rp->threads[t].has_last = false;
            return 0;
        }
        rp_free(rp, t, rp_live_key(proc, im->next_id - 1 - r->back));
        return 0;
    }
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
        p->exit_how = (uint32_t)r->how;
        p->exit_code = (uint32_t)r->code;
        p->exit_ts = r->ts;
        // The main process is the first image of the file's pid (an exec
        // keeps the pid: its last image's exit is the one that counts).
        if (p->pid == rp->main_pid && p->parent == HT_RP_NONE) {
            rp->exited = true;
            rp->exit_how = p->exit_how;
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
    if (rp->first_ts == UINT64_MAX)
        rp->first_ts = rp->last_ts;
}
