/*
 * formats/trace_enc.c -- record encoder. Compiled into the shim as well as
 * the tools: no malloc, no stdio, no locks; async-signal-safe.
 */
#include "formats/trace.h"

#include <errno.h>
#include <string.h>

const char *
ht_tf_kind_name(unsigned kind)
{
    switch (kind) {
#define HT_TF_NAME(name, code, fields) \
    case code:                         \
        return #name;
        HT_TF_RECORDS(HT_TF_NAME)
#undef HT_TF_NAME
    default:
        return NULL;
    }
}

unsigned
ht_tf_varint_len(uint64_t v)
{
    unsigned n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

unsigned
ht_tf_varint_write(uint8_t *p, uint64_t v)
{
    return (unsigned)(ht_tf_vput(p, v) - p);
}

void
ht_tf_enc_init(ht_tf_enc_t *e, uint8_t *buf, size_t cap)
{
    e->p = buf;
    e->end = buf + cap;
    e->last_ts = 0;
    e->tick = 1;
}

void
ht_tf_enc_init_seg(ht_tf_enc_t *e, uint8_t *buf, size_t cap)
{
    ht_tf_enc_init(e, buf, cap);
    e->tick = HT_TF_SEG_TICK_NS;
}

/*
 * A record is written field by field into [p, end); the first field that
 * does not fit marks the writer failed, and enc_finish() then rolls back to
 * the record's start. This keeps every put to a few lines without a
 * separate size pass.
 */
typedef struct enc_w_s {
    ht_tf_enc_t *e;
    uint8_t *p;
    uint64_t ts;
    uint64_t tick;
    int full;
} enc_w_t;

static inline void
enc_begin(enc_w_t *w, ht_tf_enc_t *e, uint8_t kind)
{
    w->e = e;
    w->p = e->p;
    w->ts = e->last_ts;
    w->tick = e->tick ? e->tick : 1;
    w->full = (w->p >= e->end);
    if (!w->full)
        *w->p++ = kind;
}

static inline void
enc_u(enc_w_t *w, uint64_t v)
{
    if (w->full)
        return;
    if ((size_t)(w->e->end - w->p) < 10 && (size_t)(w->e->end - w->p) < ht_tf_varint_len(v)) {
        w->full = 1;
        return;
    }
    w->p += ht_tf_varint_write(w->p, v);
}

/* A `p` field: ht_tf_pput where 8 bytes are free, else as many as it
 * writes, byte by byte. */
static inline void
enc_p(enc_w_t *w, uint64_t v)
{
    if (w->full)
        return;
    size_t room = (size_t)(w->e->end - w->p);
    size_t need = v < HT_TF_P_ESC ? 6 : 6 + ht_tf_varint_len(v);
    if (room < need) {
        w->full = 1;
        return;
    }
    if (room >= need + 2) {
        w->p = ht_tf_pput(w->p, v);
        return;
    }
    uint64_t x = v < HT_TF_P_ESC ? v : HT_TF_P_ESC;
    for (int i = 0; i < 6; i++)
        *w->p++ = (uint8_t)(x >> (8 * i));
    if (x == HT_TF_P_ESC)
        w->p += ht_tf_varint_write(w->p, v);
}

/* Timestamp delta in ticks. A timestamp older than the base (two clocks
 * read out of order across a batch) is clamped to the base, so deltas stay
 * unsigned. The base moves by whole ticks only: it stays exact in ns, so
 * the quantization error of a decoded time is always under one tick and
 * never accumulates over a stream. */
static inline void
enc_d(enc_w_t *w, uint64_t ts)
{
    if (ts < w->ts)
        ts = w->ts;
    // Rings count in ns: no division there (a 64-bit div is tens of
    // cycles, on every event the shim writes).
    uint64_t d = ts - w->ts;
    if (w->tick != 1)
        d /= w->tick;
    enc_u(w, d);
    w->ts += d * w->tick;
}

static inline void
enc_bytes(enc_w_t *w, const void *b, uint32_t n)
{
    enc_u(w, n);
    if (w->full)
        return;
    if ((size_t)(w->e->end - w->p) < n) {
        w->full = 1;
        return;
    }
    if (n)
        memcpy(w->p, b, n);
    w->p += n;
}

static inline int
enc_finish(enc_w_t *w)
{
    if (w->full)
        return -ENOSPC;
    w->e->p = w->p;
    w->e->last_ts = w->ts;
    return 0;
}

int
ht_tf_put_batch(ht_tf_enc_t *e, uint64_t pid, uint64_t tid, uint64_t ts)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_BATCH);
    enc_u(&w, pid);
    enc_u(&w, tid);
    enc_u(&w, ts);
    w.ts = ts;
    return enc_finish(&w);
}

int
ht_tf_put_alloc(ht_tf_enc_t *e, uint64_t ts, uint64_t ptr, uint64_t size, uint64_t stack,
                uint64_t weight)
{
    enc_w_t w;
    int exact = (weight == HT_TF_WEIGHT_ONE);
    enc_begin(&w, e, exact ? HT_TF_ALLOC : HT_TF_ALLOC_W);
    enc_d(&w, ts);
    enc_p(&w, ptr);
    enc_u(&w, size);
    enc_u(&w, stack);
    if (!exact)
        enc_u(&w, weight);
    return enc_finish(&w);
}

int
ht_tf_put_free(ht_tf_enc_t *e, uint64_t ts, uint64_t ptr)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_FREE);
    enc_d(&w, ts);
    enc_p(&w, ptr);
    return enc_finish(&w);
}

int
ht_tf_put_realloc(ht_tf_enc_t *e, uint64_t ts, uint64_t from, uint64_t ptr, uint64_t size,
                  uint64_t stack, uint64_t later)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_REALLOC);
    enc_d(&w, ts);
    enc_p(&w, from);
    enc_p(&w, ptr);
    enc_u(&w, size);
    enc_u(&w, stack);
    enc_u(&w, later);
    return enc_finish(&w);
}

int
ht_tf_put_stack(ht_tf_enc_t *e, uint64_t id, const uint64_t *frames, uint32_t n)
{
    enc_w_t w;
    if (n > HT_TF_MAX_FRAMES)
        n = HT_TF_MAX_FRAMES;
    enc_begin(&w, e, HT_TF_STACK);
    enc_u(&w, id);
    enc_u(&w, n);
    for (uint32_t i = 0; i < n && !w.full; i++)
        enc_u(&w, i == 0 ? frames[0] : ht_tf_zigzag((int64_t)(frames[i] - frames[i - 1])));
    return enc_finish(&w);
}

int
ht_tf_put_stack_ref(ht_tf_enc_t *e, uint64_t id, uint64_t base, uint64_t keep,
                    const uint64_t *frames, uint32_t n)
{
    enc_w_t w;
    if (n > HT_TF_MAX_FRAMES)
        n = HT_TF_MAX_FRAMES;
    enc_begin(&w, e, HT_TF_STACK_REF);
    enc_u(&w, id);
    enc_u(&w, base);
    enc_u(&w, keep);
    enc_u(&w, n);
    for (uint32_t i = 0; i < n && !w.full; i++)
        enc_u(&w, i == 0 ? frames[0] : ht_tf_zigzag((int64_t)(frames[i] - frames[i - 1])));
    return enc_finish(&w);
}

int
ht_tf_put_module(ht_tf_enc_t *e, uint64_t ts, uint64_t id, uint64_t bias, const char *path,
                 uint32_t path_len, const uint8_t *build_id, uint32_t build_id_len,
                 const ht_tf_seg_t *segs, uint32_t nsegs)
{
    enc_w_t w;
    if (path_len > HT_TF_MAX_STR)
        path_len = HT_TF_MAX_STR;
    if (build_id_len > HT_TF_MAX_BUILD_ID)
        build_id_len = HT_TF_MAX_BUILD_ID;
    if (nsegs > HT_TF_MAX_SEGS)
        nsegs = HT_TF_MAX_SEGS;
    enc_begin(&w, e, HT_TF_MODULE);
    enc_d(&w, ts);
    enc_u(&w, id);
    enc_u(&w, bias);
    enc_bytes(&w, path, path_len);
    enc_bytes(&w, build_id, build_id_len);
    enc_u(&w, nsegs);
    for (uint32_t i = 0; i < nsegs; i++) {
        enc_u(&w, segs[i].vaddr);
        enc_u(&w, segs[i].memsz);
        enc_u(&w, segs[i].flags);
    }
    return enc_finish(&w);
}

int
ht_tf_put_unmodule(ht_tf_enc_t *e, uint64_t ts, uint64_t id)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_UNMODULE);
    enc_d(&w, ts);
    enc_u(&w, id);
    return enc_finish(&w);
}

int
ht_tf_put_thread(ht_tf_enc_t *e, uint64_t ts, uint64_t tid, const char *name, uint32_t name_len)
{
    enc_w_t w;
    if (name_len > HT_TF_MAX_STR)
        name_len = HT_TF_MAX_STR;
    enc_begin(&w, e, HT_TF_THREAD);
    enc_d(&w, ts);
    enc_u(&w, tid);
    enc_bytes(&w, name, name_len);
    return enc_finish(&w);
}

int
ht_tf_put_thread_end(ht_tf_enc_t *e, uint64_t ts, uint64_t tid)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_THREAD_END);
    enc_d(&w, ts);
    enc_u(&w, tid);
    return enc_finish(&w);
}

int
ht_tf_put_totals(ht_tf_enc_t *e, uint64_t ts, uint64_t tid, uint64_t allocs, uint64_t alloc_bytes,
                 uint64_t frees, uint64_t free_bytes)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_TOTALS);
    enc_d(&w, ts);
    enc_u(&w, tid);
    enc_u(&w, allocs);
    enc_u(&w, alloc_bytes);
    enc_u(&w, frees);
    enc_u(&w, free_bytes);
    return enc_finish(&w);
}

int
ht_tf_put_exit(ht_tf_enc_t *e, uint64_t ts, uint64_t how, uint64_t code)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_EXIT);
    enc_d(&w, ts);
    enc_u(&w, how);
    enc_u(&w, code);
    return enc_finish(&w);
}

int
ht_tf_put_process(ht_tf_enc_t *e, uint64_t ts, uint64_t pid, uint64_t ppid, uint64_t flags,
                  uint64_t sample_rate, uint64_t max_depth, const char *exe, uint32_t exe_len,
                  const char *argv, uint32_t argv_len)
{
    enc_w_t w;
    if (exe_len > HT_TF_MAX_STR)
        exe_len = HT_TF_MAX_STR;
    if (argv_len > HT_TF_MAX_STR)
        argv_len = HT_TF_MAX_STR;
    enc_begin(&w, e, HT_TF_PROCESS);
    enc_d(&w, ts);
    enc_u(&w, pid);
    enc_u(&w, ppid);
    enc_u(&w, flags);
    enc_u(&w, sample_rate);
    enc_u(&w, max_depth);
    enc_bytes(&w, exe, exe_len);
    enc_bytes(&w, argv, argv_len);
    return enc_finish(&w);
}

int
ht_tf_put_fork(ht_tf_enc_t *e, uint64_t ts, uint64_t child)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_FORK);
    enc_d(&w, ts);
    enc_u(&w, child);
    return enc_finish(&w);
}

int
ht_tf_put_live(ht_tf_enc_t *e, uint64_t site, uint64_t count)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_LIVE);
    enc_u(&w, site);
    enc_u(&w, count);
    return enc_finish(&w);
}

int
ht_tf_put_keyframe(ht_tf_enc_t *e, uint64_t ts, uint64_t seq, uint64_t snapshot, uint64_t reason)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_KEYFRAME);
    enc_u(&w, ts);
    enc_u(&w, seq);
    enc_u(&w, snapshot);
    enc_u(&w, reason);
    w.ts = ts; // a keyframe, like a batch, sets the timestamp base
    return enc_finish(&w);
}

int
ht_tf_put_keyframe_end(ht_tf_enc_t *e, uint64_t nlive)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_KEYFRAME_END);
    enc_u(&w, nlive);
    return enc_finish(&w);
}

int
ht_tf_put_lost(ht_tf_enc_t *e, uint64_t ts, uint64_t events, uint64_t waits, uint64_t wait_ns)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_LOST);
    enc_d(&w, ts);
    enc_u(&w, events);
    enc_u(&w, waits);
    enc_u(&w, wait_ns);
    return enc_finish(&w);
}

int
ht_tf_put_memstat(ht_tf_enc_t *e, uint64_t ts, uint64_t rss, uint64_t anon, uint64_t file,
                  uint64_t shmem, uint64_t swap, uint64_t heap_free, uint64_t heap_total)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_MEMSTAT);
    enc_d(&w, ts);
    enc_u(&w, rss);
    enc_u(&w, anon);
    enc_u(&w, file);
    enc_u(&w, shmem);
    enc_u(&w, swap);
    enc_u(&w, heap_free);
    enc_u(&w, heap_total);
    return enc_finish(&w);
}

int
ht_tf_put_snapshot_req(ht_tf_enc_t *e, uint64_t ts, uint64_t reason)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_SNAPSHOT_REQ);
    enc_d(&w, ts);
    enc_u(&w, reason);
    return enc_finish(&w);
}

int
ht_tf_put_site(ht_tf_enc_t *e, uint64_t id, uint64_t size, uint64_t stack, uint64_t weight,
               uint64_t tid, uint64_t flags)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_SITE);
    enc_u(&w, id);
    enc_u(&w, size);
    enc_u(&w, stack);
    enc_u(&w, weight);
    enc_u(&w, tid);
    enc_u(&w, flags);
    return enc_finish(&w);
}

/* A packed event (trace.h, HT_TF_PACKED_BASE): base is 0x40 (alloc),
 * 0x80 (free) or 0xc0 (temporary free). */
static int
enc_packed(ht_tf_enc_t *e, unsigned base, uint64_t site)
{
    enc_w_t w;
    enc_begin(&w, e, (uint8_t)(base | (site & 0x3f)));
    enc_u(&w, site >> 6);
    return enc_finish(&w);
}

int
ht_tf_put_ev_alloc(ht_tf_enc_t *e, uint64_t site)
{
    return enc_packed(e, 0x40, site);
}

int
ht_tf_put_ev_free(ht_tf_enc_t *e, uint64_t site, int temporary)
{
    return enc_packed(e, temporary ? 0xc0 : 0x80, site);
}

int
ht_tf_put_tick(ht_tf_enc_t *e, uint64_t ts)
{
    uint64_t tick = e->tick ? e->tick : 1;
    if (ts < e->last_ts + tick)
        return 0;
    enc_w_t w;
    enc_begin(&w, e, HT_TF_TICK);
    enc_d(&w, ts);
    return enc_finish(&w);
}

int
ht_tf_put_ev_thread(ht_tf_enc_t *e, uint64_t tid)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_EV_THREAD);
    enc_u(&w, tid);
    return enc_finish(&w);
}

int
ht_tf_put_unknown_frees(ht_tf_enc_t *e, uint64_t ts, uint64_t frees)
{
    enc_w_t w;
    enc_begin(&w, e, HT_TF_UNKNOWN_FREES);
    enc_d(&w, ts);
    enc_u(&w, frees);
    return enc_finish(&w);
}

int
ht_tf_put_rec(ht_tf_enc_t *e, const ht_tf_rec_t *r)
{
    switch (r->kind) {
    case HT_TF_BATCH:
        return ht_tf_put_batch(e, r->pid, r->tid, r->ts);
    case HT_TF_ALLOC:
        return ht_tf_put_alloc(e, r->ts, r->ptr, r->size, r->stack, HT_TF_WEIGHT_ONE);
    case HT_TF_ALLOC_W:
        return ht_tf_put_alloc(e, r->ts, r->ptr, r->size, r->stack, r->weight);
    case HT_TF_FREE:
        return ht_tf_put_free(e, r->ts, r->ptr);
    case HT_TF_REALLOC:
        return ht_tf_put_realloc(e, r->ts, r->from, r->ptr, r->size, r->stack, r->later);
    case HT_TF_STACK:
        return ht_tf_put_stack(e, r->id, r->frames, r->nframes);
    case HT_TF_MODULE:
        return ht_tf_put_module(e, r->ts, r->id, r->bias, (const char *)r->str, r->str_len,
                                r->bytes, r->bytes_len, r->segs, r->nsegs);
    case HT_TF_UNMODULE:
        return ht_tf_put_unmodule(e, r->ts, r->id);
    case HT_TF_THREAD:
        return ht_tf_put_thread(e, r->ts, r->tid, (const char *)r->str, r->str_len);
    case HT_TF_THREAD_END:
        return ht_tf_put_thread_end(e, r->ts, r->tid);
    case HT_TF_TOTALS:
        return ht_tf_put_totals(e, r->ts, r->tid, r->allocs, r->alloc_bytes, r->frees,
                                r->free_bytes);
    case HT_TF_EXIT:
        return ht_tf_put_exit(e, r->ts, r->how, r->code);
    case HT_TF_PROCESS:
        return ht_tf_put_process(e, r->ts, r->pid, r->ppid, r->flags, r->sample_rate,
                                 r->max_depth, (const char *)r->str, r->str_len,
                                 (const char *)r->str2, r->str2_len);
    case HT_TF_FORK:
        return ht_tf_put_fork(e, r->ts, r->child);
    case HT_TF_LIVE:
        return ht_tf_put_live(e, r->site, r->count);
    case HT_TF_KEYFRAME:
        return ht_tf_put_keyframe(e, r->ts, r->seq, r->snapshot, r->reason);
    case HT_TF_KEYFRAME_END:
        return ht_tf_put_keyframe_end(e, r->nlive);
    case HT_TF_LOST:
        return ht_tf_put_lost(e, r->ts, r->events, r->waits, r->wait_ns);
    case HT_TF_MEMSTAT:
        return ht_tf_put_memstat(e, r->ts, r->rss, r->anon, r->file, r->shmem, r->swap,
                                 r->heap_free, r->heap_total);
    case HT_TF_SNAPSHOT_REQ:
        return ht_tf_put_snapshot_req(e, r->ts, r->reason);
    case HT_TF_SITE:
        return ht_tf_put_site(e, r->id, r->size, r->stack, r->weight, r->tid, r->flags);
    case HT_TF_EV_ALLOC:
        return ht_tf_put_ev_alloc(e, r->site);
    case HT_TF_EV_FREE:
    case HT_TF_EV_FREE_TMP:
        return ht_tf_put_ev_free(e, r->site, r->kind == HT_TF_EV_FREE_TMP);
    case HT_TF_TICK:
        return ht_tf_put_tick(e, r->ts);
    case HT_TF_STACK_REF:
        return ht_tf_put_stack_ref(e, r->id, r->base, r->keep, r->frames, r->nframes);
    case HT_TF_EV_THREAD:
        return ht_tf_put_ev_thread(e, r->tid);
    case HT_TF_UNKNOWN_FREES:
        return ht_tf_put_unknown_frees(e, r->ts, r->frees);
    default:
        return -EINVAL;
    }
}
