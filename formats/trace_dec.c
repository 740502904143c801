/*
 * formats/trace_dec.c -- bounds-checked record decoder. Every length and
 * count comes from untrusted input and is checked against what is left of
 * the buffer and against the format's limits before it is used.
 */
#include "formats/trace.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

int
ht_tf_varint_read(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= end)
            return -EBADMSG;
        uint8_t b = *p++;
        // The tenth byte may carry only the top bit of a 64-bit value.
        if (shift == 63 && b > 1)
            return -EBADMSG;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *v = x;
            return 0;
        }
    }
    return -EBADMSG;
}

void
ht_tf_dec_init(ht_tf_dec_t *d, const uint8_t *buf, size_t len)
{
    d->p = buf;
    d->end = buf + len;
    d->last_ts = 0;
    d->tick = 1;
}

void
ht_tf_dec_init_seg(ht_tf_dec_t *d, const uint8_t *buf, size_t len)
{
    ht_tf_dec_init(d, buf, len);
    d->tick = HT_TF_SEG_TICK_NS;
}

typedef struct dec_r_s {
    const uint8_t *p, *end;
    uint64_t ts;
    uint64_t tick;
    int bad;
} dec_r_t;

static inline uint64_t
dec_u(dec_r_t *r)
{
    uint64_t v = 0;
    if (!r->bad && ht_tf_varint_read(&r->p, r->end, &v) < 0)
        r->bad = 1;
    return r->bad ? 0 : v;
}

/* A `p` field (ht_tf_pput). */
static inline uint64_t
dec_p(dec_r_t *r)
{
    if (r->bad || r->end - r->p < 6) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (r->end - r->p >= 8) {
        memcpy(&v, r->p, 8);
        v &= HT_TF_P_ESC;
    } else
#endif
    {
        for (int i = 0; i < 6; i++)
            v |= (uint64_t)r->p[i] << (8 * i);
    }
    r->p += 6;
    return v == HT_TF_P_ESC ? dec_u(r) : v;
}

static inline uint64_t
dec_d(dec_r_t *r)
{
    uint64_t d = dec_u(r);
    r->ts += d * r->tick; // wraps harmlessly on hostile input; never used as a size
    return r->ts;
}

static inline const uint8_t *
dec_bytes(dec_r_t *r, uint32_t *len, uint32_t max)
{
    uint64_t n = dec_u(r);
    if (r->bad)
        return NULL;
    if (n > max || n > (uint64_t)(r->end - r->p)) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *b = r->p;
    r->p += n;
    *len = (uint32_t)n;
    return b;
}

int
ht_tf_dec_next(ht_tf_dec_t *d, ht_tf_rec_t *out)
{
    if (d->p >= d->end)
        return 0;
    dec_r_t r = {.p = d->p + 1, .end = d->end, .ts = d->last_ts,
                 .tick = d->tick ? d->tick : 1, .bad = 0};
    uint8_t k = d->p[0];
    if (k >= HT_TF_PACKED_BASE) {
        uint64_t hi = dec_u(&r);
        if (r.bad || hi >> 58)
            return -EBADMSG;
        memset(out, 0, offsetof(ht_tf_rec_t, segs));
        out->kind = (uint8_t)HT_TF_PACKED_KIND(k);
        out->weight = HT_TF_WEIGHT_ONE;
        out->ts = d->last_ts;
        out->site = hi << 6 | (k & 0x3fu);
        d->p = r.p;
        return 1;
    }
    if (k == HT_TF_ALLOC || k == HT_TF_ALLOC_W || k == HT_TF_FREE || k == HT_TF_REALLOC) {
        // The ring's records, one per malloc, free and realloc in --all
        // mode: set their fields only (clearing the whole record each time
        // was a third of the collector's time).
        bool re = k == HT_TF_REALLOC;
        out->kind = k;
        out->pid = out->tid = 0;
        out->ts = dec_d(&r);
        out->from = re ? dec_p(&r) : 0;
        out->ptr = dec_p(&r);
        out->size = k == HT_TF_FREE ? 0 : dec_u(&r);
        out->stack = k == HT_TF_FREE ? 0 : dec_u(&r);
        out->weight = k == HT_TF_ALLOC_W ? dec_u(&r) : HT_TF_WEIGHT_ONE;
        out->later = re ? dec_u(&r) : 0;
        if (r.bad)
            return -EBADMSG;
        d->p = r.p;
        d->last_ts = r.ts;
        return 1;
    }
    ht_tf_rec_t *o = out;
    memset(o, 0, offsetof(ht_tf_rec_t, segs));
    o->kind = d->p[0];
    o->weight = HT_TF_WEIGHT_ONE;
    o->ts = d->last_ts; // the stream's time, for records without their own

    switch (o->kind) {
    case HT_TF_BATCH:
        o->pid = dec_u(&r);
        o->tid = dec_u(&r);
        o->ts = r.ts = dec_u(&r);
        break;
    case HT_TF_STACK:
    case HT_TF_STACK_REF: {
        o->id = dec_u(&r);
        if (o->kind == HT_TF_STACK_REF) {
            o->base = dec_u(&r);
            o->keep = dec_u(&r);
            if (o->keep > HT_TF_MAX_FRAMES)
                r.bad = 1;
        }
        uint64_t n = dec_u(&r);
        // Each frame needs at least one byte: a count larger than what is
        // left is a lie, whatever the limit says.
        if (r.bad || n > HT_TF_MAX_FRAMES || n > (uint64_t)(r.end - r.p)) {
            r.bad = 1;
            break;
        }
        for (uint64_t i = 0; i < n && !r.bad; i++) {
            uint64_t v = dec_u(&r);
            d->frames[i] = i == 0 ? v : d->frames[i - 1] + (uint64_t)ht_tf_unzigzag(v);
        }
        o->nframes = (uint32_t)n;
        o->frames = d->frames;
        break;
    }
    case HT_TF_MODULE: {
        o->ts = dec_d(&r);
        o->id = dec_u(&r);
        o->bias = dec_u(&r);
        o->str = dec_bytes(&r, &o->str_len, HT_TF_MAX_STR);
        o->bytes = dec_bytes(&r, &o->bytes_len, HT_TF_MAX_BUILD_ID);
        uint64_t n = dec_u(&r);
        if (r.bad || n > HT_TF_MAX_SEGS) {
            r.bad = 1;
            break;
        }
        for (uint64_t i = 0; i < n; i++) {
            o->segs[i].vaddr = dec_u(&r);
            o->segs[i].memsz = dec_u(&r);
            o->segs[i].flags = dec_u(&r);
        }
        o->nsegs = (uint32_t)n;
        break;
    }
    case HT_TF_UNMODULE:
        o->ts = dec_d(&r);
        o->id = dec_u(&r);
        break;
    case HT_TF_THREAD:
        o->ts = dec_d(&r);
        o->tid = dec_u(&r);
        o->str = dec_bytes(&r, &o->str_len, HT_TF_MAX_STR);
        break;
    case HT_TF_THREAD_END:
        o->ts = dec_d(&r);
        o->tid = dec_u(&r);
        break;
    case HT_TF_TOTALS:
        o->ts = dec_d(&r);
        o->tid = dec_u(&r);
        o->allocs = dec_u(&r);
        o->alloc_bytes = dec_u(&r);
        o->frees = dec_u(&r);
        o->free_bytes = dec_u(&r);
        break;
    case HT_TF_EXIT:
        o->ts = dec_d(&r);
        o->how = dec_u(&r);
        o->code = dec_u(&r);
        break;
    case HT_TF_PROCESS:
        o->ts = dec_d(&r);
        o->pid = dec_u(&r);
        o->ppid = dec_u(&r);
        o->flags = dec_u(&r);
        o->sample_rate = dec_u(&r);
        o->max_depth = dec_u(&r);
        o->str = dec_bytes(&r, &o->str_len, HT_TF_MAX_STR);
        o->str2 = dec_bytes(&r, &o->str2_len, HT_TF_MAX_STR);
        break;
    case HT_TF_FORK:
        o->ts = dec_d(&r);
        o->child = dec_u(&r);
        break;
    case HT_TF_LIVE:
        o->site = dec_u(&r);
        o->count = dec_u(&r);
        break;
    case HT_TF_KEYFRAME:
        o->ts = r.ts = dec_u(&r);
        o->seq = dec_u(&r);
        o->snapshot = dec_u(&r);
        o->reason = dec_u(&r);
        break;
    case HT_TF_KEYFRAME_END:
        o->nlive = dec_u(&r);
        break;
    case HT_TF_LOST:
        o->ts = dec_d(&r);
        o->events = dec_u(&r);
        o->waits = dec_u(&r);
        o->wait_ns = dec_u(&r);
        break;
    case HT_TF_MEMSTAT:
        o->ts = dec_d(&r);
        o->rss = dec_u(&r);
        o->anon = dec_u(&r);
        o->file = dec_u(&r);
        o->shmem = dec_u(&r);
        o->swap = dec_u(&r);
        o->heap_free = dec_u(&r);
        o->heap_total = dec_u(&r);
        break;
    case HT_TF_SNAPSHOT_REQ:
        o->ts = dec_d(&r);
        o->reason = dec_u(&r);
        break;
    case HT_TF_SITE:
        o->id = dec_u(&r);
        o->size = dec_u(&r);
        o->stack = dec_u(&r);
        o->weight = dec_u(&r);
        o->tid = dec_u(&r);
        o->flags = dec_u(&r);
        break;
    case HT_TF_TICK:
        o->ts = dec_d(&r);
        break;
    case HT_TF_EV_THREAD:
        o->tid = dec_u(&r);
        break;
    case HT_TF_UNKNOWN_FREES:
        o->ts = dec_d(&r);
        o->frees = dec_u(&r);
        break;
    default:
        return -EBADMSG;
    }
    if (r.bad)
        return -EBADMSG;
    d->p = r.p;
    d->last_ts = r.ts;
    return 1;
}
