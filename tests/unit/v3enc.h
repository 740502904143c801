/* tests/unit/v3enc.h -- hand-written segment streams (format 3) from
 * pointer-based calls: a miniature collector for tests, so a test can say
 * "thread 7 allocated 0x1000, then freed it" and get EV_THREAD, TICK,
 * SITE definitions, EV_ALLOC and EV_FREE / EV_FREE_TMP naming sites.
 * Header-only, for the unit tests.
 */
#ifndef HT_TESTS_UNIT_V3ENC_H
#define HT_TESTS_UNIT_V3ENC_H

#include "formats/trace.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define V3_MAX 256

typedef struct v3_site_s {
    uint64_t size, stack, weight, tid, flags;
    bool defined; /* in the current segment */
} v3_site_t;

typedef struct v3_s {
    ht_tf_enc_t *e;
    uint64_t tid;
    bool tid_set;
    v3_site_t site[V3_MAX]; /* site[id], id >= 1 */
    uint32_t nsites;
    struct {
        uint64_t ptr;
        uint32_t site;
        bool on;
    } map[V3_MAX];
    struct {
        uint64_t tid, last_ptr;
        bool has_last;
    } thr[16];
} v3_t;

static inline void
v3_reset(v3_t *v, ht_tf_enc_t *e)
{
    memset(v, 0, sizeof *v);
    v->e = e;
}

static inline int
v3_find(v3_t *v, uint64_t ptr)
{
    for (int i = 0; i < V3_MAX; i++)
        if (v->map[i].on && v->map[i].ptr == ptr)
            return i;
    return -1;
}

static inline void
v3_set(v3_t *v, uint64_t ptr, uint32_t site)
{
    int i = v3_find(v, ptr);
    for (int k = 0; i < 0 && k < V3_MAX; k++)
        if (!v->map[k].on)
            i = k;
    v->map[i].ptr = ptr;
    v->map[i].site = site;
    v->map[i].on = true;
}

/* The site of these figures (made when new), defined in this segment. */
static inline uint32_t
v3_site(v3_t *v, uint64_t size, uint64_t stack, uint64_t weight, uint64_t tid, uint64_t flags)
{
    uint32_t id = 0;
    for (uint32_t i = 1; i <= v->nsites && !id; i++) {
        const v3_site_t *s = &v->site[i];
        if (s->size == size && s->stack == stack && s->weight == weight && s->tid == tid &&
            s->flags == flags)
            id = i;
    }
    if (!id && v->nsites + 1 < V3_MAX) {
        id = ++v->nsites;
        v->site[id] = (v3_site_t){size, stack, weight, tid, flags, false};
    }
    if (id && !v->site[id].defined) {
        ht_tf_put_site(v->e, id, size, stack, weight, tid, flags);
        v->site[id].defined = true;
    }
    return id;
}

/* Per-thread state for EV_FREE_TMP (a thread's last allocation). */
static inline int
v3_thr(v3_t *v, uint64_t tid)
{
    for (int i = 0; i < 16; i++)
        if (v->thr[i].tid == tid)
            return i;
    for (int i = 0; i < 16; i++)
        if (!v->thr[i].tid) {
            v->thr[i].tid = tid;
            return i;
        }
    return 0;
}

/* Start a segment in buf: encoder init and KEYFRAME. */
static inline int
v3_keyframe(v3_t *v, uint8_t *buf, size_t cap, uint64_t ts, uint64_t seq, uint64_t snapshot,
            uint64_t reason)
{
    ht_tf_enc_init_seg(v->e, buf, cap);
    v->tid_set = false;
    for (uint32_t i = 1; i <= v->nsites; i++)
        v->site[i].defined = false;
    return ht_tf_put_keyframe(v->e, ts, seq, snapshot, reason);
}

/* One live block in a keyframe (a LIVE of count 1: the replay adds them up). */
static inline int
v3_live(v3_t *v, uint64_t ptr, uint64_t size, uint64_t stack, uint64_t weight, uint64_t tid,
        uint64_t flags)
{
    uint32_t site = v3_site(v, size, stack, weight, tid, flags);
    v3_set(v, ptr, site);
    return ht_tf_put_live(v->e, site, 1);
}

/* The events after this belong to thread tid. */
static inline void
v3_thread(v3_t *v, uint64_t tid)
{
    if (v->tid_set && v->tid == tid)
        return;
    ht_tf_put_ev_thread(v->e, tid);
    v->tid = tid;
    v->tid_set = true;
}

static inline int
v3_alloc(v3_t *v, uint64_t ts, uint64_t ptr, uint64_t size, uint64_t stack, uint64_t weight)
{
    uint32_t site = v3_site(v, size, stack, weight, v->tid, 0);
    ht_tf_put_tick(v->e, ts);
    v3_set(v, ptr, site);
    int t = v3_thr(v, v->tid);
    v->thr[t].last_ptr = ptr;
    v->thr[t].has_last = true;
    return ht_tf_put_ev_alloc(v->e, site);
}

/* A free of a pointer never allocated names site 0, which no SITE
 * defines. */
static inline int
v3_free(v3_t *v, uint64_t ts, uint64_t ptr)
{
    int i = v3_find(v, ptr);
    uint32_t site = 0;
    if (i >= 0) {
        site = v->map[i].site;
        v->map[i].on = false;
    }
    ht_tf_put_tick(v->e, ts);
    int t = v3_thr(v, v->tid);
    bool temp = i >= 0 && v->thr[t].has_last && v->thr[t].last_ptr == ptr;
    v->thr[t].has_last = false;
    return ht_tf_put_ev_free(v->e, site, temp);
}

#endif /* HT_TESTS_UNIT_V3ENC_H */
